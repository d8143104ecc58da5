//! The typed vocabulary of the training plugin: what migrate found, what it did to
//! each object, the ledger's statuses, the states `status` shows, the kinds of
//! objects and the ways an object can differ from this version. Each value prints
//! (and serializes) as exactly the word the commands have always printed, so output
//! and JSON stay the same; code matches on the variants instead of comparing strings.

use std::fmt;

/// Writes `$text` for each variant, through `Formatter::pad` so widths apply.
macro_rules! words {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// What migrate found before it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No training object and no ledger row: a fresh install.
    New,
    /// Installed by migrate (every migration applied, or some still to apply).
    Installed,
    /// An install made by hand from an earlier version of the SQL (or the upgrade of
    /// one that a previous run began and did not finish).
    HandApplied,
}

words!(Found {
    New => "new",
    Installed => "installed",
    HandApplied => "hand-applied",
});

/// What migrate did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Exists,
    Skipped,
    Absent,
    Ran,
    Replaced,
    Removed,
    Repaired,
    Recorded,
}

words!(Action {
    Created => "created",
    Exists => "exists",
    Skipped => "skipped",
    Absent => "absent",
    Ran => "ran",
    Replaced => "replaced",
    Removed => "removed",
    Repaired => "repaired",
    Recorded => "recorded",
});

/// The `status` column of a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStatus {
    Running,
    Applied,
    Failed,
    /// Stopped by Ctrl-C between two steps: nothing half-applied, `migrate` resumes.
    Interrupted,
}

words!(LedgerStatus {
    Running => "running",
    Applied => "applied",
    Failed => "failed",
    Interrupted => "interrupted",
});

impl LedgerStatus {
    /// The status a ledger row holds; anything unknown counts as still running.
    pub fn parse(text: &str) -> LedgerStatus {
        match text {
            "applied" => LedgerStatus::Applied,
            "failed" => LedgerStatus::Failed,
            "interrupted" => LedgerStatus::Interrupted,
            _ => LedgerStatus::Running,
        }
    }
}

/// The state of one migration, as `rvbbit training status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    Pending,
    ChecksumMismatch,
    Applied,
    Failed,
    InProgress,
    Interrupted,
}

words!(MigrationState {
    Pending => "pending",
    ChecksumMismatch => "checksum mismatch",
    Applied => "applied",
    Failed => "failed",
    InProgress => "in progress",
    Interrupted => "interrupted",
});

/// What kind of object a training object is: one encoding for the migrations'
/// statements, the expected schema and drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    View,
    MaterializedView,
}

words!(Kind {
    Table => "table",
    View => "view",
    MaterializedView => "materialized view",
});

impl Kind {
    /// `system.tables.engine` of a view kind; empty for tables (their engine varies).
    pub fn view_engine(self) -> &'static str {
        match self {
            Kind::Table => "",
            Kind::View => "View",
            Kind::MaterializedView => "MaterializedView",
        }
    }
}

/// When migrate puts a difference right: decided once, by `drift::Finding::fix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// On every run, after the migrations: the object or index is missing, and
    /// creating it loses nothing.
    Create,
    /// With `--repair` (or upgrading a hand-applied install), before the migrations:
    /// columns of tables (later statements read them), and a plain view standing where
    /// a materialized view belongs, dropped so that its migration creates it again.
    RepairFirst,
    /// With `--repair` (or upgrading a hand-applied install), after the migrations.
    RepairAfter,
    /// Never: it would rewrite or drop data.
    Refused,
}

/// How one live object differs from this version's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The object does not exist at all.
    Missing,
    /// Another engine than the expected one.
    Engine {
        live: String,
        expected: String,
    },
    /// Another sorting key than the expected one.
    SortingKey {
        live: String,
        expected: String,
    },
    ColumnMissing {
        column: String,
    },
    ColumnType {
        column: String,
        live: String,
        expected: String,
    },
    /// A default the definition does not have.
    ColumnDefault {
        column: String,
        kind: String,
        expression: String,
    },
    /// A view's query is not this version's.
    QueryDiffers,
    IndexMissing {
        index: String,
    },
    /// Several differences of one view, in order.
    Several(Vec<Problem>),
}

impl Problem {
    /// The object or index does not exist at all (creating it loses nothing).
    pub fn is_missing(&self) -> bool {
        matches!(self, Problem::Missing | Problem::IndexMissing { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("missing"),
            Problem::Engine { live, expected } => write!(f, "is a {live}, expected a {expected}"),
            Problem::SortingKey { live, expected } => {
                write!(f, "is sorted by ({live}), expected ({expected})")
            }
            Problem::ColumnMissing { column } => write!(f, "column {column} missing"),
            Problem::ColumnType {
                column,
                live,
                expected,
            } => write!(f, "column {column} is {live}, expected {expected}"),
            Problem::ColumnDefault {
                column,
                kind,
                expression,
            } => write!(f, "column {column} has {kind} {expression}, expected none"),
            Problem::QueryDiffers => f.write_str("its query differs from this version's"),
            Problem::IndexMissing { index } => write!(f, "index {index} missing"),
            Problem::Several(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_ones_printed_before() {
        assert_eq!(Found::HandApplied.to_string(), "hand-applied");
        assert_eq!(
            serde_json::to_string(&Found::Installed).unwrap(),
            "\"installed\""
        );
        assert_eq!(format!("{:8}|", Action::Repaired), "repaired|");
        assert_eq!(format!("{:8}|", Action::Ran), "ran     |");
        assert_eq!(
            serde_json::to_string(&MigrationState::ChecksumMismatch).unwrap(),
            "\"checksum mismatch\""
        );
        assert_eq!(Kind::MaterializedView.to_string(), "materialized view");
        for status in [
            LedgerStatus::Running,
            LedgerStatus::Applied,
            LedgerStatus::Failed,
            LedgerStatus::Interrupted,
        ] {
            assert_eq!(LedgerStatus::parse(status.as_str()), status);
        }
    }

    #[test]
    fn problems_read_as_before() {
        let several = Problem::Several(vec![
            Problem::ColumnMissing { column: "a".into() },
            Problem::ColumnType {
                column: "b".into(),
                live: "String".into(),
                expected: "UInt8".into(),
            },
            Problem::QueryDiffers,
        ]);
        assert_eq!(
            several.to_string(),
            "column a missing; column b is String, expected UInt8; its query differs from this version's"
        );
        assert!(!several.is_missing());
        assert!(Problem::IndexMissing { index: "i".into() }.is_missing());
        assert_eq!(
            Problem::IndexMissing { index: "i".into() }.to_string(),
            "index i missing"
        );
        assert!(Problem::Missing.is_missing());
    }
}
