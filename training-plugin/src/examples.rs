//! The examples kept by the materialized view: backfilling them from history and
//! checking they are complete. Both use the view's own query (`system.tables.as_select`),
//! so history and live rows go through exactly one definition.

use crate::db::Db;
use crate::schema::{example_columns, ANNOTATED_EXAMPLES, EXAMPLES_MV, EXAMPLES_TABLE};
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

/// Inserts an example for every qualifying log row of `month` that has none.
/// Idempotent: rows already present are skipped, so running it again adds nothing.
pub async fn backfill_month(db: &Db, view_query: &str, month: u32) -> anyhow::Result<()> {
    let columns = example_columns().collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO {EXAMPLES_TABLE} ({columns}) SELECT {columns} FROM ({view_query}) \
         WHERE toYYYYMM(timestamp) = {{month:UInt32}} \
         AND trace_id NOT IN (SELECT trace_id FROM {EXAMPLES_TABLE} WHERE toYYYYMM(timestamp) = {{month:UInt32}})"
    );
    db.execute(db.query(&sql).param("month", month))
        .await
        .with_context(|| {
            format!(
                "backfilling {EXAMPLES_TABLE} for {}-{:02}",
                month / 100,
                month % 100
            )
        })
}

/// How many qualifying log rows have no example.
pub async fn missing(db: &Db, view_query: &str) -> anyhow::Result<u64> {
    let sql = format!("SELECT count() FROM {}", missing_rows(view_query));
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .context("counting log rows without an example")
}

pub async fn count(db: &Db) -> anyhow::Result<u64> {
    db.fetch_one::<u64>(db.query(&format!("SELECT count() FROM {EXAMPLES_TABLE}")))
        .await
        .with_context(|| format!("counting {EXAMPLES_TABLE}"))
}

/// Examples stored more than once (same trace id).
pub async fn duplicates(db: &Db) -> anyhow::Result<u64> {
    let sql =
        format!("SELECT toInt64(count()) - toInt64(uniqExact(trace_id)) FROM {EXAMPLES_TABLE}");
    let extra = db
        .fetch_one::<i64>(db.query(&sql))
        .await
        .context("looking for duplicate examples")?;
    Ok(extra.max(0).unsigned_abs())
}

/// Copies into `training_annotated_examples` every annotated example it lacks, with
/// its trace's latest annotation (the statement of the migration that created it).
pub async fn copy_annotated(db: &Db) -> anyhow::Result<()> {
    let sql = crate::migrations::fill_statement(ANNOTATED_EXAMPLES).ok_or_else(|| {
        crate::failure::classified(
            rvbbit_plugin_api::exit::INTERNAL,
            format!("no migration fills {ANNOTATED_EXAMPLES}"),
        )
    })?;
    db.execute(db.query(&sql))
        .await
        .with_context(|| format!("copying annotated examples into {ANNOTATED_EXAMPLES}"))
}

/// After annotations of `trace_id` were deleted: drops its copies and copies it
/// again with what is now its latest annotation (if any is left).
pub async fn recopy_annotated(db: &Db, trace_id: &str) -> anyhow::Result<()> {
    db.execute(
        db.query(&format!(
            "DELETE FROM {ANNOTATED_EXAMPLES} WHERE trace_id = {{id:String}}"
        ))
        .param("id", trace_id)
        .with_setting("mutations_sync", "2"),
    )
    .await
    .with_context(|| format!("removing the annotated copy of trace {trace_id:?}"))?;
    copy_annotated(db).await
}

/// Annotated traces with an example whose copy in `training_annotated_examples` is
/// missing or older than their latest annotation.
pub async fn stale_annotated(db: &Db) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT count() FROM \
         (SELECT trace_id, max(annotated_at) AS latest FROM training_annotations \
          WHERE trace_id IN (SELECT trace_id FROM {EXAMPLES_TABLE}) GROUP BY trace_id) AS a \
         LEFT JOIN (SELECT trace_id, max(annotated_at) AS copied FROM {ANNOTATED_EXAMPLES} GROUP BY trace_id) AS c \
         ON a.trace_id = c.trace_id \
         WHERE c.trace_id = '' OR c.copied < a.latest"
    );
    db.fetch_one::<u64>(db.query(&sql))
        .await
        .context("comparing annotated examples with the latest annotations")
}
