//! Conformance with rvbbit's own clients. Every query and write here is the text
//! rvbbit's code sends (`tests/support/rvbbit.rs`): the few-shot retrieval (three
//! strategies, min confidence, verified only), Studio's marking and un-marking
//! (`OPTIMIZE ... FINAL` after each batch), the confidence worker's one-row inserts
//! (automatic and on demand), the late cost mutation of `unified_logs`, and Studio's
//! Training API (grid with filters, search and paging; filter options; session view;
//! stats; "assess confidence", which picks the grid's traces for the on-demand
//! scorer, and the scorer's look-up of those scored already). It runs on a fresh database and on each install in rvbbit's history,
//! upgraded by `migrate`, and compares every answer with a ground truth computed in
//! this file from the rows the test wrote.

use rvbbit_tests::logs::py_json;
use rvbbit_tests::rvbbit::{self as client, now_micros, utc, GridFilters, Marking, Strategy};
use rvbbit_tests::TestDb;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where the database came from before `migrate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Install {
    Fresh,
    V1,
    V2Float32,
    V2Nullable,
    Runner031,
    /// A database this tool's previous release migrated (0001 and 0002 applied, the
    /// annotated examples copied by 0002), upgraded by 0003.
    Release0002,
}

impl Install {
    fn fixture(self) -> Option<&'static str> {
        match self {
            Install::Fresh | Install::Release0002 => None,
            Install::V1 => Some("installs/v1_visitparam.sql"),
            Install::V2Float32 => Some("installs/v2_float32.sql"),
            Install::V2Nullable => Some("installs/v2_nullable.sql"),
            Install::Runner031 => Some("installs/runner_031.sql"),
        }
    }
}

/// One `unified_logs` row as rvbbit logs it, with what the test knows about it.
#[derive(Clone, Debug)]
struct Log {
    trace_id: String,
    session_id: String,
    cascade_id: Option<String>,
    cell_name: String,
    role: &'static str,
    question: String,
    /// The reply's text; `None`: no `content_json`.
    answer: Option<String>,
    timestamp: String,
    caller_id: String,
    duration_ms: f64,
    /// As logged; the cost update may change it.
    model: Option<String>,
    cost: Option<f64>,
    tokens_in: Option<i32>,
    tokens_out: Option<i32>,
}

impl Log {
    fn is_example(&self) -> bool {
        self.role == "assistant"
            && self.cascade_id.as_deref().is_some_and(|c| !c.is_empty())
            && self.answer.as_deref().is_some_and(|a| !a.is_empty())
    }

    /// What the confidence worker scores: assistant rows with a reply and a request.
    fn is_scored(&self) -> bool {
        self.role == "assistant" && self.answer.as_deref().is_some_and(|a| !a.is_empty())
    }

    fn row(&self) -> Value {
        let request = json!({
            "model": "openai/gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a careful support agent."},
                {"role": "user", "content": self.question},
            ],
        });
        json!({
            "timestamp": self.timestamp,
            "timestamp_iso": self.timestamp.replace(' ', "T"),
            "session_id": self.session_id,
            "trace_id": self.trace_id,
            "caller_id": self.caller_id,
            "node_type": if self.role == "assistant" { "agent" } else { "user" },
            "role": self.role,
            "cascade_id": self.cascade_id,
            "cell_name": self.cell_name,
            "model": self.model,
            "duration_ms": self.duration_ms,
            "full_request_json": py_json(&request),
            "content_json": self.answer.as_ref().map(|a| py_json(&json!(a))),
        })
    }
}

/// One row of `training_annotations`, in the order written.
#[derive(Clone, Debug)]
struct Annotation {
    trace_id: String,
    trainable: bool,
    verified: bool,
    confidence: f64,
    notes: String,
    tags: Vec<String>,
    at: String,
    by: String,
}

/// What the test wrote, and the answers that follow from it.
struct Truth {
    logs: Vec<Log>,
    annotations: Vec<Annotation>,
    /// The clock of annotations: strictly increasing milliseconds.
    clock: i64,
    next_log: i64,
    /// Log rows made so far (also those not yet written).
    made: usize,
}

/// A trace's values as the joined view must show them.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    trace_id: String,
    session_id: String,
    cascade_id: String,
    cell_name: String,
    user_input: String,
    assistant_output: String,
    trainable: bool,
    verified: bool,
    confidence: Option<f32>,
    timestamp: String,
    model: Option<String>,
    cost: Option<f64>,
    caller_id: String,
}

impl Truth {
    fn new() -> Truth {
        let start = now_micros() - 3 * 3_600 * 1_000_000;
        Truth {
            logs: Vec::new(),
            annotations: Vec::new(),
            clock: (start + 3_600 * 1_000_000) / 1000,
            next_log: start,
            made: 0,
        }
    }

    fn tick(&mut self) -> String {
        self.clock += 7;
        let text = utc(self.clock * 1000);
        text[..text.len() - 3].to_string()
    }

    fn log(&mut self, trace: &str, session: &str, cascade: Option<&str>, cell: &str) -> Log {
        self.next_log += 1_000_123;
        let n = self.made;
        self.made += 1;
        Log {
            trace_id: trace.into(),
            session_id: session.into(),
            cascade_id: cascade.map(Into::into),
            cell_name: cell.into(),
            role: "assistant",
            question: format!("Question {n} about {trace}: can I get a refund for order #{n}?"),
            answer: Some(format!("Answer {n} for {trace}: yes, within 30 days.")),
            timestamp: utc(self.next_log),
            caller_id: if n.is_multiple_of(3) {
                String::new()
            } else {
                format!("caller-{}", n % 3)
            },
            duration_ms: 100.0 + n as f64,
            model: (!n.is_multiple_of(4)).then(|| "openai/gpt-4o-mini".to_string()),
            cost: None,
            tokens_in: None,
            tokens_out: None,
        }
    }

    fn latest(&self, trace: &str) -> Option<&Annotation> {
        // The latest annotated_at wins; of equal times, the row written last.
        let mut best: Option<&Annotation> = None;
        for a in self.annotations.iter().filter(|a| a.trace_id == trace) {
            if best.is_none_or(|b| a.at >= b.at) {
                best = Some(a);
            }
        }
        best
    }

    fn examples(&self) -> Vec<Expected> {
        self.logs
            .iter()
            .filter(|l| l.is_example())
            .map(|l| {
                let latest = self.latest(&l.trace_id);
                Expected {
                    trace_id: l.trace_id.clone(),
                    session_id: l.session_id.clone(),
                    cascade_id: l.cascade_id.clone().unwrap_or_default(),
                    cell_name: l.cell_name.clone(),
                    user_input: l.question.clone(),
                    assistant_output: l.answer.clone().unwrap_or_default(),
                    trainable: latest.is_some_and(|a| a.trainable),
                    verified: latest.is_some_and(|a| a.verified),
                    confidence: latest.map(|a| a.confidence as f32),
                    timestamp: l.timestamp.clone(),
                    model: l.model.clone(),
                    cost: l.cost,
                    caller_id: l.caller_id.clone(),
                }
            })
            .collect()
    }

    /// rvbbit's retrieval over the ground truth: trace ids in the order it returns them.
    fn retrieve(
        &self,
        strategy: Strategy,
        cascade: &str,
        cell: &str,
        limit: usize,
        min: f64,
        verified_only: bool,
    ) -> Vec<String> {
        let mut rows: Vec<Expected> = self
            .examples()
            .into_iter()
            .filter(|e| e.cascade_id == cascade && e.cell_name == cell && e.trainable)
            .filter(|e| {
                strategy == Strategy::HighConfidence
                    || e.confidence.is_some_and(|c| c >= min as f32)
            })
            .filter(|e| !e.user_input.is_empty() && !e.assistant_output.is_empty())
            .filter(|e| strategy == Strategy::Random || !verified_only || e.verified)
            .collect();
        match strategy {
            Strategy::Recent | Strategy::Random => {
                rows.sort_by(|a, b| b.timestamp.cmp(&a.timestamp))
            }
            Strategy::HighConfidence => rows.sort_by(|a, b| {
                b.confidence
                    .partial_cmp(&a.confidence)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(b.timestamp.cmp(&a.timestamp))
            }),
        }
        rows.truncate(limit);
        rows.into_iter().map(|e| e.trace_id).collect()
    }
}

/// Writes logs, then (like rvbbit 3-5 s later) their cost, then the confidence
/// worker's scores, one insert per message.
async fn log_and_score(db: &TestDb, truth: &mut Truth, logs: Vec<Log>) {
    let rows: Vec<String> = logs.iter().map(|l| l.row().to_string()).collect();
    db.exec(&format!(
        "INSERT INTO unified_logs FORMAT JSONEachRow\n{}",
        rows.join("\n")
    ))
    .await;
    let start = truth.logs.len();
    truth.logs.extend(logs);
    for i in start..truth.logs.len() {
        if truth.logs[i].role != "assistant" {
            continue;
        }
        cost_lands(db, truth, i).await;
    }
    wait_for_costs(db, &truth.logs[start..]).await;
    for i in start..truth.logs.len() {
        if !truth.logs[i].is_scored() {
            continue;
        }
        let trace = truth.logs[i].trace_id.clone();
        let score = ((i * 5) % 16) as f64 / 16.0;
        worker(db, truth, &trace, score, "confidence_worker").await;
    }
}

/// Waits until the cost updates of `logs` are visible (they are asynchronous
/// mutations, as rvbbit sends them).
async fn wait_for_costs(db: &TestDb, logs: &[Log]) {
    db.wait_for_mutations("unified_logs").await;
    let ids: Vec<String> = logs
        .iter()
        .filter(|l| l.role == "assistant")
        .map(|l| format!("'{}'", l.trace_id))
        .collect();
    if ids.is_empty() {
        return;
    }
    let sql = format!(
        "SELECT count() FROM unified_logs WHERE role = 'assistant' AND cost IS NULL AND trace_id IN ({})",
        ids.join(", ")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while db.scalar::<u64>(&sql).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cost updates did not land within 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The late cost update of log row `i` (not waited for).
async fn cost_lands(db: &TestDb, truth: &mut Truth, i: usize) {
    let log = &mut truth.logs[i];
    let cost = 0.000_25 * (i + 1) as f64;
    let (tokens_in, tokens_out) = (1000 + i as i32, 50 + i as i32);
    let model = "openai/gpt-4o-mini-2024-07-18";
    db.exec(&client::cost_update(
        &log.trace_id,
        cost,
        tokens_in,
        tokens_out,
        "openai",
        model,
    ))
    .await;
    log.cost = Some(cost);
    log.tokens_in = Some(tokens_in);
    log.tokens_out = Some(tokens_out);
    log.model = Some(model.into());
}

async fn worker(db: &TestDb, truth: &mut Truth, trace: &str, score: f64, by: &str) {
    let at = truth.tick();
    db.exec(&client::worker_insert(trace, score, &at, by)).await;
    truth.annotations.push(Annotation {
        trace_id: trace.into(),
        trainable: false,
        verified: false,
        confidence: score,
        notes: if by == "confidence_worker" {
            "Auto-assessed".into()
        } else {
            "On-demand assessment".into()
        },
        tags: Vec::new(),
        at,
        by: by.into(),
    });
}

/// One Studio marking batch (`mark_as_trainable`): an INSERT per trace, then
/// `OPTIMIZE TABLE training_annotations FINAL`.
// The parameters of rvbbit's `mark_as_trainable`, one for one.
#[allow(clippy::too_many_arguments)]
async fn mark(
    db: &TestDb,
    truth: &mut Truth,
    traces: &[&str],
    trainable: bool,
    verified: bool,
    confidence: Option<f64>,
    notes: &str,
    tags: &[&str],
) {
    let now = truth.tick();
    for trace in traces {
        let marking = Marking {
            trace_id: trace,
            trainable,
            verified,
            confidence,
            notes,
            tags,
            now: &now,
        };
        db.exec(&marking.sql()).await;
        truth.annotations.push(Annotation {
            trace_id: trace.to_string(),
            trainable,
            verified,
            confidence: marking.stored_confidence(),
            notes: notes.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            at: now.clone(),
            by: "human".into(),
        });
    }
    db.exec(client::OPTIMIZE_ANNOTATIONS).await;
}

/// One column of a query's rows as text, in the order the server sent them.
async fn column(db: &TestDb, sql: &str, key: &str) -> Vec<String> {
    db.json_rows(sql)
        .await
        .iter()
        .map(|r| text(r, key))
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn opt_f64(v: &Value, key: &str) -> Option<f64> {
    match &v[key] {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A grid row as Studio reads it, in the grid's columns.
fn grid_row(v: &Value) -> Expected {
    Expected {
        trace_id: text(v, "trace_id"),
        session_id: text(v, "session_id"),
        cascade_id: text(v, "cascade_id"),
        cell_name: text(v, "cell_name"),
        user_input: text(v, "user_input"),
        assistant_output: text(v, "assistant_output"),
        trainable: v["trainable"] == json!(true),
        verified: v["verified"] == json!(true),
        confidence: opt_f64(v, "confidence").map(|c| c as f32),
        timestamp: text(v, "timestamp"),
        model: match &v["model"] {
            Value::Null => None,
            m => Some(m.as_str().unwrap_or_default().to_string()),
        },
        cost: opt_f64(v, "cost"),
        caller_id: text(v, "caller_id"),
    }
}

async fn retrieval_matches(db: &TestDb, truth: &Truth, context: &str) {
    // The worker's scores reach the examples within 2 seconds (migration 6).
    db.settle_scores().await;
    for (cascade, cell) in [("support", "answer"), ("report", "summarise")] {
        for strategy in [Strategy::Recent, Strategy::HighConfidence, Strategy::Random] {
            for (limit, min, verified_only) in [(5, 0.8, false), (100, 0.5, true)] {
                let sql = client::retrieval(strategy, cascade, cell, limit, min, verified_only);
                let rows = db.json_rows(&sql).await;
                let mut got: Vec<String> = rows.iter().map(|r| text(r, "trace_id")).collect();
                let mut want =
                    truth.retrieve(strategy, cascade, cell, limit as usize, min, verified_only);
                if strategy == Strategy::Random {
                    // ORDER BY rand(): compare the sets (limit 5 picks any 5 of them).
                    if limit as usize >= want.len() {
                        got.sort();
                        want.sort();
                    } else {
                        let all =
                            truth.retrieve(strategy, cascade, cell, usize::MAX, min, verified_only);
                        assert_eq!(
                            got.len(),
                            limit as usize,
                            "{context}: {strategy:?} {cascade}/{cell} count"
                        );
                        assert!(
                            got.iter().all(|t| all.contains(t)),
                            "{context}: {strategy:?} {cascade}/{cell}: {got:?} not within {all:?}"
                        );
                        continue;
                    }
                }
                assert_eq!(
                    got, want,
                    "{context}: {strategy:?} {cascade}/{cell} limit {limit} min {min} verified {verified_only}"
                );
                let examples = truth.examples();
                for r in &rows {
                    let e = examples
                        .iter()
                        .find(|e| e.trace_id == text(r, "trace_id"))
                        .expect("a retrieved trace is an example");
                    assert_eq!(text(r, "user_input"), e.user_input, "{context}: user_input");
                    assert_eq!(
                        text(r, "assistant_output"),
                        e.assistant_output,
                        "{context}: assistant_output"
                    );
                    assert_eq!(
                        opt_f64(r, "confidence").map(|c| c as f32),
                        e.confidence,
                        "{context}: confidence"
                    );
                }
            }
        }
    }
}

/// (cascade_id, cell_name).
type Cell = (String, String);
/// (trainable_count, verified_count, avg_confidence, total_executions).
type StatsRow = (u64, u64, Option<f64>, u64);

async fn studio_matches(db: &TestDb, truth: &Truth, context: &str) {
    db.settle_scores().await;
    let examples = truth.examples();
    let filters: Vec<GridFilters> = vec![
        GridFilters::default(),
        GridFilters {
            cascade_ids: vec!["support"],
            ..Default::default()
        },
        GridFilters {
            cascade_ids: vec!["support", "report"],
            cell_names: vec!["answer", "summarise"],
            ..Default::default()
        },
        GridFilters {
            trainable: Some(true),
            ..Default::default()
        },
        GridFilters {
            trainable: Some(false),
            verified: Some(false),
            ..Default::default()
        },
        GridFilters {
            verified: Some(true),
            ..Default::default()
        },
        GridFilters {
            session_id: Some("sess-b"),
            ..Default::default()
        },
        GridFilters {
            search: Some("REFUND FOR ORDER #1"),
            ..Default::default()
        },
        GridFilters {
            search: Some("within 30"),
            trainable: Some(true),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut want: Vec<Expected> = examples
            .iter()
            .filter(|e| f.cascade_ids.is_empty() || f.cascade_ids.contains(&e.cascade_id.as_str()))
            .filter(|e| f.cell_names.is_empty() || f.cell_names.contains(&e.cell_name.as_str()))
            .filter(|e| f.session_id.is_none_or(|s| e.session_id == s))
            .filter(|e| f.trainable.is_none_or(|t| e.trainable == t))
            .filter(|e| f.verified.is_none_or(|v| e.verified == v))
            .filter(|e| {
                f.search.is_none_or(|s| {
                    let s = s.to_lowercase();
                    e.user_input.to_lowercase().contains(&s)
                        || e.assistant_output.to_lowercase().contains(&s)
                })
            })
            .filter(|e| !e.assistant_output.is_empty())
            .cloned()
            .collect();
        want.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        // Paging on the unfiltered grid; Studio's default page for the filters.
        let pages: &[(u32, u32)] =
            if f.cascade_ids.is_empty() && f.search.is_none() && f.trainable.is_none() {
                &[(100, 0), (3, 2)]
            } else {
                &[(100, 0)]
            };
        for &(limit, offset) in pages {
            let got: Vec<Expected> = db
                .json_rows(&f.grid(limit, offset))
                .await
                .iter()
                .map(grid_row)
                .collect();
            let page: Vec<Expected> = want
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .cloned()
                .collect();
            assert_eq!(
                got, page,
                "{context}: Studio grid {f:?} limit {limit} offset {offset}"
            );
        }
        // Studio's "assess confidence" queues the traces the grid shows, in its order.
        if let Some(sql) = f.assess_confidence_selection(500, 0) {
            let got = column(db, &sql, "trace_id").await;
            let queued: Vec<String> = want.iter().take(500).map(|e| e.trace_id.clone()).collect();
            assert_eq!(
                got, queued,
                "{context}: Studio's assess-confidence selection {f:?}"
            );
        }
    }

    // The on-demand scorer then skips the traces scored already (any annotation row
    // with a confidence; rvbbit's markings and scores always carry one).
    let mut queued: Vec<&str> = examples.iter().map(|e| e.trace_id.as_str()).collect();
    queued.push("trace-never-logged");
    let mut got = column(db, &client::already_assessed(&queued), "trace_id").await;
    got.sort();
    got.dedup();
    let mut scored: Vec<String> = examples
        .iter()
        .filter(|e| truth.latest(&e.trace_id).is_some())
        .map(|e| e.trace_id.clone())
        .collect();
    scored.sort();
    assert!(!scored.is_empty(), "{context}: the traffic scores examples");
    assert_eq!(
        got, scored,
        "{context}: the on-demand scorer's already-assessed read"
    );

    // Filter options.
    for (cascades, cells, trainable, search) in [
        (vec![], vec![], None, None),
        (vec!["support"], vec!["summarise"], None, None),
        (vec![], vec![], Some(true), None),
        (vec!["report"], vec![], None, Some("answer")),
    ] {
        let (cascade_sql, cell_sql) = client::filter_options(&cascades, &cells, trainable, search);
        let base = |e: &&Expected| {
            trainable.is_none_or(|t| e.trainable == t)
                && search.is_none_or(|s| {
                    e.user_input.to_lowercase().contains(s)
                        || e.assistant_output.to_lowercase().contains(s)
                })
        };
        let mut want_cascades: Vec<String> = examples
            .iter()
            .filter(base)
            .filter(|e| cells.is_empty() || cells.contains(&e.cell_name.as_str()))
            .map(|e| e.cascade_id.clone())
            .collect();
        want_cascades.sort();
        want_cascades.dedup();
        let mut want_cells: Vec<String> = examples
            .iter()
            .filter(base)
            .filter(|e| cascades.is_empty() || cascades.contains(&e.cascade_id.as_str()))
            .map(|e| e.cell_name.clone())
            .collect();
        want_cells.sort();
        want_cells.dedup();
        let got = column(db, &cascade_sql, "cascade_id").await;
        assert_eq!(got, want_cascades, "{context}: filter options (cascades)");
        let got = column(db, &cell_sql, "cell_name").await;
        assert_eq!(got, want_cells, "{context}: filter options (cells)");
    }

    // Session view: the grid's columns but caller_id, oldest first.
    for session in ["sess-a", "sess-b", "sess-c"] {
        let got: Vec<Expected> = db
            .json_rows(&client::session_logs(session))
            .await
            .iter()
            .map(|r| Expected {
                session_id: session.into(),
                caller_id: String::new(),
                ..grid_row(r)
            })
            .collect();
        let mut want: Vec<Expected> = examples
            .iter()
            .filter(|e| e.session_id == session)
            .map(|e| Expected {
                caller_id: String::new(),
                ..e.clone()
            })
            .collect();
        want.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        assert_eq!(got, want, "{context}: session view {session}");
    }

    // Every column, as people read the view by hand (`SELECT *`).
    let rows = db
        .json_rows("SELECT * FROM training_examples_with_annotations ORDER BY trace_id")
        .await;
    let mut want: Vec<&Log> = truth.logs.iter().filter(|l| l.is_example()).collect();
    want.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
    assert_eq!(rows.len(), want.len(), "{context}: SELECT * rows");
    for (row, log) in rows.iter().zip(want) {
        let latest = truth.latest(&log.trace_id);
        let tags: Vec<String> = row["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            (
                text(row, "trace_id"),
                text(row, "notes"),
                tags,
                text(row, "annotated_by"),
                text(row, "annotated_at").get(..23).map(str::to_string),
            ),
            (
                log.trace_id.clone(),
                latest.map(|a| a.notes.clone()).unwrap_or_default(),
                latest.map(|a| a.tags.clone()).unwrap_or_default(),
                latest.map(|a| a.by.clone()).unwrap_or_default(),
                latest.map(|a| a.at.clone()),
            ),
            "{context}: SELECT *: annotation of {}",
            log.trace_id
        );
        assert_eq!(
            (
                opt_f64(row, "tokens_in"),
                opt_f64(row, "tokens_out"),
                opt_f64(row, "duration_ms"),
                text(row, "node_type"),
                text(row, "role"),
            ),
            (
                log.tokens_in.map(f64::from),
                log.tokens_out.map(f64::from),
                Some(log.duration_ms),
                "agent".to_string(),
                "assistant".to_string(),
            ),
            "{context}: SELECT *: log values of {}",
            log.trace_id
        );
    }

    // Stats: per cascade and cell.
    let mut want: BTreeMap<Cell, (u64, u64, Vec<f64>, u64)> = BTreeMap::new();
    for e in &examples {
        let entry = want
            .entry((e.cascade_id.clone(), e.cell_name.clone()))
            .or_default();
        entry.0 += u64::from(e.trainable);
        entry.1 += u64::from(e.verified);
        if let Some(c) = e.confidence {
            entry.2.push(f64::from(c));
        }
        entry.3 += 1;
    }
    for (cascade, cell) in [
        (None, None),
        (Some("support"), None),
        (Some("support"), Some("answer")),
    ] {
        let rows = db.json_rows(&client::stats(cascade, cell)).await;
        let counts: Vec<u64> = rows
            .iter()
            .map(|r| opt_f64(r, "trainable_count").unwrap_or(-1.0) as u64)
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] >= w[1]),
            "{context}: stats ordered by trainable_count DESC: {counts:?}"
        );
        let got: BTreeMap<Cell, StatsRow> = rows
            .iter()
            .map(|r| {
                (
                    (text(r, "cascade_id"), text(r, "cell_name")),
                    (
                        opt_f64(r, "trainable_count").unwrap_or(-1.0) as u64,
                        opt_f64(r, "verified_count").unwrap_or(-1.0) as u64,
                        opt_f64(r, "avg_confidence"),
                        opt_f64(r, "total_executions").unwrap_or(-1.0) as u64,
                    ),
                )
            })
            .collect();
        let expected: BTreeMap<Cell, StatsRow> = want
            .iter()
            .filter(|((c, n), _)| cascade.is_none_or(|x| x == c) && cell.is_none_or(|x| x == n))
            .map(|(k, (t, v, cs, n))| {
                let avg = (!cs.is_empty()).then(|| cs.iter().sum::<f64>() / cs.len() as f64);
                (k.clone(), (*t, *v, avg, *n))
            })
            .collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "{context}: stats rows {got:?} vs {expected:?}"
        );
        for (key, (t, v, avg, n)) in &expected {
            let (gt, gv, gavg, gn) = got
                .get(key)
                .unwrap_or_else(|| panic!("{context}: no stats for {key:?}"));
            assert_eq!(
                (gt, gv, gn),
                (t, v, n),
                "{context}: stats counts of {key:?}"
            );
            match (avg, gavg) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() < 1e-6,
                    "{context}: avg confidence of {key:?}: {b} vs {a}"
                ),
                (None, None) => {}
                other => panic!("{context}: avg confidence of {key:?}: {other:?}"),
            }
        }
    }
}

/// The first batch of traffic: three sessions of two cascades, rows that are no
/// examples, the cost landing, the worker scoring everything, Studio marking.
async fn first_traffic(db: &TestDb, truth: &mut Truth) {
    let mut logs = Vec::new();
    for i in 0..5 {
        logs.push(truth.log(&format!("a-{i}"), "sess-a", Some("support"), "answer"));
    }
    for i in 0..2 {
        logs.push(truth.log(&format!("t-{i}"), "sess-a", Some("support"), "triage"));
    }
    for i in 0..3 {
        logs.push(truth.log(&format!("r-{i}"), "sess-c", Some("report"), "summarise"));
    }
    // Not examples: the user's turn, a reply outside any cascade, an empty reply.
    let mut user = truth.log("u-0", "sess-a", Some("support"), "answer");
    user.role = "user";
    logs.push(user);
    logs.push(truth.log("nc-0", "sess-x", None, "answer"));
    let mut empty = truth.log("e-0", "sess-a", Some("support"), "answer");
    empty.answer = Some(String::new());
    logs.push(empty);
    log_and_score(db, truth, logs).await;
    mark(
        db,
        truth,
        &["a-0", "a-1", "a-2"],
        true,
        false,
        None,
        "",
        &[],
    )
    .await;
    mark(
        db,
        truth,
        &["a-3"],
        true,
        true,
        Some(0.85),
        "Checked \"by\" Ana — it's right\nsecond line",
        &["gold", "billing"],
    )
    .await;
    mark(db, truth, &["r-0", "r-1"], true, true, Some(0.6), "", &[]).await;
    mark(db, truth, &["t-0"], true, false, Some(0.95), "", &["route"]).await;
    // Taken back.
    mark(db, truth, &["a-2"], false, false, None, "wrong policy", &[]).await;
}

/// Traffic after `migrate`: new sessions logged, costs landing, scored, marked,
/// re-marked, taken back, re-assessed on demand.
async fn second_traffic(db: &TestDb, truth: &mut Truth, context: &str) {
    let mut logs = Vec::new();
    for i in 0..5 {
        logs.push(truth.log(&format!("b-{i}"), "sess-b", Some("support"), "answer"));
    }
    logs.push(truth.log("r-9", "sess-c", Some("report"), "summarise"));
    log_and_score(db, truth, logs).await;

    // Mark once, retrieve at once.
    mark(db, truth, &["b-0"], true, false, None, "", &[]).await;
    let sql = client::retrieval(Strategy::Recent, "support", "answer", 5, 0.8, false);
    let got = column(db, &sql, "trace_id").await;
    assert_eq!(
        got.first().map(String::as_str),
        Some("b-0"),
        "{context}: a trace is retrieved as soon as it is marked: {got:?}"
    );

    mark(
        db,
        truth,
        &["b-1", "b-2"],
        true,
        true,
        Some(0.9),
        "",
        &["v"],
    )
    .await;
    mark(
        db,
        truth,
        &["a-1"],
        true,
        true,
        Some(0.99),
        "re-marked",
        &[],
    )
    .await;
    // Taken back: never retrieved again.
    mark(db, truth, &["b-2", "a-0"], false, false, None, "", &[]).await;
    for _ in 0..3 {
        for strategy in [Strategy::Recent, Strategy::HighConfidence, Strategy::Random] {
            let sql = client::retrieval(strategy, "support", "answer", 100, 0.0, false);
            let got = column(db, &sql, "trace_id").await;
            assert!(
                !got.contains(&"b-2".to_string()) && !got.contains(&"a-0".to_string()),
                "{context}: a trace taken back is never retrieved again ({strategy:?}): {got:?}"
            );
        }
    }
    // Studio's "assess confidence" with force: the worker overwrites the annotation
    // (trainable false) of a trainable trace.
    worker(db, truth, "r-1", 0.3, "confidence_worker_ondemand").await;
    // A trace taken back and marked again.
    mark(db, truth, &["a-2"], true, false, Some(0.82), "", &[]).await;
}

async fn conformance(install: Install) {
    let label = format!("conf_{install:?}").to_lowercase();
    let db = TestDb::with_logs(&label).await;
    let mut truth = Truth::new();
    let context = format!("{install:?}");
    match install.fixture() {
        Some(fixture) => {
            db.apply_fixture(fixture).await;
            first_traffic(&db, &mut truth).await;
            let run = db.rvbbit(&["training", "migrate"]);
            run.expect_code(0);
        }
        None if install == Install::Release0002 => {
            // As the previous release left it: 0001 and 0002 applied, nothing of 0003.
            let run = rvbbit_tests::run(
                rvbbit_tests::rvbbit()
                    .args([
                        "training",
                        "migrate",
                        "--url",
                        &db.url,
                        "--database",
                        &db.name,
                    ])
                    .env("RVBBIT_TRAINING_STOP_AFTER_MIGRATION", "2"),
            );
            run.expect_code(1);
            first_traffic(&db, &mut truth).await;
            let copied: u64 = db
                .scalar("SELECT count() FROM training_annotated_examples FINAL")
                .await;
            let annotated = truth
                .examples()
                .iter()
                .filter(|e| e.confidence.is_some())
                .count();
            assert_eq!(
                copied as usize, annotated,
                "0002 copied every annotated example"
            );
            let before = db.snapshot_annotations().await;
            db.rvbbit(&["training", "migrate"]).expect_code(0);
            assert_eq!(
                db.snapshot_annotations().await,
                before,
                "0003 kept every annotation"
            );
            let left: u64 = db
                .scalar(&format!(
                    "SELECT count() FROM system.tables WHERE database = '{}' AND name LIKE 'training_annotated_examples%'",
                    db.name
                ))
                .await;
            assert_eq!(left, 0, "0003 removed version 2's copy and its views");
        }
        None => {
            db.rvbbit(&["training", "migrate"]).expect_code(0);
            first_traffic(&db, &mut truth).await;
        }
    }
    // Retrieval right after the upgrade; Studio's queries once all traffic is in.
    retrieval_matches(&db, &truth, &format!("{context}, after the first traffic")).await;

    second_traffic(&db, &mut truth, &context).await;
    retrieval_matches(&db, &truth, &format!("{context}, after the second traffic")).await;
    studio_matches(&db, &truth, &format!("{context}, after the second traffic")).await;
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_a_fresh_install_right() {
    conformance(Install::Fresh).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_a_database_upgraded_from_version_2_right() {
    conformance(Install::Release0002).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_an_upgraded_v1_install_right() {
    conformance(Install::V1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_an_upgraded_v2_float32_install_right() {
    conformance(Install::V2Float32).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_an_upgraded_v2_nullable_install_right() {
    conformance(Install::V2Nullable).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rvbbit_and_studio_read_an_upgraded_runner_031_install_right() {
    conformance(Install::Runner031).await;
}

/// A trace marked before its cost lands (within rvbbit's 3-5 s) shows the cost as it
/// was when marked until the next `migrate`; `verify` reports it meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_cost_that_lands_after_the_marking_is_reported_and_caught_up() {
    let db = TestDb::with_logs("conf_late_cost").await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    let mut truth = Truth::new();
    let log = truth.log("late-0", "sess-l", Some("support"), "answer");
    db.exec(&format!(
        "INSERT INTO unified_logs FORMAT JSONEachRow\n{}",
        log.row()
    ))
    .await;
    truth.logs.push(log);
    mark(&db, &mut truth, &["late-0"], true, false, None, "", &[]).await;
    let grid = GridFilters {
        trainable: Some(true),
        ..Default::default()
    }
    .grid(100, 0);
    let before = db.json_rows(&grid).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["cost"], Value::Null, "no cost yet");

    cost_lands(&db, &mut truth, 0).await;
    wait_for_costs(&db, &truth.logs).await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout)
            .contains("1 trainable examples show an older model, cost"),
        "verify names the lagging example:\n{}",
        verify.stdout
    );
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    let after = db.json_rows(&grid).await;
    assert_eq!(
        opt_f64(&after[0], "cost"),
        truth.logs[0].cost,
        "migrate caught the cost up"
    );
    assert_eq!(text(&after[0], "model"), "openai/gpt-4o-mini-2024-07-18");
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.drop().await;
}
