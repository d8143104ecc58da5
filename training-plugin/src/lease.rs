//! The migrate lease: at most one `migrate` changes a database at a time. ClickHouse
//! has no advisory locks and no compare-and-set, so the lease is rows in
//! `_rvbbit_plugin_leases`, next to the ledger: a run claims it with a row (server
//! time), waits a moment for concurrent claims to become visible, and holds it if its
//! claim is the earliest live one (ties broken by token); the others wait. The holder
//! renews its claim in the background; a holder that dies stops renewing and its claim
//! expires, or, on the same host, is broken at once when its process is gone.

use crate::db::Db;
use crate::failure::classified;
use crate::ledger::{hostname, PLUGIN};
use anyhow::Context;
use rvbbit_plugin_api::exit;
use std::time::{Duration, Instant};

pub const LEASES: &str = "_rvbbit_plugin_leases";

pub const CREATE_LEASES: &str = "CREATE TABLE IF NOT EXISTS _rvbbit_plugin_leases
(
    plugin      LowCardinality(String),
    token       String,
    host        String,
    pid         UInt32,
    acquired_at DateTime64(6),
    expires_at  DateTime64(6),
    released    UInt8,
    updated_at  DateTime64(6) DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (plugin, token)
TTL toDateTime(updated_at) + INTERVAL 30 DAY";

/// How long a claim lives without renewal.
const TTL_SECONDS: u32 = 60;
/// How long a claim is given to meet concurrent claims before it counts.
const SETTLE: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(500);

/// A live claim.
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug, Clone)]
pub struct Holder {
    pub token: String,
    pub host: String,
    pub pid: u32,
    pub acquired_at: String,
    /// Seconds until the claim expires unless renewed.
    pub expires_in: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migrate on host {} (pid {}), running since {}",
            self.host, self.pid, self.acquired_at
        )
    }
}

/// Live claims, earliest first; empty if the lease table does not exist.
pub async fn holders(db: &Db) -> anyhow::Result<Vec<Holder>> {
    if !db.objects().await?.contains_key(LEASES) {
        return Ok(Vec::new());
    }
    let q = db
        .query(&format!(
            "SELECT token, host, pid, toString(acquired_at) AS acquired_at, toInt64(dateDiff('second', now64(6), expires_at)) AS expires_in \
             FROM {LEASES} FINAL WHERE plugin = {{plugin:String}} AND released = 0 AND expires_at > now64(6) \
             ORDER BY acquired_at, token"
        ))
        .param("plugin", PLUGIN);
    db.fetch_all::<Holder>(q)
        .await
        .with_context(|| format!("reading the migrate lease in {LEASES}"))
}

/// A held lease. Renewed in the background until [`Lease::release`].
pub struct Lease {
    db: Db,
    token: String,
    renewer: tokio::task::JoinHandle<()>,
}

/// Takes the lease, waiting up to `wait` for another run to finish. `waiting` is
/// called once, with the holder, when this run has to wait.
pub async fn acquire(
    db: &Db,
    wait: Duration,
    mut waiting: impl FnMut(&Holder),
) -> anyhow::Result<Lease> {
    let host = hostname();
    let token = format!(
        "{host}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let start = Instant::now();
    let mut told = false;
    loop {
        let live = holders(db).await?;
        if let Some(other) = live.iter().find(|h| h.token != token) {
            if other.host == host && !process_alive(other.pid) {
                // Its process is gone: nobody will renew or release it.
                write(db, &other.token, &other.host, other.pid, 1).await?;
                continue;
            }
            if !told {
                waiting(other);
                told = true;
            }
            if start.elapsed() >= wait {
                return Err(classified(
                    exit::BUSY,
                    format!(
                        "another {other} still holds the migrate lease of database {} after {} s of waiting; nothing was changed. Run again when it has finished (`rvbbit training status` shows it), or wait longer with --wait",
                        db.target.database,
                        wait.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        write(db, &token, &host, std::process::id(), 0).await?;
        tokio::time::sleep(SETTLE).await;
        let live = holders(db).await?;
        if live.first().is_some_and(|h| h.token == token) {
            let renewer = tokio::spawn(renew(db.clone(), token.clone(), host));
            return Ok(Lease {
                db: db.clone(),
                token,
                renewer,
            });
        }
        // Another claim came first: withdraw ours and wait for it.
        write(db, &token, &host, std::process::id(), 1).await?;
    }
}

impl Lease {
    /// Gives the lease back.
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewer.abort();
        write(&self.db, &self.token, &hostname(), std::process::id(), 1).await
    }
}

async fn renew(db: Db, token: String, host: String) {
    loop {
        tokio::time::sleep(Duration::from_secs(u64::from(TTL_SECONDS / 3))).await;
        // A failed renewal is not fatal here: the statement the run is waiting on
        // fails the same way and ends the run.
        let _ = write(&db, &token, &host, std::process::id(), 0).await;
    }
}

/// Claims (released = 0, expiring TTL_SECONDS from now) or releases (1) `token`.
async fn write(db: &Db, token: &str, host: &str, pid: u32, released: u8) -> anyhow::Result<()> {
    let q = db
        .query(&format!(
            "INSERT INTO {LEASES} (plugin, token, host, pid, acquired_at, expires_at, released) \
             SELECT {{plugin:String}}, {{token:String}}, {{host:String}}, {{pid:UInt32}}, \
             (SELECT if(count() = 0, now64(6), min(acquired_at)) FROM {LEASES} WHERE plugin = {{plugin:String}} AND token = {{token:String}}), \
             now64(6) + toIntervalSecond({{ttl:UInt32}}), {{released:UInt8}}"
        ))
        .param("plugin", PLUGIN)
        .param("token", token)
        .param("host", host)
        .param("pid", pid)
        .param("ttl", TTL_SECONDS)
        .param("released", released);
    db.execute(q)
        .await
        .with_context(|| format!("writing the migrate lease in {LEASES}"))
}

/// Whether a process of this host is still running.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
