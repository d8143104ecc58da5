//! Drift of a migrated schema: a view with another query, a dropped materialized view,
//! a dropped index and another sorting key are named by `verify`; `--repair` puts back
//! what it can and refuses to rewrite a table.

use rvbbit_tests::ledger_fixture::{
    annotations_insert, assert_converged, mark, raw_rows, schema, seeded, Mark,
};
use rvbbit_tests::logs::{insert, LogRow};

#[tokio::test(flavor = "multi_thread")]
async fn a_view_with_another_query_is_named_and_replaced_by_repair() {
    let (db, truth) = seeded("drift_view").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec(
        "CREATE OR REPLACE VIEW training_stats_by_cascade AS SELECT cascade_id, cell_name, \
         countIf(trainable) AS trainable_count, countIf(verified) AS verified_count, \
         avg(confidence) AS avg_confidence, count() AS total_executions \
         FROM training_examples_with_annotations WHERE cascade_id != 'support' GROUP BY cascade_id, cell_name",
    )
    .await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let verify_text = rvbbit_tests::unwrapped(&verify.stdout);
    let failing: Vec<&str> = verify_text.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("view training_stats_by_cascade")
            && failing[0].contains("query differs")
            && failing[0].contains("migrate --repair"),
        "{}",
        verify.stdout
    );
    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    assert!(
        repaired.stdout.contains("training_stats_by_cascade"),
        "--repair says what it repaired:\n{}",
        repaired.stdout
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "the view is as migrate made it"
    );
    assert_converged(&db, &truth, "view repaired").await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_materialized_view_comes_back_with_the_rows_logged_meanwhile() {
    let (db, truth) = seeded("drift_mv").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec("DROP VIEW training_examples_current_by_log_mv")
        .await;
    // Logged while the view was missing; one of them annotated meanwhile.
    let late = ["late-1", "late-2", "late-3"];
    insert(
        &db.client,
        &late
            .iter()
            .map(|id| LogRow::simple(id, "support", "answer", "late question", "late answer"))
            .collect::<Vec<_>>(),
    )
    .await;
    let late_mark = Mark {
        notes: "annotated while the view was missing",
        ..mark("late-2", true, Some(0.88), "2025-06-01 08:00:00.000000")
    };
    db.exec(&annotations_insert(std::slice::from_ref(&late_mark)))
        .await;
    let mut truth = truth.with_examples(&late);
    truth.logs = db.logs_fingerprint().await;
    truth.annotations = db.snapshot_annotations().await;

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout)
            .lines()
            .any(|l| l.contains("FAIL") && l.contains("training_examples_current_by_log_mv")),
        "{}",
        verify.stdout
    );
    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    assert_eq!(
        db.scalar::<String>(&format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'training_examples_current_by_log_mv'",
            db.name
        ))
        .await,
        "MaterializedView"
    );
    assert_eq!(schema(&db).await, schema_before);
    assert_converged(&db, &truth, "materialized view repaired").await;

    // And it works live again.
    insert(
        &db.client,
        &[LogRow::simple("live-1", "support", "answer", "q", "a")],
    )
    .await;
    assert_eq!(
        db.scalar::<u64>(
            "SELECT count() FROM training_examples_current FINAL WHERE trace_id = 'live-1'"
        )
        .await,
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_annotation_view_comes_back_with_the_annotations_made_meanwhile() {
    let (db, truth) = seeded("drift_annotation_mv").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec("DROP VIEW training_examples_current_by_applied_annotation_mv")
        .await;
    // Annotated while the view was missing: an example marked trainable for the first
    // time, a trainable one taken back and another re-scored.
    let meanwhile = [
        Mark {
            notes: "annotated while the view was missing",
            ..mark("s-5", true, Some(0.77), "2025-06-01 08:00:00.000000")
        },
        Mark {
            notes: "taken back while the view was missing",
            ..mark("h-250", false, Some(0.1), "2025-06-01 09:00:00.000000")
        },
        mark("h-5", true, Some(0.99), "2025-06-01 10:00:00.000000"),
    ];
    db.exec(&annotations_insert(&meanwhile)).await;
    let mut truth = truth;
    truth.annotations = db.snapshot_annotations().await;

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let verify_text = rvbbit_tests::unwrapped(&verify.stdout);
    let failing: Vec<&str> = verify_text.lines().filter(|l| l.contains("FAIL")).collect();
    // The view is missing, and the trainable copy disagrees with the three traces'
    // latest annotations.
    assert_eq!(failing.len(), 2, "{}", verify.stdout);
    assert!(
        failing[0].contains("materialized view training_examples_current_by_applied_annotation_mv")
            && failing[1].contains("trainable examples current")
            && verify_text.contains("3 traces' copies"),
        "{}",
        verify.stdout
    );
    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    assert_eq!(
        db.scalar::<String>(&format!(
            "SELECT engine FROM system.tables WHERE database = '{}' \
             AND name = 'training_examples_current_by_applied_annotation_mv'",
            db.name
        ))
        .await,
        "MaterializedView"
    );
    assert_eq!(schema(&db).await, schema_before);
    assert_converged(&db, &truth, "annotation view repaired").await;

    // And it works live again: an annotation reaches the example's row at once.
    let live = Mark {
        notes: "annotated once the view was back",
        ..mark("s-5", false, Some(0.3), "2025-06-02 08:00:00.000000")
    };
    db.exec(&annotations_insert(std::slice::from_ref(&live)))
        .await;
    assert_eq!(
        db.scalar::<(bool, String)>(
            "SELECT trainable, notes FROM training_examples_current FINAL WHERE trace_id = 's-5'"
        )
        .await,
        (false, live.notes.to_string())
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_index_is_named_and_added_by_repair() {
    let (db, truth) = seeded("drift_index").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let schema_before = schema(&db).await;
    db.exec("ALTER TABLE training_annotations DROP INDEX idx_verified")
        .await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let verify_text = rvbbit_tests::unwrapped(&verify.stdout);
    let failing: Vec<&str> = verify_text.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("table training_annotations")
            && failing[0].contains("index idx_verified missing"),
        "{}",
        verify.stdout
    );
    db.rvbbit(&["training", "migrate", "--repair"])
        .expect_code(0);
    let indexes: Vec<String> = db
        .rows(&format!(
            "SELECT name FROM system.data_skipping_indices WHERE database = '{}' AND table = 'training_annotations' ORDER BY name",
            db.name
        ))
        .await;
    assert_eq!(indexes, vec!["idx_trainable", "idx_verified"]);
    assert_eq!(schema(&db).await, schema_before);
    assert_converged(&db, &truth, "index repaired").await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_sorting_key_is_named_and_repair_refuses_to_rewrite_it() {
    let (db, truth) = seeded("drift_key").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    // training_trainable_examples is derived data: rebuilding it sorted by trace_id
    // alone, with the same rows, is a safe way to make this drift.
    db.exec(
        "CREATE TABLE tte_by_trace AS training_trainable_examples \
         ENGINE = ReplacingMergeTree(annotated_at) ORDER BY trace_id",
    )
    .await;
    db.exec("INSERT INTO tte_by_trace SELECT * FROM training_trainable_examples")
        .await;
    db.exec("EXCHANGE TABLES tte_by_trace AND training_trainable_examples")
        .await;
    db.exec("DROP TABLE tte_by_trace").await;
    let schema_before = schema(&db).await;
    let rows_before = raw_rows(&db, "training_trainable_examples").await;
    assert_eq!(rows_before.len(), truth.trainable_examples().len());

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let verify_text = rvbbit_tests::unwrapped(&verify.stdout);
    let failing: Vec<&str> = verify_text.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("table training_trainable_examples")
            && failing[0].contains("sorted by (trace_id)")
            && failing[0].contains("cascade_id, cell_name, trace_id"),
        "{}",
        verify.stdout
    );
    for args in [
        &["training", "migrate", "--repair"][..],
        &["training", "migrate"][..],
    ] {
        let refused = db.rvbbit(args);
        refused.expect_code(1);
        assert!(
            refused.stderr.contains("refusing")
                && refused.stderr.contains("training_trainable_examples")
                && refused.stderr.contains("rewrite")
                && refused.stderr.contains("Nothing was changed"),
            "{args:?}: {}",
            refused.stderr
        );
        assert_eq!(
            schema(&db).await,
            schema_before,
            "{args:?} changed a definition"
        );
        assert_eq!(
            raw_rows(&db, "training_trainable_examples").await,
            rows_before,
            "{args:?} changed rows"
        );
    }
    assert_eq!(db.logs_fingerprint().await, truth.logs);
    assert_eq!(db.snapshot_annotations().await, truth.annotations);
    db.drop().await;
}
