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
        "CREATE TABLE IF NOT EXISTS training_examples\n",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv",
        "CREATE VIEW IF NOT EXISTS training_examples_with_annotations",
        "CREATE VIEW IF NOT EXISTS training_stats_by_cascade",
        "backfill training_examples",
        "ALTER TABLE training_examples ADD INDEX IF NOT EXISTS idx_trace_id",
        "ALTER TABLE training_examples MATERIALIZE INDEX idx_trace_id",
        "table training_annotated_examples skipped: migration 0003 removes or replaces it",
        "materialized view training_annotated_examples_by_annotation_mv skipped: migration 0003",
        "materialized view training_annotated_examples_by_example_mv skipped: migration 0003",
        "rows of training_annotated_examples skipped: migration 0003",
        "view training_examples_with_annotations skipped: migration 0003",
        "CREATE TABLE IF NOT EXISTS training_trainable_examples",
        "materialized view training_trainable_examples_by_annotation_mv skipped: migration 0004",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_example_mv",
        "INSERT INTO training_trainable_examples",
        "CREATE OR REPLACE VIEW training_examples_with_annotations",
        "DROP VIEW IF EXISTS training_annotated_examples_by_annotation_mv SYNC",
        "DROP VIEW IF EXISTS training_annotated_examples_by_example_mv SYNC",
        "DROP TABLE IF EXISTS training_annotated_examples SYNC",
        "CREATE TABLE IF NOT EXISTS training_trainable_annotations",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_mark_mv",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_annotations_mv",
        "DROP VIEW IF EXISTS training_trainable_examples_by_annotation_mv SYNC",
        "INSERT INTO training_trainable_annotations",
    ] {
        let found = dry.stdout[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{}", dry.stdout));
        at += found + needle.len();
    }
    // What 0003 drops or replaces is named as skipped, and not printed.
    for statement in [
        "CREATE TABLE IF NOT EXISTS training_annotated_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_",
        "INSERT INTO training_annotated_examples",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_annotation_mv",
    ] {
        assert!(
            !dry.stdout.contains(statement),
            "a statement that is skipped is not printed: {statement:?} in:\n{}",
            dry.stdout
        );
    }
    assert_eq!(
        dry.stdout
            .matches("CREATE OR REPLACE VIEW training_examples_with_annotations")
            .count(),
        1,
        "the joined view is replaced once, by 0003:\n{}",
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
            .contains("CREATE TABLE IF NOT EXISTS training_annotations"),
        "a statement that is skipped is not printed:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv"),
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
