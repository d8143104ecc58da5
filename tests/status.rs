//! `rvbbit training status` and the checksums of the ledger: pending then applied
//! migrations with their files' checksums, and a changed checksum refused by migrate,
//! named by `verify` and `status`, then recorded by `--repair`.

use rvbbit_tests::ledger_fixture::{
    assert_converged, migration_steps, raw_rows, schema, seeded, status, LEDGER,
};
use rvbbit_tests::{hostname, repo_root, rvbbit, TestDb};
use serde_json::Value;

// ---------------------------------------------------------------------------------
// status.

/// `(version, name, sha256)` of each `migrations/NNNN_name.sql`, from `sha256sum`.
fn migration_files() -> Vec<(u64, String, String)> {
    let dir = repo_root().join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let out = std::process::Command::new("sha256sum")
                .arg(path)
                .output()
                .expect("sha256sum");
            let sum = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (version, name) = stem.split_once('_').unwrap();
            (version.parse().unwrap(), name.to_string(), sum)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_pending_then_applied_migrations_with_their_checksums() {
    let db = TestDb::with_logs("status").await;
    let files = migration_files();
    assert_eq!(files.len(), 7, "{files:?}");

    let document = rvbbit_tests::ledger_fixture::status_document(&db);
    assert_eq!(document["database"], db.name);
    assert_eq!(document["command"], "training status");
    let fresh = document["data"].clone();
    assert_eq!(fresh["up_to_date"], false);
    assert_eq!(fresh["lease"], Value::Null);
    let migrations = fresh["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), files.len());
    for (m, (version, name, sum)) in migrations.iter().zip(&files) {
        assert_eq!(m["version"], *version, "{m:#}");
        assert_eq!(m["name"], name.as_str(), "{m:#}");
        assert_eq!(m["state"], "pending", "{m:#}");
        assert_eq!(m["checksum"], sum.as_str(), "{m:#}");
        assert_eq!(m["applied_checksum"], Value::Null, "{m:#}");
    }
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(table.stdout.contains("not up to date"), "{}", table.stdout);

    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let document = rvbbit_tests::ledger_fixture::status_document(&db);
    assert!(
        document["server_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{document:#}"
    );
    let applied = document["data"].clone();
    assert_eq!(applied["up_to_date"], true, "{applied:#}");
    assert_eq!(applied["lease"], Value::Null, "{applied:#}");
    let migrations = applied["migrations"].as_array().unwrap();
    let totals = migration_steps();
    for ((m, (version, name, sum)), total) in migrations.iter().zip(&files).zip(totals) {
        assert_eq!(m["version"], *version, "{m:#}");
        assert_eq!(m["name"], name.as_str(), "{m:#}");
        assert_eq!(m["state"], "applied", "{m:#}");
        assert_eq!(m["checksum"], sum.as_str(), "the file's sha256: {m:#}");
        assert_eq!(m["applied_checksum"], sum.as_str(), "{m:#}");
        assert_eq!(m["steps_done"], total, "{m:#}");
        assert_eq!(m["steps_total"], total, "{m:#}");
        assert_eq!(m["host"], hostname(), "{m:#}");
        assert!(m["pid"].as_u64().is_some_and(|p| p > 0), "{m:#}");
        assert!(
            m["started_at"].is_string() && m["finished_at"].is_string(),
            "{m:#}"
        );
        assert!(m["duration_ms"].is_u64(), "{m:#}");
        assert_eq!(m["error"], Value::Null, "{m:#}");
    }
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(
        table.stdout.contains("up to date") && !table.stdout.contains("not up to date"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("no migrate in progress"),
        "{}",
        table.stdout
    );

    let missing = rvbbit_tests::run(rvbbit().args([
        "training",
        "status",
        "--url",
        &db.url,
        "--database",
        &format!("{}_absent", db.name),
    ]));
    missing.expect_code(6);
    db.drop().await;
}

// ---------------------------------------------------------------------------------
// A checksum that no longer matches.

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_checksum_is_refused_then_recorded_by_repair() {
    let (db, truth) = seeded("checksum").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let file_sum = migration_files()[0].2.clone();
    let other = "abc".repeat(21) + "a";
    db.exec(&format!(
        "INSERT INTO {LEDGER} (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note) \
         SELECT plugin, version, name, '{other}', statements_done, statements_total, status, host, pid, \
         started_at, finished_at, duration_ms, error, note FROM {LEDGER} FINAL WHERE plugin = 'training' AND version = 1"
    ))
    .await;
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;

    let refused = db.rvbbit(&["training", "migrate"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("checksum mismatch")
            && refused.stderr.contains("0001_universal_training_system")
            && refused.stderr.contains("abcabcabcabc")
            && refused.stderr.contains("Nothing was changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(schema(&db).await, schema_before, "a definition changed");
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "the ledger changed"
    );

    let verify = db.rvbbit(&["training", "verify"]);
    verify.expect_code(1);
    let verify_text = rvbbit_tests::unwrapped(&verify.stdout);
    let failing: Vec<&str> = verify_text.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{}", verify.stdout);
    assert!(
        failing[0].contains("migrations applied")
            && failing[0].contains("0001_universal_training_system")
            && failing[0].contains("checksum"),
        "{}",
        verify.stdout
    );
    let state = status(&db);
    assert_eq!(
        state["migrations"][0]["state"], "checksum mismatch",
        "{state:#}"
    );
    assert_eq!(
        state["migrations"][0]["applied_checksum"], other,
        "{state:#}"
    );
    assert_eq!(state["up_to_date"], false, "{state:#}");

    let repaired = db.rvbbit(&["training", "migrate", "--repair"]);
    repaired.expect_code(0);
    let state = status(&db);
    let m = &state["migrations"][0];
    assert_eq!(m["state"], "applied", "{state:#}");
    assert_eq!(m["applied_checksum"], file_sum, "{state:#}");
    assert!(
        m["note"]
            .as_str()
            .is_some_and(|n| n.contains("abcabcabcabc") && n.contains("replaced")),
        "the note says the checksum was replaced: {m:#}"
    );
    assert_eq!(
        schema(&db).await,
        schema_before,
        "--repair changed a definition"
    );
    assert_converged(&db, &truth, "after --repair recorded the checksum").await;

    // verify's advice must be something that helps: a plain migrate refuses a checksum
    // mismatch, so verify has to point at --repair (as status does).
    assert!(
        failing[0].contains("--repair"),
        "verify points at a command that refuses: {}",
        failing[0]
    );
    db.drop().await;
}
