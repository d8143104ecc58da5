//! An example rvbbit plugin, written the way a plugin author would write one.
//!
//! * `rvbbit hello greet [NAME] [--shout]` prints `Hello, NAME!`.
//! * `rvbbit hello fail` fails the way a check does: exit code 1 and one message.
//!
//! Each command is declared once, next to its definition: `register_command!` with
//! its words, its clap `Args` and a plain Rust function `fn(Args) -> CommandResult`.
//! The plugin API parses the arguments that follow the command's words (`rvbbit hello
//! greet Ada`), answers `--help` and usage errors (exit 2), and takes the description
//! (the doc comment's first line) and the flags the host completes from `Args`.
//! `export_plugin!` exports the library's entry point once. The host prints the
//! message of a `Failure` as `error: <message>` and exits with its code.
//! See docs/PLUGINS.md for the whole contract.

use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::{CommandResult, Failure};
use std::io::Write;

rvbbit_plugin_api::export_plugin!(name: "hello", version: env!("CARGO_PKG_VERSION"));

/// Print a greeting
#[derive(Parser, Debug)]
struct GreetArgs {
    /// Who to greet
    #[arg(default_value = "World")]
    name: String,
    /// Greet in capital letters
    #[arg(long)]
    shout: bool,
}

fn greet(args: GreetArgs) -> CommandResult {
    let mut greeting = format!("Hello, {}!", args.name);
    if args.shout {
        greeting = greeting.to_uppercase();
    }
    say(&greeting)
}

rvbbit_plugin_api::register_command!(path: "hello greet", args: GreetArgs, run: greet);

/// Fail on purpose with exit code 1 and a message
///
/// This is the way a check that does not hold fails.
#[derive(Parser, Debug)]
struct FailArgs {}

fn fail(_args: FailArgs) -> CommandResult {
    Err(Failure::new(
        exit::CHECK_FAILED,
        "hello fail always fails: this is what a failed check looks like",
    ))
}

rvbbit_plugin_api::register_command!(path: "hello fail", args: FailArgs, run: fail);

/// Prints one line. A closed stdout (`rvbbit hello greet | true`) is not an error
/// worth a panic; any other write error is reported.
fn say(line: &str) -> CommandResult {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(
            exit::CHECK_FAILED,
            format!("cannot write to stdout: {e}"),
        )),
    }
}
