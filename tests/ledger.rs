//! The migration ledger, the migrate lease, `status`, drift and `--repair`, `--dry-run`
//! and `--cluster`, against the real engine; and the faults of a live database: a
//! migrate stopped after each step in turn (the debug-build failpoint
//! `RVBBIT_TRAINING_FAILPOINT=exit-after-step:N`), the server killed mid-migrate, three
//! migrates at once, a lease held by another host, a ledger whose checksum changed.
//!
//! After every fault the same things must hold: the next `migrate` converges (exit 0,
//! saying it resumes what was left in progress), `verify` passes, every qualifying log
//! row is an example exactly once, `training_trainable_examples` holds exactly the
//! traces whose latest annotation makes them trainable and that have an example, with
//! that annotation, their example's texts and their log row's values, the joined view
//! shows every annotated example with its latest annotation, the schema is the one a
//! run without fault makes, and `unified_logs` and `training_annotations` are
//! untouched.

use rvbbit_tests::logs::{history_sql, insert, LogRow};
use rvbbit_tests::{
    free_port, hostname, private_engine_log, remove_private_engine, repo_root, rvbbit,
    start_private_engine, AnnotationRow, Run, TestDb,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::OnceLock;

/// Examples-to-be spread over eleven past months by `history_sql` (trace ids `h-N`).
const HISTORY: u64 = 300;

/// The statements of each migration file, in order (`migrations/NNNN_name.sql`, sorted):
/// the file without its comment lines, split at semicolons.
fn migration_statements() -> &'static Vec<Vec<String>> {
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

/// Steps of each migration on a fresh install: its statements, and for 0001 its
/// backfill as well (checked against the ledger by
/// `a_fresh_install_takes_exactly_the_steps_the_crash_tests_cover`). Statements that a
/// later migration drops or replaces are skipped on a fresh install, but are steps all
/// the same.
fn migration_steps() -> Vec<u32> {
    migration_statements()
        .iter()
        .enumerate()
        .map(|(i, statements)| statements.len() as u32 + u32::from(i == 0))
        .collect()
}

/// Steps of a fresh install, every migration's.
fn fresh_steps() -> u32 {
    migration_steps().iter().sum()
}

/// Step `n` of a fresh install (from 1): the migration it belongs to, the steps of that
/// migration done once it is, and that migration's steps.
fn step_of(n: u32) -> (u32, u32, u32) {
    let mut before = 0;
    for (i, steps) in migration_steps().into_iter().enumerate() {
        if n <= before + steps {
            return (i as u32 + 1, n - before, steps);
        }
        before += steps;
    }
    panic!("a fresh install has {before} steps, not {n}")
}

const LEDGER: &str = "_rvbbit_plugin_migrations";
const LEASES: &str = "_rvbbit_plugin_leases";
const NOTES: &str = "Checked with \"Finance\" — it's right;\nsecond line\ttab \\ é 🐇";

// ---------------------------------------------------------------------------------
// The data: logs, annotations made before migrate, and the ground truth.

/// Log rows besides the history: examples in `support`/`answer`, and rows that are
/// no example (the user's own row, no cascade, an empty reply).
fn log_rows() -> Vec<LogRow> {
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
struct Mark {
    trace_id: &'static str,
    trainable: bool,
    verified: bool,
    confidence: Option<f32>,
    notes: &'static str,
    tags: &'static [&'static str],
    by: &'static str,
    at: &'static str,
}

fn mark(
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
fn marks() -> Vec<Mark> {
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
fn annotations_insert(marks: &[Mark]) -> String {
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
fn annotations_ddl() -> Vec<String> {
    let statements: Vec<String> = migration_statements()[0][..3].to_vec();
    assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS training_annotations"));
    assert!(statements[1].starts_with("ALTER TABLE training_annotations ADD INDEX"));
    assert!(statements[2].starts_with("ALTER TABLE training_annotations ADD INDEX"));
    statements
}

/// What the data must come to.
#[derive(Clone)]
struct Truth {
    /// Trace ids with an example, sorted; each exactly once.
    examples: Vec<String>,
    /// `unified_logs` before (count, checksum).
    logs: (u64, u64),
    /// `training_annotations` before, row for row.
    annotations: Vec<AnnotationRow>,
}

impl Truth {
    /// Each annotated trace that has an example, with its latest annotation (from the
    /// annotation rows as stored; every test annotation has a time of its own): what
    /// the joined view shows for annotated examples.
    fn annotated_examples(&self) -> Vec<AnnotationRow> {
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
    fn trainable_examples(&self) -> Vec<AnnotationRow> {
        self.annotated_examples()
            .into_iter()
            .filter(|a| a.trainable)
            .collect()
    }

    /// Each trace with an example that has been marked trainable at some time, with its
    /// latest annotation: the only rows `training_trainable_examples FINAL` may hold (a
    /// trace taken back keeps its row, with trainable = false).
    fn once_trainable_examples(&self) -> Vec<AnnotationRow> {
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
    fn with_examples(mut self, ids: &[&str]) -> Truth {
        self.examples.extend(ids.iter().map(|s| s.to_string()));
        self.examples.sort();
        self
    }
}

/// An annotation time as a `DateTime64(6)` shows it (`2025-05-01 08:00:00.000000`):
/// what the trainable examples and the joined view hold, whatever the precision of
/// `training_annotations.annotated_at` (a hand-applied install keeps its
/// `DateTime64(3)`, shown as `2025-05-01 08:00:00.000`).
fn in_micros(at: &str) -> String {
    let (seconds, fraction) = at.split_once('.').unwrap_or((at, ""));
    assert!(
        fraction.len() <= 6 && fraction.bytes().all(|b| b.is_ascii_digit()),
        "an annotation time: {at}"
    );
    format!("{seconds}.{fraction:0<6}")
}

/// A database with `unified_logs` (the log rows and `history` history rows), the
/// annotations table made from migration 0001's own statements, and the annotations.
async fn seed(db: &TestDb, history: u64) -> Truth {
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
async fn truth(db: &TestDb, history: u64, marks: usize) -> Truth {
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

async fn seeded(label: &str) -> (TestDb, Truth) {
    let db = TestDb::with_logs(label).await;
    let truth = seed(&db, HISTORY).await;
    (db, truth)
}

// ---------------------------------------------------------------------------------
// Reading the outcome.

/// `rvbbit training status --format json`.
fn status(db: &TestDb) -> Value {
    let run = db.rvbbit(&["training", "status", "--format", "json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("status --format json prints JSON ({e}):\n{}", run.stdout))
}

/// Every row of `table` (every column, as text), sorted: to check nothing was written.
async fn raw_rows(db: &TestDb, table: &str) -> Vec<String> {
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
async fn schema(db: &TestDb) -> Vec<(String, String)> {
    db.definitions()
        .await
        .into_iter()
        .map(|(name, create)| (name, create.replace(&db.name, "DB")))
        .collect()
}

async fn table_names(db: &TestDb) -> Vec<String> {
    db.rows(&format!(
        "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
        db.name
    ))
    .await
}

/// The schema a seeded database gets from one migrate without fault: what every
/// faulted run must converge to. Made once, on a runtime of its own.
fn reference_schema() -> &'static Vec<(String, String)> {
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
fn assert_same_traces(actual: &[String], expected: &[String], context: &str) {
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
async fn assert_converged(db: &TestDb, truth: &Truth, context: &str) {
    assert_converged_to(db, truth, reference_schema(), context).await;
}

/// Everything that must hold once a migrate has converged to `reference`.
async fn assert_converged_to(
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
    // Every qualifying log row is an example, exactly once, and nothing else is.
    let stored: Vec<String> = db
        .rows("SELECT trace_id FROM training_examples ORDER BY trace_id")
        .await;
    assert_same_traces(
        &stored,
        &truth.examples,
        &format!("{context}: training_examples"),
    );
    let (final_count, traces): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples FINAL")
        .await;
    assert_eq!(
        (final_count, traces),
        (truth.examples.len() as u64, truth.examples.len() as u64),
        "{context}: examples FINAL"
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
             FROM (SELECT * FROM training_examples FINAL) AS e \
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
// 1. A migrate stopped right after each step in turn resumes and converges.

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_install_takes_exactly_the_steps_the_crash_tests_cover() {
    let (db, truth) = seeded("steps").await;
    // A failpoint past the last step never fires: a fresh install has no more steps.
    let run = rvbbit_tests::run(
        rvbbit()
            .args([
                "training",
                "migrate",
                "--url",
                &db.url,
                "--database",
                &db.name,
            ])
            .env(
                "RVBBIT_TRAINING_FAILPOINT",
                format!("exit-after-step:{}", fresh_steps() + 1),
            ),
    );
    run.expect_code(0);
    let ledger: Vec<(u32, u32, u32, String)> = db
        .rows(&format!(
            "SELECT version, statements_done, statements_total, toString(status) FROM {LEDGER} FINAL \
             WHERE plugin = 'training' ORDER BY version"
        ))
        .await;
    let expected: Vec<(u32, u32, u32, String)> = migration_steps()
        .into_iter()
        .enumerate()
        .map(|(i, steps)| (i as u32 + 1, steps, steps, "applied".to_string()))
        .collect();
    assert_eq!(ledger, expected);
    assert_converged(&db, &truth, "a migrate without fault").await;
    // The crash tests below stop after each of these steps, and after no other.
    assert_eq!(
        CRASH_STEPS.to_vec(),
        (1..=fresh_steps()).collect::<Vec<u32>>(),
        "stopped_after! must name every step of a fresh install, once and in order"
    );
    db.drop().await;
}

/// Stops a fresh install right after step `n` (exit 137, as a kill), checks what the
/// ledger and `status` say, then runs migrate again.
async fn stopped_after_step(n: u32) {
    let (db, truth) = seeded(&format!("stop{n}")).await;
    let child = rvbbit()
        .args([
            "training",
            "migrate",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .env("RVBBIT_TRAINING_FAILPOINT", format!("exit-after-step:{n}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rvbbit starts");
    let pid = child.id();
    let stopped = Run::from_output(child.wait_with_output().unwrap());
    stopped.expect_code(137);

    // The ledger shows the migration the step belongs to as in progress, with the steps
    // done, the host and the process that ran them.
    let (version, done, total) = step_of(n);
    let status = status(&db);
    assert_eq!(status["up_to_date"], false, "{status:#}");
    let migrations = status["migrations"].as_array().unwrap();
    let in_progress: Vec<&Value> = migrations
        .iter()
        .filter(|m| m["state"] == "in progress")
        .collect();
    assert_eq!(in_progress.len(), 1, "after step {n}: {status:#}");
    let m = in_progress[0];
    assert_eq!(m["version"], version, "after step {n}: {m:#}");
    assert_eq!(m["steps_done"], done, "after step {n}: {m:#}");
    assert_eq!(m["steps_total"], total, "after step {n}: {m:#}");
    assert_eq!(m["host"], hostname(), "{m:#}");
    assert_eq!(m["pid"], pid, "{m:#}");
    assert_eq!(m["finished_at"], Value::Null, "{m:#}");
    for other in migrations.iter().filter(|m| m["version"] != version) {
        let expected = if other["version"].as_u64() < Some(u64::from(version)) {
            "applied"
        } else {
            "pending"
        };
        assert_eq!(other["state"], expected, "after step {n}: {other:#}");
    }

    // --dry-run says what it would resume, and writes nothing.
    let ledger_before = raw_rows(&db, LEDGER).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout
            .contains(&format!("-- would resume: migration {version:04}_")),
        "after step {n}:\n{}",
        dry.stdout
    );
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "--dry-run wrote the ledger"
    );

    // The next migrate says it resumes, and converges.
    let resumed = db.rvbbit(&["training", "migrate"]);
    assert!(
        resumed
            .stdout
            .contains(&format!("resuming: migration {version:04}_"))
            && resumed
                .stdout
                .contains(&format!("after step {done} of {total}")),
        "after step {n}: migrate says what it resumes:\n{}",
        resumed.stdout
    );
    assert_eq!(
        resumed.code, 0,
        "after step {n}: the resumed migrate fails; stdout:\n{}\nstderr:\n{}",
        resumed.stdout, resumed.stderr
    );
    assert_converged(&db, &truth, &format!("stopped after step {n}")).await;

    // And a migrate after that has nothing left to do.
    let again = db.rvbbit(&["training", "migrate"]);
    again.expect_code(0);
    assert!(
        !again.stdout.contains("resuming") && !again.stdout.contains("created"),
        "{}",
        again.stdout
    );
    db.drop().await;
}

macro_rules! stopped_after {
    ($($name:ident: $n:expr,)*) => {
        /// The steps the tests below stop after.
        const CRASH_STEPS: &[u32] = &[$($n),*];
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                stopped_after_step($n).await;
            }
        )*
    };
}

// On a fresh install the statements of 0002 whose objects 0003 drops or replaces
// (11-15) are skipped, not sent: each is a step of the ledger all the same.

stopped_after! {
    stopped_after_step_01_annotations_table_resumes: 1,
    stopped_after_step_02_first_index_resumes: 2,
    stopped_after_step_03_second_index_resumes: 3,
    stopped_after_step_04_examples_table_resumes: 4,
    stopped_after_step_05_materialized_view_resumes: 5,
    stopped_after_step_06_joined_view_resumes: 6,
    stopped_after_step_07_stats_view_resumes: 7,
    stopped_after_step_08_backfill_end_of_0001_resumes: 8,
    stopped_after_step_09_trace_index_resumes: 9,
    stopped_after_step_10_materialize_index_resumes: 10,
    stopped_after_step_11_skipped_annotated_table_resumes: 11,
    stopped_after_step_12_skipped_annotation_view_resumes: 12,
    stopped_after_step_13_skipped_example_view_resumes: 13,
    stopped_after_step_14_skipped_copy_resumes: 14,
    stopped_after_step_15_skipped_joined_view_end_of_0002_resumes: 15,
    stopped_after_step_16_trainable_table_resumes: 16,
    stopped_after_step_17_trainable_annotation_view_resumes: 17,
    stopped_after_step_18_trainable_example_view_resumes: 18,
    stopped_after_step_19_trainable_copy_resumes: 19,
    stopped_after_step_20_joined_view_resumes: 20,
    stopped_after_step_21_drop_annotation_view_resumes: 21,
    stopped_after_step_22_drop_example_view_resumes: 22,
    stopped_after_step_23_drop_annotated_table_end_of_0003_resumes: 23,
}

/// The upgrade of a hand-applied install (`tests/fixtures/installs/v2_float32.sql`:
/// plain view for the materialized view, `confidence Float32`) stopped after a step
/// (its repairs before the migrations, statements of both migrations, the repairs
/// after them): the next plain migrate must finish the upgrade, as it would have
/// without the fault.
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_of_a_hand_applied_install_stopped_after_a_step_resumes() {
    async fn hand_applied(label: &str) -> (TestDb, Truth) {
        let db = TestDb::with_logs(label).await;
        insert(&db.client, &log_rows()).await;
        db.exec(&history_sql(HISTORY)).await;
        db.apply_fixture("installs/v2_float32.sql").await;
        let marks = marks();
        db.exec(&annotations_insert(&marks)).await;
        let truth = truth(&db, HISTORY, marks.len()).await;
        (db, truth)
    }
    let (db, truth) = hand_applied("upstop_ref").await;
    let upgrade = db.rvbbit(&["training", "migrate"]);
    upgrade.expect_code(0);
    let reference = schema(&db).await;
    assert_converged_to(&db, &truth, &reference, "the upgrade without fault").await;
    db.drop().await;

    // The steps of the upgrade: the repairs before the migrations, every step of every
    // migration (as on a fresh install), the repairs after them. The repairs are read
    // from what the upgrade without fault said it did.
    let actions: Vec<&str> = upgrade
        .stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            [
                "repaired ",
                "created ",
                "exists ",
                "ran ",
                "skipped ",
                "replaced ",
            ]
            .iter()
            .any(|a| l.starts_with(a))
        })
        .collect();
    let before = actions
        .iter()
        .take_while(|l| l.starts_with("repaired "))
        .count() as u32;
    let after = actions
        .iter()
        .rev()
        .take_while(|l| l.starts_with("repaired "))
        .count() as u32;
    assert!(
        before >= 2 && after >= 1,
        "the upgrade repairs before and after the migrations:\n{}",
        upgrade.stdout
    );
    let steps_of = migration_steps();
    let (s1, s2) = (steps_of[0], steps_of[1]);
    let last = before + fresh_steps();

    let mut failures = Vec::new();
    // A repair before the migrations, the first statement of 0001, its backfill, the
    // first and last statements of 0002 (skipped: 0003 replaces its objects), the first
    // and last statements of the last migration, the repair after the migrations.
    let steps: Vec<u32> = vec![
        2,
        before + 1,
        before + s1,
        before + s1 + 1,
        before + s1 + s2,
        before + s1 + s2 + 1,
        last,
        last + 1,
    ];
    for &n in &steps {
        let (db, truth) = hand_applied(&format!("upstop{n}")).await;
        let stopped = rvbbit_tests::run(
            rvbbit()
                .args([
                    "training",
                    "migrate",
                    "--url",
                    &db.url,
                    "--database",
                    &db.name,
                ])
                .env("RVBBIT_TRAINING_FAILPOINT", format!("exit-after-step:{n}")),
        );
        stopped.expect_code(137);
        let resumed = db.rvbbit(&["training", "migrate"]);
        if resumed.code == 0 {
            assert_converged_to(
                &db,
                &truth,
                &reference,
                &format!("upgrade stopped after step {n}"),
            )
            .await;
        } else {
            let output = resumed.all();
            let failed: Vec<&str> = output
                .lines()
                .filter(|l| l.contains("FAIL") || l.starts_with("error:"))
                .map(str::trim)
                .collect();
            failures.push(format!(
                "stopped after step {n}: the next migrate exits {}: {}",
                resumed.code,
                failed.join(" | ")
            ));
        }
        db.drop().await;
    }
    assert!(
        failures.is_empty(),
        "an interrupted upgrade is not finished by the next migrate:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// 2. The server killed mid-migrate, restarted on its data.

/// Starts `migrate` on `db`, kills the engine as soon as the migrate prints a line
/// containing `marker` (on stdout or stderr), and returns what the migrate printed.
fn kill_engine_at(db: &TestDb, engine: &mut std::process::Child, marker: &str) -> Run {
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

async fn server_killed_mid_migrate(label: &str, marker: &str, in_progress: u32) {
    let dir = std::env::temp_dir().join(format!("rvbbit-ledger-{label}-{}", std::process::id()));
    remove_private_engine(&dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut engine = start_private_engine(port, &dir);
    let db = TestDb::with_logs_on(&url, label).await;
    // Enough history (4000 rows a month) for the backfill to run long enough to be cut.
    let truth = seed(&db, 44_000).await;

    let killed = kill_engine_at(&db, &mut engine, marker);
    assert_eq!(
        killed.code, 3,
        "the migrate fails when its server dies:\n{}{}",
        killed.stdout, killed.stderr
    );
    assert_eq!(
        killed
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one clear message:\n{}",
        killed.stderr
    );
    assert!(!killed.stderr.contains("panicked"), "{}", killed.stderr);

    let mut engine = start_private_engine(port, &dir);
    let db = db.reconnect();
    let status = status(&db);
    let states: Vec<(u64, String)> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_u64().unwrap(),
                m["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(u64::from(in_progress), "in progress".to_string())),
        "migration {in_progress} is left in progress: {status:#}"
    );
    // A restarted engine on a loaded machine can be slow to answer its first statements:
    // this test is about resuming, so it gives each request more than the default 30 s.
    let rerun = db.rvbbit(&["training", "migrate", "--timeout", "180"]);
    assert_eq!(
        rerun.code,
        0,
        "the migrate after the restart; stdout:\n{}\nstderr:\n{}\nthe engine's log (last 60 lines):\n{}",
        rerun.stdout,
        rerun.stderr,
        private_engine_log(&dir, 60)
    );
    assert!(
        rerun
            .stdout
            .contains(&format!("resuming: migration {in_progress:04}_")),
        "{}",
        rerun.stdout
    );
    assert_converged(&db, &truth, &format!("server killed at {marker:?}")).await;
    db.drop().await;
    let _ = engine.kill();
    let _ = engine.wait();
    remove_private_engine(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_the_backfill_is_resumed_after_its_restart() {
    server_killed_mid_migrate("killed_backfill", "log rows scanned (1/", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_migration_2_is_resumed_after_its_restart() {
    // Its statements that make objects 0003 drops are skipped: its index is what it sends.
    server_killed_mid_migrate(
        "killed_0002",
        "created  index idx_trace_id on training_examples",
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_migration_3_is_resumed_after_its_restart() {
    server_killed_mid_migrate(
        "killed_0003",
        "created  table training_trainable_examples",
        3,
    )
    .await;
}

// ---------------------------------------------------------------------------------
// 3. Three migrates at once.

#[tokio::test(flavor = "multi_thread")]
async fn three_migrates_at_once_apply_each_migration_once() {
    let (db, truth) = seeded("three").await;
    let children: Vec<std::process::Child> = (0..3)
        .map(|_| db.spawn_rvbbit(&["training", "migrate"]))
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from_output(c.wait_with_output().unwrap()))
        .collect();
    for run in &runs {
        run.expect_code(0);
    }
    let all: String = runs.iter().map(Run::all).collect();
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("waiting: another migrate on host")),
        "at least one waited for another:\n{all}"
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r.stdout.contains("created  table training_examples"))
            .count(),
        1,
        "exactly one run created the schema:\n{all}"
    );
    // Every ledger row of a migration was written by one process, and it was applied once.
    let writers: Vec<Writers> = db
        .rows(&format!(
            "SELECT version, countIf(status = 'applied') AS applied, groupUniqArray(pid) AS pids \
             FROM {LEDGER} WHERE plugin = 'training' GROUP BY version ORDER BY version"
        ))
        .await;
    assert_eq!(writers.len(), migration_steps().len(), "{writers:?}");
    for w in &writers {
        assert_eq!(
            w.applied, 1,
            "migration {} applied more than once: {writers:?}",
            w.version
        );
        assert_eq!(
            w.pids.len(),
            1,
            "migration {} run by several processes: {writers:?}",
            w.version
        );
        assert!(pids.contains(&w.pids[0]), "{writers:?} not by {pids:?}");
    }
    let lease = status(&db)["lease"].clone();
    assert_eq!(lease, Value::Null, "every lease was released: {lease:#}");
    assert_converged(&db, &truth, "three migrates at once").await;
    db.drop().await;
}

/// Who wrote the ledger rows of one migration.
#[derive(clickhouse::Row, serde::Deserialize, Debug)]
struct Writers {
    version: u32,
    applied: u64,
    pids: Vec<u32>,
}

// ---------------------------------------------------------------------------------
// 4. A lease held by another host.

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_held_by_another_host_makes_migrate_wait_then_give_up() {
    let (db, truth) = seeded("lease").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'build-7-4242-1', 'build-7', 4242, now64(6), now64(6) + toIntervalSecond(300), 0)"
    ))
    .await;
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;

    let busy = db.rvbbit(&["training", "migrate", "--wait", "1"]);
    busy.expect_code(9);
    assert!(
        busy.stderr
            .contains("waiting: another migrate on host build-7 (pid 4242), running since"),
        "{}",
        busy.stderr
    );
    let error: Vec<&str> = busy
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(error.len(), 1, "{}", busy.stderr);
    assert!(
        error[0].contains("host build-7 (pid 4242)")
            && error[0].contains(&db.name)
            && error[0].contains("after 1 s of waiting; nothing was changed"),
        "{}",
        error[0]
    );
    assert_eq!(schema(&db).await, schema_before, "a definition changed");
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "the ledger changed"
    );

    let status = status(&db);
    let lease = &status["lease"];
    assert_eq!(lease["host"], "build-7", "{status:#}");
    assert_eq!(lease["pid"], 4242, "{status:#}");
    assert_eq!(lease["token"], "build-7-4242-1", "{status:#}");
    let expires_in = lease["expires_in"].as_i64().unwrap();
    assert!((1..=300).contains(&expires_in), "{status:#}");
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(
        table
            .stdout
            .contains("in progress: migrate on host build-7 (pid 4242)"),
        "{}",
        table.stdout
    );

    // A run with time to wait waits: it is still waiting when the holder gives the lease
    // back, and then takes it and finishes (one that gave up at once would exit 9).
    let mut waiter = db.spawn_rvbbit(&["training", "migrate", "--wait", "120"]);
    let mut waiter_err = BufReader::new(waiter.stderr.take().expect("piped stderr"));
    let mut stderr = String::new();
    while !stderr.contains("waiting: another migrate on host build-7 (pid 4242)") {
        let read = waiter_err
            .read_line(&mut stderr)
            .expect("read migrate's stderr");
        assert!(
            read > 0,
            "migrate --wait 120 ended without waiting for build-7:\n{stderr}"
        );
    }
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'build-7-4242-1', 'build-7', 4242, now64(6), now64(6) + toIntervalSecond(300), 1)"
    ))
    .await;
    waiter_err
        .read_to_string(&mut stderr)
        .expect("read migrate's stderr");
    let waited = waiter.wait_with_output().expect("migrate ends");
    let waited = Run {
        code: waited.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&waited.stdout).into_owned(),
        stderr,
    };
    waited.expect_code(0);
    assert!(!waited.stderr.contains("error:"), "{}", waited.stderr);
    assert_eq!(status_lease(&db), Value::Null);

    // Claimed by a process of this host that is gone: the dead claim is broken at once.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'dead-claim', '{}', {dead_pid}, now64(6), now64(6) + toIntervalSecond(300), 0)",
        hostname()
    ))
    .await;
    let run = db.rvbbit(&["training", "migrate", "--wait", "1"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
    // The run broke the dead claim (released it for the dead process) instead of
    // waiting for it to expire.
    let dead_claim: Vec<(String, u32, u8)> = db
        .rows(&format!(
            "SELECT host, pid, released FROM {LEASES} FINAL WHERE token = 'dead-claim'"
        ))
        .await;
    assert_eq!(
        dead_claim,
        vec![(hostname(), dead_pid, 1)],
        "the dead claim was broken"
    );
    assert_eq!(status_lease(&db), Value::Null);
    assert_converged(&db, &truth, "after the lease").await;
    db.drop().await;
}

fn status_lease(db: &TestDb) -> Value {
    status(db)["lease"].clone()
}

// ---------------------------------------------------------------------------------
// 5. status.

/// `(version, name, sha256)` of each `migrations/NNNN_name.sql`, from `sha256sum`.
fn migration_files() -> Vec<(u64, String, String)> {
    let dir = repo_root().join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let out = std::process::Command::new("sha256sum")
                .arg(path)
                .output()
                .expect("sha256sum");
            let sum = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (version, name) = stem.split_once('_').unwrap();
            (version.parse().unwrap(), name.to_string(), sum)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_pending_then_applied_migrations_with_their_checksums() {
    let db = TestDb::with_logs("status").await;
    let files = migration_files();
    assert_eq!(files.len(), 3, "{files:?}");

    let fresh = status(&db);
    assert_eq!(fresh["database"], db.name);
    assert_eq!(fresh["up_to_date"], false);
    assert_eq!(fresh["lease"], Value::Null);
    let migrations = fresh["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), files.len());
    for (m, (version, name, sum)) in migrations.iter().zip(&files) {
        assert_eq!(m["version"], *version, "{m:#}");
        assert_eq!(m["name"], name.as_str(), "{m:#}");
        assert_eq!(m["state"], "pending", "{m:#}");
        assert_eq!(m["checksum"], sum.as_str(), "{m:#}");
        assert_eq!(m["applied_checksum"], Value::Null, "{m:#}");
    }
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(table.stdout.contains("not up to date"), "{}", table.stdout);

    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let applied = status(&db);
    assert_eq!(applied["up_to_date"], true, "{applied:#}");
    assert_eq!(applied["lease"], Value::Null, "{applied:#}");
    assert!(
        applied["server_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{applied:#}"
    );
    let migrations = applied["migrations"].as_array().unwrap();
    let totals = migration_steps();
    for ((m, (version, name, sum)), total) in migrations.iter().zip(&files).zip(totals) {
        assert_eq!(m["version"], *version, "{m:#}");
        assert_eq!(m["name"], name.as_str(), "{m:#}");
        assert_eq!(m["state"], "applied", "{m:#}");
        assert_eq!(m["checksum"], sum.as_str(), "the file's sha256: {m:#}");
        assert_eq!(m["applied_checksum"], sum.as_str(), "{m:#}");
        assert_eq!(m["steps_done"], total, "{m:#}");
        assert_eq!(m["steps_total"], total, "{m:#}");
        assert_eq!(m["host"], hostname(), "{m:#}");
        assert!(m["pid"].as_u64().is_some_and(|p| p > 0), "{m:#}");
        assert!(
            m["started_at"].is_string() && m["finished_at"].is_string(),
            "{m:#}"
        );
        assert!(m["duration_ms"].is_u64(), "{m:#}");
        assert_eq!(m["error"], Value::Null, "{m:#}");
    }
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(
        table.stdout.contains("up to date") && !table.stdout.contains("not up to date"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("no migrate in progress"),
        "{}",
        table.stdout
    );

    let missing = rvbbit_tests::run(rvbbit().args([
        "training",
        "status",
        "--url",
        &db.url,
        "--database",
        &format!("{}_absent", db.name),
    ]));
    missing.expect_code(6);
    db.drop().await;
}

// ---------------------------------------------------------------------------------
// 6. A checksum that no longer matches.

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_checksum_is_refused_then_recorded_by_repair() {
    let (db, truth) = seeded("checksum").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let file_sum = migration_files()[0].2.clone();
    let other = "abc".repeat(21) + "a";
    db.exec(&format!(
        "INSERT INTO {LEDGER} (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note) \
         SELECT plugin, version, name, '{other}', statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note FROM {LEDGER} FINAL WHERE plugin = 'training' AND version = 1"
    ))
    .await;
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;

    let refused = db.rvbbit(&["training", "migrate"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("checksum mismatch")
            && refused.stderr.contains("0001_universal_training_system")
            && refused.stderr.contains("abcabcabcabc")
            && refused.stderr.contains("Nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(schema(&db).await, schema_before, "a definition changed");
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "the ledger changed"
    );

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let failing: Vec<&str> = verify
        .stdout
        .lines()
        .filter(|l| l.contains("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("migrations applied")
            && failing[0].contains("0001_universal_training_system")
            && failing[0].contains("checksum"),
        "{}",
        verify.stdout
    );
    let state = status(&db);
    assert_eq!(
        state["migrations"][0]["state"], "checksum mismatch",
        "{state:#}"
    );
    assert_eq!(
        state["migrations"][0]["applied_checksum"], other,
        "{state:#}"
    );
    assert_eq!(state["up_to_date"], false, "{state:#}");

    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    let state = status(&db);
    let m = &state["migrations"][0];
    assert_eq!(m["state"], "applied", "{state:#}");
    assert_eq!(m["applied_checksum"], file_sum, "{state:#}");
    assert!(
        m["note"]
            .as_str()
            .is_some_and(|n| n.contains("abcabcabcabc") && n.contains("replaced")),
        "the note says the checksum was replaced: {m:#}"
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "--repair changed a definition"
    );
    assert_converged(&db, &truth, "after --repair recorded the checksum").await;

    // verify's advice must be something that helps: a plain migrate refuses a checksum
    // mismatch, so verify has to point at --repair (as status does).
    assert!(
        failing[0].contains("--repair"),
        "verify points at a command that refuses: {}",
        failing[0]
    );
    db.drop().await;
}

// ---------------------------------------------------------------------------------
// 7. Drift.

#[tokio::test(flavor = "multi_thread")]
async fn a_view_with_another_query_is_named_and_replaced_by_repair() {
    let (db, truth) = seeded("drift_view").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec(
        "CREATE OR REPLACE VIEW training_stats_by_cascade AS SELECT cascade_id, cell_name, \
         countIf(trainable) AS trainable_count, countIf(verified) AS verified_count, \
         avg(confidence) AS avg_confidence, count() AS total_executions \
         FROM training_examples_with_annotations WHERE cascade_id != 'support' GROUP BY cascade_id, cell_name",
    )
    .await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let failing: Vec<&str> = verify
        .stdout
        .lines()
        .filter(|l| l.contains("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("view training_stats_by_cascade")
            && failing[0].contains("query differs")
            && failing[0].contains("migrate --repair"),
        "{}",
        verify.stdout
    );
    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    assert!(
        repaired.stdout.contains("training_stats_by_cascade"),
        "--repair says what it repaired:\n{}",
        repaired.stdout
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "the view is as migrate made it"
    );
    assert_converged(&db, &truth, "view repaired").await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_materialized_view_comes_back_with_the_rows_logged_meanwhile() {
    let (db, truth) = seeded("drift_mv").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec("DROP VIEW training_examples_mv").await;
    // Logged while the view was missing; one of them annotated meanwhile.
    let late = ["late-1", "late-2", "late-3"];
    insert(
        &db.client,
        &late
            .iter()
            .map(|id| LogRow::simple(id, "support", "answer", "late question", "late answer"))
            .collect::<Vec<_>>(),
    )
    .await;
    let late_mark = Mark {
        notes: "annotated while the view was missing",
        ..mark("late-2", true, Some(0.88), "2025-06-01 08:00:00.000000")
    };
    db.exec(&annotations_insert(std::slice::from_ref(&late_mark)))
        .await;
    let mut truth = truth.with_examples(&late);
    truth.logs = db.logs_fingerprint().await;
    truth.annotations = db.snapshot_annotations().await;

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        verify
            .stdout
            .lines()
            .any(|l| l.contains("FAIL") && l.contains("training_examples_mv")),
        "{}",
        verify.stdout
    );
    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    assert_eq!(
        db.scalar::<String>(&format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'training_examples_mv'",
            db.name
        ))
        .await,
        "MaterializedView"
    );
    assert_eq!(schema(&db).await, schema_before);
    assert_converged(&db, &truth, "materialized view repaired").await;

    // And it works live again.
    insert(
        &db.client,
        &[LogRow::simple("live-1", "support", "answer", "q", "a")],
    )
    .await;
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_examples WHERE trace_id = 'live-1'")
            .await,
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_index_is_named_and_added_by_repair() {
    let (db, truth) = seeded("drift_index").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec("ALTER TABLE training_annotations DROP INDEX idx_verified")
        .await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let failing: Vec<&str> = verify
        .stdout
        .lines()
        .filter(|l| l.contains("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("table training_annotations")
            && failing[0].contains("index idx_verified missing"),
        "{}",
        verify.stdout
    );
    db.rvbbit(&["training", "migrate", "--repair"])
        .expect_code(0);
    let indexes: Vec<String> = db
        .rows(&format!(
            "SELECT name FROM system.data_skipping_indices WHERE database = '{}' AND table = 'training_annotations' ORDER BY name",
            db.name
        ))
        .await;
    assert_eq!(indexes, vec!["idx_trainable", "idx_verified"]);
    assert_eq!(schema(&db).await, schema_before);
    assert_converged(&db, &truth, "index repaired").await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_sorting_key_is_named_and_repair_refuses_to_rewrite_it() {
    let (db, truth) = seeded("drift_key").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    // training_trainable_examples is derived data: rebuilding it sorted by trace_id
    // alone, with the same rows, is a safe way to make this drift.
    db.exec(
        "CREATE TABLE tte_by_trace AS training_trainable_examples \
         ENGINE = ReplacingMergeTree(annotated_at) ORDER BY trace_id",
    )
    .await;
    db.exec("INSERT INTO tte_by_trace SELECT * FROM training_trainable_examples")
        .await;
    db.exec("EXCHANGE TABLES tte_by_trace AND training_trainable_examples")
        .await;
    db.exec("DROP TABLE tte_by_trace").await;
    let schema_before = schema(&db).await;
    let rows_before = raw_rows(&db, "training_trainable_examples").await;
    assert_eq!(rows_before.len(), truth.trainable_examples().len());

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let failing: Vec<&str> = verify
        .stdout
        .lines()
        .filter(|l| l.contains("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("table training_trainable_examples")
            && failing[0].contains("sorted by (trace_id)")
            && failing[0].contains("cascade_id, cell_name, trace_id"),
        "{}",
        verify.stdout
    );
    for args in [
        &["training", "migrate", "--repair"][..],
        &["training", "migrate"][..],
    ] {
        let refused = db.rvbbit(args);
        refused.expect_code(1);
        assert!(
            refused.stderr.contains("refusing")
                && refused.stderr.contains("training_trainable_examples")
                && refused.stderr.contains("rewrite")
                && refused.stderr.contains("Nothing was changed"),
            "{args:?}: {}",
            refused.stderr
        );
        assert_eq!(
            schema(&db).await,
            schema_before,
            "{args:?} changed a definition"
        );
        assert_eq!(
            raw_rows(&db, "training_trainable_examples").await,
            rows_before,
            "{args:?} changed rows"
        );
    }
    assert_eq!(db.logs_fingerprint().await, truth.logs);
    assert_eq!(db.snapshot_annotations().await, truth.annotations);
    db.drop().await;
}

// ---------------------------------------------------------------------------------
// 8. --dry-run.

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_statements_in_order_and_changes_nothing() {
    // A new database: every statement, in order, and nothing created, not even the ledger.
    let db = TestDb::with_logs("dry_fresh").await;
    let tables = table_names(&db).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    let mut at = 0;
    for needle in [
        "CREATE TABLE IF NOT EXISTS training_annotations",
        "ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_trainable",
        "ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_verified",
        "CREATE TABLE IF NOT EXISTS training_examples\n",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv",
        "CREATE VIEW IF NOT EXISTS training_examples_with_annotations",
        "CREATE VIEW IF NOT EXISTS training_stats_by_cascade",
        "backfill training_examples",
        "ALTER TABLE training_examples ADD INDEX IF NOT EXISTS idx_trace_id",
        "ALTER TABLE training_examples MATERIALIZE INDEX idx_trace_id",
        "table training_annotated_examples skipped: migration 0003 removes or replaces it",
        "materialized view training_annotated_examples_by_annotation_mv skipped: migration 0003",
        "materialized view training_annotated_examples_by_example_mv skipped: migration 0003",
        "rows of training_annotated_examples skipped: migration 0003",
        "view training_examples_with_annotations skipped: migration 0003",
        "CREATE TABLE IF NOT EXISTS training_trainable_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_annotation_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_example_mv",
        "INSERT INTO training_trainable_examples",
        "CREATE OR REPLACE VIEW training_examples_with_annotations",
        "DROP VIEW IF EXISTS training_annotated_examples_by_annotation_mv SYNC",
        "DROP VIEW IF EXISTS training_annotated_examples_by_example_mv SYNC",
        "DROP TABLE IF EXISTS training_annotated_examples SYNC",
    ] {
        let found = dry.stdout[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{}", dry.stdout));
        at += found + needle.len();
    }
    // What 0003 drops or replaces is named as skipped, and not printed.
    for statement in [
        "CREATE TABLE IF NOT EXISTS training_annotated_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_",
        "INSERT INTO training_annotated_examples",
    ] {
        assert!(
            !dry.stdout.contains(statement),
            "a statement that is skipped is not printed: {statement:?} in:\n{}",
            dry.stdout
        );
    }
    assert_eq!(
        dry.stdout
            .matches("CREATE OR REPLACE VIEW training_examples_with_annotations")
            .count(),
        1,
        "the joined view is replaced once, by 0003:\n{}",
        dry.stdout
    );
    assert_eq!(
        table_names(&db).await,
        tables,
        "--dry-run created something"
    );
    db.drop().await;

    // Annotations made before: their table is skipped, the rest printed.
    let (db, truth) = seeded("dry_seeded").await;
    let schema_before = schema(&db).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout
            .contains("table training_annotations exists, skipped"),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout
            .contains("CREATE TABLE IF NOT EXISTS training_annotations"),
        "a statement that is skipped is not printed:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "--dry-run changed something"
    );
    assert!(
        !table_names(&db)
            .await
            .iter()
            .any(|t| t.starts_with("_rvbbit")),
        "--dry-run created the ledger"
    );
    assert_eq!(db.snapshot_annotations().await, truth.annotations);

    // A migrated database: nothing to run, nothing written.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;
    let leases_before = raw_rows(&db, LEASES).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("nothing to run"), "{}", dry.stdout);
    assert!(
        !dry.stdout.contains("CREATE ") && !dry.stdout.contains("ALTER "),
        "{}",
        dry.stdout
    );
    assert_eq!(schema(&db).await, schema_before);
    assert_eq!(raw_rows(&db, LEDGER).await, ledger_before);
    assert_eq!(raw_rows(&db, LEASES).await, leases_before);
    db.drop().await;
}

// ---------------------------------------------------------------------------------
// 9. --cluster on a server without that cluster.

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_renders_on_cluster_and_fails_clearly_without_the_cluster() {
    let db = TestDb::with_logs("cluster").await;
    let tables = table_names(&db).await;

    let dry = db.rvbbit(&[
        "training",
        "migrate",
        "--cluster",
        "rvbbit_test_cluster",
        "--dry-run",
    ]);
    dry.expect_code(0);
    let statements: Vec<&str> = dry
        .stdout
        .split(";\n")
        .filter_map(|chunk| {
            chunk
                .lines()
                .find(|l| l.starts_with("CREATE ") || l.starts_with("ALTER "))
        })
        .collect();
    assert!(statements.len() >= 12, "{}", dry.stdout);
    for statement in &statements {
        assert!(
            statement.contains("ON CLUSTER 'rvbbit_test_cluster'"),
            "every DDL runs on the cluster: {statement}"
        );
    }
    assert!(
        dry.stdout
            .contains("ENGINE = ReplicatedReplacingMergeTree("),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains("ENGINE = ReplacingMergeTree"),
        "no table keeps a non-replicated engine:\n{}",
        dry.stdout
    );

    let run = rvbbit_tests::run(
        rvbbit()
            .args([
                "training",
                "migrate",
                "--cluster",
                "rvbbit_test_cluster",
                "--url",
                &db.url,
                "--database",
                &db.name,
            ])
            .env("RUST_BACKTRACE", "1"),
    );
    run.expect_code(7);
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "one clear line:\n{stderr}");
    assert!(
        stderr.starts_with("error:")
            && stderr.contains("rvbbit_test_cluster")
            && stderr.contains("ledger"),
        "names the cluster and the statement: {stderr}"
    );
    assert!(
        !run.all().contains("panicked") && !run.all().contains("backtrace"),
        "{}",
        run.all()
    );
    assert_eq!(
        table_names(&db).await,
        tables,
        "nothing is created when the cluster does not exist"
    );
    db.drop().await;
}
