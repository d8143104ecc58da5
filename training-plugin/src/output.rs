//! How commands talk to people and scripts: `--color`, `-v`, `-q`, tables, the marks
//! of a checklist, and the JSON document of `--format json`. Settings are process-wide
//! for the one command being run.

use rvbbit_plugin_api::json::{self, ErrorInfo, RawValue};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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

/// The columns of stderr when it is a terminal (at least 40), `None` otherwise.
pub fn stderr_width() -> Option<usize> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let columns = console::Term::stderr()
        .size_checked()
        .map_or(0, |(_, columns)| usize::from(columns));
    Some(if columns > 0 { columns.max(40) } else { 80 })
}

pub use rvbbit_plugin_api::cli::wrap;

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

/// Free text for people, broken at spaces to the report's width, continuation lines
/// indented by two spaces (ids and names stay whole).
pub fn paragraph(text: &str) -> String {
    wrap(text, width().saturating_sub(2).max(20)).join("\n  ")
}

/// A line that names the server or the database: broken like [`paragraph`] on a
/// terminal, one line otherwise (its length varies with the names; a log or a script
/// reading it gets it whole, as with error messages).
pub fn heading(text: &str) -> String {
    if std::io::stdout().is_terminal() {
        paragraph(text)
    } else {
        text.to_string()
    }
}

/// `text` within `room` columns: as it is when it fits, else cut with `…` as its last
/// column (how a name or an id gives way: never broken onto a second line).
pub fn truncate(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The lines of `text` after a prefix `indent` columns wide, within `width` columns:
/// broken at spaces, continuation lines indented by `indent` spaces, and a word wider
/// than the room (a long name) cut with `…` rather than broken.
pub fn hanging(text: &str, indent: usize, width: usize) -> String {
    hanging_after(text, indent, indent, width)
}

/// [`hanging`] with a first line after a prefix `first` columns wide and the others
/// indented by `indent` spaces.
pub fn hanging_after(text: &str, first: usize, indent: usize, width: usize) -> String {
    let room_of = |line: usize| {
        width
            .saturating_sub(if line == 0 { first } else { indent })
            .max(10)
    };
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let needed = line.chars().count() + 1 + word.chars().count();
        if !line.is_empty() && needed > room_of(lines.len()) {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| truncate(line, room_of(i)))
        .collect::<Vec<_>>()
        .join(&format!("\n{}", " ".repeat(indent)))
}

/// Gives `column` of `table` exactly `width` columns of content (plus its padding).
pub fn fixed_width(table: &mut comfy_table::Table, column: usize, width: usize) {
    if let Some(column) = table.column_mut(column) {
        let padding = usize::from(column.padding_width());
        let total = u16::try_from(width + padding).unwrap_or(u16::MAX);
        column.set_constraint(comfy_table::ColumnConstraint::Absolute(
            comfy_table::Width::Fixed(total),
        ));
    }
}

/// How a column of a [`fitted_table`] gives way when the table is wider than the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Never (numbers, flags, states).
    Whole,
    /// Its cells are cut with `…`, never broken (names, ids); the widest first, none
    /// narrower than its header.
    Cut,
    /// Broken at spaces onto more lines (free text); gives way first, down to its
    /// header's width, before any name is cut.
    Wrap,
}

