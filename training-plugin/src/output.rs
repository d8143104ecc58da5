//! How commands talk to people and scripts: `--color`, `-v`, `-q`, tables, and the
//! marks of a checklist. Settings are process-wide for the one command being run.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);
static COLOR: AtomicBool = AtomicBool::new(false);

/// `--format` of commands that print data.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned text for people
    #[default]
    Table,
    /// JSON for scripts
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Color when printing to a terminal and NO_COLOR is unset
    #[default]
    Auto,
    Always,
    Never,
}

/// Flags every command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// When to use color (NO_COLOR in the environment turns "auto" off)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Show each SQL statement sent to ClickHouse (on stderr; secrets masked)
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// Applies these flags for the rest of the command.
    pub fn apply(&self) {
        VERBOSE.store(self.verbose, Ordering::Relaxed);
        QUIET.store(self.quiet, Ordering::Relaxed);
        let color = wants_color(
            self.color,
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stdout().is_terminal(),
        );
        COLOR.store(color, Ordering::Relaxed);
    }
}

/// Whether to color, from `--color`, the `NO_COLOR` variable (set and not empty turns
/// "auto" off) and whether stdout is a terminal.
fn wants_color(choice: ColorChoice, no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && terminal,
    }
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn color() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// Prints a line for people unless `-q`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            println!($($arg)*);
        }
    };
}

fn paint(text: &str, code: &str) -> String {
    painted(text, code, color())
}

/// `text` in the SGR color `code` when `color`, else as it is.
fn painted(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn green(text: &str) -> String {
    paint(text, "32")
}

pub fn red(text: &str) -> String {
    paint(text, "31;1")
}

pub fn dim(text: &str) -> String {
    paint(text, "2")
}

/// A table for people: aligned, at most the terminal's width (80 when not a terminal).
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(
            header
                .iter()
                .map(|h| comfy_table::Cell::new(h.to_uppercase())),
        );
    if !std::io::stdout().is_terminal() {
        table.set_width(80);
    }
    if !color() {
        table.force_no_tty();
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn always_and_never_ignore_no_color_and_the_terminal() {
        for no_color in [None, Some(OsStr::new("1"))] {
            for terminal in [false, true] {
                assert!(wants_color(ColorChoice::Always, no_color, terminal));
                assert!(!wants_color(ColorChoice::Never, no_color, terminal));
            }
        }
    }

    #[test]
    fn auto_colors_a_terminal_unless_no_color_is_set_and_not_empty() {
        assert!(wants_color(ColorChoice::Auto, None, true));
        assert!(!wants_color(ColorChoice::Auto, None, false));
        assert!(!wants_color(ColorChoice::Auto, Some(OsStr::new("1")), true));
        // An empty NO_COLOR does not count as set (no-color.org).
        assert!(wants_color(ColorChoice::Auto, Some(OsStr::new("")), true));
    }

    #[test]
    fn painting_wraps_in_the_code_and_a_reset_only_with_color() {
        assert_eq!(painted("FAIL", "31;1", true), "\x1b[31;1mFAIL\x1b[0m");
        assert_eq!(painted("FAIL", "31;1", false), "FAIL");
    }
}
