//! `rvbbit training review`: a review queue in the terminal, one example at a time,
//! each decision written at once as one row of `training_annotations`. The flags, and
//! a call to [`crate::ops::review::review`].

use super::{parse_confidence, run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::ops::review::{
    check_options, check_verbose, require_terminal, review, Order as QueueOrder, ReviewOptions,
};
use crate::ops::selection::Selection;
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;
use std::io::IsTerminal;

/// The order of the queue.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Newest first
    Newest,
    /// Lowest confidence first (examples never assessed last), then newest
    LowestConfidence,
}

/// Review examples one at a time in the terminal: trainable or not, verified, notes
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("every example no person has reviewed yet, newest first", "rvbbit training review"), ("the examples the scorer doubts most first", "rvbbit training review --order lowest-confidence --max-confidence 0.5"), ("every example of a cascade again, reviewed or not, as ana", "rvbbit training review --cascade sql_analyst --all --by ana")]))]
pub struct Args {
    /// Only this cascade
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: Option<String>,
    /// Only this cell
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Only examples no person has annotated yet: none, or only rvbbit's scorer (the default)
    #[arg(long, conflicts_with = "all")]
    pub unreviewed: bool,
    /// Every example, reviewed or not
    #[arg(long)]
    pub all: bool,
    /// Only examples with at least this confidence (never-assessed ones then never qualify)
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = parse_confidence)]
    pub min_confidence: Option<f32>,
    /// Only examples with at most this confidence (never-assessed ones then never qualify)
    #[arg(long, value_name = "X", allow_hyphen_values = true, value_parser = parse_confidence)]
    pub max_confidence: Option<f32>,
    /// Order of the queue
    #[arg(long, value_enum, default_value_t = Order::Newest)]
    pub order: Order,
    /// At most this many examples in one run (run again for more)
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// Who reviews [default: $USER]
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = ReviewOptions {
        selection: Selection {
            cascade: args.cascade,
            cell: args.cell,
            min_confidence: args.min_confidence,
            max_confidence: args.max_confidence,
        },
        all: args.all,
        order: match args.order {
            Order::Newest => QueueOrder::Newest,
            Order::LowestConfidence => QueueOrder::LowestConfidence,
        },
        limit: args.limit,
        by: args.by,
    };
    let verbose = args.output.verbose;
    run(
        Format::Table,
        &args.connection,
        &args.output,
        |target| async move {
            // Checked before connecting: none of them needs the server.
            require_terminal(
                std::io::stdin().is_terminal(),
                std::io::stdout().is_terminal(),
            )?;
            check_verbose(verbose, std::io::stderr().is_terminal())?;
            check_options(&options)?;
            let db = Db::connect(target).await?;
            review(&db, &options).await
        },
    )
}

rvbbit_plugin_api::register_command!(path: "training review", args: Args, run: exec);
