//! `rvbbit training verify`: checks every object of the training system, its indexes,
//! and that examples cover the qualifying rows of `unified_logs`.

use super::{parse, run, Format};
use crate::connection::{ConnectionArgs, ENV_HELP};
use crate::db::Db;
use crate::examples;
use crate::output::{self, OutputArgs};
use crate::say;
use crate::schema::{ANNOTATIONS, ANNOTATION_INDEXES, EXAMPLES_MV, EXAMPLES_TABLE, LOGS, OBJECTS};
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;

/// Check that the training system is installed correctly
#[derive(Parser, Debug)]
#[command(after_help = ENV_HELP)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn exec(args: Vec<OsString>) -> CommandResult {
    let args: Args = parse("rvbbit training verify", args)?;
    run(&args.connection, &args.output, |target| async move {
        let db = Db::connect(target).await?;
        let report = checks(&db).await?;
        print(&report, args.format)?;
        Ok(if report.ok {
            exit::SUCCESS
        } else {
            exit::CHECK_FAILED
        })
    })
}

rvbbit_plugin_api::register_command!(
    path: "training verify",
    about: "Check the training tables and views, their columns, indexes and examples",
    run: exec,
);

#[derive(Serialize, Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub ok: bool,
    pub database: String,
    pub server_version: String,
    pub checks: Vec<Check>,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Runs every check. Failing checks are results, not errors: only a failure to talk
/// to the server is an `Err`.
pub async fn checks(db: &Db) -> anyhow::Result<Report> {
    let database = db.target.database.clone();
    let mut out = Vec::new();
    if !db.database_exists().await? {
        out.push(check(
            format!("database {database}"),
            false,
            "does not exist; create it with `rvbbit training migrate --create-database`",
        ));
        return Ok(Report {
            ok: false,
            database,
            server_version: db.version.clone(),
            checks: out,
        });
    }
    let engines = db.objects().await?;
    let q = db
        .server_query("SELECT table, name, type FROM system.columns WHERE database = {db:String}")
        .param("db", &database);
    let mut columns: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (table, name, ty) in db.fetch_all::<(String, String, String)>(q).await? {
        columns.entry(table).or_default().insert(name, ty);
    }

    for expected in OBJECTS {
        let name = format!("{} {}", expected.kind, expected.name);
        let Some(engine) = engines.get(expected.name) else {
            out.push(check(name, false, "missing; run `rvbbit training migrate`"));
            continue;
        };
        if engine != expected.engine {
            out.push(check(
                name,
                false,
                format!(
                    "is a {engine}, expected a {} ({})",
                    expected.kind, expected.engine
                ),
            ));
            continue;
        }
        let live = columns.get(expected.name).cloned().unwrap_or_default();
        let problems: Vec<String> = expected
            .columns
            .iter()
            .filter_map(|(col, ty)| match live.get(*col) {
                None => Some(format!("column {col} missing")),
                Some(t) if t != ty => Some(format!("column {col} is {t}, expected {ty}")),
                Some(_) => None,
            })
            .collect();
        if problems.is_empty() {
            out.push(check(
                name,
                true,
                format!("{engine}, {} columns", live.len()),
            ));
        } else {
            out.push(check(name, false, problems.join("; ")));
        }
    }

    if engines.contains_key(ANNOTATIONS) {
        let q = db
            .server_query("SELECT name FROM system.data_skipping_indices WHERE database = {db:String} AND table = {t:String}")
            .param("db", &database)
            .param("t", ANNOTATIONS);
        let present = db.fetch_all::<String>(q).await?;
        for index in ANNOTATION_INDEXES {
            let ok = present.iter().any(|p| p == index);
            out.push(check(
                format!("index {index} on {ANNOTATIONS}"),
                ok,
                if ok {
                    "present"
                } else {
                    "missing; run `rvbbit training migrate`"
                },
            ));
        }
    }

    if !engines.contains_key(LOGS) {
        out.push(check(
            format!("table {LOGS}"),
            false,
            format!("missing: the training system reads rvbbit's log table; run rvbbit against database {database} first"),
        ));
    } else if engines.contains_key(EXAMPLES_TABLE) {
        if let Some(view_query) = examples::view_query(db).await? {
            let missing = examples::missing(db, &view_query).await?;
            let total = examples::count(db).await?;
            out.push(check(
                "examples populated",
                missing == 0,
                if missing == 0 {
                    format!("{total} examples; every qualifying {LOGS} row has one")
                } else {
                    format!("{missing} qualifying {LOGS} rows have no example; run `rvbbit training migrate` to backfill them")
                },
            ));
            let duplicates = examples::duplicates(db).await?;
            out.push(check(
                "examples unique",
                duplicates == 0,
                if duplicates == 0 {
                    "one example per trace".to_string()
                } else {
                    format!("{duplicates} examples are stored more than once (same trace_id); they merge away in the background, and `OPTIMIZE TABLE training_examples FINAL` merges them now")
                },
            ));
        } else if engines.contains_key(EXAMPLES_MV) {
            out.push(check(
                "examples populated",
                false,
                format!("cannot read the query of {EXAMPLES_MV}"),
            ));
        }
    }
    let ok = out.iter().all(|c| c.ok);
    Ok(Report {
        ok,
        database,
        server_version: db.version.clone(),
        checks: out,
    })
}

pub fn print(report: &Report, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Format::Table => {
            let width = report
                .checks
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(0);
            for c in &report.checks {
                let mark = if c.ok {
                    output::green("ok  ")
                } else {
                    output::red("FAIL")
                };
                say!("  {mark} {:width$}  {}", c.name, c.detail);
            }
            let total = report.checks.len();
            match report.checks.iter().filter(|c| !c.ok).count() {
                0 => say!(
                    "verify: all {total} checks passed in database {}",
                    report.database
                ),
                failed => say!(
                    "verify: {failed} of {total} checks failed in database {}",
                    report.database
                ),
            }
        }
    }
    Ok(())
}
