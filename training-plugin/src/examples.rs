//! The examples kept by the materialized view: backfilling them from history and
//! checking they are complete. Both use the view's own query (`system.tables.as_select`),
//! so history and live rows go through exactly one definition.

use crate::db::Db;
use crate::schema::{
    example_columns, ANNOTATIONS, BACKFILL_STAGING, EXAMPLES_MV, EXAMPLES_TABLE, LOGS,
    SCORES_BUFFER, TRAINABLE_ANNOTATIONS, TRAINABLE_EXAMPLES,
};
use anyhow::Context;

/// The materialized view's SELECT as the server stores it, if the view exists.
pub async fn view_query(db: &Db) -> anyhow::Result<Option<String>> {
    let q = db
        .server_query("SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {name:String}")
        .param("db", &db.target.database)
        .param("name", EXAMPLES_MV);
    let rows = db
        .fetch_all::<String>(q)
        .await
        .with_context(|| format!("reading the definition of {EXAMPLES_MV}"))?;
    Ok(rows.into_iter().next().filter(|s| !s.trim().is_empty()))
}

/// Rows the view's query yields from `unified_logs` whose trace has no example yet.
fn missing_rows(view_query: &str) -> String {
    format!("({view_query}) WHERE trace_id NOT IN (SELECT trace_id FROM {EXAMPLES_TABLE})")
}

/// Months of `unified_logs` (`toYYYYMM(timestamp)`) with their row counts, oldest
/// first: the backfill works one month at a time, which bounds the anti-join's memory
/// and lets an interrupted backfill resume where it stopped.
pub async fn log_months(db: &Db) -> anyhow::Result<Vec<(u32, u64)>> {
    db.fetch_all::<(u32, u64)>(db.query(
        "SELECT toYYYYMM(timestamp) AS month, count() FROM unified_logs GROUP BY month ORDER BY month",
    ))
    .await
    .context("counting unified_logs rows per month")
}

/// What one backfill statement may use on the server (`migrate --backfill-max-memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillLimits {
    /// `max_memory_usage` of each statement, in bytes: the server stops a statement
    /// that would use more (what it inserted is kept, and the next run resumes).
    pub max_memory: u64,
}

impl BackfillLimits {
    pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

    /// The settings each backfill statement carries. Small blocks keep what the JSON
    /// parsing of one block holds to a few MiB whatever the log's size (measured: one
    /// month of 172,266 log rows needs more than 512 MiB with the defaults, and fits
    /// in less than 1 GiB with these); the cap bounds the rest, mostly the month's
    /// set of trace ids already done. Two insert threads compress and write while the
    /// JSON is parsed (one month of the benchmark's 1M rows, five rounds each: median
    /// 55,800 examples/s against 52,000/s with one; docs/PERFORMANCE.md); each gathers
    /// rows into parts of up to a 32nd of the cap (64 MiB by default). The month is
    /// written in time order (see [`backfill_month`]); its sort goes to disk past an
    /// eighth of the cap (see [`SortSpill`]), and reading its spilled runs back costs
    /// memory that grows with the month and with the block: blocks of 2,048 rows keep
    /// the benchmark's largest 10M-row month (1.09M examples) within the 2 GiB default,
    /// where 4,096 and 8,192 went over it; a bigger month needs a bigger cap, which the
    /// error says (docs/PERFORMANCE.md, "Each month in time order").
    pub fn settings(&self, spill: SortSpill) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            ("max_memory_usage", self.max_memory.to_string()),
            (
                "max_bytes_before_external_sort",
                (self.max_memory / 8).to_string(),
            ),
            ("max_insert_threads", "2".to_string()),
            ("max_block_size", "2048".to_string()),
            ("min_insert_block_size_rows", "262144".to_string()),
            (
                "min_insert_block_size_bytes",
                (self.max_memory / 32).to_string(),
            ),
        ];
        if spill == SortSpill::BytesOrRatio {
            settings.push(("max_bytes_ratio_before_external_sort", "0".to_string()));
        }
        settings
    }
}

/// When the server's sorts go to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortSpill {
    /// Past `max_bytes_before_external_sort` (ClickHouse before 25.x).
    Bytes,
    /// Past `max_bytes_before_external_sort`, or past a share of the memory available
    /// (`max_bytes_ratio_before_external_sort`, 0.5 by default, in 25.8 and 26.9). Left
    /// at its default, the share wins: a month of 300,000 examples of 4 KB then went
    /// over a 2 GiB cap without spilling, on both; with the share at 0, the bytes
    /// decide and the month sorts within it.
    BytesOrRatio,
}

