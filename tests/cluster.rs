//! `rvbbit training migrate --cluster` on a server without that cluster: `--dry-run`
//! renders every statement `ON CLUSTER` with replicated engines, and a real run fails
//! with one clear line, creating nothing.

use rvbbit_tests::ledger_fixture::table_names;
use rvbbit_tests::{rvbbit, TestDb};

#[tokio::test(flavor = "multi_thread")]
async fn cluster_mode_renders_on_cluster_and_fails_clearly_without_the_cluster() {
    let db = TestDb::with_logs("cluster").await;
    let tables = table_names(&db).await;

    let dry = db.rvbbit(&[
        "training",
        "migrate",
        "--cluster",
        "rvbbit_test_cluster",
        "--dry-run",
    ]);
    dry.expect_code(0);
    let statements: Vec<&str> = dry
        .stdout
        .split(";\n")
        .filter_map(|chunk| {
            chunk
                .lines()
                .find(|l| l.starts_with("CREATE ") || l.starts_with("ALTER "))
        })
        .collect();
    assert!(statements.len() >= 12, "{}", dry.stdout);
    for statement in &statements {
        assert!(
            statement.contains("ON CLUSTER 'rvbbit_test_cluster'"),
            "every DDL runs on the cluster: {statement}"
        );
    }
    assert!(
        dry.stdout
            .contains("ENGINE = ReplicatedReplacingMergeTree("),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains("ENGINE = ReplacingMergeTree"),
        "no table keeps a non-replicated engine:\n{}",
        dry.stdout
    );

    let run = rvbbit_tests::run(
        rvbbit()
            .args([
                "training",
                "migrate",
                "--cluster",
                "rvbbit_test_cluster",
                "--url",
                &db.url,
                "--database",
                &db.name,
            ])
            .env("RUST_BACKTRACE", "1"),
    );
    run.expect_code(7);
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "one clear line:\n{stderr}");
    assert!(
        stderr.starts_with("error:")
            && stderr.contains("rvbbit_test_cluster")
            && stderr.contains("ledger"),
        "names the cluster and the statement: {stderr}"
    );
    assert!(
        !run.all().contains("panicked") && !run.all().contains("backtrace"),
        "{}",
        run.all()
    );
    assert_eq!(
        table_names(&db).await,
        tables,
        "nothing is created when the cluster does not exist"
    );
    db.drop().await;
}
