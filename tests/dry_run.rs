//! `rvbbit training migrate --dry-run`: the statements in order on a new database,
//! what exists marked as skipped on a seeded one, nothing to run on a migrated one,
//! and nothing written in any case (no object, no ledger, no lease).

use rvbbit_tests::ledger_fixture::{raw_rows, schema, seeded, table_names, LEASES, LEDGER};
use rvbbit_tests::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_statements_in_order_and_changes_nothing() {
    // A new database: every statement, in order, and nothing created, not even the ledger.
    let db = TestDb::with_logs("dry_fresh").await;
    let tables = table_names(&db).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    let mut at = 0;
    for needle in [
        "CREATE TABLE IF NOT EXISTS training_annotations",
        "ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_trainable",
        "ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_verified",
        "table training_examples skipped: migration 0005 removes or replaces it",
        "materialized view training_examples_mv skipped: migration 0005 removes or replaces it",
        "view training_examples_with_annotations skipped: migration 0005 removes what it reads",
        "view training_stats_by_cascade skipped: migration 0005",
        "index idx_trace_id on training_examples skipped: migration 0005 removes or replaces it",
        "index idx_trace_id on training_examples for existing rows skipped: migration 0005",
        "table training_annotated_examples skipped: migration 0003 removes or replaces it",
        "materialized view training_annotated_examples_by_annotation_mv skipped: migration 0003",
        "materialized view training_annotated_examples_by_example_mv skipped: migration 0003",
        "rows of training_annotated_examples skipped: migration 0003",
        "view training_examples_with_annotations skipped: migration 0003",
        "CREATE TABLE IF NOT EXISTS training_trainable_examples",
        "materialized view training_trainable_examples_by_annotation_mv skipped: migration 0004",
        "materialized view training_trainable_examples_by_example_mv skipped: migration 0005 removes or replaces it",
        "rows of training_trainable_examples skipped: migration 0005 removes what it reads",
        "view training_examples_with_annotations skipped: migration 0005 removes or replaces it",
        "DROP VIEW IF EXISTS training_annotated_examples_by_annotation_mv SYNC",
        "DROP VIEW IF EXISTS training_annotated_examples_by_example_mv SYNC",
        "DROP TABLE IF EXISTS training_annotated_examples SYNC",
        "table training_trainable_annotations skipped: migration 0005 removes or replaces it",
        "materialized view training_trainable_examples_by_mark_mv skipped: migration 0005",
        "materialized view training_trainable_annotations_mv skipped: migration 0005",
        "DROP VIEW IF EXISTS training_trainable_examples_by_annotation_mv SYNC",
        "rows of training_trainable_annotations skipped: migration 0005",
        "CREATE TABLE IF NOT EXISTS training_examples_current\n",
        "materialized view training_examples_current_by_annotation_mv skipped: migration 0006 removes or replaces it",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_current_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_log_mv",
        "rows of training_examples_current skipped: migration 0005 removes what it reads",
        "ALTER TABLE training_trainable_examples ADD INDEX IF NOT EXISTS idx_session_id",
        "ALTER TABLE training_trainable_examples MATERIALIZE INDEX idx_session_id",
        "CREATE OR REPLACE VIEW training_examples_with_annotations",
        "CREATE OR REPLACE VIEW training_stats_by_cascade",
        "DROP VIEW IF EXISTS training_examples_mv SYNC",
        "DROP VIEW IF EXISTS training_trainable_examples_by_example_mv SYNC",
        "DROP VIEW IF EXISTS training_trainable_annotations_mv SYNC",
        "DROP VIEW IF EXISTS training_trainable_examples_by_mark_mv SYNC",
        "DROP TABLE IF EXISTS training_trainable_annotations SYNC",
        "DROP TABLE IF EXISTS training_examples SYNC",
        "INSERT INTO training_trainable_examples",
        "backfill training_examples_current",
        "CREATE TABLE IF NOT EXISTS training_annotations_to_apply",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_applied_annotation_mv",
        "CREATE TABLE IF NOT EXISTS training_scores_buffer",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_scores_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_marks_mv",
        "DROP VIEW IF EXISTS training_examples_current_by_annotation_mv SYNC",
    ] {
        let found = dry.stdout[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{}", dry.stdout));
        at += found + needle.len();
    }
    // What 0003, 0004 and 0005 drop or replace, or what reads what they drop, is named
    // as skipped, and not printed.
    for statement in [
        "CREATE TABLE IF NOT EXISTS training_examples\n",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv",
        "CREATE VIEW IF NOT EXISTS training_examples_with_annotations",
        "CREATE VIEW IF NOT EXISTS training_stats_by_cascade",
        "ALTER TABLE training_examples ",
        "CREATE TABLE IF NOT EXISTS training_annotated_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_",
        "INSERT INTO training_annotated_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_annotation_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_example_mv",
        "CREATE TABLE IF NOT EXISTS training_trainable_annotations",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_mark_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_annotations_mv",
        "INSERT INTO training_trainable_annotations",
        "INSERT INTO training_examples_current",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_annotation_mv",
        "FROM training_examples\n",
        "FROM training_examples_with_annotations",
    ] {
        assert!(
            !dry.stdout.contains(statement),
            "a statement that is skipped is not printed: {statement:?} in:\n{}",
            dry.stdout
        );
    }
    for (statement, why) in [
        (
            "CREATE OR REPLACE VIEW training_examples_with_annotations",
            "the joined view is replaced once, by 0005",
        ),
        (
            "CREATE OR REPLACE VIEW training_stats_by_cascade",
            "the stats view is replaced once, by 0005",
        ),
        (
            "INSERT INTO training_trainable_examples",
            "the trainable copy is filled once, by 0005, from the state table",
        ),
        (
            "backfill training_examples_current from unified_logs",
            "the examples are backfilled once",
        ),
        ("backfill ", "nothing else is backfilled"),
    ] {
        assert_eq!(
            dry.stdout.matches(statement).count(),
            1,
            "{why}:\n{}",
            dry.stdout
        );
    }
    let last_step = dry
        .stdout
        .lines()
        .rfind(|l| l.starts_with("-- 0005 "))
        .unwrap_or_default();
    assert!(
        last_step.contains("backfill training_examples_current"),
        "the backfill ends migration 0005: {last_step:?} in:\n{}",
        dry.stdout
    );
    assert_eq!(
        table_names(&db).await,
        tables,
        "--dry-run created something"
    );
    db.drop().await;

    // Annotations made before: their table is skipped, the rest printed.
    let (db, truth) = seeded("dry_seeded").await;
    let schema_before = schema(&db).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout
            .contains("table training_annotations exists, skipped"),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout
            .contains("CREATE TABLE IF NOT EXISTS training_annotations\n"),
        "a statement that is skipped is not printed:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_log_mv"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "--dry-run changed something"
    );
    assert!(
        !table_names(&db)
            .await
            .iter()
            .any(|t| t.starts_with("_rvbbit")),
        "--dry-run created the ledger"
    );
    assert_eq!(db.snapshot_annotations().await, truth.annotations);

    // A migrated database: nothing to run, nothing written.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;
    let leases_before = raw_rows(&db, LEASES).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("nothing to run"), "{}", dry.stdout);
    assert!(
        !dry.stdout.contains("CREATE ") && !dry.stdout.contains("ALTER "),
        "{}",
        dry.stdout
    );
    assert_eq!(schema(&db).await, schema_before);
    assert_eq!(raw_rows(&db, LEDGER).await, ledger_before);
    assert_eq!(raw_rows(&db, LEASES).await, leases_before);
    db.drop().await;
}
