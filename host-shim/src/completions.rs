//! `rvbbit completions bash|zsh|fish`: the completion script for the command tree
//! `--help` shows ([`crate::help::root_command`]), plugin commands' declared flags,
//! options and their values included.

use crate::builtins::COMPLETIONS;
use clap_complete::aot::{generate, Shell};
use rvbbit_plugin_api::{cli, exit};
use std::ffi::OsString;
use std::io::Write;

/// Exit code when the completion script cannot be written to stdout.
const WRITE_FAILED: i32 = 1;

/// `rvbbit completions SHELL`: the completion script for the command tree `root`, the
/// same one `--help` shows, on stdout.
pub fn run(root: &clap::Command, args: &[OsString]) -> i32 {
    let bin_name = format!("rvbbit {COMPLETIONS}");
    let Some(command) = root.find_subcommand(COMPLETIONS) else {
        return exit::INTERNAL;
    };
    let matches = match cli::matches(command.clone(), &bin_name, args.iter().cloned()) {
        Ok(matches) => matches,
        Err(failure) => return failure.exit_code,
    };
    let Some(shell) = matches.get_one::<Shell>("shell").copied() else {
        return exit::USAGE;
    };
    let mut script = Vec::new();
    generate(shell, &mut root.clone(), "rvbbit", &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => exit::SUCCESS,
        // `rvbbit completions bash | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the completion script: {e}");
            WRITE_FAILED
        }
    }
}
