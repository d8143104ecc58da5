//! The fixture the suites of the migration ledger share (`crash`, `lease`, `status`,
//! `drift`, `dry_run`, `cluster`): a database seeded with logs, eleven months of
//! history and annotations made before migrate, the ground truth it must come to, and
//! what must hold once a migrate has converged.
//!
//! After every fault the same things must hold (`assert_converged`): the next
//! `migrate` converges (exit 0, saying it resumes what was left in progress), `verify`
//! passes, every qualifying log row is an example exactly once,
//! `training_trainable_examples` holds exactly the traces whose latest annotation makes
//! them trainable and that have an example, with that annotation, their example's texts
//! and their log row's values, the joined view shows every annotated example with its
//! latest annotation, the schema is the one a run without fault makes, and
//! `unified_logs` and `training_annotations` are untouched.

use crate::logs::{history_sql, insert, LogRow};
use crate::{repo_root, AnnotationRow, Run, TestDb};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::OnceLock;

/// Examples-to-be spread over eleven past months by `history_sql` (trace ids `h-N`).
pub const HISTORY: u64 = 300;

/// The statements of each migration file, in order (`migrations/NNNN_name.sql`, sorted):
/// the file without its comment lines, split at semicolons.
pub fn migration_statements() -> &'static Vec<Vec<String>> {
    static STATEMENTS: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    STATEMENTS.get_or_init(|| {
        let mut files: Vec<_> = std::fs::read_dir(repo_root().join("migrations"))
            .expect("migrations/")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        files
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                assert!(
                    stem.starts_with(&format!("{:04}_", i + 1)),
                    "migrations are numbered from 1 without gaps: {stem}"
                );
                let text: String = std::fs::read_to_string(path)
                    .expect("migration file")
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                text.split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect()
    })
}

/// The examples' state table and the materialized view that extracts an example from
/// each log row as it is logged: the migration that creates the view ends with the
/// backfill of the table from history.
pub const EXAMPLES_TABLE: &str = "training_examples_current";
pub const EXAMPLES_MV: &str = "training_examples_current_by_log_mv";

/// Whether `statements` (one migration's) create the examples' materialized view, and
/// so end with the backfill.
fn backfills(statements: &[String]) -> bool {
    let create = format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {EXAMPLES_MV} ");
    statements.iter().any(|s| s.starts_with(&create))
}

/// Steps of each migration on a fresh install: its statements, and for the migration
/// that creates the examples' materialized view its backfill as well (checked against
/// the ledger by `a_fresh_install_takes_exactly_the_steps_the_crash_tests_cover`).
/// Statements that a later migration drops or replaces, or that read what a later
/// migration drops, are skipped on a fresh install, but are steps all the same.
pub fn migration_steps() -> Vec<u32> {
    let statements = migration_statements();
    assert_eq!(
        statements.iter().filter(|s| backfills(s)).count(),
        1,
        "one migration creates {EXAMPLES_MV}"
    );
    statements
        .iter()
        .map(|statements| statements.len() as u32 + u32::from(backfills(statements)))
        .collect()
}

/// Steps of a fresh install, every migration's.
pub fn fresh_steps() -> u32 {
    migration_steps().iter().sum()
}
pub const LEDGER: &str = "_rvbbit_plugin_migrations";
pub const LEASES: &str = "_rvbbit_plugin_leases";
pub const NOTES: &str = "Checked with \"Finance\" — it's right;\nsecond line\ttab \\ é 🐇";

// ---------------------------------------------------------------------------------
// The data: logs, annotations made before migrate, and the ground truth.

/// Log rows besides the history: examples in `support`/`answer`, and rows that are
/// no example (the user's own row, no cascade, an empty reply).
pub fn log_rows() -> Vec<LogRow> {
    vec![
        LogRow::simple(
            "s-1",
            "support",
            "answer",
            "How do I get a refund?",
            "Open Billing.",
        ),
        LogRow::assistant(
            "s-2",
            "support",
            "answer",
            json!([
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "reply"},
                {"role": "user", "content": "Can I cancel?"}
            ]),
            json!("Within 24 hours."),
        ),
        LogRow::simple("s-3", "support", "answer", NOTES, NOTES),
        LogRow::assistant(
            "s-4",
            "support",
            "extract",
            json!([{"role": "user", "content": "extract"}]),
            json!({"name": "Zoë"}),
        ),
        LogRow::simple("s-5", "report", "summarise", "Q3?", "Revenue grew."),
        LogRow {
            role: "user".into(),
            ..LogRow::simple("s-1-user", "support", "answer", "q", "r")
        },
        LogRow {
            cascade_id: None,
            ..LogRow::simple("nc-1", "x", "answer", "q", "r")
        },
        LogRow::assistant(
            "empty-reply",
            "support",
            "answer",
            json!([{"role": "user", "content": "q"}]),
            json!(""),
        ),
    ]
}

