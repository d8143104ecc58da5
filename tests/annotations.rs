//! Annotations through the views, and `rvbbit training test-annotation`.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::TestDb;

use rvbbit_tests::logs::Annotated as Joined;

async fn migrated(label: &str) -> TestDb {
    let db = TestDb::with_logs(label).await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn the_latest_annotation_wins_and_unannotated_examples_read_false() {
    let db = migrated("latest").await;
    insert(
        &db.client,
        &[
            LogRow::simple("t1", "casc", "cell", "q1", "r1"),
            LogRow::simple("t2", "casc", "cell", "q2", "r2"),
        ],
    )
    .await;
    // Studio's inserts: a first marking, then a re-annotation that clears confidence.
    db.exec("INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_by, annotated_at) VALUES ('t1', true, true, 0.9, 'good', ['x'], 'ann', now64(6) - 60)").await;
    db.exec("INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_by, annotated_at) VALUES ('t1', true, false, NULL, 'revised', ['y'], 'bob', now64(6))").await;
    let rows: Vec<Joined> = db
        .rows("SELECT trace_id, trainable, verified, confidence, notes, tags, annotated_by FROM training_examples_with_annotations ORDER BY trace_id")
        .await;
    let joined =
        |trace_id: &str, trainable, verified, notes: &str, tags: &[&str], annotated_by: &str| {
            Joined {
                trace_id: trace_id.into(),
                trainable,
                verified,
                confidence: None,
                notes: notes.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                annotated_by: annotated_by.into(),
            }
        };
    assert_eq!(
        rows,
        vec![
            joined("t1", true, false, "revised", &["y"], "bob"),
            joined("t2", false, false, "", &[], "")
        ]
    );
    let unannotated_at: u64 = db.scalar("SELECT count() FROM training_examples_with_annotations WHERE trace_id = 't2' AND annotated_at IS NULL").await;
    assert_eq!(unannotated_at, 1);
    // rvbbit's few-shot query (recent strategy) sees only the trainable example.
    let few_shot: Vec<(String, String)> = db
        .rows("SELECT user_input, assistant_output FROM training_examples_with_annotations WHERE cascade_id = 'casc' AND cell_name = 'cell' AND trainable = true AND user_input != '' AND assistant_output != '' ORDER BY timestamp DESC LIMIT 5")
        .await;
    assert_eq!(few_shot, vec![("q1".to_string(), "r1".to_string())]);
    let stats: Vec<(String, String, u64, u64, Option<f64>, u64)> = db
        .rows("SELECT cascade_id, cell_name, trainable_count, verified_count, avg_confidence, total_executions FROM training_stats_by_cascade")
        .await;
    assert_eq!(stats, vec![("casc".into(), "cell".into(), 1, 0, None, 2)]);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_annotation_passes_and_leaves_nothing_behind() {
    let db = migrated("testann").await;
    db.exec("INSERT INTO training_annotations (trace_id, trainable) VALUES ('real', true)")
        .await;
    let run = db.rvbbit(&["training", "test-annotation"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("training_annotations has 8 columns"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("read it back: trainable=true"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("removed the test annotation"),
        "{}",
        run.stdout
    );
    let rows: Vec<String> = db
        .rows("SELECT trace_id FROM training_annotations ORDER BY trace_id")
        .await;
    assert_eq!(
        rows,
        vec!["real".to_string()],
        "only the real annotation is left"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_annotation_on_a_real_example_shows_it_through_the_view_then_removes_it() {
    let db = migrated("testann_trace").await;
    insert(
        &db.client,
        &[LogRow::simple("example-1", "casc", "cell", "q", "r")],
    )
    .await;
    let run = db.rvbbit(&["training", "test-annotation", "--trace-id", "example-1"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("shows the example as trainable"),
        "{}",
        run.stdout
    );
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations")
            .await,
        0
    );
    let trainable: bool = db
        .scalar(
            "SELECT trainable FROM training_examples_with_annotations WHERE trace_id = 'example-1'",
        )
        .await;
    assert!(!trainable, "after cleanup the example is unannotated again");
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_annotation_keep_leaves_its_row_and_refuses_annotated_traces() {
    let db = migrated("testann_keep").await;
    // A trace rvbbit logged (test-annotation refuses ids it never did), whose id
    // has every character that needs quoting.
    insert(
        &db.client,
        &[LogRow::simple("quote'\"\\ id", "casc", "cell", "q", "r")],
    )
    .await;
    let kept = db.rvbbit(&[
        "training",
        "test-annotation",
        "--trace-id",
        "quote'\"\\ id",
        "--keep",
    ]);
    kept.expect_code(0);
    let rows: Vec<(String, bool)> = db
        .rows("SELECT trace_id, trainable FROM training_annotations")
        .await;
    assert_eq!(
        rows,
        vec![("quote'\"\\ id".to_string(), true)],
        "the id travelled as a parameter, intact"
    );
    // That trace now has an annotation: a second run refuses to write next to it.
    let refused = db.rvbbit(&["training", "test-annotation", "--trace-id", "quote'\"\\ id"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("already has annotations"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations")
            .await,
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_annotation_before_migrate_says_to_migrate() {
    let db = TestDb::with_logs("testann_nomig").await;
    let run = db.rvbbit(&["training", "test-annotation"]);
    run.expect_code(6);
    assert!(
        run.stderr.contains("run `rvbbit training migrate` first"),
        "{}",
        run.stderr
    );
    db.drop().await;
}
