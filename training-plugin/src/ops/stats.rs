//! The logic behind `rvbbit training stats`: reads Studio's KPI numbers per cascade and
//! cell from `training_stats_by_cascade` and prints them; `commands/stats.rs` only
//! parses the flags into [`StatsOptions`].

use crate::db::Db;
use crate::output::{self, Format};
use anyhow::Context;
use rvbbit_plugin_api::exit;

/// The view the numbers come from.
const VIEW: &str = "training_stats_by_cascade";

/// The query: every cascade, or the one given. Values travel as parameters.
pub const STATS_SQL: &str =
    "SELECT cascade_id, cell_name, trainable_count, verified_count, avg_confidence, total_executions \
     FROM training_stats_by_cascade \
     WHERE {all:Bool} OR cascade_id = {cascade:String} ORDER BY cascade_id, cell_name";

/// What `stats` was asked to show, the flags of its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsOptions {
    /// Only this cascade; every cascade when `None`.
    pub cascade: Option<String>,
    pub format: Format,
}

/// A row of `training_stats_by_cascade`.
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Stat {
    pub cascade_id: String,
    pub cell_name: String,
    pub trainable_count: u64,
    pub verified_count: u64,
    pub avg_confidence: Option<f64>,
    pub total_executions: u64,
}

/// Confidences are Float32: their average carries float noise past 6 digits, which
/// this rounds away.
pub fn rounded(confidence: f64) -> f64 {
    (confidence * 1e6).round() / 1e6
}

/// The line printed when there is nothing to show.
pub fn nothing_found(cascade: Option<&str>) -> String {
    format!(
        "no examples{}",
        cascade
            .map(|c| format!(" for cascade {c}"))
            .unwrap_or_default()
    )
}

/// A stat as the cells of its table row.
pub fn cells(r: &Stat) -> Vec<String> {
    vec![
        r.cascade_id.clone(),
        r.cell_name.clone(),
        r.trainable_count.to_string(),
        r.verified_count.to_string(),
        r.avg_confidence
            .map_or_else(|| "-".into(), output::confidence),
        r.total_executions.to_string(),
    ]
}

/// Reads the numbers and prints them as `options.format` asks; exit 0.
pub async fn stats(db: &Db, options: &StatsOptions) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
    // The worker's latest scores first (they reach the examples within 2 seconds).
    crate::examples::settle_scores(db).await?;
    let rows = db
        .fetch_all::<Stat>(
            db.query(STATS_SQL)
                .param("all", options.cascade.is_none())
                .param("cascade", options.cascade.as_deref().unwrap_or_default()),
        )
        .await
        .context("reading training_stats_by_cascade")?
        .into_iter()
        .map(|s| Stat {
            avg_confidence: s.avg_confidence.map(rounded),
            ..s
        })
        .collect::<Vec<_>>();
    match options.format {
        Format::Json => output::print_json(&rows)?,
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!("{}", nothing_found(options.cascade.as_deref()));
            } else {
                // Names are cut with `…` when the line is too narrow, never broken;
                // the numbers stay whole.
                use output::Fit::{Cut, Whole};
                let table = output::fitted_table(
                    &[
                        "cascade",
                        "cell",
                        "trainable",
                        "verified",
                        "avg conf",
                        "examples",
                    ],
                    &[Cut, Cut, Whole, Whole, Whole, Whole],
                    &rows.iter().map(cells).collect::<Vec<_>>(),
                    output::width(),
                );
                println!("{table}");
            }
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(avg_confidence: Option<f64>) -> Stat {
        Stat {
            cascade_id: "sql_analyst".into(),
            cell_name: "plan".into(),
            trainable_count: 3,
            verified_count: 1,
            avg_confidence,
            total_executions: 18,
        }
    }

    #[test]
    fn float32_noise_in_the_average_is_rounded_away() {
        let noisy = (f64::from(0.9_f32) + f64::from(0.8_f32)) / 2.0;
        assert_ne!(noisy, 0.85);
        assert_eq!(rounded(noisy), 0.85);
        assert_eq!(rounded(1.0), 1.0);
        assert_eq!(rounded(0.0), 0.0);
        assert_eq!(rounded(0.1234567), 0.123457);
    }

    #[test]
    fn nothing_found_names_the_cascade_asked_for() {
        assert_eq!(nothing_found(None), "no examples");
        assert_eq!(
            nothing_found(Some("sql_analyst")),
            "no examples for cascade sql_analyst"
        );
    }

    #[test]
    fn a_row_shows_its_numbers_and_a_dash_for_no_confidence() {
        assert_eq!(
            cells(&stat(Some(0.85))),
            vec!["sql_analyst", "plan", "3", "1", "0.85", "18"]
        );
        assert_eq!(cells(&stat(None))[4], "-");
    }

    #[test]
    fn the_query_reads_the_view_with_its_values_as_parameters() {
        assert!(STATS_SQL.contains(&format!("FROM {VIEW} ")));
        assert!(STATS_SQL.contains("{all:Bool}") && STATS_SQL.contains("{cascade:String}"));
        assert!(STATS_SQL.ends_with("ORDER BY cascade_id, cell_name"));
    }
}
