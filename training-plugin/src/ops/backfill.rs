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
        Refill::Annotations => {
            examples::catch_up_examples(db).await?;
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

/// The widest a rate is drawn (`9,999,999/s`), an ETA (`59m`) and a month (`2026-05`).
const RATE_COLUMNS: usize = 11;
const ETA_COLUMNS: usize = 3;
const MONTH_COLUMNS: usize = 7;

/// The progress bar's template for a terminal `width` columns wide and `total` log
/// rows: the bar 12 columns wide when the line fits, narrower (to 4) when not; then
/// the month, the ETA and the rate are left out, in that order, until it fits.
/// `label` names the bar (`backfill`, `export`).
pub fn labelled_bar_template(label: &str, width: usize, total: u64) -> String {
    let count = indicatif::HumanCount(total).to_string().chars().count();
    // "  LABEL [", "] ", then "done/total".
    let base = label.chars().count() + 4 + 2 + 2 * count + 1;
    let tiers = [
        (
            base + 2 + RATE_COLUMNS + 6 + ETA_COLUMNS + 2 + MONTH_COLUMNS,
            "  {rate}  ETA {eta}  {msg}",
        ),
        (
            base + 2 + RATE_COLUMNS + 6 + ETA_COLUMNS,
            "  {rate}  ETA {eta}",
        ),
        (base + 2 + RATE_COLUMNS, "  {rate}"),
        (base, ""),
    ];
    let (bar, tail) = tiers
        .iter()
        .find(|(columns, _)| columns + 4 <= width)
        .map_or((4, ""), |(columns, tail)| {
            ((width - columns).min(12), *tail)
        });
    format!("  {label} [{{bar:{bar}}}] {{human_pos}}/{{human_len}}{tail}")
}

/// A progress bar named `label` over `total` on stderr when it is a terminal (and not
/// `-q`): as wide as the terminal allows ([`labelled_bar_template`]), with a rate in
/// whole units a second.
pub fn terminal_bar(label: &str, total: u64) -> Option<indicatif::ProgressBar> {
    (!output::quiet() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&labelled_bar_template(
                label,
                output::stderr_width().unwrap_or(80),
                total,
            ))
            .map(|style| {
                // A whole number a second (indicatif's own shows 4 decimals).
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
    })
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
    let bar = terminal_bar("backfill", total);
    let route = examples::prepare_backfill(db).await?;
    let spill = examples::sort_spill(db).await?;
    for (done, (month, rows)) in months.iter().enumerate() {
        let label = examples::month_label(*month);
        if let Some(bar) = &bar {
            bar.set_message(label.clone());
        }
        let step = examples::backfill_month(db, view_query, *month, limits, route, spill);
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
            if route == examples::BackfillRoute::Staged {
                // The months done are kept where the views read them; the month that
                // failed may still be written on the server (an interruption does not
                // stop its statement there), so it stays staged for the next backfill.
                let finished: Vec<u32> = months[..done].iter().map(|(m, _)| *m).collect();
                let _ = examples::move_staged_months(db, Some(&finished), false).await;
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
    examples::finish_backfill(db, route).await?;
    if let Some(bar) = bar {
        bar.finish_with_message("done");
        // The bar leaves the cursor at the right edge of its line, relying on the
        // terminal to wrap what comes next; a line break of our own ends it for
        // every terminal (and for anything reading the screen's output).
        eprintln!();
    }
    Ok(examples::count(db).await?.saturating_sub(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template drawn at its widest: every field as wide as it gets.
    fn widest_line(template: &str, total: u64) -> String {
        let count = indicatif::HumanCount(total).to_string();
        let bar: usize = template
            .split("{bar:")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        template
            .replace(&format!("{{bar:{bar}}}"), &"=".repeat(bar))
            .replace("{human_pos}", &count)
            .replace("{human_len}", &count)
            .replace("{rate}", &"9".repeat(RATE_COLUMNS))
            .replace("{eta}", &"9".repeat(ETA_COLUMNS))
            .replace("{msg}", &"9".repeat(MONTH_COLUMNS))
    }

    #[test]
    fn on_80_columns_the_bar_has_everything() {
        let template = labelled_bar_template("backfill", 80, 10_000_000);
        assert_eq!(
            template,
            "  backfill [{bar:12}] {human_pos}/{human_len}  {rate}  ETA {eta}  {msg}"
        );
        assert!(widest_line(&template, 10_000_000).chars().count() <= 80);
    }

    #[test]
    fn the_bar_line_fits_every_width_giving_way_in_order() {
        for total in [1, 2_002, 200_000, 10_000_000] {
            for width in 40..=160 {
                let template = labelled_bar_template("backfill", width, total);
                let line = widest_line(&template, total);
                assert!(
                    line.chars().count() <= width,
                    "{total} rows at {width}: {line}"
                );
                assert!(template.starts_with("  backfill ["), "{template}");
            }
        }
        let narrow = labelled_bar_template("backfill", 60, 200_000);
        assert!(
            narrow.contains("{rate}  ETA {eta}") && !narrow.contains("{msg}"),
            "{narrow}"
        );
    }
}
