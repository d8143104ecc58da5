//! `rvbbit training uninstall`, against the local engine: install, annotate, uninstall,
//! migrate again, compare. It drops what migrate created and nothing else (never
//! `unified_logs`; `training_annotations` only when asked and confirmed), removes this
//! plugin's ledger rows and leaves another plugin's.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::{json_data, rvbbit, type_when_shown, TestDb};

/// `rvbbit training uninstall --drop-annotations` on a terminal, `answer` typed at its
/// question: the exit code and what the terminal showed.
fn drop_annotations_answering(db: &TestDb, answer: &str) -> (Option<i32>, String) {
    let mut command = rvbbit();
    command.args([
        "training",
        "uninstall",
        "--drop-annotations",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]);
    type_when_shown(
        &command,
        100,
        "Type yes to go on",
        format!("{answer}\n").as_bytes(),
    )
}

async fn tables(db: &TestDb) -> Vec<String> {
    db.rows::<String>(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn uninstall_drops_what_migrate_created_keeps_the_annotations_and_migrate_brings_it_back() {
    let db = TestDb::with_logs("uninstall").await;
    insert(
        &db.client,
        &[
            LogRow::simple("un-1", "casc", "cell", "what is 2+2?", "4"),
            LogRow::simple("un-2", "casc", "cell", "and 3+3?", "6"),
            LogRow::simple("un-3", "casc", "cell", "and 4+4?", "seven"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--confidence",
        "0.9",
        "un-1",
        "un-2",
        "-q",
    ])
    .expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--not-trainable",
        "--notes",
        "wrong",
        "un-3",
        "-q",
    ])
    .expect_code(0);
    // Another plugin's row in the shared ledger.
    db.exec(
        "INSERT INTO _rvbbit_plugin_migrations (plugin, version, name, checksum, statements_done, \
         statements_total, status, host, pid, started_at, duration_ms, error, note) \
         VALUES ('other', 1, 'init', 'x', 1, 1, 'applied', 'h', 1, now64(6), 1, '', '')",
    )
    .await;
    let annotations = db.snapshot_annotations().await;
    assert_eq!(annotations.len(), 3);
    let logs = db.logs_fingerprint().await;
    let installed = tables(&db).await;

    // --dry-run: the plan, nothing changed.
    let dry = db.rvbbit(&["training", "uninstall", "--dry-run", "--format", "json"]);
    dry.expect_code(0);
    let data = json_data(&dry);
    let dropped: Vec<&str> = data["dropped"]
        .as_array()
        .expect("dropped")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for object in [
        "training_examples_current",
        "training_examples_current_by_log_mv",
        "training_annotations_to_apply",
        "training_examples_current_by_applied_annotation_mv",
        "training_scores_buffer",
        "training_annotations_to_apply_scores_mv",
        "training_annotations_to_apply_marks_mv",
        "training_trainable_examples_by_current_mv",
        "training_examples_with_annotations",
        "training_stats_by_cascade",
        "training_trainable_examples",
    ] {
        assert!(dropped.contains(&object), "{object} in {dropped:?}");
    }
    // What 0005 removed is not there to drop; what is there is dropped, all of it.
    for object in [
        "training_examples",
        "training_examples_mv",
        "training_trainable_examples_by_example_mv",
        "training_trainable_annotations",
        "training_trainable_annotations_mv",
        "training_trainable_examples_by_mark_mv",
    ] {
        assert!(!dropped.contains(&object), "{object} in {dropped:?}");
    }
    let mut every: Vec<&str> = dropped.clone();
    every.sort_unstable();
    let created: Vec<&str> = installed
        .iter()
        .map(String::as_str)
        .filter(|t| {
            !t.starts_with("_rvbbit") && !["unified_logs", "training_annotations"].contains(t)
        })
        .collect();
    assert_eq!(every, created, "every object migrate created, once");
    assert!(!dropped.contains(&"unified_logs") && !dropped.contains(&"training_annotations"));
    let at = |name: &str| {
        dropped
            .iter()
            .position(|d| *d == name)
            .unwrap_or(usize::MAX)
    };
    // A view goes before the tables it reads and writes.
    for (view, tables) in [
        (
            "training_examples_current_by_log_mv",
            &["training_examples_current"][..],
        ),
        (
            "training_examples_current_by_applied_annotation_mv",
            &["training_examples_current", "training_annotations_to_apply"][..],
        ),
        // The buffer goes before the table it passes its rows on to (dropping it
        // passes them on), and the views that feed it before it.
        (
            "training_scores_buffer",
            &["training_annotations_to_apply"][..],
        ),
        (
            "training_annotations_to_apply_scores_mv",
            &["training_scores_buffer"][..],
        ),
        (
            "training_annotations_to_apply_marks_mv",
            &["training_annotations_to_apply"][..],
        ),
        (
            "training_trainable_examples_by_current_mv",
            &["training_examples_current", "training_trainable_examples"][..],
        ),
        (
            "training_examples_with_annotations",
            &["training_examples_current", "training_trainable_examples"][..],
        ),
        (
            "training_stats_by_cascade",
            &["training_examples_current"][..],
        ),
    ] {
        for table in tables {
            assert!(at(view) < at(table), "{view} before {table}: {dropped:?}");
        }
    }
    assert_eq!(data["kept"], serde_json::json!(["training_annotations"]));
    assert_eq!(data["ledger_entries"].as_u64(), Some(7), "0001 to 0007");
    assert_eq!(tables(&db).await, installed, "--dry-run changes nothing");

    // Dropping the annotations needs a confirmation; without a terminal to ask on,
    // it is refused and nothing changes.
    let refused = db.rvbbit(&["training", "uninstall", "--drop-annotations"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--yes") && refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(tables(&db).await, installed);

    // Uninstall: the training objects go, the logs, the annotations and the other
    // plugin's ledger row stay.
    let run = db.rvbbit(&["training", "uninstall"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("dropped training_examples_current (ReplacingMergeTree)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("kept training_annotations"),
        "{}",
        run.stdout
    );
    assert_eq!(
        tables(&db).await,
        [
            "_rvbbit_plugin_migrations",
            "training_annotations",
            "unified_logs"
        ],
        "{}",
        run.stdout
    );
    assert_eq!(
        db.rows::<String>("SELECT plugin FROM _rvbbit_plugin_migrations FINAL")
            .await,
        ["other"]
    );
    assert_eq!(db.logs_fingerprint().await, logs);
    assert_eq!(db.snapshot_annotations().await, annotations);
    let status = db.rvbbit(&["training", "status", "--format", "json"]);
    assert!(status.stdout.contains("\"pending\""), "{}", status.stdout);

    // migrate installs it all again, and reads the annotations that were kept.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&["training", "verify", "-q"]).expect_code(0);
    assert_eq!(db.snapshot_annotations().await, annotations);
    let trainable: Vec<String> = db
        .rows(
            "SELECT trace_id FROM training_examples_with_annotations WHERE trainable ORDER BY trace_id",
        )
        .await;
    assert_eq!(trainable, ["un-1", "un-2"]);
    let retrieved = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "cell",
        "--format",
        "json",
    ]);
    retrieved.expect_code(0);
    assert_eq!(
        json_data(&retrieved).as_array().map(Vec::len),
        Some(2),
        "{}",
        retrieved.stdout
    );

    // On a terminal, --drop-annotations asks: anything but "yes" changes nothing.
    let installed = tables(&db).await;
    let (code, screen) = drop_annotations_answering(&db, "no");
    assert_eq!(code, Some(2), "{screen}");
    assert!(
        screen.contains("3 annotation rows") && screen.contains("not confirmed"),
        "{screen}"
    );
    assert_eq!(tables(&db).await, installed);
    assert_eq!(db.snapshot_annotations().await, annotations);
    let (code, screen) = drop_annotations_answering(&db, "yes");
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("dropped training_annotations (ReplacingMergeTree)"),
        "{screen}"
    );
    assert_eq!(
        tables(&db).await,
        ["_rvbbit_plugin_migrations", "unified_logs"]
    );
    assert_eq!(db.logs_fingerprint().await, logs);

    // --yes, for scripts: no question. Once everything is gone, nothing is left to do.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let all = db.rvbbit(&[
        "training",
        "uninstall",
        "--drop-annotations",
        "--yes",
        "--format",
        "json",
    ]);
    all.expect_code(0);
    assert!(
        json_data(&all)["dropped"]
            .as_array()
            .expect("dropped")
            .iter()
            .any(|r| r["name"] == "training_annotations"),
        "{}",
        all.stdout
    );
    assert_eq!(
        tables(&db).await,
        ["_rvbbit_plugin_migrations", "unified_logs"]
    );
    let again = db.rvbbit(&["training", "uninstall"]);
    again.expect_code(0);
    assert!(
        again
            .stdout
            .contains("nothing of the training system is installed"),
        "{}",
        again.stdout
    );
    db.drop().await;
}
