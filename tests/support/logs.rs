//! `unified_logs` rows the way rvbbit writes them: JSON columns are Python's
//! `json.dumps(value)` (ASCII-only, `", "` and `": "` separators).

use serde_json::{json, Value};

/// The columns of `unified_logs` the training system reads; the others take their defaults.
#[derive(clickhouse::Row, serde::Serialize, Debug, Clone)]
pub struct LogRow {
    pub session_id: String,
    pub trace_id: String,
    pub node_type: String,
    pub role: String,
    pub cascade_id: Option<String>,
    pub cell_name: Option<String>,
    pub model: Option<String>,
    pub full_request_json: Option<String>,
    pub content_json: Option<String>,
}

impl LogRow {
    /// An assistant reply in cascade `cascade`, cell `cell`, answering `messages`
    /// with `reply` (any JSON value: a string for a text reply).
    pub fn assistant(
        trace_id: &str,
        cascade: &str,
        cell: &str,
        messages: Value,
        reply: Value,
    ) -> LogRow {
        LogRow {
            session_id: format!("session-{cascade}"),
            trace_id: trace_id.into(),
            node_type: "agent".into(),
            role: "assistant".into(),
            cascade_id: Some(cascade.into()),
            cell_name: Some(cell.into()),
            model: Some("openai/gpt-4o-mini".into()),
            full_request_json: Some(py_json(
                &json!({"model": "openai/gpt-4o-mini", "messages": messages, "temperature": 0.2}),
            )),
            content_json: Some(py_json(&reply)),
        }
    }

    /// Whether the training system makes an example of this row (README, "What
    /// `migrate` creates"): an `assistant` row with a non-empty `cascade_id` and a
    /// non-empty reply (a JSON null or an empty JSON string is no reply). The ground
    /// truth to count examples against.
    pub fn is_example(&self) -> bool {
        let reply = match self.content_json.as_deref() {
            None => false,
            Some(json) => match serde_json::from_str::<Value>(json) {
                Ok(Value::String(text)) => !text.is_empty(),
                Ok(Value::Null) => false,
                Ok(_) => true,
                Err(_) => !json.is_empty(),
            },
        };
        self.role == "assistant"
            && self.cascade_id.as_deref().is_some_and(|c| !c.is_empty())
            && reply
    }

    /// A simple example: system prompt, one user turn, a text reply.
    pub fn simple(
        trace_id: &str,
        cascade: &str,
        cell: &str,
        question: &str,
        answer: &str,
    ) -> LogRow {
        LogRow::assistant(
            trace_id,
            cascade,
            cell,
            json!([{"role": "system", "content": "You are a careful analyst."}, {"role": "user", "content": question}]),
            json!(answer),
        )
    }
}

/// Writes `rows` with a column list (`INSERT INTO unified_logs (…) FORMAT RowBinary`);
/// ClickHouse fills the other columns with their defaults, as for a partial insert.
/// (Validation would insist on every column without a default; rvbbit fills those,
/// these tests leave them NULL.)
/// SQL inserting `rows` examples-to-be spread over eleven past months (within rvbbit's
/// one-year TTL), a few thousand per month: enough history for a backfill that runs
/// month by month long enough to be interrupted.
pub fn history_sql(rows: u64) -> String {
    format!(
        "INSERT INTO unified_logs (session_id, trace_id, node_type, role, cascade_id, cell_name, full_request_json, content_json, timestamp) \
         SELECT 's', concat('h-', toString(number)), 'agent', 'assistant', 'casc', 'cell', \
                concat('{{\"messages\": [{{\"role\": \"user\", \"content\": \"question ', toString(number), '\"}}]}}'), \
                concat('\"answer ', toString(number), '\"'), now64(6) - toIntervalDay(1 + (number % 11) * 30) \
         FROM numbers({rows})"
    )
}

/// A trace's latest annotation as `training_examples_with_annotations` shows it.
#[derive(clickhouse::Row, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Annotated {
    pub trace_id: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: String,
    pub tags: Vec<String>,
    pub annotated_by: String,
}

pub async fn insert(client: &clickhouse::Client, rows: &[LogRow]) {
    let client = client.clone().with_validation(false);
    let mut insert = client
        .insert::<LogRow>("unified_logs")
        .await
        .expect("insert into unified_logs");
    for row in rows {
        insert.write(row).await.expect("write row");
    }
    insert.end().await.expect("finish insert");
}

/// Python's `json.dumps(value)` with its defaults.
pub fn py_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        // Expected strings are what CPython's json.dumps prints for the same values.
        assert_eq!(
            py_json(&json!("é 🐇 \"q\"\n")),
            r#""\u00e9 \ud83d\udc07 \"q\"\n""#
        );
        assert_eq!(
            py_json(&json!({"a": [1, null, true]})),
            r#"{"a": [1, null, true]}"#
        );
    }
}
