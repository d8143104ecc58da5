//! The planner, without a server.

use super::*;

fn statement(version: u32, sql: &str) -> Step {
    Step::Statement {
        version,
        index: 0,
        sql: sql.into(),
        what: String::new(),
        exists: false,
        superseded_by: None,
    }
}

fn superseded(steps: &[Step]) -> Vec<Option<u32>> {
    steps
        .iter()
        .map(|s| match s {
            Step::Statement { superseded_by, .. } => superseded_by.map(|s| s.by),
            _ => None,
        })
        .collect()
}

#[test]
fn what_a_later_migration_drops_or_replaces_is_not_sent() {
    let mut steps = vec![
        statement(1, "CREATE TABLE IF NOT EXISTS kept (x UInt8)"),
        statement(2, "CREATE TABLE IF NOT EXISTS copy (x UInt8)"),
        statement(
            2,
            "CREATE MATERIALIZED VIEW IF NOT EXISTS copy_mv TO copy AS SELECT 1",
        ),
        statement(2, "INSERT INTO copy SELECT x FROM kept WHERE x NOT IN (1)"),
        statement(
            2,
            "ALTER TABLE kept ADD INDEX IF NOT EXISTS i x TYPE set(0)",
        ),
        statement(2, "CREATE OR REPLACE VIEW joined AS SELECT * FROM copy"),
        statement(3, "DROP VIEW IF EXISTS copy_mv"),
        statement(3, "DROP TABLE IF EXISTS copy"),
        statement(3, "CREATE OR REPLACE VIEW joined AS SELECT * FROM kept"),
    ];
    supersede(&mut steps);
    assert_eq!(
        superseded(&steps),
        vec![
            None,
            Some(3),
            Some(3),
            Some(3),
            None,
            Some(3),
            None,
            None,
            None
        ]
    );
}

#[test]
fn a_drop_in_an_earlier_migration_supersedes_nothing_later() {
    let mut steps = vec![
        statement(2, "DROP TABLE IF EXISTS t"),
        statement(3, "CREATE TABLE IF NOT EXISTS t (x UInt8)"),
    ];
    supersede(&mut steps);
    assert_eq!(superseded(&steps), vec![None, None]);
}

#[test]
fn what_reads_an_object_never_created_is_not_sent_either() {
    // A new database: `old` is created by 1 and dropped by 3, so it is never made;
    // the view reading it (1), the fill reading it (2), and the reader of that view
    // (2) could not run. The drop is sent; what reads `kept` is.
    let mut steps = vec![
        statement(1, "CREATE TABLE IF NOT EXISTS old (x UInt8)"),
        statement(1, "CREATE VIEW IF NOT EXISTS old_view AS SELECT x FROM old"),
        statement(1, "CREATE TABLE IF NOT EXISTS kept (x UInt8)"),
        statement(
            2,
            "INSERT INTO kept SELECT x FROM old WHERE x NOT IN (SELECT x FROM kept)",
        ),
        statement(
            2,
            "CREATE VIEW IF NOT EXISTS on_view AS SELECT x FROM old_view",
        ),
        statement(
            2,
            "CREATE VIEW IF NOT EXISTS plain AS SELECT x FROM kept -- not old",
        ),
        statement(3, "DROP VIEW IF EXISTS old_view"),
        statement(3, "DROP TABLE IF EXISTS old"),
        // The view that stood on `old` is defined again on `kept`: it names itself,
        // which is not a read of what was skipped.
        statement(3, "CREATE OR REPLACE VIEW on_view AS SELECT x FROM kept"),
    ];
    supersede(&mut steps);
    assert_eq!(
        superseded(&steps),
        vec![
            Some(3),
            Some(3),
            None,
            Some(3),
            Some(3),
            None,
            None,
            None,
            None
        ]
    );
    let why: Vec<Option<SupersededWhy>> = steps
        .iter()
        .map(|s| match s {
            Step::Statement { superseded_by, .. } => superseded_by.map(|s| s.why),
            _ => None,
        })
        .collect();
    use SupersededWhy::{RemovesIt as It, RemovesWhatItReads as Reads};
    assert_eq!(
        why,
        vec![
            Some(It),
            Some(It),
            None,
            Some(Reads),
            Some(Reads),
            None,
            None,
            None,
            None
        ]
    );
    let Step::Statement {
        superseded_by: Some(reader),
        ..
    } = &steps[3]
    else {
        panic!("the fill reading `old` is skipped");
    };
    assert_eq!(reader.to_string(), "migration 0003 removes what it reads");
}

