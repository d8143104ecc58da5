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
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Holder {
    pub token: String,
    pub host: String,
    pub pid: u32,
    /// UTC; RFC 3339 in JSON.
    #[serde(serialize_with = "crate::output::utc")]
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
            "SELECT token, host, pid, toString(acquired_at, 'UTC') AS acquired_at, toInt64(dateDiff('second', now64(6), expires_at)) AS expires_in \
             FROM {LEASES} FINAL WHERE plugin = {{plugin:String}} AND released = 0 AND expires_at > now64(6) \
             ORDER BY acquired_at, token"
        ))
        .param("plugin", PLUGIN);
    db.fetch_all::<Holder>(q)
        .await
        .with_context(|| format!("reading the migrate lease in {LEASES}"))
}

/// What a run sees of the claims of others before claiming the lease itself.
#[derive(Debug, PartialEq)]
enum OtherClaim<'a> {
    /// No live claim but (maybe) its own.
    None,
    /// A claim of a process of this host that is gone: to be broken at once.
    Dead(&'a Holder),
    /// A claim to wait for: another host's, or a running process of this host.
    Live(&'a Holder),
}

/// The first live claim in `live` that is not `token`, and whether it is dead: only a
/// claim of this `host` can be known dead, by its process (`alive`) being gone.
fn other_claim<'a>(
    live: &'a [Holder],
    token: &str,
    host: &str,
    alive: impl Fn(u32) -> bool,
) -> OtherClaim<'a> {
    match live.iter().find(|h| h.token != token) {
        None => OtherClaim::None,
        Some(other) if is_stale(other, host, alive) => OtherClaim::Dead(other),
        Some(other) => OtherClaim::Live(other),
    }
}

/// Whether `holder` died holding the lease: a process of this `host` that is gone.
/// A claim of another host is never stale here: it expires unless renewed.
pub fn is_stale(holder: &Holder, host: &str, alive: impl Fn(u32) -> bool) -> bool {
    holder.host == host && !alive(holder.pid)
}

/// Whether the claim `token` holds the lease: the earliest live claim (`live` is
/// ordered as [`holders`] returns it).
fn holds(live: &[Holder], token: &str) -> bool {
    live.first().is_some_and(|h| h.token == token)
}

/// The error of a run that waited `wait` for `other` in `database` and gave up.
fn busy_message(other: &Holder, database: &str, wait: Duration) -> String {
    format!(
        "another {other} still holds the migrate lease of database {database} after {} s of waiting; nothing was changed. Run again when it has finished (`rvbbit training status` shows it), or wait longer with --wait",
        wait.as_secs()
    )
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
        match other_claim(&live, &token, &host, process_alive) {
            OtherClaim::Dead(other) => {
                // Its process is gone: nobody will renew or release it.
                write(db, &other.token, &other.host, other.pid, 1).await?;
                continue;
            }
            OtherClaim::Live(other) => {
                if !told {
                    waiting(other);
                    told = true;
                }
                if start.elapsed() >= wait {
                    return Err(classified(
                        exit::BUSY,
                        busy_message(other, &db.target.database, wait),
                    ));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            OtherClaim::None => {}
        }
        write(db, &token, &host, std::process::id(), 0).await?;
        tokio::time::sleep(SETTLE).await;
        let live = holders(db).await?;
        if holds(&live, &token) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(token: &str, host: &str, pid: u32) -> Holder {
        Holder {
            token: token.into(),
            host: host.into(),
            pid,
            acquired_at: "2025-05-01 08:00:00.000000".into(),
            expires_in: 42,
        }
    }

    #[test]
    fn no_claim_but_its_own_leaves_the_lease_to_claim() {
        assert_eq!(other_claim(&[], "me", "here", |_| true), OtherClaim::None);
        let mine = [holder("me", "here", 1)];
        assert_eq!(
            other_claim(&mine, "me", "here", |_| false),
            OtherClaim::None
        );
    }

    #[test]
    fn a_claim_of_another_host_is_waited_for_whatever_its_pid() {
        let live = [holder("me", "here", 1), holder("them", "build-7", 4242)];
        // A pid of another host says nothing about this one's processes.
        assert_eq!(
            other_claim(&live, "me", "here", |_| false),
            OtherClaim::Live(&live[1])
        );
    }

    #[test]
    fn a_claim_of_this_host_is_broken_only_when_its_process_is_gone() {
        let live = [holder("old", "here", 77)];
        assert_eq!(
            other_claim(&live, "me", "here", |pid| pid != 77),
            OtherClaim::Dead(&live[0])
        );
        assert_eq!(
            other_claim(&live, "me", "here", |_| true),
            OtherClaim::Live(&live[0])
        );
    }

    #[test]
    fn the_first_other_claim_is_the_one_considered() {
        let live = [
            holder("first", "build-7", 1),
            holder("me", "here", 2),
            holder("third", "here", 3),
        ];
        assert_eq!(
            other_claim(&live, "me", "here", |_| false),
            OtherClaim::Live(&live[0])
        );
    }

    #[test]
    fn stale_means_this_host_and_a_process_that_is_gone() {
        let h = holder("t", "here", 9);
        assert!(is_stale(&h, "here", |_| false));
        assert!(!is_stale(&h, "here", |_| true));
        assert!(!is_stale(&h, "elsewhere", |_| false));
    }

    #[test]
    fn a_run_holds_the_lease_only_with_the_earliest_live_claim() {
        let live = [holder("a", "h", 1), holder("b", "h", 2)];
        assert!(holds(&live, "a"));
        assert!(!holds(&live, "b"));
        assert!(!holds(&[], "a"));
    }

    #[test]
    fn the_holder_and_the_busy_error_name_host_pid_and_database() {
        let h = holder("build-7-4242-1", "build-7", 4242);
        assert_eq!(
            h.to_string(),
            "migrate on host build-7 (pid 4242), running since 2025-05-01 08:00:00.000000"
        );
        let message = busy_message(&h, "rvbbit", Duration::from_millis(1500));
        assert!(
            message.starts_with("another migrate on host build-7 (pid 4242)")
                && message
                    .contains("lease of database rvbbit after 1 s of waiting; nothing was changed")
                && message.contains("--wait"),
            "{message}"
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let pid = child.id();
        child.wait().expect("true ends");
        assert!(!process_alive(pid));
        // Not a pid this system can have: counted alive, never broken.
        assert!(process_alive(u32::MAX));
    }
}