/// One annotation row, as Studio writes it, with an explicit time.
#[derive(Clone, Debug)]
pub struct Mark {
    pub trace_id: &'static str,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: &'static str,
    pub tags: &'static [&'static str],
    pub by: &'static str,
    pub at: &'static str,
}

pub fn mark(
    trace_id: &'static str,
    trainable: bool,
    confidence: Option<f32>,
    at: &'static str,
) -> Mark {
    Mark {
        trace_id,
        trainable,
        verified: false,
        confidence,
        notes: "",
        tags: &[],
        by: "studio",
        at,
    }
}

/// Annotations made before migrate: re-annotated traces (the latest one decides, a
/// NULL confidence included), history traces, a row that is no example and a trace
/// that is not in `unified_logs`.
pub fn marks() -> Vec<Mark> {
    vec![
        Mark {
            verified: true,
            notes: NOTES,
            tags: &["gold", "billing"],
            by: "ada",
            ..mark("s-1", true, Some(0.95), "2025-03-01 09:00:00.000001")
        },
        mark("s-2", true, Some(0.9), "2025-03-01 09:00:00.000000"),
        Mark {
            verified: true,
            ..mark("s-2", true, Some(0.85), "2025-03-02 10:30:00.250000")
        },
        Mark {
            notes: "withdrawn",
            by: "grace",
            ..mark("s-2", false, Some(0.99), "2025-03-03 11:00:00.000000")
        },
        mark("s-3", true, Some(0.9), "2025-04-01 08:00:00.000000"),
        mark("s-3", true, None, "2025-04-02 08:00:00.000000"),
        Mark {
            tags: &["structured"],
            ..mark("s-4", true, Some(0.8), "2025-04-03 08:00:00.000000")
        },
        mark("h-5", true, Some(0.7), "2025-05-01 08:00:00.000000"),
        mark("h-17", false, Some(0.2), "2025-05-02 08:00:00.000000"),
        Mark {
            notes: "on second thought",
            ..mark("h-17", true, Some(0.92), "2025-05-03 08:00:00.000000")
        },
        mark("h-250", true, Some(1.0), "2025-05-04 08:00:00.000000"),
        mark("nc-1", true, Some(0.9), "2025-05-05 08:00:00.000000"),
        Mark {
            tags: &["orphan"],
            ..mark("ghost-1", true, Some(0.6), "2025-05-06 08:00:00.000000")
        },
    ]
}

/// An INSERT of `marks` in one statement; `optimize_on_insert = 0` keeps every row of a
/// re-annotated trace.
pub fn annotations_insert(marks: &[Mark]) -> String {
    let rows: Vec<String> = marks
        .iter()
        .map(|m| {
            json!({
                "trace_id": m.trace_id,
                "trainable": m.trainable,
                "verified": m.verified,
                "confidence": m.confidence,
                "notes": m.notes,
                "tags": m.tags,
                "annotated_by": m.by,
                "annotated_at": m.at,
            })
            .to_string()
        })
        .collect();
    format!(
        "INSERT INTO training_annotations SETTINGS optimize_on_insert = 0 FORMAT JSONEachRow\n{}",
        rows.join("\n")
    )
}

/// The first three statements of migration 0001, read from the file: the annotations
/// table and its two indexes. The tests run them by hand so annotations can exist
/// before migrate (as when Studio annotated before the rest was installed), which
/// gives 0003's copy step real work.
pub fn annotations_ddl() -> Vec<String> {
    let statements: Vec<String> = migration_statements()[0][..3].to_vec();
    assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS training_annotations"));
    assert!(statements[1].starts_with("ALTER TABLE training_annotations ADD INDEX"));
    assert!(statements[2].starts_with("ALTER TABLE training_annotations ADD INDEX"));
    statements
}

/// What the data must come to.
#[derive(Clone)]
pub struct Truth {
    /// Trace ids with an example, sorted; each exactly once.
    pub examples: Vec<String>,
    /// `unified_logs` before (count, checksum).
    pub logs: (u64, u64),
    /// `training_annotations` before, row for row.
    pub annotations: Vec<AnnotationRow>,
}

