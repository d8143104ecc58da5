//! `rvbbit training migrate` on installs applied by hand from the old training SQL
//! file (rvbbit's facts, "Installs that already exist"): it recognises them and
//! upgrades them in place, keeping every annotation value for value; `--dry-run` shows
//! the statements and changes nothing; a shape that cannot be upgraded without
//! rewriting the annotations is refused with nothing changed.
//!
//! Each shape is built by a fixture in `tests/fixtures/installs/`: rvbbit's own DDL,
//! unchanged. The annotations are written the way rvbbit writes them: the confidence
//! worker's one-row inserts for every assistant message, Studio's markings one INSERT
//! per trace with `OPTIMIZE TABLE training_annotations FINAL` after the batch,
//! re-markings, traces no longer in the log, and an on-demand assessment after the
//! last merge.

use rvbbit_tests::logs::{history_sql, insert, py_json, LogRow};
use rvbbit_tests::rvbbit::{self as client, now_ms, Marking as StudioMarking};
use rvbbit_tests::{AnnotationRow, TestDb};
use serde_json::{json, Value};

/// The hand-applied installs `migrate` upgrades.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// First version: visitParam* examples view, `confidence Float32 DEFAULT 1.0`.
    V1Visitparam,
    /// Second version: raw request / reply view, `confidence Float32 DEFAULT 1.0`.
    V2Float32,
    /// Second version: raw request / reply view, `confidence Nullable(Float32)`.
    V2Nullable,
    /// rvbbit's later migration runner (031): `Nullable(Float32) DEFAULT NULL`,
    /// indexes inline, `SETTINGS index_granularity = 8192`.
    Runner031,
}

impl Shape {
    fn fixture(self) -> &'static str {
        match self {
            Shape::V1Visitparam => "installs/v1_visitparam.sql",
            Shape::V2Float32 => "installs/v2_float32.sql",
            Shape::V2Nullable => "installs/v2_nullable.sql",
            Shape::Runner031 => "installs/runner_031.sql",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shape::V1Visitparam => "up_v1",
            Shape::V2Float32 => "up_v2f",
            Shape::V2Nullable => "up_v2n",
            Shape::Runner031 => "up_031",
        }
    }

    /// What the table stores for a confidence an INSERT leaves out or sends as null:
    /// the old `DEFAULT 1.0`, or NULL ("not assessed").
    fn unassessed(self) -> Option<f32> {
        match self {
            Shape::V1Visitparam | Shape::V2Float32 => Some(1.0),
            Shape::V2Nullable | Shape::Runner031 => None,
        }
    }
}

const CASCADE: &str = "support";
const CELL: &str = "answer";
/// Examples-to-be spread over eleven past months by `history_sql` (cascade `casc`).
const HISTORY: u64 = 120;
const TRICKY: &str = "He said \"ship it\" — it's 'done'\n\tnext line \\ naïve café 漢字 🐇";

