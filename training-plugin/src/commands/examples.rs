//! `rvbbit training examples`: the few-shot examples rvbbit injects into a cell's
//! prompt, retrieved exactly as rvbbit does: from `training_examples_with_annotations`,
//! for one cascade and cell, trainable, with non-empty input and output, optionally
//! verified only, with confidence at least the minimum, in the strategy's order.

use super::{parse_confidence, run, Format};
use crate::connection::{ConnectionArgs, ENV_HELP};
use crate::db::Db;
use crate::output::{self, OutputArgs};
use anyhow::Context;
use clap::Parser;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::CommandResult;

/// How rvbbit orders the candidates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Newest first
    Recent,
    /// Highest confidence first, then newest
    HighConfidence,
    /// Any order (a new draw each time)
    Random,
}

impl Strategy {
    fn order_by(self) -> &'static str {
        match self {
            Strategy::Recent => "timestamp DESC",
            Strategy::HighConfidence => "confidence DESC, timestamp DESC",
            Strategy::Random => "rand()",
        }
    }
}

/// Show the few-shot examples rvbbit would inject for a cascade's cell
#[derive(Parser, Debug)]
#[command(after_help = ENV_HELP)]
pub struct Args {
    /// Cascade id
    #[arg(long, value_name = "CASCADE_ID")]
    pub cascade: String,
    /// Cell name
    #[arg(long, value_name = "CELL")]
    pub cell: String,
    /// Order of the candidates
    #[arg(long, value_enum, default_value_t = Strategy::Recent)]
    pub strategy: Strategy,
    /// How many examples
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Minimum confidence (examples without an assessed confidence never qualify, as in rvbbit)
    #[arg(long, value_name = "X", default_value_t = 0.8, allow_hyphen_values = true, value_parser = parse_confidence)]
    pub min_confidence: f32,
    /// Only examples a person verified
    #[arg(long)]
    pub verified_only: bool,
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
        examples(&db, &args).await
    })
}

rvbbit_plugin_api::register_command!(path: "training examples", args: Args, run: exec);

#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug)]
pub struct Example {
    pub trace_id: String,
    pub user_input: String,
    pub assistant_output: String,
    pub confidence: Option<f32>,
    /// `timestamp` as ClickHouse prints it (UTC, microseconds).
    pub timestamp: String,
}

/// rvbbit's retrieval query. Values travel as parameters; only the ORDER BY, chosen
/// from a closed set, is part of the text.
pub fn retrieval_sql(strategy: Strategy) -> String {
    format!(
        "SELECT trace_id, user_input, assistant_output, confidence, toString(timestamp) AS timestamp \
         FROM training_examples_with_annotations \
         WHERE cascade_id = {{cascade:String}} AND cell_name = {{cell:String}} AND trainable = true \
         AND user_input != '' AND assistant_output != '' \
         AND (NOT {{verified_only:Bool}} OR verified = true) \
         AND confidence >= {{min_confidence:Float32}} \
         ORDER BY {} LIMIT {{limit:UInt32}}",
        strategy.order_by()
    )
}

async fn examples(db: &Db, args: &Args) -> anyhow::Result<i32> {
    let rows = db
        .fetch_all::<Example>(
            db.query(&retrieval_sql(args.strategy))
                .param("cascade", &args.cascade)
                .param("cell", &args.cell)
                .param("verified_only", args.verified_only)
                .param("min_confidence", args.min_confidence)
                .param("limit", args.limit),
        )
        .await
        .context("reading training_examples_with_annotations (run `rvbbit training migrate` if it is missing)")?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!(
                    "no trainable examples for cascade {} cell {} at confidence >= {}",
                    args.cascade, args.cell, args.min_confidence
                );
            } else {
                // One block per example, each line clipped to 80 columns.
                let clip = |label: &str, text: &str| {
                    let one_line = text.replace(['\n', '\r', '\t'], " ");
                    let room = 78 - label.chars().count();
                    if one_line.chars().count() > room {
                        format!(
                            "  {label}{}…",
                            one_line.chars().take(room - 1).collect::<String>()
                        )
                    } else {
                        format!("  {label}{one_line}")
                    }
                };
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    let confidence = r
                        .confidence
                        .map_or_else(|| "-".into(), |c| format!("{c:.2}"));
                    let when = r.timestamp.get(..19).unwrap_or(&r.timestamp);
                    println!(
                        "{}  confidence {confidence}  {when}",
                        output::green(&r.trace_id)
                    );
                    println!("{}", clip("user:      ", &r.user_input));
                    println!("{}", clip("assistant: ", &r.assistant_output));
                }
            }
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}
