//! A migrate stopped by a fault of a live database converges when run again: stopped
//! right after each step of a fresh install in turn (the debug-build failpoint
//! `RVBBIT_TRAINING_FAILPOINT=exit-after-step:N`), a fresh install taking exactly the
//! steps those tests cover, the upgrade of a hand-applied install stopped after a
//! step, and the server killed mid-migrate and restarted on its data. What must hold
//! after each: `rvbbit_tests::ledger_fixture::assert_converged`.

use rvbbit_tests::ledger_fixture::{
    annotations_insert, assert_converged, assert_converged_to, fresh_steps, kill_engine_at,
    log_rows, marks, migration_steps, raw_rows, schema, seed, seeded, status, truth, Truth,
    HISTORY, LEDGER,
};
use rvbbit_tests::logs::{history_sql, insert};
use rvbbit_tests::{
    free_port, hostname, private_engine_log, remove_private_engine, rvbbit, start_private_engine,
    Run, TestDb,
};
use serde_json::Value;
use std::process::Stdio;

/// Step `n` of a fresh install (from 1): the migration it belongs to, the steps of that
/// migration done once it is, and that migration's steps.
fn step_of(n: u32) -> (u32, u32, u32) {
    let mut before = 0;
    for (i, steps) in migration_steps().into_iter().enumerate() {
        if n <= before + steps {
            return (i as u32 + 1, n - before, steps);
        }
        before += steps;
    }
    panic!("a fresh install has {before} steps, not {n}")
}

// ---------------------------------------------------------------------------------
// A migrate stopped right after each step in turn resumes and converges.

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_install_takes_exactly_the_steps_the_crash_tests_cover() {
    let (db, truth) = seeded("steps").await;
    // A failpoint past the last step never fires: a fresh install has no more steps.
    let run = rvbbit_tests::run(
        rvbbit()
            .args([
                "training",
                "migrate",
                "--url",
                &db.url,
                "--database",
                &db.name,
            ])
            .env(
                "RVBBIT_TRAINING_FAILPOINT",
                format!("exit-after-step:{}", fresh_steps() + 1),
            ),
    );
    run.expect_code(0);
    let ledger: Vec<(u32, u32, u32, String)> = db
        .rows(&format!(
            "SELECT version, statements_done, statements_total, toString(status) FROM {LEDGER} FINAL \
             WHERE plugin = 'training' ORDER BY version"
        ))
        .await;
    let expected: Vec<(u32, u32, u32, String)> = migration_steps()
        .into_iter()
        .enumerate()
        .map(|(i, steps)| (i as u32 + 1, steps, steps, "applied".to_string()))
        .collect();
    assert_eq!(ledger, expected);
    assert_converged(&db, &truth, "a migrate without fault").await;
    // The crash tests below stop after each of these steps, and after no other.
    assert_eq!(
        CRASH_STEPS.to_vec(),
        (1..=fresh_steps()).collect::<Vec<u32>>(),
        "stopped_after! must name every step of a fresh install, once and in order"
    );
    db.drop().await;
}