/// The logs: examples of several shapes in `support`/`answer` and other cells, and
/// rows that are no examples (other roles, no cascade, no reply).
fn log_rows() -> Vec<LogRow> {
    vec![
        LogRow::simple(
            "s-1",
            CASCADE,
            CELL,
            "How do I get a refund?",
            "Open Billing, then Refunds.",
        ),
        LogRow::assistant(
            "s-2",
            CASCADE,
            CELL,
            json!([
                {"role": "system", "content": "You are a support agent."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "Can I cancel an order?"}
            ]),
            json!("Yes, within 24 hours."),
        ),
        LogRow::simple("s-3", CASCADE, CELL, TRICKY, TRICKY),
        LogRow::simple(
            "s-4",
            CASCADE,
            CELL,
            "Where is my parcel?",
            "Check the tracking page.",
        ),
        LogRow::simple("s-5", CASCADE, CELL, "Do you ship to Mars?", "Not yet."),
        LogRow::simple("s-6", CASCADE, CELL, "never annotated", "still an example"),
        LogRow::assistant(
            "s-7",
            CASCADE,
            CELL,
            json!([{"role": "user", "content": [
                {"type": "text", "text": "look at the chart"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "what is the trend?"}
            ]}]),
            json!("Upwards."),
        ),
        LogRow::assistant(
            "s-8",
            CASCADE,
            CELL,
            json!([{"role": "user", "content": "extract the customer"}]),
            json!({"name": "Zoë", "tags": ["vip", "eu"]}),
        ),
        LogRow::simple("s-9", CASCADE, CELL, "Is it waterproof?", "Up to 30 m."),
        LogRow::simple("t-1", CASCADE, "triage", "route this", "billing"),
        LogRow::simple(
            "r-1",
            "report",
            "summarise",
            "summarise Q3",
            "Revenue grew.",
        ),
        // No examples: the user's own row, no cascade, an empty cascade, empty and null
        // and missing replies.
        LogRow {
            role: "user".into(),
            ..LogRow::simple("s-1-user", CASCADE, CELL, "How do I get a refund?", "x")
        },
        LogRow {
            cascade_id: None,
            ..LogRow::simple("nc-1", "x", CELL, "outside any cascade", "an answer")
        },
        LogRow {
            cascade_id: Some(String::new()),
            ..LogRow::simple("nc-2", "x", CELL, "empty cascade", "an answer")
        },
        LogRow::assistant(
            "empty-reply",
            CASCADE,
            CELL,
            json!([{"role": "user", "content": "q"}]),
            json!(""),
        ),
        LogRow::assistant(
            "null-reply",
            CASCADE,
            CELL,
            json!([{"role": "user", "content": "q"}]),
            json!(null),
        ),
        LogRow {
            content_json: None,
            ..LogRow::simple("missing-reply", CASCADE, CELL, "q", "r")
        },
    ]
}

/// How many examples the logs make, counted by hand: s-1 to s-9, t-1 and r-1 (not the
/// user's row, the rows outside a cascade, nor the empty, null and missing replies),
/// and the history.
fn expected_examples() -> u64 {
    11 + HISTORY
}

/// One marking as Studio writes it. `confidence`: `None` is a marking without one
/// (Studio then sends 1.0), `Some(None)` sends null (as `annotate --clear-confidence`
/// does). `at`: `None` is now; earlier markings of a trace carry their past time.
/// `by` is kept only by the refused shapes' writes: Studio always writes 'human'.
struct Marking {
    trace_id: &'static str,
    trainable: bool,
    verified: bool,
    confidence: Option<Option<f32>>,
    notes: &'static str,
    tags: &'static [&'static str],
    by: &'static str,
    at: Option<&'static str>,
}

const NOTES: &str = "Checked with \"Finance\" — it's right;\nsecond line\ttab \\ back é 漢字 🐇";

fn markings() -> Vec<Marking> {
    let m = |trace_id, trainable, confidence, at| Marking {
        trace_id,
        trainable,
        verified: false,
        confidence,
        notes: "",
        tags: &[],
        by: "studio",
        at,
    };
    vec![
        // Annotated once.
        Marking {
            verified: true,
            notes: NOTES,
            tags: &["gold", "billing"],
            by: "ada",
            ..m("s-1", true, Some(Some(0.95)), None)
        },
        // Re-annotated three times; the latest withdraws it.
        Marking {
            notes: "looks right",
            tags: &["v1"],
            ..m(
                "s-2",
                true,
                Some(Some(0.9)),
                Some("2024-03-01 09:00:00.000001"),
            )
        },
        Marking {
            verified: true,
            ..m(
                "s-2",
                true,
                Some(Some(0.85)),
                Some("2024-03-02 10:30:00.250000"),
            )
        },
        Marking {
            notes: "wrong: the \"refund\" policy changed\nsee ticket #4 ✓",
            by: "grace",
            ..m("s-2", false, Some(Some(0.99)), None)
        },
        // Re-annotated: first not trainable, confidence left out; then trainable at 0.9.
        m("s-3", false, None, Some("2024-05-05 12:00:00.000000")),
        Marking {
            notes: "fixed after review",
            tags: &["fixed"],
            ..m("s-3", true, Some(Some(0.9)), None)
        },
        // Marked without a confidence: Studio sends 1.0.
        m("s-4", true, None, None),
        m("s-5", true, Some(Some(0.5)), None),
        m("s-7", true, Some(Some(0.85)), None),
        // Re-annotated with a higher confidence.
        m(
            "s-8",
            true,
            Some(Some(0.3)),
            Some("2024-06-01 08:00:00.000000"),
        ),
        Marking {
            tags: &["structured"],
            ..m("s-8", true, Some(Some(0.92)), None)
        },
        // Re-annotated with confidence null: 1.0 again in the Float32 shapes, NULL
        // (an older 0.95 must not show through) in the Nullable one.
        m(
            "s-9",
            true,
            Some(Some(0.95)),
            Some("2024-07-01 08:00:00.000000"),
        ),
        m("s-9", true, Some(None), None),
        // Another cell, a row that is no example, traces that are not in unified_logs.
        m("t-1", true, Some(Some(0.9)), None),
        m("nc-1", true, Some(Some(0.9)), None),
        Marking {
            tags: &["orphan"],
            ..m("ghost-1", true, Some(Some(1.0)), None)
        },
        m(
            "ghost-2",
            true,
            Some(Some(0.7)),
            Some("2024-01-01 00:00:00.000000"),
        ),
        Marking {
            notes: "trace deleted upstream",
            ..m("ghost-2", false, None, None)
        },
    ]
}

