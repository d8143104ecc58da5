//! The logic behind `rvbbit training status`: the migrations this version has, which
//! are applied and which pending, their checksums, any left in progress, and who holds
//! the migrate lease; `commands/status.rs` only parses the flags into [`StatusOptions`].

use crate::db::Db;
use crate::lease;
use crate::ledger::{self, Entry};
use crate::migrations::{self, MIGRATIONS};
use crate::model::{LedgerStatus, MigrationState};
use crate::output::{self, Format};
use crate::say;
use rvbbit_plugin_api::exit;
use serde::Serialize;

/// What `status` was asked to show, the flags of its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOptions {
    pub format: Format,
}

/// One migration of this version, with what the ledger says of it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    /// "applied", "pending", "in progress", "failed" or "checksum mismatch".
    pub state: MigrationState,
    pub checksum: String,
    pub applied_checksum: Option<String>,
    pub steps_done: u32,
    pub steps_total: u32,
    pub host: Option<String>,
    pub pid: Option<u32>,
    #[serde(serialize_with = "output::utc_opt")]
    pub started_at: Option<String>,
    #[serde(serialize_with = "output::utc_opt")]
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// The whole report, as `--format json` prints it.
#[derive(Serialize, Debug)]
pub struct Status {
    #[serde(skip)] // in the JSON envelope
    pub database: String,
    #[serde(skip)]
    pub server_version: String,
    pub up_to_date: bool,
    pub migrations: Vec<Migration>,
    pub lease: Option<lease::Holder>,
}

/// The state of a migration whose file has `checksum`, from its ledger row if any.
pub fn state_of(entry: Option<&Entry>, checksum: &str) -> MigrationState {
    match entry.map(|e| (e, e.status())) {
        None => MigrationState::Pending,
        Some((e, LedgerStatus::Applied)) if e.checksum != checksum => {
            MigrationState::ChecksumMismatch
        }
        Some((_, LedgerStatus::Applied)) => MigrationState::Applied,
        Some((_, LedgerStatus::Failed)) => MigrationState::Failed,
        Some((_, LedgerStatus::Interrupted)) => MigrationState::Interrupted,
        Some((_, LedgerStatus::Running)) => MigrationState::InProgress,
    }
}

/// A migration of this version as the report shows it, given the ledger's rows.
pub fn migration(m: &migrations::Migration, entries: &[Entry]) -> Migration {
    let entry = entries.iter().find(|e| e.version == m.version);
    let checksum = ledger::checksum(m.sql);
    let total = entry.map_or(0, |e| e.statements_total);
    Migration {
        version: m.version,
        name: m.name.to_string(),
        state: state_of(entry, &checksum),
        applied_checksum: entry.map(|e| e.checksum.clone()),
        checksum,
        steps_done: entry.map_or(0, |e| e.statements_done),
        steps_total: total,
        host: entry.map(|e| e.host.clone()),
        pid: entry.map(|e| e.pid),
        started_at: entry.map(|e| e.started_at.clone()),
        finished_at: entry.and_then(|e| e.finished_at.clone()),
        duration_ms: entry.map(|e| e.duration_ms),
        error: entry.map(|e| e.error.clone()).filter(|e| !e.is_empty()),
        note: entry.map(|e| e.note.clone()).filter(|n| !n.is_empty()),
    }
}

/// The table's "when" column: when it finished, else when it started, to the second.
pub fn when(m: &Migration) -> String {
    m.finished_at
        .clone()
        .or_else(|| m.started_at.clone())
        .map_or_else(|| "-".into(), |t| t.chars().take(19).collect())
}

/// The table's "steps" column: `done/total`, or `-` before any run.
pub fn steps(m: &Migration) -> String {
    if m.steps_total == 0 {
        "-".into()
    } else {
        format!("{}/{}", m.steps_done, m.steps_total)
    }
}

/// What to do about an applied migration whose file changed since.
pub fn mismatch_note(m: &Migration) -> String {
    format!(
        "{:04}_{}: applied from a file with checksum {}, this version's is {}; `rvbbit training verify` shows the differences, `rvbbit training migrate --repair` puts them right",
        m.version,
        m.name,
        m.applied_checksum.as_deref().map_or("", |c| c.get(..12).unwrap_or(c)),
        &m.checksum[..12]
    )
}

