//! `rvbbit training export`: the curated examples as JSONL, against the local engine.
//! Which examples (trainable only by default; verified only; untrainable too; one per
//! input), in a stable order, each line one JSON object with the view's values; written
//! to a file whole or not at all.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::TestDb;
use serde_json::Value;

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["trace_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn export_streams_the_curated_examples_as_jsonl() {
    let db = TestDb::with_logs("export").await;
    insert(
        &db.client,
        &[
            LogRow::simple("ex-1", "casc", "cell", "what is 2+2?", "4"),
            LogRow::simple(
                "ex-2",
                "casc",
                "cell",
                "a \"quoted\"\nquestion",
                "an answer",
            ),
            LogRow::simple("ex-3", "casc", "cell", "scored, not marked", "meh"),
            LogRow::simple("ex-4", "casc", "cell", "what is 2+2?", "four"),
            LogRow::simple("ex-5", "casc", "other", "elsewhere", "there"),
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
        "ex-1",
        "ex-2",
        "ex-5",
        "-q",
    ])
    .expect_code(0);
    db.rvbbit(&["training", "annotate", "--verified", "ex-2", "-q"])
        .expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--not-trainable",
        "--confidence",
        "0.4",
        "ex-3",
        "-q",
    ])
    .expect_code(0);

    // Every trainable example, oldest first, ties by trace id: as the view orders them.
    let expected: Vec<String> = db
        .rows::<String>(
            "SELECT trace_id FROM training_examples_with_annotations WHERE trainable \
             ORDER BY timestamp, trace_id",
        )
        .await;
    let all = db.rvbbit(&["training", "export"]);
    all.expect_code(0);
    let rows = lines(&all.stdout);
    assert_eq!(ids(&rows), expected, "{}", all.stdout);
    assert_eq!(expected.len(), 3);
    assert!(
        all.stderr.contains("exported 3 example(s) to stdout"),
        "{}",
        all.stderr
    );
    let two = rows.iter().find(|r| r["trace_id"] == "ex-2").expect("ex-2");
    assert_eq!(two["user_input"], "a \"quoted\"\nquestion");
    assert_eq!(two["assistant_output"], "an answer");
    assert_eq!(two["cascade_id"], "casc");
    assert_eq!(two["cell_name"], "cell");
    assert_eq!(two["trainable"], true);
    assert_eq!(two["verified"], true);
    assert_eq!(two["confidence"], 0.9);
    for key in ["timestamp", "annotated_at"] {
        let text = two[key].as_str().unwrap_or_default();
        assert!(
            text.len() == 27 && text.as_bytes()[10] == b'T' && text.ends_with('Z'),
            "{key} in RFC 3339, UTC: {text:?}"
        );
    }

    let verified = db.rvbbit(&["training", "export", "--verified-only", "-q"]);
    verified.expect_code(0);
    assert_eq!(ids(&lines(&verified.stdout)), ["ex-2"]);
    assert_eq!(verified.stderr, "", "-q: no summary");

    // An evaluation set of one cell: trainable or not, one per distinct input.
    let cell = ["training", "export", "--cascade", "casc", "--cell", "cell"];
    let untrainable = db.rvbbit(&[&cell[..], &["--include-untrainable"]].concat());
    untrainable.expect_code(0);
    let mut got = ids(&lines(&untrainable.stdout));
    got.sort();
    assert_eq!(got, ["ex-1", "ex-2", "ex-3", "ex-4"]);
    let deduped = db.rvbbit(&[&cell[..], &["--include-untrainable", "--dedupe"]].concat());
    deduped.expect_code(0);
    let deduped = lines(&deduped.stdout);
    assert_eq!(
        deduped.len(),
        3,
        "ex-1 and ex-4 share their input: {deduped:?}"
    );
    assert_eq!(
        deduped
            .iter()
            .filter(|r| r["user_input"] == "what is 2+2?")
            .count(),
        1
    );
    let none = db.rvbbit(&["training", "export", "--since", "2999-01-01"]);
    none.expect_code(0);
    assert_eq!(none.stdout, "");
    assert!(
        none.stderr.contains("exported 0 example(s)"),
        "{}",
        none.stderr
    );

    // To a file: the same bytes, nothing else left beside it; an unwritable path is
    // refused with exit 2 and leaves nothing.
    let dir = std::env::temp_dir().join(format!("rvbbit-export-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("examples.jsonl");
    let written = db.rvbbit(&["training", "export", "-o", file.to_str().unwrap()]);
    written.expect_code(0);
    assert_eq!(written.stdout, "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), all.stdout);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
    let bad = dir.join("missing/examples.jsonl");
    let refused = db.rvbbit(&["training", "export", "-o", bad.to_str().unwrap()]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("cannot write"),
        "{}",
        refused.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
    db.drop().await;
}

/// The checks of OpenAI's chat fine-tuning data preparation guide, line by line: an
/// object with a non-empty `messages` list; each message only `role`, `content`,
/// `name`, `function_call`, `weight`; a known role; text content; an assistant reply,
/// last.
fn fine_tuning_errors(line: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return vec![format!("not JSON: {line}")];
    };
    let Some(messages) = record["messages"].as_array().filter(|m| !m.is_empty()) else {
        return vec![format!("no messages: {line}")];
    };
    for message in messages {
        let Some(fields) = message.as_object() else {
            errors.push(format!("a message that is no object: {message}"));
            continue;
        };
        if fields
            .keys()
            .any(|k| !["role", "content", "name", "function_call", "weight"].contains(&k.as_str()))
        {
            errors.push(format!("unrecognised key: {message}"));
        }
        if !["system", "user", "assistant", "function"]
            .contains(&message["role"].as_str().unwrap_or(""))
        {
            errors.push(format!("unrecognised role: {message}"));
        }
        if !message["content"].is_string() {
            errors.push(format!("content that is no text: {message}"));
        }
    }
    if messages.last().map(|m| m["role"].as_str()) != Some(Some("assistant")) {
        errors.push(format!(
            "the last message is not the assistant's reply: {line}"
        ));
    }
    errors
}

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_openai_fine_tuning_records_and_parquet() {
    use serde_json::json;
    let db = TestDb::with_logs("export_formats").await;
    insert(
        &db.client,
        &[
            // A request as rvbbit logs it: system prompt, a list of parts with an image,
            // a tool call and its result, then the question; the reply a JSON string.
            LogRow::assistant(
                "of-1",
                "casc",
                "cell",
                json!([
                    {"role": "system", "content": "You are the cell step."},
                    {"role": "user", "content": [{"type": "text", "text": "Look at this:"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sql", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "42 rows"},
                    {"role": "user", "content": "so, how many?"}
                ]),
                json!("42, says the tool"),
            ),
            // Structured output: the reply a JSON object.
            LogRow::assistant(
                "of-2",
                "casc",
                "cell",
                json!([{"role": "user", "content": "classify: refund"}]),
                json!({"category": "billing"}),
            ),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&["training", "annotate", "--trainable", "of-1", "of-2", "-q"])
        .expect_code(0);

    let openai = db.rvbbit(&["training", "export", "--format", "openai"]);
    openai.expect_code(0);
    let records: Vec<&str> = openai.stdout.lines().collect();
    assert_eq!(records.len(), 2, "{}", openai.stdout);
    for line in &records {
        let errors = fine_tuning_errors(line);
        assert!(errors.is_empty(), "{errors:?}");
    }
    let first: Value = serde_json::from_str(records[0]).unwrap();
    assert_eq!(
        first,
        json!({"messages": [
            {"role": "system", "content": "You are the cell step."},
            {"role": "user", "content": "Look at this:"},
            {"role": "user", "content": "so, how many?"},
            {"role": "assistant", "content": "42, says the tool"}
        ]})
    );
    let second: Value = serde_json::from_str(records[1]).unwrap();
    assert_eq!(
        second["messages"][1],
        json!({"role": "assistant", "content": "{\"category\": \"billing\"}"})
    );
    assert!(
        openai.stderr.contains("exported 2 example(s)"),
        "{}",
        openai.stderr
    );

    // Parquet: written by the server, read back with a Parquet reader (pyarrow).
    let dir = std::env::temp_dir().join(format!("rvbbit-export-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("examples.parquet");
    let parquet = db.rvbbit(&[
        "training",
        "export",
        "--format",
        "parquet",
        "-o",
        file.to_str().unwrap(),
    ]);
    parquet.expect_code(0);
    assert!(
        parquet.stderr.contains("exported 2 example(s)"),
        "{}",
        parquet.stderr
    );
    let python = rvbbit_tests::repo_root().join(".dev/venv/bin/python");
    let read = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1])\n\
             print(json.dumps({'names': t.column_names, 'rows': t.to_pylist()}, default=str))",
            file.to_str().unwrap(),
        ])
        .output()
        .expect("the local engine's Python runs");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let table: Value = serde_json::from_slice(&read.stdout).unwrap();
    let jsonl = db.rvbbit(&["training", "export"]);
    let flat = lines(&jsonl.stdout);
    let mut names: Vec<&str> = table["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort_unstable();
    let keys: Vec<&str> = flat[0]
        .as_object()
        .expect("a row")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, keys, "the columns of --format jsonl");
    assert_eq!(table["rows"].as_array().map(Vec::len), Some(2));
    for (row, expected) in table["rows"].as_array().unwrap().iter().zip(&flat) {
        for key in [
            "trace_id",
            "user_input",
            "assistant_output",
            "trainable",
            "timestamp",
        ] {
            assert_eq!(row[key], expected[key], "{key}");
        }
    }
    // Not onto a terminal: binary data would garble it.
    let mut command = rvbbit_tests::rvbbit();
    command.args([
        "training",
        "export",
        "--format",
        "parquet",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]);
    let screen = rvbbit_tests::run_in_terminal(&command);
    assert!(
        screen.stdout.contains("not for a terminal: give -o FILE"),
        "{}",
        screen.stdout
    );
    assert_eq!(screen.code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
    db.drop().await;
}

/// Ctrl-C while `export -o FILE` writes: the export stops at once (exit 130, one line
/// naming the file), FILE keeps what it held, and no temporary file is left. (A debug
/// build's failpoint holds the export after its first part, so the signal comes mid-way.)
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_an_export_to_a_file_leaves_the_file_as_it_was() {
    use std::io::Read;
    let db = TestDb::with_logs("export_ctrl_c").await;
    insert(
        &db.client,
        &[
            LogRow::simple("cc-1", "casc", "cell", "first question", "first answer"),
            LogRow::simple("cc-2", "casc", "cell", "second question", "second answer"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&["training", "annotate", "--trainable", "cc-1", "cc-2", "-q"])
        .expect_code(0);
    let dir = std::env::temp_dir().join(format!("rvbbit-export-ctrl-c-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory for the export");
    let target = dir.join("set.jsonl");
    std::fs::write(&target, "old\n").expect("the file exists before");
    let leftovers = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .expect("the directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "set.jsonl")
            .collect()
    };

    let mut child = rvbbit_tests::rvbbit()
        .env("RVBBIT_TRAINING_FAILPOINT", "export-stall")
        .args(["training", "export", "-o"])
        .arg(&target)
        .args(["--url", &db.url, "--database", &db.name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rvbbit starts");
    // The temporary file beside the target holds the first part: the export is mid-way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let written = leftovers()
            .iter()
            .any(|name| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() > 0));
        if written {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file with the first part appeared: {:?}",
            leftovers()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let stopped = std::time::Instant::now();
    let status = child.wait().expect("rvbbit ends");
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(30),
        "the export went on for {:?} after Ctrl-C",
        stopped.elapsed()
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr read");
    assert_eq!(status.code(), Some(130), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [format!(
            "error: interrupted: the export stopped; {} was left as it was",
            target.display()
        )],
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).expect("the file"), "old\n");
    assert_eq!(leftovers(), Vec::<String>::new());

    // On a terminal: the progress bar counts the examples, and Ctrl-C typed there stops
    // the export the same way.
    let mut command = rvbbit_tests::rvbbit();
    command
        .env("RVBBIT_TRAINING_FAILPOINT", "export-stall")
        .args(["training", "export", "-o"])
        .arg(&target)
        .args(["--url", &db.url, "--database", &db.name]);
    let (code, screen) = rvbbit_tests::type_when_shown(&command, 80, "/2", b"\x03");
    let shown = rvbbit_tests::screen_lines(&screen);
    assert_eq!(code, Some(130), "{screen}");
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("  export [") && l.contains("] ") && l.contains("/2")),
        "no progress bar of the 2 examples:\n{screen}"
    );
    // (The message is wrapped to the terminal's width.)
    let said = shown.join(" ");
    assert!(
        said.contains(&format!(
            "error: interrupted: the export stopped; {} was left as it was",
            target.display()
        )),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(&target).expect("the file"), "old\n");
    assert_eq!(leftovers(), Vec::<String>::new());

    // Without the failpoint the same export replaces the file whole.
    let done = db.rvbbit(&["training", "export", "-q", "-o", &target.to_string_lossy()]);
    done.expect_code(0);
    let written = std::fs::read_to_string(&target).expect("the file");
    assert_eq!(ids(&lines(&written)), ["cc-1", "cc-2"], "{written}");
    assert_eq!(leftovers(), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
