//! Promises the README makes about connecting and about the host, each tried for real:
//! a wrong password on a supported engine, a user other than `default` (here refused;
//! on 18.16 logging in: tests/failures.rs), credentials in the URL and the
//! `RVBBIT_CLICKHOUSE_*` variables end to end, `https://` to a plain port, a name that
//! does not resolve, a web server that is not ClickHouse, plugin discovery in
//! `<exe>/../lib/rvbbit/plugins` and in the user's data directory, and the hand-off's
//! loop guard.

use rvbbit_tests::{bin_dir, engine_url, free_port, repo_root, run, rvbbit};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rvbbit-promises-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// An engine of the release under test (`RVBBIT_DEV_CLICKHOUSE_ENGINE`, 26.9 when
/// unset) whose user `default` has `password`, stopped when dropped.
struct PasswordEngine {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl PasswordEngine {
    fn start(password: &str) -> PasswordEngine {
        let dir = temp_dir("password-engine");
        let port = free_port();
        let mut command = Command::new(repo_root().join("scripts").join("dev-clickhouse"));
        command
            .args(["serve", "--port", &port.to_string(), "--password", password])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(engine) = std::env::var("RVBBIT_DEV_CLICKHOUSE_ENGINE")
            .ok()
            .filter(|e| !e.is_empty())
        {
            command.args(["--engine", &engine]);
        }
        let child = command
            .spawn()
            .expect("scripts/dev-clickhouse serve starts");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                if reply.contains("Ok.") {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the engine with a password did not answer /ping"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        PasswordEngine { child, url, dir }
    }
}

impl Drop for PasswordEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn one_error_line(run: &rvbbit_tests::Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "one message:\n{}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    lines[0].to_string()
}

#[test]
fn a_wrong_password_is_refused_with_exit_4_and_the_right_one_from_each_source_is_used() {
    let password = "rvbbit-right-pw-9";
    let engine = PasswordEngine::start(password);
    let host_port = engine.url.trim_start_matches("http://").to_string();

    // Wrong: from the flag, from the variable, and from the URL.
    let wrong = "not-the-password-7";
    for (how, command) in [
        ("flag", {
            let mut c = rvbbit();
            c.args([
                "training",
                "status",
                "--url",
                &engine.url,
                "--password",
                wrong,
            ]);
            c
        }),
        ("variable", {
            let mut c = rvbbit();
            c.args(["training", "status", "--url", &engine.url])
                .env("RVBBIT_CLICKHOUSE_PASSWORD", wrong);
            c
        }),
        ("url", {
            let mut c = rvbbit();
            c.args([
                "training",
                "status",
                "--url",
                &format!("http://default:{wrong}@{host_port}"),
            ]);
            c
        }),
    ] {
        let mut command = command;
        let refused = run(&mut command);
        refused.expect_code(4);
        let line = one_error_line(&refused);
        assert!(
            line.contains(&format!(
                "ClickHouse at {} refused user 'default'",
                engine.url
            )),
            "{how}: {line}"
        );
        assert!(!refused.all().contains(wrong), "{how}: {}", refused.all());
    }

    // Right: each source on its own, the URL's credentials winning over the variable,
    // and every connection variable instead of flags.
    let database_check = |command: &mut Command, how: &str| {
        let ok = run(command.args(["--format", "json"]));
        // No training objects in `default`: status answers (exit 0) with every
        // migration pending, which needs a working login.
        ok.expect_code(0);
        let status = rvbbit_tests::json_document(&ok);
        assert_eq!(status["database"], "default", "{how}: {status}");
        assert!(!ok.all().contains(password), "{how}: {}", ok.all());
    };
    database_check(
        rvbbit()
            .args([
                "training",
                "status",
                "--url",
                &engine.url,
                "--database",
                "default",
            ])
            .env("RVBBIT_CLICKHOUSE_PASSWORD", password),
        "variable",
    );
    database_check(
        rvbbit()
            .args([
                "training",
                "status",
                "--database",
                "default",
                "--url",
                &format!("http://default:{password}@{host_port}"),
            ])
            .env("RVBBIT_CLICKHOUSE_PASSWORD", wrong),
        "the URL's password over the variable",
    );
    database_check(
        rvbbit()
            .args(["training", "status"])
            .env("RVBBIT_CLICKHOUSE_URL", &engine.url)
            .env("RVBBIT_CLICKHOUSE_DATABASE", "default")
            .env("RVBBIT_CLICKHOUSE_USER", "default")
            .env("RVBBIT_CLICKHOUSE_PASSWORD", password),
        "every variable",
    );
    let (host, port) = host_port.split_once(':').expect("host:port");
    database_check(
        rvbbit()
            .args(["training", "status"])
            .env("RVBBIT_CLICKHOUSE_HOST", host)
            .env("RVBBIT_CLICKHOUSE_HTTP_PORT", port)
            .env("RVBBIT_CLICKHOUSE_DATABASE", "default")
            .env("RVBBIT_CLICKHOUSE_PASSWORD", password),
        "host and port variables",
    );

    // A user other than `default` (the local front has no other): the name given by
    // flag, variable or URL is the one the server checks, and refuses even with
    // default's password.
    for (how, command) in [
        ("flag", {
            let mut c = rvbbit();
            c.args([
                "training",
                "status",
                "--url",
                &engine.url,
                "--user",
                "analyst",
            ])
            .env("RVBBIT_CLICKHOUSE_PASSWORD", password);
            c
        }),
        ("variable", {
            let mut c = rvbbit();
            c.args(["training", "status", "--url", &engine.url])
                .env("RVBBIT_CLICKHOUSE_USER", "analyst")
                .env("RVBBIT_CLICKHOUSE_PASSWORD", password);
            c
        }),
        ("url", {
            let mut c = rvbbit();
            c.args([
                "training",
                "status",
                "--url",
                &format!("http://analyst:{password}@{host_port}"),
            ]);
            c
        }),
    ] {
        let mut command = command;
        let refused = run(&mut command);
        refused.expect_code(4);
        let line = one_error_line(&refused);
        assert!(
            line.contains(&format!(
                "ClickHouse at {} refused user 'analyst'",
                engine.url
            )),
            "{how}: {line}"
        );
        assert!(
            !refused.all().contains(password),
            "{how}: {}",
            refused.all()
        );
    }
}

#[test]
fn https_to_a_plain_http_port_says_the_port_does_not_speak_tls() {
    let url = engine_url().replace("http://", "https://");
    let refused = run(rvbbit().args(["training", "status", "--url", &url]));
    refused.expect_code(3);
    let line = one_error_line(&refused);
    assert!(
        line.contains(&format!("cannot reach ClickHouse at {url}")),
        "{line}"
    );
    assert!(line.contains("TLS"), "{line}");
}

#[test]
fn a_host_name_that_does_not_resolve_is_a_connection_error() {
    let url = "http://no-such-host.invalid:8123";
    let refused = run(rvbbit().args(["training", "status", "--url", url, "--timeout", "20"]));
    refused.expect_code(3);
    let line = one_error_line(&refused);
    assert!(
        line.contains(&format!("cannot reach ClickHouse at {url}")) && line.contains("dns error"),
        "the message names the host and the lookup: {line}"
    );
}

/// A web server that answers every request with `200` and an HTML page: what a
/// `--url` pointing at the wrong service gets.
fn serve_a_web_page() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).ok();
        // Enough answers for one command's requests; the test ends the process anyway.
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            let mut buffer = [0u8; 8192];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buffer);
            let body = "<html><body>It works!</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, handle)
}

