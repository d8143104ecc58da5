//! `rvbbit training uninstall`: removes what `migrate` created, and nothing else.
//!
//! What migrate creates is read from the embedded migrations themselves (every
//! `CREATE ... IF NOT EXISTS` and `CREATE OR REPLACE VIEW` of every version, including
//! objects a later version dropped), so a database left on any version is cleared. They
//! are dropped newest first: a materialized view goes before the tables it reads and
//! writes. `unified_logs` is never touched; `training_annotations` (the marks people and
//! rvbbit's scorer wrote) only with `drop_annotations`. This plugin's rows of the
//! migration ledger and the lease go too; the two tables themselves only when no other
//! plugin has rows in them. The run holds the migrate lease, so it never races a
//! migrate.

use crate::db::Db;
use crate::failure::classified;
use crate::lease::{self, LEASES};
use crate::ledger::{LEDGER, PLUGIN};
use crate::migrations::{creates, Creates, MIGRATIONS};
use crate::model::Kind;
use crate::output::{self, Format};
use crate::say;
use crate::schema::{ANNOTATIONS, BACKFILL_STAGING, LOGS};
use rvbbit_plugin_api::exit;
use std::collections::BTreeMap;

/// How to uninstall: the command's flags.
#[derive(Clone, Copy)]
pub struct Options {
    pub format: Format,
    pub dry_run: bool,
    /// Drop `training_annotations` too (confirmed by the caller).
    pub drop_annotations: bool,
    pub wait: std::time::Duration,
}

/// One object to drop, as it is in the database now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removal {
    pub name: String,
    /// What it is now (`system.tables.engine`).
    pub engine: String,
    #[serde(skip)]
    pub kind: Kind,
}

impl Removal {
    /// The statement that drops it. `SYNC`: gone when the statement returns, so a
    /// `migrate` right after can create it again.
    pub fn statement(&self) -> String {
        let what = match self.kind {
            Kind::Table => "TABLE",
            Kind::View | Kind::MaterializedView => "VIEW",
        };
        format!("DROP {what} IF EXISTS {} SYNC", self.name)
    }
}

/// What uninstall does to a database: decided from the live objects alone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Dropped, in this order.
    pub drop: Vec<Removal>,
    /// Training objects that exist and stay (`training_annotations` unless asked).
    pub kept: Vec<String>,
}

/// Every object any version's migrations create, in the order they are created (the
/// first time each name appears), with the kind the statement gives it; then the
/// backfill's staging table.
pub fn created_objects() -> Vec<(Kind, String)> {
    let mut seen: Vec<(Kind, String)> = Vec::new();
    for migration in MIGRATIONS {
        let Ok(statements) = rvbbit_sql_text::split(migration.sql) else {
            continue;
        };
        for statement in statements {
            let (object, replaces) = match creates(&statement.text) {
                Some(Creates::Object { kind, name }) => ((kind, name), false),
                Some(Creates::Replace { name }) => ((Kind::View, name), true),
                _ => continue,
            };
            match seen.iter().position(|(_, name)| *name == object.1) {
                None => seen.push(object),
                // A view defined again reads what exists by then: it goes after it,
                // so that it is dropped first.
                Some(at) if replaces => {
                    seen.remove(at);
                    seen.push(object);
                }
                Some(_) => {}
            }
        }
    }
    // Not a migration's: the backfill's staging table, which a stopped backfill leaves.
    seen.push((Kind::Table, BACKFILL_STAGING.to_string()));
    seen
}

/// The plan for a database whose objects are `live` (name to engine). Pure.
pub fn plan(
    created: &[(Kind, String)],
    live: &BTreeMap<String, String>,
    drop_annotations: bool,
) -> Plan {
    let mut drop = Vec::new();
    let mut kept = Vec::new();
    for (_, name) in created.iter().rev() {
        let Some(engine) = live.get(name) else {
            continue;
        };
        if name == LOGS || (name == ANNOTATIONS && !drop_annotations) {
            kept.push(name.clone());
            continue;
        }
        // What stands there now decides the statement (a hand-applied install may
        // have a view where this version has a table).
        let kind = match engine.as_str() {
            "View" => Kind::View,
            "MaterializedView" => Kind::MaterializedView,
            _ => Kind::Table,
        };
        drop.push(Removal {
            name: name.clone(),
            engine: engine.clone(),
            kind,
        });
    }
    kept.reverse();
    Plan { drop, kept }
}

