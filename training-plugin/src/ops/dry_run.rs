//! `migrate --dry-run`: the statements, in order, that a run would send now, as SQL
//! with comments (for people and for `clickhouse-client`) or as JSON (for scripts).
//! [`describe`] is pure: the plan in, what would happen out; the printers only format.

use super::plan::{Plan, Step};
use crate::failure::classified;
use crate::migrations::{creates, Creates};
use crate::model::Found;
use crate::output::Format;
use crate::say;
use crate::schema::{EXAMPLES_TABLE, LOGS};
use rvbbit_plugin_api::exit;
use serde::Serialize;

/// What a step of the plan would do.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Would {
    /// Send its statements.
    Run,
    /// Send nothing: what it makes exists, or a later migration removes it.
    Skip,
    /// Backfill the examples from the log.
    Backfill,
    /// Record a migration whose steps are all done as applied.
    Record,
    /// Send its statements to put drift right.
    Repair,
}

/// One step of the plan.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Planned {
    /// The migration it belongs to; absent for a repair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<u32>,
    /// Its number within the migration, from 1; absent for a repair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub would: Would,
    /// The object or the work, in words.
    pub what: String,
    /// Why it is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The statements it would send, as they would be sent (rendered for the cluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
}

/// The whole dry run.
#[derive(Serialize, Debug)]
pub struct DryRun {
    pub found: Found,
    /// Objects that differ from this version, with how.
    pub differs: Vec<Differs>,
    /// Migrations a previous run left in progress.
    pub resuming: Vec<String>,
    pub steps: Vec<Planned>,
    /// After the steps, views still differing from this version are replaced (an
    /// install made by hand).
    pub then_replace_differing_views: bool,
}

#[derive(Serialize, Debug)]
pub struct Differs {
    pub object: String,
    pub problem: String,
}

/// What running `plan` would do, with every statement rendered for `cluster`.
pub fn describe(plan: &Plan, cluster: Option<&str>) -> anyhow::Result<DryRun> {
    let render = |sql: &str| -> anyhow::Result<String> {
        match cluster {
            None => Ok(sql.to_string()),
            Some(c) => rvbbit_sql_text::cluster::render(sql, c)
                .map_err(|e| classified(exit::USAGE, format!("cannot run on cluster {c}: {e}"))),
        }
    };
    let mut steps = Vec::new();
    for step in &plan.steps {
        steps.push(match step {
            Step::Statement {
                version,
                index,
                sql,
                what,
                exists,
                superseded_by,
            } => {
                let (would, reason) = if let Some(superseded) = superseded_by {
                    (Would::Skip, Some(superseded.to_string()))
                } else if *exists && !matches!(creates(sql), Some(Creates::Drop { .. })) {
                    (Would::Skip, Some("exists".to_string()))
                } else {
                    (Would::Run, None)
                };
                Planned {
                    migration: Some(*version),
                    step: Some(index + 1),
                    would,
                    what: what.clone(),
                    reason,
                    sql: if would == Would::Run {
                        vec![render(sql)?]
                    } else {
                        Vec::new()
                    },
                }
            }
            Step::Backfill { version, index } => Planned {
                migration: Some(*version),
                step: Some(index + 1),
                would: Would::Backfill,
                what: format!("backfill {EXAMPLES_TABLE} from {LOGS}, one month at a time, skipping traces that already have an example"),
                reason: None,
                sql: Vec::new(),
            },
            Step::Complete { version, index } => Planned {
                migration: Some(*version),
                step: Some(index + 1),
                would: Would::Record,
                what: "every step done; recorded as applied".to_string(),
                reason: None,
                sql: Vec::new(),
            },
            Step::Repair { sql, what, .. } => Planned {
                migration: None,
                step: None,
                would: Would::Repair,
                what: what.clone(),
                reason: None,
                sql: sql.iter().map(|s| render(s)).collect::<anyhow::Result<_>>()?,
            },
        });
    }
    Ok(DryRun {
        found: plan.found,
        differs: plan
            .findings
            .iter()
            .map(|f| Differs {
                object: f.object.clone(),
                problem: f.problem.to_string(),
            })
            .collect(),
        resuming: plan.resuming.clone(),
        steps,
        then_replace_differing_views: plan.found == Found::HandApplied,
    })
}

