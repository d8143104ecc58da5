//! `rvbbit training stats`: the numbers Studio's KPI cards show, per cascade and cell,
//! from `training_stats_by_cascade`.

use super::{run, Format};
use crate::connection::{after_help, ConnectionArgs};
use crate::db::Db;
use crate::output::{self, OutputArgs};
use anyhow::Context;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;

/// Show trainable, verified and total examples per cascade and cell
#[derive(Parser, Debug)]
#[command(after_help = after_help(&[("every cascade and cell, as a table", "rvbbit training stats"), ("one cascade, as JSON for a script", "rvbbit training stats --cascade sql_analyst --format json")]))]
pub struct Args {
    /// Only this cascade
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn exec(args: Args) -> CommandResult {
    let (connection, output) = (args.connection.clone(), args.output.clone());
    run(&connection, &output, |target| async move {
        let db = Db::connect(target).await?;
        stats(&db, &args).await
    })
}

rvbbit_plugin_api::register_command!(path: "training stats", args: Args, run: exec);

#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug)]
struct Stat {
    cascade_id: String,
    cell_name: String,
    trainable_count: u64,
    verified_count: u64,
    avg_confidence: Option<f64>,
    total_executions: u64,
}

async fn stats(db: &Db, args: &Args) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &["training_stats_by_cascade"]).await?;
    let rows = db
        .fetch_all::<Stat>(
            db.query(
                "SELECT cascade_id, cell_name, trainable_count, verified_count, avg_confidence, total_executions \
                 FROM training_stats_by_cascade \
                 WHERE {all:Bool} OR cascade_id = {cascade:String} ORDER BY cascade_id, cell_name",
            )
            .param("all", args.cascade.is_none())
            .param("cascade", args.cascade.as_deref().unwrap_or_default()),
        )
        .await
        .context("reading training_stats_by_cascade")?
        .into_iter()
        // Confidences are Float32: their average carries float noise past 6 digits.
        .map(|s| Stat { avg_confidence: s.avg_confidence.map(|c| (c * 1e6).round() / 1e6), ..s })
        .collect::<Vec<_>>();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!(
                    "no examples{}",
                    args.cascade
                        .as_ref()
                        .map(|c| format!(" for cascade {c}"))
                        .unwrap_or_default()
                );
            } else {
                let mut table = output::table(&[
                    "cascade",
                    "cell",
                    "trainable",
                    "verified",
                    "avg conf",
                    "examples",
                ]);
                for r in &rows {
                    table.add_row(vec![
                        r.cascade_id.clone(),
                        r.cell_name.clone(),
                        r.trainable_count.to_string(),
                        r.verified_count.to_string(),
                        r.avg_confidence
                            .map_or_else(|| "-".into(), output::confidence),
                        r.total_executions.to_string(),
                    ]);
                }
                println!("{table}");
            }
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}