/// How many annotation rows `training_annotations` holds (for the confirmation).
pub async fn annotation_rows(db: &Db) -> anyhow::Result<Option<u64>> {
    if !db.objects().await?.contains_key(ANNOTATIONS) {
        return Ok(None);
    }
    let q = db.query(&format!("SELECT count() FROM {ANNOTATIONS}"));
    Ok(Some(db.fetch_one::<u64>(q).await?))
}

/// Removes the training system from the database (or, with `dry_run`, says what it
/// would remove); returns the exit code.
pub async fn uninstall(db: Db, options: &Options) -> anyhow::Result<i32> {
    crate::prerequisite::require_database(&db).await?;
    let database = db.target.database.clone();
    let holds_lease = !options.dry_run && db.objects().await?.contains_key(LEASES);
    let lease = if holds_lease {
        Some(
            lease::acquire(&db, options.wait, |holder| {
                if options.format == Format::Table {
                    eprintln!("waiting for {holder} to finish");
                }
            })
            .await?,
        )
    } else {
        None
    };
    let result = remove(&db, options).await;
    let released = match lease {
        Some(lease) => lease.release().await,
        None => Ok(()),
    };
    let mut report = result?;
    released?;
    if !options.dry_run {
        report.lease_entries = clear_leases(&db).await?;
        if report.lease_entries.1 {
            report.dropped_tables.push(LEASES);
        }
    }
    print(&report, &database, options)?;
    Ok(exit::SUCCESS)
}

/// What a run did (or, dry, would do), for both formats.
#[derive(serde::Serialize)]
struct Report {
    dry_run: bool,
    dropped: Vec<Removal>,
    kept: Vec<String>,
    /// This plugin's migrations in the ledger, whose rows are removed.
    ledger_entries: u64,
    /// This plugin's finished lease claims removed, and whether the table went.
    #[serde(skip)]
    lease_entries: (u64, bool),
    /// The ledger and lease tables, dropped when no other plugin has rows in them.
    dropped_tables: Vec<&'static str>,
}

/// Under the lease: drops the objects of the plan, then this plugin's ledger rows
/// (and the ledger table when no other plugin has rows in it).
async fn remove(db: &Db, options: &Options) -> anyhow::Result<Report> {
    let live = db.objects().await?;
    let plan = plan(&created_objects(), &live, options.drop_annotations);
    let ledger_entries = if live.contains_key(LEDGER) {
        db.fetch_one::<u64>(
            db.query(&format!(
                "SELECT count() FROM {LEDGER} FINAL WHERE plugin = {{p:String}}"
            ))
            .param("p", PLUGIN),
        )
        .await?
    } else {
        0
    };
    let mut report = Report {
        dry_run: options.dry_run,
        dropped: plan.drop,
        kept: plan.kept,
        ledger_entries,
        lease_entries: (0, false),
        dropped_tables: Vec::new(),
    };
    if options.dry_run {
        return Ok(report);
    }
    for removal in &report.dropped {
        db.execute(db.query(&removal.statement()))
            .await
            .map_err(|e| {
                classified(
                    exit::SERVER_ERROR,
                    format!(
                        "dropping {} failed: {e:#}; what was dropped before it stays dropped, and running uninstall again goes on from there",
                        removal.name
                    ),
                )
            })?;
    }
    if live.contains_key(LEDGER) {
        db.execute(
            db.query(&format!("DELETE FROM {LEDGER} WHERE plugin = {{p:String}}"))
                .param("p", PLUGIN)
                .with_setting("mutations_sync", "2"),
        )
        .await?;
        if drop_if_empty(db, LEDGER).await? {
            report.dropped_tables.push(LEDGER);
        }
    }
    Ok(report)
}

/// After the lease is given back: removes this plugin's finished claims (released or
/// expired; a migrate that started meanwhile keeps its own) and the table when it is
/// then empty. Returns how many claims went and whether the table did.
async fn clear_leases(db: &Db) -> anyhow::Result<(u64, bool)> {
    if !db.objects().await?.contains_key(LEASES) {
        return Ok((0, false));
    }
    let finished = db
        .fetch_all::<String>(
            db.query(&format!(
                "SELECT token FROM {LEASES} FINAL WHERE plugin = {{p:String}} \
                 AND (released = 1 OR expires_at < now64(6))"
            ))
            .param("p", PLUGIN),
        )
        .await?;
    if !finished.is_empty() {
        db.execute(
            db.query(&format!(
                "DELETE FROM {LEASES} WHERE plugin = {{p:String}} AND has({{tokens:Array(String)}}, token)"
            ))
            .param("p", PLUGIN)
            .param("tokens", &finished)
            .with_setting("mutations_sync", "2"),
        )
        .await?;
    }
    Ok((finished.len() as u64, drop_if_empty(db, LEASES).await?))
}

