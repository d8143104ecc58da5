//! `rvbbit training stats`: the numbers Studio's KPI cards show, per cascade and cell,
//! from `training_stats_by_cascade`. The flags, and a call to
//! [`crate::ops::stats::stats`].

use super::{run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::ops::stats::{stats, StatsOptions};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;

/// Show trainable, verified and total examples per cascade and cell
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("every cascade and cell, as a table", "rvbbit training stats"), ("one cascade, as JSON for a script", "rvbbit training stats --cascade sql_analyst --format json")]))]
pub struct Args {
    /// Only this cascade
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = StatsOptions {
        cascade: args.cascade,
        format: args.format,
    };
    run_db(
        args.format,
        &args.connection,
        &args.output,
        |db| async move { stats(&db, &options).await },
    )
}

rvbbit_plugin_api::register_command!(path: "training stats", args: Args, run: exec);