/// A stored annotation's values: (trace_id, trainable, confidence, notes, tags, annotated_by).
type Values = (String, bool, Option<f32>, String, Vec<String>, String);

/// Writes the annotations as rvbbit does: the worker's scores, Studio's markings and
/// `OPTIMIZE ... FINAL`, then an on-demand assessment. For the refused shapes (`shape`
/// None: rvbbit never made them), every marking goes in one JSONEachRow INSERT instead,
/// numeric ids with `trace_as_number`. What the table then holds is written out by
/// hand in `expected_stored`, not derived from these writes.
async fn annotate(db: &TestDb, shape: Option<Shape>, trace_as_number: bool) {
    if shape.is_none() {
        let rows: Vec<String> = markings()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut row = serde_json::Map::new();
                let id = if trace_as_number {
                    json!(1000 + i)
                } else {
                    json!(m.trace_id)
                };
                row.insert("trace_id".into(), id);
                row.insert("trainable".into(), json!(m.trainable));
                row.insert("verified".into(), json!(m.verified));
                if let Some(confidence) = m.confidence {
                    row.insert("confidence".into(), json!(confidence));
                }
                row.insert("notes".into(), json!(m.notes));
                row.insert("tags".into(), json!(m.tags));
                row.insert("annotated_by".into(), json!(m.by));
                if let Some(at) = m.at {
                    row.insert("annotated_at".into(), json!(at));
                }
                Value::Object(row).to_string()
            })
            .collect();
        db.exec(&format!(
            "INSERT INTO training_annotations SETTINGS optimize_on_insert = 0 FORMAT JSONEachRow\n{}",
            rows.join("\n")
        ))
        .await;
        return;
    }
    // 1. The confidence worker scored every assistant message with a reply when its
    //    session ended: one row per insert, trainable false.
    let scored: Vec<String> = log_rows()
        .iter()
        .filter(|r| {
            r.role == "assistant"
                && r.content_json
                    .as_deref()
                    .is_some_and(|c| !c.is_empty() && c != "\"\"")
        })
        .map(|r| r.trace_id.clone())
        .collect();
    for (i, trace) in scored.iter().enumerate() {
        let at = format!("2023-12-01 00:00:00.{i:03}");
        let score = (i % 8) as f64 / 8.0 + 0.0625;
        db.exec(&client::worker_insert(
            trace,
            score,
            &at,
            "confidence_worker",
        ))
        .await;
    }
    // 2. People marked traces in Studio: one INSERT per trace (confidence 1.0 when
    //    none is given), then OPTIMIZE ... FINAL. A confidence sent as null is what
    //    `rvbbit training annotate --clear-confidence` writes.
    for m in markings() {
        let at = m.at.map_or_else(now_ms, str::to_string);
        let marking = StudioMarking {
            trace_id: m.trace_id,
            trainable: m.trainable,
            verified: m.verified,
            confidence: m.confidence.flatten().map(f64::from),
            notes: m.notes,
            tags: m.tags,
            now: &at,
        };
        let mut sql = marking.sql();
        if m.confidence == Some(None) {
            sql = sql.replacen("1.0,", "NULL,", 1);
        }
        db.exec(&sql).await;
        // Distinct milliseconds for the markings made "now".
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    db.exec(client::OPTIMIZE_ANNOTATIONS).await;
    // 3. Studio's "assess confidence" on a trace nobody marked, after the merge: an
    //    unmerged row of its own.
    db.exec(&client::worker_insert(
        "s-6",
        0.4375,
        &now_ms(),
        "confidence_worker_ondemand",
    ))
    .await;
}

