//! `rvbbit training migrate` (also `rvbbit sql migrate training`): the flags, and a
//! call to the engine, [`crate::ops::migrate`].

use super::{run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::examples;
use crate::failure::classified;
use crate::ledger;
use crate::ops::{self, interrupt::Interrupt, Options};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;

/// Create or complete the training tables and views, and backfill examples
///
/// Safe to run again: what exists is kept.
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("install or upgrade the training system in the database rvbbit logs to", "rvbbit training migrate"), ("see what it would run, without changing anything", "rvbbit training migrate --dry-run"), ("the same plan as JSON, for a script", "rvbbit training migrate --dry-run --format json"), ("also put drifted objects right where nothing is lost", "rvbbit training migrate --repair")]))]
pub struct Args {
    /// Kept for older scripts: a database that does not exist cannot hold rvbbit's
    /// `unified_logs`, which the training system reads, so migrate never creates one
    #[arg(long, hide = true)]
    pub create_database: bool,
    /// Print the statements migrate would run, in order, against the live state (what exists is skipped); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also put right every object that differs from this version where that loses nothing (views replaced; missing objects, columns and indexes added); anything that would rewrite or drop data is refused
    #[arg(long)]
    pub repair: bool,
    /// Run every DDL ON CLUSTER NAME, with Replicated table engines, and wait for every host (see docs/CLUSTER.md)
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// How long to wait for another migrate of the same database to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub wait: u64,
    /// Memory each backfill statement may use on the server (e.g. 512MiB, 4GiB); one that needs more stops, keeps what it wrote, and the next run resumes
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = examples::parse_size)]
    pub backfill_max_memory: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    run(
        args.format,
        &args.connection,
        &args.output,
        |target| async move {
            if let Some(cluster) = &args.cluster {
                // A bad name is a usage error, found before anything is sent.
                rvbbit_sql_text::cluster::render(ledger::CREATE_LEDGER, cluster)
                    .map_err(|e| classified(exit::USAGE, format!("--cluster: {e}")))?;
            }
            let mut interrupt = Interrupt::new()?;
            let options = Options {
                create_database: args.create_database,
                format: args.format,
                dry_run: args.dry_run,
                repair: args.repair,
                cluster: args.cluster.as_deref(),
                wait: std::time::Duration::from_secs(args.wait),
                limits: examples::BackfillLimits {
                    max_memory: args.backfill_max_memory,
                },
            };
            ops::migrate(Db::connect(target).await?, &options, &mut interrupt).await
        },
    )
}

rvbbit_plugin_api::register_command!(path: "training migrate", args: Args, run: exec);

rvbbit_plugin_api::register_command!(
    path: "sql migrate training",
    args: Args,
    about: "Same as `rvbbit training migrate`",
    run: exec,
);
