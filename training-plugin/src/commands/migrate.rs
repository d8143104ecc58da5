//! `rvbbit training migrate` (also `rvbbit sql migrate training`): applies the
//! embedded migrations statement by statement, backfills examples from history one
//! month at a time (with progress), and ends with the verification summary. Ctrl-C
//! stops between steps; everything done so far is kept and a re-run resumes.

use super::{parse, run, verify, Format};
use crate::connection::{ConnectionArgs, ENV_HELP};
use crate::db::Db;
use crate::examples;
use crate::failure::classified;
use crate::migrations::{creates, Creates, MIGRATIONS};
use crate::output::{self, OutputArgs};
use crate::say;
use crate::schema::{ANNOTATIONS, LOGS, OBJECTS};
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
        let mut interrupt = Interrupt::new()?;
        migrate(
            Db::connect(target).await?,
            args.create_database,
            args.format,
            &mut interrupt,
        )
        .await
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
    actions: Vec<Action>,
    backfilled_examples: u64,
    verify: verify::Report,
}

/// One object and what happened to it: "created", "exists" or "ran".
#[derive(serde::Serialize)]
struct Action {
    action: &'static str,
    object: String,
}

/// Records an action, and prints it for people in table format.
fn act(actions: &mut Vec<Action>, format: Format, action: &'static str, object: String) {
    if format == Format::Table {
        match action {
            "created" => say!("  {}  {object}", output::green("created")),
            "exists" => say!("  {}   {object}", output::dim("exists")),
            _ => say!("  {action:8} {object}"),
        }
    }
    actions.push(Action { action, object });
}

async fn migrate(
    db: Db,
    create_database: bool,
    format: Format,
    interrupt: &mut Interrupt,
) -> anyhow::Result<i32> {
    let database = db.target.database.clone();
    let mut actions = Vec::new();
    if format == Format::Table {
        say!(
            "ClickHouse {} at {}, database {database}",
            db.version,
            db.target.address()
        );
    }
    if !db.database_exists().await? {
        if !create_database {
            return Err(classified(
                exit::MISSING_PREREQUISITE,
                format!("database {database} does not exist on {}; pass --create-database to create it, or choose another with --database", db.target.address()),
            ));
        }
        db.execute(db.server_query(&format!("CREATE DATABASE IF NOT EXISTS `{database}`")))
            .await
            .with_context(|| format!("creating database {database}"))?;
        act(
            &mut actions,
            format,
            "created",
            format!("database {database}"),
        );
    }
    let mut existing = db.objects().await?;
    if !existing.contains_key(LOGS) {
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            format!("table {database}.{LOGS} does not exist: the training system reads rvbbit's log table, which rvbbit creates when it first logs to this database; run rvbbit against it first, or choose another with --database"),
        ));
    }
    refuse_foreign_objects(&db, &existing).await?;
    let mut indexes = index_names(&db).await?;
    let mut applied = 0usize;
    for migration in MIGRATIONS {
        let statements = split(migration.sql).map_err(|e| {
            classified(
                exit::INTERNAL,
                format!("migration {:04}_{}: {e}", migration.version, migration.name),
            )
        })?;
        for (n, statement) in statements.iter().enumerate() {
            let target = creates(&statement.text);
            let already = match &target {
                Some(Creates::Object { name, .. }) => existing.contains_key(name),
                Some(Creates::Index { table, name }) => {
                    indexes.contains(&(table.clone(), name.clone()))
                }
                None => false,
            };
            let what = target
                .as_ref()
                .map_or_else(|| format!("statement {}", n + 1), ToString::to_string);
            let step = async {
                db.execute(db.query(&statement.text))
                    .await
                    .with_context(|| {
                        format!(
                            "migration {:04}_{} statement {} of {} (line {}, {what})",
                            migration.version,
                            migration.name,
                            n + 1,
                            statements.len(),
                            statement.line
                        )
                    })
            };
            interrupt
                .guard(step, || format!("{applied} statements were applied"))
                .await?;
            applied += 1;
            let action = match (&target, already) {
                (Some(_), true) => "exists",
                (Some(_), false) => "created",
                (None, _) => "ran",
            };
            act(&mut actions, format, action, what);
        }
        existing = db.objects().await?;
        indexes = index_names(&db).await?;
    }
    let view_query = examples::view_query(&db)
        .await?
        .ok_or_else(|| classified(exit::SERVER_ERROR, "the materialized view was not created"))?;
    let added = backfill(&db, &view_query, interrupt).await?;
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

/// Backfills month by month, showing progress: a bar on a terminal, one line per
/// month otherwise, nothing with `-q`. Returns the number of examples added.
async fn backfill(db: &Db, view_query: &str, interrupt: &mut Interrupt) -> anyhow::Result<u64> {
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
        let step = examples::backfill_month(db, view_query, *month);
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

/// Refuses, before any statement, to build on objects of this schema's names that are
/// something else (a hand-applied install of an earlier version: `training_examples_mv`
/// a plain view, `confidence` not Nullable). `IF NOT EXISTS` would keep them, and the
/// backfill would read through the old view. Upgrading those is not done yet.
async fn refuse_foreign_objects(
    db: &Db,
    existing: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for expected in OBJECTS {
        if let Some(engine) = existing.get(expected.name) {
            if engine != expected.engine {
                problems.push(format!(
                    "{} is a {engine}, this version needs a {} ({})",
                    expected.name, expected.kind, expected.engine
                ));
            }
        }
    }
    if existing.contains_key(ANNOTATIONS) {
        let q = db
            .server_query("SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}")
            .param("db", &db.target.database)
            .param("t", ANNOTATIONS);
        let live: std::collections::BTreeMap<String, String> = db
            .fetch_all::<(String, String)>(q)
            .await?
            .into_iter()
            .collect();
        let expected = OBJECTS
            .iter()
            .find(|o| o.name == ANNOTATIONS)
            .map_or(&[][..], |o| o.columns);
        for (column, ty) in expected {
            match live.get(*column) {
                Some(t) if t != ty => problems.push(format!(
                    "{ANNOTATIONS}.{column} is {t}, this version needs {ty}"
                )),
                None => problems.push(format!("{ANNOTATIONS} has no column {column}")),
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(classified(
        exit::CHECK_FAILED,
        format!(
            "refusing to migrate database {}: {}. This looks like an install applied by hand from an earlier version of the training SQL, which this version cannot upgrade yet. Nothing was changed; your annotations are untouched. See docs/MIGRATION_GUIDE.md, \"An install applied by hand\".",
            db.target.database,
            problems.join("; ")
        ),
    ))
}

async fn index_names(db: &Db) -> anyhow::Result<Vec<(String, String)>> {
    let q = db
        .server_query(
            "SELECT table, name FROM system.data_skipping_indices WHERE database = {db:String}",
        )
        .param("db", &db.target.database);
    db.fetch_all::<(String, String)>(q).await
}
