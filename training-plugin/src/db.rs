//! One ClickHouse connection for a command: the connection test and version check,
//! and every request wrapped with a timeout and turned into a classified error.

use crate::connection::Target;
use crate::failure::classified;
use clickhouse::query::Query;
use clickhouse::{Client, Compression, RowOwned, RowRead, RowWrite};
use rvbbit_plugin_api::exit;
use rvbbit_sql_text::server::{error_code, parse_version, Version};
use std::future::Future;

/// The oldest ClickHouse release this version is tested on, and so the oldest it
/// accepts: the end-to-end suite runs on 23.10, 24.8, 25.8 and 26.9 (`scripts/test`).
/// The schema needs `Bool` (21.12), `ADD INDEX IF NOT EXISTS`, the JSON functions,
/// lambdas, `argMax` over tuples and lightweight `DELETE`; the HTTP client sends query
/// parameters as multipart form fields and reads `RowBinaryWithNamesAndTypes`.
pub const MIN_VERSION: Version = Version {
    major: 23,
    minor: 10,
};

/// Error codes meaning "these credentials are refused": UNKNOWN_USER, WRONG_PASSWORD,
/// REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED, AUTHENTICATION_FAILED.
const AUTH_CODES: [u32; 5] = [192, 193, 194, 195, 516];
const UNKNOWN_DATABASE: u32 = 81;
const UNKNOWN_TABLE: u32 = 60;
/// How much longer than `--timeout` the client waits for a statement the server stops
/// after `--timeout` (`execute_bounded`): the server checks its limit between blocks.
const SERVER_TIMEOUT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct Db {
    pub target: Target,
    /// Without a default database: for the checks done before the database is known to exist.
    server: Client,
    /// With `database` set to the target database.
    client: Client,
    pub version: String,
}

impl Db {
    /// Tests the connection and the credentials, then checks the server's version,
    /// with one `SELECT version()` that any ClickHouse release answers (plain
    /// TabSeparated, no compression, no parameters).
    pub async fn connect(target: Target) -> anyhow::Result<Db> {
        let mut server = Client::default()
            .with_url(target.url.as_str())
            .with_user(&target.user)
            .with_compression(Compression::None);
        if !target.password.is_empty() {
            server = server.with_password(&target.password);
        }
        if crate::output::verbose() {
            eprintln!("{}", crate::output::dim("-- SELECT version()"));
        }
        let probe = server.query_raw("SELECT version()");
        let bytes = with_timeout(&target, async {
            probe.fetch_bytes("TabSeparated")?.collect().await
        })
        .await?;
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if parse_version(&text).is_some() {
            // A ClickHouse answered (even one too old): the JSON document names it.
            crate::output::reached(&target.database, &text);
        }
        check_version(&text, &target.address())?;
        let server = server.with_compression(Compression::Lz4);
        let client = server.clone().with_database(&target.database);
        Ok(Db {
            target,
            server,
            client,
            version: text,
        })
    }

    /// A query in the target database. Values go in with `.param()`, never into the SQL.
    pub fn query(&self, sql: &str) -> Query {
        self.client.query_raw(sql)
    }

    /// A query with no default database (for `system.*` and `CREATE DATABASE`).
    pub fn server_query(&self, sql: &str) -> Query {
        self.server.query_raw(sql)
    }

    pub async fn execute(&self, query: Query) -> anyhow::Result<()> {
        self.trace(&query);
        with_timeout(&self.target, query.execute()).await
    }

    /// Runs a statement the server stops itself after `--timeout` (`max_execution_time`,
    /// so that a statement the client gave up on is not left running on the server),
    /// waiting a little longer than that for the server's own answer.
    pub async fn execute_bounded(&self, query: Query) -> anyhow::Result<()> {
        let query = query
            .with_setting(
                "max_execution_time",
                self.server_limit_seconds().to_string(),
            )
            .with_setting("timeout_overflow_mode", "throw");
        self.trace(&query);
        let mut target = self.target.clone();
        target.timeout += SERVER_TIMEOUT_GRACE;
        with_timeout(&target, query.execute()).await
    }

    /// The `max_execution_time` of `execute_bounded`: `--timeout`, in whole seconds.
    pub fn server_limit_seconds(&self) -> u64 {
        limit_seconds(self.target.timeout)
    }

    pub async fn fetch_all<T: RowOwned + RowRead>(&self, query: Query) -> anyhow::Result<Vec<T>> {
        self.trace(&query);
        with_timeout(&self.target, query.fetch_all::<T>()).await
    }

