//! `rvbbit training examples`: the few-shot examples rvbbit injects into a cell's
//! prompt, retrieved exactly as rvbbit does. The flags, and a call to
//! [`crate::ops::examples::examples`].

use super::{parse_confidence, run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::ops::examples::{self as ops, examples, ExamplesOptions};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;

/// How rvbbit orders the candidates ([`ops::Strategy`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Newest first
    Recent,
    /// Highest confidence first, then newest
    HighConfidence,
    /// Any order (a new draw each time)
    Random,
}

/// The format of the block rvbbit prepends to a cell's instructions (the cell's
/// `training_format`; [`ops::Render`]).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// <examples> … </examples> (rvbbit's default)
    Xml,
    /// ## Training Examples, numbered
    Markdown,
    /// "Here are verified examples…", numbered, ending with ---
    #[value(name = "few_shot")]
    FewShot,
}

/// Show the few-shot examples rvbbit would inject for a cascade's cell
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("the examples rvbbit would inject into a cell's prompt", "rvbbit training examples --cascade sql_analyst --cell plan"), ("every example of the cell, with its annotation: ids to annotate", "rvbbit training examples --cascade sql_analyst --cell plan --all"), ("verified examples only, highest confidence first", "rvbbit training examples --cascade sql_analyst --cell plan --verified-only --strategy high-confidence"), ("the block rvbbit prepends to the cell's instructions (training_format: xml)", "rvbbit training examples --cascade sql_analyst --cell plan --render xml")]))]
pub struct Args {
    /// Cascade id
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: String,
    /// Cell name
    #[arg(long, value_name = "CELL")]
    pub cell: String,
    /// Order of the candidates
    #[arg(long, value_enum, default_value_t = Strategy::Recent)]
    pub strategy: Strategy,
    /// How many examples
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Minimum confidence (examples without an assessed confidence never qualify, as in rvbbit)
    #[arg(long, value_name = "X", default_value_t = 0.8, allow_hyphen_values = true, value_parser = parse_confidence)]
    pub min_confidence: f32,
    /// Only examples a person verified
    #[arg(long)]
    pub verified_only: bool,
    /// Every example of the cell, newest first, trainable or not, with its annotation
    /// if any: the trace ids to pass to `rvbbit training annotate`
    #[arg(long, conflicts_with_all = ["strategy", "min_confidence", "verified_only"])]
    pub all: bool,
    /// Print exactly the block rvbbit prepends to the cell's instructions for these
    /// examples, in the cell's `training_format`
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["all", "format"])]
    pub render: Option<Render>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = ExamplesOptions {
        cascade: args.cascade,
        cell: args.cell,
        strategy: match args.strategy {
            Strategy::Recent => ops::Strategy::Recent,
            Strategy::HighConfidence => ops::Strategy::HighConfidence,
            Strategy::Random => ops::Strategy::Random,
        },
        limit: args.limit,
        min_confidence: args.min_confidence,
        verified_only: args.verified_only,
        all: args.all,
        render: args.render.map(|r| match r {
            Render::Xml => ops::Render::Xml,
            Render::Markdown => ops::Render::Markdown,
            Render::FewShot => ops::Render::FewShot,
        }),
        format: args.format,
    };
    run_db(
        args.format,
        &args.connection,
        &args.output,
        |db| async move { examples(&db, &options).await },
    )
}

rvbbit_plugin_api::register_command!(path: "training examples", args: Args, run: exec);
