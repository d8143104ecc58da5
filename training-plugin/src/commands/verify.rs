//! `rvbbit training verify`: checks every object of the training system, its indexes,
//! and that examples cover the qualifying rows of `unified_logs`.

use super::{run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::ops::verify::checks;
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;

/// Check the training tables and views, their columns, indexes and examples
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("check every object and the examples", "rvbbit training verify"), ("the checks as JSON (exit 1 if one fails)", "rvbbit training verify --format json")]))]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn exec(args: Args) -> CommandResult {
    run(
        args.format,
        &args.connection,
        &args.output,
        |target| async move {
            let db = Db::connect(target).await?;
            let report = checks(&db).await?;
            report.print(args.format)?;
            Ok(if report.ok {
                exit::SUCCESS
            } else {
                exit::CHECK_FAILED
            })
        },
    )
}

rvbbit_plugin_api::register_command!(path: "training verify", args: Args, run: exec);