    /// Starts a query whose answer is read as it arrives, in the server's `format`.
    pub fn fetch_bytes(
        &self,
        query: Query,
        format: &str,
    ) -> anyhow::Result<clickhouse::query::BytesCursor> {
        self.trace(&query);
        query
            .fetch_bytes(format)
            .map_err(|e| classify(e, &self.target))
    }

    /// The next piece of a [`Db::fetch_bytes`] answer, `None` at its end; each piece
    /// must arrive within `--timeout`.
    pub async fn next_chunk(
        &self,
        cursor: &mut clickhouse::query::BytesCursor,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(with_timeout(&self.target, cursor.next())
            .await?
            .map(|chunk| chunk.to_vec()))
    }

    pub async fn fetch_one<T: RowOwned + RowRead>(&self, query: Query) -> anyhow::Result<T> {
        self.trace(&query);
        with_timeout(&self.target, query.fetch_one::<T>()).await
    }

    /// Runs a DDL statement; with `cluster`, rendered `ON CLUSTER` with Replicated
    /// engines, waiting for every host and failing with each host that failed.
    pub async fn execute_ddl(&self, sql: &str, cluster: Option<&str>) -> anyhow::Result<()> {
        let Some(cluster) = cluster else {
            return self.execute(self.query(sql)).await;
        };
        let rendered = rvbbit_sql_text::cluster::render(sql, cluster).map_err(|e| {
            classified(
                exit::USAGE,
                format!("cannot run this statement on cluster {cluster}: {e}"),
            )
        })?;
        if rendered == sql {
            return self.execute(self.query(sql)).await;
        }
        let query = self
            .query(&rendered)
            .with_setting("distributed_ddl_output_mode", "never_throw");
        self.trace(&query);
        let bytes = with_timeout(&self.target, async {
            query.fetch_bytes("TabSeparatedWithNames")?.collect().await
        })
        .await?;
        let text = String::from_utf8_lossy(&bytes);
        let hosts = rvbbit_sql_text::cluster::parse_ddl_status(&text).map_err(|e| {
            classified(
                exit::SERVER_ERROR,
                format!("cannot read the per-host status of the distributed DDL on cluster {cluster}: {e}"),
            )
        })?;
        let failed = rvbbit_sql_text::cluster::failed_hosts(&hosts);
        if failed.is_empty() {
            return Ok(());
        }
        Err(classified(
            exit::SERVER_ERROR,
            format!(
                "the statement failed on {} of {} hosts of cluster {cluster}: {}",
                failed.len(),
                hosts.len(),
                failed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }

    /// Writes `rows` into `table` with one INSERT (RowBinary; values never touch SQL).
    pub async fn insert<T: RowOwned + RowWrite>(
        &self,
        table: &str,
        rows: &[T],
    ) -> anyhow::Result<()> {
        if crate::output::verbose() {
            eprintln!(
                "{}",
                crate::output::dim(&format!(
                    "-- INSERT INTO {table} FORMAT RowBinary ({} rows)",
                    rows.len()
                ))
            );
        }
        let write = async {
            let mut insert = self.client.insert::<T>(table).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        };
        with_timeout(&self.target, write).await
    }

    /// With `-v`: the statement on stderr, secrets masked.
    fn trace(&self, query: &Query) {
        if crate::output::verbose() {
            let sql = self.target.redact(&query.sql_display().to_string());
            eprintln!("{}", crate::output::dim(&format!("-- {}", sql.trim())));
        }
    }

    pub async fn database_exists(&self) -> anyhow::Result<bool> {
        let q = self
            .server_query("SELECT count() FROM system.databases WHERE name = {db:String}")
            .param("db", &self.target.database);
        Ok(self.fetch_one::<u64>(q).await? > 0)
    }

    /// Engine of each table or view in the target database, by name.
    pub async fn objects(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let q = self
            .server_query("SELECT name, engine FROM system.tables WHERE database = {db:String}")
            .param("db", &self.target.database);
        Ok(self
            .fetch_all::<(String, String)>(q)
            .await?
            .into_iter()
            .collect())
    }
}

/// The server's answer to `SELECT version()` (`text`, trimmed), from `address`: an
/// error unless it is a ClickHouse version of at least [`MIN_VERSION`].
fn check_version(text: &str, address: &str) -> anyhow::Result<Version> {
    let version = parse_version(text).ok_or_else(|| {
        classified(
            exit::CONNECTION,
            format!(
                "the server at {address} answered, but not like ClickHouse (version() returned {:?}); check --url",
                text.chars().take(80).collect::<String>()
            ),
        )
    })?;
    if version < MIN_VERSION {
        return Err(classified(
            exit::SERVER_TOO_OLD,
            format!(
                "ClickHouse at {address} is version {text}; the training system needs {MIN_VERSION} or newer. Nothing was changed."
            ),
        ));
    }
    Ok(version)
}

/// `timeout` in whole seconds, at least one: a server limit of 0 means none.
fn limit_seconds(timeout: std::time::Duration) -> u64 {
    timeout.as_secs().max(1)
}

/// Runs one request with the target's timeout and classifies its failure.
async fn with_timeout<T>(
    target: &Target,
    request: impl Future<Output = clickhouse::error::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(target.timeout, request).await {
        Ok(result) => result.map_err(|e| classify(e, target)),
        Err(_) => Err(classified(
            exit::CONNECTION,
            format!(
                "ClickHouse at {} did not answer within {} s (raise --timeout if the server is just slow)",
                target.address(),
                target.timeout.as_secs()
            ),
        )),
    }
}

fn classify(err: clickhouse::error::Error, target: &Target) -> anyhow::Error {
    use clickhouse::error::Error as E;
    let address = target.address();
    match err {
        E::Network(source) => {
            let mut reason = source.to_string();
            let mut next = source.source();
            while let Some(cause) = next {
                reason = format!("{reason}: {cause}");
                next = cause.source();
            }
            let hint = if target.url.scheme() == "https" && reason.contains("InvalidContentType") {
                "the server does not speak TLS on this port: use http://, or ClickHouse's https_port"
            } else if reason.contains("certificate") {
                "the server's certificate is not trusted: install its CA in the system store, or point SSL_CERT_FILE at it"
            } else {
                "is the server running, and is this its HTTP port?"
            };
            classified(
                exit::CONNECTION,
                format!("cannot reach ClickHouse at {address} ({reason}); {hint}"),
            )
        }
        E::TimedOut => classified(
            exit::CONNECTION,
            format!("ClickHouse at {address} timed out"),
        ),
        E::BadResponse(text) => {
            let text = text.trim().to_string();
            match error_code(&text) {
                Some(code) if AUTH_CODES.contains(&code) => classified(
                    exit::AUTHENTICATION,
                    format!(
                        "ClickHouse at {address} refused user '{}' (wrong password or unknown user); check --user/--password or RVBBIT_CLICKHOUSE_USER/RVBBIT_CLICKHOUSE_PASSWORD. Server said: {}",
                        target.user,
                        // Newer servers add paragraphs on resetting passwords; the first line says it all.
                        text.lines().next().unwrap_or_default().trim()
                    ),
                ),
                Some(UNKNOWN_DATABASE) => classified(exit::MISSING_PREREQUISITE, format!("ClickHouse said: {text}")),
                Some(UNKNOWN_TABLE) => classified(
                    exit::MISSING_PREREQUISITE,
                    format!("ClickHouse said: {text} (if a training table or view is missing, run `rvbbit training migrate`)"),
                ),
                None => classified(
                    exit::CONNECTION,
                    format!(
                        "the server at {address} answered, but not like ClickHouse's HTTP interface ({:?}); check --url: 8123 is ClickHouse's HTTP port, 9000 its native one",
                        text.chars().take(120).collect::<String>()
                    ),
                ),
                _ => classified(exit::SERVER_ERROR, format!("ClickHouse said: {text}")),
            }
        }
        other => classified(
            exit::SERVER_ERROR,
            format!("talking to ClickHouse at {address}: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Classified;
    use clickhouse::error::Error as E;

    fn target(url: &str) -> Target {
        Target {
            url: url::Url::parse(url).expect("a test URL"),
            database: "rvbbit".into(),
            user: "alice".into(),
            password: String::new(),
            timeout: std::time::Duration::from_secs(30),
        }
    }

    /// The exit code and message of a classified error.
    fn parts(err: &anyhow::Error) -> (i32, String) {
        let c = err
            .downcast_ref::<Classified>()
            .expect("a classified error");
        (c.exit_code, c.message.clone())
    }

    #[test]
    fn a_supported_version_is_accepted_and_an_older_one_refused() {
        assert_eq!(
            check_version("23.10.1.1", "http://h:8123").expect("23.10 is supported"),
            MIN_VERSION
        );
        assert!(check_version("26.9.0.1", "http://h:8123").is_ok());
        let (code, message) = parts(&check_version("23.8.9.1", "http://h:8123").unwrap_err());
        assert_eq!(code, exit::SERVER_TOO_OLD);
        assert!(
            message.contains("http://h:8123 is version 23.8.9.1")
                && message.contains("needs 23.10 or newer")
                && message.contains("Nothing was changed"),
            "{message}"
        );
    }

    #[test]
    fn an_answer_that_is_no_version_is_not_clickhouse() {
        let (code, message) =
            parts(&check_version(&"<html>".repeat(40), "http://h:80").unwrap_err());
        assert_eq!(code, exit::CONNECTION);
        assert!(message.contains("not like ClickHouse"), "{message}");
        // Cut at 80 characters.
        assert!(
            message.contains(&"<html>".repeat(13)) && !message.contains(&"<html>".repeat(14)),
            "{message}"
        );
    }

    #[test]
    fn the_server_limit_is_whole_seconds_and_never_zero() {
        use std::time::Duration;
        assert_eq!(limit_seconds(Duration::from_millis(400)), 1);
        assert_eq!(limit_seconds(Duration::from_millis(2900)), 2);
        assert_eq!(limit_seconds(Duration::from_secs(180)), 180);
    }

    #[test]
    fn refused_credentials_name_the_user_and_the_first_line_only() {
        let t = target("http://db.example:8123");
        for code in AUTH_CODES {
            let said = format!("Code: {code}. DB::Exception: alice: Authentication failed\nTo reset the password, see the docs");
            let (exit_code, message) = parts(&classify(E::BadResponse(said), &t));
            assert_eq!(exit_code, exit::AUTHENTICATION, "{code}");
            assert!(message.contains("refused user 'alice'"), "{message}");
            assert!(message.ends_with("Authentication failed"), "{message}");
        }
    }

    #[test]
    fn server_errors_are_classified_by_their_code() {
        let t = target("http://db.example:8123");
        let cases = [
            (
                "Code: 81. DB::Exception: Database nope does not exist",
                exit::MISSING_PREREQUISITE,
                None,
            ),
            (
                "Code: 60. DB::Exception: Table rvbbit.x does not exist",
                exit::MISSING_PREREQUISITE,
                Some("run `rvbbit training migrate`"),
            ),
            (
                "Code: 62. DB::Exception: Syntax error",
                exit::SERVER_ERROR,
                None,
            ),
            (
                "404 page not found",
                exit::CONNECTION,
                Some("8123 is ClickHouse's HTTP port, 9000 its native one"),
            ),
        ];
        for (said, expected, hint) in cases {
            let (code, message) = parts(&classify(E::BadResponse(format!("  {said}\n")), &t));
            assert_eq!(code, expected, "{said}: {message}");
            assert!(
                hint.is_none_or(|h| message.contains(h)),
                "{said}: {message}"
            );
        }
    }

    #[test]
    fn network_failures_say_why_with_the_causes_and_a_hint() {
        #[derive(Debug)]
        struct Cause(&'static str, Option<Box<Cause>>);
        impl std::fmt::Display for Cause {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Cause {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|c| c as _)
            }
        }
        let network =
            |outer, inner| E::Network(Box::new(Cause(outer, Some(Box::new(Cause(inner, None))))));
        let (code, message) = parts(&classify(
            network("client error", "connection refused"),
            &target("http://h:8123"),
        ));
        assert_eq!(code, exit::CONNECTION);
        assert!(
            message.contains("(client error: connection refused); is the server running"),
            "{message}"
        );
        let (_, message) = parts(&classify(
            network("tls", "InvalidContentType"),
            &target("https://h:8123"),
        ));
        assert!(
            message.contains("does not speak TLS on this port"),
            "{message}"
        );
        // The same cause over http:// is no TLS question.
        let (_, message) = parts(&classify(
            network("tls", "InvalidContentType"),
            &target("http://h:8123"),
        ));
        assert!(message.contains("is the server running"), "{message}");
        let (_, message) = parts(&classify(
            network("invalid peer certificate", "UnknownIssuer"),
            &target("https://h:8443"),
        ));
        assert!(message.contains("certificate is not trusted"), "{message}");
    }

    #[test]
    fn a_timeout_is_a_connection_failure() {
        let (code, message) = parts(&classify(E::TimedOut, &target("http://h:8123")));
        assert_eq!(
            (code, message.as_str()),
            (exit::CONNECTION, "ClickHouse at http://h:8123 timed out")
        );
    }
}
