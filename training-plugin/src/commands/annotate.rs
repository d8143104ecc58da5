//! `rvbbit training annotate TRACE_ID...`: marks traces the way Studio does — one
//! row per trace in `training_annotations`, all written by one INSERT. Flags not given
//! keep the trace's current annotation (a fresh trace becomes trainable).

use super::{parse_confidence, run, Format};
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
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

/// Mark traces as trainable (or not), verified, with confidence, notes and tags
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("mark two traces as good examples, checked by a person", "rvbbit training annotate TRACE_1 TRACE_2 --trainable --verified --confidence 0.9"), ("take one back, saying why", "rvbbit training annotate TRACE_1 --not-trainable --notes 'wrong total'"), ("ids from a file, one per line", "rvbbit training annotate - --trainable < ids.txt")]))]
pub struct Args {
    /// Trace ids to annotate; `-` reads ids from standard input, one per line
    #[arg(required = true, value_name = "TRACE_ID")]
    pub trace_ids: Vec<String>,
    /// Use the traces as few-shot examples (the default for a trace not yet annotated)
    #[arg(long, conflicts_with = "not_trainable")]
    pub trainable: bool,
    /// Do not use the traces as examples
    #[arg(long)]
    pub not_trainable: bool,
    /// Mark the traces as checked by a person
    #[arg(long, conflicts_with = "not_verified")]
    pub verified: bool,
    /// Clear the verified mark
    #[arg(long)]
    pub not_verified: bool,
    /// Confidence from 0 to 1
    #[arg(long, value_name = "X", value_parser = parse_confidence, allow_hyphen_values = true)]
    pub confidence: Option<f32>,
    /// Set confidence back to "not assessed"
    #[arg(long, conflicts_with = "confidence")]
    pub clear_confidence: bool,
    /// Free-text notes
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,
    /// Comma-separated tags, e.g. --tags good,billing (--tags "" removes all tags)
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub tags: Option<Vec<String>>,
    /// Who annotates [default: $USER]
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Annotate ids that are not in unified_logs too
    #[arg(long)]
    pub force: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let ids = read_ids(&args.trace_ids)
        .map_err(|e| crate::failure::into_failure(e, |s| s.to_string()))?;
    let (connection, output) = (args.connection.clone(), args.output.clone());
    run(&connection, &output, |target| async move {
        let db = Db::connect(target).await?;
        annotate(&db, &args, ids).await
    })
}

rvbbit_plugin_api::register_command!(path: "training annotate", args: Args, run: exec);

/// Tags as a person means them: spaces around each trimmed, empty ones dropped,
/// each once, in the order given (`" a , ,b,a"` is `["a", "b"]`).
pub fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && seen.insert(t.clone()))
        .collect()
}

/// The ids from the command line, with `-` replaced by the lines of stdin; spaces
/// around an id trimmed, blank lines skipped, duplicates dropped, order kept.
fn read_ids(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for id in given {
        if id == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading trace ids from standard input")?;
                if !line.trim().is_empty() {
                    ids.push(line.trim().to_string());
                }
            }
        } else {
            ids.push(id.trim().to_string());
        }
    }
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    if ids.is_empty() {
        return Err(classified(
            exit::USAGE,
            "no trace ids given (standard input was empty)",
        ));
    }
    if let Some(bad) = ids.iter().find(|id| id.is_empty() || id.contains('\0')) {
        return Err(classified(
            exit::USAGE,
            format!("trace id {bad:?} is empty or contains a NUL byte"),
        ));
    }
    Ok(ids)
}

/// A row of `training_annotations` as Studio writes it (`annotated_at` defaults to now).
#[derive(clickhouse::Row, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Annotation {
    pub trace_id: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: String,
    pub tags: Vec<String>,
    pub annotated_by: String,
}

