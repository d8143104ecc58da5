//! The logic behind `rvbbit training test-annotation`: the migration guide's
//! post-migration test, made safe. Describes `training_annotations`, inserts one
//! annotation under a fresh test trace id (or the one given), reads it back, checks the
//! joined view answers, and removes exactly the row it inserted (unless `keep`). Every
//! value travels as a query parameter; `commands/test_annotation.rs` only parses the
//! flags into [`TestAnnotationOptions`].

use crate::db::Db;
use crate::failure::classified;
use crate::output::{self, Format};
use crate::say;
use crate::schema::{ANNOTATIONS, LOGS};
use anyhow::Context;
use rvbbit_plugin_api::exit;

const JOINED_VIEW: &str = "training_examples_with_annotations";
const TEST_CONFIDENCE: f32 = 0.875;
const TEST_NOTES: &str = "inserted by rvbbit training test-annotation";
const TEST_TAG: &str = "rvbbit-test";

/// What `test-annotation` was asked to do, the flags of its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestAnnotationOptions {
    /// Annotate this trace (logged, not yet annotated) instead of a fresh test id.
    pub trace_id: Option<String>,
    /// Leave the test annotation in place.
    pub keep: bool,
    pub format: Format,
}

#[derive(clickhouse::Row, serde::Deserialize, Debug, Clone, PartialEq)]
struct Annotation {
    trace_id: String,
    trainable: bool,
    verified: bool,
    confidence: Option<f32>,
    notes: String,
    tags: Vec<String>,
    annotated_by: String,
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}

/// The trace id of a run not given one.
fn test_trace_id(suffix: &str) -> String {
    format!("rvbbit-test-{suffix}")
}

/// The `annotated_by` that marks the one row a run inserts, so cleanup can never
/// touch another row.
fn marker(suffix: &str) -> String {
    format!("rvbbit-test-annotation/{suffix}")
}

/// Counts a trace's annotations; with `marker`, only the row a run inserted.
fn count_sql(marker: Option<&str>) -> String {
    match marker {
        Some(_) => format!("SELECT count() FROM {ANNOTATIONS} WHERE trace_id = {{id:String}} AND annotated_by = {{by:String}}"),
        None => format!("SELECT count() FROM {ANNOTATIONS} WHERE trace_id = {{id:String}}"),
    }
}

async fn count_rows(db: &Db, trace_id: &str, marker: Option<&str>) -> anyhow::Result<u64> {
    db.fetch_one::<u64>(
        db.query(&count_sql(marker))
            .param("id", trace_id)
            .param("by", marker.unwrap_or_default()),
    )
    .await
    .with_context(|| format!("counting annotations of trace {trace_id:?}"))
}

/// Whether the rows read back are exactly the one inserted under `marker`.
fn read_back_ok(back: &[Annotation], trace_id: &str, marker: &str) -> bool {
    let expected = |a: &Annotation| {
        a.trace_id == trace_id
            && a.trainable
            && !a.verified
            && a.confidence == Some(TEST_CONFIDENCE)
            && a.notes == TEST_NOTES
            && a.tags == [TEST_TAG]
            && a.annotated_by == marker
    };
    back.len() == 1 && expected(&back[0])
}

/// What the joined view shows of the test trace (its `trainable` and `confidence`
/// rows), given the view's `total` count: whether that holds, and the step's words.
fn view_outcome(joined: &[(bool, Option<f32>)], total: u64, trace_id: &str) -> (bool, String) {
    match joined {
        [] => (true, format!("{JOINED_VIEW} answers ({total} examples; trace {trace_id} is not an example, as expected for a test id)")),
        [(true, Some(c))] if *c == TEST_CONFIDENCE => {
            (true, format!("{JOINED_VIEW} answers and shows the example as trainable with confidence {c}"))
        }
        other => (false, format!("{JOINED_VIEW} shows {other:?} for trace {trace_id}, expected one trainable row")),
    }
}

/// The steps of the test: printed as they happen for people, collected for JSON.
#[derive(serde::Serialize)]
struct Outcome {
    trace_id: String,
    passed: bool,
    kept: bool,
    steps: Vec<Step>,
}

#[derive(serde::Serialize, Debug, PartialEq)]
struct Step {
    step: usize,
    ok: bool,
    detail: String,
}

struct Steps {
    format: Format,
    steps: Vec<Step>,
}

impl Steps {
    fn record(&mut self, ok: bool, detail: String) {
        let step = self.steps.len() + 1;
        if self.format == Format::Table {
            // Broken at spaces to the width, below the step's number; then colored.
            let mark = if ok { "" } else { "FAIL " };
            let text = output::hanging(&format!("{mark}{detail}"), 3, output::width());
            let text = if ok {
                text
            } else {
                text.replacen("FAIL", &output::red("FAIL"), 1)
            };
            say!("{step}. {text}");
        }
        self.steps.push(Step { step, ok, detail });
    }
}

