//! `rvbbit training migrate` (also `rvbbit sql migrate training`): applies the
//! embedded migrations statement by statement, backfills examples from history one
//! month at a time (with progress), and ends with the verification summary. Ctrl-C
//! stops between steps; everything done so far is kept and a re-run resumes.

use super::{parse, run, verify, Format};
use crate::connection::{ConnectionArgs, ENV_HELP};
use crate::db::Db;
use crate::drift::{self, Finding, Refill, Repair};
use crate::examples;
use crate::failure::classified;
use crate::lease;
use crate::ledger::{self, Entry};
use crate::migrations::{creates, Creates, Migration, MIGRATIONS};
use crate::model::{Action, Found, Kind, LedgerStatus, Problem};
use crate::output::{self, OutputArgs};
use crate::say;
use crate::schema::{LOGS, OBJECTS};
use anyhow::Context;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;
use rvbbit_sql_text::split;
use std::ffi::OsString;
use std::future::Future;
use std::io::IsTerminal;

/// Create or complete the training tables and views, and backfill examples (safe to run again)
#[derive(Parser, Debug)]
#[command(after_help = ENV_HELP)]
pub struct Args {
    /// Create the database first if it does not exist
    #[arg(long)]
    pub create_database: bool,
    /// Print the statements migrate would run, in order, against the live state (what exists is skipped); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also put right every object that differs from this version where that loses nothing (views replaced; missing objects, columns and indexes added); anything that would rewrite or drop data is refused
    #[arg(long)]
    pub repair: bool,
    /// Run every DDL ON CLUSTER NAME, with Replicated table engines, and wait for every host (see docs/CLUSTER.md)
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// How long to wait for another migrate of the same database to finish
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub wait: u64,
    /// Memory each backfill statement may use on the server (e.g. 512MiB, 4GiB); one that needs more stops, keeps what it wrote, and the next run resumes
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = examples::parse_size)]
    pub backfill_max_memory: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

fn exec_as(bin_name: &'static str, args: Vec<OsString>) -> CommandResult {
    let args: Args = parse(bin_name, args)?;
    run(&args.connection, &args.output, |target| async move {
        if let Some(cluster) = &args.cluster {
            // A bad name is a usage error, found before anything is sent.
            rvbbit_sql_text::cluster::render(ledger::CREATE_LEDGER, cluster)
                .map_err(|e| classified(exit::USAGE, format!("--cluster: {e}")))?;
        }
        let mut interrupt = Interrupt::new()?;
        let options = Options {
            create_database: args.create_database,
            format: args.format,
            dry_run: args.dry_run,
            repair: args.repair,
            cluster: args.cluster.as_deref(),
            wait: std::time::Duration::from_secs(args.wait),
            limits: examples::BackfillLimits {
                max_memory: args.backfill_max_memory,
            },
        };
        migrate(Db::connect(target).await?, options, &mut interrupt).await
    })
}

pub fn exec(args: Vec<OsString>) -> CommandResult {
    exec_as("rvbbit training migrate", args)
}

pub fn exec_sql(args: Vec<OsString>) -> CommandResult {
    exec_as("rvbbit sql migrate training", args)
}

rvbbit_plugin_api::register_command!(
    path: "training migrate",
    about: "Create or complete the training tables and views, and backfill examples",
    run: exec,
);

rvbbit_plugin_api::register_command!(
    path: "sql migrate training",
    about: "Same as `rvbbit training migrate`",
    run: exec_sql,
);

/// Ctrl-C, caught from the start of the command so it can stop between steps.
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> anyhow::Result<Interrupt> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("installing the Ctrl-C handler")?,
        })
    }

    /// Runs `step`; if Ctrl-C comes first, returns an interruption error built by `what_was_done`.
    async fn guard<T>(
        &mut self,
        step: impl Future<Output = anyhow::Result<T>>,
        what_was_done: impl FnOnce() -> String,
    ) -> anyhow::Result<T> {
        #[cfg(unix)]
        let ctrl_c = self.signal.recv();
        #[cfg(not(unix))]
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::select! {
            result = step => result,
            _ = ctrl_c => Err(classified(
                exit::INTERRUPTED,
                format!("interrupted: {}. Nothing is half-applied: run `rvbbit training migrate` again to resume.", what_was_done()),
            )),
        }
    }
}