/// Which [`SortSpill`] the server has, from its list of settings.
pub async fn sort_spill(db: &Db) -> anyhow::Result<SortSpill> {
    let ratio: u64 = db
        .fetch_one(db.query(
            "SELECT count() FROM system.settings WHERE name = 'max_bytes_ratio_before_external_sort'",
        ))
        .await
        .context("asking the server how its sorts spill to disk")?;
    Ok(if ratio > 0 {
        SortSpill::BytesOrRatio
    } else {
        SortSpill::Bytes
    })
}

impl Default for BackfillLimits {
    fn default() -> Self {
        BackfillLimits {
            max_memory: Self::DEFAULT_MAX_MEMORY,
        }
    }
}

/// A size such as `2GiB`, `512MiB`, `1G`, `64M`, `300K` or a number of bytes (binary
/// units either way). At least 1 MiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 2GiB, 512MiB, 1073741824)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < 1 << 20 {
        return Err(format!("{text:?} is less than 1 MiB"));
    }
    Ok(bytes)
}

/// `bytes` for people: `2 GiB`, `768 MiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

/// Where the backfill writes each month's examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackfillRoute {
    /// Into [`BACKFILL_STAGING`], then moved to the state table: its views never see
    /// the rows. Measured on one month of the benchmark's 1M rows, written through the
    /// state table's trainable-copy view the backfill ran at half the rate of the same
    /// rows written to the table alone (docs/PERFORMANCE.md).
    Staged,
    /// Into the state table itself: where it is replicated (`--cluster`), since a
    /// staging copy of a replicated table would be one more replicated table.
    Direct,
}

/// Gets the backfill's route ready: on a state table that is not replicated, a fresh
/// staging table shaped exactly like it. The months a stopped backfill left there are
/// moved to the state table first (they are examples like any other, and the months
/// then resume from them); a leftover that cannot be moved (another shape) is replaced.
pub async fn prepare_backfill(db: &Db) -> anyhow::Result<BackfillRoute> {
    let objects = db.objects().await?;
    let replicated = objects
        .get(EXAMPLES_TABLE)
        .is_some_and(|engine| engine.starts_with("Replicated") || engine.starts_with("Shared"));
    let route = if replicated {
        BackfillRoute::Direct
    } else {
        BackfillRoute::Staged
    };
    if objects.contains_key(BACKFILL_STAGING) {
        if route == BackfillRoute::Staged {
            // What cannot be moved is written again by this backfill.
            let _ = move_staged_months(db, None, true).await;
        }
        drop_staging(db).await?;
    }
    if route == BackfillRoute::Staged {
        db.execute(db.query(&format!(
            "CREATE TABLE {BACKFILL_STAGING} AS {EXAMPLES_TABLE}"
        )))
        .await
        .with_context(|| {
            format!("creating {BACKFILL_STAGING}, where the backfill writes each month")
        })?;
        db.execute(db.query(&format!(
            "ALTER TABLE {BACKFILL_STAGING} MODIFY SETTING {STAGING_WITHOUT_MERGES}"
        )))
        .await
        .with_context(|| format!("stopping the merges of {BACKFILL_STAGING}"))?;
    }
    Ok(route)
}

/// Moves months from the staging table to the state table, each whole and at once
/// (`MOVE PARTITION ... TO TABLE`): every month there, or those of `only`. The local
/// engines of ClickHouse 23.10 and 24.8 copy the parts instead of moving them, so the
/// month is then dropped from the staging table. `leftover`: the months a stopped
/// backfill left, which may have been moved already on those engines (stopped between
/// the two statements); a month of which the state table has any trace is dropped, not
/// moved again (what it lacks, the backfill writes).
pub async fn move_staged_months(
    db: &Db,
    only: Option<&[u32]>,
    leftover: bool,
) -> anyhow::Result<()> {
    let staged = db
        .fetch_all::<String>(
            // From the table itself: the local engine of ClickHouse 23.10 has no
            // system.parts.
            db.query(&format!(
                "SELECT DISTINCT _partition_id AS month FROM {BACKFILL_STAGING} ORDER BY month"
            )),
        )
        .await
        .with_context(|| format!("listing the months in {BACKFILL_STAGING}"))?;
    for month in months_to_move(&staged, only) {
        let label = month_label(month);
        let moved_before = leftover
            && db
                .fetch_one::<u64>(db.query(&format!(
                    "SELECT count() FROM {BACKFILL_STAGING} WHERE toYYYYMM(timestamp) = {month} \
                     AND trace_id IN (SELECT trace_id FROM {EXAMPLES_TABLE} WHERE toYYYYMM(timestamp) = {month})"
                )))
                .await
                .with_context(|| format!("checking whether {label} was moved already"))?
                > 0;
        if !moved_before {
            db.execute(db.query(&format!(
                "ALTER TABLE {BACKFILL_STAGING} MOVE PARTITION {month} TO TABLE {EXAMPLES_TABLE}"
            )))
            .await
            .with_context(|| {
                format!(
                    "moving the examples of {label} from {BACKFILL_STAGING} to {EXAMPLES_TABLE}"
                )
            })?;
        }
        db.execute(db.query(&format!(
            "ALTER TABLE {BACKFILL_STAGING} DROP PARTITION {month}"
        )))
        .await
        .with_context(|| format!("dropping {label} from {BACKFILL_STAGING} once moved"))?;
    }
    Ok(())
}