/// The content widths of columns of `widths` (header included) that fit `width`
/// columns, each column also taking one space either side, as `fits` says.
pub fn fitted_widths(
    content: &[usize],
    headers: &[usize],
    fits: &[Fit],
    width: usize,
) -> Vec<usize> {
    let mut widths = content.to_vec();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len();
    // Free text first, down to its header's width.
    for (i, fit) in fits.iter().enumerate() {
        if *fit == Fit::Wrap {
            let excess = total(&widths).saturating_sub(width);
            let least = headers[i].max(2).min(widths[i]);
            widths[i] -= excess.min(widths[i] - least);
        }
    }
    // Then names: the widest gives way one column at a time, none below its header.
    while total(&widths) > width {
        let widest = (0..widths.len())
            .filter(|&i| fits[i] == Fit::Cut && widths[i] > headers[i].max(2))
            .max_by_key(|&i| widths[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    widths
}

/// A table of `rows` under `header` within `width` columns, each column giving way
/// as its [`Fit`] says.
pub fn fitted_table(
    header: &[&str],
    fits: &[Fit],
    rows: &[Vec<String>],
    width: usize,
) -> comfy_table::Table {
    let headers: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    let content: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.lines().map(|l| l.chars().count()).max().unwrap_or(0))
                .chain([headers[i]])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let widths = fitted_widths(&content, &headers, fits, width);
    let mut table = self::table(header);
    for row in rows {
        table.add_row(row.iter().enumerate().map(|(i, cell)| {
            if fits.get(i) == Some(&Fit::Cut) {
                truncate(cell, widths[i])
            } else {
                cell.clone()
            }
        }));
    }
    for (i, w) in widths.iter().enumerate() {
        fixed_width(&mut table, i, *w);
    }
    table.set_width(u16::try_from(width).unwrap_or(u16::MAX));
    table
}

/// What the JSON document of the command being run will hold.
struct Document {
    /// `--format json`.
    json: bool,
    /// The database and the server's version, once a server answered.
    reached: Option<(String, String)>,
    data: Option<Box<RawValue>>,
}

static DOCUMENT: Mutex<Document> = Mutex::new(Document {
    json: false,
    reached: None,
    data: None,
});

fn document() -> std::sync::MutexGuard<'static, Document> {
    // A panic while the lock was held left plain data behind: still usable.
    DOCUMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts a command in `format`: under JSON, [`finish_json`] prints its one document.
pub fn start(format: Format) {
    *document() = Document {
        json: format == Format::Json,
        reached: None,
        data: None,
    };
}

/// The server answered: `database` and `server_version` go into the JSON document.
pub fn reached(database: &str, server_version: &str) {
    document().reached = Some((database.to_string(), server_version.to_string()));
}

/// The command's data under `--format json`. It is printed when the command ends, as
/// the `data` of the one JSON document (docs/JSON.md) with the command's outcome: `ok`
/// and `error` say how it ended (a `verify` whose checks failed has both its data and
/// an error).
pub fn print_json<T: serde::Serialize + ?Sized>(data: &T) -> anyhow::Result<()> {
    let data = json::data(data)?;
    let mut document = document();
    if document.json {
        document.data = Some(data);
        return Ok(());
    }
    // Not started under `--format json` (a caller outside `commands::run`): at once.
    let (database, version) = document.reached.clone().unzip();
    println!(
        "{}",
        json::document(
            rvbbit_plugin_api::plugin::current_command().unwrap_or(""),
            database.as_deref(),
            version.as_deref(),
            Some(&data),
            None,
        )?
    );
    Ok(())
}

/// Under `--format json`, prints the command's document: its data, if it got that far,
/// and, when it failed, the exit code and the one-line message (secrets already
/// removed) also printed on stderr. Nothing otherwise.
pub fn finish_json(failure: Option<&rvbbit_plugin_api::plugin::Failure>) {
    let mut document = document();
    if !document.json {
        return;
    }
    let error = failure.map(|f| {
        let message = if f.message.is_empty() {
            silent_message(f.exit_code)
        } else {
            f.message.clone()
        };
        ErrorInfo::new(f.exit_code, &message)
    });
    let (database, version) = document.reached.clone().unzip();
    let data = document.data.take();
    let command = rvbbit_plugin_api::plugin::current_command().unwrap_or("");
    match json::document(
        command,
        database.as_deref(),
        version.as_deref(),
        data.as_ref(),
        error,
    ) {
        Ok(text) => println!("{text}"),
        // Only a bug could make this fail: the document is plain data.
        Err(e) => eprintln!("error: cannot write the JSON document: {e}"),
    }
}

/// The message of a command that ended with `exit_code` after saying why in its data
/// (no message on stderr).
fn silent_message(exit_code: i32) -> String {
    match exit_code {
        rvbbit_plugin_api::exit::CHECK_FAILED => "a check failed; see data".to_string(),
        code => format!("ended with exit code {code}; see data"),
    }
}

/// A timestamp as ClickHouse's `toString(t, 'UTC')` prints it (`2026-11-30
/// 23:42:56.318844`) in RFC 3339 (`2026-11-30T23:42:56.318844Z`); any other text as it
/// is.
pub fn rfc3339(text: &str) -> String {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    let shape = bytes.len() >= 19
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b' '
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && (bytes.len() == 19
            || (bytes[19] == b'.' && bytes.len() > 20 && digits(20..bytes.len())));
    if shape {
        format!("{}T{}Z", &text[..10], &text[11..])
    } else {
        text.to_string()
    }
}

/// `#[serde(serialize_with = "crate::output::utc")]`: a UTC timestamp string of
/// ClickHouse's written in RFC 3339 ([`rfc3339`]).
pub fn utc<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(text))
}

