//! The migration ledger: one row per plugin and migration in `_rvbbit_plugin_migrations`
//! (version, name, checksum of its SQL, statements done out of total, status, who ran
//! it, when, how long, the error if any). `migrate` writes it before and after every
//! statement, so a run that died half way is visible and the next one resumes from it.
//!
//! ClickHouse cannot update a row in place: every write is a new row, and the table is
//! a ReplacingMergeTree by `updated_at`, read with FINAL, so the latest write wins.

use crate::db::Db;
use crate::migrations::Migration;
use crate::model::LedgerStatus;
use anyhow::Context;
use sha2::{Digest, Sha256};

/// The ledger table. The leading underscore and the `rvbbit_plugin` prefix keep it
/// apart from rvbbit's own tables; the `plugin` column keeps plugins apart.
pub const LEDGER: &str = "_rvbbit_plugin_migrations";
/// This plugin's name in the ledger.
pub const PLUGIN: &str = "training";

pub const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS _rvbbit_plugin_migrations
(
    plugin           LowCardinality(String),
    version          UInt32,
    name             String,
    checksum         String,
    statements_done  UInt32,
    statements_total UInt32,
    status           LowCardinality(String),
    host             String,
    pid              UInt32,
    started_at       DateTime64(6),
    finished_at      Nullable(DateTime64(6)),
    duration_ms      UInt64,
    error            String,
    note             String,
    updated_at       DateTime64(6) DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (plugin, version)";

/// SHA-256 of a migration's SQL text, in hex.
pub fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The latest ledger row of one migration.
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug, Clone)]
pub struct Entry {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    pub statements_done: u32,
    pub statements_total: u32,
    pub status: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: u64,
    pub error: String,
    pub note: String,
}

impl Entry {
    /// What `status` says.
    pub fn status(&self) -> LedgerStatus {
        LedgerStatus::parse(&self.status)
    }
}

/// This plugin's ledger rows, by version; empty when the ledger table does not exist.
pub async fn read(db: &Db) -> anyhow::Result<Vec<Entry>> {
    if !db.objects().await?.contains_key(LEDGER) {
        return Ok(Vec::new());
    }
    let q = db
        .query(&format!(
            "SELECT version, name, checksum, statements_done, statements_total, toString(status) AS status, host, pid, \
             toString(started_at, 'UTC') AS started_at, if(finished_at IS NULL, NULL, toString(finished_at, 'UTC')) AS finished_at, duration_ms, error, note \
             FROM {LEDGER} FINAL WHERE plugin = {{plugin:String}} ORDER BY version"
        ))
        .param("plugin", PLUGIN);
    db.fetch_all::<Entry>(q)
        .await
        .with_context(|| format!("reading the migration ledger {LEDGER}"))
}

/// Who is running this migrate: host name and process id.
pub fn whoami() -> (String, u32) {
    (hostname(), std::process::id())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// One run of one migration, writing its progress to the ledger.
pub struct Run<'a> {
    db: &'a Db,
    pub version: u32,
    name: &'static str,
    checksum: String,
    pub total: u32,
    started_at: String,
    started: std::time::Instant,
    note: String,
}

impl<'a> Run<'a> {
    /// Starts (or resumes) `migration`, whose steps number `total`; records `done`
    /// steps as already done.
    pub async fn start(
        db: &'a Db,
        migration: &Migration,
        total: u32,
        done: u32,
        note: &str,
    ) -> anyhow::Result<Run<'a>> {
        let started_at = db
            .fetch_one::<String>(db.query("SELECT toString(now64(6), 'UTC')"))
            .await?;
        let run = Run {
            db,
            version: migration.version,
            name: migration.name,
            checksum: checksum(migration.sql),
            total,
            started_at,
            started: std::time::Instant::now(),
            note: note.to_string(),
        };
        run.write(done, LedgerStatus::Running, "").await?;
        Ok(run)
    }

    pub async fn progress(&self, done: u32) -> anyhow::Result<()> {
        self.write(done, LedgerStatus::Running, "").await
    }

    pub async fn applied(&self) -> anyhow::Result<()> {
        self.write(self.total, LedgerStatus::Applied, "").await
    }

    pub async fn failed(&self, done: u32, error: &str) -> anyhow::Result<()> {
        self.write(done, LedgerStatus::Failed, error).await
    }

    /// Ctrl-C between two steps: recorded as such, so `status` and the next `migrate`
    /// say the run was interrupted (and is resumed), not that it failed.
    pub async fn interrupted(&self, done: u32, message: &str) -> anyhow::Result<()> {
        self.write(done, LedgerStatus::Interrupted, message).await
    }

    async fn write(&self, done: u32, status: LedgerStatus, error: &str) -> anyhow::Result<()> {
        let (host, pid) = whoami();
        let finished = status != LedgerStatus::Running;
        let q = self
            .db
            .query(&format!(
                "INSERT INTO {LEDGER} (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, started_at, finished_at, duration_ms, error, note) \
                 SELECT {{plugin:String}}, {{version:UInt32}}, {{name:String}}, {{checksum:String}}, {{done:UInt32}}, {{total:UInt32}}, {{status:String}}, \
                 {{host:String}}, {{pid:UInt32}}, toDateTime64({{started:String}}, 6, 'UTC'), if({{finished:UInt8}} = 1, now64(6), NULL), {{ms:UInt64}}, {{error:String}}, {{note:String}}"
            ))
            .param("plugin", PLUGIN)
            .param("version", self.version)
            .param("name", self.name)
            .param("checksum", &self.checksum)
            .param("done", done)
            .param("total", self.total)
            .param("status", status.as_str())
            .param("host", host)
            .param("pid", pid)
            .param("started", &self.started_at)
            .param("finished", u8::from(finished))
            .param("ms", u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
            .param("error", error)
            .param("note", &self.note);
        self.db.execute(q).await.with_context(|| {
            format!(
                "recording migration {:04}_{} in {LEDGER}",
                self.version, self.name
            )
        })
    }
}

