//! `rvbbit training status`: the migrations this version has, which are applied and
//! which pending, their checksums, any left in progress, and who holds the migrate
//! lease. The flags, and a call to [`crate::ops::status::status`].

use super::{run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::ops::status::{status, StatusOptions};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;

/// Show applied and pending migrations, checksums, and any migrate in progress
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("which migrations are applied, and whether a migrate is running", "rvbbit training status"), ("the same as JSON", "rvbbit training status --format json")]))]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = StatusOptions {
        format: args.format,
    };
    run_db(
        args.format,
        &args.connection,
        &args.output,
        |db| async move { status(&db, &options).await },
    )
}

rvbbit_plugin_api::register_command!(path: "training status", args: Args, run: exec);