/// What `migrate` did, for `--format json`.
#[derive(serde::Serialize)]
struct Outcome {
    database: String,
    server_version: String,
    /// What migrate found before it began: "new", "installed", or "hand-applied" (an
    /// install made by hand from an earlier version of the SQL).
    found: Found,
    findings: Vec<String>,
    actions: Vec<Acted>,
    backfilled_examples: u64,
    verify: verify::Report,
}

/// One object and what happened to it.
#[derive(serde::Serialize)]
struct Acted {
    action: Action,
    object: String,
}

/// Records an action, and prints it for people in table format.
fn act(actions: &mut Vec<Acted>, format: Format, action: Action, object: String) {
    if format == Format::Table {
        match action {
            Action::Created => say!("  {}  {object}", output::green("created")),
            Action::Exists => say!("  {}   {object}", output::dim("exists")),
            Action::Skipped => say!("  {}  {object}", output::dim("skipped")),
            Action::Absent => say!("  {}   {object}", output::dim("absent")),
            _ => say!("  {action:8} {object}"),
        }
    }
    actions.push(Acted { action, object });
}

/// One thing migrate does, in order.
#[derive(Debug, Clone)]
enum Step {
    /// A statement of migration `version`, number `index` (0-based) of its steps.
    Statement {
        version: u32,
        index: u32,
        sql: String,
        what: String,
        /// The object it creates already exists (shown as skipped by --dry-run); for a
        /// removal, the object to remove exists.
        exists: bool,
        /// A later migration of this run removes or replaces what it makes, so it is
        /// not sent (a new database does not build and drop version 2's copy).
        superseded_by: Option<u32>,
    },
    /// The backfill of `training_examples` from history, the last step of migration 1.
    Backfill { version: u32, index: u32 },
    /// A migration whose every step is done but which a run did not live to record as
    /// applied: records it.
    Complete { version: u32, index: u32 },
    /// A repair of drift (or of a hand-applied install), outside any migration.
    Repair {
        sql: Vec<String>,
        what: String,
        refill: Refill,
    },
}

