//! `rvbbit training annotate TRACE_ID...`: marks traces the way Studio does — one
//! row per trace in `training_annotations`, all written by one INSERT. Flags not given
//! keep the trace's current annotation (a fresh trace becomes trainable).

use super::{parse_confidence, run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::ops::annotate::{annotate, read_ids, AnnotateOptions};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;

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
    let options = AnnotateOptions {
        trainable: args.trainable,
        not_trainable: args.not_trainable,
        verified: args.verified,
        not_verified: args.not_verified,
        confidence: args.confidence,
        clear_confidence: args.clear_confidence,
        notes: args.notes,
        tags: args.tags,
        by: args.by,
        force: args.force,
        format: args.format,
    };
    run(
        args.format,
        &args.connection,
        &args.output,
        |target| async move {
            // Read before connecting; inside `run` so that a bad id gets the JSON document too.
            let ids = read_ids(&args.trace_ids)?;
            let db = Db::connect(target).await?;
            annotate(&db, &options, ids).await
        },
    )
}

rvbbit_plugin_api::register_command!(path: "training annotate", args: Args, run: exec);
