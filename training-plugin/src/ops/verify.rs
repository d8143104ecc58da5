//! The checks of `rvbbit training verify` (which migrate also runs last): every
//! object of the training system, its indexes, the ledger, and that examples cover
//! the qualifying rows of `unified_logs`.

use crate::db::Db;
use crate::drift;
use crate::examples;
use crate::ledger;
use crate::migrations::{Migration, MIGRATIONS};
use crate::model::LedgerStatus;
use crate::output::{self, Format};
use crate::say;
use crate::schema::{EXAMPLES_MV, EXAMPLES_TABLE, LOGS, OBJECTS};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub ok: bool,
    #[serde(skip)] // in the JSON envelope
    pub database: String,
    pub checks: Vec<Check>,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Runs every check. Failing checks are results, not errors: only a failure to talk
/// to the server is an `Err`.
pub async fn checks(db: &Db) -> anyhow::Result<Report> {
    let database = db.target.database.clone();
    let mut out = Vec::new();
    if !db.database_exists().await? {
        let candidates = crate::prerequisite::databases_with_logs(db).await?;
        out.push(check(
            format!("database {database}"),
            false,
            format!(
                "does not exist; {}",
                crate::prerequisite::where_the_logs_are(&database, &candidates)
            ),
        ));
        return Ok(Report {
            ok: false,
            database,
            checks: out,
        });
    }
    let live = drift::snapshot(db).await?;
    let engines = live.engines.clone();
    let findings = drift::compare(db, &live, true).await?;
    for expected in OBJECTS {
        let name = format!("{} {}", expected.kind, expected.name);
        let mine: Vec<&drift::Finding> = findings
            .iter()
            .filter(|f| f.object == expected.name)
            .collect();
        if mine.is_empty() {
            let columns = live.columns.get(expected.name).map_or(0, |c| c.len());
            let engine = engines.get(expected.name).cloned().unwrap_or_default();
            out.push(check(
                name,
                true,
                format!("{engine}, {columns} columns, as this version defines it"),
            ));
            continue;
        }
        let problems: Vec<String> = mine.iter().map(|f| f.problem.to_string()).collect();
        let missing = !engines.contains_key(expected.name);
        let refusal = mine.iter().find_map(|f| match &f.repair {
            drift::Repair::Refuse(why) => Some(why.as_str()),
            _ => None,
        });
        out.push(check(
            name,
            false,
            format!(
                "{}; {}",
                problems.join("; "),
                object_advice(missing, refusal)
            ),
        ));
    }
    out.push(migrations_check(db, &engines).await?);

    if !engines.contains_key(LOGS) {
        out.push(check(
            format!("table {LOGS}"),
            false,
            format!("missing: the training system reads rvbbit's log table; run rvbbit against database {database} first"),
        ));
    } else if engines.contains_key(EXAMPLES_TABLE) {
        if let Some(view_query) = examples::view_query(db).await? {
            let missing = examples::missing(db, &view_query).await?;
            let total = examples::count(db).await?;
            out.push(check(
                "examples populated",
                missing == 0,
                if missing == 0 {
                    format!("{total} examples; every qualifying {LOGS} row has one")
                } else {
                    format!("{missing} qualifying {LOGS} rows have no example; run `rvbbit training migrate` to backfill them")
                },
            ));
            let duplicates = examples::duplicates(db).await?;
            out.push(check(
                "examples unique",
                duplicates == 0,
                if duplicates == 0 {
                    "one example per trace".to_string()
                } else {
                    format!("{duplicates} traces have examples at more than one time (same trace_id, another timestamp), so Studio lists them more than once; keep the first of each with `ALTER TABLE {EXAMPLES_TABLE} DELETE WHERE (trace_id, timestamp) NOT IN (SELECT trace_id, min(timestamp) FROM {EXAMPLES_TABLE} GROUP BY trace_id)`")
                },
            ));
            // The worker's scores wait up to 2 seconds in their buffer: not a lag.
            examples::settle_scores(db).await?;
            let lagging = examples::lagging_examples(db).await?;
            out.push(check(
                "examples' values current",
                lagging == 0,
                if lagging == 0 {
                    format!("model, cost, tokens and duration as {LOGS} holds them now")
                } else {
                    format!("{lagging} examples show an older model, cost, tokens or duration than {LOGS} (rvbbit writes them after the row); run `rvbbit training migrate` to bring them up to date")
                },
            ));
            if engines.contains_key(crate::schema::TRAINABLE_EXAMPLES)
                && engines.contains_key(crate::schema::ANNOTATIONS)
            {
                let stale = examples::stale_trainable(db).await?;
                out.push(check(
                    "trainable examples current",
                    stale == 0,
                    if stale == 0 {
                        "every trainable example is copied with its latest annotation".to_string()
                    } else {
                        format!("{stale} traces' copies in {} disagree with their latest annotation; run `rvbbit training migrate` to copy them again", crate::schema::TRAINABLE_EXAMPLES)
                    },
                ));
                let lagging = examples::lagging_values(db).await?;
                out.push(check(
                    "trainable examples' values current",
                    lagging == 0,
                    if lagging == 0 {
                        format!("model, cost, tokens and duration as {LOGS} holds them now")
                    } else {
                        format!("{lagging} trainable examples show an older model, cost, tokens or duration than {LOGS} (the log row changed after the trace was marked); run `rvbbit training migrate` to bring them up to date")
                    },
                ));
            }
        } else if engines.contains_key(EXAMPLES_MV) {
            out.push(check(
                "examples populated",
                false,
                format!("cannot read the query of {EXAMPLES_MV}"),
            ));
        }
    }
    let ok = out.iter().all(|c| c.ok);
    Ok(Report {
        ok,
        database,
        checks: out,
    })
}