/// Rewrites an applied migration's checksum to the current file's (after `--repair`
/// has put its objects right), keeping the rest of the row and saying so in `note`.
pub async fn accept_checksum(db: &Db, entry: &Entry, migration: &Migration) -> anyhow::Result<()> {
    let q = db
        .query(&format!(
            "INSERT INTO {LEDGER} (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, started_at, finished_at, duration_ms, error, note) \
             SELECT plugin, version, name, {{checksum:String}}, statements_done, statements_total, status, host, pid, started_at, finished_at, duration_ms, error, \
             concat(note, if(note = '', '', '; '), 'checksum ', substring(checksum, 1, 12), ' replaced by ', substring({{checksum:String}}, 1, 12), ' by migrate --repair on ', toString(now64(0))) \
             FROM {LEDGER} FINAL WHERE plugin = {{plugin:String}} AND version = {{version:UInt32}}"
        ))
        .param("checksum", checksum(migration.sql))
        .param("plugin", PLUGIN)
        .param("version", entry.version);
    db.execute(q).await.with_context(|| {
        format!(
            "recording the new checksum of migration {:04}",
            entry.version
        )
    })
}

/// The note of runs that upgrade a hand-applied install, until the upgrade is complete.
pub const UPGRADING: &str = "upgrading a hand-applied install";
/// The note once it is.
pub const UPGRADED: &str = "upgraded a hand-applied install";

/// Replaces `from` by `to` in the notes of this plugin's ledger rows.
pub async fn replace_note(db: &Db, from: &str, to: &str) -> anyhow::Result<()> {
    let q = db
        .query(&format!(
            "INSERT INTO {LEDGER} (plugin, version, name, checksum, statements_done, statements_total, status, host, pid, started_at, finished_at, duration_ms, error, note) \
             SELECT plugin, version, name, checksum, statements_done, statements_total, status, host, pid, started_at, finished_at, duration_ms, error, \
             replaceAll(note, {{from:String}}, {{to:String}}) \
             FROM {LEDGER} FINAL WHERE plugin = {{plugin:String}} AND position(note, {{from:String}}) > 0"
        ))
        .param("from", from)
        .param("to", to)
        .param("plugin", PLUGIN);
    db.execute(q)
        .await
        .with_context(|| format!("recording in {LEDGER} that the upgrade is complete"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(checksum("a"), checksum("a "));
    }

    #[test]
    fn a_row_reads_back_the_status_it_was_written_with_and_an_unknown_one_as_running() {
        let mut entry = Entry {
            version: 1,
            name: "first".into(),
            checksum: checksum(""),
            statements_done: 0,
            statements_total: 1,
            status: String::new(),
            host: hostname(),
            pid: std::process::id(),
            started_at: "2025-05-01 08:00:00.000000".into(),
            finished_at: None,
            duration_ms: 0,
            error: String::new(),
            note: String::new(),
        };
        for status in [
            LedgerStatus::Running,
            LedgerStatus::Applied,
            LedgerStatus::Failed,
            LedgerStatus::Interrupted,
        ] {
            entry.status = status.as_str().to_string();
            assert_eq!(entry.status(), status);
        }
        entry.status = "Applied".into();
        assert_eq!(entry.status(), LedgerStatus::Running, "case matters");
    }
}