/// The annotation rows the table holds after `annotate`, written out by hand.
///
/// Upgradable shapes: one row per trace, its latest annotation (`OPTIMIZE ... FINAL`
/// merged the rest away), plus the on-demand row of s-6 written after the merge. The
/// worker scored the assistant rows with a reply in the order of `log_rows`, score
/// (i mod 8) / 8 + 1/16; Studio writes 'human' and 1.0 when no confidence is given.
/// Refused shapes: every marking as written, in order (numbered from 1000 with
/// `trace_as_number`), a confidence left out stored as NULL.
fn expected_stored(shape: Option<Shape>, trace_as_number: bool) -> Vec<Values> {
    let row =
        |trace: &str, trainable, confidence: Option<f32>, notes: &str, tags: &[&str], by: &str| {
            (
                trace.to_string(),
                trainable,
                confidence,
                notes.to_string(),
                tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                by.to_string(),
            )
        };
    let refund = "wrong: the \"refund\" policy changed\nsee ticket #4 ✓";
    let Some(shape) = shape else {
        let rows = [
            row("s-1", true, Some(0.95), NOTES, &["gold", "billing"], "ada"),
            row("s-2", true, Some(0.9), "looks right", &["v1"], "studio"),
            row("s-2", true, Some(0.85), "", &[], "studio"),
            row("s-2", false, Some(0.99), refund, &[], "grace"),
            row("s-3", false, None, "", &[], "studio"),
            row(
                "s-3",
                true,
                Some(0.9),
                "fixed after review",
                &["fixed"],
                "studio",
            ),
            row("s-4", true, None, "", &[], "studio"),
            row("s-5", true, Some(0.5), "", &[], "studio"),
            row("s-7", true, Some(0.85), "", &[], "studio"),
            row("s-8", true, Some(0.3), "", &[], "studio"),
            row("s-8", true, Some(0.92), "", &["structured"], "studio"),
            row("s-9", true, Some(0.95), "", &[], "studio"),
            row("s-9", true, None, "", &[], "studio"),
            row("t-1", true, Some(0.9), "", &[], "studio"),
            row("nc-1", true, Some(0.9), "", &[], "studio"),
            row("ghost-1", true, Some(1.0), "", &["orphan"], "studio"),
            row("ghost-2", true, Some(0.7), "", &[], "studio"),
            row(
                "ghost-2",
                false,
                None,
                "trace deleted upstream",
                &[],
                "studio",
            ),
        ];
        return rows
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                if trace_as_number {
                    r.0 = (1000 + i).to_string();
                }
                r
            })
            .collect();
    };
    // s-9's last marking sent a null confidence: the old DEFAULT 1.0 in the Float32
    // shapes, NULL in the Nullable ones.
    let s9 = match shape {
        Shape::V1Visitparam | Shape::V2Float32 => Some(1.0),
        Shape::V2Nullable | Shape::Runner031 => None,
    };
    vec![
        row(
            "s-1",
            true,
            Some(0.95),
            NOTES,
            &["gold", "billing"],
            "human",
        ),
        row("s-2", false, Some(0.99), refund, &[], "human"),
        row(
            "s-3",
            true,
            Some(0.9),
            "fixed after review",
            &["fixed"],
            "human",
        ),
        row("s-4", true, Some(1.0), "", &[], "human"),
        row("s-5", true, Some(0.5), "", &[], "human"),
        row(
            "s-6",
            false,
            Some(0.6875),
            "Auto-assessed",
            &[],
            "confidence_worker",
        ),
        row(
            "s-6",
            false,
            Some(0.4375),
            "On-demand assessment",
            &[],
            "confidence_worker_ondemand",
        ),
        row("s-7", true, Some(0.85), "", &[], "human"),
        row("s-8", true, Some(0.92), "", &["structured"], "human"),
        row("s-9", true, s9, "", &[], "human"),
        row("t-1", true, Some(0.9), "", &[], "human"),
        row(
            "r-1",
            false,
            Some(0.3125),
            "Auto-assessed",
            &[],
            "confidence_worker",
        ),
        row("nc-1", true, Some(0.9), "", &[], "human"),
        row(
            "nc-2",
            false,
            Some(0.5625),
            "Auto-assessed",
            &[],
            "confidence_worker",
        ),
        row(
            "null-reply",
            false,
            Some(0.6875),
            "Auto-assessed",
            &[],
            "confidence_worker",
        ),
        row("ghost-1", true, Some(1.0), "", &["orphan"], "human"),
        row(
            "ghost-2",
            false,
            Some(1.0),
            "trace deleted upstream",
            &[],
            "human",
        ),
    ]
}