/// Stops a fresh install right after step `n` (exit 137, as a kill), checks what the
/// ledger and `status` say, then runs migrate again.
async fn stopped_after_step(n: u32) {
    let (db, truth) = seeded(&format!("stop{n}")).await;
    let child = rvbbit()
        .args([
            "training",
            "migrate",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .env("RVBBIT_TRAINING_FAILPOINT", format!("exit-after-step:{n}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rvbbit starts");
    let pid = child.id();
    let stopped = Run::from_output(child.wait_with_output().unwrap());
    stopped.expect_code(137);

    // The ledger shows the migration the step belongs to as in progress, with the steps
    // done, the host and the process that ran them.
    let (version, done, total) = step_of(n);
    let status = status(&db);
    assert_eq!(status["up_to_date"], false, "{status:#}");
    let migrations = status["migrations"].as_array().unwrap();
    let in_progress: Vec<&Value> = migrations
        .iter()
        .filter(|m| m["state"] == "in progress")
        .collect();
    assert_eq!(in_progress.len(), 1, "after step {n}: {status:#}");
    let m = in_progress[0];
    assert_eq!(m["version"], version, "after step {n}: {m:#}");
    assert_eq!(m["steps_done"], done, "after step {n}: {m:#}");
    assert_eq!(m["steps_total"], total, "after step {n}: {m:#}");
    assert_eq!(m["host"], hostname(), "{m:#}");
    assert_eq!(m["pid"], pid, "{m:#}");
    assert_eq!(m["finished_at"], Value::Null, "{m:#}");
    for other in migrations.iter().filter(|m| m["version"] != version) {
        let expected = if other["version"].as_u64() < Some(u64::from(version)) {
            "applied"
        } else {
            "pending"
        };
        assert_eq!(other["state"], expected, "after step {n}: {other:#}");
    }

    // --dry-run says what it would resume, and writes nothing.
    let ledger_before = raw_rows(&db, LEDGER).await;
    let dry = db.rvbbit(&["training", "migrate", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout
            .contains(&format!("-- would resume: migration {version:04}_")),
        "after step {n}:\n{}",
        dry.stdout
    );
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "--dry-run wrote the ledger"
    );

    // The next migrate says it resumes, and converges.
    let resumed = db.rvbbit(&["training", "migrate"]);
    // The line is broken at spaces to 80 columns: read word by word.
    let words = resumed
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains(&format!("resuming: migration {version:04}_"))
            && words.contains(&format!("after step {done} of {total}")),
        "after step {n}: migrate says what it resumes:\n{}",
        resumed.stdout
    );
    assert_eq!(
        resumed.code, 0,
        "after step {n}: the resumed migrate fails; stdout:\n{}\nstderr:\n{}",
        resumed.stdout, resumed.stderr
    );
    assert_converged(&db, &truth, &format!("stopped after step {n}")).await;

    // And a migrate after that has nothing left to do.
    let again = db.rvbbit(&["training", "migrate"]);
    again.expect_code(0);
    assert!(
        !again.stdout.contains("resuming") && !again.stdout.contains("created"),
        "{}",
        again.stdout
    );
    db.drop().await;
}

macro_rules! stopped_after {
    ($($name:ident: $n:expr,)*) => {
        /// The steps the tests below stop after.
        const CRASH_STEPS: &[u32] = &[$($n),*];
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                stopped_after_step($n).await;
            }
        )*
    };
}

// On a fresh install every statement whose object a later migration drops or replaces,
// or that reads such an object, is skipped, not sent: 0001's examples table, its view
// and the two views that read it (4-7), all of 0002 (8-14), 0003's views into the
// trainable copy, its copy and its joined view (16-19), 0004's relay, its views and its
// catch-up (23-25, 27), 0005's view for annotations, which 0006 replaces (29), and
// 0005's copy of 0001's examples (32). Each is a step of the ledger all the same. The
// backfill of the state table ends 0005 (44), the migration that creates the view it
// reads through; 0006 (45-50) and 0007 (51-52) follow it.

stopped_after! {
    stopped_after_step_01_annotations_table_resumes: 1,
    stopped_after_step_02_trainable_index_resumes: 2,
    stopped_after_step_03_verified_index_resumes: 3,
    stopped_after_step_04_skipped_examples_table_resumes: 4,
    stopped_after_step_05_skipped_examples_view_resumes: 5,
    stopped_after_step_06_skipped_joined_view_resumes: 6,
    stopped_after_step_07_skipped_stats_view_end_of_0001_resumes: 7,
    stopped_after_step_08_skipped_trace_index_resumes: 8,
    stopped_after_step_09_skipped_materialize_trace_index_resumes: 9,
    stopped_after_step_10_skipped_annotated_table_resumes: 10,
    stopped_after_step_11_skipped_annotation_view_resumes: 11,
    stopped_after_step_12_skipped_example_view_resumes: 12,
    stopped_after_step_13_skipped_copy_resumes: 13,
    stopped_after_step_14_skipped_joined_view_end_of_0002_resumes: 14,
    stopped_after_step_15_trainable_table_resumes: 15,
    stopped_after_step_16_skipped_trainable_annotation_view_resumes: 16,
    stopped_after_step_17_skipped_trainable_example_view_resumes: 17,
    stopped_after_step_18_skipped_trainable_copy_resumes: 18,
    stopped_after_step_19_skipped_joined_view_resumes: 19,
    stopped_after_step_20_drop_annotation_view_resumes: 20,
    stopped_after_step_21_drop_example_view_resumes: 21,
    stopped_after_step_22_drop_annotated_table_end_of_0003_resumes: 22,
    stopped_after_step_23_skipped_relay_table_resumes: 23,
    stopped_after_step_24_skipped_mark_view_resumes: 24,
    stopped_after_step_25_skipped_filter_view_resumes: 25,
    stopped_after_step_26_drop_trainable_annotation_view_resumes: 26,
    stopped_after_step_27_skipped_catch_up_end_of_0004_resumes: 27,
    stopped_after_step_28_state_table_resumes: 28,
    stopped_after_step_29_skipped_state_by_annotation_view_resumes: 29,
    stopped_after_step_30_state_to_trainable_view_resumes: 30,
    stopped_after_step_31_state_by_log_view_resumes: 31,
    stopped_after_step_32_skipped_examples_copy_resumes: 32,
    stopped_after_step_33_session_index_resumes: 33,
    stopped_after_step_34_materialize_session_index_resumes: 34,
    stopped_after_step_35_joined_view_resumes: 35,
    stopped_after_step_36_stats_view_resumes: 36,
    stopped_after_step_37_drop_examples_view_resumes: 37,
    stopped_after_step_38_drop_trainable_example_view_resumes: 38,
    stopped_after_step_39_drop_filter_view_resumes: 39,
    stopped_after_step_40_drop_mark_view_resumes: 40,
    stopped_after_step_41_drop_relay_table_resumes: 41,
    stopped_after_step_42_drop_examples_table_resumes: 42,
    stopped_after_step_43_trainable_copy_resumes: 43,
    stopped_after_step_44_backfill_end_of_0005_resumes: 44,
    stopped_after_step_45_annotations_to_apply_table_resumes: 45,
    stopped_after_step_46_applied_annotation_view_resumes: 46,
    stopped_after_step_47_scores_buffer_resumes: 47,
    stopped_after_step_48_scores_view_resumes: 48,
    stopped_after_step_49_marks_view_resumes: 49,
    stopped_after_step_50_drop_state_by_annotation_view_end_of_0006_resumes: 50,
    stopped_after_step_51_trainable_copy_settings_resumes: 51,
    stopped_after_step_52_trainable_copy_rewrite_end_of_0007_resumes: 52,
}