#[test]
fn an_upgrade_reads_what_it_drops_before_dropping_it() {
    // The database has `old` already (its creation is not in this run): the copy out
    // of it runs, then the drop.
    let mut steps = vec![
        statement(3, "CREATE TABLE IF NOT EXISTS new (x UInt8)"),
        statement(
            3,
            "INSERT INTO new SELECT x FROM old WHERE x NOT IN (SELECT x FROM new)",
        ),
        statement(3, "DROP TABLE IF EXISTS old"),
    ];
    supersede(&mut steps);
    assert_eq!(superseded(&steps), vec![None, None, None]);
}

// The plans of whole databases, against the embedded migrations.

use crate::migrations::MIGRATIONS;
use crate::model::Problem;
use crate::schema::{ANNOTATIONS, EXAMPLES_MV, LOGS};

/// A database holding rvbbit's log table and nothing of ours.
fn fresh() -> State {
    let mut state = State::default();
    state
        .live
        .engines
        .insert(LOGS.to_string(), "MergeTree".to_string());
    state
}

/// The ledger row of a migration some run applied (or left at `done` steps).
fn entry(migration: &Migration, status: LedgerStatus, done: u32) -> Entry {
    Entry {
        version: migration.version,
        name: migration.name.to_string(),
        checksum: ledger::checksum(migration.sql),
        statements_done: done,
        statements_total: step_count(migration).unwrap(),
        status: status.as_str().to_string(),
        host: "box".into(),
        pid: 7,
        started_at: "2026-01-02 03:04:05.000000".into(),
        finished_at: None,
        duration_ms: 0,
        error: String::new(),
        note: String::new(),
    }
}

fn applied(migration: &Migration) -> Entry {
    entry(
        migration,
        LedgerStatus::Applied,
        step_count(migration).unwrap(),
    )
}

/// A database as this version defines it, with the ledger of `versions` applied.
fn installed(versions: &[u32]) -> State {
    State {
        live: drift::as_this_version(),
        entries: MIGRATIONS
            .iter()
            .filter(|m| versions.contains(&m.version))
            .map(applied)
            .collect(),
        same_queries: SameQueries::new(),
    }
}

fn every_version() -> Vec<u32> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

fn statements_of(plan: &Plan, version: u32) -> Vec<&Step> {
    plan.steps
        .iter()
        .filter(|s| matches!(s, Step::Statement { .. }) && s.version() == Some(version))
        .collect()
}

#[test]
fn a_fresh_database_gets_every_statement_and_the_backfill() {
    let plan = plan(&fresh(), MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.found, Found::New);
    assert!(plan.findings.is_empty());
    assert!(plan.resuming.is_empty() && plan.mismatched.is_empty());
    let statements: usize = MIGRATIONS
        .iter()
        .map(|m| migration_steps(m).unwrap().len())
        .sum();
    assert_eq!(
        plan.steps.len(),
        statements + 1,
        "every statement and one backfill"
    );
    let backfill = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Backfill { .. }))
        .unwrap();
    let examples = backfilling();
    assert_eq!(
        plan.steps[backfill],
        Step::Backfill {
            version: examples.version,
            index: step_count(examples).unwrap() - 1
        }
    );
    assert!(
        plan.steps[backfill + 1..]
            .iter()
            .all(|s| s.version() > Some(examples.version)),
        "the backfill ends its migration"
    );
    assert!(plan.steps.iter().all(|s| match s {
        Step::Statement { exists, .. } => !exists,
        _ => true,
    }));
    // Steps are numbered within their migration, from 0.
    for m in MIGRATIONS {
        let indexes: Vec<u32> = statements_of(&plan, m.version)
            .iter()
            .map(|s| s.index())
            .collect();
        let expected: Vec<u32> = (0..u32::try_from(indexes.len()).unwrap()).collect();
        assert_eq!(indexes, expected);
    }
}

