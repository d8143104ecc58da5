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

/// A confidence as a person reads it: up to four decimals, no trailing zeros
/// (0.875, 0.9, 1), so a value someone set is shown as they set it.
pub fn confidence(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// The columns a report may use: the terminal's width on a terminal, 80 otherwise.
pub fn width() -> usize {
    if std::io::stdout().is_terminal() {
        // A pseudo-terminal nobody sized reports 0 columns.
        if let Some((_, columns)) = console::Term::stdout().size_checked() {
            if columns > 0 {
                return usize::from(columns).max(40);
            }
        }
    }
    80
}

/// `text` broken at spaces into lines of at most `room` characters; a word longer
/// than `room` (an id, a name) stays whole on a line of its own.
pub fn wrap(text: &str, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
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
    if color() {
        // Colors come from the cells (`state_cell`), so widths are measured without
        // their escape codes; styled also when piped under `--color always`.
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

/// A state for a table: green when good, red when not, plain when neither.
pub fn state_cell(text: &str, good: Option<bool>) -> comfy_table::Cell {
    let cell = comfy_table::Cell::new(text);
    match good {
        Some(true) => cell.fg(comfy_table::Color::Green),
        Some(false) => cell
            .fg(comfy_table::Color::Red)
            .add_attribute(comfy_table::Attribute::Bold),
        None => cell,
    }
}

/// The narrowest a column that gives way becomes (a date, a short word).
pub fn at_least(table: &mut comfy_table::Table, column: usize, width: u16) {
    if let Some(column) = table.column_mut(column) {
        column.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
            comfy_table::Width::Fixed(width),
        ));
    }
}

/// Free text for people, broken at spaces to the report's width, continuation lines
/// indented by two spaces (ids and names stay whole).
pub fn paragraph(text: &str) -> String {
    wrap(text, width().saturating_sub(2).max(20)).join("\n  ")
}

/// Columns of `table` that are never broken (names, ids): they keep their content's
/// width, and the others give way.
pub fn keep_whole(table: &mut comfy_table::Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
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