async fn annotate(db: &Db, args: &Args, ids: Vec<String>) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[crate::schema::ANNOTATIONS]).await?;
    let known: BTreeSet<String> = db
        .fetch_all::<String>(
            db.query(&format!(
                "SELECT DISTINCT trace_id FROM {LOGS} WHERE trace_id IN {{ids:Array(String)}}"
            ))
            .param("ids", &ids),
        )
        .await
        .with_context(|| format!("looking the trace ids up in {LOGS}"))?
        .into_iter()
        .collect();
    let (found, unknown): (Vec<String>, Vec<String>) = ids
        .into_iter()
        .partition(|id| args.force || known.contains(id));

    let current: BTreeMap<String, Annotation> = db
        .fetch_all::<Annotation>(
            db.query(&format!(
                "SELECT trace_id, tupleElement(l, 1) AS trainable, tupleElement(l, 2) AS verified, tupleElement(l, 3) AS confidence, \
                 tupleElement(l, 4) AS notes, tupleElement(l, 5) AS tags, tupleElement(l, 6) AS annotated_by \
                 FROM (SELECT trace_id, argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS l \
                 FROM {ANNOTATIONS} WHERE trace_id IN {{ids:Array(String)}} GROUP BY trace_id)"
            ))
            .param("ids", &found),
        )
        .await
        .with_context(|| format!("reading the current annotations from {ANNOTATIONS}"))?
        .into_iter()
        .map(|a| (a.trace_id.clone(), a))
        .collect();

    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let rows: Vec<Annotation> = found
        .iter()
        .map(|id| {
            let before = current.get(id);
            Annotation {
                trace_id: id.clone(),
                trainable: if args.trainable || args.not_trainable {
                    args.trainable
                } else {
                    before.is_none_or(|b| b.trainable)
                },
                verified: if args.verified || args.not_verified {
                    args.verified
                } else {
                    before.is_some_and(|b| b.verified)
                },
                confidence: if args.clear_confidence {
                    None
                } else {
                    args.confidence
                        .or_else(|| before.and_then(|b| b.confidence))
                },
                notes: args
                    .notes
                    .clone()
                    .or_else(|| before.map(|b| b.notes.clone()))
                    .unwrap_or_default(),
                tags: args
                    .tags
                    .as_ref()
                    .map(|tags| clean_tags(tags))
                    .or_else(|| before.map(|b| b.tags.clone()))
                    .unwrap_or_default(),
                annotated_by: by.clone(),
            }
        })
        .collect();
    if !rows.is_empty() {
        db.insert(ANNOTATIONS, &rows)
            .await
            .with_context(|| format!("writing {} annotations to {ANNOTATIONS}", rows.len()))?;
    }

    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "annotated": rows, "not_found": unknown })
            )?
        ),
        Format::Table => {
            if !rows.is_empty() && !output::quiet() {
                let mut table = output::table(&[
                    "trace_id",
                    "trainable",
                    "verified",
                    "confidence",
                    "tags",
                    "notes",
                ]);
                for r in &rows {
                    table.add_row(vec![
                        r.trace_id.clone(),
                        r.trainable.to_string(),
                        r.verified.to_string(),
                        r.confidence
                            .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c))),
                        r.tags.join(","),
                        r.notes.clone(),
                    ]);
                }
                // Trace ids are never broken; notes, the free text, give way.
                output::keep_whole(&mut table, &[0, 1, 2, 3]);
                println!("{table}");
            }
            say!("annotated {} trace(s)", rows.len());
        }
    }
    if unknown.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        Err(classified(
            exit::MISSING_PREREQUISITE,
            format!(
                "not in {LOGS}, nothing written for: {}; check the ids, or pass --force to annotate them anyway",
                unknown.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_deduplicated_and_kept_in_order() {
        let given: Vec<String> = [" a ", " ", "b", "a", "", "c d "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(clean_tags(&given), vec!["a", "b", "c d"]);
        assert!(clean_tags(&[String::new()]).is_empty());
    }

    #[test]
    fn ids_given_as_arguments_are_trimmed_and_deduplicated() {
        let ids = read_ids(&[" t-1 ".to_string(), "t-2".to_string(), "t-1".to_string()]);
        assert_eq!(ids.ok(), Some(vec!["t-1".to_string(), "t-2".to_string()]));
    }
}