/// Where a run that did not finish stopped; `running`: a live migrate holds the lease.
pub fn unfinished_note(m: &Migration, running: bool) -> String {
    format!(
        "{:04}_{}: {} at step {} of {}, run by {} (pid {}) since {}; {}",
        m.version,
        m.name,
        m.state,
        m.steps_done,
        m.steps_total,
        m.host.as_deref().unwrap_or("?"),
        m.pid.unwrap_or_default(),
        m.started_at.as_deref().unwrap_or("?"),
        if running {
            "the migrate holding the lease is at work on it"
        } else {
            "`rvbbit training migrate` resumes it"
        }
    )
}

/// The closing line.
pub fn verdict(up_to_date: bool, running: bool) -> &'static str {
    if up_to_date {
        "up to date"
    } else if running {
        "not up to date yet: a migrate is running; `rvbbit training status` again shows how far it got"
    } else {
        "not up to date: run `rvbbit training migrate`"
    }
}

/// Reads the ledger and the lease and prints the report as `options.format` asks; exit 0.
pub async fn status(db: &Db, options: &StatusOptions) -> anyhow::Result<i32> {
    crate::prerequisite::require_database(db).await?;
    let entries = ledger::read(db).await?;
    let holder = lease::holders(db).await?.into_iter().next();
    let migrations: Vec<Migration> = MIGRATIONS.iter().map(|m| migration(m, &entries)).collect();
    let up_to_date = migrations
        .iter()
        .all(|m| m.state == MigrationState::Applied);
    let report = Status {
        database: db.target.database.clone(),
        server_version: db.version.clone(),
        up_to_date,
        migrations,
        lease: holder,
    };
    match options.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => print_table(&report),
    }
    Ok(exit::SUCCESS)
}

/// A migration's name cut to this many columns still says which it is
/// (`0001_universal_…`): states break into words only after names are this narrow.
const NAME_WORTH_KEEPING: usize = 16;

/// The table's columns, in order.
const HEADER: [&str; 5] = ["migration", "state", "steps", "when", "checksum"];

/// The content widths of the table's columns within `width` columns (each column also
/// takes one space either side), from its cells (the header's included); `None` for
/// the checksum when even the narrowest layout does not fit beside it. What gives way,
/// in order: the time goes below the date, the migration's name is cut with `…` (never
/// broken) to 16 columns, a state's words go one below the other, then the name is cut
/// further, to its header; steps and checksums stay whole.
pub fn column_widths(rows: &[[String; 5]], width: usize) -> [Option<usize>; 5] {
    let widest = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([HEADER[i].len()])
            .max()
            .unwrap_or(0)
    };
    let longest_word = |i: usize| {
        rows.iter()
            .flat_map(|r| r[i].split(' '))
            .map(|w| w.chars().count())
            .chain([HEADER[i].len()])
            .max()
            .unwrap_or(0)
    };
    let mut widths = [0; 5];
    for show_checksum in [true, false] {
        let columns = if show_checksum { 5 } else { 4 };
        widths = [widest(0), widest(1), widest(2), widest(3), widest(4)];
        let total = |w: &[usize; 5]| w[..columns].iter().sum::<usize>() + 2 * columns;
        for (column, least) in [
            (3, longest_word(3)),
            (0, NAME_WORTH_KEEPING),
            (1, longest_word(1)),
            (0, HEADER[0].len()),
        ] {
            let excess = total(&widths).saturating_sub(width);
            widths[column] -= excess.min(widths[column].saturating_sub(least));
        }
        if total(&widths) <= width || !show_checksum {
            let mut shown = widths.map(Some);
            if !show_checksum {
                shown[4] = None;
            }
            return shown;
        }
    }
    widths.map(Some)
}

/// The table's cells of a migration: name, state, steps, when, checksum.
fn cells(m: &Migration) -> [String; 5] {
    [
        format!("{:04}_{}", m.version, m.name),
        m.state.as_str().to_string(),
        steps(m),
        when(m),
        m.checksum.chars().take(8).collect(),
    ]
}

/// The table of migrations within `width` columns.
pub fn table(migrations: &[Migration], width: usize) -> comfy_table::Table {
    let rows: Vec<[String; 5]> = migrations.iter().map(cells).collect();
    let widths = column_widths(&rows, width);
    let shown = widths.iter().flatten().count();
    let mut table = output::table(&HEADER[..shown]);
    for (m, row) in migrations.iter().zip(rows) {
        let [name, state, steps, when, checksum] = row;
        let mut cells = vec![
            comfy_table::Cell::new(output::truncate(&name, widths[0].unwrap_or(0))),
            output::state_cell(
                &state,
                match m.state {
                    MigrationState::Applied => Some(true),
                    MigrationState::Pending => None,
                    _ => Some(false),
                },
            ),
            comfy_table::Cell::new(steps),
            comfy_table::Cell::new(when),
        ];
        if widths[4].is_some() {
            cells.push(comfy_table::Cell::new(checksum));
        }
        table.add_row(cells);
    }
    for (column, w) in widths.iter().enumerate() {
        if let Some(w) = w {
            output::fixed_width(&mut table, column, *w);
        }
    }
    table.set_width(u16::try_from(width).unwrap_or(u16::MAX));
    table
}

