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
use crate::output::{self, Format};
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
    let plan = plan::plan(
        &State::read(db).await?,
        MIGRATIONS,
        options.repair,
        stop_after_migration(),
    )?;
    refuse(db, &plan, options.repair)?;
    if options.format == Format::Table {
        announce(&plan);
    }
    let mut applier = Applier {
        db,
        options,
        interrupt,
        actions,
        failpoint: Failpoint::from_env(),
        performed: 0,
        added: 0,
    };
    applier.steps(&plan).await?;
    if stop_after_migration().is_some() {
        // Test-only: leave the database as that version left it.
        return Ok((plan, applier.added));
    }
    // Objects or indexes missing although their migration is applied (dropped by hand)
    // are created again: that loses nothing. What else still differs (views kept by IF
    // NOT EXISTS, definitions changed by hand) is put right when repairing or upgrading.
    let repairing = options.repair || plan.found == Found::HandApplied;
    let backfilled = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Backfill { .. }));
    let backfilled = applier.put_right(repairing).await? || backfilled;
    applier.catch_up(backfilled).await?;
    if plan.found == Found::HandApplied {
        ledger::replace_note(db, ledger::UPGRADING, ledger::UPGRADED).await?;
    }
    if repairing {
        applier.accept_checksums(&plan).await?;
    }
    Ok((plan, applier.added))
}

/// Says, for people, what was found and what is resumed.
fn announce(plan: &Plan) {
    let width = output::width();
    match plan.found {
        Found::HandApplied => {
            say!("  {}", output::hanging("found a hand-applied install (made by hand from an earlier version of the training SQL):", 2, width));
            for f in &plan.findings {
                say!(
                    "    {}",
                    output::hanging_after(&format!("{}: {}", f.object, f.problem), 4, 6, width)
                );
            }
            say!("  upgrading it in place; every annotation is kept");
        }
        Found::New => say!("  no training objects yet: installing"),
        Found::Installed => {}
    }
    for line in &plan.resuming {
        say!(
            "  {}",
            output::hanging_after(&format!("resuming: {line}"), 2, 4, width)
        );
    }
}

/// One run's progress: the steps performed and the examples added so far.
struct Applier<'a, 'o> {
    db: &'a Db,
    options: &'a Options<'o>,
    interrupt: &'a mut Interrupt,
    actions: &'a mut Actions,
    failpoint: Failpoint,
    performed: u32,
    added: u64,
}

