//! The engine under the commands: each command's logic, in a function taking a plain
//! options struct (no clap), which `commands/<cmd>.rs` fills from its flags. `migrate`
//! applies the embedded migrations statement by statement, backfills examples from
//! history one month at a time (with progress), and ends with the verification report.
//! Ctrl-C stops between steps; everything done so far is kept and a re-run resumes.
//!
//! | module              | what it holds                                                   |
//! |---------------------|-----------------------------------------------------------------|
//! | this module         | `training migrate`: [`migrate`] behind [`Options`]              |
//! | [`plan`]            | the pure planner: live state, ledger and migrations in, steps out |
//! | [`apply`]           | runs a plan under the lease, writing the ledger around each step |
//! | [`backfill`]        | the month-by-month backfill and the refills after a repair      |
//! | [`dry_run`]         | `--dry-run`'s printer                                           |
//! | [`report`]          | the actions and the closing report of a run, and their printer  |
//! | [`verify`]          | the checks of `verify`, and their printer                       |
//! | [`interrupt`]       | Ctrl-C between steps                                            |
//! | [`annotate`]        | `training annotate`: the current annotations read, the new rows decided and written |
//! | [`test_annotation`] | `training test-annotation`: the test row inserted, read back through the views, removed |
//! | [`stats`]           | `training stats`: Studio's KPI numbers per cascade and cell, read and printed |
//! | [`examples`]        | `training examples`: rvbbit's few-shot retrieval query (or `--all`'s listing) and its printer |
//! | [`status`]          | `training status`: the migrations against the ledger and the lease, and their printer |
//! | [`export`]          | `training export`: the curated examples streamed as a dataset (JSONL, OpenAI, Parquet) |
//! | [`review`]          | `training review`: the review queue, its state machine and its screen ([`review::ui`]) |
//! | [`selection`]         | the filters `export` and `review` share, as conditions and bound parameters |
//! | [`uninstall`]       | `training uninstall`: what migrate created, dropped newest first, and this plugin's ledger and lease rows |

pub mod annotate;
pub mod apply;
pub mod backfill;
pub mod dry_run;
pub mod examples;
pub mod export;
pub mod interrupt;
pub mod plan;
pub mod report;
pub mod review;
pub mod selection;
pub mod stats;
pub mod status;
pub mod test_annotation;
pub mod uninstall;
pub mod verify;

use crate::db::Db;
use crate::failure::classified;
use crate::lease;
use crate::ledger;
use crate::migrations::MIGRATIONS;
use crate::output::{self, Format};
use crate::say;
use crate::schema::LOGS;
use anyhow::Context;
use interrupt::Interrupt;
use plan::{Plan, State};
use report::{Actions, Outcome};
use rvbbit_plugin_api::exit;

/// How to migrate: the command's flags.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub create_database: bool,
    pub format: Format,
    pub dry_run: bool,
    pub repair: bool,
    pub cluster: Option<&'a str>,
    pub wait: std::time::Duration,
    pub limits: crate::examples::BackfillLimits,
}