fn print_table(report: &Status) {
    let width = output::width();
    let table = table(&report.migrations, width);
    say!(
        "{}",
        output::heading(&format!(
            "database {} on ClickHouse {}",
            report.database, report.server_version
        ))
    );
    say!("{table}");
    // A live migrate holding the lease is resuming or applying right now:
    // advising another one would only make it wait for the lease.
    let running = matches!(&report.lease,
        Some(h) if h.host != ledger::hostname() || lease::process_alive(h.pid));
    for m in &report.migrations {
        if m.state == MigrationState::ChecksumMismatch {
            say!("{}", output::paragraph(&mismatch_note(m)));
        }
        if matches!(
            m.state,
            MigrationState::InProgress | MigrationState::Failed | MigrationState::Interrupted
        ) {
            say!("{}", output::paragraph(&unfinished_note(m, running)));
        }
        if let Some(e) = &m.error {
            say!(
                "{}",
                output::paragraph(&format!("{:04}_{} stopped with: {e}", m.version, m.name))
            );
        }
    }
    match &report.lease {
        Some(h) if lease::is_stale(h, &ledger::hostname(), lease::process_alive) => say!(
            "{}",
            output::paragraph(&format!(
                "stale: {h} died holding the migrate lease; the next `rvbbit training migrate` takes it over and resumes"
            ))
        ),
        Some(h) => say!(
            "{}",
            output::paragraph(&format!("in progress: {h} holds the migrate lease"))
        ),
        None => say!("no migrate in progress"),
    }
    say!("{}", output::paragraph(verdict(report.up_to_date, running)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: &str, checksum: &str) -> Entry {
        Entry {
            version: 1,
            name: "universal_training_system".into(),
            checksum: checksum.into(),
            statements_done: 3,
            statements_total: 8,
            status: status.into(),
            host: "here".into(),
            pid: 7,
            started_at: "2025-05-01 08:00:00.000000".into(),
            finished_at: None,
            duration_ms: 0,
            error: String::new(),
            note: String::new(),
        }
    }

    const FIRST: migrations::Migration = migrations::Migration {
        version: 1,
        name: "universal_training_system",
        sql: "SELECT 1",
    };

    #[test]
    fn no_ledger_row_is_pending() {
        assert_eq!(state_of(None, "abc"), MigrationState::Pending);
    }

    #[test]
    fn applied_with_this_checksum_is_applied_and_with_another_a_mismatch() {
        assert_eq!(
            state_of(Some(&entry("applied", "abc")), "abc"),
            MigrationState::Applied
        );
        assert_eq!(
            state_of(Some(&entry("applied", "old")), "abc"),
            MigrationState::ChecksumMismatch
        );
    }

    #[test]
    fn a_run_not_finished_shows_how_it_stopped_whatever_its_checksum() {
        for (status, state) in [
            ("failed", MigrationState::Failed),
            ("interrupted", MigrationState::Interrupted),
            ("running", MigrationState::InProgress),
            // A status this version does not know counts as still running.
            ("rolled back", MigrationState::InProgress),
        ] {
            for checksum in ["abc", "old"] {
                assert_eq!(
                    state_of(Some(&entry(status, checksum)), "abc"),
                    state,
                    "{status} {checksum}"
                );
            }
        }
    }

    #[test]
    fn a_migration_without_a_ledger_row_is_pending_with_nothing_to_show() {
        let m = migration(&FIRST, &[]);
        assert_eq!(m.state, MigrationState::Pending);
        assert_eq!(m.checksum, ledger::checksum("SELECT 1"));
        assert_eq!((m.applied_checksum, m.host, m.pid), (None, None, None));
        assert_eq!((m.steps_done, m.steps_total), (0, 0));
        let m = migration(&FIRST, &[]);
        assert_eq!((steps(&m), when(&m)), ("-".to_string(), "-".to_string()));
    }

    #[test]
    fn a_migration_takes_its_own_ledger_row_and_drops_empty_texts() {
        let mut other = entry("applied", "x");
        other.version = 2;
        let mut mine = entry("failed", "y");
        mine.error = "Code: 241".into();
        let m = migration(&FIRST, &[other, mine]);
        assert_eq!(m.state, MigrationState::Failed);
        assert_eq!(m.applied_checksum.as_deref(), Some("y"));
        assert_eq!(m.error.as_deref(), Some("Code: 241"));
        assert_eq!(m.note, None);
        assert_eq!(steps(&m), "3/8");
        assert_eq!(when(&m), "2025-05-01 08:00:00");
    }

    #[test]
    fn the_time_shown_is_the_end_when_there_is_one() {
        let mut e = entry("applied", "abc");
        e.finished_at = Some("2025-05-01 08:00:09.123456".into());
        assert_eq!(when(&migration(&FIRST, &[e])), "2025-05-01 08:00:09");
    }

    #[test]
    fn notes_name_the_migration_the_checksums_and_the_way_on() {
        let mut e = entry("applied", "0123456789abcdef");
        e.finished_at = Some("2025-05-01 08:00:09".into());
        let m = migration(&FIRST, &[e]);
        let note = mismatch_note(&m);
        assert!(note.starts_with(
            "0001_universal_training_system: applied from a file with checksum 0123456789ab, this version's is "
        ));
        assert!(note.contains(&m.checksum[..12]));
        let m = migration(&FIRST, &[entry("interrupted", "abc")]);
        assert_eq!(
            unfinished_note(&m, false),
            "0001_universal_training_system: interrupted at step 3 of 8, run by here (pid 7) since 2025-05-01 08:00:00.000000; `rvbbit training migrate` resumes it"
        );
        assert!(
            unfinished_note(&m, true).ends_with("the migrate holding the lease is at work on it")
        );
    }

    /// Every migration of this version, the first one in `status` since a run.
    fn report_rows(status: &str) -> Vec<Migration> {
        let mut first = entry(status, "0123456789abcdef");
        first.finished_at = Some("2025-05-01 08:00:09".into());
        MIGRATIONS
            .iter()
            .map(|m| migration(m, std::slice::from_ref(&first)))
            .collect()
    }

    #[test]
    fn the_table_fits_every_width_and_cuts_names_with_an_ellipsis() {
        for status in ["applied", "interrupted"] {
            let migrations = report_rows(status);
            for width in 44..=120 {
                let text = table(&migrations, width).to_string();
                for line in text.lines() {
                    assert!(
                        line.chars().count() <= width,
                        "{status} at {width}: {line:?}\n{text}"
                    );
                }
                for m in &migrations {
                    let name = format!("{:04}_{}", m.version, m.name);
                    let shown = text
                        .lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .find(|w| w.starts_with(&format!("{:04}_", m.version)))
                        .unwrap_or_else(|| panic!("{name} at {width}:\n{text}"));
                    assert!(
                        shown == name
                            || shown
                                .strip_suffix('…')
                                .is_some_and(|cut| name.starts_with(cut)),
                        "{shown} at {width}"
                    );
                }
            }
        }
    }

    #[test]
    fn on_90_columns_nothing_gives_way_and_on_60_the_time_goes_below_the_date() {
        let migrations = report_rows("applied");
        let wide = table(&migrations, 90).to_string();
        assert!(
            wide.lines()
                .any(|l| l.contains("0001_universal_training_system")
                    && l.contains("checksum mismatch")
                    && l.contains("2025-05-01 08:00:09")),
            "{wide}"
        );
        let narrow = table(&migrations, 60).to_string();
        let first: Vec<&str> = narrow.lines().skip(1).take(2).collect();
        assert!(first[0].contains("2025-05-01"), "{narrow}");
        assert!(first[1].contains("08:00:09"), "{narrow}");
        assert!(narrow.contains("…"), "{narrow}");
        // Checksums stay whole.
        assert!(narrow.contains(&migrations[1].checksum[..8]), "{narrow}");
    }

    #[test]
    fn the_verdict_never_advises_a_second_migrate_while_one_runs() {
        assert_eq!(verdict(true, true), "up to date");
        assert_eq!(verdict(true, false), "up to date");
        assert!(verdict(false, true).starts_with("not up to date yet: a migrate is running"));
        assert_eq!(
            verdict(false, false),
            "not up to date: run `rvbbit training migrate`"
        );
    }
}