/// The whole plan: what was found and the steps that bring the database to this version.
struct Plan {
    found: Found,
    findings: Vec<Finding>,
    steps: Vec<Step>,
    /// Migrations a previous run left in progress: (version, done, total, who).
    resuming: Vec<String>,
    /// Applied migrations whose file changed since.
    mismatched: Vec<(Entry, &'static Migration)>,
}

/// The migration that creates the examples' materialized view; its last step is the backfill.
const BACKFILL_AFTER: u32 = 1;

/// Steps of one migration: its statements, plus the backfill for migration 1.
fn migration_steps(migration: &Migration) -> anyhow::Result<Vec<(String, Option<Creates>)>> {
    let statements = split(migration.sql).map_err(|e| {
        classified(
            exit::INTERNAL,
            format!("migration {:04}_{}: {e}", migration.version, migration.name),
        )
    })?;
    Ok(statements
        .into_iter()
        .map(|s| {
            let target = creates(&s.text);
            (s.text, target)
        })
        .collect())
}

fn step_count(migration: &Migration) -> anyhow::Result<u32> {
    let n = migration_steps(migration)?.len() + usize::from(migration.version == BACKFILL_AFTER);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Looks at the live database and the ledger, and plans the run.
async fn plan(db: &Db, repair: bool) -> anyhow::Result<Plan> {
    let live = drift::snapshot(db).await?;
    let entries = ledger::read(db).await?;
    let existing = drift::compare(db, &live, false).await?;
    let ours_in_ledger = !entries.is_empty();
    let any_object = OBJECTS.iter().any(|o| live.engines.contains_key(o.name));
    // An upgrade a previous run began and did not finish is still an upgrade: its
    // ledger rows say so until the last repair is done.
    let upgrade_unfinished = entries.iter().any(|e| e.note.contains(ledger::UPGRADING));
    let hand_applied = (!ours_in_ledger && !existing.is_empty()) || upgrade_unfinished;
    let found = if hand_applied {
        Found::HandApplied
    } else if !any_object && !ours_in_ledger {
        Found::New
    } else {
        Found::Installed
    };
    let mut steps = Vec::new();
    let mut resuming = Vec::new();
    let mut mismatched = Vec::new();
    let fix_now = hand_applied || repair;
    let mut dropped: Vec<String> = Vec::new();
    if fix_now {
        // Before the migrations: columns of tables (later statements read them) and
        // plain views standing where a materialized view belongs (its CREATE ... IF NOT
        // EXISTS would otherwise keep them).
        for finding in existing.iter().filter(|f| !f.is_missing()) {
            match &finding.repair {
                Repair::Run(sql)
                    if OBJECTS
                        .iter()
                        .any(|o| o.name == finding.object && o.kind == Kind::Table) =>
                {
                    steps.push(Step::Repair {
                        sql: sql.clone(),
                        what: format!("{}: {}", finding.object, finding.problem),
                        refill: Refill::None,
                    });
                }
                Repair::Recreate {
                    drop: Some(drop), ..
                } => {
                    dropped.push(finding.object.clone());
                    steps.push(Step::Repair {
                        sql: vec![drop.clone()],
                        what: format!(
                            "{}: {} (dropped, to be created again)",
                            finding.object, finding.problem
                        ),
                        refill: Refill::None,
                    });
                }
                _ => {}
            }
        }
    }
    let stop = stop_after_migration();
    for migration in MIGRATIONS
        .iter()
        .filter(|m| stop.is_none_or(|last| m.version <= last))
    {
        let entry = entries.iter().find(|e| e.version == migration.version);
        let total = step_count(migration)?;
        let mut done = 0;
        if let Some(entry) = entry {
            if entry.status() == LedgerStatus::Applied {
                if entry.checksum != ledger::checksum(migration.sql) {
                    mismatched.push((entry.clone(), migration));
                }
                continue;
            }
            if entry.checksum == ledger::checksum(migration.sql) && entry.statements_total == total
            {
                done = entry.statements_done.min(total);
            }
            resuming.push(format!(
                "migration {:04}_{} was left {} after step {} of {} by host {} (pid {}) at {}{}",
                migration.version,
                migration.name,
                if entry.status() == LedgerStatus::Failed {
                    "failed"
                } else {
                    "in progress"
                },
                entry.statements_done,
                entry.statements_total,
                entry.host,
                entry.pid,
                entry.started_at,
                if entry.error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", entry.error)
                }
            ));
        }
        for (index, (sql, target)) in migration_steps(migration)?.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if index < done {
                continue;
            }
            let exists = match &target {
                Some(Creates::Object { name, .. }) => {
                    live.engines.contains_key(name) && !dropped.contains(name)
                }
                Some(Creates::Index { table, name }) => {
                    live.indexes.contains(&(table.clone(), name.clone()))
                }
                // For a removal: whether there is anything to remove.
                Some(Creates::Drop { name }) => live.engines.contains_key(name),
                _ => false,
            };
            let what = target
                .as_ref()
                .map_or_else(|| format!("statement {}", index + 1), ToString::to_string);
            steps.push(Step::Statement {
                version: migration.version,
                index,
                sql,
                what,
                exists,
                superseded_by: None,
            });
        }
        if migration.version == BACKFILL_AFTER && total > done {
            steps.push(Step::Backfill {
                version: migration.version,
                index: total - 1,
            });
        }
        if entry.is_some() && done >= total {
            steps.push(Step::Complete {
                version: migration.version,
                index: total,
            });
        }
    }
    supersede(&mut steps);
    Ok(Plan {
        found,
        findings: existing,
        steps,
        resuming,
        mismatched,
    })
}