/// Brings the database to this version (or, with `dry_run`, prints how); returns the
/// exit code: success, or checks failed when the closing verification fails.
pub async fn migrate(
    db: Db,
    options: &Options<'_>,
    interrupt: &mut Interrupt,
) -> anyhow::Result<i32> {
    let format = options.format;
    let cluster = options.cluster;
    let database = db.target.database.clone();
    let mut actions = Actions::new(format);
    if format == Format::Table {
        let header = format!(
            "ClickHouse {} at {}, database {database}{}",
            db.version,
            db.target.address(),
            cluster
                .map(|c| format!(", cluster {c}"))
                .unwrap_or_default()
        );
        if options.dry_run {
            // A comment of the SQL printed below: one line, as it is.
            say!("-- {header}");
        } else {
            say!("{}", output::heading(&header));
        }
    }
    if !db.database_exists().await? {
        // Creating it would not help: migrate needs rvbbit's unified_logs in it, which
        // rvbbit creates when it first logs there. So nothing is created, and the
        // message names the databases that do hold the logs.
        let candidates = crate::prerequisite::databases_with_logs(&db).await?;
        let mut message =
            crate::prerequisite::missing_database(&database, &db.target.address(), &candidates);
        if options.create_database {
            message.push_str(" (--create-database creates nothing: the training system needs rvbbit's unified_logs in the database, which rvbbit creates when it first logs there)");
        }
        return Err(classified(exit::MISSING_PREREQUISITE, message));
    }
    if !db.objects().await?.contains_key(LOGS) {
        let candidates = crate::prerequisite::databases_with_logs(&db).await?;
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            crate::prerequisite::missing_logs(&database, &candidates),
        ));
    }

    let first = plan::plan(
        &State::read(&db).await?,
        MIGRATIONS,
        options.repair,
        stop_after_migration(),
    )?;
    refuse(&db, &first, options.repair)?;
    if options.dry_run {
        dry_run::print(&first, cluster, format)?;
        return Ok(exit::SUCCESS);
    }

    db.execute_ddl(ledger::CREATE_LEDGER, cluster)
        .await
        .context("creating the migration ledger")?;
    db.execute_ddl(lease::CREATE_LEASES, cluster)
        .await
        .context("creating the migrate lease table")?;
    let lease = lease::acquire(&db, options.wait, |holder| {
        if !output::quiet() {
            eprintln!("  waiting: another {holder} holds the migrate lease of this database");
        }
    })
    .await?;
    let result = apply::apply(&db, options, interrupt, &mut actions).await;
    let released = lease.release().await;
    let (plan, added) = result?;
    released?;

    let report = verify::checks(&db).await?;
    let ok = report.ok;
    let outcome = Outcome {
        found: plan.found,
        findings: plan
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.object, f.problem))
            .collect(),
        actions: actions.done,
        backfilled_examples: added,
        verify: report,
    };
    outcome.print(format)?;
    Ok(if ok {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    })
}

/// Refuses, before any change, drift that cannot be put right without losing data,
/// and (without --repair) migrations whose file changed after they were applied.
fn refuse(db: &Db, plan: &Plan, repair: bool) -> anyhow::Result<()> {
    let refused: Vec<String> = plan
        .findings
        .iter()
        .filter_map(|f| match &f.repair {
            crate::drift::Repair::Refuse(why) => {
                Some(format!("{} {} ({why})", f.object, f.problem))
            }
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        return Err(classified(
            exit::CHECK_FAILED,
            format!(
                "refusing to migrate database {}: {}. Putting this right would rewrite or drop data, which migrate never does by itself. Nothing was changed; your annotations are untouched. See docs/MIGRATION_GUIDE.md, \"Drift\".",
                db.target.database,
                refused.join("; ")
            ),
        ));
    }
    if !repair && !plan.mismatched.is_empty() {
        let list: Vec<String> = plan
            .mismatched
            .iter()
            .map(|(entry, m)| {
                format!(
                    "{:04}_{} was applied with checksum {} but this version's file has {}",
                    m.version,
                    m.name,
                    short(&entry.checksum),
                    short(&ledger::checksum(m.sql))
                )
            })
            .collect();
        return Err(classified(
            exit::CHECK_FAILED,
            format!(
                "checksum mismatch in database {}: {}. An applied migration is never run again. `rvbbit training verify` shows how the objects differ from this version; `rvbbit training migrate --repair` puts them right and records the new checksum. Nothing was changed.",
                db.target.database,
                list.join("; ")
            ),
        ));
    }
    Ok(())
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// Test-only (debug builds): `RVBBIT_TRAINING_STOP_AFTER_MIGRATION=N` applies the
/// migrations up to N and nothing after, to build a database as an earlier release
/// of this tool left it (the tests of upgrades between versions).
fn stop_after_migration() -> Option<u32> {
    if cfg!(debug_assertions) {
        std::env::var("RVBBIT_TRAINING_STOP_AFTER_MIGRATION")
            .ok()
            .and_then(|v| v.parse().ok())
    } else {
        None
    }
}
