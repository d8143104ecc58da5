//! The applier: under the lease, plans again (another run may have done the work while
//! this one waited), runs the steps with the ledger written around each, then repairs
//! what is still drifted when asked to (or when the install was made by hand), and
//! ends with the catch-up backfill.

use super::backfill;
use super::interrupt::Interrupt;
use super::plan::{self, Plan, State, Step};
use super::report::Actions;
use super::{refuse, short, stop_after_migration, Options};
use crate::db::Db;
use crate::drift::{self, Finding, Refill};
use crate::examples;
use crate::failure::classified;
use crate::ledger;
use crate::migrations::{creates, Creates, MIGRATIONS};
use crate::model::{Action, Fix, Found, Problem};
use crate::output::Format;
use crate::say;
use crate::schema::OBJECTS;
use anyhow::Context;
use rvbbit_plugin_api::exit;

/// Runs the plan; returns it with the number of examples added.
pub async fn apply(
    db: &Db,
    options: &Options<'_>,
    interrupt: &mut Interrupt,
    actions: &mut Actions,
) -> anyhow::Result<(Plan, u64)> {
    let format = options.format;
    let cluster = options.cluster;
    let limits = options.limits;
    let plan = plan::plan(
        &State::read(db).await?,
        MIGRATIONS,
        options.repair,
        stop_after_migration(),
    )?;
    refuse(db, &plan, options.repair)?;
    if format == Format::Table {
        match plan.found {
            Found::HandApplied => {
                say!("  found a hand-applied install (made by hand from an earlier version of the training SQL):");
                for f in &plan.findings {
                    say!("    {}: {}", f.object, f.problem);
                }
                say!("  upgrading it in place; every annotation is kept");
            }
            Found::New => say!("  no training objects yet: installing"),
            Found::Installed => {}
        }
        for line in &plan.resuming {
            say!("  resuming: {line}");
        }
    }
    let mut failpoint = Failpoint::from_env();
    let mut added = 0u64;
    let mut run: Option<ledger::Run<'_>> = None;
    let mut performed = 0u32;
    for step in &plan.steps {
        let version = step.version();
        // Finish the previous migration's ledger row when this step belongs to another.
        if run.is_some() && run.as_ref().map(|r| r.version) != version {
            if let Some(r) = run.take() {
                r.applied().await?;
            }
        }
        if let (Some(version), None) = (version, &run) {
            let migration = MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .ok_or_else(|| classified(exit::INTERNAL, format!("no migration {version}")))?;
            let note = if plan.found == Found::HandApplied {
                ledger::UPGRADING
            } else {
                ""
            };
            run = Some(
                ledger::Run::start(
                    db,
                    migration,
                    plan::step_count(migration)?,
                    step.index(),
                    note,
                )
                .await?,
            );
        }
        let outcome = match step {
            Step::Complete { .. } => continue,
            Step::Statement {
                what,
                superseded_by: Some(by),
                ..
            } => {
                actions.act(
                    Action::Skipped,
                    format!("{what} (migration {by:04} removes or replaces it)"),
                );
                Ok(())
            }
            Step::Statement {
                sql, what, exists, ..
            } => {
                let step_future = db.execute_ddl(sql, cluster);
                interrupt
                    .guard(step_future, || format!("{performed} steps were done"))
                    .await
                    .with_context(|| what.to_string())
                    .map(|()| actions.act(statement_action(sql, *exists), what.clone()))
            }
            Step::Backfill { .. } => backfill::examples_from_history(db, limits, interrupt)
                .await
                .map(|n| added += n),
            Step::Repair { sql, what, refill } => {
                let mut result = Ok(());
                for statement in sql {
                    let step_future = db.execute_ddl(statement, cluster);
                    result = interrupt
                        .guard(step_future, || format!("{performed} steps were done"))
                        .await
                        .with_context(|| format!("repairing {what}"));
                    if result.is_err() {
                        break;
                    }
                }
                if result.is_ok() {
                    result = backfill::refill(db, *refill, limits, interrupt)
                        .await
                        .map(|n| added += n);
                }
                result.map(|()| actions.act(Action::Repaired, what.clone()))
            }
        };
        if let Err(e) = outcome {
            if let Some(r) = &run {
                let _ = r
                    .failed(step.index(), &db.target.redact(&format!("{e:#}")))
                    .await;
            }
            return Err(e);
        }
        if let (Some(r), Step::Statement { index, .. } | Step::Backfill { index, .. }) =
            (&run, step)
        {
            r.progress(index + 1).await?;
        }
        performed += 1;
        failpoint.after_step(performed);
    }
    if let Some(r) = run.take() {
        r.applied().await?;
    }
    if stop_after_migration().is_some() {
        // Test-only: leave the database as that version left it.
        return Ok((plan, added));
    }
    // Objects or indexes missing although their migration is applied (dropped by hand)
    // are created again: that loses nothing. What else still differs (views kept by IF
    // NOT EXISTS, definitions changed by hand) is put right when repairing or upgrading.
    let repairing = options.repair || plan.found == Found::HandApplied;
    let mut backfilled = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Backfill { .. }));
    {
        let live = drift::snapshot(db).await?;
        for finding in drift::compare(db, &live, true).await? {
            let fix = finding.fix();
            match fix {
                Fix::Refused => continue,
                Fix::RepairFirst | Fix::RepairAfter if !repairing => continue,
                _ => {}
            }
            let Some((sql, refill)) = finding.repair.statements() else {
                continue;
            };
            for statement in &sql {
                interrupt
                    .guard(db.execute_ddl(statement, cluster), || {
                        format!("{performed} steps were done")
                    })
                    .await
                    .with_context(|| {
                        format!("repairing {}: {}", finding.object, finding.problem)
                    })?;
            }
            backfilled |= refill == Refill::Examples;
            added += backfill::refill(db, refill, limits, interrupt).await?;
            actions.act(
                if fix == Fix::Create {
                    Action::Created
                } else {
                    Action::Repaired
                },
                describe(&finding),
            );
            performed += 1;
            failpoint.after_step(performed);
        }
    }
    // Every run ends with the catch-up backfill: log rows whose example was lost (the
    // view missing for a while, a table truncated) get one; nothing is duplicated.
    if !backfilled && db.objects().await?.contains_key(crate::schema::EXAMPLES_MV) {
        added += backfill::refill(db, Refill::Examples, limits, interrupt).await?;
    }
    if db
        .objects()
        .await?
        .contains_key(crate::schema::TRAINABLE_EXAMPLES)
    {
        examples::copy_trainable(db).await?;
        examples::refresh_values(db).await?;
    }
    if plan.found == Found::HandApplied {
        ledger::replace_note(db, ledger::UPGRADING, ledger::UPGRADED).await?;
    }
    if repairing {
        for (entry, migration) in &plan.mismatched {
            ledger::accept_checksum(db, entry, migration).await?;
            actions.act(
                Action::Recorded,
                format!(
                    "checksum {} of migration {:04}_{}",
                    short(&ledger::checksum(migration.sql)),
                    migration.version,
                    migration.name
                ),
            );
        }
    }
    Ok((plan, added))
}