/// The object a statement makes or fills, and whether it only replaces a view.
fn target_of(sql: &str) -> Option<(String, bool)> {
    match creates(sql)? {
        Creates::Object { name, .. } | Creates::Fill { table: name } => Some((name, false)),
        Creates::Index { table, .. } | Creates::Materialize { table, .. } => Some((table, false)),
        Creates::Replace { name } => Some((name, true)),
        Creates::Drop { .. } => None,
    }
}

/// Marks the statements whose work a later statement of the same run undoes: anything
/// made for an object a later migration drops, and a view replaced again later.
fn supersede(steps: &mut [Step]) {
    let later: Vec<(u32, Creates)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Statement { version, sql, .. } => creates(sql).map(|c| (*version, c)),
            _ => None,
        })
        .collect();
    for step in steps.iter_mut() {
        let Step::Statement {
            version,
            sql,
            superseded_by,
            ..
        } = step
        else {
            continue;
        };
        let Some((name, replaces)) = target_of(sql) else {
            continue;
        };
        *superseded_by = later.iter().find_map(|(v, c)| {
            let undone = match c {
                Creates::Drop { name: dropped } => dropped == &name,
                Creates::Replace { name: replaced } => replaces && replaced == &name,
                _ => false,
            };
            (*v > *version && undone).then_some(*v)
        });
    }
}

