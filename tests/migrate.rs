//! `rvbbit training migrate` and `verify` against the real engine.

use rvbbit_tests::ledger_fixture::{migration_statements, migration_steps, EXAMPLES_MV};
use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::{free_port, remove_private_engine, start_private_engine, TestDb};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn fresh_database_gets_every_object_and_verify_passes() {
    let db = TestDb::with_logs("fresh").await;
    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(0);
    for line in [
        "created  table training_annotations",
        "created  index idx_trainable on training_annotations",
        "created  index idx_verified on training_annotations",
        // Version 1's copy of the examples, and what reads it, are never built: 0005
        // drops them and keeps the examples in its state table instead.
        "skipped  table training_examples (migration 0005 removes or replaces it)",
        "skipped  materialized view training_examples_mv (migration 0005 removes or replaces it)",
        "skipped  view training_examples_with_annotations (migration 0005 removes what it reads)",
        "skipped  view training_stats_by_cascade (migration 0005 removes what it reads)",
        "skipped  index idx_trace_id on training_examples (migration 0005 removes or replaces it)",
        "skipped  table training_annotated_examples (migration 0003 removes or replaces it)",
        "created  table training_trainable_examples",
        "skipped  materialized view training_trainable_examples_by_annotation_mv (migration 0004 removes or replaces it)",
        "skipped  materialized view training_trainable_examples_by_example_mv (migration 0005 removes or replaces it)",
        "skipped  rows of training_trainable_examples (migration 0005 removes what it reads)",
        "skipped  table training_trainable_annotations (migration 0005 removes or replaces it)",
        "skipped  materialized view training_trainable_examples_by_mark_mv (migration 0005 removes or replaces it)",
        "skipped  materialized view training_trainable_annotations_mv (migration 0005 removes or replaces it)",
        "created  table training_examples_current",
        // Version 6 replaces 0005's view for annotations by its two paths.
        "skipped  materialized view training_examples_current_by_annotation_mv (migration 0006 removes or replaces it)",
        "created  materialized view training_trainable_examples_by_current_mv",
        "created  materialized view training_examples_current_by_log_mv",
        // A new database has no version 1 copy to take the examples from: the backfill does.
        "skipped  rows of training_examples_current (migration 0005 removes what it reads)",
        "created  index idx_session_id on training_trainable_examples",
        "replaced view training_examples_with_annotations",
        "replaced view training_stats_by_cascade",
        "absent   training_examples",
        "absent   training_trainable_annotations",
        "ran      rows of training_trainable_examples",
        "created  table training_annotations_to_apply",
        "created  materialized view training_examples_current_by_applied_annotation_mv",
        "created  table training_scores_buffer",
        "created  materialized view training_annotations_to_apply_scores_mv",
        "created  materialized view training_annotations_to_apply_marks_mv",
        "absent   training_examples_current_by_annotation_mv",
    ] {
        // A line wider than 80 columns goes on below, indented (free text, then
        // names, at spaces): compared word by word.
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words(&run.stdout).contains(&words(line)),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
    // (The first line names the server and the database: whole when piped.)
    assert!(
        run.stdout.lines().skip(1).all(|l| l.chars().count() <= 80),
        "every line fits 80 columns:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("verify: all"),
        "migrate ends with the verification summary:\n{}",
        run.stdout
    );
    let engines = db
        .rows::<(String, String)>(&format!(
            "SELECT name, engine FROM system.tables WHERE database = '{}' AND name LIKE 'training%' ORDER BY name",
            db.name
        ))
        .await;
    assert_eq!(
        engines,
        vec![
            ("training_annotations".into(), "ReplacingMergeTree".into()),
            ("training_annotations_to_apply".into(), "Null".into()),
            (
                "training_annotations_to_apply_marks_mv".into(),
                "MaterializedView".into()
            ),
            (
                "training_annotations_to_apply_scores_mv".into(),
                "MaterializedView".into()
            ),
            (
                "training_examples_current".into(),
                "ReplacingMergeTree".into()
            ),
            (
                "training_examples_current_by_applied_annotation_mv".into(),
                "MaterializedView".into()
            ),
            (
                "training_examples_current_by_log_mv".into(),
                "MaterializedView".into()
            ),
            ("training_examples_with_annotations".into(), "View".into()),
            ("training_scores_buffer".into(), "Buffer".into()),
            ("training_stats_by_cascade".into(), "View".into()),
            (
                "training_trainable_examples".into(),
                "ReplacingMergeTree".into()
            ),
            (
                "training_trainable_examples_by_current_mv".into(),
                "MaterializedView".into()
            ),
        ]
    );
    let verify = db.rvbbit(&["training", "verify", "--format", "json"]);
    verify.expect_code(0);
    let report = rvbbit_tests::json_data(&verify);
    assert_eq!(report["ok"], true);
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "table training_annotations",
        "table training_examples_current",
        "materialized view training_examples_current_by_log_mv",
        "table training_annotations_to_apply",
        "materialized view training_examples_current_by_applied_annotation_mv",
        "table training_scores_buffer",
        "materialized view training_annotations_to_apply_scores_mv",
        "materialized view training_annotations_to_apply_marks_mv",
        "table training_trainable_examples",
        "materialized view training_trainable_examples_by_current_mv",
        "view training_examples_with_annotations",
        "view training_stats_by_cascade",
        "migrations applied",
        "examples populated",
        "examples unique",
        "examples' values current",
        "trainable examples current",
        "trainable examples' values current",
    ] {
        assert!(checks.contains(&name), "no check {name:?} in {checks:?}");
    }
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrating_twice_changes_no_definition_and_duplicates_no_example() {
    let db = TestDb::with_logs("twice").await;
    insert(
        &db.client,
        &[
            LogRow::simple("a1", "casc", "cell", "q1", "r1"),
            LogRow::simple("a2", "casc", "cell", "q2", "r2"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    let before = db.definitions().await;
    // Nothing is annotated: each example is one row of the state table, and a second
    // write of one (same key) would be a row more until merged.
    let state_rows = "SELECT count() FROM training_examples_current";
    let rows_before: u64 = db.scalar(state_rows).await;
    assert_eq!(rows_before, 2, "one row per example");
    let ledger =
        "SELECT formatRow('TabSeparated', *) FROM _rvbbit_plugin_migrations FINAL ORDER BY version";
    let ledger_before: Vec<String> = db.rows(ledger).await;
    let second = db.rvbbit(&["sql", "migrate", "training"]);
    second.expect_code(0);
    // Every migration is applied: none runs again, and nothing is created.
    for word in [
        "created  ",
        "exists   ",
        "replaced ",
        "ran      ",
        "skipped  ",
        "absent   ",
        "removed  ",
        "resuming",
    ] {
        assert!(
            !second.stdout.contains(word),
            "nothing runs the second time ({word:?}):\n{}",
            second.stdout
        );
    }
    assert_eq!(
        db.rows::<String>(ledger).await,
        ledger_before,
        "the second migrate wrote the ledger"
    );
    assert!(
        second.stdout.contains("backfill examples already cover"),
        "{}",
        second.stdout
    );
    assert_eq!(
        db.definitions().await,
        before,
        "definitions changed on the second migrate"
    );
    assert_eq!(
        db.scalar::<u64>(state_rows).await,
        rows_before,
        "the second migrate wrote examples again"
    );
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_examples_current FINAL")
            .await,
        2
    );
    assert_eq!(
        db.scalar::<u64>("SELECT uniqExact(trace_id) FROM training_examples_current")
            .await,
        2
    );
    db.drop().await;
}

/// The backfill writes each month into `training_examples_backfill`, a table shaped like
/// the state table that no view reads, and moves the months to the state table when it
/// ends; the table is gone when migrate ends. One of another shape that a stopped
/// backfill left is replaced; uninstall drops one that is left.
#[tokio::test(flavor = "multi_thread")]
async fn the_backfills_staging_table_is_replaced_then_dropped_and_uninstall_drops_a_leftover() {
    let db = TestDb::with_logs("staging").await;
    db.exec(&rvbbit_tests::logs::history_sql(110)).await;
    db.exec("CREATE TABLE training_examples_backfill (x UInt8) ENGINE = MergeTree ORDER BY x")
        .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let staging = "SELECT count() FROM system.tables WHERE database = currentDatabase() \
                   AND name = 'training_examples_backfill'";
    assert_eq!(db.scalar::<u64>(staging).await, 0);
    assert_eq!(
        db.scalar::<u64>(
            "SELECT count() FROM training_examples_current FINAL WHERE trace_id LIKE 'h-%'"
        )
        .await,
        110
    );
    assert_eq!(
        db.scalar::<u64>("SELECT uniqExact(toYYYYMM(timestamp)) FROM training_examples_current")
            .await,
        db.scalar::<u64>("SELECT uniqExact(toYYYYMM(timestamp)) FROM unified_logs")
            .await,
        "every month attached"
    );
    // The staging table merges nothing (its month's rows are merged once, in the state
    // table); the state table keeps merging on its own.
    let state_table = db
        .scalar::<String>(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() \
             AND name = 'training_examples_current'",
        )
        .await;
    assert!(
        state_table.contains("min_age_to_force_merge_seconds = 60")
            && !state_table.contains("max_bytes_to_merge_at"),
        "{state_table}"
    );
    db.exec("CREATE TABLE training_examples_backfill AS training_examples_current")
        .await;
    let run = db.rvbbit(&["training", "uninstall"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("dropped training_examples_backfill (ReplacingMergeTree)"),
        "{}",
        run.stdout
    );
    assert_eq!(db.scalar::<u64>(staging).await, 0);
    db.drop().await;
}

/// Version 7 stores the trainable copy in wide parts from 10 MiB on (Studio's grid reads
/// it whole), keeping its other settings; a second migrate changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_trainable_copy_takes_wide_parts_from_10_mib() {
    let db = TestDb::with_logs("wide").await;
    db.exec(&rvbbit_tests::logs::history_sql(20)).await;
    let copy = "SELECT engine_full FROM system.tables WHERE database = currentDatabase() \
                AND name = 'training_trainable_examples'";
    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(0);
    for line in [
        "ran      MODIFY SETTING of training_trainable_examples",
        "ran      OPTIMIZE FINAL of training_trainable_examples",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let settings = db.scalar::<String>(copy).await;
    assert!(
        settings.contains("min_bytes_for_wide_part = 10485760")
            && settings.contains("index_granularity = 64")
            && settings.contains("min_age_to_force_merge_seconds = 300"),
        "{settings}"
    );
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    assert_eq!(db.scalar::<String>(copy).await, settings);
    db.drop().await;
}

/// The months a stopped backfill left in `training_examples_backfill` are examples like
/// any other: the next run moves them to the state table whole (not written again, not
/// lost, not duplicated) before it backfills the rest.
#[tokio::test(flavor = "multi_thread")]
async fn months_a_stopped_backfill_left_staged_are_moved_not_written_again() {
    let db = TestDb::with_logs("staged").await;
    db.exec(&rvbbit_tests::logs::history_sql(110)).await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let month: u32 = db
        .scalar("SELECT toYYYYMM(min(timestamp)) FROM training_examples_current WHERE trace_id LIKE 'h-%'")
        .await;
    let of_month = format!(
        "SELECT count(), toString(max(captured_at)) FROM training_examples_current \
         WHERE toYYYYMM(timestamp) = {month}"
    );
    let before: (u64, String) = db.scalar(&of_month).await;
    assert!(before.0 > 0, "{before:?}");
    // What a backfill killed after this month leaves: the month in the staging table,
    // not in the state table.
    db.exec("CREATE TABLE training_examples_backfill AS training_examples_current")
        .await;
    db.exec(&format!(
        "ALTER TABLE training_examples_current MOVE PARTITION {month} TO TABLE training_examples_backfill"
    ))
    .await;
    // The local engines of 23.10 and 24.8 copy the parts instead of moving them.
    db.exec(&format!(
        "ALTER TABLE training_examples_current DROP PARTITION {month}"
    ))
    .await;
    assert_eq!(db.scalar::<(u64, String)>(&of_month).await.0, 0);
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    // Moved back as it was written (the same capture time), not backfilled again.
    assert_eq!(db.scalar::<(u64, String)>(&of_month).await, before);
    assert_eq!(
        db.scalar::<u64>(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() \
             AND name = 'training_examples_backfill'"
        )
        .await,
        0
    );
    assert_eq!(
        db.scalar::<(u64, u64)>(
            "SELECT count(), uniqExact(trace_id) FROM training_examples_current WHERE trace_id LIKE 'h-%'"
        )
        .await,
        (110, 110)
    );
    db.rvbbit(&["training", "verify", "-q"]).expect_code(0);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_over_its_memory_cap_stops_keeps_its_work_and_resumes() {
    let db = TestDb::with_logs("memcap").await;
    // 40 requests of 400 KB: 16 MB of JSON to parse, more than 1 MiB in any block.
    let history: Vec<LogRow> = (0..40)
        .map(|i| {
            LogRow::simple(
                &format!("capped-{i}"),
                "casc",
                "cell",
                &format!("question {i} {}", "q".repeat(400_000)),
                &format!("answer {i}"),
            )
        })
        .collect();
    insert(&db.client, &history).await;
    let bad = db.rvbbit(&["training", "migrate", "--backfill-max-memory", "12KiB"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("less than 1 MiB"), "{}", bad.stderr);
    // 1 MiB cannot hold a block of these rows: the server stops the statement.
    let capped = db.rvbbit(&["training", "migrate", "--backfill-max-memory", "1MiB"]);
    capped.expect_code(7);
    assert!(
        capped
            .stderr
            .contains("needed more than the 1 MiB the backfill may use")
            && capped
                .stderr
                .contains("--backfill-max-memory (for example 2 MiB)"),
        "{}",
        capped.stderr
    );
    let resumed = db.rvbbit(&["training", "migrate"]);
    resumed.expect_code(0);
    // Nothing is annotated: one row of the state table per example, unless the resumed
    // backfill wrote some again.
    let (count, traces): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_current")
        .await;
    assert_eq!((count, traces), (40, 40), "{}", resumed.stdout);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfilled_month_is_written_in_time_order() {
    // Studio's grid reads the newest examples with FINAL, which merges at every read the
    // parts of a month whose time ranges overlap. A month backfilled in the log's order
    // (by session) leaves parts that each span the month; in time order, slices of it.
    let db = TestDb::with_logs("timeorder").await;
    // 1,200 replies of one past month, a minute apart, from 97 sessions in no time
    // order, each asking a 16 KB question: 19 MB of examples.
    db.exec(
        "INSERT INTO unified_logs (session_id, trace_id, node_type, role, cascade_id, cell_name, \
         full_request_json, content_json, timestamp) \
         SELECT concat('s-', toString(cityHash64(number) % 97)), concat('t-', toString(number)), 'agent', \
                'assistant', 'casc', 'cell', \
                concat('{\"messages\": [{\"role\": \"user\", \"content\": \"question ', toString(number), ' ', \
                       repeat('q', 16000), '\"}]}'), \
                concat('\"answer ', toString(number), '\"'), \
                toDateTime64(toStartOfMonth(now()) - toIntervalMonth(2), 6) + toIntervalMinute(number) \
         FROM numbers(1200)",
    )
    .await;
    // The first run creates the state table and stops in the backfill (1 MiB holds no
    // block of these rows); the engine is then told not to merge its parts, so that the
    // resumed backfill's parts stay as it wrote them.
    db.rvbbit(&["training", "migrate", "--backfill-max-memory", "1MiB"])
        .expect_code(7);
    db.exec(
        "ALTER TABLE training_examples_current MODIFY SETTING \
         max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1",
    )
    .await;
    // A cap of 256 MiB writes parts of up to 8 MiB: the month takes several.
    let resumed = db.rvbbit(&["training", "migrate", "--backfill-max-memory", "256MiB"]);
    resumed.expect_code(0);
    let parts: Vec<(String, String, String, u64)> = db
        .rows(
            "SELECT _part, toString(min(timestamp)) AS first, toString(max(timestamp)), count() \
             FROM training_examples_current GROUP BY _part ORDER BY first",
        )
        .await;
    // 26.9 writes this month in several parts; 23.10, 24.8 and 25.8 write it as one
    // (measured: their sort hands these 1,200 rows on as one block), so there only
    // the count below is checked.
    let version: String = db.scalar("SELECT version()").await;
    if version.starts_with("26.") {
        assert!(parts.len() >= 2, "one part only: {parts:?}");
    }
    assert_eq!(parts.iter().map(|p| p.3).sum::<u64>(), 1200, "{parts:?}");
    for pair in parts.windows(2) {
        assert!(pair[0].2 < pair[1].1, "parts overlap in time: {pair:?}");
    }
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_longer_than_the_timeout_is_stopped_by_the_server_and_resumes() {
    // An engine of its own: no other test's statement runs on it, so --timeout 2 meets
    // only this backfill, and anything system.processes shows besides the query asking
    // is this migrate's.
    let dir = std::env::temp_dir().join(format!("rvbbit-migrate-timeout-{}", std::process::id()));
    remove_private_engine(&dir);
    let port = free_port();
    let mut engine = start_private_engine(port, &dir);
    let db = TestDb::with_logs_on(&format!("http://127.0.0.1:{port}"), "slowmonth").await;
    // One month of 300,000 replies with 4 KB requests: several seconds of backfill.
    const ROWS: u64 = 300_000;
    db.exec(&format!(
        "INSERT INTO unified_logs (session_id, trace_id, node_type, role, cascade_id, cell_name, model, \
         full_request_json, content_json) \
         SELECT concat('s-', toString(intDiv(number, 6))), concat('slow-', toString(number)), 'agent', \
         'assistant', 'casc', 'cell', 'm', \
         concat('{{\"messages\":[{{\"role\":\"user\",\"content\":\"', repeat('word ', 800), \
         toString(number), '\"}}]}}'), concat('\"answer ', toString(number), '\"') \
         FROM numbers({ROWS})"
    ))
    .await;
    let stopped = db.rvbbit(&["training", "migrate", "--timeout", "2"]);
    stopped.expect_code(3);
    assert!(
        stopped
            .stderr
            .contains("took longer than --timeout (2 s) allows, and the server stopped it")
            && stopped
                .stderr
                .contains("run migrate again with a larger --timeout (for example 300) to resume"),
        "{}",
        stopped.stderr
    );
    // The server stopped the statement: nothing of the migrate is still running on it.
    // The local front runs requests at once on 26.x, so a backfill the server did not
    // stop is listed here (an INSERT INTO training_examples_current); on the older engines it
    // runs them one at a time, so there this query is answered only once such a
    // statement has ended, and the counts below tell whether the backfill was cut. The
    // engine of ClickHouse 23.10 (chdb 1.4.1) has no system.processes: there the counts
    // alone tell.
    let version: String = db.scalar("SELECT version()").await;
    if !version.starts_with("23.10.") {
        let running: Vec<(String, String)> = db
            .rows("SELECT query_id, query FROM system.processes WHERE query_id != queryID()")
            .await;
        assert!(
            running.is_empty(),
            "still running after the migrate ended: {running:#?}"
        );
    }
    let (count, traces): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_current")
        .await;
    assert!(
        count < ROWS,
        "the backfill ran to its end after the client gave up: {count}"
    );
    assert_eq!(count, traces, "examples written twice");
    let resumed = db.rvbbit(&["training", "migrate", "--timeout", "600"]);
    resumed.expect_code(0);
    // The line is broken at spaces to 80 columns: read word by word.
    let words = resumed
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains("resuming: migration 0005_studio_state_table was left failed"),
        "{}",
        resumed.stdout
    );
    let (count, traces): (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_current")
        .await;
    assert_eq!((count, traces), (ROWS, ROWS), "{}", resumed.stdout);
    db.drop().await;
    let _ = engine.kill();
    let _ = engine.wait();
    remove_private_engine(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_is_backfilled_once_and_new_rows_arrive_live() {
    let db = TestDb::with_logs("backfill").await;
    let history: Vec<LogRow> = (0..25)
        .map(|i| {
            LogRow::simple(
                &format!("old-{i}"),
                "casc",
                "cell",
                &format!("question {i}"),
                &format!("answer {i}"),
            )
        })
        .collect();
    insert(&db.client, &history).await;
    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("backfill added 25 examples"),
        "{}",
        run.stdout
    );
    insert(
        &db.client,
        &[LogRow::simple(
            "new-1",
            "casc",
            "cell",
            "live question",
            "live answer",
        )],
    )
    .await;
    let live: Vec<(String, String)> = db
        .rows("SELECT user_input, assistant_output FROM training_examples_current_by_log_mv WHERE trace_id = 'new-1'")
        .await;
    assert_eq!(
        live,
        vec![("live question".to_string(), "live answer".to_string())]
    );
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_examples_with_annotations")
            .await,
        26
    );
    assert_eq!(
        db.scalar::<u64>("SELECT uniqExact(trace_id) FROM training_examples_current")
            .await,
        26
    );
    db.drop().await;
}

/// Log rows covering every branch of the parsing rules (README, "What `migrate`
/// creates"), and the examples they must give, written out by hand: (trace id, user
/// input, assistant output), sorted by trace id. Rows that are no example are listed
/// with the reason.
fn parsing_cases() -> (Vec<LogRow>, Vec<(String, String, String)>) {
    let tricky = "He said \"stop\" — it's 'done'\n\tnext line\\ é 漢字 🐇";
    let mut rows = vec![
        // The last user message wins; earlier turns and the system prompt are ignored.
        LogRow::assistant(
            "last-user",
            "casc",
            "cell",
            json!([
                {"role": "system", "content": "system prompt"},
                {"role": "user", "content": "first turn"},
                {"role": "assistant", "content": "an earlier reply"},
                {"role": "user", "content": tricky}
            ]),
            json!(tricky),
        ),
        // A list of parts: text parts joined by newlines, images left out.
        LogRow::assistant(
            "parts",
            "casc",
            "cell",
            json!([{"role": "user", "content": [
                {"type": "text", "text": "look at this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "and say \"what\" 🐇"}
            ]}]),
            json!("a cat"),
        ),
        // A list of parts without text: no input.
        LogRow::assistant(
            "parts-no-text",
            "casc",
            "cell",
            json!([{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}]),
            json!("an image"),
        ),
        // Structured output stays JSON, exactly as stored.
        LogRow::assistant(
            "structured",
            "casc",
            "cell",
            json!([{"role": "user", "content": "extract"}]),
            json!({"name": "Zoë", "tags": ["a", "b"]}),
        ),
        // A number and a bool as the reply: their JSON text.
        LogRow::assistant(
            "reply-number",
            "casc",
            "cell",
            json!([{"role": "user", "content": "how many?"}]),
            json!(42),
        ),
        LogRow::assistant(
            "reply-bool",
            "casc",
            "cell",
            json!([{"role": "user", "content": "is it?"}]),
            json!(true),
        ),
        // No user message (a system prompt only): an example with no input.
        LogRow::assistant(
            "no-user",
            "casc",
            "cell",
            json!([{"role": "system", "content": "only a system prompt"}]),
            json!("a reply anyway"),
        ),
        // Not examples: no cascade, empty cascade, not assistant, empty / null reply.
        LogRow {
            cascade_id: None,
            ..LogRow::simple("no-cascade", "x", "cell", "q", "r")
        },
        LogRow {
            cascade_id: Some(String::new()),
            ..LogRow::simple("empty-cascade", "x", "cell", "q", "r")
        },
        LogRow {
            role: "user".into(),
            ..LogRow::simple("user-row", "casc", "cell", "q", "r")
        },
        LogRow::assistant(
            "empty-reply",
            "casc",
            "cell",
            json!([{"role": "user", "content": "q"}]),
            json!(""),
        ),
        LogRow::assistant(
            "null-reply",
            "casc",
            "cell",
            json!([{"role": "user", "content": "q"}]),
            json!(null),
        ),
    ];
    rows.push(LogRow {
        content_json: None,
        ..LogRow::simple("missing-reply", "casc", "cell", "q", "r")
    });
    // A reply that is not JSON is kept as it is; a request that is not JSON has no input.
    rows.push(LogRow {
        content_json: Some("plain text, not JSON {".into()),
        ..LogRow::simple("reply-not-json", "casc", "cell", "q", "r")
    });
    rows.push(LogRow {
        full_request_json: Some("{\"messages\": [{\"role\": \"user\", \"content\": ".into()),
        ..LogRow::simple("request-not-json", "casc", "cell", "q", "the reply")
    });
    let example = |id: &str, input: &str, output: &str| {
        (id.to_string(), input.to_string(), output.to_string())
    };
    let mut expected = vec![
        example("last-user", tricky, tricky),
        example("no-user", "", "a reply anyway"),
        example("parts", "look at this\nand say \"what\" 🐇", "a cat"),
        example("parts-no-text", "", "an image"),
        example("reply-bool", "is it?", "true"),
        example("reply-not-json", "q", "plain text, not JSON {"),
        example("reply-number", "how many?", "42"),
        example("request-not-json", "", "the reply"),
        example(
            "structured",
            "extract",
            r#"{"name": "Zo\u00eb", "tags": ["a", "b"]}"#,
        ),
    ];
    expected.sort();
    (rows, expected)
}

/// The steps a migrate of a new database takes before its backfill: every migration's
/// up to the one that creates the examples' materialized view, whose last step the
/// backfill is.
fn steps_before_the_backfill() -> u32 {
    let create = format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {EXAMPLES_MV} ");
    let backfilling = migration_statements()
        .iter()
        .position(|statements| statements.iter().any(|s| s.starts_with(&create)))
        .expect("a migration creates the examples' materialized view");
    migration_steps()[..=backfilling].iter().sum::<u32>() - 1
}

/// The examples the database holds, read through the joined view, against `expected`;
/// and `verify`'s own count of examples against the same truth.
async fn assert_examples(db: &TestDb, expected: &[(String, String, String)], context: &str) {
    let got: Vec<(String, String, String)> = db
        .rows("SELECT trace_id, user_input, assistant_output FROM training_examples_with_annotations ORDER BY trace_id")
        .await;
    assert_eq!(got, expected, "{context}");
    let verify = db.rvbbit(&["training", "verify", "--format", "json"]);
    verify.expect_code(0);
    let report = rvbbit_tests::json_data(&verify);
    let populated = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "examples populated")
        .unwrap_or_else(|| panic!("{context}: no 'examples populated' check: {report}"));
    assert_eq!(populated["ok"], true, "{context}: {populated}");
    let detail = populated["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!("{} examples;", expected.len())),
        "{context}: verify counts {detail:?}, the truth is {} examples",
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_follow_the_parsing_rules_on_live_arrival() {
    let db = TestDb::with_logs("parsing").await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    let (rows, expected) = parsing_cases();
    insert(&db.client, &rows).await;
    // NULL cascades whose hidden Nullable value is not empty (as a bulk INSERT ... SELECT
    // with if(..., NULL, x) leaves them) are still not examples.
    db.exec(
        "INSERT INTO unified_logs (session_id, trace_id, node_type, role, cascade_id, cell_name, full_request_json, content_json) \
         SELECT 's', concat('null-cascade-', toString(number)), 'agent', 'assistant', if(number % 2 = 0, NULL, 'casc-x'), \
                if(number % 2 = 0, NULL, 'cell'), '{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}', '\"r\"' \
         FROM numbers(4)",
    )
    .await;
    db.exec("DELETE FROM unified_logs WHERE trace_id IN ('null-cascade-1', 'null-cascade-3')")
        .await;
    db.exec("DELETE FROM training_examples_current WHERE trace_id IN ('null-cascade-1', 'null-cascade-3')")
        .await;
    assert_examples(&db, &expected, "live arrival").await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_follow_the_parsing_rules_after_the_backfill_and_after_a_resumed_one() {
    let (rows, expected) = parsing_cases();
    // The rows logged before the install: the backfill makes the examples.
    let db = TestDb::with_logs("parsing_backfill").await;
    insert(&db.client, &rows).await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    assert_examples(&db, &expected, "backfill").await;
    db.drop().await;

    // A migrate stopped right before its backfill, then run again: the resumed run
    // backfills the same examples.
    let db = TestDb::with_logs("parsing_resumed").await;
    insert(&db.client, &rows).await;
    let stopped = rvbbit_tests::run(
        rvbbit_tests::rvbbit()
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
                format!("exit-after-step:{}", steps_before_the_backfill()),
            ),
    );
    assert_eq!(stopped.code, 137, "{}", stopped.all());
    let count: u64 = db
        .scalar("SELECT count() FROM training_examples_current")
        .await;
    assert_eq!(count, 0, "stopped before the backfill");
    let resumed = db.rvbbit(&["training", "migrate"]);
    resumed.expect_code(0);
    assert!(resumed.stdout.contains("resuming"), "{}", resumed.stdout);
    assert_examples(&db, &expected, "resumed backfill").await;

    // verify's count is a check that can fail: one example gone, one reported.
    db.exec("DELETE FROM training_examples_current WHERE trace_id = 'parts'")
        .await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout)
            .contains("1 qualifying unified_logs rows have no example"),
        "{}",
        verify.stdout
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_a_missing_object_and_migrate_restores_it() {
    let db = TestDb::with_logs("restore").await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.exec("DROP VIEW training_stats_by_cascade").await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout).contains("FAIL view training_stats_by_cascade"),
        "{}",
        verify.stdout
    );
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout).contains("missing; run `rvbbit training migrate`"),
        "{}",
        verify.stdout
    );
    let json = db.rvbbit(&["training", "verify", "--format", "json"]);
    json.expect_code(1);
    let report = rvbbit_tests::json_data(&json);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["view training_stats_by_cascade"]);
    let again = db.rvbbit(&["training", "migrate"]);
    again.expect_code(0);
    assert!(
        again
            .stdout
            .contains("created  view training_stats_by_cascade"),
        "{}",
        again.stdout
    );
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_examples_missing_from_the_log() {
    let db = TestDb::with_logs("unpopulated").await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    insert(
        &db.client,
        &[LogRow::simple("e1", "casc", "cell", "q", "r")],
    )
    .await;
    db.exec("TRUNCATE TABLE training_examples_current").await;
    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout)
            .contains("1 qualifying unified_logs rows have no example"),
        "{}",
        verify.stdout
    );
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_database_names_the_database_holding_the_logs_and_nothing_is_created() {
    // The database rvbbit logs to, and the same name mistyped in another case.
    let db = TestDb::with_logs("mistyped").await;
    let mistyped = db.name.to_uppercase();
    let advice = format!(
        "database {mistyped} does not exist on {}; rvbbit's unified_logs is in: {}",
        db.url, db.name
    );
    let with = |args: &[&str]| {
        rvbbit_tests::run(rvbbit_tests::rvbbit().args(args).args([
            "--url",
            &db.url,
            "--database",
            &mistyped,
        ]))
    };
    for args in [
        &["training", "migrate"][..],
        &["training", "migrate", "--create-database"],
        &["training", "status"],
        &["training", "stats"],
        &["training", "examples", "--cascade", "c", "--cell", "x"],
    ] {
        let run = with(args);
        run.expect_code(6);
        assert!(run.stderr.contains(&advice), "{args:?}: {}", run.stderr);
        // One line, no advice that cannot succeed, no server exception.
        assert_eq!(
            run.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("pass --create-database") && !run.stderr.contains("DB::Exception"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let verify = with(&["training", "verify"]);
    verify.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&verify.stdout).contains(&format!(
            "does not exist; rvbbit's unified_logs is in: {}",
            db.name
        )),
        "{}",
        verify.stdout
    );
    let databases: u64 = db
        .scalar(&format!(
            "SELECT count() FROM system.databases WHERE name = '{mistyped}'"
        ))
        .await;
    assert_eq!(
        databases, 0,
        "no database is created, --create-database or not"
    );
    // A database without the logs is named as such; nothing is created in it.
    let empty = TestDb::empty("nologs").await;
    let run = empty.rvbbit(&["training", "migrate"]);
    run.expect_code(6);
    assert!(
        run.stderr
            .contains(&format!("table {}.unified_logs does not exist", empty.name)),
        "{}",
        run.stderr
    );
    let tables: u64 = empty
        .scalar(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}'",
            empty.name
        ))
        .await;
    assert_eq!(tables, 0, "nothing is created without unified_logs");
    empty.drop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn before_migrate_every_reader_says_in_one_line_to_install() {
    let db = TestDb::with_logs("notinstalled").await;
    for (args, object) in [
        (&["training", "stats"][..], "training_stats_by_cascade"),
        (
            &["training", "examples", "--cascade", "c", "--cell", "x"],
            "training_examples_with_annotations",
        ),
        (
            &[
                "training",
                "examples",
                "--cascade",
                "c",
                "--cell",
                "x",
                "--all",
            ],
            "training_examples_with_annotations",
        ),
        (
            &["training", "annotate", "--trainable", "t1"],
            "training_annotations",
        ),
    ] {
        let run = db.rvbbit(args);
        run.expect_code(6);
        assert_eq!(
            run.stderr.trim(),
            format!(
                "error: the training system is not installed in database {0} ({object} missing); \
                 install it with `rvbbit training migrate --database {0}`",
                db.name
            ),
            "{args:?}"
        );
    }
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_all_lists_every_example_of_a_cell_with_its_annotation() {
    let db = TestDb::with_logs("listall").await;
    insert(
        &db.client,
        &[
            LogRow::simple("la-1", "casc", "cell", "first question", "first answer"),
            LogRow::simple("la-2", "casc", "cell", "second question", "second answer"),
            LogRow::simple("la-3", "casc", "other", "elsewhere", "elsewhere"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--confidence",
        "0.875",
        "--by",
        "tester",
        "la-2",
    ])
    .expect_code(0);
    let run = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "cell",
        "--all",
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let rows = rvbbit_tests::json_data(&run);
    let mut seen: Vec<(String, bool, Option<f64>, String)> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["trace_id"].as_str().unwrap_or_default().to_string(),
                r["trainable"].as_bool().unwrap_or_default(),
                r["confidence"].as_f64(),
                r["annotated_by"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("la-1".to_string(), false, None, String::new()),
            ("la-2".to_string(), true, Some(0.875), "tester".to_string()),
        ]
    );
    let table = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "cell",
        "--all",
    ]);
    table.expect_code(0);
    assert!(
        table.stdout.contains("not annotated")
            && table
                .stdout
                .contains("trainable, confidence 0.875, by tester")
            && table.stdout.contains("user:      second question"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        table.stdout
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_annotation_refuses_a_trace_id_rvbbit_never_logged() {
    let db = TestDb::with_logs("testann_unknown").await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    let run = db.rvbbit(&["training", "test-annotation", "--trace-id", "no-such-trace"]);
    run.expect_code(6);
    assert!(
        run.stderr
            .contains("trace \"no-such-trace\" is not in unified_logs; check the id"),
        "{}",
        run.stderr
    );
    let written: u64 = db.scalar("SELECT count() FROM training_annotations").await;
    assert_eq!(written, 0, "nothing is written for an unknown trace");
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_applied_install_with_a_stats_table_is_refused_and_left_untouched() {
    // A hand-applied install (the second version described in rvbbit's facts: a plain
    // view taking the raw request as user_input, confidence Float32 DEFAULT 1.0) is
    // upgraded in place (tests/upgrades.rs), unless putting it right would drop data:
    // here Studio's KPI numbers were kept in a table where this version has a view.
    let db = TestDb::with_logs("legacy").await;
    insert(
        &db.client,
        &[LogRow::simple("l-1", "casc", "cell", "q", "r")],
    )
    .await;
    db.exec(
        "CREATE TABLE training_annotations (trace_id String, trainable Bool DEFAULT false, verified Bool DEFAULT false, \
         confidence Float32 DEFAULT 1.0, notes String DEFAULT '', tags Array(String) DEFAULT [], \
         annotated_at DateTime64(6) DEFAULT now64(6), annotated_by String DEFAULT '') \
         ENGINE = ReplacingMergeTree(annotated_at) ORDER BY trace_id",
    )
    .await;
    db.exec(
        "CREATE VIEW training_examples_mv AS SELECT trace_id, timestamp, session_id, cascade_id, cell_name, \
         substring(full_request_json, 1, 2000) AS user_input, content_json AS assistant_output \
         FROM unified_logs WHERE role = 'assistant' AND cascade_id IS NOT NULL AND cascade_id != ''",
    )
    .await;
    db.exec(
        "CREATE TABLE training_stats_by_cascade (cascade_id String, cell_name String, trainable_count UInt64, \
         verified_count UInt64, avg_confidence Nullable(Float64), total_executions UInt64) \
         ENGINE = MergeTree ORDER BY (cascade_id, cell_name)",
    )
    .await;
    db.exec("INSERT INTO training_stats_by_cascade VALUES ('casc', 'cell', 1, 0, 1.0, 1)")
        .await;
    db.exec("INSERT INTO training_annotations (trace_id, trainable) VALUES ('l-1', true)")
        .await;
    let before = db.definitions().await;
    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("refusing to migrate database"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("training_stats_by_cascade is a MergeTree, expected a View")
            && run.stderr.contains("table holding data"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Nothing was changed"), "{}", run.stderr);
    assert_eq!(db.definitions().await, before, "nothing created or changed");
    let kept: Vec<(String, bool, f32)> = db
        .rows("SELECT trace_id, trainable, confidence FROM training_annotations")
        .await;
    assert_eq!(kept, vec![("l-1".to_string(), true, 1.0)]);
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_stats_by_cascade")
            .await,
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_as_json_is_the_plan_and_changes_nothing() {
    let db = TestDb::with_logs("dryjson").await;
    let run = db.rvbbit(&["training", "migrate", "--dry-run", "--format", "json"]);
    run.expect_code(0);
    let document = rvbbit_tests::json_document(&run);
    assert_eq!(document["database"], db.name.as_str());
    assert_eq!(document["command"], "training migrate");
    let plan = document["data"].clone();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["found"], "new");
    let steps = plan["steps"].as_array().expect("steps");
    // Migration 1 starts by creating the annotations table; migration 5, which creates
    // the examples' state table, ends with the backfill.
    assert_eq!(steps[0]["migration"], 1);
    assert_eq!(steps[0]["step"], 1);
    assert_eq!(steps[0]["would"], "run");
    assert_eq!(steps[0]["what"], "table training_annotations");
    assert!(steps[0]["sql"][0]
        .as_str()
        .unwrap_or_default()
        .starts_with("CREATE TABLE IF NOT EXISTS training_annotations"));
    let backfills: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["would"] == "backfill")
        .map(|s| &s["migration"])
        .collect();
    assert_eq!(backfills, [5], "{plan:#}");
    assert_eq!(
        steps
            .iter()
            .rfind(|s| s["migration"] == 5)
            .map(|s| &s["would"]),
        Some(&json!("backfill")),
        "migration 5 ends with the backfill: {plan:#}"
    );
    // A new database skips what migration 3 removes (version 2's copy), and version 1's
    // copy of the examples, which migration 5 removes.
    assert!(
        steps.iter().any(|s| s["would"] == "skip"
            && s["reason"] == "migration 0003 removes or replaces it"),
        "{plan:#}"
    );
    assert!(
        steps.iter().any(|s| s["would"] == "skip"
            && s["what"] == "table training_examples"
            && s["reason"] == "migration 0005 removes or replaces it"),
        "{plan:#}"
    );
    assert!(
        run.stdout.starts_with('{') && !run.stdout.lines().any(|l| l.starts_with("--")),
        "nothing but the JSON document:\n{}",
        run.stdout
    );
    let tables: u64 = db
        .scalar(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}' AND name != 'unified_logs'",
            db.name
        ))
        .await;
    assert_eq!(tables, 0, "a dry run creates nothing");
    db.drop().await;
}

/// An annotation written while `training_examples_current_by_applied_annotation_mv` is missing
/// (dropped by hand, or written during an upgrade before migration 0005 creates it)
/// reaches no view: the state table keeps the example's older row, so neither the
/// joined view nor the trainable copy sees it. `migrate` creates the view again and
/// ends with the catch-up of the state table: a marking and a take-back written
/// meanwhile then show in the state table, the joined view and the trainable copy; a
/// second migrate writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn annotations_written_while_the_annotation_view_is_missing_are_caught_up() {
    let db = TestDb::with_logs("catchup").await;
    insert(
        &db.client,
        &[
            LogRow::simple("cu-1", "casc", "cell", "q1", "r1"),
            LogRow::simple("cu-2", "casc", "cell", "q2", "r2"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let columns =
        "trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by";
    db.exec(&format!(
        "INSERT INTO training_annotations ({columns}) VALUES \
         ('cu-2', true, false, 1.0, '', [], now64(3) - INTERVAL 2 SECOND, 'human')"
    ))
    .await;
    let state = "SELECT trace_id, trainable, annotated_by FROM training_examples_current FINAL \
                 ORDER BY trace_id";
    let joined =
        "SELECT trace_id, trainable, annotated_by FROM training_examples_with_annotations \
                  ORDER BY trace_id";
    let copied = "SELECT trace_id, trainable, annotated_by FROM training_trainable_examples FINAL \
                  ORDER BY trace_id";
    let row = |id: &str, trainable: bool, by: &str| (id.to_string(), trainable, by.to_string());
    let marked = vec![row("cu-1", false, ""), row("cu-2", true, "human")];
    assert_eq!(
        db.rows::<(String, bool, String)>(state).await,
        marked,
        "the annotation view writes a marking into the state table"
    );
    assert_eq!(
        db.rows::<(String, bool, String)>(copied).await,
        vec![row("cu-2", true, "human")],
        "the state table's view copies it"
    );
    db.exec("DROP VIEW training_examples_current_by_applied_annotation_mv SYNC")
        .await;
    db.exec(&format!(
        "INSERT INTO training_annotations ({columns}) VALUES \
         ('cu-1', true, false, 1.0, '', [], now64(3), 'human'), \
         ('cu-2', false, false, NULL, '', [], now64(3), 'reviewer')"
    ))
    .await;
    assert_eq!(
        db.rows::<(String, bool, String)>(state).await,
        marked,
        "no view wrote the marking and the take-back"
    );
    assert_eq!(db.rows::<(String, bool, String)>(joined).await, marked);
    assert_eq!(
        db.rows::<(String, bool, String)>(copied).await,
        vec![row("cu-2", true, "human")]
    );
    let stale = db.rvbbit(&["training", "verify"]);
    stale.expect_code(1);
    let report = rvbbit_tests::unwrapped(&stale.stdout);
    assert!(
        report
            .contains("FAIL materialized view training_examples_current_by_applied_annotation_mv")
            && report.contains("2 traces' copies"),
        "verify sees the missing view and the two annotations the copy lacks:\n{}",
        stale.stdout
    );
    let migrate = db.rvbbit(&["training", "migrate"]);
    migrate.expect_code(0);
    assert!(
        migrate.stdout.contains(
            "created  materialized view training_examples_current_by_applied_annotation_mv"
        ),
        "{}",
        migrate.stdout
    );
    let caught_up = vec![row("cu-1", true, "human"), row("cu-2", false, "reviewer")];
    assert_eq!(
        db.rows::<(String, bool, String)>(state).await,
        caught_up,
        "the state table catches up with the marking and the take-back"
    );
    assert_eq!(
        db.rows::<(String, bool, String)>(joined).await,
        caught_up,
        "the joined view shows them"
    );
    assert_eq!(
        db.rows::<(String, bool, String)>(copied).await,
        caught_up,
        "the trainable copy has the marking and the take-back"
    );
    db.rvbbit(&["training", "verify", "-q"]).expect_code(0);
    // Once caught up, a migrate writes nothing (merged first: only new rows count).
    let tables = ["training_examples_current", "training_trainable_examples"];
    for table in tables {
        db.exec(&format!("OPTIMIZE TABLE {table} FINAL")).await;
    }
    let mut before = Vec::new();
    for table in tables {
        before.push(
            db.scalar::<u64>(&format!("SELECT count() FROM {table}"))
                .await,
        );
    }
    assert_eq!(before, [2, 2], "one row per example and per copy");
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    for (table, rows) in tables.into_iter().zip(before) {
        assert_eq!(
            db.scalar::<u64>(&format!("SELECT count() FROM {table}"))
                .await,
            rows,
            "once caught up, nothing is written to {table}"
        );
    }
    db.drop().await;
}

/// `examples --render` prints exactly the block rvbbit's
/// `inject_training_examples_into_instructions` prepends to a cell's instructions, for
/// the examples its retrieval returns, in each `training_format`; nothing (and a note on
/// stderr) when none qualifies.
#[tokio::test(flavor = "multi_thread")]
async fn examples_render_the_block_rvbbit_prepends_to_the_instructions() {
    let db = TestDb::with_logs("render").await;
    insert(
        &db.client,
        &[
            LogRow::simple("rn-1", "casc", "cell", "what is 2+2?", "4"),
            LogRow::simple(
                "rn-2",
                "casc",
                "cell",
                "capital of <France>?",
                "Paris & more",
            ),
            LogRow::simple("rn-3", "casc", "cell", "not marked", "never shown"),
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
        "rn-1",
        "rn-2",
        "-q",
    ])
    .expect_code(0);
    let cell = [
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "cell",
    ];
    let listed = db.rvbbit(&[&cell[..], &["--format", "json"]].concat());
    listed.expect_code(0);
    let pairs: Vec<(String, String)> = rvbbit_tests::json_data(&listed)
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["user_input"].as_str().unwrap_or_default().to_string(),
                r["assistant_output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    // The three formats as rvbbit's training_system.py writes them.
    let mut xml = String::from("<examples>\n");
    let mut markdown = String::from("## Training Examples\n\n");
    let mut few_shot = String::from("Here are verified examples to guide your response:\n\n");
    for (i, (input, output)) in pairs.iter().enumerate() {
        xml += &format!(
            "<example>\n  <input>{input}</input>\n  <output>{output}</output>\n</example>\n"
        );
        markdown += &format!(
            "**Example {}:**\n- **Input:** {input}\n- **Output:** {output}\n\n",
            i + 1
        );
        few_shot += &format!("Example {}:\nInput: {input}\nOutput: {output}\n\n", i + 1);
    }
    xml += "</examples>\n\n";
    few_shot += "---\n\n";
    for (format, expected) in [("xml", xml), ("markdown", markdown), ("few_shot", few_shot)] {
        let rendered = db.rvbbit(&[&cell[..], &["--render", format]].concat());
        rendered.expect_code(0);
        assert_eq!(rendered.stdout, expected, "--render {format}");
    }
    let none = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "nothing",
        "--render",
        "xml",
    ]);
    none.expect_code(0);
    assert_eq!(none.stdout, "", "rvbbit injects nothing");
    assert!(
        none.stderr.contains("rvbbit injects nothing"),
        "{}",
        none.stderr
    );
    db.rvbbit(&[&cell[..], &["--render", "xml", "--all"]].concat())
        .expect_code(2);
    db.drop().await;
}