/// The dry run as SQL with comments: every statement that would run, in order, and a
/// comment for everything else.
fn print_sql(dry: &DryRun) {
    say!("-- dry run: nothing is changed. Found: {}.", dry.found);
    for d in &dry.differs {
        say!("-- differs: {}: {}", d.object, d.problem);
    }
    for line in &dry.resuming {
        say!("-- would resume: {line}");
    }
    if dry.steps.is_empty() {
        say!("-- every migration is applied; nothing to run");
    }
    for p in &dry.steps {
        let at = match (p.migration, p.step) {
            (Some(m), Some(s)) => format!("{m:04} step {s}: "),
            _ => String::new(),
        };
        match p.would {
            Would::Skip => say!(
                "-- {at}{} {}",
                p.what,
                match p.reason.as_deref() {
                    Some("exists") => "exists, skipped".to_string(),
                    Some(reason) => format!("skipped: {reason}"),
                    None => "skipped".to_string(),
                }
            ),
            Would::Run => {
                say!("-- {at}{}", p.what);
                for s in &p.sql {
                    say!("{s};\n");
                }
            }
            Would::Backfill => say!("-- {at}{}\n", p.what),
            Would::Record => say!("-- {:04}: {}", p.migration.unwrap_or_default(), p.what),
            Would::Repair => {
                say!("-- repair: {}", p.what);
                for s in &p.sql {
                    say!("{s};\n");
                }
            }
        }
    }
    if dry.then_replace_differing_views {
        say!("-- then: every view still differing from this version is replaced");
    }
}

/// Prints the dry run of `plan` in `format`: the statements as SQL, or the plan as
/// the data of the JSON document (nothing else on stdout).
pub fn print(plan: &Plan, cluster: Option<&str>, format: Format) -> anyhow::Result<()> {
    let dry = describe(plan, cluster)?;
    match format {
        Format::Table => print_sql(&dry),
        Format::Json => {
            #[derive(Serialize)]
            struct Document<'a> {
                dry_run: bool,
                #[serde(flatten)]
                plan: &'a DryRun,
            }
            crate::output::print_json(&Document {
                dry_run: true,
                plan: &dry,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::Refill;

    fn plan(steps: Vec<Step>, found: Found) -> Plan {
        Plan {
            found,
            findings: Vec::new(),
            steps,
            resuming: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    fn statement(sql: &str, exists: bool, superseded_by: Option<u32>) -> Step {
        Step::Statement {
            version: 2,
            index: 0,
            sql: sql.to_string(),
            what: "table t".to_string(),
            exists,
            superseded_by: superseded_by.map(|by| crate::ops::plan::Superseded {
                by,
                why: crate::ops::plan::SupersededWhy::RemovesIt,
            }),
        }
    }

    #[test]
    fn each_step_says_what_it_would_do_and_only_runs_carry_sql() {
        let dry = describe(
            &plan(
                vec![
                    statement(
                        "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory",
                        false,
                        None,
                    ),
                    statement(
                        "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory",
                        true,
                        None,
                    ),
                    statement(
                        "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory",
                        false,
                        Some(3),
                    ),
                    statement("DROP TABLE IF EXISTS t SYNC", true, None),
                    Step::Backfill {
                        version: 1,
                        index: 7,
                    },
                    Step::Complete {
                        version: 3,
                        index: 8,
                    },
                    Step::Repair {
                        sql: vec!["ALTER TABLE t ADD INDEX i x TYPE minmax".to_string()],
                        what: "index i on t".to_string(),
                        refill: Refill::None,
                    },
                ],
                Found::Installed,
            ),
            None,
        )
        .expect("describes");
        let would: Vec<Would> = dry.steps.iter().map(|p| p.would).collect();
        assert_eq!(
            would,
            vec![
                Would::Run,
                Would::Skip,
                Would::Skip,
                Would::Run,
                Would::Backfill,
                Would::Record,
                Would::Repair
            ]
        );
        assert_eq!(dry.steps[1].reason.as_deref(), Some("exists"));
        assert_eq!(
            dry.steps[2].reason.as_deref(),
            Some("migration 0003 removes or replaces it")
        );
        assert!(dry.steps[1].sql.is_empty() && dry.steps[2].sql.is_empty());
        assert_eq!(
            dry.steps[3].sql,
            vec!["DROP TABLE IF EXISTS t SYNC".to_string()]
        );
        assert_eq!(
            (dry.steps[4].migration, dry.steps[4].step),
            (Some(1), Some(8))
        );
        assert_eq!(dry.steps[6].migration, None);
        assert!(!dry.then_replace_differing_views);
    }

    #[test]
    fn the_json_names_each_action_in_words() {
        let dry = describe(
            &plan(
                vec![Step::Backfill {
                    version: 1,
                    index: 0,
                }],
                Found::HandApplied,
            ),
            None,
        )
        .expect("describes");
        let json = serde_json::to_value(&dry).expect("serialises");
        assert_eq!(json["found"], "hand-applied");
        assert_eq!(json["steps"][0]["would"], "backfill");
        assert_eq!(json["then_replace_differing_views"], true);
        assert!(json["steps"][0].get("sql").is_none());
    }

    #[test]
    fn on_a_cluster_the_statements_are_rendered_for_it() {
        let dry = describe(
            &plan(
                vec![statement(
                    "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x",
                    false,
                    None,
                )],
                Found::New,
            ),
            Some("prod"),
        )
        .expect("describes");
        assert!(
            dry.steps[0].sql[0].contains("ON CLUSTER"),
            "{:?}",
            dry.steps[0].sql
        );
    }
}