/// Refuses, before any change, drift that cannot be put right without losing data,
/// and (without --repair) migrations whose file changed after they were applied.
fn refuse(db: &Db, plan: &Plan, repair: bool) -> anyhow::Result<()> {
    let refused: Vec<String> = plan
        .findings
        .iter()
        .filter_map(|f| match &f.repair {
            Repair::Refuse(why) => Some(format!("{} {} ({why})", f.object, f.problem)),
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

#[derive(Clone, Copy)]
struct Options<'a> {
    create_database: bool,
    format: Format,
    dry_run: bool,
    repair: bool,
    cluster: Option<&'a str>,
    wait: std::time::Duration,
    limits: examples::BackfillLimits,
}

async fn migrate(db: Db, options: Options<'_>, interrupt: &mut Interrupt) -> anyhow::Result<i32> {
    let format = options.format;
    let cluster = options.cluster;
    let database = db.target.database.clone();
    let mut actions = Vec::new();
    if format == Format::Table {
        say!(
            "{}ClickHouse {} at {}, database {database}{}",
            if options.dry_run { "-- " } else { "" },
            db.version,
            db.target.address(),
            cluster
                .map(|c| format!(", cluster {c}"))
                .unwrap_or_default()
        );
    }
    if !db.database_exists().await? {
        if !options.create_database {
            return Err(classified(
                exit::MISSING_PREREQUISITE,
                format!("database {database} does not exist on {}; pass --create-database to create it, or choose another with --database", db.target.address()),
            ));
        }
        let sql = format!("CREATE DATABASE IF NOT EXISTS `{database}`");
        if options.dry_run {
            say!("{sql};");
            say!("-- then every statement of every migration; the database does not exist yet, so nothing more can be planned");
            return Ok(exit::SUCCESS);
        }
        match cluster {
            None => db.execute(db.server_query(&sql)).await,
            Some(_) => db.execute_ddl(&sql, cluster).await,
        }
        .with_context(|| format!("creating database {database}"))?;
        act(
            &mut actions,
            format,
            Action::Created,
            format!("database {database}"),
        );
    }
    if !db.objects().await?.contains_key(LOGS) {
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            format!("table {database}.{LOGS} does not exist: the training system reads rvbbit's log table, which rvbbit creates when it first logs to this database; run rvbbit against it first, or choose another with --database"),
        ));
    }

    let first = plan(&db, options.repair).await?;
    refuse(&db, &first, options.repair)?;
    if options.dry_run {
        print_dry_run(&first, cluster)?;
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
    let result = apply(&db, options, interrupt, &mut actions).await;
    let released = lease.release().await;
    let (plan, added) = result?;
    released?;

    let report = verify::checks(&db).await?;
    let ok = report.ok;
    if format == Format::Table {
        if added == 0 {
            say!("  backfill examples already cover {LOGS}");
        } else {
            say!("  backfill added {added} examples from existing {LOGS} rows");
        }
        say!();
        verify::print(&report, Format::Table)?;
    } else {
        let outcome = Outcome {
            database,
            server_version: db.version.clone(),
            found: plan.found,
            findings: plan
                .findings
                .iter()
                .map(|f| format!("{}: {}", f.object, f.problem))
                .collect(),
            actions,
            backfilled_examples: added,
            verify: report,
        };
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(if ok {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    })
}

/// Under the lease: plans again (another run may have done the work while this one
/// waited), runs the steps with the ledger written around each, then repairs what is
/// still drifted when asked to (or when the install was made by hand).
async fn apply(
    db: &Db,
    options: Options<'_>,
    interrupt: &mut Interrupt,
    actions: &mut Vec<Acted>,
) -> anyhow::Result<(Plan, u64)> {
    let format = options.format;
    let cluster = options.cluster;
    let limits = options.limits;
    let plan = plan(db, options.repair).await?;
    refuse(db, &plan, options.repair)?;
    if format == Format::Table {
        match plan.found {
            Found::HandApplied => {
                say!("  found a hand-applied install (made by hand from an earlier version of the training SQL):");
                for f in &plan.findings {
                    say!("    {}: {}", f.object, f.problem);
                }
                say!("  upgrading it in place; every annotation is kept");
            }
            Found::New => say!("  no training objects yet: installing"),
            Found::Installed => {}
        }
        for line in &plan.resuming {
            say!("  resuming: {line}");
        }
    }
    let mut failpoint = Failpoint::from_env();
    let mut added = 0u64;
    let mut run: Option<ledger::Run<'_>> = None;
    let mut performed = 0u32;
    for step in &plan.steps {
        let version = match step {
            Step::Statement { version, .. }
            | Step::Backfill { version, .. }
            | Step::Complete { version, .. } => Some(*version),
            Step::Repair { .. } => None,
        };
        // Finish the previous migration's ledger row when this step belongs to another.
        if run.is_some() && run.as_ref().map(|r| r.version) != version {
            if let Some(r) = run.take() {
                r.applied().await?;
            }
        }
        if let (Some(version), None) = (version, &run) {
            let migration = MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .ok_or_else(|| classified(exit::INTERNAL, format!("no migration {version}")))?;
            let done = match step {
                Step::Statement { index, .. }
                | Step::Backfill { index, .. }
                | Step::Complete { index, .. } => *index,
                Step::Repair { .. } => 0,
            };
            let note = if plan.found == Found::HandApplied {
                ledger::UPGRADING
            } else {
                ""
            };
            run =
                Some(ledger::Run::start(db, migration, step_count(migration)?, done, note).await?);
        }
        let outcome = match step {
            Step::Complete { .. } => continue,
            Step::Statement {
                what,
                superseded_by: Some(by),
                ..
            } => {
                act(
                    actions,
                    format,
                    Action::Skipped,
                    format!("{what} (migration {by:04} removes or replaces it)"),
                );
                Ok(())
            }
            Step::Statement {
                sql, what, exists, ..
            } => {
                let step_future = db.execute_ddl(sql, cluster);
                interrupt
                    .guard(step_future, || format!("{performed} steps were done"))
                    .await
                    .with_context(|| what.to_string())
                    .map(|()| {
                        let action = match creates(sql) {
                            Some(Creates::Object { .. }) | Some(Creates::Index { .. })
                                if *exists =>
                            {
                                Action::Exists
                            }
                            Some(Creates::Object { .. }) | Some(Creates::Index { .. }) => {
                                Action::Created
                            }
                            Some(Creates::Replace { .. }) => Action::Replaced,
                            Some(Creates::Drop { .. }) if *exists => Action::Removed,
                            Some(Creates::Drop { .. }) => Action::Absent,
                            _ => Action::Ran,
                        };
                        act(actions, format, action, what.clone());
                    })
            }
            Step::Backfill { .. } => {
                let view_query = examples::view_query(db).await?.ok_or_else(|| {
                    classified(exit::SERVER_ERROR, "the materialized view was not created")
                })?;
                backfill(db, &view_query, limits, interrupt)
                    .await
                    .map(|n| added += n)
            }
            Step::Repair { sql, what, refill } => {
                let mut result = Ok(());
                for statement in sql {
                    let step_future = db.execute_ddl(statement, cluster);
                    result = interrupt
                        .guard(step_future, || format!("{performed} steps were done"))
                        .await
                        .with_context(|| format!("repairing {what}"));
                    if result.is_err() {
                        break;
                    }
                }
                if result.is_ok() {
                    result = refill_after(db, *refill, limits, interrupt)
                        .await
                        .map(|n| added += n);
                }
                result.map(|()| act(actions, format, Action::Repaired, what.clone()))
            }
        };
        if let Err(e) = outcome {
            if let Some(r) = &run {
                let done = match step {
                    Step::Statement { index, .. }
                    | Step::Backfill { index, .. }
                    | Step::Complete { index, .. } => *index,
                    Step::Repair { .. } => 0,
                };
                let _ = r.failed(done, &db.target.redact(&format!("{e:#}"))).await;
            }
            return Err(e);
        }
        if let (Some(r), Step::Statement { index, .. } | Step::Backfill { index, .. }) =
            (&run, step)
        {
            r.progress(index + 1).await?;
        }
        performed += 1;
        failpoint.after_step(performed);
    }
    if let Some(r) = run.take() {
        r.applied().await?;
    }
    if stop_after_migration().is_some() {
        // Test-only: leave the database as that version left it.
        return Ok((plan, added));
    }
    // Objects or indexes missing although their migration is applied (dropped by hand)
    // are created again: that loses nothing. What else still differs (views kept by IF
    // NOT EXISTS, definitions changed by hand) is put right when repairing or upgrading.
    let repairing = options.repair || plan.found == Found::HandApplied;
    let mut backfilled = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Backfill { .. }));
    {
        let live = drift::snapshot(db).await?;
        for finding in drift::compare(db, &live, true).await? {
            if !repairing && !finding.is_missing() {
                continue;
            }
            let (sql, refill) = match &finding.repair {
                Repair::Run(sql) => (sql.clone(), Refill::None),
                Repair::Recreate {
                    drop,
                    create,
                    refill,
                } => (
                    drop.iter()
                        .cloned()
                        .chain(std::iter::once(create.clone()))
                        .collect(),
                    *refill,
                ),
                Repair::Refuse(_) => continue,
            };
            for statement in &sql {
                interrupt
                    .guard(db.execute_ddl(statement, cluster), || {
                        format!("{performed} steps were done")
                    })
                    .await
                    .with_context(|| {
                        format!("repairing {}: {}", finding.object, finding.problem)
                    })?;
            }
            backfilled |= refill == Refill::Examples;
            added += refill_after(db, refill, limits, interrupt).await?;
            act(
                actions,
                format,
                if finding.is_missing() {
                    Action::Created
                } else {
                    Action::Repaired
                },
                describe(&finding),
            );
            performed += 1;
            failpoint.after_step(performed);
        }
    }
    // Every run ends with the catch-up backfill: log rows whose example was lost (the
    // view missing for a while, a table truncated) get one; nothing is duplicated.
    if !backfilled && db.objects().await?.contains_key(crate::schema::EXAMPLES_MV) {
        added += refill_after(db, Refill::Examples, limits, interrupt).await?;
    }
    if db
        .objects()
        .await?
        .contains_key(crate::schema::TRAINABLE_EXAMPLES)
    {
        examples::copy_trainable(db).await?;
        examples::refresh_values(db).await?;
    }
    if plan.found == Found::HandApplied {
        ledger::replace_note(db, ledger::UPGRADING, ledger::UPGRADED).await?;
    }
    if repairing {
        for (entry, migration) in &plan.mismatched {
            ledger::accept_checksum(db, entry, migration).await?;
            act(
                actions,
                format,
                Action::Recorded,
                format!(
                    "checksum {} of migration {:04}_{}",
                    short(&ledger::checksum(migration.sql)),
                    migration.version,
                    migration.name
                ),
            );
        }
    }
    Ok((plan, added))
}

