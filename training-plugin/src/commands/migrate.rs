//! `rvbbit training migrate` (also `rvbbit sql migrate training`): applies the
//! embedded migrations statement by statement, backfills examples from history, and
//! ends with the verification summary.

use super::{parse, run, verify, Format};
use crate::connection::{ConnectionArgs, ENV_HELP};
use crate::db::Db;
use crate::examples;
use crate::failure::classified;
use crate::migrations::{creates, Creates, MIGRATIONS};
use crate::schema::LOGS;
use crate::sql_split::split;
use anyhow::Context;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;
use std::ffi::OsString;

/// Create or complete the training tables and views (safe to run again)
#[derive(Parser, Debug)]
#[command(after_help = ENV_HELP)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Create the database first if it does not exist
    #[arg(long)]
    pub create_database: bool,
}

fn exec_as(bin_name: &'static str, args: Vec<OsString>) -> CommandResult {
    let args: Args = parse(bin_name, args)?;
    run(&args.connection, |target| async move {
        migrate(Db::connect(target).await?, args.create_database).await
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

async fn migrate(db: Db, create_database: bool) -> anyhow::Result<i32> {
    let database = db.target.database.clone();
    println!(
        "ClickHouse {} at {}, database {database}",
        db.version,
        db.target.address()
    );
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
        println!("  created  database {database}");
    }
    let mut existing = db.objects().await?;
    if !existing.contains_key(LOGS) {
        return Err(classified(
            exit::MISSING_PREREQUISITE,
            format!("table {database}.{LOGS} does not exist: the training system reads rvbbit's log table, which rvbbit creates when it first logs to this database; run rvbbit against it first, or choose another with --database"),
        ));
    }
    let mut indexes = index_names(&db).await?;
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
                })?;
            match (&target, already) {
                (Some(_), true) => println!("  exists   {what}"),
                (Some(_), false) => println!("  created  {what}"),
                (None, _) => println!("  ran      {what}"),
            }
        }
        existing = db.objects().await?;
        indexes = index_names(&db).await?;
    }
    let view_query = examples::view_query(&db)
        .await?
        .ok_or_else(|| classified(exit::SERVER_ERROR, "the materialized view was not created"))?;
    let added = examples::backfill(&db, &view_query).await?;
    if added == 0 {
        println!("  backfill examples already cover {LOGS}");
    } else {
        println!("  backfill added {added} examples from existing {LOGS} rows");
    }
    println!();
    let report = verify::checks(&db).await?;
    verify::print(&report, Format::Table)?;
    Ok(if report.ok {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    })
}

async fn index_names(db: &Db) -> anyhow::Result<Vec<(String, String)>> {
    let q = db
        .server_query(
            "SELECT table, name FROM system.data_skipping_indices WHERE database = {db:String}",
        )
        .param("db", &db.target.database);
    db.fetch_all::<(String, String)>(q).await
}