impl Truth {
    /// Each annotated trace that has an example, with its latest annotation (from the
    /// annotation rows as stored; every test annotation has a time of its own): what
    /// the joined view shows for annotated examples.
    pub fn annotated_examples(&self) -> Vec<AnnotationRow> {
        let mut latest: BTreeMap<&str, &AnnotationRow> = BTreeMap::new();
        for a in &self.annotations {
            if self.examples.binary_search(&a.trace_id).is_ok()
                && latest
                    .get(a.trace_id.as_str())
                    .is_none_or(|l| l.annotated_at < a.annotated_at)
            {
                latest.insert(&a.trace_id, a);
            }
        }
        latest
            .into_values()
            .map(|a| AnnotationRow {
                annotated_at: in_micros(&a.annotated_at),
                ..a.clone()
            })
            .collect()
    }

    /// Each trace with an example whose latest annotation makes it trainable, with that
    /// annotation: what `training_trainable_examples FINAL WHERE trainable` must hold.
    pub fn trainable_examples(&self) -> Vec<AnnotationRow> {
        self.annotated_examples()
            .into_iter()
            .filter(|a| a.trainable)
            .collect()
    }

    /// Each trace with an example that has been marked trainable at some time, with its
    /// latest annotation: the only rows `training_trainable_examples FINAL` may hold (a
    /// trace taken back keeps its row, with trainable = false).
    pub fn once_trainable_examples(&self) -> Vec<AnnotationRow> {
        self.annotated_examples()
            .into_iter()
            .filter(|latest| {
                self.annotations
                    .iter()
                    .any(|a| a.trace_id == latest.trace_id && a.trainable)
            })
            .collect()
    }

    /// Adds qualifying log rows written later.
    pub fn with_examples(mut self, ids: &[&str]) -> Truth {
        self.examples.extend(ids.iter().map(|s| s.to_string()));
        self.examples.sort();
        self
    }
}

/// An annotation time as a `DateTime64(6)` shows it (`2025-05-01 08:00:00.000000`):
/// what the trainable examples and the joined view hold, whatever the precision of
/// `training_annotations.annotated_at` (a hand-applied install keeps its
/// `DateTime64(3)`, shown as `2025-05-01 08:00:00.000`).
pub fn in_micros(at: &str) -> String {
    let (seconds, fraction) = at.split_once('.').unwrap_or((at, ""));
    assert!(
        fraction.len() <= 6 && fraction.bytes().all(|b| b.is_ascii_digit()),
        "an annotation time: {at}"
    );
    format!("{seconds}.{fraction:0<6}")
}

/// A database with `unified_logs` (the log rows and `history` history rows), the
/// annotations table made from migration 0001's own statements, and the annotations.
pub async fn seed(db: &TestDb, history: u64) -> Truth {
    insert(&db.client, &log_rows()).await;
    db.exec(&history_sql(history)).await;
    for statement in annotations_ddl() {
        db.exec(&statement).await;
    }
    let marks = marks();
    db.exec(&annotations_insert(&marks)).await;
    truth(db, history, marks.len()).await
}

/// The ground truth of a database seeded with the log rows, `history` history rows and
/// `marks` annotation rows.
pub async fn truth(db: &TestDb, history: u64, marks: usize) -> Truth {
    let mut examples: Vec<String> = log_rows()
        .iter()
        .filter(|r| r.is_example())
        .map(|r| r.trace_id.clone())
        .chain((0..history).map(|n| format!("h-{n}")))
        .collect();
    examples.sort();
    let annotations = db.snapshot_annotations().await;
    assert_eq!(annotations.len(), marks, "every annotation is a row");
    let truth = Truth {
        examples,
        logs: db.logs_fingerprint().await,
        annotations,
    };
    let (trainable, annotated) = (
        truth.trainable_examples().len(),
        truth.annotated_examples().len(),
    );
    assert!(
        0 < trainable && trainable < annotated,
        "the marks make some examples trainable and leave others not: {trainable} of {annotated}"
    );
    truth
}

pub async fn seeded(label: &str) -> (TestDb, Truth) {
    let db = TestDb::with_logs(label).await;
    let truth = seed(&db, HISTORY).await;
    (db, truth)
}
// ---------------------------------------------------------------------------------
// Reading the outcome.

/// The JSON document of `rvbbit training status --format json`.
pub fn status_document(db: &TestDb) -> Value {
    let run = db.rvbbit(&["training", "status", "--format", "json"]);
    run.expect_code(0);
    crate::json_document(&run)
}

/// The data of `rvbbit training status --format json`.
pub fn status(db: &TestDb) -> Value {
    status_document(db)["data"].clone()
}

