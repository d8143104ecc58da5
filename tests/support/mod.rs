//! Support for the end-to-end tests: the built `rvbbit` binary, a real ClickHouse
//! engine (the local chdb-backed server from `scripts/dev-clickhouse`), one fresh
//! database per test, and rows written the way rvbbit writes them.
//!
//! The engine: `RVBBIT_TEST_CLICKHOUSE_URL` if set (the test script starts one),
//! otherwise a private server started for this test process on a free port, which
//! exits by itself when the process ends. The too-old server (Debian's 18.16) comes
//! from `RVBBIT_TEST_OLD_CLICKHOUSE_URL` and `RVBBIT_TEST_OLD_CLICKHOUSE_PASSWORD`,
//! set by `scripts/test`.

pub mod ledger_fixture;
pub mod logs;
pub mod rvbbit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>`, where cargo put this test binary's siblings.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .expect("deps dir")
        .parent()
        .expect("profile dir")
        .to_path_buf();
    assert!(
        dir.join("rvbbit").is_file() && dir.join(format!("libtraining_plugin{}", std::env::consts::DLL_SUFFIX)).is_file(),
        "build the workspace before the tests (`cargo build --workspace`, which scripts/test does): no rvbbit binary or plugin in {}",
        dir.display()
    );
    dir
}

/// The `rvbbit` binary with a clean environment: no ClickHouse variables, no other
/// rvbbit on PATH, plugins only from next to the binary (plus `RVBBIT_PLUGIN_PATH`
/// when a test sets it).
pub fn rvbbit() -> Command {
    let mut command = Command::new(bin_dir().join("rvbbit"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RVBBIT_") {
            command.env_remove(key);
        }
    }
    command
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

/// What a finished command printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The keys every `--format json` document has, in their order (docs/JSON.md).
pub const ENVELOPE_KEYS: [&str; 7] = [
    "schema_version",
    "command",
    "ok",
    "database",
    "server_version",
    "data",
    "error",
];

/// A JSON object's members in the order they are written.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The members of the JSON object `text`, in the order they are written.
pub fn ordered_members(text: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    serde_json::from_str::<Members>(text)
        .map(|m| m.0)
        .map_err(|e| e.to_string())
}

/// The keys of the `data` object of the document `run` printed, in the order written
/// (empty when `data` is not an object).
#[track_caller]
pub fn data_keys(run: &Run) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Document {
        data: serde_json::Value,
    }
    #[derive(serde::Deserialize)]
    struct DataObject {
        data: Members,
    }
    let document: Document = serde_json::from_str(&run.stdout).expect("a JSON document");
    if !document.data.is_object() {
        return Vec::new();
    }
    let object: DataObject = serde_json::from_str(&run.stdout).expect("a JSON document");
    object.data.0.into_iter().map(|(k, _)| k).collect()
}

/// The one JSON document a command printed under `--format json`: checks its seven
/// keys are there in order (and nothing else on stdout), returns it.
#[track_caller]
pub fn json_document(run: &Run) -> serde_json::Value {
    let members = ordered_members(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON object ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ENVELOPE_KEYS, "the envelope's keys:\n{}", run.stdout);
    assert_eq!(members[0].1, 1, "schema_version");
    serde_json::Value::Object(members.into_iter().collect())
}

/// The `data` of the JSON document a command printed (see [`json_document`]).
#[track_caller]
pub fn json_data(run: &Run) -> serde_json::Value {
    json_document(run)["data"].clone()
}

/// verify's checklist with each check on one line again: on a narrow terminal (80
/// columns when output is captured) a check's detail is printed below its name,
/// indented by seven spaces and broken at spaces; this joins those lines back.
pub fn unwrapped(stdout: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in stdout.lines() {
        match (line.strip_prefix("       "), lines.last_mut()) {
            (Some(rest), Some(last)) => {
                // The name and its detail were two spaces apart; the detail's words one.
                last.push_str(if continuing { " " } else { "  " });
                last.push_str(rest.trim_start());
                continuing = true;
            }
            _ => {
                lines.push(line.to_string());
                continuing = false;
            }
        }
    }
    lines.join("\n")
}

pub fn run(command: &mut Command) -> Run {
    Run::from_output(command.output().expect("rvbbit runs"))
}

struct Engine {
    url: String,
    _child: Option<std::process::Child>,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

/// URL of the ClickHouse engine the tests use.
pub fn engine_url() -> String {
    ENGINE
        .get_or_init(|| {
            if let Ok(url) = std::env::var("RVBBIT_TEST_CLICKHOUSE_URL") {
                return Engine { url, _child: None };
            }
            let port = free_port();
            let data =
                std::env::temp_dir().join(format!("rvbbit-test-engine-{}", std::process::id()));
            let child = Command::new(repo_root().join("scripts").join("dev-clickhouse"))
                .args(["serve", "--port", &port.to_string(), "--data-dir"])
                .arg(&data)
                .args(["--parent-pid", &std::process::id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("scripts/dev-clickhouse starts");
            let url = format!("http://127.0.0.1:{port}");
            wait_for_ping(&url, Duration::from_secs(120));
            Engine {
                url,
                _child: Some(child),
            }
        })
        .url
        .clone()
}

/// The too-old server's URL and password (see the module docs).
pub fn old_server() -> (String, String) {
    let url = std::env::var("RVBBIT_TEST_OLD_CLICKHOUSE_URL").expect(
        "RVBBIT_TEST_OLD_CLICKHOUSE_URL is not set: run the tests with scripts/test, which starts Debian's ClickHouse 18.16 for them",
    );
    let password = std::env::var("RVBBIT_TEST_OLD_CLICKHOUSE_PASSWORD")
        .unwrap_or_else(|_| "old-secret".into());
    (url, password)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private local ClickHouse engine (for tests that stop or kill it), serving `data`
/// on `port`; it exits by itself when the test process ends. Returns once it answers.
pub fn start_private_engine(port: u16, data: &Path) -> std::process::Child {
    // The engine's log goes beside its data (appended across restarts), so a test that
    // fails on it can show what the engine was doing: `private_engine_log`.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(private_engine_log_path(data))
        .expect("the private engine's log file opens");
    let log_err = log.try_clone().expect("the log file handle clones");
    let child = Command::new(repo_root().join("scripts").join("dev-clickhouse"))
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(data)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .expect("scripts/dev-clickhouse serve starts");
    wait_for_ping(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(120),
    );
    child
}

fn private_engine_log_path(data: &Path) -> std::path::PathBuf {
    data.with_extension("log")
}

/// The last `lines` lines of the log of the engine `start_private_engine` started on
/// `data` (empty if there is none).
pub fn private_engine_log(data: &Path, lines: usize) -> String {
    let all = std::fs::read_to_string(private_engine_log_path(data)).unwrap_or_default();
    let kept: Vec<&str> = all.lines().rev().take(lines).collect();
    kept.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Removes the data and the log of an engine `start_private_engine` started.
pub fn remove_private_engine(data: &Path) {
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_file(private_engine_log_path(data));
}

/// This machine's host name, as rvbbit records it (`gethostname`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("/proc/sys/kernel/hostname")
        .trim()
        .to_string()
}

fn wait_for_ping(url: &str, limit: Duration) {
    let address = url.trim_start_matches("http://").to_string();
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.contains("Ok.") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the ClickHouse engine at {url} did not answer /ping within {limit:?}");
}

/// A fresh database on the engine, dropped when the test passes.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub client: clickhouse::Client,
}

impl TestDb {
    /// An empty database named after the test.
    pub async fn empty(label: &str) -> TestDb {
        TestDb::empty_on(&engine_url(), label).await
    }

    /// An empty database named after the test, on the engine at `url` (a private one).
    pub async fn empty_on(url: &str, label: &str) -> TestDb {
        let url = url.to_string();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("t_{label}_{:x}", nanos % 0xffff_ffff_ffff);
        let server = clickhouse::Client::default().with_url(&url);
        server
            .query(&format!("CREATE DATABASE `{name}`"))
            .execute()
            .await
            .expect("create test database");
        let client = server.with_database(&name);
        TestDb { name, url, client }
    }

    /// A database with rvbbit's `unified_logs`, as rvbbit creates it.
    pub async fn with_logs(label: &str) -> TestDb {
        TestDb::with_logs_on(&engine_url(), label).await
    }

    /// [`TestDb::with_logs`] on the engine at `url` (a private one).
    pub async fn with_logs_on(url: &str, label: &str) -> TestDb {
        let db = TestDb::empty_on(url, label).await;
        let ddl = std::fs::read_to_string(repo_root().join("tests/fixtures/unified_logs.sql"))
            .expect("fixture");
        let ddl: String = ddl
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        db.client
            .query_raw(ddl.trim().trim_end_matches(';'))
            .execute()
            .await
            .expect("create unified_logs");
        db
    }

    /// The same database through a new connection (after its engine was restarted).
    pub fn reconnect(&self) -> TestDb {
        TestDb {
            name: self.name.clone(),
            url: self.url.clone(),
            client: clickhouse::Client::default()
                .with_url(&self.url)
                .with_database(&self.name),
        }
    }

    /// `rvbbit <args> --url <engine> --database <this>`, started and not waited for
    /// (standard output and error piped).
    pub fn spawn_rvbbit(&self, args: &[&str]) -> std::process::Child {
        rvbbit()
            .args(args)
            .args(["--url", &self.url, "--database", &self.name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rvbbit starts")
    }

    /// `rvbbit <args> --url <engine> --database <this>`.
    pub fn rvbbit(&self, args: &[&str]) -> Run {
        run(rvbbit()
            .args(args)
            .args(["--url", &self.url, "--database", &self.name]))
    }

    /// Like [`TestDb::rvbbit`], with `input` on standard input.
    pub fn rvbbit_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = rvbbit()
            .args(args)
            .args(["--url", &self.url, "--database", &self.name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rvbbit starts");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("write stdin");
        Run::from_output(child.wait_with_output().expect("rvbbit runs"))
    }

    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.client
            .query_raw(sql)
            .fetch_one::<T>()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.client
            .query_raw(sql)
            .fetch_all::<T>()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The rows `sql` returns, each a JSON object (`FORMAT JSONEachRow`): the SQL is
    /// sent as it is, as rvbbit's clients send theirs.
    pub async fn json_rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let bytes = self
            .client
            .query_raw(sql)
            .fetch_bytes("JSONEachRow")
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{sql}: {e}: {l}")))
            .collect()
    }

    /// Waits until every mutation of `table` is done (rvbbit's cost updates are
    /// asynchronous mutations).
    pub async fn wait_for_mutations(&self, table: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let listed: u64 = self
            .scalar("SELECT count() FROM system.tables WHERE database = 'system' AND name = 'mutations'")
            .await;
        if listed == 0 {
            // chdb 1.4.1 (23.10) has no system.mutations; callers also wait for the
            // values themselves.
            return;
        }
        loop {
            let pending: u64 = self
                .scalar(&format!(
                    "SELECT count() FROM system.mutations WHERE database = '{}' AND table = '{table}' AND NOT is_done",
                    self.name
                ))
                .await;
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{pending} mutations of {table} not done after 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the confidence worker's annotations waiting in
    /// `training_scores_buffer` (migration 6) have been applied: the buffer passes them
    /// on within 2 seconds, which is when Studio shows them. Nothing to wait for where
    /// the buffer does not exist.
    pub async fn settle_scores(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let exists: u64 = self
            .scalar(&format!(
                "SELECT count() FROM system.tables WHERE database = '{}' AND name = 'training_scores_buffer'",
                self.name
            ))
            .await;
        if exists == 0 {
            return;
        }
        loop {
            let waiting: u64 = self
                .scalar("SELECT count() FROM training_scores_buffer")
                .await;
            if waiting == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} scores still in training_scores_buffer after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn exec(&self, sql: &str) {
        self.client
            .query_raw(sql)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The `CREATE` statement of every object, by name: to compare definitions.
    pub async fn definitions(&self) -> Vec<(String, String)> {
        self.rows::<(String, String)>(&format!(
            "SELECT name, create_table_query FROM system.tables WHERE database = '{}' ORDER BY name",
            self.name
        ))
        .await
    }

    /// Runs the SQL file `tests/fixtures/<relative>` in this database, one statement at a
    /// time: `--` comment lines are dropped and statements are split at `;` (so the
    /// fixture must not use `;` inside a string).
    pub async fn apply_fixture(&self, relative: &str) {
        let path = repo_root().join("tests/fixtures").join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            self.exec(statement).await;
        }
    }

    /// Every row of `training_annotations`, every column, ordered by trace and time:
    /// to check that something kept the annotations value for value. `confidence` is
    /// read as `Nullable(Float32)` whatever its type (a `Float32` 1.0 and a
    /// `Nullable(Float32)` 1.0 compare equal), `trace_id` and `annotated_at` as text.
    pub async fn snapshot_annotations(&self) -> Vec<AnnotationRow> {
        self.rows(
            "SELECT toString(trace_id) AS trace_id, trainable, verified, \
             CAST(confidence AS Nullable(Float32)) AS confidence, notes, tags, \
             toString(annotated_at) AS annotated_at, annotated_by \
             FROM training_annotations \
             ORDER BY trace_id, annotated_at, trainable, verified, confidence, notes, annotated_by",
        )
        .await
    }

    /// Row count and a checksum of every row of `unified_logs`: to check it was not touched.
    pub async fn logs_fingerprint(&self) -> (u64, u64) {
        self.scalar(
            "SELECT count(), sum(cityHash64(formatRow('TabSeparated', *))) FROM unified_logs",
        )
        .await
    }

    pub async fn drop(self) {
        self.exec(&format!("DROP DATABASE IF EXISTS `{}` SYNC", self.name))
            .await;
    }
}

/// One row of `training_annotations` (see [`TestDb::snapshot_annotations`]).
#[derive(clickhouse::Row, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct AnnotationRow {
    pub trace_id: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: String,
    pub tags: Vec<String>,
    pub annotated_at: String,
    pub annotated_by: String,
}

/// Compares `actual` with `tests/snapshots/<name>.txt` (trailing spaces ignored).
/// `UPDATE_SNAPSHOTS=1` rewrites the file instead.
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = repo_root()
        .join("tests")
        .join("snapshots")
        .join(format!("{name}.txt"));
    let normalise = |s: &str| {
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    };
    let actual = normalise(actual);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("snapshots dir"))
            .expect("create snapshots dir");
        std::fs::write(&path, format!("{actual}\n")).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    let expected = normalise(&expected);
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines().chain(std::iter::repeat("")))
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "output differs from {} ({} lines expected, {} actual):\n{}\n--- actual ---\n{actual}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Runs `command` under a pseudo-terminal (util-linux `script`), so the program sees
/// a terminal on stdin, stdout and stderr. Returns what the terminal showed.
pub fn run_in_terminal(command: &Command) -> Run {
    let mut line = shell_quote(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    let mut script = Command::new("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let mut run = run(&mut script);
    run.stdout = run.stdout.replace("\r\n", "\n");
    run
}

/// The `script` command that runs `command` under a pseudo-terminal `columns` wide.
fn sized_terminal(command: &Command, columns: u16) -> Command {
    let mut line = format!("stty cols {columns} rows 24 && exec ");
    line.push_str(&shell_quote(&command.get_program().to_string_lossy()));
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    script
}

/// [`run_in_terminal`] on a terminal `columns` wide.
pub fn run_in_terminal_of(command: &Command, columns: u16) -> Run {
    let mut script = sized_terminal(command, columns);
    script.stdin(Stdio::null());
    let mut run = run(&mut script);
    run.stdout = run.stdout.replace("\r\n", "\n");
    run
}

/// `command` started under a pseudo-terminal `columns` wide, with what is written to
/// its standard input typed on that terminal (`\x03` is Ctrl-C) and the terminal's
/// screen output on its standard output.
pub fn spawn_in_terminal_of(command: &Command, columns: u16) -> std::process::Child {
    sized_terminal(command, columns)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts")
}

/// `command` on a terminal `columns` wide: once it has shown `shown`, `keys` are typed
/// on the terminal (`\x03` is Ctrl-C); returns its exit code and everything the
/// terminal showed (`\r\n` as `\n`).
pub fn type_when_shown(
    command: &Command,
    columns: u16,
    shown: &str,
    keys: &[u8],
) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let mut child = spawn_in_terminal_of(command, columns);
    let mut stdout = child.stdout.take().expect("piped");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(shown) {
        let n = stdout.read(&mut buffer).expect("read the terminal");
        assert!(
            n > 0,
            "the terminal closed before it showed {shown:?}:\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..n]);
    }
    child
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(keys)
        .expect("type on the terminal");
    stdout.read_to_end(&mut seen).expect("read the rest");
    let status = child.wait().expect("script ends");
    (
        status.code(),
        String::from_utf8_lossy(&seen).replace("\r\n", "\n"),
    )
}

/// What a person sees of terminal output, line by line: escape codes removed, and a
/// line redrawn with carriage returns split into each state it was drawn in.
pub fn screen_lines(output: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split('\n')
        .flat_map(|line| line.split('\r'))
        .map(str::to_string)
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
