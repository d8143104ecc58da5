//! `rvbbit training test-annotation`: the migration guide's post-migration test, made
//! safe: inserts one test annotation, reads it back through the views and removes
//! exactly that row. The flags, and a call to
//! [`crate::ops::test_annotation::test_annotation`].

use super::{run_db, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::ops::test_annotation::{test_annotation, TestAnnotationOptions};
use crate::output::OutputArgs;
use clap::Parser;
use rvbbit_plugin_api::plugin::CommandResult;

/// Insert a test annotation, read it back through the views, and remove it
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("write, read back and remove a test annotation", "rvbbit training test-annotation"), ("keep it, to see it in Studio", "rvbbit training test-annotation --keep")]))]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Annotate this trace id instead of a fresh test id (it must have no annotations yet)
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// Leave the test annotation in place
    #[arg(long)]
    pub keep: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let options = TestAnnotationOptions {
        trace_id: args.trace_id,
        keep: args.keep,
        format: args.format,
    };
    run_db(
        args.format,
        &args.connection,
        &args.output,
        |db| async move { test_annotation(&db, &options).await },
    )
}

rvbbit_plugin_api::register_command!(path: "training test-annotation", args: Args, run: exec);
