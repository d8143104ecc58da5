//! The planner: from the live state of the database, its ledger rows and the embedded
//! migrations, the steps that bring the database to this version. [`State::read`]
//! gathers everything it needs from the server (the server-formatted view queries
//! included); [`plan`] itself is a pure function.

use crate::db::Db;
use crate::drift::{self, Finding, Live, Refill, Repair, SameQueries};
use crate::failure::classified;
use crate::ledger::{self, Entry};
use crate::migrations::{creates, Creates, Migration};
use crate::model::{Fix, Found, LedgerStatus};
use crate::schema::OBJECTS;
use rvbbit_plugin_api::exit;
use rvbbit_sql_text::ddl::mentions;
use rvbbit_sql_text::split;

/// What the planner looks at: the live objects, the ledger rows, and the server's
/// verdict on each view's query.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub live: Live,
    pub entries: Vec<Entry>,
    pub same_queries: SameQueries,
}

impl State {
    /// Reads the state from the server: the objects, the ledger, then the view queries.
    pub async fn read(db: &Db) -> anyhow::Result<State> {
        let live = drift::snapshot(db).await?;
        let entries = ledger::read(db).await?;
        let same_queries = drift::same_queries(db, &live).await?;
        Ok(State {
            live,
            entries,
            same_queries,
        })
    }
}

/// One thing migrate does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A statement of migration `version`, number `index` (0-based) of its steps.
    Statement {
        version: u32,
        index: u32,
        sql: String,
        what: String,
        /// The object it creates already exists (shown as skipped by --dry-run); for a
        /// removal, the object to remove exists.
        exists: bool,
        /// A later migration of this run removes or replaces what it makes, or removes
        /// what it reads, so it is not sent (a new database does not build and drop
        /// version 2's copy).
        superseded_by: Option<Superseded>,
    },
    /// The backfill of the examples from history: the last step of the migration that
    /// creates the examples' materialized view ([`backfills`]).
    Backfill { version: u32, index: u32 },
    /// A migration whose every step is done but which a run did not live to record as
    /// applied: records it.
    Complete { version: u32, index: u32 },
    /// A repair of drift (or of a hand-applied install), outside any migration.
    Repair {
        sql: Vec<String>,
        what: String,
        refill: Refill,
    },
}

impl Step {
    /// The migration the step belongs to; `None` for a repair.
    pub fn version(&self) -> Option<u32> {
        match self {
            Step::Statement { version, .. }
            | Step::Backfill { version, .. }
            | Step::Complete { version, .. } => Some(*version),
            Step::Repair { .. } => None,
        }
    }

    /// How many steps of its migration come before it (0 for a repair).
    pub fn index(&self) -> u32 {
        match self {
            Step::Statement { index, .. }
            | Step::Backfill { index, .. }
            | Step::Complete { index, .. } => *index,
            Step::Repair { .. } => 0,
        }
    }
}

/// Why a statement is not sent: the migration whose work makes it pointless or impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    pub by: u32,
    pub why: SupersededWhy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupersededWhy {
    /// Migration `by` drops what the statement makes, or replaces the view again.
    RemovesIt,
    /// The statement reads an object this run never creates (migration `by` drops it).
    RemovesWhatItReads,
}

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.why {
            SupersededWhy::RemovesIt => {
                write!(f, "migration {:04} removes or replaces it", self.by)
            }
            SupersededWhy::RemovesWhatItReads => {
                write!(f, "migration {:04} removes what it reads", self.by)
            }
        }
    }
}

