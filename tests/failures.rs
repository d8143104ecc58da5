//! Failure paths: each ends with one clear message, its own exit code, and nothing
//! changed; and, on Debian's ClickHouse 18.16, a user other than `default` logging in.

use rvbbit_tests::{old_server, run, rvbbit, TestDb};

#[test]
fn an_unreachable_server_is_named_with_the_refusal_not_a_timeout() {
    let port = rvbbit_tests::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let run = run(rvbbit().args(["training", "migrate", "--url", &url]));
    run.expect_code(3);
    // The run ends on the system's refusal of the connection, not by waiting out
    // --timeout (30 s by default), which would say "did not answer within 30 s".
    assert!(
        run.stderr
            .contains(&format!("cannot reach ClickHouse at {url} (")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Connection refused"),
        "the reason is the refusal:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("did not answer within"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one message, no trace:\n{}",
        run.stderr
    );
}

#[test]
fn a_hostile_database_name_is_refused_before_anything_is_sent() {
    // The URL points nowhere: reaching the network would be exit 3, not 2.
    let url = format!("http://127.0.0.1:{}", rvbbit_tests::free_port());
    for name in [
        "rvbbit; DROP TABLE unified_logs",
        "a`b",
        "../etc",
        "db name",
        "",
    ] {
        let run = run(rvbbit().args(["training", "migrate", "--url", &url, "--database", name]));
        run.expect_code(2);
        assert!(
            run.stderr.contains("is not a plain identifier"),
            "{name:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_malformed_url_is_a_usage_error() {
    let run = run(rvbbit().args(["training", "verify", "--url", "localhost:8123"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("must start with http:// or https://"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_too_old_server_is_refused_with_both_versions_and_nothing_created() {
    let (url, password) = old_server();
    let run = run(rvbbit()
        .args([
            "training",
            "migrate",
            "--url",
            &url,
            "--database",
            "default",
            "--create-database",
        ])
        .env("RVBBIT_CLICKHOUSE_PASSWORD", &password));
    run.expect_code(5);
    assert!(run.stderr.contains("is version 18.16"), "{}", run.stderr);
    assert!(
        run.stderr.contains("needs 23.10 or newer"),
        "{}",
        run.stderr
    );
    let tables = old_server_query(
        &url,
        &password,
        "SELECT count() FROM system.tables WHERE name LIKE 'training%'",
    );
    assert_eq!(tables.trim(), "0", "nothing was created on the old server");
}

#[test]
fn a_wrong_password_is_an_authentication_error_that_never_echoes_it() {
    let (url, _) = old_server();
    let secret = "Sup3r-Secret-Pw!";
    let run1 = run(rvbbit().args(["training", "verify", "--url", &url, "--password", secret]));
    run1.expect_code(4);
    assert!(
        run1.stderr.contains("refused user 'default'"),
        "{}",
        run1.stderr
    );
    assert!(
        !run1.all().contains(secret),
        "password echoed:\n{}",
        run1.all()
    );
    // The same password inside the URL, URL-encoded, and in the environment.
    let with_creds = url.replacen("http://", "http://default:Sup3r-Secret-Pw%21@", 1);
    let run2 = run(rvbbit().args(["training", "migrate", "--url", &with_creds]));
    run2.expect_code(4);
    assert!(
        !run2.all().contains(secret) && !run2.all().contains("Sup3r-Secret-Pw%21"),
        "{}",
        run2.all()
    );
    let run3 = run(rvbbit()
        .args(["training", "test-annotation", "--url", &url])
        .env("RVBBIT_CLICKHOUSE_PASSWORD", secret));
    run3.expect_code(4);
    assert!(!run3.all().contains(secret), "{}", run3.all());
}

/// A private Debian ClickHouse 18.16 (`scripts/old-clickhouse --user`) with a second
/// user, `analyst`, besides `default`, each with a password of its own; stopped when
/// dropped.
struct OldServerWithUser {
    dir: std::path::PathBuf,
    url: String,
}

const ANALYST: &str = "analyst";
const ANALYST_PASSWORD: &str = "analyst-pw-31";
const DEFAULT_PASSWORD: &str = "default-pw-47";

impl OldServerWithUser {
    fn start() -> OldServerWithUser {
        let dir =
            std::env::temp_dir().join(format!("rvbbit-failures-old-user-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = rvbbit_tests::repo_root()
            .join("scripts")
            .join("old-clickhouse");
        let output = std::process::Command::new(script)
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .args(["--http-port", &rvbbit_tests::free_port().to_string()])
            .args(["--tcp-port", &rvbbit_tests::free_port().to_string()])
            .args(["--password", DEFAULT_PASSWORD])
            .args(["--user", ANALYST, "--user-password", ANALYST_PASSWORD])
            .output()
            .expect("scripts/old-clickhouse runs");
        assert!(
            output.status.success(),
            "scripts/old-clickhouse start --user: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        OldServerWithUser { dir, url }
    }
}

impl Drop for OldServerWithUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new(
            rvbbit_tests::repo_root()
                .join("scripts")
                .join("old-clickhouse"),
        )
        .arg("stop")
        .arg("--dir")
        .arg(&self.dir)
        .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Past authentication, 18.16 is refused for its version (exit 5): the login worked.
#[track_caller]
fn logged_in(run: &rvbbit_tests::Run, how: &str) {
    assert_eq!(run.code, 5, "{how}: exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("is version 18.16"),
        "{how}: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("refused user"),
        "{how}: {}",
        run.stderr
    );
    no_password(run, how);
}

/// Refused by the server (exit 4), naming the user it refused.
#[track_caller]
fn refused(run: &rvbbit_tests::Run, user: &str, how: &str) {
    assert_eq!(run.code, 4, "{how}: exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("refused user '{user}'")),
        "{how}: {}",
        run.stderr
    );
    no_password(run, how);
}

#[track_caller]
fn no_password(run: &rvbbit_tests::Run, how: &str) {
    for secret in [ANALYST_PASSWORD, DEFAULT_PASSWORD, "wrong-pw-59"] {
        assert!(
            !run.all().contains(secret),
            "{how}: a password is printed:\n{}",
            run.all()
        );
    }
}

#[test]
fn a_user_other_than_default_is_the_one_that_logs_in_from_flag_variable_and_url() {
    let server = OldServerWithUser::start();
    let url = server.url.as_str();
    let with_creds = |user: &str, password: &str| {
        url.replacen("http://", &format!("http://{user}:{password}@"), 1)
    };
    let status = |extra: &[&str]| {
        let mut command = rvbbit();
        command.args(["training", "status", "--database", "default"]);
        command.args(extra);
        command
    };

    // The user and its own password: from the flags, the variables, the URL.
    logged_in(
        &run(&mut status(&[
            "--url",
            url,
            "--user",
            ANALYST,
            "--password",
            ANALYST_PASSWORD,
        ])),
        "flags",
    );
    logged_in(
        &run(status(&["--url", url])
            .env("RVBBIT_CLICKHOUSE_USER", ANALYST)
            .env("RVBBIT_CLICKHOUSE_PASSWORD", ANALYST_PASSWORD)),
        "variables",
    );
    logged_in(
        &run(&mut status(&[
            "--url",
            &with_creds(ANALYST, ANALYST_PASSWORD),
        ])),
        "url",
    );
    // The URL's user wins over the flag's and the variable's.
    logged_in(
        &run(status(&[
            "--url",
            &with_creds(ANALYST, ANALYST_PASSWORD),
            "--user",
            "default",
        ])
        .env("RVBBIT_CLICKHOUSE_USER", "default")),
        "url over flag and variable",
    );

    // The user with default's password, or a wrong one: refused, naming that user.
    refused(
        &run(&mut status(&[
            "--url",
            url,
            "--user",
            ANALYST,
            "--password",
            DEFAULT_PASSWORD,
        ])),
        ANALYST,
        "flags, default's password",
    );
    refused(
        &run(status(&["--url", url])
            .env("RVBBIT_CLICKHOUSE_USER", ANALYST)
            .env("RVBBIT_CLICKHOUSE_PASSWORD", "wrong-pw-59")),
        ANALYST,
        "variables, wrong password",
    );
    refused(
        &run(&mut status(&["--url", &with_creds(ANALYST, "wrong-pw-59")])),
        ANALYST,
        "url, wrong password",
    );
    // Without a user, default logs in with its own password and is refused with
    // analyst's: the password was checked against the user given, not any user.
    logged_in(
        &run(&mut status(&["--url", url, "--password", DEFAULT_PASSWORD])),
        "default",
    );
    refused(
        &run(&mut status(&["--url", url, "--password", ANALYST_PASSWORD])),
        "default",
        "default with analyst's password",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_log_table_is_named() {
    let db = TestDb::empty("nologs").await;
    let run = db.rvbbit(&["training", "migrate"]);
    run.expect_code(6);
    assert!(
        run.stderr.contains("unified_logs does not exist"),
        "{}",
        run.stderr
    );
    let tables: u64 = db
        .scalar(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}'",
            db.name
        ))
        .await;
    assert_eq!(tables, 0);
    db.drop().await;
}

/// Asks the old server directly, over HTTP, with curl-free std networking.
fn old_server_query(url: &str, password: &str, sql: &str) -> String {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).expect("old server reachable");
    let request = format!(
        "POST / HTTP/1.0\r\nX-ClickHouse-User: default\r\nX-ClickHouse-Key: {password}\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_server_that_is_not_clickhouse_is_a_connection_error_without_its_page() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = format!(
                "<!DOCTYPE html><html><body>{}</body></html>",
                "Not Found. ".repeat(200)
            );
            let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    let run = run(rvbbit().args(["training", "verify", "--url", &url]));
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("answered, but not like ClickHouse's HTTP interface"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.len() < 600,
        "the page is not dumped:\n{}",
        run.stderr
    );
    server.join().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_on_a_database_without_the_training_tables_say_to_migrate() {
    let db = TestDb::with_logs("unmigrated").await;
    for args in [
        vec!["training", "stats"],
        vec!["training", "examples", "--cascade", "c", "--cell", "x"],
        vec!["training", "annotate", "x", "--force"],
    ] {
        let run = db.rvbbit(&args);
        run.expect_code(6);
        assert!(
            run.stderr.contains("rvbbit training migrate"),
            "{args:?}: {}",
            run.stderr
        );
    }
    db.drop().await;
}

#[test]
fn out_of_range_numbers_are_usage_errors() {
    for args in [
        vec!["training", "verify", "--timeout", "0"],
        vec![
            "training",
            "examples",
            "--cascade",
            "c",
            "--cell",
            "x",
            "--limit",
            "0",
        ],
        vec![
            "training",
            "examples",
            "--cascade",
            "c",
            "--cell",
            "x",
            "--min-confidence",
            "1.5",
        ],
    ] {
        let run = run(rvbbit().args(&args).args(["--url", "http://127.0.0.1:9"]));
        run.expect_code(2);
        assert!(run.stderr.starts_with("error:"), "{args:?}: {}", run.stderr);
    }
}