/// A database with the logs, the hand-applied install of `fixture` and the annotations;
/// returns it with the annotation rows as stored.
async fn hand_applied(
    label: &str,
    fixture: &str,
    shape: Option<Shape>,
    trace_as_number: bool,
) -> (TestDb, Vec<AnnotationRow>) {
    let db = TestDb::with_logs(label).await;
    insert(&db.client, &log_rows()).await;
    db.exec(&history_sql(HISTORY)).await;
    db.apply_fixture(fixture).await;
    annotate(&db, shape, trace_as_number).await;
    let stored = db.snapshot_annotations().await;
    check_stored(fixture, &expected_stored(shape, trace_as_number), &stored);
    (db, stored)
}

/// The stored rows are the ones expected: the fixture and the writes behave as in the wild.
fn check_stored(fixture: &str, expected: &[Values], stored: &[AnnotationRow]) {
    let mut expected = expected.to_vec();
    let mut got: Vec<Values> = stored
        .iter()
        .map(|r| {
            (
                r.trace_id.clone(),
                r.trainable,
                r.confidence,
                r.notes.clone(),
                r.tags.clone(),
                r.annotated_by.clone(),
            )
        })
        .collect();
    let key = |a: &Values| format!("{a:?}");
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected, "{fixture}: stored annotations");
}

async fn engine_of(db: &TestDb, name: &str) -> String {
    db.scalar::<String>(&format!(
        "SELECT engine FROM system.tables WHERE database = '{}' AND name = '{name}'",
        db.name
    ))
    .await
}

async fn confidence_type(db: &TestDb) -> String {
    db.scalar::<String>(&format!(
        "SELECT type FROM system.columns WHERE database = '{}' AND table = 'training_annotations' AND name = 'confidence'",
        db.name
    ))
    .await
}

async fn example_counts(db: &TestDb) -> (u64, u64, u64) {
    let in_view: u64 = db
        .scalar("SELECT count() FROM training_examples_with_annotations")
        .await;
    let (stored, traces): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_current FINAL")
        .await;
    (in_view, stored, traces)
}

/// An example as `rvbbit training examples --format json` prints it.
#[derive(serde::Deserialize, Debug)]
struct Example {
    trace_id: String,
    user_input: String,
    assistant_output: String,
    confidence: Option<f32>,
}

