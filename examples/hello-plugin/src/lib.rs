//! An example rvbbit plugin, written the way a plugin author would write one.
//!
//! * `rvbbit hello greet [NAME] [--shout]` prints `Hello, NAME!`.
//! * `rvbbit hello fail` fails the way a check does: exit code 1 and one message.
//!
//! Each command is a plain Rust function `fn(Vec<OsString>) -> CommandResult`,
//! registered next to its definition with `register_command!`; `export_plugin!`
//! exports the library's entry point once. The host passes the arguments that follow
//! the command's words (`rvbbit hello greet Ada` gives `["Ada"]`), prints the
//! message of a `Failure` as `error: <message>` and exits with its code.
//! See docs/PLUGINS.md for the whole contract.

use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::{CommandResult, Failure};
use std::ffi::OsString;
use std::io::Write;

rvbbit_plugin_api::export_plugin!(name: "hello", version: env!("CARGO_PKG_VERSION"));

/// Say hello to someone
#[derive(Parser, Debug)]
struct GreetArgs {
    /// Who to greet
    #[arg(default_value = "World")]
    name: String,
    /// Greet in capital letters
    #[arg(long)]
    shout: bool,
}

fn greet(args: Vec<OsString>) -> CommandResult {
    let args: GreetArgs = parse("rvbbit hello greet", args)?;
    let mut greeting = format!("Hello, {}!", args.name);
    if args.shout {
        greeting = greeting.to_uppercase();
    }
    say(&greeting)
}

rvbbit_plugin_api::register_command!(
    path: "hello greet",
    about: "Print a greeting",
    run: greet,
);

/// Fail on purpose, the way a check that does not hold fails (exit code 1)
#[derive(Parser, Debug)]
struct FailArgs {}

fn fail(args: Vec<OsString>) -> CommandResult {
    let _: FailArgs = parse("rvbbit hello fail", args)?;
    Err(Failure::new(
        exit::CHECK_FAILED,
        "hello fail always fails: this is what a failed check looks like",
    ))
}

rvbbit_plugin_api::register_command!(
    path: "hello fail",
    about: "Fail on purpose with exit code 1 and a message",
    run: fail,
);

/// Parses a command's arguments with clap. `bin_name` is what the user typed to reach
/// the command, so usage lines and `--help` read `rvbbit hello greet ...`.
/// `--help` prints and ends the command successfully; a usage error prints clap's
/// message and ends it with exit code 2 (`exit::USAGE`).
fn parse<T: Parser>(bin_name: &'static str, args: Vec<OsString>) -> Result<T, Failure> {
    let argv = std::iter::once(OsString::from(bin_name)).chain(args);
    T::command()
        .name(bin_name)
        .bin_name(bin_name)
        .try_get_matches_from(argv)
        .and_then(|mut matches| T::from_arg_matches_mut(&mut matches))
        .map_err(|e| {
            // clap has already worded the message (or the help); print it as is.
            let _ = e.print();
            if e.use_stderr() {
                Failure::silent(exit::USAGE)
            } else {
                Failure::silent(exit::SUCCESS)
            }
        })
}

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
