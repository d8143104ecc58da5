//! What rvbbit's own clients send to ClickHouse, character for character: the few-shot
//! retrieval of `training_system.py`, the marking of `mark_as_trainable`, the confidence
//! worker's inserts, the late cost update of `db_adapter.batch_update_costs`, and the
//! queries of Studio's Training API (`studio/backend/training_api.py`), at rvbbit commit
//! 71225a80 (repository ryrobes/larsql).
//!
//! rvbbit connects with `clickhouse_driver`, which substitutes `%(name)s` parameters on
//! the client: strings are quoted with backslash escapes, booleans are Python's
//! `True`/`False`, floats are printed as Python prints them. Most of its SQL is built
//! with f-strings (cascade and cell names unescaped in retrieval, quotes doubled in
//! Studio). These functions build the same text; the tests send it over HTTP, which
//! carries the same SQL text the native protocol would.

/// UTC civil time of `micros` since the epoch, as `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn utc(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// `mark_as_trainable`'s `now`: UTC now with milliseconds.
pub fn now_ms() -> String {
    let text = utc(now_micros());
    text[..text.len() - 3].to_string()
}

/// `clickhouse_driver.util.escape.escape_param` for a Python `str`.
pub fn py_str(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars() {
        match c {
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            '\u{07}' => out.push_str("\\a"),
            '\u{0b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Python's `str(bool)`, as an f-string or `escape_param` renders it.
pub fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// Python's `repr(float)` for the values these tests use (`1.0`, `0.85`, `1e-05`).
pub fn py_float(value: f64) -> String {
    if value == 0.0 {
        return "0.0".into();
    }
    let exponent = value.abs().log10().floor() as i32;
    if !(-4..16).contains(&exponent) {
        let text = format!("{value:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// `escape_param` for a Python list of strings.
pub fn py_list(values: &[&str]) -> String {
    let items: Vec<String> = values.iter().map(|v| py_str(v)).collect();
    format!("[{}]", items.join(", "))
}

/// One statement of `mark_as_trainable` (training_system.py): one INSERT per trace,
/// confidence 1.0 when the person gives none, `annotated_at` the UTC time with
/// milliseconds, `annotated_by` 'human'. rvbbit sends `OPTIMIZE_ANNOTATIONS` after
/// the batch.
pub struct Marking<'a> {
    pub trace_id: &'a str,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f64>,
    pub notes: &'a str,
    pub tags: &'a [&'a str],
    /// `datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]`.
    pub now: &'a str,
}

impl Marking<'_> {
    pub fn sql(&self) -> String {
        format!(
            "\n                INSERT INTO training_annotations\n                (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)\n                VALUES (\n                    {},\n                    {},\n                    {},\n                    {},\n                    {},\n                    {},\n                    {},\n                    {}\n                )\n            ",
            py_str(self.trace_id),
            py_bool(self.trainable),
            py_bool(self.verified),
            py_float(self.confidence.unwrap_or(1.0)),
            py_str(self.notes),
            py_list(self.tags),
            py_str(self.now),
            py_str("human"),
        )
    }

    /// The confidence the row stores.
    pub fn stored_confidence(&self) -> f64 {
        self.confidence.unwrap_or(1.0)
    }
}

pub const OPTIMIZE_ANNOTATIONS: &str = "OPTIMIZE TABLE training_annotations FINAL";

/// The confidence worker's row for one assistant message (`insert_rows`, one row per
/// insert): trainable and verified false, its score, 'Auto-assessed', no tags, now
/// (a UTC datetime, stored with milliseconds), 'confidence_worker'. The driver sends
/// it as a native data block; over HTTP the same values go as one JSONEachRow row.
pub fn worker_insert(trace_id: &str, score: f64, now: &str, by: &str) -> String {
    let notes = if by == "confidence_worker" {
        "Auto-assessed"
    } else {
        "On-demand assessment"
    };
    format!(
        "INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by) FORMAT JSONEachRow\n{}",
        serde_json::json!({
            "trace_id": trace_id,
            "trainable": false,
            "verified": false,
            "confidence": score,
            "notes": notes,
            "tags": [],
            "annotated_at": now,
            "annotated_by": by,
        })
    )
}

/// The late cost update (`batch_update_costs` through `update_row`, `sync=False`):
/// one asynchronous mutation per trace, 3-5 s after the row was logged.
pub fn cost_update(
    trace_id: &str,
    cost: f64,
    tokens_in: i32,
    tokens_out: i32,
    provider: &str,
    model: &str,
) -> String {
    format!(
        "\n            ALTER TABLE unified_logs\n            UPDATE cost = {}, tokens_in = {tokens_in}, tokens_out = {tokens_out}, provider = {}, model = {}, total_tokens = {}\n            WHERE trace_id = '{trace_id}' AND role = 'assistant'\n            \n        ",
        py_float(cost),
        py_str(provider),
        py_str(model),
        tokens_in + tokens_out,
    )
}

/// rvbbit's three retrieval strategies (`get_training_examples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Recent,
    HighConfidence,
    Random,
}

/// The query `get_training_examples` sends for `strategy` (defaults: limit 5,
/// min_confidence 0.8, verified_only false).
pub fn retrieval(
    strategy: Strategy,
    cascade_id: &str,
    cell_name: &str,
    limit: u32,
    min_confidence: f64,
    verified_only: bool,
) -> String {
    let verified_clause = if verified_only {
        "AND verified = true"
    } else {
        ""
    };
    let min = py_float(min_confidence);
    match strategy {
        Strategy::Recent => format!(
            "\n        SELECT\n            user_input,\n            assistant_output,\n            confidence,\n            timestamp,\n            trace_id\n        FROM training_examples_with_annotations\n        WHERE cascade_id = '{cascade_id}'\n          AND cell_name = '{cell_name}'\n          AND trainable = true\n          AND confidence >= {min}\n          AND user_input != ''\n          AND assistant_output != ''\n          {verified_clause}\n        ORDER BY timestamp DESC\n        LIMIT {limit}\n    "
        ),
        Strategy::HighConfidence => format!(
            "\n        SELECT\n            user_input,\n            assistant_output,\n            confidence,\n            timestamp,\n            trace_id\n        FROM training_examples_with_annotations\n        WHERE cascade_id = '{cascade_id}'\n          AND cell_name = '{cell_name}'\n          AND trainable = true\n          AND user_input != ''\n          AND assistant_output != ''\n          {verified_clause}\n        ORDER BY confidence DESC, timestamp DESC\n        LIMIT {limit}\n    "
        ),
        Strategy::Random => format!(
            "\n        SELECT\n            user_input,\n            assistant_output,\n            confidence,\n            timestamp,\n            trace_id\n        FROM training_examples_with_annotations\n        WHERE cascade_id = '{cascade_id}'\n          AND cell_name = '{cell_name}'\n          AND trainable = true\n          AND confidence >= {min}\n          AND user_input != ''\n          AND assistant_output != ''\n        ORDER BY rand()\n        LIMIT {limit}\n    "
        ),
    }
}

/// The filters of Studio's example grid (`GET /api/training/examples`).
#[derive(Default, Clone, Debug)]
pub struct GridFilters<'a> {
    pub cascade_ids: Vec<&'a str>,
    pub cell_names: Vec<&'a str>,
    pub session_id: Option<&'a str>,
    pub trainable: Option<bool>,
    pub verified: Option<bool>,
    pub search: Option<&'a str>,
}

fn doubled(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn search_clause(search: &str) -> String {
    let escaped = search.replace('\'', "''");
    format!("(\n            positionCaseInsensitiveUTF8(user_input, '{escaped}') > 0\n            OR positionCaseInsensitiveUTF8(assistant_output, '{escaped}') > 0\n        )")
}

impl GridFilters<'_> {
    fn where_sql(&self) -> String {
        let mut clauses = Vec::new();
        if !self.cascade_ids.is_empty() {
            clauses.push(format!("cascade_id IN ({})", doubled(&self.cascade_ids)));
        }
        if !self.cell_names.is_empty() {
            clauses.push(format!("cell_name IN ({})", doubled(&self.cell_names)));
        }
        if let Some(session) = self.session_id {
            clauses.push(format!("session_id = '{session}'"));
        }
        if let Some(trainable) = self.trainable {
            clauses.push(format!("trainable = {}", py_bool(trainable)));
        }
        if let Some(verified) = self.verified {
            clauses.push(format!("verified = {}", py_bool(verified)));
        }
        if let Some(search) = self.search {
            clauses.push(search_clause(search));
        }
        if clauses.is_empty() {
            "1=1".into()
        } else {
            clauses.join(" AND ")
        }
    }

    /// The grid's query, `LIMIT limit OFFSET offset` (Studio's default limit is 100;
    /// its page sends 500).
    pub fn grid(&self, limit: u32, offset: u32) -> String {
        format!(
            "\n        SELECT\n            trace_id,\n            session_id,\n            cascade_id,\n            cell_name,\n            user_input,\n            assistant_output,\n            trainable,\n            verified,\n            confidence,\n            timestamp,\n            model,\n            cost,\n            caller_id\n        FROM training_examples_with_annotations\n        WHERE {}\n          AND LENGTH(assistant_output) > 0\n        ORDER BY timestamp DESC\n        LIMIT {limit} OFFSET {offset}\n    ",
            self.where_sql()
        )
    }

    /// What Studio's "assess confidence" (`POST /api/training/assess-confidence`, with
    /// the grid's filters) sends to choose the traces it queues for the on-demand
    /// scorer: the grid's `WHERE` and order, the trace ids only, at most 500. `None`
    /// for a session filter, which that endpoint does not take.
    pub fn assess_confidence_selection(&self, limit: u32, offset: u32) -> Option<String> {
        if self.session_id.is_some() {
            return None;
        }
        Some(format!(
            "\n                SELECT trace_id\n                FROM training_examples_with_annotations\n                WHERE {}\n                  AND LENGTH(assistant_output) > 0\n                ORDER BY timestamp DESC\n                LIMIT {} OFFSET {offset}\n            ",
            self.where_sql(),
            limit.min(500),
        ))
    }
}

/// What the on-demand scorer (`assess_trace_ids_confidence`, without `force`) reads
/// first: which of the queued traces have a score already (they are skipped).
pub fn already_assessed(trace_ids: &[&str]) -> String {
    format!(
        "\n                SELECT trace_id FROM training_annotations\n                WHERE trace_id IN ({})\n                  AND confidence IS NOT NULL\n            ",
        doubled(trace_ids)
    )
}

/// Studio's filter options (`GET /api/training/filter-options`): the cascades (given
/// the selected cells) and the cells (given the selected cascades).
pub fn filter_options(
    cascade_ids: &[&str],
    cell_names: &[&str],
    trainable: Option<bool>,
    search: Option<&str>,
) -> (String, String) {
    let mut base = vec!["LENGTH(assistant_output) > 0".to_string()];
    if let Some(trainable) = trainable {
        base.push(format!("trainable = {}", py_bool(trainable)));
    }
    if let Some(search) = search {
        base.push(search_clause(search));
    }
    let base = base.join(" AND ");
    let mut cascade_where = vec![base.clone()];
    if !cell_names.is_empty() {
        cascade_where.push(format!("cell_name IN ({})", doubled(cell_names)));
    }
    let mut cell_where = vec![base];
    if !cascade_ids.is_empty() {
        cell_where.push(format!("cascade_id IN ({})", doubled(cascade_ids)));
    }
    (
        format!(
            "\n            SELECT DISTINCT cascade_id\n            FROM training_examples_with_annotations\n            WHERE {}\n            ORDER BY cascade_id\n        ",
            cascade_where.join(" AND ")
        ),
        format!(
            "\n            SELECT DISTINCT cell_name\n            FROM training_examples_with_annotations\n            WHERE {}\n            ORDER BY cell_name\n        ",
            cell_where.join(" AND ")
        ),
    )
}

/// Studio's session view (`GET /api/training/session-logs`).
pub fn session_logs(session_id: &str) -> String {
    format!(
        "\n        SELECT\n            trace_id,\n            cascade_id,\n            cell_name,\n            user_input,\n            assistant_output,\n            trainable,\n            verified,\n            confidence,\n            timestamp,\n            model,\n            cost\n        FROM training_examples_with_annotations\n        WHERE session_id = '{session_id}'\n          AND LENGTH(assistant_output) > 0\n        ORDER BY timestamp ASC\n    "
    )
}

/// Studio's KPI source (`get_training_stats`).
pub fn stats(cascade_id: Option<&str>, cell_name: Option<&str>) -> String {
    let mut clauses = Vec::new();
    if let Some(c) = cascade_id {
        clauses.push(format!("cascade_id = '{c}'"));
    }
    if let Some(n) = cell_name {
        clauses.push(format!("cell_name = '{n}'"));
    }
    let where_sql = if clauses.is_empty() {
        "1=1".to_string()
    } else {
        clauses.join(" AND ")
    };
    format!(
        "\n        SELECT\n            cascade_id,\n            cell_name,\n            trainable_count,\n            verified_count,\n            avg_confidence,\n            total_executions\n        FROM training_stats_by_cascade\n        WHERE {where_sql}\n        ORDER BY trainable_count DESC\n    "
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_formatted_as_clickhouse_driver_formats_them() {
        // Expected strings: what clickhouse_driver's escape_param and Python's
        // str()/repr() print for the same values.
        assert_eq!(py_str("it's a \\ \"x\"\n\t"), r#"'it\'s a \\ "x"\n\t'"#);
        assert_eq!(py_bool(true), "True");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.85), "0.85");
        assert_eq!(py_float(0.00001), "1e-05");
        assert_eq!(py_float(12.5), "12.5");
        assert_eq!(py_list(&["a", "b'c"]), r"['a', 'b\'c']");
        assert_eq!(py_list(&[]), "[]");
    }

    #[test]
    fn utc_formats_the_epoch_and_a_leap_day() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000000");
        assert_eq!(utc(951_782_400_000_000 + 1), "2000-02-29 00:00:00.000001");
    }
}