#[test]
fn statements_a_later_migration_removes_are_not_sent_to_a_fresh_database() {
    let plan = plan(&fresh(), MIGRATIONS, false, None).unwrap();
    let superseded: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Statement {
                what,
                superseded_by: Some(Superseded { by: 3, .. }),
                ..
            } => Some(what.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        superseded,
        vec![
            "table training_annotated_examples",
            "materialized view training_annotated_examples_by_annotation_mv",
            "materialized view training_annotated_examples_by_example_mv",
            "rows of training_annotated_examples",
            "view training_examples_with_annotations",
        ]
    );
}

#[test]
fn version_5s_annotation_view_is_not_built_where_version_6_replaces_it() {
    let plan = plan(&fresh(), MIGRATIONS, false, None).unwrap();
    let by_6: Vec<(&str, &Option<Superseded>)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Statement {
                what,
                superseded_by,
                ..
            } if superseded_by.as_ref().is_some_and(|x| x.by == 6) => {
                Some((what.as_str(), superseded_by))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        by_6,
        vec![(
            "materialized view training_examples_current_by_annotation_mv",
            &Some(Superseded {
                by: 6,
                why: SupersededWhy::RemovesIt
            })
        )]
    );
}

#[test]
fn a_current_database_needs_nothing() {
    let plan = plan(&installed(&every_version()), MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.found, Found::Installed);
    assert_eq!(plan.steps, vec![]);
    assert!(plan.findings.is_empty());
    assert!(plan.resuming.is_empty() && plan.mismatched.is_empty());
}

/// The migration that creates the examples' view, and so ends with the backfill.
fn backfilling() -> &'static Migration {
    MIGRATIONS.iter().find(|m| backfills(m).unwrap()).unwrap()
}

#[test]
fn pending_migrations_are_planned_alone_and_what_exists_is_marked() {
    let examples = backfilling();
    let earlier: Vec<u32> = every_version()
        .into_iter()
        .filter(|v| *v < examples.version)
        .collect();
    let plan = plan(&installed(&earlier), MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.found, Found::Installed);
    assert!(plan
        .steps
        .iter()
        .all(|s| s.version() >= Some(examples.version)));
    let pending: usize = MIGRATIONS
        .iter()
        .filter(|m| m.version >= examples.version)
        .map(|m| migration_steps(m).unwrap().len())
        .sum();
    assert_eq!(plan.steps.len(), pending + 1, "and one backfill");
    let created = plan.steps.iter().find_map(|s| match s {
        Step::Statement { what, exists, .. } if what == "table training_examples_current" => {
            Some(*exists)
        }
        _ => None,
    });
    assert_eq!(created, Some(true), "the table is there already");
}

#[test]
fn an_install_by_hand_is_repaired_before_the_migrations() {
    let mut state = installed(&[]);
    state
        .live
        .columns
        .get_mut(ANNOTATIONS)
        .unwrap()
        .remove("annotated_by");
    state
        .live
        .engines
        .insert(EXAMPLES_MV.to_string(), "View".to_string());
    let plan = plan(&state, MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.found, Found::HandApplied);
    assert_eq!(plan.findings.len(), 2);
    assert_eq!(
        plan.findings[0].problem,
        Problem::ColumnMissing {
            column: "annotated_by".into()
        }
    );
    let repairs: Vec<&str> = plan
        .steps
        .iter()
        .take_while(|s| matches!(s, Step::Repair { .. }))
        .map(|s| match s {
            Step::Repair { what, .. } => what.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        repairs,
        vec![
            "training_annotations: column annotated_by missing",
            "training_examples_current_by_log_mv: is a View, expected a MaterializedView (dropped, to be created again)",
        ]
    );
    // The dropped view is created again by its migration's statement.
    let mv = plan.steps.iter().find_map(|s| match s {
        Step::Statement { what, exists, .. } if what.ends_with(EXAMPLES_MV) => Some(*exists),
        _ => None,
    });
    assert_eq!(mv, Some(false));
    assert!(plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Backfill { .. })));
}