/// The upgrade of a hand-applied install (`tests/fixtures/installs/v2_float32.sql`:
/// plain view for the materialized view, `confidence Float32`) stopped after a step
/// (its repairs before the migrations, steps of its migrations, the repairs
/// after them): the next plain migrate must finish the upgrade, as it would have
/// without the fault.
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_of_a_hand_applied_install_stopped_after_a_step_resumes() {
    async fn hand_applied(label: &str) -> (TestDb, Truth) {
        let db = TestDb::with_logs(label).await;
        insert(&db.client, &log_rows()).await;
        db.exec(&history_sql(HISTORY)).await;
        db.apply_fixture("installs/v2_float32.sql").await;
        let marks = marks();
        db.exec(&annotations_insert(&marks)).await;
        let truth = truth(&db, HISTORY, marks.len()).await;
        (db, truth)
    }
    let (db, truth) = hand_applied("upstop_ref").await;
    let upgrade = db.rvbbit(&["training", "migrate"]);
    upgrade.expect_code(0);
    let reference = schema(&db).await;
    assert_converged_to(&db, &truth, &reference, "the upgrade without fault").await;
    db.drop().await;

    // The steps of the upgrade: the repairs before the migrations, every step of every
    // migration (as on a fresh install), the repairs after them (none since 0005, which
    // replaces both views the install kept). The repairs are read from what the upgrade
    // without fault said it did.
    let actions: Vec<&str> = upgrade
        .stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            [
                "repaired ",
                "created ",
                "exists ",
                "ran ",
                "skipped ",
                "replaced ",
            ]
            .iter()
            .any(|a| l.starts_with(a))
        })
        .collect();
    let before = actions
        .iter()
        .take_while(|l| l.starts_with("repaired "))
        .count() as u32;
    let after = actions
        .iter()
        .rev()
        .take_while(|l| l.starts_with("repaired "))
        .count() as u32;
    assert!(
        before >= 2,
        "the upgrade repairs before the migrations:\n{}",
        upgrade.stdout
    );
    let steps_of = migration_steps();
    let (s1, s2) = (steps_of[0], steps_of[1]);
    let s_last = *steps_of.last().unwrap();
    let last = before + fresh_steps();

    // The upgrade takes exactly those steps: a failpoint past the last never fires.
    let (db, _) = hand_applied("upstop_all").await;
    let unstopped = rvbbit_tests::run(
        rvbbit()
            .args([
                "training",
                "migrate",
                "--url",
                &db.url,
                "--database",
                &db.name,
            ])
            .env(
                "RVBBIT_TRAINING_FAILPOINT",
                format!("exit-after-step:{}", last + after + 1),
            ),
    );
    unstopped.expect_code(0);
    db.drop().await;

    let mut failures = Vec::new();
    // A repair before the migrations, the first and last statements of 0001, the first
    // and last statements of 0002, the first statement of 0003, the first step of the
    // last migration and its last (the backfill), the repair after the migrations if
    // there is one.
    let mut steps: Vec<u32> = vec![
        2,
        before + 1,
        before + s1,
        before + s1 + 1,
        before + s1 + s2,
        before + s1 + s2 + 1,
        last - s_last + 1,
        last,
    ];
    if after > 0 {
        steps.push(last + 1);
    }
    for &n in &steps {
        let (db, truth) = hand_applied(&format!("upstop{n}")).await;
        let stopped = rvbbit_tests::run(
            rvbbit()
                .args([
                    "training",
                    "migrate",
                    "--url",
                    &db.url,
                    "--database",
                    &db.name,
                ])
                .env("RVBBIT_TRAINING_FAILPOINT", format!("exit-after-step:{n}")),
        );
        stopped.expect_code(137);
        let resumed = db.rvbbit(&["training", "migrate"]);
        if resumed.code == 0 {
            assert_converged_to(
                &db,
                &truth,
                &reference,
                &format!("upgrade stopped after step {n}"),
            )
            .await;
        } else {
            let output = resumed.all();
            let failed: Vec<&str> = output
                .lines()
                .filter(|l| l.contains("FAIL") || l.starts_with("error:"))
                .map(str::trim)
                .collect();
            failures.push(format!(
                "stopped after step {n}: the next migrate exits {}: {}",
                resumed.code,
                failed.join(" | ")
            ));
        }
        db.drop().await;
    }
    assert!(
        failures.is_empty(),
        "an interrupted upgrade is not finished by the next migrate:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// The server killed mid-migrate, restarted on its data.

/// Kills the server (a private engine) when the migrate prints `marker`, restarts it on
/// its data, and checks that migration `in_progress` is left in progress and that the
/// next migrate resumes it and converges.
async fn server_killed_mid_migrate(label: &str, marker: &str, in_progress: u32) {
    let dir = std::env::temp_dir().join(format!("rvbbit-ledger-{label}-{}", std::process::id()));
    remove_private_engine(&dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut engine = start_private_engine(port, &dir);
    let db = TestDb::with_logs_on(&url, label).await;
    // Enough history (4000 rows a month) for the backfill to run long enough to be cut.
    let truth = seed(&db, 44_000).await;

    let killed = kill_engine_at(&db, &mut engine, marker);
    assert_eq!(
        killed.code, 3,
        "the migrate fails when its server dies:\n{}{}",
        killed.stdout, killed.stderr
    );
    assert_eq!(
        killed
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one clear message:\n{}",
        killed.stderr
    );
    assert!(!killed.stderr.contains("panicked"), "{}", killed.stderr);

    let mut engine = start_private_engine(port, &dir);
    let db = db.reconnect();
    let status = status(&db);
    let states: Vec<(u64, String)> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_u64().unwrap(),
                m["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(u64::from(in_progress), "in progress".to_string())),
        "migration {in_progress} is left in progress: {status:#}"
    );
    // A restarted engine on a loaded machine can be slow to answer its first statements:
    // this test is about resuming, so it gives each request more than the default 30 s.
    let rerun = db.rvbbit(&["training", "migrate", "--timeout", "180"]);
    assert_eq!(
        rerun.code,
        0,
        "the migrate after the restart; stdout:\n{}\nstderr:\n{}\nthe engine's log (last 60 lines):\n{}",
        rerun.stdout,
        rerun.stderr,
        private_engine_log(&dir, 60)
    );
    assert!(
        rerun
            .stdout
            .contains(&format!("resuming: migration {in_progress:04}_")),
        "{}",
        rerun.stdout
    );
    assert_converged(&db, &truth, &format!("server killed at {marker:?}")).await;
    db.drop().await;
    let _ = engine.kill();
    let _ = engine.wait();
    remove_private_engine(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_the_backfill_is_resumed_after_its_restart() {
    // The backfill is the last step of 0005, which creates the view it reads through.
    server_killed_mid_migrate("killed_backfill", "log rows scanned (1/", 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_migration_2_is_resumed_after_its_restart() {
    // On a fresh install every statement of 0002 is skipped (0003 and 0005 drop what it
    // makes): the server dies while the migrate records its steps in the ledger, just
    // after its first.
    server_killed_mid_migrate(
        "killed_0002",
        "skipped  index idx_trace_id on training_examples",
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_migration_3_is_resumed_after_its_restart() {
    server_killed_mid_migrate(
        "killed_0003",
        "created  table training_trainable_examples",
        3,
    )
    .await;
}
