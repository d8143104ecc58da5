//! `rvbbit training test-annotation`: the migration guide's post-migration test, made
//! safe. Describes `training_annotations`, inserts one annotation under a fresh test
//! trace id (or `--trace-id`), reads it back, checks the joined view answers, and
//! removes exactly the row it inserted (unless `--keep`). Every value travels as a
//! query parameter.

use super::{run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::failure::classified;
use crate::output::{self, OutputArgs};
use crate::say;
use crate::schema::{ANNOTATIONS, LOGS};
use anyhow::Context;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;

const JOINED_VIEW: &str = "training_examples_with_annotations";
const TEST_CONFIDENCE: f32 = 0.875;
const TEST_NOTES: &str = "inserted by rvbbit training test-annotation";

/// Insert a test annotation, read it back through the views, and remove it
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("write, read back and remove a test annotation", "rvbbit training test-annotation"), ("keep it, to see it in Studio", "rvbbit training test-annotation --keep")]))]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Annotate this trace id instead of a fresh test id (it must have no annotations yet)
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// Leave the test annotation in place
    #[arg(long)]
    pub keep: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn exec(args: Args) -> CommandResult {
    run(&args.connection, &args.output, |target| async move {
        let db = Db::connect(target).await?;
        test_annotation(&db, args.trace_id, args.keep, args.format).await
    })
}

rvbbit_plugin_api::register_command!(path: "training test-annotation", args: Args, run: exec);

#[derive(clickhouse::Row, serde::Deserialize, Debug)]
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

async fn count_rows(db: &Db, trace_id: &str, marker: Option<&str>) -> anyhow::Result<u64> {
    let sql = match marker {
        Some(_) => format!("SELECT count() FROM {ANNOTATIONS} WHERE trace_id = {{id:String}} AND annotated_by = {{by:String}}"),
        None => format!("SELECT count() FROM {ANNOTATIONS} WHERE trace_id = {{id:String}}"),
    };
    db.fetch_one::<u64>(
        db.query(&sql)
            .param("id", trace_id)
            .param("by", marker.unwrap_or_default()),
    )
    .await
    .with_context(|| format!("counting annotations of trace {trace_id:?}"))
}

/// The steps of the test: printed as they happen for people, collected for JSON.
#[derive(serde::Serialize)]
struct Outcome {
    trace_id: String,
    passed: bool,
    kept: bool,
    steps: Vec<Step>,
}

#[derive(serde::Serialize)]
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
            let mark = if ok {
                String::new()
            } else {
                format!("{} ", output::red("FAIL"))
            };
            say!("{step}. {mark}{detail}");
        }
        self.steps.push(Step { step, ok, detail });
    }
}

async fn test_annotation(
    db: &Db,
    trace_id: Option<String>,
    keep: bool,
    format: Format,
) -> anyhow::Result<i32> {
    let suffix = unique_suffix();
    let given = trace_id.is_some();
    let trace_id = trace_id.unwrap_or_else(|| format!("rvbbit-test-{suffix}"));
    // Marks the one row this run inserts, so cleanup can never touch another row.
    let marker = format!("rvbbit-test-annotation/{suffix}");
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
            .param("tags", vec!["rvbbit-test"])
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
        let expected = |a: &Annotation| {
            a.trace_id == trace_id
                && a.trainable
                && !a.verified
                && a.confidence == Some(TEST_CONFIDENCE)
                && a.notes == TEST_NOTES
                && a.tags == ["rvbbit-test"]
                && a.annotated_by == marker
        };
        let read_ok = back.len() == 1 && expected(&back[0]);
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
        let (view_ok, detail) = match joined.as_slice() {
            [] => (true, format!("{JOINED_VIEW} answers ({total} examples; trace {trace_id} is not an example, as expected for a test id)")),
            [(true, Some(c))] if *c == TEST_CONFIDENCE => {
                (true, format!("{JOINED_VIEW} answers and shows the example as trainable with confidence {c}"))
            }
            other => (false, format!("{JOINED_VIEW} shows {other:?} for trace {trace_id}, expected one trainable row")),
        };
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
            println!("{}", serde_json::to_string_pretty(&outcome)?);
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