#[test]
fn an_unfinished_upgrade_of_a_hand_applied_install_is_still_one() {
    let mut state = installed(&every_version());
    state.entries[0].note = ledger::UPGRADING.to_string();
    let plan = plan(&state, MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.found, Found::HandApplied);
}

#[test]
fn drift_is_repaired_first_only_when_asked() {
    let mut state = installed(&every_version());
    state
        .live
        .columns
        .get_mut(ANNOTATIONS)
        .unwrap()
        .remove("notes");
    let left = plan(&state, MIGRATIONS, false, None).unwrap();
    assert_eq!(left.found, Found::Installed);
    assert_eq!(left.steps, vec![]);
    assert_eq!(left.findings.len(), 1);
    let repaired = plan(&state, MIGRATIONS, true, None).unwrap();
    assert_eq!(repaired.steps.len(), 1);
    let Step::Repair { sql, what, refill } = &repaired.steps[0] else {
        panic!("not a repair: {:?}", repaired.steps[0]);
    };
    assert_eq!(what, "training_annotations: column notes missing");
    assert_eq!(*refill, Refill::None);
    assert_eq!(sql.len(), 1);
    assert!(sql[0].starts_with("ALTER TABLE training_annotations ADD COLUMN IF NOT EXISTS notes"));
}

#[test]
fn a_migration_left_in_progress_resumes_after_its_last_step() {
    let second = &MIGRATIONS[1];
    let mut state = installed(&[MIGRATIONS[0].version]);
    state.entries.push(entry(second, LedgerStatus::Running, 2));
    let plan = plan(&state, &MIGRATIONS[..2], false, None).unwrap();
    assert_eq!(
        plan.resuming,
        vec![format!(
            "migration {:04}_{} was left in progress after step 2 of {} by host box (pid 7) at 2026-01-02 03:04:05.000000",
            second.version,
            second.name,
            step_count(second).unwrap()
        )]
    );
    let indexes: Vec<u32> = plan.steps.iter().map(Step::index).collect();
    let expected: Vec<u32> = (2..step_count(second).unwrap()).collect();
    assert_eq!(indexes, expected);
}

#[test]
fn a_failed_migration_of_another_file_starts_again() {
    let second = &MIGRATIONS[1];
    let mut state = installed(&[MIGRATIONS[0].version]);
    let mut failed = entry(second, LedgerStatus::Failed, 3);
    failed.checksum = "0123456789abcdef".into();
    failed.error = "boom".into();
    state.entries.push(failed);
    let plan = plan(&state, &MIGRATIONS[..2], false, None).unwrap();
    assert!(plan.resuming[0].contains("was left failed after step 3 of"));
    assert!(plan.resuming[0].ends_with(" (boom)"));
    assert_eq!(plan.steps.first().map(Step::index), Some(0));
}

#[test]
fn a_migration_whose_every_step_is_done_is_recorded_as_applied() {
    let second = &MIGRATIONS[1];
    let total = step_count(second).unwrap();
    let mut state = installed(&[MIGRATIONS[0].version]);
    state
        .entries
        .push(entry(second, LedgerStatus::Running, total));
    let plan = plan(&state, &MIGRATIONS[..2], false, None).unwrap();
    assert_eq!(
        plan.steps,
        vec![Step::Complete {
            version: second.version,
            index: total
        }]
    );
}

#[test]
fn an_applied_migration_whose_file_changed_is_a_mismatch_not_a_step() {
    let mut state = installed(&every_version());
    state.entries[0].checksum = "feedface".into();
    let plan = plan(&state, MIGRATIONS, false, None).unwrap();
    assert_eq!(plan.steps, vec![]);
    assert_eq!(plan.mismatched.len(), 1);
    assert_eq!(plan.mismatched[0].0.checksum, "feedface");
    assert_eq!(plan.mismatched[0].1.version, MIGRATIONS[0].version);
}

