//! The logic behind `rvbbit training export`: the curated examples as a dataset,
//! streamed from the server as it writes them (never the whole set in memory) to stdout
//! or to a file written atomically (a temporary file beside it, renamed once complete).
//! Three formats ([`Dataset`]): flat JSONL and Parquet, both formatted by the engine,
//! and OpenAI's chat fine-tuning JSONL, one record per example built here from the
//! request rvbbit logged ([`openai_record`]). `commands/export.rs` only parses the flags
//! into [`ExportOptions`].

use crate::db::Db;
use crate::failure::classified;
use crate::ops::backfill::terminal_bar;
use crate::ops::interrupt::Interrupt;
use crate::ops::selection::Selection;
use crate::output;
use crate::schema::LOGS;
use anyhow::Context;
use rvbbit_plugin_api::exit;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The view the export reads: what rvbbit's retrieval and Studio read.
const VIEW: &str = "training_examples_with_annotations";

/// The dataset's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dataset {
    /// One flat JSON object per example and line.
    #[default]
    Jsonl,
    /// OpenAI's chat fine-tuning format: `{"messages": [...]}` per line.
    Openai,
    /// Apache Parquet, written by the server.
    Parquet,
}

/// What `export` was asked for, the flags of its command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportOptions {
    pub dataset: Dataset,
    /// Cascade, cell and minimum confidence (export has no maximum).
    pub selection: Selection,
    pub verified_only: bool,
    /// Only examples logged at or after this time (any form ClickHouse's
    /// `parseDateTime64BestEffort` reads; UTC unless it says otherwise).
    pub since: Option<String>,
    /// Examples that are not trainable too (for evaluation sets).
    pub include_untrainable: bool,
    /// One example per distinct input (the earliest).
    pub dedupe: bool,
    /// Where to write; stdout when `None`.
    pub output: Option<PathBuf>,
}

/// An RFC 3339 UTC rendering of a DateTime64 column, in SQL.
fn rfc3339(column: &str) -> String {
    format!("formatDateTime({column}, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC')")
}

/// The export's query (values go in as parameters: `cascade`, `cell`,
/// `min_confidence`, `since`). Oldest first, ties by trace id: the same order every run.
pub fn export_sql(options: &ExportOptions) -> String {
    let mut conditions = vec!["user_input != ''", "assistant_output != ''"];
    conditions.extend(options.selection.conditions());
    if !options.include_untrainable {
        conditions.push("trainable");
    }
    if options.verified_only {
        conditions.push("verified");
    }
    if options.since.is_some() {
        conditions.push("timestamp >= parseDateTime64BestEffort({since:String}, 6, 'UTC')");
    }
    let dedupe = if options.dedupe {
        " LIMIT 1 BY user_input"
    } else {
        ""
    };
    format!(
        "SELECT trace_id, session_id, cascade_id, cell_name, user_input, assistant_output, \
         trainable, verified, confidence, notes, tags, annotated_by, \
         if(isNull(annotated_at), NULL, {annotated}) AS annotated_at, \
         {logged} AS timestamp, model \
         FROM (SELECT *, timestamp AS logged FROM {VIEW} WHERE {where} \
         ORDER BY logged, trace_id{dedupe}) \
         ORDER BY logged, trace_id",
        annotated = rfc3339("annotated_at"),
        logged = rfc3339("logged"),
        where = conditions.join(" AND "),
    )
}

/// The query of `--format openai`: each selected example (in [`export_sql`]'s order)
/// with the request rvbbit logged for it (`full_request_json` of its assistant row;
/// empty when the log no longer has it).
pub fn openai_sql(options: &ExportOptions) -> String {
    format!(
        "WITH selected AS ({examples}) \
         SELECT e.trace_id AS trace_id, e.user_input AS user_input, \
         e.assistant_output AS assistant_output, ifNull(r.request, '') AS request \
         FROM selected AS e \
         LEFT JOIN (SELECT trace_id, any(full_request_json) AS request FROM {LOGS} \
         WHERE role = 'assistant' AND trace_id IN (SELECT trace_id FROM selected) \
         GROUP BY trace_id) AS r ON r.trace_id = e.trace_id \
         ORDER BY e.timestamp, e.trace_id",
        examples = export_sql(options),
    )
}