#[test]
fn a_web_server_that_is_not_clickhouse_is_named_as_such() {
    let (url, _server) = serve_a_web_page();
    let refused = run(rvbbit().args(["training", "status", "--url", &url, "--timeout", "10"]));
    refused.expect_code(3);
    let line = one_error_line(&refused);
    assert!(
        line.contains(&format!(
            "the server at {url} answered, but not like ClickHouse"
        )),
        "{line}"
    );
}

/// `program` without this process's `RVBBIT_*` variables and `XDG_DATA_HOME`, so that
/// only what a test sets decides where plugins and servers are looked for.
fn clean(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RVBBIT_") || key == "XDG_DATA_HOME" {
            command.env_remove(key);
        }
    }
    command
}

fn copy_executable(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
    std::fs::copy(from, to).expect("copy");
}

fn plugin_file() -> String {
    format!("libtraining_plugin{}", std::env::consts::DLL_SUFFIX)
}

#[test]
fn plugins_are_found_in_the_lib_dir_beside_the_binary_and_in_the_users_data_dir() {
    let dir = temp_dir("discovery");
    let built = bin_dir();

    // <prefix>/bin/rvbbit with <prefix>/lib/rvbbit/plugins/libtraining_plugin.so
    let prefix = dir.join("prefix");
    copy_executable(&built.join("rvbbit"), &prefix.join("bin").join("rvbbit"));
    copy_executable(
        &built.join(plugin_file()),
        &prefix
            .join("lib")
            .join("rvbbit")
            .join("plugins")
            .join(plugin_file()),
    );
    // A binary alone, with the plugin in $HOME/.local/share/rvbbit/plugins, and in
    // $XDG_DATA_HOME/rvbbit/plugins when that is set.
    let alone = dir.join("alone").join("rvbbit");
    copy_executable(&built.join("rvbbit"), &alone);
    let home = dir.join("home");
    copy_executable(
        &built.join(plugin_file()),
        &home.join(".local/share/rvbbit/plugins").join(plugin_file()),
    );
    let xdg = dir.join("xdg");
    copy_executable(
        &built.join(plugin_file()),
        &xdg.join("rvbbit/plugins").join(plugin_file()),
    );

    let listing = |exe: &Path, home: &Path, xdg: Option<&Path>| {
        let mut command = clean(exe);
        command.env("PATH", "/usr/bin:/bin").env("HOME", home);
        if let Some(xdg) = xdg {
            command.env("XDG_DATA_HOME", xdg);
        }
        let listed = run(command.args(["plugins", "--format", "json"]));
        listed.expect_code(0);
        let plugins = rvbbit_tests::json_data(&listed);
        plugins.to_string()
    };
    let empty_home = dir.join("empty-home");
    std::fs::create_dir_all(&empty_home).expect("dir");
    let from_prefix = listing(&prefix.join("bin").join("rvbbit"), &empty_home, None);
    assert!(from_prefix.contains("\"training\""), "{from_prefix}");
    assert!(from_prefix.contains("lib/rvbbit/plugins"), "{from_prefix}");

    let nowhere = listing(&alone, &empty_home, None);
    assert!(
        !nowhere.contains("\"training\""),
        "no plugin anywhere: {nowhere}"
    );
    let from_home = listing(&alone, &home, None);
    assert!(from_home.contains("\"training\""), "{from_home}");
    assert!(
        from_home.contains(".local/share/rvbbit/plugins"),
        "{from_home}"
    );
    let from_xdg = listing(&alone, &empty_home, Some(&xdg));
    assert!(from_xdg.contains("\"training\""), "{from_xdg}");
    assert!(from_xdg.contains("xdg/rvbbit/plugins"), "{from_xdg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_copies_of_the_host_on_path_never_hand_a_command_back_and_forth() {
    let dir = temp_dir("loop");
    let built = bin_dir();
    let first = dir.join("first").join("rvbbit");
    let second = dir.join("second").join("rvbbit");
    copy_executable(&built.join("rvbbit"), &first);
    copy_executable(&built.join("rvbbit"), &second);
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        first.parent().expect("dir").display(),
        second.parent().expect("dir").display()
    );
    let mut command = clean(&first);
    let started = Instant::now();
    let handed = run(command
        .args(["run", "some_cascade.yaml"])
        .env("PATH", &path)
        .env("HOME", &dir));
    // The first copy hands `run` to the second, which finds no third rvbbit: the
    // second's "no plugin provides" message, exit 8, once.
    handed.expect_code(8);
    assert_eq!(
        handed
            .stderr
            .matches("no plugin provides 'rvbbit run some_cascade.yaml'")
            .count(),
        1,
        "{}",
        handed.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60), "a loop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scripts_install_puts_the_host_first_on_path_and_uninstall_removes_only_its_files() {
    let dir = temp_dir("install");
    let prefix = dir.join("prefix");
    // rvbbit's own CLI, further down PATH: it receives what no plugin provides.
    let python = dir.join("python-bin");
    std::fs::create_dir_all(&python).expect("dir");
    let fake = python.join("rvbbit");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"python-rvbbit got: $*\"\nexit 42\n",
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        prefix.join("bin").display(),
        python.display()
    );
    let script = repo_root().join("scripts").join("install");
    let installed = run(Command::new(&script)
        .args(["--debug", "--no-build", "--prefix"])
        .arg(&prefix)
        .env("PATH", &path));
    installed.expect_code(0);
    assert!(
        installed.stdout.contains(&format!(
            "rvbbit on PATH is now this host (plugins: training); other commands go to {}",
            fake.canonicalize().expect("path").display()
        )),
        "{}",
        installed.stdout
    );
    let host = prefix.join("bin").join("rvbbit");
    let on_path = |args: &[&str]| {
        let mut command = clean(Path::new("rvbbit"));
        run(command.args(args).env("PATH", &path).env("HOME", &dir))
    };
    let listed = on_path(&["plugins"]);
    listed.expect_code(0);
    assert!(
        listed
            .stdout
            .contains("lib/rvbbit/plugins/libtraining_plugin"),
        "{}",
        listed.stdout
    );
    let handed = on_path(&["run", "cascade.yaml"]);
    assert_eq!(handed.code, 42, "{}", handed.all());
    assert_eq!(handed.stdout.trim(), "python-rvbbit got: run cascade.yaml");

    // Another rvbbit before the prefix on PATH: the install says so.
    let behind = run(Command::new(&script)
        .args(["--debug", "--no-build", "--prefix"])
        .arg(&prefix)
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                python.display(),
                prefix.join("bin").display()
            ),
        ));
    behind.expect_code(0);
    assert!(behind.stdout.contains("comes before"), "{}", behind.stdout);

    let removed = run(Command::new(&script)
        .args(["--uninstall", "--prefix"])
        .arg(&prefix));
    removed.expect_code(0);
    assert!(!host.exists());
    assert!(!prefix.join("lib").join("rvbbit").exists());
    assert!(fake.exists(), "rvbbit's own CLI is left alone");
    let again = run(Command::new(&script)
        .args(["--uninstall", "--prefix"])
        .arg(&prefix));
    again.expect_code(0);
    assert!(
        again.stdout.contains("nothing to remove"),
        "{}",
        again.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panic_in_the_host_is_one_line_and_exit_70() {
    // A debug-build failpoint panics in the host itself, before any plugin runs.
    let panicked = run(rvbbit()
        .args(["training", "status"])
        .env("RVBBIT_HOST_FAILPOINT", "panic"));
    panicked.expect_code(70);
    assert!(panicked.stdout.is_empty(), "{}", panicked.stdout);
    let lines: Vec<&str> = panicked.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", panicked.stderr);
    assert!(
        lines[0].starts_with("error: rvbbit hit an internal error (")
            && lines[0].contains("host failpoint reached")
            && lines[0].ends_with("this is a bug, please report it"),
        "{}",
        lines[0]
    );
    assert!(
        !panicked.stderr.contains("stack backtrace"),
        "{}",
        panicked.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_between_statements_stops_there_and_the_next_migrate_resumes() {
    use std::io::BufRead;
    let db = rvbbit_tests::TestDb::with_logs("ctrl_c_after_backfill").await;
    db.exec(&rvbbit_tests::logs::history_sql(200)).await;
    // -v prints each statement on stderr before sending it: Ctrl-C (SIGINT) when the
    // third statement of migration 0005 is sent, after 14 steps of the earlier ones.
    let mut child = rvbbit()
        .args([
            "training",
            "migrate",
            "-v",
            "--url",
            &db.url,
            "--database",
            &db.name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rvbbit starts");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    let marker =
        "-- CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_current_mv";
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.starts_with(marker) {
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(sent.success());
        }
        line.clear();
    }
    let status = child.wait().expect("rvbbit ends");
    let out = reader.join().expect("stdout read");
    assert!(seen.contains(marker), "0005 was never reached:\n{seen}");
    assert_eq!(status.code(), Some(130), "stdout:\n{out}\nstderr:\n{seen}");
    let errors: Vec<&str> = seen.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{seen}");
    assert!(
        errors[0].contains("interrupted: ")
            && errors[0].ends_with("run `rvbbit training migrate` again to resume."),
        "{}",
        errors[0]
    );
    assert!(!seen.contains("panicked"), "{seen}");

    let status_json = db.rvbbit(&["training", "status", "--format", "json"]);
    status_json.expect_code(0);
    let report = rvbbit_tests::json_data(&status_json);
    let fifth = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .find(|m| m["version"] == 5)
        .cloned()
        .expect("migration 5");
    // Recorded as interrupted (not failed): nothing is half-applied and migrate resumes.
    assert_eq!(fifth["state"], "interrupted", "{report:#}");
    let status_text = db.rvbbit(&["training", "status"]);
    status_text.expect_code(0);
    assert!(
        status_text
            .stdout
            .contains("0005_studio_state_table: interrupted at step ")
            && status_text
                .stdout
                .contains("`rvbbit training migrate` resumes it"),
        "{}",
        status_text.stdout
    );
    let resumed = db.rvbbit(&["training", "migrate"]);
    resumed.expect_code(0);
    // The line is broken at spaces to 80 columns: read word by word.
    let words = resumed
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains(
            "resuming: migration 0005_studio_state_table was left interrupted after step "
        ),
        "{}",
        resumed.stdout
    );
    db.rvbbit(&["training", "verify"]).expect_code(0);
    let examples: (u64, u64) = db
        .scalar("SELECT count(), uniqExact(trace_id) FROM training_examples_current FINAL")
        .await;
    assert_eq!(examples, (200, 200), "every example once");
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_examples_stored_twice_and_its_advice_clears_them() {
    let db = rvbbit_tests::TestDb::with_logs("examples_twice").await;
    db.exec(&rvbbit_tests::logs::history_sql(30)).await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.rvbbit(&["training", "verify"]).expect_code(0);
    // A row written again is one example (the table keeps the latest row of a trace at
    // a time, and verify reads it so). Two traces stored at a second time each are not:
    // Studio would list them twice. verify names the count and the way out.
    db.exec(
        "INSERT INTO training_examples_current SELECT * FROM training_examples_current WHERE trace_id IN ('h-1', 'h-2', 'h-3')",
    )
    .await;
    db.rvbbit(&["training", "verify"]).expect_code(0);
    db.exec(
        "INSERT INTO training_examples_current SELECT * REPLACE (timestamp + INTERVAL 1 SECOND AS timestamp) \
         FROM training_examples_current WHERE trace_id IN ('h-1', 'h-2')",
    )
    .await;
    let twice = db.rvbbit(&["training", "verify"]);
    twice.expect_code(1);
    let said = rvbbit_tests::unwrapped(&twice.stdout);
    assert!(
        said.contains("2 traces have examples at more than one time"),
        "{}",
        twice.stdout
    );
    let advice = "ALTER TABLE training_examples_current DELETE WHERE (trace_id, timestamp) NOT IN (SELECT trace_id, min(timestamp) FROM training_examples_current GROUP BY trace_id)";
    assert!(said.contains(advice), "{}", twice.stdout);
    // The advice works: after it, verify passes and each example is there once.
    db.exec(&format!("{advice} SETTINGS mutations_sync = 2"))
        .await;
    db.rvbbit(&["training", "verify"]).expect_code(0);
    let (rows, traces): (u64, u64) = db
        .rows("SELECT count(), uniqExact(trace_id) FROM training_examples_current FINAL")
        .await
        .into_iter()
        .next()
        .expect("one row");
    assert_eq!((rows, traces), (30, 30));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_a_trainable_copy_behind_its_annotation_and_migrate_copies_it_again() {
    let db = rvbbit_tests::TestDb::with_logs("copy_behind").await;
    db.exec(&rvbbit_tests::logs::history_sql(10)).await;
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--confidence",
        "0.9",
        "--by",
        "ana",
        "h-1",
        "h-2",
    ])
    .expect_code(0);
    db.rvbbit(&["training", "verify"]).expect_code(0);
    // The copies rvbbit's retrieval reads lost (as a failed insert into the copy, or a
    // copy dropped by hand, would leave them): verify names them and what to run.
    db.exec("TRUNCATE TABLE training_trainable_examples").await;
    let behind = db.rvbbit(&["training", "verify"]);
    behind.expect_code(1);
    let text = rvbbit_tests::unwrapped(&behind.stdout);
    assert!(
        text.lines().any(|l| l.contains("FAIL trainable examples current")
            && l.contains("2 traces' copies in training_trainable_examples disagree with their latest annotation")
            && l.contains("run `rvbbit training migrate`")),
        "{text}"
    );
    // The advice works: the copies are back, each with its annotation.
    db.rvbbit(&["training", "migrate"]).expect_code(0);
    db.rvbbit(&["training", "verify"]).expect_code(0);
    let copied: Vec<(String, bool, Option<f32>, String)> = db
        .rows(
            "SELECT trace_id, trainable, confidence, annotated_by \
             FROM training_trainable_examples FINAL ORDER BY trace_id",
        )
        .await;
    assert_eq!(
        copied,
        vec![
            ("h-1".to_string(), true, Some(0.9), "ana".to_string()),
            ("h-2".to_string(), true, Some(0.9), "ana".to_string()),
        ]
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn annotations_written_while_the_annotation_view_was_missing_reach_the_examples_after_migrate(
) {
    let db = rvbbit_tests::TestDb::with_logs("filter_missing").await;
    db.exec(&rvbbit_tests::logs::history_sql(10)).await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--by",
        "ana",
        "h-1",
        "h-2",
        "-q",
    ])
    .expect_code(0);
    // The view that writes each annotation into the examples (and from there into the
    // copies rvbbit's retrieval reads) goes missing; meanwhile h-1 is taken back and h-3
    // marked.
    db.exec("DROP VIEW training_examples_current_by_applied_annotation_mv")
        .await;
    db.rvbbit(&[
        "training",
        "annotate",
        "--not-trainable",
        "--by",
        "ana",
        "h-1",
        "-q",
    ])
    .expect_code(0);
    db.rvbbit(&[
        "training",
        "annotate",
        "--trainable",
        "--by",
        "ana",
        "h-3",
        "-q",
    ])
    .expect_code(0);
    let missing = db.rvbbit(&["training", "verify"]);
    missing.expect_code(1);
    assert!(
        rvbbit_tests::unwrapped(&missing.stdout)
            .contains("training_examples_current_by_applied_annotation_mv"),
        "{}",
        missing.stdout
    );
    // migrate creates the view again and catches the examples and the copies up with
    // what it missed.
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    db.rvbbit(&["training", "verify", "-q"]).expect_code(0);
    let trainable: Vec<String> = db
        .rows(
            "SELECT trace_id FROM training_examples_with_annotations WHERE trainable ORDER BY trace_id",
        )
        .await;
    assert_eq!(trainable, ["h-2", "h-3"]);
    let copies: Vec<(String, bool)> = db
        .rows("SELECT trace_id, trainable FROM training_trainable_examples FINAL ORDER BY trace_id")
        .await;
    assert_eq!(
        copies,
        [
            ("h-1".to_string(), false),
            ("h-2".to_string(), true),
            ("h-3".to_string(), true)
        ]
    );
    db.drop().await;
}
