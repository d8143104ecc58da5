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
            Step::Statement { superseded_by, .. } => *superseded_by,
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