/// One example of `--format openai`'s query.
#[derive(serde::Deserialize)]
struct OpenaiRow {
    user_input: String,
    assistant_output: String,
    request: String,
}

/// A message's text: a string as it is; a list of parts, its text parts joined by
/// newlines (images and other parts have no place in a text record); nothing else.
fn message_text(content: &serde_json::Value) -> Option<String> {
    match content {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// One message of a chat fine-tuning record (`role` first, as OpenAI writes them).
#[derive(serde::Serialize, Debug, PartialEq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// One line of `--format openai`.
#[derive(serde::Serialize, Debug, PartialEq)]
pub struct Record {
    pub messages: Vec<Message>,
}

/// The chat fine-tuning record of one example: the request's system, user and
/// assistant messages with text (tool calls and tool results, which need the tool
/// definitions, are left out), then the reply rvbbit logged. When the request is gone
/// or unreadable, or holds no user message, the example's input stands as the user
/// message.
pub fn openai_record(request: &str, user_input: &str, assistant_output: &str) -> Record {
    let parsed: serde_json::Value = serde_json::from_str(request).unwrap_or_default();
    let mut messages: Vec<Message> = Vec::new();
    for message in parsed["messages"].as_array().into_iter().flatten() {
        let role = match message["role"].as_str() {
            Some("system" | "developer") => "system",
            Some("user") => "user",
            Some("assistant") => "assistant",
            _ => continue,
        };
        match message_text(&message["content"]) {
            Some(content) if !content.is_empty() => messages.push(Message { role, content }),
            _ => {}
        }
    }
    if !messages.iter().any(|m| m.role == "user") {
        let at = messages.iter().take_while(|m| m.role == "system").count();
        let content = user_input.to_string();
        messages.insert(
            at,
            Message {
                role: "user",
                content,
            },
        );
    }
    messages.push(Message {
        role: "assistant",
        content: assistant_output.to_string(),
    });
    Record { messages }
}

/// Where the rows go: stdout, or a temporary file renamed to its name once complete.
enum Sink {
    Stdout(std::io::Stdout),
    File {
        file: std::fs::File,
        temporary: PathBuf,
        target: PathBuf,
    },
}

impl Sink {
    fn open(output: Option<&Path>) -> anyhow::Result<Sink> {
        let Some(target) = output else {
            return Ok(Sink::Stdout(std::io::stdout()));
        };
        let name = target.file_name().ok_or_else(|| {
            classified(
                exit::USAGE,
                format!("{} is not a file name", target.display()),
            )
        })?;
        let temporary = target.with_file_name(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::File::create(&temporary).map_err(|e| {
            classified(
                exit::USAGE,
                format!("cannot write {}: {e}", target.display()),
            )
        })?;
        Ok(Sink::File {
            file,
            temporary,
            target: target.to_path_buf(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    /// Completes the output: flushes stdout, or syncs the file and renames it.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut out) => out.flush().context("writing to stdout"),
            Sink::File {
                file,
                temporary,
                target,
            } => file
                .sync_all()
                .and_then(|()| std::fs::rename(&temporary, &target))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&temporary);
                    classified(
                        exit::USAGE,
                        format!("cannot write {}: {e}", target.display()),
                    )
                }),
        }
    }

    /// Gives up: a partial file is removed, the target left as it was.
    fn abandon(self) {
        if let Sink::File { temporary, .. } = self {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// The query of `options`, its values bound.
fn bound(db: &Db, sql: &str, options: &ExportOptions) -> clickhouse::query::Query {
    let mut query = options.selection.bind(db.query(sql));
    if let Some(since) = &options.since {
        query = query.param("since", since);
    }
    // `/` as itself: the server escapes it as `\/` by default (valid JSON, but not what
    // other tools write).
    query.with_setting("output_format_json_escape_forward_slashes", "0")
}

/// Streams the examples to the sink; returns how many were written.
async fn stream(
    db: &Db,
    options: &ExportOptions,
    sink: &mut Sink,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<u64> {
    let (sql, format) = match options.dataset {
        Dataset::Jsonl => (export_sql(options), "JSONEachRow"),
        Dataset::Openai => (openai_sql(options), "JSONEachRow"),
        Dataset::Parquet => (export_sql(options), "Parquet"),
    };
    let mut cursor = db.fetch_bytes(bound(db, &sql, options), format)?;
    let mut rows = 0u64;
    let mut stalled = false;
    // `--format openai`: the part of a line not yet complete.
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = db
        .next_chunk(&mut cursor)
        .await
        .with_context(|| format!("reading {VIEW}"))?
    {
        match options.dataset {
            Dataset::Jsonl => {
                let lines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                rows += lines;
                sink.write(&chunk).context("writing the export")?;
                if let Some(bar) = bar {
                    bar.inc(lines);
                }
            }
            Dataset::Parquet => sink.write(&chunk).context("writing the export")?,
            Dataset::Openai => {
                pending.extend_from_slice(&chunk);
                let complete = pending
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let mut out = Vec::new();
                for line in pending[..complete].split(|&b| b == b'\n') {
                    if line.is_empty() {
                        continue;
                    }
                    let row: OpenaiRow = serde_json::from_slice(line)
                        .context("reading an example the server sent")?;
                    serde_json::to_writer(
                        &mut out,
                        &openai_record(&row.request, &row.user_input, &row.assistant_output),
                    )?;
                    out.push(b'\n');
                    rows += 1;
                }
                pending.drain(..complete);
                sink.write(&out).context("writing the export")?;
                if let Some(bar) = bar {
                    bar.set_position(rows);
                }
            }
        }
        if !stalled {
            stalled = true;
            stall_failpoint().await;
        }
    }
    Ok(rows)
}

/// Test-only failpoint (debug builds): `RVBBIT_TRAINING_FAILPOINT=export-stall` waits a
/// minute once the first part is written, so that a test can press Ctrl-C mid-export.
async fn stall_failpoint() {
    if cfg!(debug_assertions)
        && std::env::var("RVBBIT_TRAINING_FAILPOINT").as_deref() == Ok("export-stall")
    {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

/// How many examples the export selects.
async fn count(db: &Db, options: &ExportOptions) -> anyhow::Result<u64> {
    let sql = format!("SELECT count() FROM ({})", export_sql(options));
    db.fetch_one::<u64>(bound(db, &sql, options)).await
}

/// Exports the examples, with a progress bar on a terminal; prints a summary on stderr
/// (unless quiet); exit 0. Ctrl-C stops it and leaves `-o FILE` as it was.
pub async fn export(db: &Db, options: &ExportOptions) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
    // The worker's latest scores first (they reach the examples within 2 seconds).
    crate::examples::settle_scores(db).await?;
    if options.dataset == Dataset::Parquet
        && options.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(classified(
            exit::USAGE,
            "--format parquet writes binary data, not for a terminal: give -o FILE or redirect stdout",
        ));
    }
    let place = options
        .output
        .as_ref()
        .map_or("stdout".to_string(), |p| p.display().to_string());
    // Parquet cannot be counted as it passes: counted first, as for the bar.
    let wants_bar = !output::quiet() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = if wants_bar || options.dataset == Dataset::Parquet {
        Some(count(db, options).await?)
    } else {
        None
    };
    let bar = total.and_then(|total| terminal_bar("export", total));
    // Ctrl-C is caught only when writing a file, to remove the temporary file: a
    // write to a stalled pipe blocks, and there Ctrl-C must stop the process as usual.
    let mut interrupt = match options.output {
        Some(_) => Some(Interrupt::new()?),
        None => None,
    };
    let mut sink = Sink::open(options.output.as_deref())?;
    let work = stream(db, options, &mut sink, bar.as_ref());
    let streamed = match interrupt.as_mut() {
        Some(interrupt) => {
            interrupt
                .race(work, || {
                    format!("interrupted: the export stopped; {place} was left as it was")
                })
                .await
        }
        None => work.await,
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match streamed {
        Ok(rows) => {
            sink.finish()?;
            let rows = if options.dataset == Dataset::Parquet {
                total.unwrap_or(rows)
            } else {
                rows
            };
            if !output::quiet() {
                eprintln!("exported {rows} example(s) to {place}");
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            sink.abandon();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_has_a_condition_per_filter_and_a_stable_order() {
        let plain = export_sql(&ExportOptions::default());
        assert!(plain.contains("WHERE user_input != '' AND assistant_output != '' AND trainable ORDER BY logged, trace_id)"), "{plain}");
        assert!(plain.ends_with("ORDER BY logged, trace_id"), "{plain}");
        assert!(!plain.contains("LIMIT 1 BY"), "{plain}");
        let all = export_sql(&ExportOptions {
            selection: Selection {
                cascade: Some("c".into()),
                cell: Some("x".into()),
                min_confidence: Some(0.5),
                max_confidence: None,
            },
            verified_only: true,
            since: Some("2026-11-01".into()),
            include_untrainable: true,
            dedupe: true,
            output: None,
            dataset: Dataset::Jsonl,
        });
        for part in [
            "cascade_id = {cascade:String}",
            "cell_name = {cell:String}",
            "verified",
            "confidence >= {min_confidence:Float32}",
            "parseDateTime64BestEffort({since:String}, 6, 'UTC')",
            "LIMIT 1 BY user_input",
        ] {
            assert!(all.contains(part), "{part} in {all}");
        }
        assert!(!all.contains("AND trainable"), "{all}");
    }

    #[test]
    fn an_openai_record_is_the_request_s_text_messages_then_the_reply() {
        use serde_json::json;
        let request = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "at this"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
            {"role": "tool", "content": "42", "tool_call_id": "1"},
            {"role": "assistant", "content": "it is 42"},
            {"role": "user", "content": "and so?"}
        ]})
        .to_string();
        assert_eq!(
            serde_json::to_value(openai_record(&request, "and so?", "so 42")).unwrap(),
            json!({"messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "look\nat this"},
                {"role": "assistant", "content": "it is 42"},
                {"role": "user", "content": "and so?"},
                {"role": "assistant", "content": "so 42"}
            ]})
        );
        // The request gone from the log, or without a user message: the input stands in.
        for request in [
            "",
            "not json",
            &json!({"messages": [{"role": "system", "content": "s"}]}).to_string(),
        ] {
            let record =
                serde_json::to_value(openai_record(request, "question", "answer")).unwrap();
            let messages = record["messages"].as_array().unwrap();
            let line = serde_json::to_string(&openai_record(request, "q", "a")).unwrap();
            assert!(line.starts_with(r#"{"messages":[{"role":"#), "{line}");
            assert_eq!(
                messages[messages.len() - 2],
                json!({"role": "user", "content": "question"})
            );
            assert_eq!(
                messages[messages.len() - 1],
                json!({"role": "assistant", "content": "answer"})
            );
        }
    }

    #[test]
    fn a_file_is_written_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("rvbbit-export-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.jsonl");
        std::fs::write(&target, "old\n").unwrap();
        let mut sink = Sink::open(Some(&target)).unwrap();
        sink.write(b"{\"a\":1}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "old\n",
            "not yet"
        );
        sink.abandon();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n", "kept");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary left"
        );
        let mut sink = Sink::open(Some(&target)).unwrap();
        sink.write(b"{\"a\":1}\n").unwrap();
        sink.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let missing = Sink::open(Some(&dir.join("no/such/dir/out.jsonl")));
        assert!(missing.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