/// Drops `table` when it has no rows left; says whether it did.
async fn drop_if_empty(db: &Db, table: &str) -> anyhow::Result<bool> {
    let rows = db
        .fetch_one::<u64>(db.query(&format!("SELECT count() FROM {table}")))
        .await?;
    if rows > 0 {
        return Ok(false);
    }
    db.execute(db.query(&format!("DROP TABLE IF EXISTS {table} SYNC")))
        .await?;
    Ok(true)
}

fn print(report: &Report, database: &str, options: &Options) -> anyhow::Result<()> {
    if options.format == Format::Json {
        return output::print_json(report);
    }
    if report.dropped.is_empty() {
        say!("nothing of the training system is installed in database {database}");
    }
    for removal in &report.dropped {
        if options.dry_run {
            say!("would run: {};", removal.statement());
        } else {
            say!("dropped {} ({})", removal.name, removal.engine);
        }
    }
    if report.ledger_entries > 0 {
        let verb = if options.dry_run {
            "would remove"
        } else {
            "removed"
        };
        say!(
            "{verb} the ledger rows of {} migrations of this plugin",
            report.ledger_entries
        );
    }
    for name in &report.kept {
        if name == ANNOTATIONS {
            say!("kept {name}: the annotations stay unless --drop-annotations is given; a later migrate uses them again");
        } else {
            say!("kept {name}");
        }
    }
    if !options.dry_run && !report.dropped.is_empty() {
        say!("`rvbbit training migrate` installs it again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(names: &[(&str, &str)]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|(n, e)| (n.to_string(), e.to_string()))
            .collect()
    }

    #[test]
    fn every_version_s_objects_are_known_and_none_is_rvbbit_s_log() {
        let created = created_objects();
        let names: Vec<&str> = created.iter().map(|(_, n)| n.as_str()).collect();
        for object in crate::schema::OBJECTS {
            assert!(names.contains(&object.name), "{} missing", object.name);
        }
        // 0003's view on annotations, which 0004 drops, is still known.
        assert!(names.contains(&"training_trainable_examples_by_annotation_mv"));
        assert!(!names.contains(&LOGS));
    }

    #[test]
    fn views_go_before_the_tables_they_read_and_annotations_stay() {
        let created = created_objects();
        let everything: BTreeMap<String, String> = created
            .iter()
            .map(|(kind, name)| {
                let engine = match kind {
                    Kind::Table => "ReplacingMergeTree",
                    Kind::View => "View",
                    Kind::MaterializedView => "MaterializedView",
                };
                (name.clone(), engine.to_string())
            })
            .chain([(LOGS.to_string(), "MergeTree".to_string())])
            .collect();
        let plan = plan(&created, &everything, false);
        assert_eq!(plan.kept, vec![ANNOTATIONS.to_string()]);
        let at = |name: &str| plan.drop.iter().position(|r| r.name == name);
        assert!(at(LOGS).is_none() && at(ANNOTATIONS).is_none());
        let mv = at(crate::schema::EXAMPLES_MV).expect("examples mv");
        let table = at(crate::schema::EXAMPLES_TABLE).expect("examples table");
        assert!(mv < table, "{plan:?}");
        let joined = at(crate::schema::JOINED_VIEW).expect("joined view");
        assert!(joined < table);
        let with = plan_with_annotations(&created, &everything);
        assert!(with.drop.iter().any(|r| r.name == ANNOTATIONS));
        assert!(with.kept.is_empty());
    }

    fn plan_with_annotations(
        created: &[(Kind, String)],
        everything: &BTreeMap<String, String>,
    ) -> Plan {
        plan(created, everything, true)
    }

    #[test]
    fn only_what_exists_is_dropped_with_the_statement_its_engine_needs() {
        let created = created_objects();
        let plan = plan(
            &created,
            &live(&[
                ("training_examples", "View"),
                ("training_annotations", "ReplacingMergeTree"),
                ("unified_logs", "MergeTree"),
                ("something_else", "MergeTree"),
            ]),
            false,
        );
        assert_eq!(plan.drop.len(), 1);
        assert_eq!(
            plan.drop[0].statement(),
            "DROP VIEW IF EXISTS training_examples SYNC"
        );
        assert_eq!(plan.kept, vec!["training_annotations".to_string()]);
    }
}
