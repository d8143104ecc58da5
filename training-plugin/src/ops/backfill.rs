//! The backfill of examples from history, month by month, with its progress, and the
//! refills that follow a recreated view.

use super::interrupt::Interrupt;
use crate::db::Db;
use crate::drift::Refill;
use crate::examples;
use crate::failure::classified;
use crate::output;
use rvbbit_plugin_api::exit;
use std::io::IsTerminal;

/// Fills what a recreated view feeds: examples from history, or the annotated examples.
pub async fn refill(
    db: &Db,
    refill: Refill,
    limits: examples::BackfillLimits,
    interrupt: &mut Interrupt,
) -> anyhow::Result<u64> {
    match refill {
        Refill::None => Ok(0),
        Refill::Examples => examples_from_history(db, limits, interrupt).await,
        Refill::Trainable => {
            examples::copy_trainable(db).await?;
            Ok(0)
        }
    }
}

/// The backfill through the materialized view's query, which must exist by now.
pub async fn examples_from_history(
    db: &Db,
    limits: examples::BackfillLimits,
    interrupt: &mut Interrupt,
) -> anyhow::Result<u64> {
    let view_query = examples::view_query(db)
        .await?
        .ok_or_else(|| classified(exit::SERVER_ERROR, "the materialized view was not created"))?;
    backfill(db, &view_query, limits, interrupt).await
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
                "  backfill [{bar:12}] {human_pos}/{human_len}  {rate}  ETA {eta}  {msg}",
            )
            .map(|style| {
                // A whole number of log rows a second (indicatif's own shows 4
                // decimals). At 10M rows the line is 77 columns.
                style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}/s", indicatif::HumanCount(state.per_sec() as u64));
                    },
                )
            })
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
            // Cleared, so the error that follows starts a line of its own.
            if let Some(bar) = &bar {
                bar.finish_and_clear();
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