/// "view x" for a missing object, "index i on t" for a missing index, else the problem.
fn describe(finding: &Finding) -> String {
    match &finding.problem {
        Problem::Missing => {
            let kind = OBJECTS
                .iter()
                .find(|o| o.name == finding.object)
                .map_or("object", |o| o.kind.as_str());
            format!("{kind} {}", finding.object)
        }
        Problem::IndexMissing { index } => format!("index {index} on {}", finding.object),
        problem => format!("{}: {problem}", finding.object),
    }
}

/// Fills what a recreated view feeds: examples from history, or the annotated examples.
async fn refill_after(
    db: &Db,
    refill: Refill,
    limits: examples::BackfillLimits,
    interrupt: &mut Interrupt,
) -> anyhow::Result<u64> {
    match refill {
        Refill::None => Ok(0),
        Refill::Examples => {
            let view_query = examples::view_query(db).await?.ok_or_else(|| {
                classified(exit::SERVER_ERROR, "the materialized view was not created")
            })?;
            backfill(db, &view_query, limits, interrupt).await
        }
        Refill::Trainable => {
            examples::copy_trainable(db).await?;
            Ok(0)
        }
    }
}

/// `--dry-run`: the statements, in order, that a run would send now.
fn print_dry_run(plan: &Plan, cluster: Option<&str>) -> anyhow::Result<()> {
    let render = |sql: &str| -> anyhow::Result<String> {
        match cluster {
            None => Ok(sql.to_string()),
            Some(c) => rvbbit_sql_text::cluster::render(sql, c)
                .map_err(|e| classified(exit::USAGE, format!("cannot run on cluster {c}: {e}"))),
        }
    };
    say!("-- dry run: nothing is changed. Found: {}.", plan.found);
    for f in &plan.findings {
        say!("-- differs: {}: {}", f.object, f.problem);
    }
    for line in &plan.resuming {
        say!("-- would resume: {line}");
    }
    if plan.steps.is_empty() {
        say!("-- every migration is applied; nothing to run");
    }
    for step in &plan.steps {
        match step {
            Step::Statement {
                version,
                index,
                sql,
                what,
                exists,
                superseded_by,
            } => {
                if let Some(by) = superseded_by {
                    say!(
                        "-- {:04} step {}: {what} skipped: migration {by:04} removes or replaces it",
                        version,
                        index + 1
                    );
                } else if *exists && !matches!(creates(sql), Some(Creates::Drop { .. })) {
                    say!("-- {:04} step {}: {what} exists, skipped", version, index + 1);
                } else {
                    say!("-- {:04} step {}: {what}", version, index + 1);
                    say!("{};\n", render(sql)?);
                }
            }
            Step::Backfill { version, index } => say!(
                "-- {:04} step {}: backfill {} from {LOGS}, one month at a time, skipping traces that already have an example\n",
                version,
                index + 1,
                crate::schema::EXAMPLES_TABLE
            ),
            Step::Complete { version, .. } => {
                say!("-- {version:04}: every step done; recorded as applied")
            }
            Step::Repair { sql, what, .. } => {
                say!("-- repair: {what}");
                for s in sql {
                    say!("{};\n", render(s)?);
                }
            }
        }
    }
    if plan.found == Found::HandApplied {
        say!("-- then: every view still differing from this version is replaced");
    }
    Ok(())
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

/// Test-only (debug builds): `RVBBIT_TRAINING_FAILPOINT=exit-after-step:N` ends the
/// process abruptly, as a kill would, right after the N-th step of a migrate run.
struct Failpoint {
    exit_after: Option<u32>,
}

impl Failpoint {
    fn from_env() -> Failpoint {
        let exit_after = if cfg!(debug_assertions) {
            std::env::var("RVBBIT_TRAINING_FAILPOINT")
                .ok()
                .and_then(|v| {
                    v.strip_prefix("exit-after-step:")
                        .and_then(|n| n.parse().ok())
                })
        } else {
            None
        };
        Failpoint { exit_after }
    }

    fn after_step(&mut self, performed: u32) {
        if self.exit_after == Some(performed) {
            std::process::exit(137);
        }
    }
}

/// Backfills month by month, showing progress: a bar on a terminal, one line per
/// month otherwise, nothing with `-q`. Returns the number of examples added.
async fn backfill(
    db: &Db,
    view_query: &str,
    limits: examples::BackfillLimits,
    interrupt: &mut Interrupt,
) -> anyhow::Result<u64> {
    let before = examples::count(db).await?;
    let months = examples::log_months(db).await?;
    let total: u64 = months.iter().map(|(_, rows)| rows).sum();
    let bar = (!output::quiet() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  backfill [{bar:30}] {human_pos}/{human_len} log rows  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    for (done, (month, rows)) in months.iter().enumerate() {
        let label = format!("{}-{:02}", month / 100, month % 100);
        if let Some(bar) = &bar {
            bar.set_message(label.clone());
        }
        let step = examples::backfill_month(db, view_query, *month, limits);
        let result = interrupt
            .guard(step, || {
                format!(
                    "the schema is in place and at least {done} of {} months of history were backfilled",
                    months.len()
                )
            })
            .await;
        if let Err(e) = result {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return Err(e);
        }
        match &bar {
            Some(bar) => bar.inc(*rows),
            None => {
                if !output::quiet() {
                    eprintln!(
                        "  backfill {label}: {rows} log rows scanned ({}/{})",
                        done + 1,
                        months.len()
                    );
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_with_message("done");
    }
    Ok(examples::count(db).await?.saturating_sub(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(version: u32, sql: &str) -> Step {
        Step::Statement {
            version,
            index: 0,
            sql: sql.into(),
            what: String::new(),
            exists: false,
            superseded_by: None,
        }
    }

    fn superseded(steps: &[Step]) -> Vec<Option<u32>> {
        steps
            .iter()
            .map(|s| match s {
                Step::Statement { superseded_by, .. } => *superseded_by,
                _ => None,
            })
            .collect()
    }

    #[test]
    fn what_a_later_migration_drops_or_replaces_is_not_sent() {
        let mut steps = vec![
            statement(1, "CREATE TABLE IF NOT EXISTS kept (x UInt8)"),
            statement(2, "CREATE TABLE IF NOT EXISTS copy (x UInt8)"),
            statement(
                2,
                "CREATE MATERIALIZED VIEW IF NOT EXISTS copy_mv TO copy AS SELECT 1",
            ),
            statement(2, "INSERT INTO copy SELECT x FROM kept WHERE x NOT IN (1)"),
            statement(
                2,
                "ALTER TABLE kept ADD INDEX IF NOT EXISTS i x TYPE set(0)",
            ),
            statement(2, "CREATE OR REPLACE VIEW joined AS SELECT * FROM copy"),
            statement(3, "DROP VIEW IF EXISTS copy_mv"),
            statement(3, "DROP TABLE IF EXISTS copy"),
            statement(3, "CREATE OR REPLACE VIEW joined AS SELECT * FROM kept"),
        ];
        supersede(&mut steps);
        assert_eq!(
            superseded(&steps),
            vec![
                None,
                Some(3),
                Some(3),
                Some(3),
                None,
                Some(3),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn a_drop_in_an_earlier_migration_supersedes_nothing_later() {
        let mut steps = vec![
            statement(2, "DROP TABLE IF EXISTS t"),
            statement(3, "CREATE TABLE IF NOT EXISTS t (x UInt8)"),
        ];
        supersede(&mut steps);
        assert_eq!(superseded(&steps), vec![None, None]);
    }
}
