//! A command's argument signature: its flags, options and positional arguments with
//! their help, value names and possible values, as the host needs them to list and
//! complete a plugin's command line.
//!
//! It crosses the ABI as JSON in [`crate::abi::CommandDescriptor::signature`], format
//! [`FORMAT`]:
//!
//! ```json
//! {"format": 1, "args": [
//!   {"id": "dry_run", "long": "dry-run", "help": "Print the statements ...", "kind": "flag"},
//!   {"id": "format", "long": "format", "value_name": "FORMAT", "kind": "value",
//!    "possible_values": ["table", "json"]},
//!   {"id": "trace_ids", "value_name": "TRACE_ID", "kind": "append", "positional": true}
//! ]}
//! ```
//!
//! Every field but `id` may be left out (absent means empty, `false` or `"flag"`), and
//! a reader ignores fields it does not know, so a later format can add some. A plugin
//! built with the `cli` feature derives it from its clap command
//! ([`crate::cli`]); nothing is written twice.

/// The version of the JSON layout; a host ignores a signature of another format.
pub const FORMAT: u32 = 1;

/// What an argument does with what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    any(feature = "cli", feature = "host"),
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Kind {
    /// A switch without a value (`--dry-run`).
    #[default]
    Flag,
    /// A switch that counts how often it is given (`-v -v`).
    Count,
    /// Takes one value (`--format json`).
    Value,
    /// Takes values, and may be given more than once (`--tag a --tag b`, `ID...`).
    Append,
}

/// One flag, option or positional argument.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    any(feature = "cli", feature = "host"),
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct Argument {
    /// A name unique within the command.
    pub id: String,
    /// `dry-run` for `--dry-run`.
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "Option::is_none")
    )]
    pub long: Option<String>,
    /// `v` for `-v`.
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "Option::is_none")
    )]
    pub short: Option<char>,
    /// One line of help.
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "Option::is_none")
    )]
    pub help: Option<String>,
    /// The placeholder shown for the value (`SECONDS`).
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "Option::is_none")
    )]
    pub value_name: Option<String>,
    pub kind: Kind,
    /// The values it accepts, when they are a fixed list (completed by the shell).
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "Vec::is_empty")
    )]
    pub possible_values: Vec<String>,
    /// A positional argument (no `long` or `short`).
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "is_false")
    )]
    pub positional: bool,
    /// Left out of help and completions.
    #[cfg_attr(
        any(feature = "cli", feature = "host"),
        serde(skip_serializing_if = "is_false")
    )]
    pub hidden: bool,
}

#[cfg(any(feature = "cli", feature = "host"))]
fn is_false(value: &bool) -> bool {
    !*value
}

/// The arguments of one command, in the order its help lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(
    any(feature = "cli", feature = "host"),
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct Signature {
    /// [`FORMAT`].
    pub format: u32,
    pub args: Vec<Argument>,
}

#[cfg(any(feature = "cli", feature = "host"))]
impl Signature {
    /// The JSON that crosses the ABI.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and lists always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the JSON a plugin declared. `Ok(None)` for a format this crate does not
    /// know (the command loads, without a signature).
    pub fn from_json(json: &str) -> Result<Option<Signature>, String> {
        #[derive(serde::Deserialize)]
        struct Format {
            #[serde(default)]
            format: u32,
        }
        let format: Format = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if format.format != FORMAT {
            return Ok(None);
        }
        let signature: Signature = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut ids = std::collections::HashSet::new();
        for arg in &signature.args {
            if arg.id.is_empty() || !ids.insert(arg.id.as_str()) {
                return Err(format!("argument id {:?} is empty or repeated", arg.id));
            }
        }
        Ok(Some(signature))
    }
}

#[cfg(all(test, any(feature = "cli", feature = "host")))]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_defaults() {
        let signature = Signature {
            format: FORMAT,
            args: vec![
                Argument {
                    id: "dry_run".into(),
                    long: Some("dry-run".into()),
                    help: Some("Change nothing".into()),
                    ..Argument::default()
                },
                Argument {
                    id: "ids".into(),
                    value_name: Some("ID".into()),
                    kind: Kind::Append,
                    positional: true,
                    ..Argument::default()
                },
            ],
        };
        let json = signature.to_json();
        assert_eq!(
            json,
            r#"{"format":1,"args":[{"id":"dry_run","long":"dry-run","help":"Change nothing","kind":"flag"},{"id":"ids","value_name":"ID","kind":"append","positional":true}]}"#
        );
        assert_eq!(Signature::from_json(&json), Ok(Some(signature)));
        // Fields left out are empty; unknown fields are ignored.
        let minimal = Signature::from_json(r#"{"format":1,"args":[{"id":"x","later":true}]}"#);
        assert_eq!(
            minimal,
            Ok(Some(Signature {
                format: 1,
                args: vec![Argument {
                    id: "x".into(),
                    ..Argument::default()
                }]
            }))
        );
    }

    #[test]
    fn another_format_is_ignored_and_garbage_refused() {
        assert_eq!(Signature::from_json(r#"{"format":2,"args":7}"#), Ok(None));
        assert!(Signature::from_json("not json").is_err());
        assert!(Signature::from_json(r#"{"format":1,"args":[{"id":"a"},{"id":"a"}]}"#).is_err());
    }
}
