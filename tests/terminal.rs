//! The operator's terminal: annotate and stats, JSON for scripts, tables, color and
//! progress only on a terminal, -q and -v, Ctrl-C, and help text snapshots.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::{
    assert_snapshot, run, run_in_terminal, run_in_terminal_of, rvbbit, screen_lines,
    type_when_shown, TestDb,
};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

async fn migrated_with_examples(label: &str) -> TestDb {
    let db = TestDb::with_logs(label).await;
    insert(
        &db.client,
        &[
            LogRow::simple("t-1", "triage", "classify", "q1", "r1"),
            LogRow::simple("t-2", "triage", "classify", "q2", "r2"),
            LogRow::simple("t-3", "triage", "reply", "q3", "r3"),
            LogRow::simple("t-4", "analyst", "plan", "q4", "r4"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db
}

use rvbbit_tests::logs::Annotated as Latest;

async fn latest(db: &TestDb) -> Vec<Latest> {
    db.rows(
        "SELECT trace_id, trainable, verified, confidence, notes, tags, annotated_by FROM training_examples_with_annotations \
         WHERE annotated_at IS NOT NULL ORDER BY trace_id",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn annotate_writes_like_studio_merges_flags_and_reports_unknown_ids() {
    let db = migrated_with_examples("annotate").await;
    let run1 = db.rvbbit(&[
        "training",
        "annotate",
        "t-1",
        "t-2",
        "--confidence",
        "0.9",
        "--tags",
        "good,billing",
        "--notes",
        "it's \"fine\"\nreally",
        "--by",
        "ana",
    ]);
    run1.expect_code(0);
    assert!(
        run1.stdout.contains("annotated 2 trace(s)"),
        "{}",
        run1.stdout
    );
    // One INSERT for both ids: they share one annotated_at.
    let stamps: u64 = db
        .scalar("SELECT uniqExact(annotated_at) FROM training_annotations")
        .await;
    assert_eq!(stamps, 1);
    // Later: verify t-1 only; the other values stay.
    db.rvbbit(&["training", "annotate", "t-1", "--verified", "--by", "bo"])
        .expect_code(0);
    let rows = latest(&db).await;
    let tags = vec!["good".to_string(), "billing".to_string()];
    assert_eq!(
        rows,
        vec![
            Latest {
                trace_id: "t-1".into(),
                trainable: true,
                verified: true,
                confidence: Some(0.9),
                notes: "it's \"fine\"\nreally".into(),
                tags: tags.clone(),
                annotated_by: "bo".into()
            },
            Latest {
                trace_id: "t-2".into(),
                trainable: true,
                verified: false,
                confidence: Some(0.9),
                notes: "it's \"fine\"\nreally".into(),
                tags,
                annotated_by: "ana".into()
            },
        ]
    );
    // Unknown ids are named and nothing is written for them; known ones still are.
    let before: u64 = db.scalar("SELECT count() FROM training_annotations").await;
    let mixed = db.rvbbit(&[
        "training",
        "annotate",
        "t-3",
        "ghost-1",
        "ghost-2",
        "--not-trainable",
    ]);
    mixed.expect_code(6);
    assert!(
        mixed
            .stderr
            .contains("nothing written for: ghost-1, ghost-2")
            && mixed.stderr.contains("--force"),
        "{}",
        mixed.stderr
    );
    let after: Vec<(String, bool)> = db.rows(&format!("SELECT trace_id, trainable FROM training_annotations ORDER BY annotated_at DESC LIMIT {}", 1)).await;
    assert_eq!(after, vec![("t-3".to_string(), false)]);
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations")
            .await,
        before + 1
    );
    // Confidence back to "not assessed", tags emptied; the rest is kept.
    db.rvbbit(&[
        "training",
        "annotate",
        "t-2",
        "--clear-confidence",
        "--tags",
        "",
        "-q",
    ])
    .expect_code(0);
    let t2: Vec<(Option<f32>, u64, String)> =
        db.rows("SELECT confidence, length(tags), notes FROM training_examples_with_annotations WHERE trace_id = 't-2'").await;
    assert_eq!(t2, vec![(None, 0, "it's \"fine\"\nreally".to_string())]);
    // --force writes them anyway.
    db.rvbbit(&["training", "annotate", "ghost-1", "--force", "-q"])
        .expect_code(0);
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations WHERE trace_id = 'ghost-1'")
            .await,
        1
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn annotate_reads_ids_from_stdin_and_refuses_bad_confidence() {
    let db = migrated_with_examples("annotate_stdin").await;
    let out = db.rvbbit_with_stdin(
        &["training", "annotate", "-", "--format", "json"],
        b"t-3

t-4
t-3
",
    );
    out.expect_code(0);
    let json = rvbbit_tests::json_data(&out);
    let ids: Vec<&str> = json["annotated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t-3", "t-4"]);
    assert_eq!(json["not_found"], serde_json::json!([]));
    for bad in ["NaN", "-1", "2", "x"] {
        let refused = db.rvbbit(&["training", "annotate", "t-1", "--confidence", bad]);
        refused.expect_code(2);
        assert!(
            refused.stderr.contains("--confidence"),
            "{bad}: {}",
            refused.stderr
        );
    }
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations WHERE trace_id = 't-1'")
            .await,
        0
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_as_table_and_json() {
    let db = migrated_with_examples("stats").await;
    db.rvbbit(&[
        "training",
        "annotate",
        "t-1",
        "t-3",
        "--confidence",
        "0.5",
        "-q",
    ])
    .expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "t-1",
        "--verified",
        "--confidence",
        "1",
        "-q",
    ])
    .expect_code(0);
    let table = db.rvbbit(&["training", "stats"]);
    table.expect_code(0);
    assert_snapshot("stats_table", &table.stdout);
    assert!(
        table.stdout.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{}",
        table.stdout
    );
    assert!(!table.stdout.contains('\x1b'), "no color when piped");
    let json = db.rvbbit(&[
        "training",
        "stats",
        "--cascade",
        "triage",
        "--format",
        "json",
    ]);
    json.expect_code(0);
    let rows = rvbbit_tests::json_data(&json);
    assert_eq!(
        rows,
        serde_json::json!([
            {"cascade_id": "triage", "cell_name": "classify", "trainable_count": 1, "verified_count": 1, "avg_confidence": 1.0, "total_executions": 2},
            {"cascade_id": "triage", "cell_name": "reply", "trainable_count": 1, "verified_count": 0, "avg_confidence": 0.5, "total_executions": 1}
        ])
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_prints_nothing_and_verbose_shows_sql_without_secrets() {
    let db = migrated_with_examples("verbosity").await;
    let quiet = db.rvbbit(&["training", "verify", "-q"]);
    quiet.expect_code(0);
    assert_eq!(quiet.all(), "", "-q prints only errors");
    let verbose = db.rvbbit(&["training", "stats", "-v"]);
    verbose.expect_code(0);
    assert!(
        verbose.stderr.contains("-- SELECT cascade_id, cell_name"),
        "{}",
        verbose.stderr
    );
    assert!(
        !verbose.stdout.contains("-- SELECT"),
        "SQL goes to stderr, data to stdout"
    );
    // With a password (the old server has one): -v never shows it.
    let (old_url, password) = rvbbit_tests::old_server();
    let url = old_url.replacen("http://", &format!("http://default:{password}@"), 1);
    let traced = rvbbit_tests::run(rvbbit().args(["training", "migrate", "-v", "--url", &url]));
    traced.expect_code(5);
    assert!(!traced.all().contains(&password), "{}", traced.all());
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn color_and_progress_only_on_a_terminal() {
    let db = TestDb::with_logs("tty").await;
    insert(&db.client, &[LogRow::simple("t-1", "c", "x", "q", "r")]).await;
    let mut command = rvbbit();
    command.args([
        "training",
        "migrate",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]);
    let tty = run_in_terminal(&command);
    tty.expect_code(0);
    assert!(
        tty.stdout.contains("\x1b[32mcreated\x1b[0m"),
        "color on a terminal:\n{}",
        tty.stdout
    );
    assert!(
        tty.stdout.contains("backfill [") && tty.stdout.contains("done"),
        "a progress bar on a terminal:\n{}",
        tty.stdout
    );
    assert!(
        !tty.stdout.contains("log rows scanned"),
        "no plain progress lines on a terminal:\n{}",
        tty.stdout
    );

    let piped = db.rvbbit(&["training", "migrate"]);
    piped.expect_code(0);
    assert!(
        !piped.all().contains('\x1b'),
        "no escape codes when piped:\n{}",
        piped.all()
    );
    assert!(
        piped.stderr.contains("log rows scanned (1/1)"),
        "plain progress lines when piped:\n{}",
        piped.stderr
    );

    command.env("NO_COLOR", "1");
    let no_color = run_in_terminal(&command);
    no_color.expect_code(0);
    assert!(
        !no_color.stdout.contains("\x1b[32m"),
        "NO_COLOR is honoured:\n{}",
        no_color.stdout
    );
    let never = run_in_terminal(rvbbit().args([
        "training",
        "verify",
        "--color",
        "never",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]));
    never.expect_code(0);
    assert!(
        never.stdout.contains("verify: all"),
        "the report, uncoloured:\n{}",
        never.stdout
    );
    assert!(!never.stdout.contains("\x1b[32m"), "{}", never.stdout);
    let always = db.rvbbit(&["training", "verify", "--color", "always"]);
    always.expect_code(0);
    assert!(always.stdout.contains("\x1b[32mok"), "{}", always.stdout);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_backfill_stops_cleanly_and_a_rerun_resumes() {
    let db = TestDb::with_logs("ctrlc").await;
    db.exec(&rvbbit_tests::logs::history_sql(44000)).await;
    let mut child = rvbbit()
        .args([
            "training",
            "migrate",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("log rows scanned (1/") {}
    assert!(
        line.contains("log rows scanned (1/"),
        "the backfill started: {line}"
    );
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("interrupted: the schema is in place and"),
        "{rest}"
    );
    assert!(
        rest.contains("run `rvbbit training migrate` again to resume"),
        "{rest}"
    );
    assert_eq!(
        rest.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one message:\n{rest}"
    );

    let resumed = db.rvbbit(&["training", "migrate"]);
    resumed.expect_code(0);
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_examples_current FINAL")
            .await,
        44000
    );
    assert_eq!(
        db.scalar::<u64>("SELECT uniqExact(trace_id) FROM training_examples_current")
            .await,
        44000
    );
    db.drop().await;
}

#[test]
fn help_texts_match_their_snapshots() {
    let group = run(rvbbit().args(["training", "--help"]).env("COLUMNS", "100"));
    group.expect_code(0);
    assert_snapshot("training_help", &group.stdout);
    let annotate = run(rvbbit()
        .args(["training", "annotate", "--help"])
        .env("COLUMNS", "100"));
    annotate.expect_code(0);
    assert_snapshot("training_annotate_help", &annotate.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_and_test_annotation_speak_json() {
    let db = TestDb::with_logs("json").await;
    insert(&db.client, &[LogRow::simple("j-1", "c", "x", "q", "r")]).await;
    let first = db.rvbbit(&["training", "migrate", "--format", "json"]);
    first.expect_code(0);
    let report = rvbbit_tests::json_data(&first);
    assert_eq!(report["backfilled_examples"], 1);
    assert_eq!(report["verify"]["ok"], true);
    let created: Vec<&str> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "created")
        .map(|a| a["object"].as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 13, "{created:?}");
    assert!(
        !created
            .iter()
            .any(|o| o.contains("training_annotated_examples")),
        "a new database does not build version 2's copy only to drop it: {created:?}"
    );
    assert!(created.contains(&"materialized view training_examples_current_by_log_mv"));
    // A second migrate finds everything installed and does nothing.
    let second = db.rvbbit(&["training", "migrate", "--format", "json"]);
    second.expect_code(0);
    let again = rvbbit_tests::json_data(&second);
    assert_eq!(again["found"], "installed", "{again}");
    assert_eq!(again["findings"], serde_json::json!([]), "{again}");
    assert_eq!(again["actions"], serde_json::json!([]), "{again}");
    assert_eq!(again["backfilled_examples"], 0, "{again}");
    assert_eq!(again["verify"]["ok"], true, "{again}");

    let test = db.rvbbit(&["training", "test-annotation", "--format", "json"]);
    test.expect_code(0);
    let outcome = rvbbit_tests::json_data(&test);
    assert_eq!(outcome["passed"], true);
    assert_eq!(outcome["kept"], false);
    let steps = outcome["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|s| s["ok"] == true), "{outcome}");
    assert!(outcome["trace_id"]
        .as_str()
        .unwrap()
        .starts_with("rvbbit-test-"));
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations")
            .await,
        0
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_returns_what_rvbbit_retrieval_returns() {
    let db = TestDb::with_logs("examples").await;
    // Six replies in one cell, one minute apart (e-1 oldest), plus one in another cell.
    db.exec(
        "INSERT INTO unified_logs (session_id, trace_id, node_type, role, cascade_id, cell_name, full_request_json, content_json, timestamp) \
         SELECT 's', concat('e-', toString(number)), 'agent', 'assistant', 'casc', if(number = 7, 'other', 'cell'), \
                concat('{\"messages\": [{\"role\": \"user\", \"content\": \"question ', toString(number), '\"}]}'), \
                concat('\"answer ', toString(number), '\"'), now64(6) - toIntervalMinute(100 - number) \
         FROM numbers(1, 7)",
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let annotate = |args: &[&str]| {
        let mut all = vec!["training", "annotate"];
        all.extend_from_slice(args);
        all.push("-q");
        db.rvbbit(&all).expect_code(0);
    };
    annotate(&["e-1", "--confidence", "0.9"]);
    annotate(&["e-2", "--confidence", "0.7"]); // below the minimum
    annotate(&["e-3"]); // trainable, confidence not assessed: never qualifies
    annotate(&["e-4", "--confidence", "0.95", "--verified"]);
    annotate(&["e-5", "--confidence", "0.99", "--not-trainable"]);
    annotate(&["e-6", "--confidence", "0.85"]);
    annotate(&["e-7", "--confidence", "1"]); // other cell
    annotate(&["e-6", "--confidence", "0.8"]); // re-annotated: the latest counts
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec![
            "training",
            "examples",
            "--cascade",
            "casc",
            "--cell",
            "cell",
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        let run = db.rvbbit(&all);
        run.expect_code(0);
        let rows = rvbbit_tests::json_data(&run);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["trace_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), vec!["e-6", "e-4", "e-1"], "recent: newest first");
    assert_eq!(
        ids(&["--strategy", "high-confidence"]),
        vec!["e-4", "e-1", "e-6"]
    );
    assert_eq!(ids(&["--limit", "2"]), vec!["e-6", "e-4"]);
    assert_eq!(ids(&["--verified-only"]), vec!["e-4"]);
    assert_eq!(
        ids(&["--min-confidence", "0.5"]),
        vec!["e-6", "e-4", "e-2", "e-1"]
    );
    let mut random = ids(&["--strategy", "random"]);
    random.sort();
    assert_eq!(random, vec!["e-1", "e-4", "e-6"]);
    let run = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "casc",
        "--cell",
        "cell",
        "--format",
        "json",
        "--limit",
        "1",
    ]);
    let first = rvbbit_tests::json_data(&run);
    assert_eq!(first[0]["user_input"], "question 6");
    assert_eq!(first[0]["assistant_output"], "answer 6");
    assert!((first[0]["confidence"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    db.drop().await;
}

/// Every line a person sees fits `columns`: tables, checklists, the progress line.
/// The terminal's own echo of Ctrl-C (`^C`) is not the program's, and an error
/// message is free text the terminal wraps (it is one line for a log).
fn assert_fits(output: &str, columns: usize, what: &str) {
    let wide: Vec<String> = screen_lines(output)
        .into_iter()
        .map(|l| l.replace("^C", "").trim_end().to_string())
        .filter(|l| !l.starts_with("error: "))
        .filter(|l| l.chars().count() > columns)
        .collect();
    assert!(
        wide.is_empty(),
        "{what}: lines wider than {columns} columns: {wide:#?}\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_fit_an_80_column_terminal_names_whole() {
    let db = migrated_with_examples("fit80").await;
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--confidence",
        "0.875",
        "--by",
        "a-rather-long-annotator-name",
        "t-1",
        "t-3",
    ])
    .expect_code(0);
    let on_80 = |args: &[&str]| {
        let mut command = rvbbit();
        command.args(args).args([
            "--url",
            &db.url,
            "--database",
            &db.name,
            "--color",
            "always",
        ]);
        let run = run_in_terminal_of(&command, 80);
        run.expect_code(0);
        run.stdout
    };
    for args in [
        &["training", "verify"][..],
        &["training", "status"],
        &["training", "stats"],
        &[
            "training",
            "examples",
            "--cascade",
            "triage",
            "--cell",
            "classify",
            "--all",
        ],
        &["training", "annotate", "--verified", "t-1", "t-3"],
    ] {
        assert_fits(&on_80(args), 80, &args.join(" "));
    }
    // status: colored states do not shift the columns, and no name is broken.
    let status = screen_lines(&on_80(&["training", "status"]));
    let header = status
        .iter()
        .find(|l| l.contains("MIGRATION"))
        .expect("header");
    let steps = header.find("STEPS").expect("STEPS column");
    for name in [
        "0001_universal_training_system",
        "0002_annotated_examples",
        "0003_trainable_examples",
        "0004_cheap_worker_inserts",
        "0005_studio_state_table",
    ] {
        let row = status
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} whole on one line: {status:#?}"));
        assert_eq!(
            row.find("8/8")
                .or_else(|| row.find("7/7"))
                .or_else(|| row.find("5/5"))
                .or_else(|| row.find("17/17")),
            Some(steps),
            "{status:#?}"
        );
    }
    // verify: every check's name whole on the line of its mark.
    let verify = screen_lines(&on_80(&["training", "verify"]));
    assert!(
        verify.iter().any(|l| l.trim_end()
            == "  ok   materialized view training_examples_current_by_applied_annotation_mv"),
        "{verify:#?}"
    );
    // annotate: trace ids whole, the confidence as set, the notes give way.
    let note = "a long note that has to give way to the columns before it ".repeat(3);
    let annotate = screen_lines(&on_80(&["training", "annotate", "--notes", &note, "t-1"]));
    assert!(
        annotate
            .iter()
            .any(|l| l.starts_with(" t-1 ") && l.contains(" 0.875 ")),
        "{annotate:#?}"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_progress_line_fits_80_columns_and_ctrl_c_ends_it_on_a_line_of_its_own() {
    let db = TestDb::with_logs("bar80").await;
    db.exec(&rvbbit_tests::logs::history_sql(200_000)).await;
    let mut command = rvbbit();
    command.args([
        "training",
        "migrate",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]);
    // Once the bar has drawn a rate, Ctrl-C typed on the terminal.
    let (code, screen) = type_when_shown(&command, 80, "/s  ETA", b"\x03");
    assert_eq!(code, Some(130), "{screen}");
    assert_fits(&screen, 80, "migrate's progress");
    let lines = screen_lines(&screen);
    let bar = lines
        .iter()
        .find(|l| l.contains("backfill [") && l.contains("/s"))
        .expect("a bar with a rate");
    let rate = bar
        .split_whitespace()
        .find(|w| w.ends_with("/s"))
        .expect("rate");
    assert!(
        rate.trim_end_matches("/s")
            .chars()
            .all(|c| c.is_ascii_digit() || c == ','),
        "a whole number of rows a second: {bar}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("error: interrupted")),
        "the error starts a line of its own:\n{screen}"
    );
    db.drop().await;
}

/// The names of this version's migrations, `NNNN_name`.
const MIGRATION_NAMES: [&str; 3] = [
    "0001_universal_training_system",
    "0002_annotated_examples",
    "0003_trainable_examples",
];

/// `status` under a terminal `columns` wide: every line fits, and each migration's
/// name is on a row of its own, whole or cut with `…` (never broken onto two lines).
fn status_fits(db: &TestDb, columns: u16) -> Vec<String> {
    let mut command = rvbbit();
    command.args([
        "training",
        "status",
        "--url",
        &db.url,
        "--database",
        &db.name,
        "--color",
        "always",
    ]);
    let run = run_in_terminal_of(&command, columns);
    run.expect_code(0);
    assert_fits_all(&run.stdout, usize::from(columns), "status");
    let lines = screen_lines(&run.stdout);
    for name in MIGRATION_NAMES {
        let prefix = &name[..5];
        let shown = lines
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .find(|w| w.starts_with(prefix) && !w.ends_with(':'))
            .unwrap_or_else(|| panic!("a row for {name}: {lines:#?}"));
        assert!(
            shown == name
                || shown
                    .strip_suffix('…')
                    .is_some_and(|cut| cut.len() >= prefix.len() && name.starts_with(cut)),
            "{name} shown as {shown}: {lines:#?}"
        );
    }
    lines
}

/// Every line fits `columns`, error messages included (they are wrapped to the
/// terminal too); the terminal's echo of Ctrl-C is not the program's.
fn assert_fits_all(output: &str, columns: usize, what: &str) {
    let wide: Vec<String> = screen_lines(output)
        .into_iter()
        .map(|l| l.replace("^C", "").trim_end().to_string())
        .filter(|l| l.chars().count() > columns)
        .collect();
    assert!(
        wide.is_empty(),
        "{what}: lines wider than {columns} columns: {wide:#?}\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_fits_a_60_column_terminal_with_its_notes() {
    let db = TestDb::with_logs("status60").await;
    insert(&db.client, &[LogRow::simple("s-1", "c", "x", "q", "r")]).await;
    // A migrate killed after its third step: an unfinished run and its note.
    let killed = run(rvbbit()
        .args([
            "training",
            "migrate",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .env("RVBBIT_TRAINING_FAILPOINT", "exit-after-step:3"));
    killed.expect_code(137);
    let lines = status_fits(&db, 60);
    let text = lines.join(" ");
    assert!(
        text.contains("0001_universal_training_system:") && text.contains("at step 3 of"),
        "the note names the migration whole: {lines:#?}"
    );
    // Applied, then a checksum that no longer matches: the widest state and its note.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.exec(
        "INSERT INTO _rvbbit_plugin_migrations (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note) \
         SELECT plugin, version, name, 'abcabcabcabcabcabc', statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note FROM _rvbbit_plugin_migrations FINAL \
         WHERE plugin = 'training' AND version = 1",
    )
    .await;
    let lines = status_fits(&db, 60);
    let text = lines.join(" ");
    assert!(
        text.contains("checksum") && text.contains("mismatch") && text.contains("abcabcabcabc"),
        "{lines:#?}"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_verify_stats_and_examples_fit_a_60_column_terminal() {
    let db = TestDb::with_logs("fit60").await;
    let cascade = "a_rather_long_cascade_name_for_testing";
    let cell = "a_cell_with_a_long_name";
    let long = "a question long enough that it would run past the edge of any narrow terminal";
    insert(
        &db.client,
        &[
            LogRow::simple(
                "a-very-long-trace-identifier-0001",
                cascade,
                cell,
                long,
                long,
            ),
            LogRow::simple(
                "a-very-long-trace-identifier-0002",
                cascade,
                cell,
                long,
                long,
            ),
        ],
    )
    .await;
    db.exec(&rvbbit_tests::logs::history_sql(2000)).await;
    let on_60 = |args: &[&str]| {
        let mut command = rvbbit();
        command.args(args).args([
            "--url",
            &db.url,
            "--database",
            &db.name,
            "--color",
            "always",
        ]);
        let run = run_in_terminal_of(&command, 60);
        run.expect_code(0);
        assert_fits_all(&run.stdout, 60, &args.join(" "));
        screen_lines(&run.stdout)
    };
    // migrate: its actions, the progress bar and the checks.
    let migrate = on_60(&["training", "migrate"]);
    assert!(
        migrate.iter().any(|l| l.contains("backfill [")),
        "{migrate:#?}"
    );
    // An object's name longer than the line's room goes below its kind, whole.
    let name = "training_examples_current_by_applied_annotation_mv";
    assert!(
        migrate.iter().any(|l| l.trim() == name),
        "{name} whole on a line: {migrate:#?}"
    );
    db.rvbbit(&[
        "training",
        "annotate",
        "--confidence",
        "0.875",
        "--by",
        "a-rather-long-annotator-name",
        "a-very-long-trace-identifier-0001",
        "-q",
    ])
    .expect_code(0);
    let verify = on_60(&["training", "verify"]);
    assert!(
        verify
            .iter()
            .any(|l| l.trim_end() == "  ok   materialized view")
            && verify.iter().any(|l| l.trim() == name),
        "{verify:#?}"
    );
    let stats = on_60(&["training", "stats"]);
    let row = stats
        .iter()
        .find(|l| l.trim_start().starts_with("a_ra"))
        .unwrap_or_else(|| panic!("a row for the cascade: {stats:#?}"));
    let first = row.split_whitespace().next().unwrap_or_default();
    assert!(
        first == cascade
            || first
                .strip_suffix('…')
                .is_some_and(|c| cascade.starts_with(c)),
        "the cascade whole or cut with …: {stats:#?}"
    );
    let all = on_60(&[
        "training",
        "examples",
        "--cascade",
        cascade,
        "--cell",
        cell,
        "--all",
    ]);
    let id = "a-very-long-trace-identifier-0001";
    assert!(
        all.iter().any(|l| l.split_whitespace().next() == Some(id)),
        "the trace id whole: {all:#?}"
    );
    let examples = on_60(&["training", "examples", "--cascade", cascade, "--cell", cell]);
    assert!(
        examples.iter().any(|l| l.trim_end() == id),
        "the trace id whole on its line, what follows it below: {examples:#?}"
    );
    assert!(
        examples
            .iter()
            .any(|l| l.starts_with("  user:      a question") && l.ends_with('…')),
        "free text clipped with …: {examples:#?}"
    );
    db.drop().await;
}

#[test]
fn an_error_is_wrapped_to_a_60_column_terminal_and_one_line_when_piped() {
    // Nothing listens on port 1: a long message that does not depend on the engine.
    let args = [
        "training",
        "status",
        "--url",
        "http://127.0.0.1:1",
        "--database",
        "somewhere",
    ];
    let piped = run(rvbbit().args(args));
    piped.expect_code(3);
    let message: Vec<&str> = piped.stderr.lines().collect();
    assert_eq!(message.len(), 1, "one line for a log: {}", piped.stderr);
    assert!(message[0].starts_with("error: "), "{}", piped.stderr);
    assert!(message[0].chars().count() > 60, "long enough to wrap");

    let mut command = rvbbit();
    command.args(args);
    let tty = run_in_terminal_of(&command, 60);
    tty.expect_code(3);
    assert_fits_all(&tty.stdout, 60, "the error");
    let lines: Vec<String> = screen_lines(&tty.stdout)
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() > 1, "wrapped: {lines:#?}");
    assert!(lines[0].starts_with("error: "), "{lines:#?}");
    assert_eq!(lines.join(" "), message[0], "the same words");
}

/// `rvbbit plugins` on a terminal of 60 columns: each line fits, command paths whole,
/// descriptions wrapped below themselves; piped, each entry keeps its one line.
#[test]
fn the_plugin_listing_fits_a_60_column_terminal() {
    let mut command = rvbbit();
    command.arg("plugins");
    let tty = run_in_terminal_of(&command, 60);
    tty.expect_code(0);
    assert_fits_all(&tty.stdout, 60, "plugins");
    let lines = screen_lines(&tty.stdout);
    for path in [
        "training migrate",
        "training test-annotation",
        "sql migrate training",
    ] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(path)),
            "{path} whole at the start of a line: {lines:#?}"
        );
    }
    let piped = run(rvbbit().arg("plugins"));
    piped.expect_code(0);
    assert!(
        piped
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("training migrate")
                && l.trim_end().ends_with(
                    "Create or complete the training tables and views, and backfill examples"
                )),
        "piped, a command and its description on one line:\n{}",
        piped.stdout
    );
}
