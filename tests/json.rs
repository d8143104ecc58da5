//! `--format json`: one document of the same shape for every command (docs/JSON.md),
//! against the real engine: its seven keys in order, the command, the database and
//! the server's version, each command's data, RFC 3339 timestamps, and failures as
//! documents on stdout with the process's exit code and no secret.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::{engine_url, free_port, json_document, run, rvbbit, Run, TestDb};
use serde_json::Value;

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`: RFC 3339's date-time.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.len() == r.len() && s.iter().all(u8::is_ascii_digit))
    };
    if !(b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3]
                .bytes()
                .chain(rest[4..].bytes())
                .all(|c| c.is_ascii_digit()))
}

#[test]
fn the_rfc3339_check_itself() {
    for good in [
        "2026-11-30T23:42:56.318844Z",
        "2026-11-30T23:42:56Z",
        "2026-11-30T23:42:56+01:00",
    ] {
        assert!(is_rfc3339(good), "{good}");
    }
    for bad in [
        "2026-11-30 23:42:56.318844",
        "2026-11-30T23:42:56",
        "2026-11-30T23:42:56.Z",
        "",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
}

/// The document of a command that succeeded on `db`: checks the envelope, returns data.
#[track_caller]
fn succeeded(run: &Run, command: &str, db: &TestDb, version: &str) -> Value {
    run.expect_code(0);
    let document = json_document(run);
    assert_eq!(document["command"], command, "{document:#}");
    assert_eq!(document["ok"], true, "{document:#}");
    assert_eq!(document["database"], db.name.as_str(), "{document:#}");
    assert_eq!(document["server_version"], version, "{document:#}");
    assert_eq!(document["error"], Value::Null, "{document:#}");
    document["data"].clone()
}

/// The document of a command that failed with `code`: not ok, no data, the error
/// object with the process's exit code and stderr's message.
#[track_caller]
fn failed(run: &Run, command: &str, code: i32, kind: &str) -> Value {
    run.expect_code(code);
    let document = json_document(run);
    assert_eq!(document["command"], command, "{document:#}");
    assert_eq!(document["ok"], false, "{document:#}");
    assert_eq!(document["data"], Value::Null, "{document:#}");
    let error = &document["error"];
    assert_eq!(error["exit_code"], code, "{document:#}");
    assert_eq!(error["kind"], kind, "{document:#}");
    let message = error["message"].as_str().expect("a message");
    assert!(!message.contains('\n'), "one line: {message}");
    assert_eq!(
        run.stderr.trim_end(),
        format!("error: {message}"),
        "stderr has the same message"
    );
    document
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_prints_one_document_of_the_same_shape() {
    let db = TestDb::with_logs("json").await;
    let version: String = db.scalar("SELECT version()").await;
    insert(
        &db.client,
        &[
            LogRow::simple("j-1", "triage", "classify", "q1", "r1"),
            LogRow::simple("j-2", "triage", "classify", "q2", "r2"),
        ],
    )
    .await;

    // Before migrate: the plan, and only the plan, on stdout.
    let dry = db.rvbbit(&["training", "migrate", "--dry-run", "--format", "json"]);
    let plan = succeeded(&dry, "training migrate", &db, &version);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["found"], "new");
    assert!(plan["steps"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(
        !dry.stdout.contains("\n--"),
        "no SQL comments:\n{}",
        dry.stdout
    );

    // The second path of migrate names itself.
    let migrate = db.rvbbit(&["sql", "migrate", "training", "--format", "json"]);
    let outcome = succeeded(&migrate, "sql migrate training", &db, &version);
    assert_eq!(outcome["found"], "new");
    assert_eq!(outcome["backfilled_examples"], 2);
    assert_eq!(outcome["verify"]["ok"], true);
    assert!(outcome["actions"].is_array());
    assert!(outcome.get("database").is_none(), "in the envelope only");
    let again = db.rvbbit(&["training", "migrate", "--format", "json"]);
    assert_eq!(
        succeeded(&again, "training migrate", &db, &version)["found"],
        "installed"
    );

    let status_run = db.rvbbit(&["training", "status", "--format", "json"]);
    let status = succeeded(&status_run, "training status", &db, &version);
    // Keys in the order of the struct, not sorted.
    assert_eq!(
        rvbbit_tests::data_keys(&status_run),
        ["up_to_date", "migrations", "lease"]
    );
    assert_eq!(status["up_to_date"], true);
    assert!(
        status.get("server_version").is_none(),
        "in the envelope only"
    );
    let migrations = status["migrations"].as_array().expect("migrations");
    assert!(!migrations.is_empty());
    for m in migrations {
        for key in ["started_at", "finished_at"] {
            let at = m[key].as_str().unwrap_or_default();
            assert!(is_rfc3339(at), "{key} {at:?} in {m:#}");
        }
    }

    let verify = db.rvbbit(&["training", "verify", "--format", "json"]);
    let report = succeeded(&verify, "training verify", &db, &version);
    assert_eq!(report["ok"], true);
    assert!(report["checks"]
        .as_array()
        .is_some_and(|c| c.iter().all(|c| c["ok"] == true && c["name"].is_string())));

    let test = db.rvbbit(&["training", "test-annotation", "--format", "json"]);
    let test = succeeded(&test, "training test-annotation", &db, &version);
    assert_eq!(test["passed"], true);
    assert!(test["steps"].as_array().is_some_and(|s| !s.is_empty()));

    let annotate = db.rvbbit(&[
        "training",
        "annotate",
        "j-1",
        "nope",
        "--verified",
        "--confidence",
        "0.9",
        "--format",
        "json",
    ]);
    // An id rvbbit never logged is refused (exit 6) after the others were written:
    // the data says which.
    annotate.expect_code(6);
    let document = json_document(&annotate);
    assert_eq!(document["command"], "training annotate");
    assert_eq!(document["ok"], false);
    assert_eq!(document["database"], db.name.as_str());
    assert_eq!(document["server_version"], version.as_str());
    assert_eq!(document["error"]["kind"], "missing_prerequisite");
    let data = &document["data"];
    assert_eq!(
        rvbbit_tests::data_keys(&annotate),
        ["annotated", "not_found"],
        "the struct's order"
    );
    assert_eq!(data["annotated"][0]["trace_id"], "j-1");
    assert_eq!(data["not_found"], serde_json::json!(["nope"]));

    let stats = db.rvbbit(&["training", "stats", "--format", "json"]);
    let stats = succeeded(&stats, "training stats", &db, &version);
    assert_eq!(
        stats,
        serde_json::json!([{"cascade_id": "triage", "cell_name": "classify", "trainable_count": 1,
            "verified_count": 1, "avg_confidence": 0.9, "total_executions": 2}])
    );

    let examples = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "triage",
        "--cell",
        "classify",
        "--format",
        "json",
    ]);
    let examples = succeeded(&examples, "training examples", &db, &version);
    let rows = examples.as_array().expect("a list");
    assert_eq!(rows.len(), 1, "{examples:#}");
    assert_eq!(rows[0]["trace_id"], "j-1");
    let at = rows[0]["timestamp"].as_str().unwrap_or_default();
    assert!(is_rfc3339(at), "{at:?}");
    let all = db.rvbbit(&[
        "training",
        "examples",
        "--cascade",
        "triage",
        "--cell",
        "classify",
        "--all",
        "--format",
        "json",
    ]);
    let all = succeeded(&all, "training examples", &db, &version);
    let rows = all.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{all:#}");
    assert!(rows
        .iter()
        .all(|r| is_rfc3339(r["timestamp"].as_str().unwrap_or_default())));

    // The same instant as the server holds it, in UTC.
    let utc: String = db
        .scalar("SELECT toString(timestamp, 'UTC') FROM unified_logs WHERE trace_id = 'j-1' AND role = 'assistant'")
        .await;
    assert_eq!(at, format!("{}Z", utc.replacen(' ', "T", 1)));
    db.drop().await;
}

#[test]
fn the_hosts_plugins_listing_has_the_same_shape_without_a_server() {
    let listing = run(rvbbit().args(["plugins", "--format", "json"]));
    listing.expect_code(0);
    let document = json_document(&listing);
    assert_eq!(document["command"], "plugins");
    assert_eq!(document["ok"], true);
    assert_eq!(document["database"], Value::Null);
    assert_eq!(document["server_version"], Value::Null);
    assert_eq!(document["error"], Value::Null);
    assert_eq!(rvbbit_tests::data_keys(&listing), ["plugins", "not_loaded"]);
    // Each plugin's keys in the order of the struct, not sorted.
    let first = listing.stdout.find("\"name\"").expect("a plugin");
    assert!(listing.stdout[first..].find("\"version\"") < listing.stdout[first..].find("\"file\""));
    assert!(
        listing.stdout[first..].find("\"name\"") < listing.stdout[first..].find("\"abi_version\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_documents_too_with_the_exit_code_and_no_secret() {
    let url = engine_url();
    let db = TestDb::with_logs("jsonfail").await;
    let version: String = db.scalar("SELECT version()").await;

    // A database name that is not an identifier: refused before anything is sent.
    let usage = run(rvbbit().args([
        "training",
        "verify",
        "--format",
        "json",
        "--url",
        &url,
        "--database",
        "no such",
    ]));
    let document = failed(&usage, "training verify", 2, "usage");
    assert_eq!(document["database"], Value::Null);
    assert_eq!(document["server_version"], Value::Null);

    // A database that does not exist: the server answered.
    let missing = run(rvbbit().args([
        "training",
        "stats",
        "--format",
        "json",
        "--url",
        &url,
        "--database",
        "rvbbit_json_nowhere",
    ]));
    let document = failed(&missing, "training stats", 6, "missing_prerequisite");
    assert_eq!(document["database"], "rvbbit_json_nowhere");
    assert_eq!(document["server_version"], version.as_str());

    // Nobody listens: no server reached; the password in the URL is masked.
    let secret = "s3cr3t-json-pw";
    let closed = format!("http://default:{secret}@127.0.0.1:{}", free_port());
    let unreachable = run(rvbbit().args([
        "training",
        "status",
        "--format",
        "json",
        "--timeout",
        "5",
        "--url",
        &closed,
    ]));
    let document = failed(&unreachable, "training status", 3, "connection");
    assert_eq!(document["database"], Value::Null);
    assert_eq!(document["server_version"], Value::Null);
    assert!(!unreachable.all().contains(secret), "{}", unreachable.all());
    // …and given with --password.
    let unreachable = run(rvbbit().args([
        "training",
        "examples",
        "--cascade",
        "c",
        "--cell",
        "x",
        "--format",
        "json",
        "--timeout",
        "5",
        "--url",
        &format!("http://127.0.0.1:{}", free_port()),
        "--password",
        secret,
        "-q",
    ]));
    failed(&unreachable, "training examples", 3, "connection");
    assert!(
        !unreachable.stdout.contains(secret),
        "{}",
        unreachable.stdout
    );

    // A check that fails (nothing installed yet): the report is the data, and the
    // error says so.
    let verify = db.rvbbit(&["training", "verify", "--format", "json"]);
    verify.expect_code(1);
    let document = json_document(&verify);
    assert_eq!(document["ok"], false);
    assert_eq!(document["database"], db.name.as_str());
    assert_eq!(document["server_version"], version.as_str());
    assert_eq!(document["data"]["ok"], false);
    assert_eq!(document["error"]["kind"], "check_failed");
    assert_eq!(document["error"]["exit_code"], 1);
    db.drop().await;
}