/// `(trace_id, user_input, assistant_output, confidence)` of the examples rvbbit would
/// inject for `support`/`answer` at `min_confidence`, sorted by trace id.
fn retrieved(db: &TestDb, min_confidence: &str) -> Vec<(String, String, String, Option<f32>)> {
    let run = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        CASCADE,
        "--cell",
        CELL,
        "--limit",
        "100",
        "--min-confidence",
        min_confidence,
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let examples: Vec<Example> = serde_json::from_value(rvbbit_tests::json_data(&run))
        .unwrap_or_else(|e| {
            panic!(
                "examples --format json prints its rows ({e}):\n{}",
                run.stdout
            )
        });
    let mut out: Vec<_> = examples
        .into_iter()
        .map(|e| (e.trace_id, e.user_input, e.assistant_output, e.confidence))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What the retrieval must return after the upgrade: the latest annotation of each
/// trace decides, with the new parsing of the request and the reply.
fn expected_retrieval(
    shape: Shape,
    min_confidence: f32,
) -> Vec<(String, String, String, Option<f32>)> {
    let candidates: Vec<(&str, &str, String, Option<f32>)> = vec![
        (
            "s-1",
            "How do I get a refund?",
            "Open Billing, then Refunds.".into(),
            Some(0.95),
        ),
        // s-2: its latest annotation made it not trainable.
        ("s-3", TRICKY, TRICKY.into(), Some(0.9)),
        (
            "s-4",
            "Where is my parcel?",
            "Check the tracking page.".into(),
            // Marked without a confidence: Studio sends 1.0.
            Some(1.0),
        ),
        ("s-5", "Do you ship to Mars?", "Not yet.".into(), Some(0.5)),
        // s-6: only ever scored by the confidence worker.
        (
            "s-7",
            "look at the chart\nwhat is the trend?",
            "Upwards.".into(),
            Some(0.85),
        ),
        (
            "s-8",
            "extract the customer",
            py_json(&json!({"name": "Zoë", "tags": ["vip", "eu"]})),
            Some(0.92),
        ),
        (
            "s-9",
            "Is it waterproof?",
            "Up to 30 m.".into(),
            shape.unassessed(),
        ),
    ];
    candidates
        .into_iter()
        // rvbbit's filter: `confidence >= min`; a NULL confidence never qualifies.
        .filter(|(_, _, _, c)| c.is_some_and(|c| c >= min_confidence))
        .map(|(t, u, a, c)| (t.to_string(), u.to_string(), a, c))
        .collect()
}

fn assert_mentions(haystack: &str, needle: &str, what: &str) {
    assert!(
        haystack.to_lowercase().contains(&needle.to_lowercase()),
        "{what}: expected {needle:?} in:\n{haystack}"
    );
}

async fn upgrade_in_place(shape: Shape) {
    let (db, before) = hand_applied(shape.label(), shape.fixture(), Some(shape), false).await;
    let logs_before = db.logs_fingerprint().await;
    let logs_definition = db
        .definitions()
        .await
        .into_iter()
        .find(|(name, _)| name == "unified_logs");

    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(0);
    let output = run.all();
    assert_mentions(&output, "hand-applied", "migrate says what it found");
    assert_mentions(
        &output,
        "training_examples_mv",
        "migrate says what it changed",
    );

    // The annotations: every row, value for value.
    let after = db.snapshot_annotations().await;
    assert_eq!(after.len(), before.len(), "{shape:?}: annotation rows");
    assert_eq!(after, before, "{shape:?}: annotations changed");

    // The objects are the current ones.
    assert_eq!(
        engine_of(&db, "training_examples_current_by_log_mv").await,
        "MaterializedView"
    );
    // rvbbit's plain view of that name, which re-parsed the whole log on every read,
    // is gone.
    assert_eq!(
        db.scalar::<u64>(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}' AND name = 'training_examples_mv'",
            db.name
        ))
        .await,
        0
    );
    assert_eq!(
        engine_of(&db, "training_annotations").await,
        "ReplacingMergeTree"
    );
    assert_eq!(confidence_type(&db).await, "Nullable(Float32)");
    db.rvbbit(&["training", "verify"]).expect_code(0);

    // Every qualifying log row is an example, once.
    let expected = expected_examples();
    assert_eq!(
        example_counts(&db).await,
        (expected, expected, expected),
        "{shape:?}: examples (in the view, stored, distinct traces) against the logs"
    );

    // Retrieval sees the latest annotation of each trace.
    assert_eq!(
        retrieved(&db, "0.8"),
        expected_retrieval(shape, 0.8),
        "{shape:?}: default retrieval"
    );
    assert_eq!(
        retrieved(&db, "0"),
        expected_retrieval(shape, 0.0),
        "{shape:?}: retrieval at confidence 0"
    );

    // unified_logs untouched.
    assert_eq!(
        db.logs_fingerprint().await,
        logs_before,
        "unified_logs rows"
    );
    assert_eq!(
        db.definitions()
            .await
            .into_iter()
            .find(|(name, _)| name == "unified_logs"),
        logs_definition,
        "unified_logs definition"
    );

    // A second migrate changes nothing.
    let definitions = db.definitions().await;
    let again = db.rvbbit(&["training", "migrate"]);
    again.expect_code(0);
    assert_eq!(
        db.definitions().await,
        definitions,
        "{shape:?}: second migrate changed a definition"
    );
    assert_eq!(
        db.snapshot_annotations().await,
        before,
        "{shape:?}: second migrate changed annotations"
    );
    assert_eq!(
        example_counts(&db).await,
        (expected, expected, expected),
        "{shape:?}: second migrate changed the examples"
    );
    assert_eq!(
        db.logs_fingerprint().await,
        logs_before,
        "unified_logs rows"
    );
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_upgrades_the_first_version_visitparam_install() {
    upgrade_in_place(Shape::V1Visitparam).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_upgrades_the_second_version_float32_install() {
    upgrade_in_place(Shape::V2Float32).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_upgrades_the_second_version_nullable_install() {
    upgrade_in_place(Shape::V2Nullable).await;
}

async fn dry_run_changes_nothing(shape: Shape) {
    let label = format!("{}_dry", shape.label());
    let (db, before) = hand_applied(&label, shape.fixture(), Some(shape), false).await;
    let definitions = db.definitions().await;
    let logs_before = db.logs_fingerprint().await;

    let run = db.rvbbit(&["training", "migrate", "--dry-run"]);
    run.expect_code(0);
    let output = run.all();
    assert!(
        output.contains("CREATE ") || output.contains("ALTER "),
        "{shape:?}: --dry-run prints the statements it would run:\n{output}"
    );
    assert_mentions(
        &output,
        "training_examples_mv",
        "--dry-run names the view it would replace",
    );

    assert_eq!(
        db.definitions().await,
        definitions,
        "{shape:?}: --dry-run changed a definition"
    );
    assert_eq!(
        db.snapshot_annotations().await,
        before,
        "{shape:?}: --dry-run changed annotations"
    );
    assert_eq!(
        db.logs_fingerprint().await,
        logs_before,
        "unified_logs rows"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_upgrades_the_migration_runner_031_install() {
    upgrade_in_place(Shape::Runner031).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_on_the_first_version_install_changes_nothing() {
    dry_run_changes_nothing(Shape::V1Visitparam).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_on_the_second_version_float32_install_changes_nothing() {
    dry_run_changes_nothing(Shape::V2Float32).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_on_the_second_version_nullable_install_changes_nothing() {
    dry_run_changes_nothing(Shape::V2Nullable).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_on_the_migration_runner_031_install_changes_nothing() {
    dry_run_changes_nothing(Shape::Runner031).await;
}

/// A hand-applied install whose annotations table cannot be upgraded without
/// rewriting its data: refused, exit 1, with the reason named and nothing changed.
async fn refused(label: &str, fixture: &str, trace_as_number: bool, reason: &str) {
    let (db, before) = hand_applied(label, fixture, None, trace_as_number).await;
    let definitions = db.definitions().await;
    let logs_before = db.logs_fingerprint().await;

    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(1);
    assert_mentions(
        &run.stderr,
        "training_annotations",
        "the refusal names the table",
    );
    assert_mentions(&run.stderr, reason, "the refusal says why");
    assert_mentions(
        &run.stderr,
        "nothing was changed",
        "the refusal says nothing changed",
    );

    assert_eq!(
        db.definitions().await,
        definitions,
        "{fixture}: a definition changed"
    );
    assert_eq!(
        db.snapshot_annotations().await,
        before,
        "{fixture}: annotations changed"
    );
    assert_eq!(
        db.logs_fingerprint().await,
        logs_before,
        "unified_logs rows"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn annotations_in_a_plain_mergetree_sorted_by_trace_and_time_are_refused() {
    refused(
        "up_refuse_mt",
        "installs/unsupported_mergetree.sql",
        false,
        "MergeTree",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn annotations_with_numeric_trace_ids_are_refused() {
    refused(
        "up_refuse_u64",
        "installs/unsupported_uint64_trace_id.sql",
        true,
        "UInt64",
    )
    .await;
}
