//! What a command needs before it can run (the database, rvbbit's `unified_logs`, the
//! training objects), and the one next step it prints when something is missing:
//! never advice that cannot succeed.

use crate::db::Db;
use crate::failure::classified;
use crate::schema::LOGS;
use rvbbit_plugin_api::exit;

/// How many candidate databases a message names at most.
const MAX_CANDIDATES: usize = 5;

/// The databases of the server that hold rvbbit's `unified_logs`.
pub async fn databases_with_logs(db: &Db) -> anyhow::Result<Vec<String>> {
    let q = db
        .server_query(
            "SELECT database FROM system.tables WHERE name = {logs:String} \
             AND database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') \
             ORDER BY database",
        )
        .param("logs", LOGS);
    db.fetch_all::<String>(q).await
}

/// Fails with one line naming the next step when the target database does not exist.
pub async fn require_database(db: &Db) -> anyhow::Result<()> {
    if db.database_exists().await? {
        return Ok(());
    }
    let candidates = databases_with_logs(db).await?;
    Err(classified(
        exit::MISSING_PREREQUISITE,
        missing_database(&db.target.database, &db.target.address(), &candidates),
    ))
}

/// Fails with one line naming the next step when the database, rvbbit's
/// `unified_logs` or one of the training objects `needed` is missing: for the
/// commands that read or write what `migrate` installs.
pub async fn require_installed(db: &Db, needed: &[&str]) -> anyhow::Result<()> {
    require_database(db).await?;
    let objects = db.objects().await?;
    if !objects.contains_key(LOGS) {
        let candidates = databases_with_logs(db).await?;
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            missing_logs(&db.target.database, &candidates),
        ));
    }
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|name| !objects.contains_key(*name))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(classified(
            exit::MISSING_PREREQUISITE,
            not_installed(&db.target.database, &missing),
        ))
    }
}

/// `candidates` ordered for a reader looking for `database`: a name that differs only
/// in case first, then names sharing its start, then the rest; at most five.
fn likely_first<'a>(database: &str, candidates: &'a [String]) -> Vec<&'a str> {
    let wanted = database.to_lowercase();
    let rank = |name: &str| {
        let name = name.to_lowercase();
        if name == wanted {
            0
        } else if !wanted.is_empty() && (name.starts_with(&wanted) || wanted.starts_with(&name)) {
            1
        } else {
            2
        }
    };
    let mut ordered: Vec<&str> = candidates.iter().map(String::as_str).collect();
    ordered.sort_by_key(|name| rank(name));
    ordered.truncate(MAX_CANDIDATES);
    ordered
}

fn named(candidates: &[&str], total: usize) -> String {
    let mut text = candidates.join(", ");
    if total > candidates.len() {
        text.push_str(&format!(" (and {} more)", total - candidates.len()));
    }
    text
}

/// The message for a database that does not exist.
pub fn missing_database(database: &str, address: &str, candidates: &[String]) -> String {
    format!(
        "database {database} does not exist on {address}; {}",
        where_the_logs_are(database, candidates)
    )
}

/// The next step for a database that does not exist: the databases holding
/// rvbbit's `unified_logs`, or where to look when none does.
pub fn where_the_logs_are(database: &str, candidates: &[String]) -> String {
    if candidates.is_empty() {
        format!(
            "no database there holds rvbbit's {LOGS}: point --database (or RVBBIT_CLICKHOUSE_DATABASE) at the database rvbbit logs to"
        )
    } else {
        format!(
            "rvbbit's {LOGS} is in: {}; choose one with --database",
            named(&likely_first(database, candidates), candidates.len())
        )
    }
}

/// The message for a database without rvbbit's `unified_logs`.
pub fn missing_logs(database: &str, candidates: &[String]) -> String {
    let elsewhere: Vec<String> = candidates
        .iter()
        .filter(|c| *c != database)
        .cloned()
        .collect();
    if elsewhere.is_empty() {
        format!(
            "table {database}.{LOGS} does not exist: the training system reads rvbbit's log table, \
             which rvbbit creates when it first logs to this database; run rvbbit against it first"
        )
    } else {
        format!(
            "table {database}.{LOGS} does not exist: rvbbit logs to another database on this server ({}); choose it with --database",
            named(&likely_first(database, &elsewhere), elsewhere.len())
        )
    }
}

/// The message for training objects that `migrate` has not installed yet.
pub fn not_installed(database: &str, missing: &[&str]) -> String {
    format!(
        "the training system is not installed in database {database} ({} missing); \
         install it with `rvbbit training migrate --database {database}`",
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_mistyped_database_names_the_databases_holding_the_logs_case_match_first() {
        let message = missing_database(
            "Rvbbit",
            "http://127.0.0.1:8123",
            &names(&["analytics", "rvbbit", "staging"]),
        );
        assert_eq!(
            message,
            "database Rvbbit does not exist on http://127.0.0.1:8123; rvbbit's unified_logs is in: \
             rvbbit, analytics, staging; choose one with --database"
        );
        assert!(!message.contains("--create-database"));
    }

    #[test]
    fn with_no_database_holding_the_logs_the_advice_is_to_point_at_rvbbits_database() {
        let message = missing_database("rvbbit", "http://h:8123", &[]);
        assert!(message.contains("no database there holds rvbbit's unified_logs"));
        assert!(message.contains("RVBBIT_CLICKHOUSE_DATABASE"));
        assert!(!message.contains("migrate"), "{message}");
    }

    #[test]
    fn long_candidate_lists_are_cut_with_a_count() {
        let many = names(&["a1", "a2", "a3", "a4", "a5", "a6", "a7"]);
        let message = missing_database("zz", "http://h", &many);
        assert!(
            message.contains("a1, a2, a3, a4, a5 (and 2 more)"),
            "{message}"
        );
    }

    #[test]
    fn a_prefix_ranks_before_unrelated_names() {
        let list = names(&["prod", "rvbbit_dev", "alpha"]);
        assert_eq!(
            likely_first("rvbbit", &list),
            vec!["rvbbit_dev", "prod", "alpha"]
        );
    }

    #[test]
    fn missing_logs_points_elsewhere_only_when_another_database_has_them() {
        assert!(missing_logs("scratch", &names(&["rvbbit"]))
            .contains("(rvbbit); choose it with --database"));
        let alone = missing_logs("scratch", &[]);
        assert!(alone.contains("run rvbbit against it first"), "{alone}");
        assert!(!alone.contains("--database"), "{alone}");
    }

    #[test]
    fn not_installed_is_one_line_with_the_command_that_installs() {
        let message = not_installed("rvbbit", &["training_stats_by_cascade"]);
        assert_eq!(
            message,
            "the training system is not installed in database rvbbit (training_stats_by_cascade missing); \
             install it with `rvbbit training migrate --database rvbbit`"
        );
        assert!(!message.contains('\n'));
    }
}