/// The whole plan: what was found and the steps that bring the database to this version.
#[derive(Debug)]
pub struct Plan {
    pub found: Found,
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
    /// Migrations a previous run left in progress: (version, done, total, who).
    pub resuming: Vec<String>,
    /// Applied migrations whose file changed since.
    pub mismatched: Vec<(Entry, &'static Migration)>,
}

/// Whether `migration` creates the examples' materialized view
/// ([`crate::schema::EXAMPLES_MV`]): its last step is then the backfill of the examples
/// from history, which reads that view's query. Which migration that is follows from
/// the files, not from a number kept here.
pub fn backfills(migration: &Migration) -> anyhow::Result<bool> {
    Ok(migration_steps(migration)?.iter().any(|(_, target)| {
        matches!(target, Some(Creates::Object { name, .. }) if name == crate::schema::EXAMPLES_MV)
    }))
}

/// Steps of one migration: its statements (the backfill, when it has one, is added by
/// [`step_count`] and [`plan`]).
fn migration_steps(migration: &Migration) -> anyhow::Result<Vec<(String, Option<Creates>)>> {
    let statements = split(migration.sql).map_err(|e| {
        classified(
            exit::INTERNAL,
            format!("migration {:04}_{}: {e}", migration.version, migration.name),
        )
    })?;
    Ok(statements
        .into_iter()
        .map(|s| {
            let target = creates(&s.text);
            (s.text, target)
        })
        .collect())
}

pub fn step_count(migration: &Migration) -> anyhow::Result<u32> {
    let n = migration_steps(migration)?.len() + usize::from(backfills(migration)?);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Plans the run from `state`: the repairs due before the migrations (when repairing,
/// or upgrading a hand-applied install), then every step of `migrations` (up to
/// `stop_after`) that is not done yet.
pub fn plan(
    state: &State,
    migrations: &'static [Migration],
    repair: bool,
    stop_after: Option<u32>,
) -> anyhow::Result<Plan> {
    let live = &state.live;
    let entries = &state.entries;
    let existing = drift::compare_with(live, &state.same_queries, false);
    let ours_in_ledger = !entries.is_empty();
    let any_object = OBJECTS.iter().any(|o| live.engines.contains_key(o.name));
    // An upgrade a previous run began and did not finish is still an upgrade: its
    // ledger rows say so until the last repair is done.
    let upgrade_unfinished = entries.iter().any(|e| e.note.contains(ledger::UPGRADING));
    let hand_applied = (!ours_in_ledger && !existing.is_empty()) || upgrade_unfinished;
    let found = if hand_applied {
        Found::HandApplied
    } else if !any_object && !ours_in_ledger {
        Found::New
    } else {
        Found::Installed
    };
    let mut steps = Vec::new();
    let mut resuming = Vec::new();
    let mut mismatched = Vec::new();
    let fix_now = hand_applied || repair;
    let mut dropped: Vec<String> = Vec::new();
    // The statements earlier runs did (of migrations applied, or left in progress), to
    // tell what they skipped: see [`supersede_after`].
    let mut earlier: Vec<Step> = Vec::new();
    if fix_now {
        // Before the migrations: columns of tables (later statements read them) and
        // plain views standing where a materialized view belongs (its CREATE ... IF NOT
        // EXISTS would otherwise keep them).
        for finding in existing.iter().filter(|f| f.fix() == Fix::RepairFirst) {
            match &finding.repair {
                Repair::Run(sql) => {
                    steps.push(Step::Repair {
                        sql: sql.clone(),
                        what: format!("{}: {}", finding.object, finding.problem),
                        refill: Refill::None,
                    });
                }
                Repair::Recreate {
                    drop: Some(drop), ..
                } => {
                    dropped.push(finding.object.clone());
                    steps.push(Step::Repair {
                        sql: vec![drop.clone()],
                        what: format!(
                            "{}: {} (dropped, to be created again)",
                            finding.object, finding.problem
                        ),
                        refill: Refill::None,
                    });
                }
                _ => {}
            }
        }
    }
    for migration in migrations
        .iter()
        .filter(|m| stop_after.is_none_or(|last| m.version <= last))
    {
        let entry = entries.iter().find(|e| e.version == migration.version);
        let total = step_count(migration)?;
        let mut done = 0;
        if let Some(entry) = entry {
            if entry.status() == LedgerStatus::Applied {
                if entry.checksum != ledger::checksum(migration.sql) {
                    mismatched.push((entry.clone(), migration));
                }
                earlier.extend(statement_steps(migration, live, &dropped)?);
                continue;
            }
            if entry.checksum == ledger::checksum(migration.sql) && entry.statements_total == total
            {
                done = entry.statements_done.min(total);
            }
            resuming.push(format!(
                "migration {:04}_{} was left {} after step {} of {} by host {} (pid {}) at {}{}",
                migration.version,
                migration.name,
                match entry.status() {
                    LedgerStatus::Failed => "failed",
                    LedgerStatus::Interrupted => "interrupted",
                    _ => "in progress",
                },
                entry.statements_done,
                entry.statements_total,
                entry.host,
                entry.pid,
                entry.started_at,
                if entry.error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", entry.error)
                }
            ));
        }
        for step in statement_steps(migration, live, &dropped)? {
            if step.index() < done {
                earlier.push(step);
            } else {
                steps.push(step);
            }
        }
        if backfills(migration)? && total > done {
            steps.push(Step::Backfill {
                version: migration.version,
                index: total - 1,
            });
        }
        if entry.is_some() && done >= total {
            steps.push(Step::Complete {
                version: migration.version,
                index: total,
            });
        }
    }
    supersede_after(&mut steps, earlier);
    Ok(Plan {
        found,
        findings: existing,
        steps,
        resuming,
        mismatched,
    })
}

/// The statements of `migration` as steps, none superseded yet.
fn statement_steps(
    migration: &Migration,
    live: &Live,
    dropped: &[String],
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    for (index, (sql, target)) in migration_steps(migration)?.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let exists = match &target {
            Some(Creates::Object { name, .. }) => {
                live.engines.contains_key(name) && !dropped.contains(name)
            }
            Some(Creates::Index { table, name }) => {
                live.indexes.contains(&(table.clone(), name.clone()))
            }
            // For a removal: whether there is anything to remove.
            Some(Creates::Drop { name }) => live.engines.contains_key(name),
            _ => false,
        };
        let what = target
            .as_ref()
            .map_or_else(|| format!("statement {}", index + 1), ToString::to_string);
        steps.push(Step::Statement {
            version: migration.version,
            index,
            sql,
            what,
            exists,
            superseded_by: None,
        });
    }
    Ok(steps)
}

/// [`supersede`], with the statements earlier runs did before `steps` (`earlier`) taken
/// into account: a resumed install skips what reads an object whose creation an
/// earlier run skipped (it is not there, and this run does not create it), as the run
/// that began the install would have.
fn supersede_after(steps: &mut [Step], earlier: Vec<Step>) {
    if earlier.is_empty() {
        supersede(steps);
        return;
    }
    let mut all: Vec<Step> = earlier
        .into_iter()
        .chain(
            steps
                .iter()
                .filter(|s| matches!(s, Step::Statement { .. }))
                .cloned(),
        )
        .collect();
    all.sort_by_key(|s| (s.version(), s.index()));
    supersede(&mut all);
    for step in steps.iter_mut() {
        let Step::Statement {
            version,
            index,
            superseded_by,
            ..
        } = step
        else {
            continue;
        };
        *superseded_by = all.iter().find_map(|s| match s {
            Step::Statement {
                version: v,
                index: i,
                superseded_by: by,
                ..
            } if v == version && i == index => *by,
            _ => None,
        });
    }
}

/// The object a statement makes or fills, and whether it only replaces a view.
fn target_of(sql: &str) -> Option<(String, bool)> {
    match creates(sql)? {
        Creates::Object { name, .. } | Creates::Fill { table: name } => Some((name, false)),
        Creates::Index { table, .. }
        | Creates::Materialize { table, .. }
        | Creates::Settings { table }
        | Creates::Rewrite { table } => Some((table, false)),
        Creates::Replace { name } => Some((name, true)),
        Creates::Drop { .. } => None,
    }
}

/// Marks the statements whose work a later statement of the same run undoes: anything
/// made for an object a later migration drops, and a view replaced again later.
fn supersede(steps: &mut [Step]) {
    let later: Vec<(u32, Creates)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Statement { version, sql, .. } => creates(sql).map(|c| (*version, c)),
            _ => None,
        })
        .collect();
    for step in steps.iter_mut() {
        let Step::Statement {
            version,
            sql,
            superseded_by,
            ..
        } = step
        else {
            continue;
        };
        let Some((name, replaces)) = target_of(sql) else {
            continue;
        };
        *superseded_by = later.iter().find_map(|(v, c)| {
            let undone = match c {
                Creates::Drop { name: dropped } => dropped == &name,
                Creates::Replace { name: replaced } => replaces && replaced == &name,
                _ => false,
            };
            (*v > *version && undone).then_some(Superseded {
                by: *v,
                why: SupersededWhy::RemovesIt,
            })
        });
    }
    skip_readers_of_skipped(steps);
}