#[test]
fn stopping_after_a_migration_plans_nothing_later() {
    let plan = plan(&fresh(), MIGRATIONS, false, Some(MIGRATIONS[0].version)).unwrap();
    assert!(plan
        .steps
        .iter()
        .all(|s| s.version() == Some(MIGRATIONS[0].version)));
}

static SYNTHETIC: &[Migration] = &[
    Migration {
        version: 2,
        name: "copy",
        sql: "CREATE TABLE IF NOT EXISTS copy (x UInt8);\nCREATE OR REPLACE VIEW joined AS SELECT * FROM copy;\n",
    },
    Migration {
        version: 3,
        name: "drop_copy",
        sql: "DROP TABLE IF EXISTS copy;\nCREATE OR REPLACE VIEW joined AS SELECT 1;\n",
    },
];

#[test]
fn a_plan_marks_what_a_later_migration_of_the_run_undoes() {
    let plan = plan(&fresh(), SYNTHETIC, false, None).unwrap();
    assert_eq!(superseded(&plan.steps), vec![Some(3), Some(3), None, None]);
    let exists: Vec<bool> = plan
        .steps
        .iter()
        .map(|s| matches!(s, Step::Statement { exists: true, .. }))
        .collect();
    assert_eq!(exists, vec![false, false, false, false]);
}

static EXAMPLES_VIEW_IN_TWO: &[Migration] = &[
    Migration {
        version: 1,
        name: "table",
        sql: "CREATE TABLE IF NOT EXISTS t (x UInt8);\n",
    },
    Migration {
        version: 2,
        name: "view",
        sql: "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_log_mv TO t AS SELECT 1 AS x;\nCREATE VIEW IF NOT EXISTS v AS SELECT x FROM t;\n",
    },
];

#[test]
fn the_backfill_ends_the_migration_that_creates_the_examples_view() {
    assert!(!backfills(&EXAMPLES_VIEW_IN_TWO[0]).unwrap());
    assert!(backfills(&EXAMPLES_VIEW_IN_TWO[1]).unwrap());
    assert_eq!(step_count(&EXAMPLES_VIEW_IN_TWO[0]).unwrap(), 1);
    assert_eq!(step_count(&EXAMPLES_VIEW_IN_TWO[1]).unwrap(), 3);
    let plan = plan(&fresh(), EXAMPLES_VIEW_IN_TWO, false, None).unwrap();
    assert_eq!(plan.steps.len(), 4);
    assert_eq!(
        plan.steps[3],
        Step::Backfill {
            version: 2,
            index: 2
        }
    );
    // The embedded migrations: 0005 creates the view, and only it backfills.
    let backfilling: Vec<u32> = MIGRATIONS
        .iter()
        .filter(|m| backfills(m).unwrap())
        .map(|m| m.version)
        .collect();
    assert_eq!(backfilling, vec![5]);
}

#[test]
fn a_resumed_install_skips_what_reads_an_object_an_earlier_run_did_not_create() {
    // Migrations 1-4 applied by a run that skipped 0001's examples table (a new
    // database): 0005's copy out of that table is skipped too.
    let applied: Vec<u32> = every_version()
        .into_iter()
        .filter(|v| *v < backfilling().version)
        .collect();
    let copy = |plan: &Plan| {
        plan.steps.iter().find_map(|s| match s {
            Step::Statement {
                what,
                superseded_by,
                ..
            } if what == "rows of training_examples_current" => Some(*superseded_by),
            _ => None,
        })
    };
    let resumed = plan(&installed(&applied), MIGRATIONS, false, None).unwrap();
    assert_eq!(
        copy(&resumed),
        Some(Some(Superseded {
            by: 5,
            why: SupersededWhy::RemovesWhatItReads
        }))
    );
    // An install that has the table (an upgrade from version 4) copies it.
    let mut upgrade = installed(&applied);
    upgrade
        .live
        .engines
        .insert("training_examples".into(), "ReplacingMergeTree".into());
    let upgraded = plan(&upgrade, MIGRATIONS, false, None).unwrap();
    assert_eq!(copy(&upgraded), Some(None));
}
