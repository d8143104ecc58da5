//! `rvbbit training examples`: the few-shot examples rvbbit injects into a cell's
//! prompt, retrieved exactly as rvbbit does: from `training_examples_with_annotations`,
//! for one cascade and cell, trainable, with non-empty input and output, optionally
//! verified only, with confidence at least the minimum, in the strategy's order.

use super::{parse_confidence, run, Format};
use crate::connection::{after_help, ConnectionArgs};
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
#[command(after_help = after_help(&[("the examples rvbbit would inject into a cell's prompt", "rvbbit training examples --cascade sql_analyst --cell plan"), ("every example of the cell, with its annotation: ids to annotate", "rvbbit training examples --cascade sql_analyst --cell plan --all"), ("verified examples only, highest confidence first", "rvbbit training examples --cascade sql_analyst --cell plan --verified-only --strategy high-confidence")]))]
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
    /// Every example of the cell, newest first, trainable or not, with its annotation
    /// if any: the trace ids to pass to `rvbbit training annotate`
    #[arg(long, conflicts_with_all = ["strategy", "min_confidence", "verified_only"])]
    pub all: bool,
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

/// An example of a cell as `--all` lists it: with its latest annotation, if any.
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug)]
pub struct Annotatable {
    pub trace_id: String,
    pub user_input: String,
    pub assistant_output: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    /// Empty when the trace has no annotation.
    pub annotated_by: String,
    /// `timestamp` as ClickHouse prints it (UTC, microseconds).
    pub timestamp: String,
}

/// Every example of a cell, newest first, with its latest annotation.
pub const ALL_SQL: &str =
    "SELECT trace_id, user_input, assistant_output, trainable, verified, confidence, \
     annotated_by, toString(timestamp) AS timestamp \
     FROM training_examples_with_annotations \
     WHERE cascade_id = {cascade:String} AND cell_name = {cell:String} \
     ORDER BY timestamp DESC, trace_id LIMIT {limit:UInt32}";

/// What `--all` shows of an example's annotation, in a few words.
pub fn annotation_summary(row: &Annotatable) -> String {
    if row.annotated_by.is_empty() {
        return "not annotated".into();
    }
    let mut words = vec![if row.trainable {
        "trainable"
    } else {
        "not trainable"
    }
    .to_string()];
    if row.verified {
        words.push("verified".into());
    }
    words.push(format!(
        "confidence {}",
        row.confidence
            .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)))
    ));
    words.push(format!("by {}", row.annotated_by));
    words.join(", ")
}

/// One line of `text` after `label`, clipped to 80 columns with `…`.
fn clip(label: &str, text: &str) -> String {
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
}

async fn all(db: &Db, args: &Args) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
    let rows = db
        .fetch_all::<Annotatable>(
            db.query(ALL_SQL)
                .param("cascade", &args.cascade)
                .param("cell", &args.cell)
                .param("limit", args.limit),
        )
        .await
        .with_context(|| format!("reading {VIEW}"))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!(
                    "no examples for cascade {} cell {}",
                    args.cascade, args.cell
                );
            }
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let when = r.timestamp.get(..19).unwrap_or(&r.timestamp);
                println!("{}  {when}", output::green(&r.trace_id));
                println!("  {}", annotation_summary(r));
                println!("{}", clip("user:      ", &r.user_input));
                println!("{}", clip("assistant: ", &r.assistant_output));
            }
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}

/// The view both listings read.
const VIEW: &str = "training_examples_with_annotations";

async fn examples(db: &Db, args: &Args) -> anyhow::Result<i32> {
    if args.all {
        return all(db, args).await;
    }
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
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
        .with_context(|| format!("reading {VIEW}"))?;
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
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    let confidence = r
                        .confidence
                        .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        annotated_by: &str,
        trainable: bool,
        verified: bool,
        confidence: Option<f32>,
    ) -> Annotatable {
        Annotatable {
            trace_id: "t".into(),
            user_input: String::new(),
            assistant_output: String::new(),
            trainable,
            verified,
            confidence,
            annotated_by: annotated_by.into(),
            timestamp: String::new(),
        }
    }

    #[test]
    fn an_example_without_annotation_says_so() {
        assert_eq!(
            annotation_summary(&row("", false, false, None)),
            "not annotated"
        );
    }

    #[test]
    fn an_annotation_is_summed_up_with_its_confidence_as_set() {
        assert_eq!(
            annotation_summary(&row("human", true, true, Some(0.875))),
            "trainable, verified, confidence 0.875, by human"
        );
        assert_eq!(
            annotation_summary(&row("confidence_worker", false, false, Some(0.9))),
            "not trainable, confidence 0.9, by confidence_worker"
        );
        assert_eq!(
            annotation_summary(&row("human", false, false, None)),
            "not trainable, confidence -, by human"
        );
    }

    #[test]
    fn confidences_show_as_set_without_float_noise() {
        assert_eq!(output::confidence(f64::from(0.875_f32)), "0.875");
        assert_eq!(output::confidence(f64::from(0.9_f32)), "0.9");
        assert_eq!(output::confidence(1.0), "1");
        assert_eq!(output::confidence(0.0), "0");
        assert_eq!(output::confidence(0.123456), "0.1235");
    }

    #[test]
    fn clipped_lines_fit_80_columns() {
        let line = clip("user:      ", &"x".repeat(200));
        assert_eq!(line.chars().count(), 80);
        assert!(line.ends_with('…'));
        assert_eq!(clip("user:      ", "a\nb"), "  user:      a b");
    }
}
