//! The clap glue, written once (feature `cli`): parse a command's arguments with clap
//! and end the way every rvbbit command ends, and derive the command's description and
//! [`Signature`] from the same clap command, so a command is declared once.
//!
//! * `--help` (and `--version`, when the command has one) prints to stdout: exit 0.
//! * A usage error prints clap's message to stderr: exit [`exit::USAGE`].
//! * Otherwise the command's own [`CommandResult`] decides.
//!
//! [`wrap`] breaks a message to the terminal's width the same way for the host and the
//! plugins.
//!
//! A plugin rarely calls this module itself: `register_command!(path: ..., args:
//! Args, run: exec)` does (see [`crate::plugin`]).

use crate::exit;
use crate::plugin::{CommandResult, Failure};
use crate::signature::{Argument, Kind, Signature, FORMAT};
use clap::{ArgAction, Parser};
use std::ffi::OsString;

/// What the user typed to reach the command at `path`: `rvbbit training migrate`.
pub fn bin_name(path: &str) -> String {
    format!("rvbbit {path}")
}

/// Parses `args` (the arguments after the command's words) with `command` invoked as
/// `bin_name`. On `--help`, `--version` or a usage error, clap's text is printed and
/// the error is the [`Failure`] to end with (exit 0 or [`exit::USAGE`], no message).
pub fn matches(
    command: clap::Command,
    bin_name: &str,
    args: impl IntoIterator<Item = OsString>,
) -> Result<clap::ArgMatches, Failure> {
    let argv = std::iter::once(OsString::from(bin_name)).chain(args);
    command
        .name(bin_name.to_string())
        .bin_name(bin_name.to_string())
        .try_get_matches_from(argv)
        .map_err(clap_failure)
}

/// Parses `args` into `T` for the command invoked as `bin_name` (see [`matches`]).
pub fn parse<T: Parser>(bin_name: &str, args: Vec<OsString>) -> Result<T, Failure> {
    let mut matches = matches(T::command(), bin_name, args)?;
    T::from_arg_matches_mut(&mut matches).map_err(clap_failure)
}

/// Parses `args` into `T` and runs `body` with them: the whole life of a command
/// (e.g. `cli::run::<Args>("rvbbit hello greet", args, |args| greet(&args))`).
pub fn run<T: Parser>(
    bin_name: &str,
    args: Vec<OsString>,
    body: impl FnOnce(T) -> CommandResult,
) -> CommandResult {
    body(parse::<T>(bin_name, args)?)
}

/// Prints clap's text (help, version or usage error) and says how to end.
fn clap_failure(error: clap::Error) -> Failure {
    // clap has already worded the message (or the help); print it as is.
    let _ = error.print();
    if error.use_stderr() {
        Failure::silent(exit::USAGE)
    } else {
        Failure::silent(exit::SUCCESS)
    }
}

/// The one-line description of `command`: the first line of its `about` (the first
/// line of the doc comment of a derived `Args`).
pub fn about(command: &clap::Command) -> String {
    command
        .get_about()
        .map(|about| about.to_string())
        .and_then(|about| about.lines().next().map(str::to_string))
        .unwrap_or_default()
}

/// The [`Signature`] of `command`: every argument the user may type after the
/// command's words (the automatic `--help` and `--version` left out).
pub fn signature(command: &clap::Command) -> Signature {
    let mut command = command.clone();
    command.build();
    let args = command
        .get_arguments()
        .filter(|arg| {
            !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
        })
        .map(|arg| {
            let kind = match arg.get_action() {
                ArgAction::Count => Kind::Count,
                ArgAction::Append => Kind::Append,
                action if action.takes_values() => {
                    if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
                        Kind::Append
                    } else {
                        Kind::Value
                    }
                }
                _ => Kind::Flag,
            };
            let takes_value = matches!(kind, Kind::Value | Kind::Append);
            Argument {
                id: arg.get_id().to_string(),
                long: arg.get_long().map(str::to_string),
                short: arg.get_short(),
                help: arg.get_help().map(|help| help.to_string()),
                value_name: if takes_value {
                    arg.get_value_names()
                        .and_then(|names| names.first())
                        .map(|name| name.to_string())
                        .or_else(|| Some(arg.get_id().to_string().to_uppercase()))
                } else {
                    None
                },
                kind,
                possible_values: if takes_value {
                    arg.get_possible_values()
                        .iter()
                        .filter(|value| !value.is_hide_set())
                        .map(|value| value.get_name().to_string())
                        .collect()
                } else {
                    Vec::new()
                },
                positional: arg.is_positional(),
                hidden: arg.is_hide_set(),
            }
        })
        .collect();
    Signature {
        format: FORMAT,
        args,
    }
}