/// The months (`YYYYMM`) among the staging table's partitions (`staged`, their ids) to
/// move: all, or those of `only`. An id that is not a month is not one of ours.
fn months_to_move(staged: &[String], only: Option<&[u32]>) -> Vec<u32> {
    staged
        .iter()
        .filter_map(|id| id.parse::<u32>().ok())
        .filter(|month| only.is_none_or(|only| only.contains(month)))
        .collect()
}

/// `2026-08` for the month `202608`.
pub fn month_label(month: u32) -> String {
    format!("{}-{:02}", month / 100, month % 100)
}

/// The staging table merges nothing: a month is written there in one statement, and
/// merges that start while it runs rewrite the month's rows again and again (a month of
/// 1.09M examples of the benchmark's 10M rows: the insert 24.5-26.8 s with merges off,
/// 32.2-33.8 s with them, and the later merge of its parts 21-22 s against 24-31 s;
/// docs/PERFORMANCE.md). The parts are merged once, in the state table, after the
/// move. A month leaves about one part per 28,000 examples (64 MiB insert blocks, a
/// 32nd of the default `--backfill-max-memory`), so
/// the state table's limit before it slows inserts (1,000 parts in a partition, in
/// every supported release) is reached only by a month of about 28 million examples.
const STAGING_WITHOUT_MERGES: &str =
    "max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1";

/// Ends the backfill: staged, every month written is moved to the state table and the
/// staging table dropped. Also after a failed or interrupted month, so that what was
/// written is kept (a month a stopped statement left half written resumes from it).
pub async fn finish_backfill(db: &Db, route: BackfillRoute) -> anyhow::Result<()> {
    match route {
        BackfillRoute::Staged => {
            move_staged_months(db, None, false).await?;
            drop_staging(db).await
        }
        BackfillRoute::Direct => Ok(()),
    }
}

async fn drop_staging(db: &Db) -> anyhow::Result<()> {
    db.execute(db.query(&format!("DROP TABLE IF EXISTS {BACKFILL_STAGING} SYNC")))
        .await
        .with_context(|| format!("dropping {BACKFILL_STAGING}"))
}

/// The statement that backfills one month (`{month:UInt32}`) of `view_query`'s examples
/// into `target`, in time order, each with its trace's latest annotation.
fn backfill_statement(target: &str, view_query: &str) -> String {
    let columns = example_columns().collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO {target} ({columns}) SELECT {select} FROM \
         (SELECT * FROM ({view_query}) WHERE toYYYYMM(timestamp) = {{month:UInt32}} \
         AND trace_id NOT IN (SELECT trace_id FROM {EXAMPLES_TABLE} WHERE toYYYYMM(timestamp) = {{month:UInt32}})) AS s \
         LEFT ANY JOIN ({latest}) AS a ON a.trace_id = s.trace_id \
         ORDER BY s.timestamp \
         SETTINGS join_use_nulls = 0",
        select = new_example_select(),
        latest = latest_annotation_tuples(&format!(
            "trace_id IN (SELECT trace_id FROM {LOGS} \
             WHERE toYYYYMM(timestamp) = {{month:UInt32}} AND role = 'assistant')"
        )),
    )
}