impl Applier<'_, '_> {
    /// Runs the plan's steps, with each migration's ledger row written around them.
    async fn steps(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let db = self.db;
        let cluster = self.options.cluster;
        let limits = self.options.limits;
        let mut run: Option<ledger::Run<'_>> = None;
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
            let performed = self.performed;
            let outcome = match step {
                Step::Complete { .. } => continue,
                Step::Statement {
                    what,
                    superseded_by: Some(superseded),
                    ..
                } => {
                    self.actions
                        .act(Action::Skipped, format!("{what} ({superseded})"));
                    Ok(())
                }
                Step::Statement {
                    sql, what, exists, ..
                } => {
                    let step_future = db.execute_ddl(sql, cluster);
                    let result = self
                        .interrupt
                        .guard(step_future, || format!("{performed} steps were done"))
                        .await
                        .with_context(|| what.to_string());
                    result.map(|()| {
                        self.actions
                            .act(statement_action(sql, *exists), what.clone())
                    })
                }
                Step::Backfill { .. } => {
                    backfill::examples_from_history(db, limits, self.interrupt)
                        .await
                        .map(|n| self.added += n)
                }
                Step::Repair { sql, what, refill } => {
                    let mut result = Ok(());
                    for statement in sql {
                        let step_future = db.execute_ddl(statement, cluster);
                        result = self
                            .interrupt
                            .guard(step_future, || format!("{performed} steps were done"))
                            .await
                            .with_context(|| format!("repairing {what}"));
                        if result.is_err() {
                            break;
                        }
                    }
                    if result.is_ok() {
                        result = backfill::refill(db, *refill, limits, self.interrupt)
                            .await
                            .map(|n| self.added += n);
                    }
                    result.map(|()| self.actions.act(Action::Repaired, what.clone()))
                }
            };
            if let Err(e) = outcome {
                if let Some(r) = &run {
                    let message = db.target.redact(&format!("{e:#}"));
                    let interrupted = e
                        .downcast_ref::<crate::failure::Classified>()
                        .is_some_and(|c| c.exit_code == rvbbit_plugin_api::exit::INTERRUPTED);
                    let _ = if interrupted {
                        r.interrupted(step.index(), &message).await
                    } else {
                        r.failed(step.index(), &message).await
                    };
                }
                return Err(e);
            }
            if let (Some(r), Step::Statement { index, .. } | Step::Backfill { index, .. }) =
                (&run, step)
            {
                r.progress(index + 1).await?;
            }
            self.stepped();
        }
        if let Some(r) = run.take() {
            r.applied().await?;
        }
        Ok(())
    }

    /// After the migrations: creates what is missing and, when `repairing`, repairs
    /// what still differs. Returns whether the examples were backfilled.
    async fn put_right(&mut self, repairing: bool) -> anyhow::Result<bool> {
        let db = self.db;
        let cluster = self.options.cluster;
        let mut backfilled = false;
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
            let performed = self.performed;
            for statement in &sql {
                self.interrupt
                    .guard(db.execute_ddl(statement, cluster), || {
                        format!("{performed} steps were done")
                    })
                    .await
                    .with_context(|| {
                        format!("repairing {}: {}", finding.object, finding.problem)
                    })?;
            }
            backfilled |= refill == Refill::Examples;
            self.added += backfill::refill(db, refill, self.options.limits, self.interrupt).await?;
            self.actions.act(
                if fix == Fix::Create {
                    Action::Created
                } else {
                    Action::Repaired
                },
                describe(&finding),
            );
            self.stepped();
        }
        Ok(backfilled)
    }

    /// Every run ends with the catch-up backfill: log rows whose example was lost (the
    /// view missing for a while, a table truncated) get one; nothing is duplicated.
    /// Then the trainable examples are copied and their values refreshed.
    async fn catch_up(&mut self, backfilled: bool) -> anyhow::Result<()> {
        let db = self.db;
        if !backfilled && db.objects().await?.contains_key(crate::schema::EXAMPLES_MV) {
            self.added +=
                backfill::refill(db, Refill::Examples, self.options.limits, self.interrupt).await?;
        }
        let objects = db.objects().await?;
        if objects.contains_key(crate::schema::EXAMPLES_TABLE) {
            // Annotations the state table has not seen (written while its view was
            // missing, or before their example was copied in), then the log values
            // rvbbit wrote after the rows (docs/MIGRATION_GUIDE.md, "Late log values").
            // The worker's scores still in their buffer are applied first.
            examples::settle_scores(db).await?;
            examples::catch_up_examples(db).await?;
            examples::refresh_examples(db).await?;
        }
        if objects.contains_key(crate::schema::TRAINABLE_EXAMPLES) {
            examples::copy_trainable(db).await?;
            // Annotations written while the filter view was missing (dropped, or not
            // yet created) reach the copies through the relay (0004's catch-up).
            if objects.contains_key(crate::schema::TRAINABLE_ANNOTATIONS) {
                examples::catch_up_annotations(db).await?;
            }
            examples::refresh_values(db).await?;
        }
        Ok(())
    }

    /// Records this version's checksum of each applied migration whose file changed.
    async fn accept_checksums(&mut self, plan: &Plan) -> anyhow::Result<()> {
        for (entry, migration) in &plan.mismatched {
            ledger::accept_checksum(self.db, entry, migration).await?;
            self.actions.act(
                Action::Recorded,
                format!(
                    "checksum {} of migration {:04}_{}",
                    short(&ledger::checksum(migration.sql)),
                    migration.version,
                    migration.name
                ),
            );
        }
        Ok(())
    }

    /// One more step done (the test failpoint may end the process here).
    fn stepped(&mut self) {
        self.performed += 1;
        self.failpoint.after_step(self.performed);
    }
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
            "materialized view training_examples_current_by_log_mv"
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
