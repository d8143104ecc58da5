//! The one JSON document every command prints on stdout under `--format json`, the
//! host's own and every plugin's alike (docs/JSON.md):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "command": "training stats",
//!   "ok": true,
//!   "database": "rvbbit",
//!   "server_version": "26.9.2.1",
//!   "data": [],
//!   "error": null
//! }
//! ```
//!
//! Always these seven keys, in this order. `command` is the command's path as typed
//! after `rvbbit`; `database` and `server_version` are `null` when no server was
//! reached; `data` is the command's data (`null` when it failed before having any);
//! `error` is `null` on success, else the kind of failure (the snake_case name of the
//! exit code, [`crate::exit::kind`]), the exit code and the one-line message also
//! printed on stderr.

use serde::Serialize;
pub use serde_json::value::RawValue;

/// The version of the envelope's shape: grows when a key changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// The envelope, as it is written (keys in this order).
#[derive(Serialize, Debug)]
pub struct Envelope<'a, T: Serialize> {
    pub schema_version: u32,
    pub command: &'a str,
    pub ok: bool,
    pub database: Option<&'a str>,
    pub server_version: Option<&'a str>,
    pub data: Option<&'a T>,
    pub error: Option<ErrorInfo>,
}

/// Why a command failed: `kind` names the exit code (`connection`, `check_failed`, …).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub kind: &'static str,
    pub exit_code: i32,
    pub message: String,
}

impl ErrorInfo {
    /// The error object of a command that ends with `exit_code` and `message`
    /// (its line breaks, if any, joined with spaces: one line).
    pub fn new(exit_code: i32, message: &str) -> ErrorInfo {
        ErrorInfo {
            kind: crate::exit::kind(exit_code),
            exit_code,
            message: message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The document for `command`, indented; `error` decides `ok`.
pub fn document<T: Serialize>(
    command: &str,
    database: Option<&str>,
    server_version: Option<&str>,
    data: Option<&T>,
    error: Option<ErrorInfo>,
) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Envelope {
        schema_version: SCHEMA_VERSION,
        command,
        ok: error.is_none(),
        database,
        server_version,
        data,
        error,
    })
}

/// `data` rendered now, to be placed in a [`document`] later (a command keeps its data
/// until it knows how it ends): indented as the value of a key of the envelope, its
/// keys in the order `data` serialises them.
pub fn data<T: Serialize + ?Sized>(data: &T) -> serde_json::Result<Box<RawValue>> {
    let text = serde_json::to_string_pretty(data)?;
    // JSON strings hold no raw line breaks, so every line break is the layout's own.
    RawValue::from_string(text.replace('\n', "\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        zeta: u32,
        alpha: &'static str,
    }

    fn keys(text: &str) -> Vec<String> {
        // The top-level keys are the lines indented by exactly two spaces.
        text.lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
            .filter_map(|l| l.trim().split('"').nth(1).map(str::to_string))
            .collect()
    }

    #[test]
    fn seven_keys_in_order_and_data_keeps_its_own_order() {
        let data = data(&vec![Row {
            zeta: 1,
            alpha: "a\nb",
        }])
        .unwrap();
        let text = document(
            "training stats",
            Some("rvbbit"),
            Some("26.9"),
            Some(&data),
            None,
        )
        .unwrap();
        assert_eq!(
            keys(&text),
            [
                "schema_version",
                "command",
                "ok",
                "database",
                "server_version",
                "data",
                "error"
            ]
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(value["data"][0]["alpha"], "a\nb");
        assert!(text.find("\"zeta\"").unwrap() < text.find("\"alpha\"").unwrap());
        assert!(
            text.contains("\n  \"data\": [\n    {\n      \"zeta\": 1,"),
            "{text}"
        );
    }

    #[test]
    fn an_error_is_not_ok_and_its_message_one_line() {
        let text = document::<()>(
            "plugins",
            None,
            None,
            None,
            Some(ErrorInfo::new(3, "cannot reach\n  the  server\n")),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["database"], serde_json::Value::Null);
        assert_eq!(value["data"], serde_json::Value::Null);
        assert_eq!(value["error"]["kind"], "connection");
        assert_eq!(value["error"]["exit_code"], 3);
        assert_eq!(value["error"]["message"], "cannot reach the  server");
    }
}