/// Inserts an example for every qualifying log row of `month` that has none, with its
/// trace's latest annotation: on an upgrade nearly every trace is annotated already
/// (rvbbit's confidence worker scores each one), and an example written once here is
/// one the run's catch-up need not write again. Staged, the trainable ones reach
/// `training_trainable_examples` through [`copy_trainable`] at the end of the run.
/// Idempotent: rows already present are skipped, so running it again adds nothing.
/// Staged, the month is written to the staging table, which keeps it until
/// [`finish_backfill`] moves every month to the state table at the end of the
/// backfill: the engine's merges of the months written (about 20 s of both cores for
/// each of the benchmark's 10M-row months) then run after the backfill instead of
/// beside its next month's statement. When the server stopped the insert midway, the
/// month is moved at once (what it wrote is kept, as it is when written directly).
///
/// The month is written in time order. Its parts are then slices of the month, disjoint
/// in time, and `FINAL` reads the newest rows of Studio's grid without merging them;
/// written in the log's order (by session), every part spans the whole month and, until
/// the engine merges them a minute or more later, the grid reads every example of every
/// month so written (docs/PERFORMANCE.md, "Right after a backfill").
pub async fn backfill_month(
    db: &Db,
    view_query: &str,
    month: u32,
    limits: BackfillLimits,
    route: BackfillRoute,
    spill: SortSpill,
) -> anyhow::Result<()> {
    let label = month_label(month);
    let target = match route {
        BackfillRoute::Staged => BACKFILL_STAGING,
        BackfillRoute::Direct => EXAMPLES_TABLE,
    };
    let sql = backfill_statement(target, view_query);
    let mut query = db.query(&sql).param("month", month);
    for (name, value) in limits.settings(spill) {
        query = query.with_setting(name, value);
    }
    let Err(e) = db.execute_bounded(query).await else {
        return Ok(());
    };
    let message = format!("{e:#}");
    let timed_out = message.contains("TIMEOUT_EXCEEDED");
    let out_of_memory = message.contains("MEMORY_LIMIT_EXCEEDED");
    if (timed_out || out_of_memory) && route == BackfillRoute::Staged {
        // The server ended the statement: what it wrote is kept where the views read
        // it. (After any other error it may still be running; the month stays staged,
        // and the next backfill moves it before it starts.)
        let _ = move_staged_months(db, Some(&[month]), false).await;
    }
    Err(if timed_out {
        let seconds = db.server_limit_seconds();
        crate::failure::classified(
            rvbbit_plugin_api::exit::CONNECTION,
            format!(
                "backfilling {EXAMPLES_TABLE} for {label} took longer than --timeout ({seconds} s) allows, and \
                 the server stopped it; the examples written so far are kept: run migrate again with a \
                 larger --timeout (for example {}) to resume",
                seconds.saturating_mul(10).max(300),
            ),
        )
    } else if out_of_memory {
        crate::failure::classified(
            rvbbit_plugin_api::exit::SERVER_ERROR,
            format!(
                "backfilling {EXAMPLES_TABLE} for {label} needed more than the {} the backfill may use; \
                 the examples written so far are kept: run migrate again with a larger --backfill-max-memory \
                 (for example {}) to resume",
                human_size(limits.max_memory),
                human_size(limits.max_memory.saturating_mul(2)),
            ),
        )
    } else {
        e.context(format!("backfilling {EXAMPLES_TABLE} for {label}"))
    })
}

/// How many qualifying log rows have no example.
pub async fn missing(db: &Db, view_query: &str) -> anyhow::Result<u64> {
    let sql = format!("SELECT count() FROM {}", missing_rows(view_query));
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .context("counting log rows without an example")
}

