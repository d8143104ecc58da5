//! `rvbbit training export`: the curated examples as a dataset (JSONL), streamed to
//! stdout or to a file written atomically. The flags, and a call to
//! [`crate::ops::export::export`].

use super::{parse_confidence, run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::ops::export::{export, Dataset, ExportOptions};
use crate::ops::selection::Selection;
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;
use std::path::PathBuf;

/// The dataset's format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetFormat {
    /// One flat JSON object per example and line: ids, cascade, cell, input, output,
    /// the latest annotation, timestamps (RFC 3339, UTC)
    Jsonl,
    /// OpenAI's chat fine-tuning format: per line, the logged request's messages, then
    /// the reply
    Openai,
    /// Apache Parquet (the flat columns of jsonl), written by the server; binary, so
    /// to -o FILE or a redirected stdout
    Parquet,
}

/// Export the curated examples as a dataset (JSONL, OpenAI fine-tuning, Parquet)
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("every trainable example, to a file (written whole or not at all)", "rvbbit training export -o examples.jsonl"), ("one cell's verified examples since November", "rvbbit training export --cascade sql_analyst --cell plan --verified-only --since 2026-11-01"), ("an evaluation set: every example, trainable or not, one per distinct input", "rvbbit training export --include-untrainable --dedupe -o eval.jsonl")]))]
pub struct Args {
    /// Only this cascade
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: Option<String>,
    /// Only this cell
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Only examples a person verified
    #[arg(long)]
    pub verified_only: bool,
    /// Minimum confidence (examples without an assessed confidence then never qualify, as in rvbbit)
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = parse_confidence)]
    pub min_confidence: Option<f32>,
    /// Only examples logged at or after this time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z; UTC)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Examples that are not trainable too (for evaluation sets)
    #[arg(long)]
    pub include_untrainable: bool,
    /// One example per distinct input (the earliest)
    #[arg(long)]
    pub dedupe: bool,
    /// Write to FILE (whole or not at all) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// The dataset's format
    #[arg(long, value_enum, default_value_t = DatasetFormat::Jsonl)]
    pub format: DatasetFormat,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = ExportOptions {
        selection: Selection {
            cascade: args.cascade,
            cell: args.cell,
            min_confidence: args.min_confidence,
            max_confidence: None,
        },
        verified_only: args.verified_only,
        since: args.since,
        include_untrainable: args.include_untrainable,
        dedupe: args.dedupe,
        output: args.output_file,
        dataset: match args.format {
            DatasetFormat::Jsonl => Dataset::Jsonl,
            DatasetFormat::Openai => Dataset::Openai,
            DatasetFormat::Parquet => Dataset::Parquet,
        },
    };
    // Errors go to stderr: stdout is the dataset.
    run_db(
        Format::Table,
        &args.connection,
        &args.output,
        |db| async move { export(&db, &options).await },
    )
}

rvbbit_plugin_api::register_command!(path: "training export", args: Args, run: exec);
