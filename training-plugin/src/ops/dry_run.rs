//! `migrate --dry-run`: the statements, in order, that a run would send now.

use super::plan::{Plan, Step};
use crate::failure::classified;
use crate::migrations::{creates, Creates};
use crate::model::Found;
use crate::say;
use crate::schema::{EXAMPLES_TABLE, LOGS};
use rvbbit_plugin_api::exit;

pub fn print(plan: &Plan, cluster: Option<&str>) -> anyhow::Result<()> {
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
                EXAMPLES_TABLE
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
