//! Attacks and faults, tried on purpose: hostile values, non-UTF-8 arguments, bad URLs,
//! TLS, a stalled server, a server killed mid-command, concurrent writers, and secrets.

use rvbbit_tests::logs::{insert, LogRow};
use rvbbit_tests::{free_port, old_server, repo_root, run, rvbbit, Run, TestDb};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rvbbit-hardening-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A private local ClickHouse (for tests that stop it), started on `port` with `data`.
fn private_engine(port: u16, data: &Path, tls: Option<(&Path, &Path)>) -> Child {
    let mut command = Command::new(repo_root().join("scripts/dev-clickhouse"));
    command
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(data)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((cert, key)) = tls {
        command
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    }
    command
        .spawn()
        .expect("scripts/dev-clickhouse serve starts")
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what} did not happen within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn curl_ok(args: &[&str]) -> bool {
    Command::new("curl")
        .args(["-fs", "-o", "/dev/null"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn sql(url: &str, extra: &[&str], query: &str) {
    let status = Command::new("curl")
        .args(["-fsS", "--data-binary", query])
        .args(extra)
        .arg(url)
        .status()
        .unwrap();
    assert!(status.success(), "{query}");
}

#[test]
fn a_password_on_the_command_line_is_warned_about_and_never_shown() {
    let (url, password) = old_server();
    let run = run(rvbbit().args([
        "training",
        "migrate",
        "--url",
        &url,
        "--password",
        &password,
    ]));
    run.expect_code(5);
    assert!(
        run.stderr
            .contains("warning: a password given with --password is visible"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains(&password), "{}", run.all());
    let from_env = rvbbit_tests::run(
        rvbbit()
            .args(["training", "migrate", "--url", &url])
            .env("RVBBIT_CLICKHOUSE_PASSWORD", &password),
    );
    assert!(
        !from_env.stderr.contains("warning:"),
        "no warning for the environment: {}",
        from_env.stderr
    );
}

#[test]
fn malformed_urls_are_refused_before_anything_is_sent() {
    for url in [
        "http://[::1",
        "http://localhost:99999",
        "http://:8123",
        "ftp://localhost",
        "",
        "http//localhost",
        "http://exa mple.com",
    ] {
        let run = run(rvbbit().args(["training", "verify", "--url", url]));
        run.expect_code(2);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{url:?}: one clear line:\n{}",
            run.stderr
        );
    }
}

#[test]
fn non_utf8_arguments_are_refused_clearly() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"rv\xffbbit");
    for args in [
        vec!["training", "migrate", "--database"],
        vec!["training", "annotate"],
        vec!["training", "test-annotation", "--trace-id"],
    ] {
        let run = run(rvbbit()
            .args(&args)
            .arg(bad)
            .args(["--url", "http://127.0.0.1:9"]));
        run.expect_code(2);
        assert!(
            run.stderr.contains("invalid UTF-8"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn a_stalled_server_hits_the_timeout_with_a_clear_message() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts connections and never answers.
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(1).flatten() {
            open.push(stream);
            std::thread::sleep(Duration::from_secs(8));
        }
    });
    let start = Instant::now();
    let run = run(rvbbit().args(["training", "verify", "--url", &url, "--timeout", "2"]));
    run.expect_code(3);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        run.stderr
            .contains(&format!("ClickHouse at {url} did not answer within 2 s")),
        "{}",
        run.stderr
    );
    held.join().unwrap();
}

#[test]
fn tls_works_with_a_trusted_certificate_and_is_refused_otherwise() {
    let dir = temp_dir("tls");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rvbbit test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let port = free_port();
    let mut engine = private_engine(
        port,
        &dir.join("data"),
        Some((&dir.join("server.pem"), &dir.join("server.key"))),
    );
    let url = format!("https://localhost:{port}");
    let ca = dir.join("ca.pem");
    wait_until("the HTTPS engine answering", || {
        curl_ok(&["--cacert", ca.to_str().unwrap(), &format!("{url}/ping")])
    });
    sql(
        &url,
        &["--cacert", ca.to_str().unwrap()],
        "CREATE DATABASE tls_db",
    );
    sql(
        &format!("{url}/?database=tls_db"),
        &["--cacert", ca.to_str().unwrap()],
        &std::fs::read_to_string(repo_root().join("tests/fixtures/unified_logs.sql")).unwrap(),
    );

    let trusted = run(rvbbit()
        .args(["training", "migrate", "--url", &url, "--database", "tls_db"])
        .env("SSL_CERT_FILE", &ca));
    trusted.expect_code(0);
    assert!(trusted.stdout.contains("verify: all"), "{}", trusted.stdout);

    let untrusted = run(rvbbit()
        .args(["training", "verify", "--url", &url, "--database", "tls_db"])
        .env_remove("SSL_CERT_FILE"));
    untrusted.expect_code(3);
    assert!(
        untrusted
            .stderr
            .contains(&format!("cannot reach ClickHouse at {url}"))
            && untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
    let _ = engine.kill();
    let _ = engine.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_killed_mid_migrate_fails_clearly_and_a_rerun_completes() {
    let dir = temp_dir("killed");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut engine = private_engine(port, &dir.join("data"), None);
    wait_until("the engine answering", || {
        curl_ok(&[&format!("{url}/ping")])
    });
    sql(&url, &[], "CREATE DATABASE faults");
    let logs = format!("{url}/?database=faults");
    sql(
        &logs,
        &[],
        &std::fs::read_to_string(repo_root().join("tests/fixtures/unified_logs.sql")).unwrap(),
    );
    sql(&logs, &[], &rvbbit_tests::logs::history_sql(44000));
    let mut migrate = rvbbit()
        .args(["training", "migrate", "--url", &url, "--database", "faults"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(migrate.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("log rows scanned (1/") {}
    engine.kill().unwrap();
    engine.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = migrate.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest}");
    assert!(rest.contains(&format!("ClickHouse at {url}")), "{rest}");
    assert_eq!(
        rest.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one clear message:\n{rest}"
    );
    assert!(!rest.contains("panicked"), "{rest}");

    let mut engine = private_engine(port, &dir.join("data"), None);
    wait_until("the engine answering again", || {
        curl_ok(&[&format!("{url}/ping")])
    });
    let rerun = run(rvbbit().args(["training", "migrate", "--url", &url, "--database", "faults"]));
    rerun.expect_code(0);
    let counts = Command::new("curl")
        .args([
            "-fsS",
            "--data-binary",
            "SELECT count(), uniqExact(trace_id) FROM training_examples",
        ])
        .arg(&logs)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&counts.stdout).trim(),
        "44000\t44000"
    );
    let _ = engine.kill();
    let _ = engine.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_annotate_and_test_annotation_lose_nothing_and_leave_no_test_rows() {
    let db = TestDb::with_logs("load").await;
    let rows: Vec<LogRow> = (0..40)
        .map(|i| LogRow::simple(&format!("l-{i}"), "casc", "cell", "q", "r"))
        .collect();
    insert(&db.client, &rows).await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let spawn = |args: Vec<String>| {
        rvbbit()
            .args(&args)
            .args(["--url", &db.url, "--database", &db.name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = Vec::new();
    for writer in 0..8 {
        let mut args: Vec<String> = vec!["training".into(), "annotate".into()];
        args.extend((0..5).map(|i| format!("l-{}", writer * 5 + i)));
        args.extend([
            "--notes".into(),
            format!("writer {writer}"),
            "--confidence".into(),
            "0.5".into(),
            "-q".into(),
        ]);
        children.push(spawn(args));
    }
    for _ in 0..4 {
        children.push(spawn(vec![
            "training".into(),
            "test-annotation".into(),
            "-q".into(),
        ]));
    }
    for child in children {
        let out = Run::from_output(child.wait_with_output().unwrap());
        out.expect_code(0);
    }
    let notes: Vec<(String, String)> = db.rows("SELECT trace_id, notes FROM training_annotations ORDER BY toUInt32(substring(trace_id, 3))").await;
    let expected: Vec<(String, String)> = (0..40)
        .map(|i| (format!("l-{i}"), format!("writer {}", i / 5)))
        .collect();
    assert_eq!(
        notes, expected,
        "every annotation, exactly once, and no test row left"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_are_stored_exactly_or_refused() {
    let db = TestDb::with_logs("hostile").await;
    let long = "x'\"\\".repeat(1500);
    let hostile = [
        "quote ' double \" backtick ` done",
        "back\\slash \\' \\\\ end\\",
        "new\nline\r\nand\ttab",
        "unicode é 漢字 🐇 \u{202e}rtl \u{200b}zw",
        "'); DROP TABLE unified_logs; --",
        "{id:String} ? ?? $1 %s {{ }}",
        long.as_str(),
    ];
    let rows: Vec<LogRow> = hostile
        .iter()
        .map(|id| LogRow::simple(id, "casc", "cell", id, id))
        .collect();
    insert(&db.client, &rows).await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    let logs_before: u64 = db.scalar("SELECT count() FROM unified_logs").await;
    for value in hostile {
        let tag = value.replace(',', ";");
        let run = db.rvbbit(&[
            "training", "annotate", value, "--notes", value, "--tags", &tag, "--by", value, "-q",
        ]);
        run.expect_code(0);
        let back: Vec<(String, String, u64, String, String)> = db
            .client
            .query_raw("SELECT trace_id, notes, length(tags), tags[1], annotated_by FROM training_annotations WHERE trace_id = {v:String}")
            .param("v", value)
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(
            back,
            vec![(
                value.to_string(),
                value.to_string(),
                1,
                tag.clone(),
                value.to_string()
            )],
            "{value:?}"
        );
        let joined: Vec<(String, String, bool)> = db
            .client
            .query_raw("SELECT user_input, assistant_output, trainable FROM training_examples_with_annotations WHERE trace_id = {v:String}")
            .param("v", value)
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(
            joined,
            vec![(value.to_string(), value.to_string(), true)],
            "{value:?}"
        );
    }
    // test-annotation with a hostile id that has no annotation yet.
    for value in [
        "t'est\"\\\n🐇",
        "'); DELETE FROM training_annotations WHERE 1; --",
    ] {
        db.rvbbit(&["training", "test-annotation", "--trace-id", value, "-q"])
            .expect_code(0);
    }
    // NUL can only arrive on standard input: refused with a clear message.
    let mut child = rvbbit()
        .args([
            "training",
            "annotate",
            "-",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ok-id\nbad\0id\n")
        .unwrap();
    let out = Run::from_output(child.wait_with_output().unwrap());
    out.expect_code(2);
    assert!(out.stderr.contains("contains a NUL byte"), "{}", out.stderr);
    // Everything else is intact.
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM unified_logs").await,
        logs_before
    );
    assert_eq!(
        db.scalar::<u64>("SELECT count() FROM training_annotations")
            .await,
        hostile.len() as u64
    );
    db.rvbbit(&["training", "verify", "-q"]).expect_code(0);
    db.drop().await;
}

#[test]
fn a_panic_never_shows_the_password_or_a_backtrace() {
    // A debug-build failpoint panics with the password in its message, on purpose.
    for (how, password) in [
        ("flag", "Panic-Secret-1"),
        ("env", "Panic-Secret-2"),
        ("url", "Panic-Secret-3"),
    ] {
        let mut command = rvbbit();
        command
            .args(["training", "verify"])
            .env("RVBBIT_TRAINING_FAILPOINT", "panic")
            .env("RUST_BACKTRACE", "1");
        match how {
            "flag" => command.args(["--password", password]),
            "env" => command.env("RVBBIT_CLICKHOUSE_PASSWORD", password),
            _ => command.args(["--url", &format!("http://default:{password}@127.0.0.1:9")]),
        };
        let run = run(&mut command);
        run.expect_code(70);
        assert!(
            run.stderr.contains(
                "the training plugin panicked: failpoint reached while connected as default:****"
            ),
            "{}",
            run.stderr
        );
        assert!(!run.all().contains(password), "{how}: {}", run.all());
        assert!(
            !run.all().contains("stack backtrace") && !run.all().contains("thread '"),
            "{}",
            run.all()
        );
    }
}