/// [`utc`] for an optional timestamp (`null` stays `null`).
pub fn utc_opt<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => serializer.serialize_some(&rfc3339(text)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn clickhouse_timestamps_become_rfc3339_in_utc() {
        assert_eq!(
            rfc3339("2026-11-30 23:42:56.318844"),
            "2026-11-30T23:42:56.318844Z"
        );
        assert_eq!(rfc3339("2026-11-30 23:42:56"), "2026-11-30T23:42:56Z");
        assert_eq!(
            rfc3339("2026-11-30 23:42:56.318"),
            "2026-11-30T23:42:56.318Z"
        );
        for other in [
            "",
            "soon",
            "2026-11-30",
            "2026-11-30 23:42:56.",
            "2026-11-30 23:42:56+01:00",
            "2026-11-30T23:42:56Z",
            "2026-11-30 23:42:5x",
            "２０２６-11-30 23:42:56",
        ] {
            assert_eq!(rfc3339(other), other);
        }
    }

    #[test]
    fn the_serde_helpers_write_rfc3339_and_keep_null() {
        #[derive(serde::Serialize)]
        struct Row {
            #[serde(serialize_with = "utc")]
            at: String,
            #[serde(serialize_with = "utc_opt")]
            until: Option<String>,
            #[serde(serialize_with = "utc_opt")]
            never: Option<String>,
        }
        let text = serde_json::to_string(&Row {
            at: "2025-05-01 08:00:00.000000".into(),
            until: Some("2025-05-01 08:00:01.5".into()),
            never: None,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"at":"2025-05-01T08:00:00.000000Z","until":"2025-05-01T08:00:01.5Z","never":null}"#
        );
    }

    #[test]
    fn the_message_of_a_silent_failure_says_where_to_look() {
        assert_eq!(silent_message(1), "a check failed; see data");
        assert_eq!(silent_message(9), "ended with exit code 9; see data");
    }

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

    #[test]
    fn truncating_keeps_what_fits_and_marks_the_cut() {
        assert_eq!(truncate("0001_universal", 20), "0001_universal");
        assert_eq!(truncate("0001_universal", 14), "0001_universal");
        assert_eq!(truncate("0001_universal", 8), "0001_un…");
        assert_eq!(truncate("0001_universal", 8).chars().count(), 8);
        assert_eq!(truncate("abc", 0), "…");
    }

    #[test]
    fn hanging_lines_wrap_at_spaces_indent_and_cut_long_words() {
        let text = "materialized view training_trainable_examples_by_annotation_mv (migration 0003 removes or replaces it)";
        let lines = hanging(text, 11, 60);
        for line in lines.lines() {
            assert!(11 + line.trim_start().chars().count() <= 60, "{lines}");
        }
        let rest: Vec<&str> = lines.lines().skip(1).collect();
        assert!(
            rest.iter().all(|l| l.starts_with(&" ".repeat(11))),
            "{lines}"
        );
        let joined: Vec<&str> = lines.split_whitespace().collect();
        assert_eq!(joined.join(" "), text);
        let narrow = hanging("view training_trainable_examples_by_annotation_mv", 11, 40);
        assert_eq!(
            narrow,
            format!("view\n{}training_trainable_examples_…", " ".repeat(11))
        );
    }

    #[test]
    fn a_fitted_table_wraps_free_text_first_then_cuts_names_never_numbers() {
        let header = ["cascade", "cell", "trainable", "notes"];
        let fits = [Fit::Cut, Fit::Cut, Fit::Whole, Fit::Wrap];
        let rows = vec![vec![
            "a_rather_long_cascade_name_for_testing".to_string(),
            "cell_with_a_long_name".to_string(),
            "12345".to_string(),
            "free text that can go onto more lines than one".to_string(),
        ]];
        for width in 40..=140 {
            let text = fitted_table(&header, &fits, &rows, width).to_string();
            assert!(
                text.lines().all(|l| l.chars().count() <= width),
                "{width}:\n{text}"
            );
            let first: Vec<&str> = text
                .lines()
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            assert!(
                first[0] == rows[0][0]
                    || first[0]
                        .strip_suffix('…')
                        .is_some_and(|c| rows[0][0].starts_with(c)),
                "{width}:\n{text}"
            );
            assert!(text.contains("12345"), "{width}:\n{text}");
        }
        let wide = fitted_table(&header, &fits, &rows, 140).to_string();
        assert!(wide.contains(&rows[0][3]), "{wide}");
        // Names give way only once the free text is down to its header's width.
        let widths = fitted_widths(&[38, 21, 9, 47], &[7, 4, 9, 5], &fits, 100);
        assert_eq!(widths, vec![38, 21, 9, 24]);
        let widths = fitted_widths(&[38, 21, 9, 47], &[7, 4, 9, 5], &fits, 60);
        assert_eq!(widths, vec![19, 19, 9, 5]);
        let widths = fitted_widths(&[38, 21, 9, 47], &[7, 4, 9, 5], &fits, 36);
        assert_eq!(widths, vec![7, 7, 9, 5]);
        let widths = fitted_widths(
            &[30, 9, 8, 10, 4, 17],
            &[8, 9, 8, 10, 4, 5],
            &[
                Fit::Cut,
                Fit::Whole,
                Fit::Whole,
                Fit::Whole,
                Fit::Cut,
                Fit::Wrap,
            ],
            60,
        );
        assert_eq!(widths, vec![12, 9, 8, 10, 4, 5]);
    }
}
