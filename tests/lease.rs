//! The migrate lease: three migrates at once apply each migration once, and a lease
//! held by another host makes migrate wait then give up (a dead claim of this host is
//! broken at once).

use rvbbit_tests::ledger_fixture::{
    assert_converged, migration_steps, raw_rows, schema, seeded, status, LEASES, LEDGER,
};
use rvbbit_tests::{hostname, Run, TestDb};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};

// ---------------------------------------------------------------------------------
// Three migrates at once.

#[tokio::test(flavor = "multi_thread")]
async fn three_migrates_at_once_apply_each_migration_once() {
    let (db, truth) = seeded("three").await;
    let children: Vec<std::process::Child> = (0..3)
        .map(|_| db.spawn_rvbbit(&["training", "migrate"]))
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from_output(c.wait_with_output().unwrap()))
        .collect();
    for run in &runs {
        run.expect_code(0);
    }
    let all: String = runs.iter().map(Run::all).collect();
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("waiting: another migrate on host")),
        "at least one waited for another:\n{all}"
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r
                .stdout
                .contains("created  table training_examples_current"))
            .count(),
        1,
        "exactly one run created the schema:\n{all}"
    );
    // Every ledger row of a migration was written by one process, and it was applied once.
    let writers: Vec<Writers> = db
        .rows(&format!(
            "SELECT version, countIf(status = 'applied') AS applied, groupUniqArray(pid) AS pids \
             FROM {LEDGER} WHERE plugin = 'training' GROUP BY version ORDER BY version"
        ))
        .await;
    assert_eq!(writers.len(), migration_steps().len(), "{writers:?}");
    for w in &writers {
        assert_eq!(
            w.applied, 1,
            "migration {} applied more than once: {writers:?}",
            w.version
        );
        assert_eq!(
            w.pids.len(),
            1,
            "migration {} run by several processes: {writers:?}",
            w.version
        );
        assert!(pids.contains(&w.pids[0]), "{writers:?} not by {pids:?}");
    }
    let lease = status(&db)["lease"].clone();
    assert_eq!(lease, Value::Null, "every lease was released: {lease:#}");
    assert_converged(&db, &truth, "three migrates at once").await;
    db.drop().await;
}

/// Who wrote the ledger rows of one migration.
#[derive(clickhouse::Row, serde::Deserialize, Debug)]
struct Writers {
    version: u32,
    applied: u64,
    pids: Vec<u32>,
}

// ---------------------------------------------------------------------------------
// A lease held by another host.

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_held_by_another_host_makes_migrate_wait_then_give_up() {
    let (db, truth) = seeded("lease").await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'build-7-4242-1', 'build-7', 4242, now64(6), now64(6) + toIntervalSecond(300), 0)"
    ))
    .await;
    let schema_before = schema(&db).await;
    let ledger_before = raw_rows(&db, LEDGER).await;

    let busy = db.rvbbit(&["training", "migrate", "--wait", "1"]);
    busy.expect_code(9);
    assert!(
        busy.stderr
            .contains("waiting: another migrate on host build-7 (pid 4242), running since"),
        "{}",
        busy.stderr
    );
    let error: Vec<&str> = busy
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(error.len(), 1, "{}", busy.stderr);
    assert!(
        error[0].contains("host build-7 (pid 4242)")
            && error[0].contains(&db.name)
            && error[0].contains("after 1 s of waiting; nothing was changed"),
        "{}",
        error[0]
    );
    assert_eq!(schema(&db).await, schema_before, "a definition changed");
    assert_eq!(
        raw_rows(&db, LEDGER).await,
        ledger_before,
        "the ledger changed"
    );

    let status = status(&db);
    let lease = &status["lease"];
    assert_eq!(lease["host"], "build-7", "{status:#}");
    assert_eq!(lease["pid"], 4242, "{status:#}");
    assert_eq!(lease["token"], "build-7-4242-1", "{status:#}");
    let expires_in = lease["expires_in"].as_i64().unwrap();
    assert!((1..=300).contains(&expires_in), "{status:#}");
    let table = db.rvbbit(&["training", "status"]);
    table.expect_code(0);
    assert!(
        table
            .stdout
            .contains("in progress: migrate on host build-7 (pid 4242)"),
        "{}",
        table.stdout
    );

    // A run with time to wait waits: it is still waiting when the holder gives the lease
    // back, and then takes it and finishes (one that gave up at once would exit 9).
    let mut waiter = db.spawn_rvbbit(&["training", "migrate", "--wait", "120"]);
    let mut waiter_err = BufReader::new(waiter.stderr.take().expect("piped stderr"));
    let mut stderr = String::new();
    while !stderr.contains("waiting: another migrate on host build-7 (pid 4242)") {
        let read = waiter_err
            .read_line(&mut stderr)
            .expect("read migrate's stderr");
        assert!(
            read > 0,
            "migrate --wait 120 ended without waiting for build-7:\n{stderr}"
        );
    }
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'build-7-4242-1', 'build-7', 4242, now64(6), now64(6) + toIntervalSecond(300), 1)"
    ))
    .await;
    waiter_err
        .read_to_string(&mut stderr)
        .expect("read migrate's stderr");
    let waited = waiter.wait_with_output().expect("migrate ends");
    let waited = Run {
        code: waited.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&waited.stdout).into_owned(),
        stderr,
    };
    waited.expect_code(0);
    assert!(!waited.stderr.contains("error:"), "{}", waited.stderr);
    assert_eq!(status_lease(&db), Value::Null);

    // Claimed by a process of this host that is gone: the dead claim is broken at once.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    db.exec(&format!(
        "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
         VALUES ('training', 'dead-claim', '{}', {dead_pid}, now64(6), now64(6) + toIntervalSecond(300), 0)",
        hostname()
    ))
    .await;
    let run = db.rvbbit(&["training", "migrate", "--wait", "1"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
    // The run broke the dead claim (released it for the dead process) instead of
    // waiting for it to expire.
    let dead_claim: Vec<(String, u32, u8)> = db
        .rows(&format!(
            "SELECT host, pid, released FROM {LEASES} FINAL WHERE token = 'dead-claim'"
        ))
        .await;
    assert_eq!(
        dead_claim,
        vec![(hostname(), dead_pid, 1)],
        "the dead claim was broken"
    );
    assert_eq!(status_lease(&db), Value::Null);
    assert_converged(&db, &truth, "after the lease").await;
    db.drop().await;
}

fn status_lease(db: &TestDb) -> Value {
    status(db)["lease"].clone()
}