/// A command's description and signature for the ABI, derived from `T`; `about`
/// replaces the derived description when given (an alias saying what it stands for).
pub fn describe<T: Parser>(about: Option<&str>) -> crate::plugin::Description {
    let command = T::command();
    crate::plugin::Description {
        about: about.map_or_else(|| self::about(&command), str::to_string),
        signature: signature(&command).to_json(),
    }
}

/// `text` broken at spaces into lines of at most `room` columns (its own line breaks
/// kept); a word wider than `room` (an id, a name, a path) stays whole on a line of its
/// own. Never empty: `""` is one empty line.
pub fn wrap(text: &str, room: usize) -> Vec<String> {
    let options = textwrap::Options::new(room.max(1))
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let lines: Vec<String> = textwrap::wrap(text, options)
        .into_iter()
        .map(std::borrow::Cow::into_owned)
        .collect();
    if lines.is_empty() {
        vec![String::new()]
    } else {
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn wrap_breaks_at_spaces_within_the_room() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("one two three", 80), ["one two three"]);
        assert_eq!(wrap("a longword b", 4), ["a", "longword", "b"]);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("first line\nsecond", 80), ["first line", "second"]);
        assert_eq!(
            wrap("rvbbit-training-plugin x", 10),
            ["rvbbit-training-plugin", "x"]
        );
        for line in wrap(
            "Create or complete the training tables and views, and backfill examples",
            30,
        ) {
            assert!(line.chars().count() <= 30, "{line}");
        }
    }

    /// Say hello
    ///
    /// More text that is not the description.
    #[derive(Parser, Debug)]
    struct Args {
        /// Who to greet
        #[arg(default_value = "World")]
        name: String,
        /// Shout
        #[arg(long, short)]
        shout: bool,
        /// How loud
        #[arg(short, action = ArgAction::Count)]
        verbose: u8,
        /// Output format
        #[arg(long, value_parser = ["table", "json"], value_name = "FMT")]
        format: Option<String>,
        /// Tags
        #[arg(long = "tag")]
        tags: Vec<String>,
    }

    #[test]
    fn the_description_and_signature_come_from_clap() {
        let command = Args::command();
        assert_eq!(about(&command), "Say hello");
        let signature = signature(&command);
        assert_eq!(signature.format, FORMAT);
        let by_id = |id: &str| {
            signature
                .args
                .iter()
                .find(|a| a.id == id)
                .unwrap_or_else(|| panic!("no {id} in {signature:?}"))
                .clone()
        };
        let name = by_id("name");
        assert!(name.positional);
        assert_eq!(name.kind, Kind::Value);
        assert_eq!(name.help.as_deref(), Some("Who to greet"));
        let shout = by_id("shout");
        assert_eq!(
            (shout.long.as_deref(), shout.short, shout.kind),
            (Some("shout"), Some('s'), Kind::Flag)
        );
        assert_eq!(by_id("verbose").kind, Kind::Count);
        let format = by_id("format");
        assert_eq!(format.value_name.as_deref(), Some("FMT"));
        assert_eq!(format.possible_values, ["table", "json"]);
        assert_eq!(by_id("tags").kind, Kind::Append);
        assert!(
            signature.args.iter().all(|a| a.id != "help"),
            "--help is the host's to add: {signature:?}"
        );
    }

    #[test]
    fn parse_maps_help_and_usage_errors_to_exit_codes() {
        let help = parse::<Args>("rvbbit hello greet", vec!["--help".into()]);
        assert_eq!(help.err(), Some(Failure::silent(exit::SUCCESS)));
        let usage = parse::<Args>("rvbbit hello greet", vec!["--nope".into()]);
        assert_eq!(usage.err(), Some(Failure::silent(exit::USAGE)));
        let parsed = parse::<Args>("rvbbit hello greet", vec!["Ada".into(), "-s".into()]);
        assert!(parsed.as_ref().is_ok_and(|a| a.name == "Ada" && a.shout));
        let failed = run::<Args>("rvbbit hello greet", vec![], |_| {
            Err(Failure::new(exit::CHECK_FAILED, "no"))
        });
        assert_eq!(failed, Err(Failure::new(exit::CHECK_FAILED, "no")));
    }
}
