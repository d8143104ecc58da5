//! `rvbbit training status`: the migrations this version has, which are applied and
//! which pending, their checksums, any left in progress, and who holds the migrate lease.

use super::{run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::lease;
use crate::ledger::{self, Entry};
use crate::migrations::MIGRATIONS;
use crate::model::{LedgerStatus, MigrationState};
use crate::output::{self, OutputArgs};
use crate::say;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;
use serde::Serialize;

/// Show applied and pending migrations, checksums, and any migrate in progress
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("which migrations are applied, and whether a migrate is running", "rvbbit training status"), ("the same as JSON", "rvbbit training status --format json")]))]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    run(&args.connection, &args.output, |target| async move {
        let db = Db::connect(target).await?;
        status(&db, args.format).await
    })
}

rvbbit_plugin_api::register_command!(path: "training status", args: Args, run: exec);

#[derive(Serialize, Debug)]
struct Migration {
    version: u32,
    name: String,
    /// "applied", "pending", "in progress", "failed" or "checksum mismatch".
    state: MigrationState,
    checksum: String,
    applied_checksum: Option<String>,
    steps_done: u32,
    steps_total: u32,
    host: Option<String>,
    pid: Option<u32>,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    error: Option<String>,
    note: Option<String>,
}

#[derive(Serialize, Debug)]
struct Status {
    database: String,
    server_version: String,
    up_to_date: bool,
    migrations: Vec<Migration>,
    lease: Option<lease::Holder>,
}

fn state_of(entry: Option<&Entry>, checksum: &str) -> MigrationState {
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

async fn status(db: &Db, format: Format) -> anyhow::Result<i32> {
    crate::prerequisite::require_database(db).await?;
    let entries = ledger::read(db).await?;
    let holder = lease::holders(db).await?.into_iter().next();
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|m| {
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
        })
        .collect();
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
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            let mut table = output::table(&["migration", "state", "steps", "when", "checksum"]);
            for m in &report.migrations {
                let when: String = m
                    .finished_at
                    .clone()
                    .or_else(|| m.started_at.clone())
                    .map_or_else(|| "-".into(), |t| t.chars().take(19).collect());
                table.add_row(vec![
                    comfy_table::Cell::new(format!("{:04}_{}", m.version, m.name)),
                    output::state_cell(
                        m.state.as_str(),
                        match m.state {
                            MigrationState::Applied => Some(true),
                            MigrationState::Pending => None,
                            _ => Some(false),
                        },
                    ),
                    comfy_table::Cell::new(if m.steps_total == 0 {
                        "-".into()
                    } else {
                        format!("{}/{}", m.steps_done, m.steps_total)
                    }),
                    comfy_table::Cell::new(when),
                    comfy_table::Cell::new(&m.checksum[..8]),
                ]);
            }
            // Names, states and checksums are never broken; on a narrow terminal the
            // time goes below the date.
            output::keep_whole(&mut table, &[0, 1, 2, 4]);
            output::at_least(&mut table, 3, 10);
            say!(
                "database {} on ClickHouse {}",
                report.database,
                report.server_version
            );
            say!("{table}");
            // A live migrate holding the lease is resuming or applying right now:
            // advising another one would only make it wait for the lease.
            let running = matches!(&report.lease,
                Some(h) if h.host != ledger::hostname() || lease::process_alive(h.pid));
            for m in &report.migrations {
                if m.state == MigrationState::ChecksumMismatch {
                    say!("{}", output::paragraph(&format!(
                        "{:04}_{}: applied from a file with checksum {}, this version's is {}; `rvbbit training verify` shows the differences, `rvbbit training migrate --repair` puts them right",
                        m.version,
                        m.name,
                        m.applied_checksum.as_deref().map_or("", |c| c.get(..12).unwrap_or(c)),
                        &m.checksum[..12]
                    )));
                }
                if matches!(
                    m.state,
                    MigrationState::InProgress
                        | MigrationState::Failed
                        | MigrationState::Interrupted
                ) {
                    say!(
                        "{}",
                        output::paragraph(&format!(
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
                        ))
                    );
                }
                if let Some(e) = &m.error {
                    say!(
                        "{}",
                        output::paragraph(&format!(
                            "{:04}_{} stopped with: {e}",
                            m.version, m.name
                        ))
                    );
                }
            }
            match &report.lease {
                Some(h) if lease::is_stale(h, &ledger::hostname(), lease::process_alive) => say!(
                    "stale: {h} died holding the migrate lease; the next `rvbbit training migrate` takes it over and resumes"
                ),
                Some(h) => say!("in progress: {h} holds the migrate lease"),
                None => say!("no migrate in progress"),
            }
            if report.up_to_date {
                say!("up to date");
            } else if running {
                say!("not up to date yet: a migrate is running; `rvbbit training status` again shows how far it got");
            } else {
                say!("not up to date: run `rvbbit training migrate`");
            }
        }
    }
    Ok(exit::SUCCESS)
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
}