/// Every row of `table` (every column, as text), sorted: to check nothing was written.
pub async fn raw_rows(db: &TestDb, table: &str) -> Vec<String> {
    // Every table read here is a ReplacingMergeTree: FINAL, so that a background merge
    // collapsing versions between two reads is not mistaken for a write.
    let mut rows: Vec<String> = db
        .rows(&format!(
            "SELECT formatRow('TabSeparated', *) FROM {table} FINAL"
        ))
        .await;
    rows.sort();
    rows
}

/// The `CREATE` statement of every object, with the database name taken out, so two
/// databases can be compared.
pub async fn schema(db: &TestDb) -> Vec<(String, String)> {
    db.definitions()
        .await
        .into_iter()
        .map(|(name, create)| (name, create.replace(&db.name, "DB")))
        .collect()
}

pub async fn table_names(db: &TestDb) -> Vec<String> {
    db.rows(&format!(
        "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
        db.name
    ))
    .await
}

/// The schema a seeded database gets from one migrate without fault: what every
/// faulted run must converge to. Made once, on a runtime of its own.
pub fn reference_schema() -> &'static Vec<(String, String)> {
    static REFERENCE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(async {
                    let (db, _) = seeded("reference").await;
                    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
                    let schema = schema(&db).await;
                    db.drop().await;
                    schema
                })
        })
        .join()
        .expect("the reference migrate")
    })
}

