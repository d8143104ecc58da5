//! `rvbbit training uninstall`: the flags, the confirmation `--drop-annotations` needs,
//! and a call to [`crate::ops::uninstall::uninstall`].

use super::{run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::failure::classified;
use crate::ops::uninstall::{annotation_rows, uninstall, Options};
use crate::output::OutputArgs;
use crate::schema::ANNOTATIONS;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;
use std::io::{BufRead, IsTerminal, Write};

/// Remove what migrate installed (the annotations stay unless --drop-annotations)
///
/// Never touches unified_logs. A later migrate installs everything again and reads the
/// annotations that were kept.
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("see what it would drop, changing nothing", "rvbbit training uninstall --dry-run"), ("remove the training system, keeping the annotations", "rvbbit training uninstall"), ("remove the annotations too, from a script", "rvbbit training uninstall --drop-annotations --yes")]))]
pub struct Args {
    /// Print the statements uninstall would run; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop training_annotations too: every mark people and rvbbit's scorer wrote (asks first)
    #[arg(long)]
    pub drop_annotations: bool,
    /// Do not ask before dropping the annotations (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// How long to wait for a migrate of the same database to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub wait: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    run_db(
        args.format,
        &args.connection,
        &args.output,
        |db| async move {
            if args.drop_annotations && !args.dry_run && !args.yes {
                if let Some(rows) = annotation_rows(&db).await? {
                    confirm(rows, &db.target.database)?;
                }
            }
            let options = Options {
                format: args.format,
                dry_run: args.dry_run,
                drop_annotations: args.drop_annotations,
                wait: std::time::Duration::from_secs(args.wait),
            };
            uninstall(db, &options).await
        },
    )
}

/// Asks on the terminal before the annotations are dropped; refuses when there is no
/// terminal to ask on.
fn confirm(rows: u64, database: &str) -> anyhow::Result<()> {
    let refused = |why: &str| {
        classified(
            exit::USAGE,
            format!("{why}; nothing was changed. Add --yes to drop {ANNOTATIONS} ({rows} rows) without asking"),
        )
    };
    if !std::io::stdin().is_terminal() {
        return Err(refused(
            "--drop-annotations deletes every annotation and cannot ask here (stdin is not a terminal)",
        ));
    }
    eprint!("Drop {ANNOTATIONS} in database {database}, {rows} annotation rows? This cannot be undone. Type yes to go on: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(refused("not confirmed"))
    }
}

rvbbit_plugin_api::register_command!(path: "training uninstall", args: Args, run: exec);