/// What to do about an object that differs from this version's: create it when
/// `missing`, say why not when its repair is refused (`refusal`), else `--repair`.
fn object_advice(missing: bool, refusal: Option<&str>) -> String {
    if missing {
        "run `rvbbit training migrate`".to_string()
    } else if let Some(why) = refusal {
        format!("not repairable without rewriting data: {why}")
    } else {
        "run `rvbbit training migrate --repair` to put it right (nothing is lost)".to_string()
    }
}

/// Whether every migration of this version is applied, with the checksum it has now.
async fn migrations_check(db: &Db, engines: &BTreeMap<String, String>) -> anyhow::Result<Check> {
    if !engines.contains_key(ledger::LEDGER) {
        return Ok(check(
            MIGRATIONS_APPLIED,
            false,
            format!(
                "no migration ledger ({}); run `rvbbit training migrate`",
                ledger::LEDGER
            ),
        ));
    }
    let entries = ledger::read(db).await?;
    Ok(migrations_verdict(MIGRATIONS, &entries))
}

const MIGRATIONS_APPLIED: &str = "migrations applied";

/// The check `migrations applied` of `migrations` against the ledger rows `entries`:
/// each migration pending, not finished or applied from another checksum is named,
/// and the advice is `migrate`, or `migrate --repair` when a checksum differs (a plain
/// migrate refuses it).
fn migrations_verdict(migrations: &[Migration], entries: &[ledger::Entry]) -> Check {
    let name = MIGRATIONS_APPLIED;
    let mut problems = Vec::new();
    let mut mismatch = false;
    for m in migrations {
        match entries.iter().find(|e| e.version == m.version) {
            None => problems.push(format!("{:04}_{} pending", m.version, m.name)),
            Some(e) if e.status() != LedgerStatus::Applied => problems.push(format!(
                "{:04}_{} {} at step {} of {} (host {}, pid {})",
                m.version, m.name, e.status, e.statements_done, e.statements_total, e.host, e.pid
            )),
            Some(e) if e.checksum != ledger::checksum(m.sql) => {
                mismatch = true;
                problems.push(format!(
                    "{:04}_{} was applied from a file with another checksum ({} here, {} applied)",
                    m.version,
                    m.name,
                    &ledger::checksum(m.sql)[..12],
                    e.checksum.get(..12).unwrap_or(&e.checksum)
                ));
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        check(
            name,
            true,
            format!("all {} applied, checksums match", migrations.len()),
        )
    } else {
        check(
            name,
            false,
            format!(
                "{}; run `rvbbit training migrate{}` (`rvbbit training status` has the details)",
                problems.join("; "),
                if mismatch { " --repair" } else { "" }
            ),
        )
    }
}

/// The checklist's lines within `width` columns, each with the check's outcome on the
/// line that carries its mark. Name and detail share a line, aligned, when every check
/// fits; otherwise each name has a line of its own, its detail below it, indented and
/// broken at spaces (names and ids are never broken: one wider than the line is cut
/// with `…`).
pub fn check_lines(checks: &[Check], width: usize) -> Vec<(String, Option<bool>)> {
    let name_width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let fits = checks
        .iter()
        .all(|c| 2 + 4 + 1 + name_width + 2 + c.detail.chars().count() <= width);
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let mut lines = Vec::new();
    for c in checks {
        if fits {
            lines.push((
                format!("  {} {:name_width$}  {}", mark(c.ok), c.name, c.detail),
                Some(c.ok),
            ));
        } else {
            // The name broken between its kind and the object's name when the line
            // is too narrow for both (an object's name is cut with `…`, never broken).
            let name = output::hanging(&c.name, 7, width);
            for (i, part) in name.lines().enumerate() {
                if i == 0 {
                    lines.push((format!("  {} {part}", mark(c.ok)), Some(c.ok)));
                } else {
                    lines.push((part.to_string(), None));
                }
            }
            for part in output::wrap(&c.detail, width.saturating_sub(7).max(20)) {
                lines.push((format!("       {part}"), None));
            }
        }
    }
    lines
}

impl Report {
    /// The checks as a checklist with a closing line, or as JSON.
    pub fn print(&self, format: Format) -> anyhow::Result<()> {
        let report = self;
        match format {
            Format::Json => output::print_json(report)?,
            Format::Table => {
                for (line, ok) in check_lines(&report.checks, output::width()) {
                    say!(
                        "{}",
                        match ok {
                            Some(true) => line.replacen("ok  ", &output::green("ok  "), 1),
                            Some(false) => line.replacen("FAIL", &output::red("FAIL"), 1),
                            None => line,
                        }
                    );
                }
                say!("{}", output::heading(&report.summary()));
            }
        }
        Ok(())
    }

    /// The closing line of the checklist: all passed, or how many of them failed.
    fn summary(&self) -> String {
        let total = self.checks.len();
        match self.checks.iter().filter(|c| !c.ok).count() {
            0 => format!(
                "verify: all {total} checks passed in database {}",
                self.database
            ),
            failed => format!(
                "verify: {failed} of {total} checks failed in database {}",
                self.database
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Migration = Migration {
        version: 1,
        name: "first",
        sql: "CREATE TABLE a (x UInt8) ENGINE = Memory",
    };
    const SECOND: Migration = Migration {
        version: 2,
        name: "second",
        sql: "CREATE TABLE b (x UInt8) ENGINE = Memory",
    };

    fn entry(m: &Migration, status: &str, checksum: String) -> ledger::Entry {
        ledger::Entry {
            version: m.version,
            name: m.name.into(),
            checksum,
            statements_done: 1,
            statements_total: 3,
            status: status.into(),
            host: "build-7".into(),
            pid: 4242,
            started_at: "2025-05-01 08:00:00.000000".into(),
            finished_at: None,
            duration_ms: 0,
            error: String::new(),
            note: String::new(),
        }
    }

    fn applied(m: &Migration) -> ledger::Entry {
        entry(m, "applied", ledger::checksum(m.sql))
    }

    #[test]
    fn every_migration_applied_with_its_checksum_passes() {
        let c = migrations_verdict(&[FIRST, SECOND], &[applied(&FIRST), applied(&SECOND)]);
        assert!(c.ok, "{c:?}");
        assert_eq!(c.name, "migrations applied");
        assert_eq!(c.detail, "all 2 applied, checksums match");
    }

    #[test]
    fn a_pending_migration_fails_and_points_at_migrate() {
        let c = migrations_verdict(&[FIRST, SECOND], &[applied(&FIRST)]);
        assert!(!c.ok);
        assert_eq!(
            c.detail,
            "0002_second pending; run `rvbbit training migrate` (`rvbbit training status` has the details)"
        );
    }

    #[test]
    fn a_run_left_half_way_is_named_with_its_step_host_and_pid() {
        let c = migrations_verdict(
            &[FIRST],
            &[entry(&FIRST, "running", ledger::checksum(FIRST.sql))],
        );
        assert!(!c.ok);
        assert!(
            c.detail.starts_with("0001_first running at step 1 of 3 (host build-7, pid 4242); run `rvbbit training migrate` ("),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_changed_checksum_points_at_repair_with_both_checksums_cut_short() {
        let other = "abc".repeat(21) + "a";
        let c = migrations_verdict(&[FIRST, SECOND], &[entry(&FIRST, "applied", other)]);
        assert!(!c.ok);
        let here = &ledger::checksum(FIRST.sql)[..12];
        assert!(
            c.detail.starts_with(&format!(
                "0001_first was applied from a file with another checksum ({here} here, abcabcabcabc applied); 0002_second pending; run `rvbbit training migrate --repair`"
            )),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_checksum_shorter_than_twelve_characters_is_shown_whole() {
        let c = migrations_verdict(&[FIRST], &[entry(&FIRST, "applied", "abc".into())]);
        assert!(!c.ok);
        assert!(c.detail.contains(" here, abc applied)"), "{}", c.detail);
    }

    #[test]
    fn an_object_is_created_when_missing_refused_with_its_reason_or_repaired() {
        assert_eq!(
            object_advice(true, Some("ignored")),
            "run `rvbbit training migrate`"
        );
        assert_eq!(
            object_advice(false, Some("it holds rows")),
            "not repairable without rewriting data: it holds rows"
        );
        assert!(object_advice(false, None).contains("migrate --repair"));
    }

    #[test]
    fn the_summary_counts_the_failed_checks() {
        let mut report = Report {
            ok: true,
            database: "rvbbit".into(),
            checks: vec![check("a", true, ""), check("b", true, "")],
        };
        assert_eq!(
            report.summary(),
            "verify: all 2 checks passed in database rvbbit"
        );
        report.checks.push(check("c", false, "broken"));
        assert_eq!(
            report.summary(),
            "verify: 1 of 3 checks failed in database rvbbit"
        );
    }
}

#[cfg(test)]
mod print_tests {
    use super::*;

    fn c(name: &str, ok: bool, detail: &str) -> Check {
        Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }

    #[test]
    fn short_checks_share_a_line_aligned() {
        let lines = check_lines(&[c("a", true, "fine"), c("longer", false, "broken")], 80);
        let text: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(text, vec!["  ok   a       fine", "  FAIL longer  broken"]);
        assert_eq!(lines[1].1, Some(false));
    }

    #[test]
    fn long_checks_put_the_detail_below_within_the_width_and_never_break_a_name() {
        let name = "materialized view training_trainable_examples_by_annotation_mv";
        let detail =
            "MaterializedView, 23 columns, as this version defines it, and more words to wrap";
        let lines = check_lines(
            &[
                c(name, true, detail),
                c("examples unique", true, "one example per trace"),
            ],
            80,
        );
        assert_eq!(lines[0].0, format!("  ok   {name}"));
        assert!(
            lines.iter().all(|(l, _)| l.chars().count() <= 80),
            "{lines:#?}"
        );
        let detail_lines: Vec<String> = lines
            .iter()
            .take_while(|(l, _)| !l.contains("examples unique"))
            .skip(1)
            .map(|(l, _)| l.trim().to_string())
            .collect();
        assert_eq!(detail_lines.join(" "), detail);
        assert_eq!(
            lines.last().map(|(l, _)| l.trim()),
            Some("one example per trace")
        );
    }

    #[test]
    fn on_60_columns_the_kind_gives_way_and_the_name_stays_whole() {
        let name = "materialized view training_trainable_examples_by_annotation_mv";
        let lines = check_lines(
            &[c(name, false, "missing; run `rvbbit training migrate`")],
            60,
        );
        let text: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            text,
            vec![
                "  FAIL materialized view",
                "       training_trainable_examples_by_annotation_mv",
                "       missing; run `rvbbit training migrate`",
            ]
        );
        assert_eq!(lines[0].1, Some(false));
        assert_eq!((lines[1].1, lines[2].1), (None, None));
        for width in 40..=60 {
            let lines = check_lines(&[c(name, true, "fine")], width);
            assert!(
                lines.iter().all(|(l, _)| l.chars().count() <= width),
                "{width}: {lines:#?}"
            );
        }
    }

    #[test]
    fn a_word_longer_than_the_room_stays_whole() {
        let id = "x".repeat(100);
        assert_eq!(
            output::wrap(&format!("a {id} b"), 20),
            vec!["a".to_string(), id.clone(), "b".to_string()]
        );
        assert_eq!(output::wrap("", 20), vec![String::new()]);
    }
}