/// `actual` trace ids (sorted, with repeats) are exactly `expected`; on failure names
/// the extra and the missing ones rather than printing hundreds of ids.
#[track_caller]
pub fn assert_same_traces(actual: &[String], expected: &[String], context: &str) {
    if actual == expected {
        return;
    }
    let count = |list: &[String]| {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for id in list {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    };
    let (have, want) = (count(actual), count(expected));
    let extra: Vec<String> = have
        .iter()
        .filter(|(id, n)| **n > want.get(*id).copied().unwrap_or(0))
        .map(|(id, n)| format!("{id} x{n}"))
        .collect();
    let missing: Vec<&String> = want.keys().filter(|id| !have.contains_key(*id)).collect();
    panic!(
        "{context}: {} rows, expected {} (one per qualifying log row); extra or repeated: {:?}; missing: {:?}",
        actual.len(),
        expected.len(),
        &extra[..extra.len().min(20)],
        &missing[..missing.len().min(20)]
    );
}

/// Everything that must hold once a migrate has converged, the schema being the one
/// of a seeded database migrated without fault.
pub async fn assert_converged(db: &TestDb, truth: &Truth, context: &str) {
    assert_converged_to(db, truth, reference_schema(), context).await;
}

/// Everything that must hold once a migrate has converged to `reference`.
pub async fn assert_converged_to(
    db: &TestDb,
    truth: &Truth,
    reference: &[(String, String)],
    context: &str,
) {
    let verify = db.rvbbit(&["training", "verify"]);
    assert_eq!(
        verify.code, 0,
        "{context}: verify fails after convergence:\n{}",
        verify.stdout
    );
    let status = status(db);
    assert_eq!(status["up_to_date"], true, "{context}: status:\n{status:#}");
    for m in status["migrations"].as_array().unwrap() {
        assert_eq!(m["state"], "applied", "{context}: {m:#}");
        assert_eq!(m["steps_done"], m["steps_total"], "{context}: {m:#}");
        assert_eq!(m["checksum"], m["applied_checksum"], "{context}: {m:#}");
    }
    // Every qualifying log row is an example, exactly once, and nothing else is. The
    // state table holds a row per annotation of an example (the latest version wins),
    // so an example is one row read with FINAL; and no row is written twice: no trace
    // has two rows of the same version (its extraction, or one annotation, twice).
    let stored: Vec<String> = db
        .rows(&format!(
            "SELECT trace_id FROM {EXAMPLES_TABLE} FINAL ORDER BY trace_id"
        ))
        .await;
    assert_same_traces(
        &stored,
        &truth.examples,
        &format!("{context}: {EXAMPLES_TABLE} FINAL"),
    );
    let twice: Vec<String> = db
        .rows(&format!(
            "SELECT concat(trace_id, ' x', toString(count()), ' at ', toString(version)) \
             FROM {EXAMPLES_TABLE} GROUP BY trace_id, version HAVING count() > 1 \
             ORDER BY trace_id, version LIMIT 20"
        ))
        .await;
    assert!(
        twice.is_empty(),
        "{context}: {EXAMPLES_TABLE} holds rows written twice: {twice:?}"
    );
    // The trainable examples: each trace with an example whose latest annotation makes
    // it trainable, with that annotation; and no row but those of traces marked
    // trainable at some time, each with its latest annotation.
    let copied: Vec<AnnotationRow> = db
        .rows(
            "SELECT trace_id, trainable, verified, confidence, notes, tags, \
             toString(annotated_at) AS annotated_at, annotated_by \
             FROM training_trainable_examples FINAL ORDER BY trace_id",
        )
        .await;
    let trainable: Vec<AnnotationRow> = copied.iter().filter(|a| a.trainable).cloned().collect();
    assert_eq!(
        trainable,
        truth.trainable_examples(),
        "{context}: training_trainable_examples FINAL WHERE trainable"
    );
    let allowed = truth.once_trainable_examples();
    let unexpected: Vec<&AnnotationRow> = copied.iter().filter(|a| !allowed.contains(a)).collect();
    assert!(
        unexpected.is_empty(),
        "{context}: training_trainable_examples FINAL holds rows of traces never trainable, \
         or not with their latest annotation: {unexpected:#?}"
    );
    // Each copied with its example's texts and its log row's values.
    let copied_values: Vec<String> = db
        .rows(
            "SELECT formatRow('TabSeparated', trace_id, timestamp, session_id, cascade_id, \
             cell_name, species_hash, user_input, assistant_output, model, cost, tokens_in, \
             tokens_out, duration_ms, caller_id, node_type, role) \
             FROM training_trainable_examples FINAL ORDER BY trace_id",
        )
        .await;
    let source_values: Vec<String> = db
        .rows(
            "SELECT formatRow('TabSeparated', e.trace_id, e.timestamp, e.session_id, \
             e.cascade_id, e.cell_name, e.species_hash, e.user_input, e.assistant_output, \
             l.model, l.cost, l.tokens_in, l.tokens_out, l.duration_ms, l.caller_id, \
             CAST(l.node_type AS String), CAST(l.role AS String)) \
             FROM (SELECT * FROM training_examples_current FINAL) AS e \
             INNER JOIN (SELECT * FROM unified_logs WHERE role = 'assistant') AS l \
             ON l.trace_id = e.trace_id \
             WHERE e.trace_id IN (SELECT trace_id FROM training_trainable_examples) \
             ORDER BY e.trace_id",
        )
        .await;
    assert_eq!(
        copied_values, source_values,
        "{context}: training_trainable_examples' texts and values are not the example's and its log row's"
    );
    let expected = truth.annotated_examples();
    // What rvbbit's retrieval reads: one row per example, the annotated ones as above.
    let (rows, distinct): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_with_annotations")
        .await;
    assert_eq!(
        (rows, distinct),
        (truth.examples.len() as u64, truth.examples.len() as u64),
        "{context}: training_examples_with_annotations"
    );
    let joined: Vec<AnnotationRow> = db
        .rows(
            "SELECT trace_id, trainable, verified, confidence, notes, tags, \
             toString(assumeNotNull(annotated_at)) AS annotated_at, annotated_by \
             FROM (SELECT * FROM training_examples_with_annotations WHERE annotated_at IS NOT NULL) \
             ORDER BY trace_id",
        )
        .await;
    assert_eq!(
        joined, expected,
        "{context}: annotated rows of the joined view"
    );
    // Untouched.
    assert_eq!(
        db.logs_fingerprint().await,
        truth.logs,
        "{context}: unified_logs changed"
    );
    assert_eq!(
        db.snapshot_annotations().await,
        truth.annotations,
        "{context}: training_annotations changed"
    );
    // The same schema as a migrate without fault.
    assert_eq!(
        schema(db).await,
        reference,
        "{context}: the schema differs from a migrate without fault"
    );
}

// ---------------------------------------------------------------------------------
// 2. The server killed mid-migrate, restarted on its data.

/// Starts `migrate` on `db`, kills the engine as soon as the migrate prints a line
/// containing `marker` (on stdout or stderr), and returns what the migrate printed.
pub fn kill_engine_at(db: &TestDb, engine: &mut std::process::Child, marker: &str) -> Run {
    let mut child = db.spawn_rvbbit(&["training", "migrate"]);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stream).lines() {
                let line = line.unwrap_or_default();
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    })
    .collect();
    drop(tx);
    let mut seen = String::new();
    for line in rx.iter() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            engine.kill().unwrap();
            engine.wait().unwrap();
            break;
        }
    }
    assert!(
        seen.contains(marker),
        "the migrate never printed {marker:?}:\n{seen}"
    );
    let status = child.wait().unwrap();
    let mut outputs = readers.into_iter().map(|r| r.join().unwrap());
    Run {
        code: status.code().unwrap_or(-1),
        stdout: outputs.next().unwrap(),
        stderr: outputs.next().unwrap(),
    }
}