/// A statement that names an object which is not there and which this run does not
/// create (its creation is skipped because a later migration drops it) could not run:
/// it is skipped too, up to the migration that drops the object, and so on for what it
/// would have created. An object that is there already (an install made by hand) is
/// read before it is dropped. Drops are always sent (they do nothing when the object
/// is absent).
fn skip_readers_of_skipped(steps: &mut [Step]) {
    loop {
        // (object never created, the migration that drops it)
        let never: Vec<(String, u32)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Statement {
                    sql,
                    superseded_by: Some(Superseded { by, .. }),
                    exists: false,
                    ..
                } => match creates(sql)? {
                    Creates::Object { name, .. } => Some((name, *by)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let mut changed = false;
        for step in steps.iter_mut() {
            let Step::Statement {
                version,
                sql,
                superseded_by: superseded_by @ None,
                ..
            } = step
            else {
                continue;
            };
            let target = creates(sql);
            if matches!(target, Some(Creates::Drop { .. })) {
                continue;
            }
            // What a statement makes is not something it reads: a view replaced by the
            // migration that skipped its first form names itself.
            let own = target.as_ref().and_then(|t| match t {
                Creates::Object { name, .. } | Creates::Replace { name } => Some(name.as_str()),
                _ => None,
            });
            if let Some((_, by)) = never.iter().find(|(name, by)| {
                *version <= *by && own != Some(name.as_str()) && mentions(sql, name)
            }) {
                *superseded_by = Some(Superseded {
                    by: *by,
                    why: SupersededWhy::RemovesWhatItReads,
                });
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