/// Runs the test; exit 0 when every step held, checks failed otherwise.
pub async fn test_annotation(db: &Db, options: &TestAnnotationOptions) -> anyhow::Result<i32> {
    let (keep, format) = (options.keep, options.format);
    let suffix = unique_suffix();
    let given = options.trace_id.is_some();
    let trace_id = options
        .trace_id
        .clone()
        .unwrap_or_else(|| test_trace_id(&suffix));
    let marker = marker(&suffix);
    let mut steps = Steps {
        format,
        steps: Vec::new(),
    };

    // 1. Describe.
    let described = db
        .fetch_all::<(String, String)>(db.query(&format!(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '{ANNOTATIONS}' ORDER BY position"
        )))
        .await
        .with_context(|| format!("describing {ANNOTATIONS}"))?;
    if described.is_empty() {
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            format!(
                "table {}.{ANNOTATIONS} does not exist; run `rvbbit training migrate` first",
                db.target.database
            ),
        ));
    }
    let columns: Vec<String> = described
        .iter()
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    steps.record(
        true,
        format!(
            "{ANNOTATIONS} has {} columns: {}",
            described.len(),
            columns.join(", ")
        ),
    );

    // A trace id given by hand is one rvbbit logged, as `annotate` requires: a typo
    // would otherwise pass as a test of a trace that does not exist.
    if given {
        let logged: u64 = db
            .fetch_one(
                db.query(&format!(
                    "SELECT count() FROM {LOGS} WHERE trace_id = {{id:String}}"
                ))
                .param("id", &trace_id),
            )
            .await
            .with_context(|| format!("looking trace {trace_id:?} up in {LOGS}"))?;
        if logged == 0 {
            return Err(classified(
                exit::MISSING_PREREQUISITE,
                format!("trace {trace_id:?} is not in {LOGS}; check the id (`rvbbit training examples --all` lists a cell's traces), or omit --trace-id to use a fresh test id"),
            ));
        }
    }

    // Never write next to real annotations: ReplacingMergeTree could merge ours over
    // theirs before we delete it.
    if count_rows(db, &trace_id, None).await? > 0 {
        return Err(classified(
            exit::USAGE,
            format!("trace {trace_id:?} already has annotations; test-annotation never writes next to real annotations. Omit --trace-id to use a fresh test id."),
        ));
    }

    // 2. Insert.
    let insert = format!(
        "INSERT INTO {ANNOTATIONS} (trace_id, trainable, verified, confidence, notes, tags, annotated_by) \
         SELECT {{id:String}}, true, false, {{confidence:Nullable(Float32)}}, {{notes:String}}, {{tags:Array(String)}}, {{by:String}}"
    );
    db.execute(
        db.query(&insert)
            .param("id", &trace_id)
            .param("confidence", TEST_CONFIDENCE)
            .param("notes", TEST_NOTES)
            .param("tags", vec![TEST_TAG])
            .param("by", &marker),
    )
    .await
    .with_context(|| format!("inserting a test annotation for trace {trace_id:?}"))?;
    steps.record(
        true,
        format!("inserted a test annotation for trace {trace_id}"),
    );

    // 3-4 run under Ctrl-C protection so the cleanup below always happens.
    let checks = async {
        let back = db
            .fetch_all::<Annotation>(
                db.query(&format!(
                    "SELECT trace_id, trainable, verified, confidence, notes, tags, annotated_by FROM {ANNOTATIONS} \
                     WHERE trace_id = {{id:String}} AND annotated_by = {{by:String}}"
                ))
                .param("id", &trace_id)
                .param("by", &marker),
            )
            .await
            .context("reading the test annotation back")?;
        let read_ok = read_back_ok(&back, &trace_id, &marker);
        steps.record(
            read_ok,
            if read_ok {
                format!("read it back: trainable=true verified=false confidence={TEST_CONFIDENCE} notes and tags intact")
            } else {
                format!("read back {back:?}, expected exactly the row inserted")
            },
        );
        let total = db
            .fetch_one::<u64>(db.query(&format!("SELECT count() FROM {JOINED_VIEW}")))
            .await
            .with_context(|| format!("querying {JOINED_VIEW}"))?;
        let joined = db
            .fetch_all::<(bool, Option<f32>)>(
                db.query(&format!("SELECT trainable, confidence FROM {JOINED_VIEW} WHERE trace_id = {{id:String}}"))
                    .param("id", &trace_id),
            )
            .await
            .with_context(|| format!("querying {JOINED_VIEW} for trace {trace_id:?}"))?;
        let (view_ok, detail) = view_outcome(&joined, total, &trace_id);
        steps.record(view_ok, detail);
        anyhow::Ok(read_ok && view_ok)
    };
    // `None`: interrupted by Ctrl-C.
    let outcome = tokio::select! {
        result = checks => result.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
    };

    // 5. Clean up, whatever happened above.
    let cleanup = if keep {
        steps.record(
            true,
            format!("kept the test annotation (--keep): trace_id={trace_id} annotated_by={marker}"),
        );
        Ok(())
    } else {
        match remove(db, &trace_id, &marker).await {
            Ok(()) => {
                steps.record(
                    true,
                    "removed the test annotation; no test row is left".into(),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    cleanup?;
    let Some(passed) = outcome? else {
        let left = if keep { "kept (--keep)" } else { "removed" };
        return Err(classified(
            exit::INTERRUPTED,
            format!("interrupted; the test annotation was {left}"),
        ));
    };
    match format {
        Format::Table => say!(
            "test-annotation: {}",
            if passed { "passed" } else { "FAILED" }
        ),
        Format::Json => {
            let outcome = Outcome {
                trace_id,
                passed,
                kept: keep,
                steps: steps.steps,
            };
            output::print_json(&outcome)?;
        }
    }
    Ok(if passed {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    })
}

async fn remove(db: &Db, trace_id: &str, marker: &str) -> anyhow::Result<()> {
    db.execute(
        db.query(&format!("DELETE FROM {ANNOTATIONS} WHERE trace_id = {{id:String}} AND annotated_by = {{by:String}}"))
            .param("id", trace_id)
            .param("by", marker)
            .with_setting("mutations_sync", "2"),
    )
    .await
    .with_context(|| format!("removing the test annotation of trace {trace_id:?} (annotated_by = {marker})"))?;
    crate::examples::recopy_trainable(db, trace_id).await?;
    let left = count_rows(db, trace_id, Some(marker)).await?;
    if left > 0 {
        return Err(classified(
            exit::SERVER_ERROR,
            format!("the test annotation of trace {trace_id:?} is still there after DELETE ({left} rows, annotated_by = {marker})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inserted(trace_id: &str, marker: &str) -> Annotation {
        Annotation {
            trace_id: trace_id.into(),
            trainable: true,
            verified: false,
            confidence: Some(TEST_CONFIDENCE),
            notes: TEST_NOTES.into(),
            tags: vec![TEST_TAG.into()],
            annotated_by: marker.into(),
        }
    }

    #[test]
    fn a_run_marks_its_row_with_its_own_suffix() {
        assert_eq!(test_trace_id("ab-1"), "rvbbit-test-ab-1");
        assert_eq!(marker("ab-1"), "rvbbit-test-annotation/ab-1");
        let (a, b) = (unique_suffix(), unique_suffix());
        assert!(a.ends_with(&format!("-{:x}", std::process::id())));
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'), "{a}");
        assert!(!b.is_empty());
    }

    #[test]
    fn cleanup_counts_only_the_marked_row() {
        assert!(count_sql(Some("m"))
            .ends_with("WHERE trace_id = {id:String} AND annotated_by = {by:String}"));
        assert!(count_sql(None).ends_with("WHERE trace_id = {id:String}"));
        assert!(count_sql(None).contains(&format!("FROM {ANNOTATIONS} ")));
    }

    #[test]
    fn the_read_back_holds_only_for_exactly_the_row_inserted() {
        let row = inserted("t", "m");
        assert!(read_back_ok(std::slice::from_ref(&row), "t", "m"));
        assert!(!read_back_ok(&[], "t", "m"));
        assert!(!read_back_ok(&[row.clone(), row.clone()], "t", "m"));
        assert!(!read_back_ok(
            std::slice::from_ref(&row),
            "t",
            "other marker"
        ));
        for changed in [
            Annotation {
                verified: true,
                ..row.clone()
            },
            Annotation {
                trainable: false,
                ..row.clone()
            },
            Annotation {
                confidence: None,
                ..row.clone()
            },
            Annotation {
                notes: String::new(),
                ..row.clone()
            },
            Annotation {
                tags: vec![],
                ..row.clone()
            },
            Annotation {
                trace_id: "u".into(),
                ..row.clone()
            },
        ] {
            assert!(
                !read_back_ok(std::slice::from_ref(&changed), "t", "m"),
                "{changed:?}"
            );
        }
    }

    #[test]
    fn the_view_holds_when_it_shows_nothing_or_the_trainable_example() {
        let (ok, detail) = view_outcome(&[], 12, "t");
        assert!(ok);
        assert_eq!(detail, format!("{JOINED_VIEW} answers (12 examples; trace t is not an example, as expected for a test id)"));
        let (ok, detail) = view_outcome(&[(true, Some(TEST_CONFIDENCE))], 12, "t");
        assert!(ok);
        assert!(detail.ends_with("shows the example as trainable with confidence 0.875"));
        for wrong in [
            vec![(false, Some(TEST_CONFIDENCE))],
            vec![(true, None)],
            vec![(true, Some(0.5))],
            vec![(true, Some(TEST_CONFIDENCE)), (true, Some(TEST_CONFIDENCE))],
        ] {
            let (ok, detail) = view_outcome(&wrong, 12, "t");
            assert!(!ok, "{wrong:?}");
            assert!(detail.ends_with("for trace t, expected one trainable row"));
        }
    }

    #[test]
    fn steps_are_numbered_in_order() {
        let mut steps = Steps {
            format: Format::Json,
            steps: Vec::new(),
        };
        steps.record(true, "one".into());
        steps.record(false, "two".into());
        let numbered: Vec<(usize, bool)> = steps.steps.iter().map(|s| (s.step, s.ok)).collect();
        assert_eq!(numbered, vec![(1, true), (2, false)]);
    }
}