/// What sending a migration's statement did, given whether its object existed.
fn statement_action(sql: &str, exists: bool) -> Action {
    match creates(sql) {
        Some(Creates::Object { .. }) | Some(Creates::Index { .. }) if exists => Action::Exists,
        Some(Creates::Object { .. }) | Some(Creates::Index { .. }) => Action::Created,
        Some(Creates::Replace { .. }) => Action::Replaced,
        Some(Creates::Drop { .. }) if exists => Action::Removed,
        Some(Creates::Drop { .. }) => Action::Absent,
        _ => Action::Ran,
    }
}

/// "view x" for a missing object, "index i on t" for a missing index, else the problem.
fn describe(finding: &Finding) -> String {
    match &finding.problem {
        Problem::Missing => {
            let kind = OBJECTS
                .iter()
                .find(|o| o.name == finding.object)
                .map_or("object", |o| o.kind.as_str());
            format!("{kind} {}", finding.object)
        }
        Problem::IndexMissing { index } => format!("index {index} on {}", finding.object),
        problem => format!("{}: {problem}", finding.object),
    }
}

/// Test-only (debug builds): `RVBBIT_TRAINING_FAILPOINT=exit-after-step:N` ends the
/// process abruptly, as a kill would, right after the N-th step of a migrate run.
struct Failpoint {
    exit_after: Option<u32>,
}

impl Failpoint {
    fn from_env() -> Failpoint {
        let exit_after = if cfg!(debug_assertions) {
            std::env::var("RVBBIT_TRAINING_FAILPOINT")
                .ok()
                .and_then(|v| {
                    v.strip_prefix("exit-after-step:")
                        .and_then(|n| n.parse().ok())
                })
        } else {
            None
        };
        Failpoint { exit_after }
    }

    fn after_step(&mut self, performed: u32) {
        if self.exit_after == Some(performed) {
            std::process::exit(137);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::Repair;

    #[test]
    fn a_statement_says_what_it_did_to_its_object() {
        let table = "CREATE TABLE IF NOT EXISTS t (x UInt8)";
        assert_eq!(statement_action(table, true), Action::Exists);
        assert_eq!(statement_action(table, false), Action::Created);
        let index = "ALTER TABLE t ADD INDEX IF NOT EXISTS i x TYPE set(0)";
        assert_eq!(statement_action(index, true), Action::Exists);
        assert_eq!(
            statement_action("CREATE OR REPLACE VIEW v AS SELECT 1", true),
            Action::Replaced
        );
        let drop = "DROP VIEW IF EXISTS v";
        assert_eq!(statement_action(drop, true), Action::Removed);
        assert_eq!(statement_action(drop, false), Action::Absent);
        assert_eq!(
            statement_action("ALTER TABLE t MATERIALIZE INDEX i", false),
            Action::Ran
        );
    }

    #[test]
    fn a_repaired_finding_is_described_by_what_was_made() {
        let finding = |object: &str, problem: Problem| Finding {
            object: object.into(),
            problem,
            repair: Repair::Run(Vec::new()),
        };
        assert_eq!(
            describe(&finding(crate::schema::EXAMPLES_MV, Problem::Missing)),
            "materialized view training_examples_mv"
        );
        assert_eq!(
            describe(&finding("other", Problem::Missing)),
            "object other"
        );
        assert_eq!(
            describe(&finding(
                "t",
                Problem::IndexMissing {
                    index: "idx".into()
                }
            )),
            "index idx on t"
        );
        assert_eq!(
            describe(&finding("t", Problem::ColumnMissing { column: "c".into() })),
            "t: column c missing"
        );
    }
}