/// How long [`settle_scores`] waits for the buffer: it passes its rows on within 2
/// seconds (migration 6), so this is ample unless the server cannot apply them.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until the confidence worker's annotations waiting in the buffer have been
/// applied (it passes them on within 2 seconds), so that what is then read or compared
/// does not count them as lagging. Gives up after [`SETTLE_LIMIT`]: what is still
/// waiting then is reported as lagging by whoever reads next. Nothing to wait for
/// where the buffer does not exist.
pub async fn settle_scores(db: &Db) -> anyhow::Result<()> {
    if !db.objects().await?.contains_key(SCORES_BUFFER) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    loop {
        // A Buffer table reads its waiting rows plus its destination's (Null: none).
        let waiting = db
            .fetch_one::<u64>(db.query(&format!("SELECT count() FROM {SCORES_BUFFER}")))
            .await
            .with_context(|| format!("counting the scores waiting in {SCORES_BUFFER}"))?;
        if waiting == 0 || started.elapsed() >= SETTLE_LIMIT {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn count(db: &Db) -> anyhow::Result<u64> {
    // A row per annotation until merged: FINAL counts each example once.
    db.fetch_one::<u64>(db.query(&format!("SELECT count() FROM {EXAMPLES_TABLE} FINAL")))
        .await
        .with_context(|| format!("counting {EXAMPLES_TABLE}"))
}

/// Traces with examples at more than one time. The table holds a row per annotation
/// of a trace until its merges keep the latest (it is read with FINAL, which does the
/// same), so only a trace stored under two timestamps counts.
pub async fn duplicates(db: &Db) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT count() FROM (SELECT trace_id FROM {EXAMPLES_TABLE} FINAL GROUP BY trace_id HAVING count() > 1)"
    );
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .context("looking for duplicate examples")
}

/// Copies into `training_trainable_examples` every trainable example it lacks, with
/// its trace's latest annotation (the statement of the migration that created it).
pub async fn copy_trainable(db: &Db) -> anyhow::Result<()> {
    let sql = crate::migrations::fill_statement(TRAINABLE_EXAMPLES).ok_or_else(|| {
        crate::failure::classified(
            rvbbit_plugin_api::exit::INTERNAL,
            format!("no migration fills {TRAINABLE_EXAMPLES}"),
        )
    })?;
    db.execute(db.query(&sql))
        .await
        .with_context(|| format!("copying trainable examples into {TRAINABLE_EXAMPLES}"))
}

/// Sends through `training_trainable_annotations` every annotation the trainable copies
/// have not seen (trainable, or of a trace already copied, and newer than its copy):
/// the last statement of the migration that created the relay.
pub async fn catch_up_annotations(db: &Db) -> anyhow::Result<()> {
    let sql = crate::migrations::fill_statement(TRAINABLE_ANNOTATIONS).ok_or_else(|| {
        crate::failure::classified(
            rvbbit_plugin_api::exit::INTERNAL,
            format!("no migration fills {TRAINABLE_ANNOTATIONS}"),
        )
    })?;
    db.execute(db.query(&sql)).await.with_context(|| {
        format!("catching {TRAINABLE_EXAMPLES} up with the annotations it has not seen")
    })
}

/// The examples' columns, each taken from `s.` (the example's row read with FINAL)
/// unless `replaced` gives another expression for it (the first one given wins).
fn example_select(replaced: &[(&str, &str)]) -> String {
    example_columns()
        .map(|c| {
            replaced
                .iter()
                .find(|(name, _)| *name == c)
                .map_or_else(|| format!("s.{c}"), |(_, expr)| (*expr).to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The latest annotation of each trace `traces` (a condition) selects, as `latest` (the
/// tuple trainable, verified, confidence, notes, tags, annotated_by) and
/// `last_annotated_at`.
fn latest_annotation_tuples(traces: &str) -> String {
    format!(
        "SELECT trace_id, \
         argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest, \
         max(annotated_at) AS last_annotated_at \
         FROM {ANNOTATIONS} WHERE {traces} GROUP BY trace_id"
    )
}

/// The annotation columns of an example's row, from `a` (latest_annotation_tuples).
const FROM_LATEST: &[(&str, &str)] = &[
    ("trainable", "tupleElement(a.latest, 1)"),
    ("verified", "tupleElement(a.latest, 2)"),
    ("confidence", "tupleElement(a.latest, 3)"),
    ("notes", "tupleElement(a.latest, 4)"),
    ("tags", "tupleElement(a.latest, 5)"),
    (
        "annotated_at",
        "CAST(a.last_annotated_at AS Nullable(DateTime64(6)))",
    ),
    ("annotated_by", "tupleElement(a.latest, 6)"),
    ("version", "a.last_annotated_at"),
];

/// The annotation columns of a new example's row, from `a` (latest_annotation_tuples)
/// joined with `join_use_nulls = 0`: [`FROM_LATEST`], except that where its trace has
/// no annotation the row has none, version 0, as the log's view writes it.
const NEW_WITH_LATEST: &[(&str, &str)] = &[
    (
        "annotated_at",
        "if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6))))",
    ),
    (
        "version",
        "if(a.trace_id = '', toDateTime64(0, 6), CAST(a.last_annotated_at AS DateTime64(6)))",
    ),
];

/// The columns of a new example's row: the log view's row `s` with the latest
/// annotation `a` ([`NEW_WITH_LATEST`] over [`FROM_LATEST`]).
fn new_example_select() -> String {
    example_select(
        &NEW_WITH_LATEST
            .iter()
            .chain(FROM_LATEST)
            .copied()
            .collect::<Vec<_>>(),
    )
}

/// Writes again, with its trace's latest annotation, every example whose row is older
/// than that annotation: annotations written while the view that follows them was
/// missing, or before their example was copied in.
pub async fn catch_up_examples(db: &Db) -> anyhow::Result<()> {
    let columns = example_columns().collect::<Vec<_>>().join(", ");
    // Found first on the narrow columns: reading every example's texts to write none
    // again took most of an upgrade's catch-up.
    let behind = format!(
        "SELECT s.trace_id FROM (SELECT trace_id, version FROM {EXAMPLES_TABLE} FINAL) AS s \
         INNER JOIN (SELECT trace_id, max(annotated_at) AS last FROM {ANNOTATIONS} GROUP BY trace_id) AS a \
         ON a.trace_id = s.trace_id WHERE a.last > s.version"
    );
    if !any_rows(db, "examples_behind", &behind)
        .await
        .context("looking for examples older than their latest annotation")?
    {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {EXAMPLES_TABLE} ({columns}) SELECT {select} \
         FROM (SELECT * FROM {EXAMPLES_TABLE} FINAL PREWHERE trace_id IN ({behind})) AS s \
         INNER JOIN ({latest}) AS a ON a.trace_id = s.trace_id \
         WHERE a.last_annotated_at > s.version",
        select = example_select(FROM_LATEST),
        latest = latest_annotation_tuples(&format!("trace_id IN ({behind})"))
    );
    db.execute(db.query(&sql))
        .await
        .with_context(|| format!("catching {EXAMPLES_TABLE} up with the latest annotations"))
}

/// Whether `rows` (a query) returns any row, counted as `SELECT count() AS {name}`, so
/// that the catch-ups write nothing, and read no texts, when nothing lags: the look-up
/// on the narrow columns costs about half of the `INSERT` that repeats it (at 1M log rows,
/// 0.52 s against 1.03 s for the examples' values; docs/PERFORMANCE.md).
async fn any_rows(db: &Db, name: &str, rows: &str) -> anyhow::Result<bool> {
    let sql = format!("SELECT count() AS {name} FROM ({rows})");
    Ok(db.fetch_one::<u64>(db.query(&sql)).await? > 0)
}

/// The log row's values an example copies, with its `trace_id`: what the lagging
/// comparisons read on each side.
const COMPARED_VALUES: &str = "trace_id, model, cost, tokens_in, tokens_out, duration_ms";

/// The current values of the log rows of the traces in `copies` (a table).
fn log_values_of(copies: &str) -> String {
    format!(
        "SELECT {COMPARED_VALUES} FROM {LOGS} \
         WHERE role = 'assistant' AND trace_id IN (SELECT trace_id FROM {copies})"
    )
}

/// The copied values of every row of `table` (read with FINAL), with no texts.
fn copied_values(table: &str) -> String {
    format!("SELECT {COMPARED_VALUES} FROM {table} FINAL")
}

/// Examples whose model, cost, tokens or duration lag behind their log row: rvbbit
/// writes them by `ALTER TABLE unified_logs UPDATE` after the row, which runs no view.
pub async fn lagging_examples(db: &Db) -> anyhow::Result<u64> {
    count_lagging(
        db,
        &copied_values(EXAMPLES_TABLE),
        &log_values_of(EXAMPLES_TABLE),
        "the examples'",
    )
    .await
}

/// How many rows of `rows` (a query with the compared columns and `trace_id`) differ
/// from their log row in `values` ([`VALUES_DIFFER`]); `whose` names them for errors.
async fn count_lagging(db: &Db, rows: &str, values: &str, whose: &str) -> anyhow::Result<u64> {
    let sql = format!("SELECT count() {}", lagging_join(rows, values));
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .with_context(|| format!("comparing {whose} values with unified_logs"))
}

/// The `trace_id`s of the rows of `rows` whose values differ from their log row's in
/// `values` ([`lagging_join`]).
fn lagging_traces(rows: &str, values: &str) -> String {
    format!("SELECT t.trace_id {}", lagging_join(rows, values))
}

/// `FROM … WHERE …` of the rows of `rows` (as `t`) whose values differ from their log
/// row's in `values` (as `l`).
fn lagging_join(rows: &str, values: &str) -> String {
    format!(
        "FROM ({rows}) AS t INNER JOIN ({values}) AS l ON t.trace_id = l.trace_id WHERE {VALUES_DIFFER}"
    )
}

/// Brings the examples' lagging values up to date: writes each row again with its log
/// row's current values and the same version (of equal versions, the row written last
/// wins).
pub async fn refresh_examples(db: &Db) -> anyhow::Result<()> {
    let columns = example_columns().collect::<Vec<_>>().join(", ");
    let select = example_select(&[
        ("model", "l.model"),
        ("cost", "l.cost"),
        ("tokens_in", "l.tokens_in"),
        ("tokens_out", "l.tokens_out"),
        ("duration_ms", "l.duration_ms"),
        ("captured_at", "now64(6)"),
    ]);
    // The lagging examples are found on the narrow columns first, as in the catch-up.
    let lagging = lagging_traces(
        &copied_values(EXAMPLES_TABLE),
        &log_values_of(EXAMPLES_TABLE),
    );
    if !any_rows(db, "examples_lagging", &lagging)
        .await
        .context("comparing the examples' values with unified_logs")?
    {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {EXAMPLES_TABLE} ({columns}) SELECT {select} \
         FROM (SELECT * FROM {EXAMPLES_TABLE} FINAL PREWHERE trace_id IN ({lagging})) AS s \
         INNER JOIN ({values}) AS l ON s.trace_id = l.trace_id WHERE {differ}",
        values = log_values_of(EXAMPLES_TABLE),
        differ = VALUES_DIFFER.replace("t.", "s.")
    );
    db.execute(db.query(&sql))
        .await
        .context("bringing the examples' values up to date with unified_logs")
}

/// After annotations of `trace_id` were deleted: writes its example's row again with
/// what is now its latest annotation (or none), under a version newer than any row of
/// the trace, so that it wins over the rows of the deleted annotations. (Deleting those
/// rows instead would not do: a merge may already have folded the example's older rows
/// into them.) Its `annotated_at` stays the annotation's own time.
pub async fn rewind_example(db: &Db, trace_id: &str) -> anyhow::Result<()> {
    let columns = example_columns().collect::<Vec<_>>().join(", ");
    let latest = latest_annotation_tuples("trace_id = {id:String}");
    let annotated = db
        .fetch_one::<u64>(
            db.query(&format!(
                "SELECT count() FROM {ANNOTATIONS} WHERE trace_id = {{id:String}}"
            ))
            .param("id", trace_id),
        )
        .await
        .with_context(|| format!("reading the annotations of trace {trace_id:?}"))?;
    let one_row = format!(
        "(SELECT * FROM {EXAMPLES_TABLE} FINAL WHERE trace_id = {{id:String}} LIMIT 1) AS s"
    );
    let newest = (
        "version",
        "greatest(now64(6), s.version + toIntervalMicrosecond(1))",
    );
    let insert = if annotated > 0 {
        let mut values: Vec<(&str, &str)> = FROM_LATEST
            .iter()
            .copied()
            .filter(|(c, _)| *c != "version")
            .collect();
        values.push(newest);
        format!(
            "INSERT INTO {EXAMPLES_TABLE} ({columns}) SELECT {} FROM {one_row} \
             INNER JOIN ({latest}) AS a ON a.trace_id = s.trace_id",
            example_select(&values)
        )
    } else {
        format!(
            "INSERT INTO {EXAMPLES_TABLE} ({columns}) SELECT {} FROM {one_row}",
            example_select(&[
                ("trainable", "false"),
                ("verified", "false"),
                ("confidence", "NULL"),
                ("notes", "''"),
                ("tags", "[]"),
                ("annotated_at", "NULL"),
                ("annotated_by", "''"),
                newest,
            ])
        )
    };
    db.execute(db.query(&insert).param("id", trace_id))
        .await
        .with_context(|| format!("writing the example of trace {trace_id:?} again"))
}

/// After annotations of `trace_id` were deleted: drops its copies and copies it
/// again if what is now its latest annotation makes it trainable.
pub async fn recopy_trainable(db: &Db, trace_id: &str) -> anyhow::Result<()> {
    rewind_example(db, trace_id).await?;
    db.execute(
        db.query(&format!(
            "DELETE FROM {TRAINABLE_EXAMPLES} WHERE trace_id = {{id:String}}"
        ))
        .param("id", trace_id)
        .with_setting("mutations_sync", "2"),
    )
    .await
    .with_context(|| format!("removing the trainable copy of trace {trace_id:?}"))?;
    copy_trainable(db).await
}

/// The latest annotation of every trace that has an example, as `(trace_id, trainable,
/// annotated_at)`; a subquery shared by the checks below.
fn latest_annotations() -> String {
    format!(
        "SELECT trace_id, argMax(trainable, annotated_at) AS trainable, max(annotated_at) AS latest \
         FROM {ANNOTATIONS} WHERE trace_id IN (SELECT trace_id FROM {EXAMPLES_TABLE}) GROUP BY trace_id"
    )
}

/// Traces whose copy in `training_trainable_examples` disagrees with their latest
/// annotation: trainable but not copied (or copied with an older annotation), or
/// copied as trainable though their latest annotation is not.
pub async fn stale_trainable(db: &Db) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT count() FROM ({latest}) AS a \
         LEFT JOIN (SELECT trace_id, trainable, annotated_at AS copied FROM {TRAINABLE_EXAMPLES} FINAL) AS c \
         ON a.trace_id = c.trace_id \
         WHERE (a.trainable AND (c.trace_id = '' OR NOT c.trainable OR c.copied < a.latest)) \
            OR (NOT a.trainable AND c.trace_id != '' AND c.trainable)",
        latest = latest_annotations()
    );
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .context("comparing the trainable examples with the latest annotations")
}

/// The condition under which a trainable example's copied values differ from its
/// log row's current ones (rvbbit writes cost, tokens and model after the row).
/// NULLs compare equal (the tuples are compared as text: `<=>` is too new for 23.10).
const VALUES_DIFFER: &str =
    "toString(tuple(t.model, t.cost, t.tokens_in, t.tokens_out, t.duration_ms)) \
     != toString(tuple(l.model, l.cost, l.tokens_in, l.tokens_out, l.duration_ms))";

/// The columns of `training_trainable_examples`, in order.
const TRAINABLE_COLUMNS: &str = "trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, \
     user_input, assistant_output, model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, role, \
     trainable, verified, confidence, notes, tags, annotated_at, annotated_by";

/// Trainable examples whose model, cost, tokens or duration lag behind their log row
/// (the log row changed after the trace was marked).
pub async fn lagging_values(db: &Db) -> anyhow::Result<u64> {
    count_lagging(
        db,
        &format!("SELECT * FROM {TRAINABLE_EXAMPLES} FINAL WHERE trainable"),
        &log_values_of(TRAINABLE_EXAMPLES),
        "the trainable examples'",
    )
    .await
}

/// Brings the lagging values up to date: writes the copy again with the log row's
/// current values and the same `annotated_at` (of equal versions, the row written last
/// wins).
pub async fn refresh_values(db: &Db) -> anyhow::Result<()> {
    let columns = TRAINABLE_COLUMNS.replace(
        "model, cost, tokens_in, tokens_out, duration_ms",
        "l.model, l.cost, l.tokens_in, l.tokens_out, l.duration_ms",
    );
    let columns: Vec<String> = columns
        .split(',')
        .map(|c| {
            let c = c.trim();
            if c.starts_with("l.") {
                c.to_string()
            } else {
                format!("t.{c}")
            }
        })
        .collect();
    let lagging = lagging_traces(
        &copied_values(TRAINABLE_EXAMPLES),
        &log_values_of(TRAINABLE_EXAMPLES),
    );
    if !any_rows(db, "copies_lagging", &lagging)
        .await
        .context("comparing the trainable examples' values with unified_logs")?
    {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {TRAINABLE_EXAMPLES} ({TRAINABLE_COLUMNS}) SELECT {} {}",
        columns.join(", "),
        lagging_join(
            &format!("SELECT * FROM {TRAINABLE_EXAMPLES} FINAL"),
            &log_values_of(TRAINABLE_EXAMPLES)
        )
    );
    db.execute(db.query(&sql))
        .await
        .context("bringing the trainable examples' values up to date with unified_logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("512 mb"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("1KiB").unwrap_err().contains("less than 1 MiB"));
        assert!(parse_size("GiB").unwrap_err().contains("not a size"));
        assert!(parse_size("2XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_size(2 << 30), "2 GiB");
        assert_eq!(human_size(768 << 20), "768 MiB");
        assert_eq!(human_size((1 << 30) + (1 << 29)), "1536 MiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn a_new_example_without_annotation_gets_none_and_version_zero() {
        let select = new_example_select();
        // tags, annotated_at, annotated_by, version: the overrides win over FROM_LATEST.
        assert!(
            select.contains(
                "tupleElement(a.latest, 5), \
                 if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))), \
                 tupleElement(a.latest, 6), \
                 if(a.trace_id = '', toDateTime64(0, 6), CAST(a.last_annotated_at AS DateTime64(6))), \
                 s.captured_at"
            ),
            "{select}"
        );
        assert!(select.starts_with("s.timestamp, s.trace_id, "), "{select}");
    }

    #[test]
    fn a_month_is_written_in_time_order() {
        let sql = backfill_statement(BACKFILL_STAGING, "SELECT 1");
        assert!(
            sql.starts_with(&format!(
                "INSERT INTO {BACKFILL_STAGING} (timestamp, trace_id, "
            )),
            "{sql}"
        );
        // The whole month in time order: after the join, not inside the subqueries.
        assert!(
            sql.ends_with(
                "AS a ON a.trace_id = s.trace_id ORDER BY s.timestamp SETTINGS join_use_nulls = 0"
            ),
            "{sql}"
        );
        assert_eq!(sql.matches("ORDER BY s.timestamp").count(), 1, "{sql}");
    }

    #[test]
    fn staged_months_to_move_are_ours_and_those_asked_for() {
        let staged = ["202605", "202606", "all", "202608"].map(String::from);
        assert_eq!(months_to_move(&staged, None), [202605, 202606, 202608]);
        assert_eq!(
            months_to_move(&staged, Some(&[202606, 202607, 202608])),
            [202606, 202608]
        );
        assert!(months_to_move(&staged, Some(&[])).is_empty());
        assert_eq!(month_label(202608), "2026-08");
    }

    #[test]
    fn backfill_settings_carry_the_cap() {
        let settings = BackfillLimits {
            max_memory: 3 << 30,
        }
        .settings(SortSpill::Bytes);
        assert!(settings.contains(&("max_memory_usage", (3u64 << 30).to_string())));
        assert!(settings.contains(&("max_bytes_before_external_sort", (3u64 << 27).to_string())));
        assert!(settings.contains(&("min_insert_block_size_bytes", (3u64 << 25).to_string())));
        // The default cap keeps the blocks measured in docs/PERFORMANCE.md.
        assert!(BackfillLimits::default()
            .settings(SortSpill::Bytes)
            .contains(&("min_insert_block_size_bytes", (64u64 << 20).to_string())));
        // Servers that spill past a share of their memory too are told not to.
        let names = |spill| {
            BackfillLimits::default()
                .settings(spill)
                .into_iter()
                .filter(|(name, _)| name.contains("external_sort"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(SortSpill::Bytes),
            [("max_bytes_before_external_sort", (256u64 << 20).to_string())]
        );
        assert_eq!(
            names(SortSpill::BytesOrRatio),
            [
                ("max_bytes_before_external_sort", (256u64 << 20).to_string()),
                ("max_bytes_ratio_before_external_sort", "0".to_string())
            ]
        );
        assert_eq!(BackfillLimits::default().max_memory, 2 << 30);
    }
}
