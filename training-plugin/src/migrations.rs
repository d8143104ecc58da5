//! The migrations embedded from `migrations/` at build time, and what each statement
//! creates (so `migrate` can say what it created and what was already there).

use crate::model::Kind;

/// One `migrations/NNNN_name.sql` file.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// What an idempotent DDL statement creates, when it is one we recognise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creates {
    /// `CREATE [MATERIALIZED] VIEW|TABLE IF NOT EXISTS name`.
    Object { kind: Kind, name: String },
    /// `ALTER TABLE table ADD INDEX IF NOT EXISTS name`.
    Index { table: String, name: String },
    /// `CREATE OR REPLACE VIEW name`: replaces whatever view has the name.
    Replace { name: String },
    /// `ALTER TABLE table MATERIALIZE INDEX name`: builds an index for existing parts.
    Materialize { table: String, name: String },
    /// `INSERT INTO table ... NOT IN ...`: fills a table with the rows it lacks.
    Fill { table: String },
    /// `DROP TABLE|VIEW IF EXISTS name`: removes an object an earlier migration
    /// created and this version no longer has.
    Drop { name: String },
    /// `ALTER TABLE table MODIFY SETTING …`: the table's settings (its later parts).
    Settings { table: String },
    /// `OPTIMIZE TABLE table … FINAL`: the table's parts, rewritten as they are.
    Rewrite { table: String },
}

impl std::fmt::Display for Creates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Creates::Object { kind, name } => write!(f, "{kind} {name}"),
            Creates::Index { table, name } => write!(f, "index {name} on {table}"),
            Creates::Replace { name } => write!(f, "view {name}"),
            Creates::Materialize { table, name } => {
                write!(f, "index {name} on {table} for existing rows")
            }
            Creates::Fill { table } => write!(f, "rows of {table}"),
            Creates::Drop { name } => write!(f, "{name}"),
            Creates::Settings { table } => write!(f, "MODIFY SETTING of {table}"),
            Creates::Rewrite { table } => write!(f, "OPTIMIZE FINAL of {table}"),
        }
    }
}

/// The statement of the migrations that fills `table` with the rows it lacks.
pub fn fill_statement(table: &str) -> Option<String> {
    MIGRATIONS.iter().rev().find_map(|m| {
        rvbbit_sql_text::split(m.sql)
            .ok()?
            .into_iter()
            .find_map(|s| {
                matches!(creates(&s.text), Some(Creates::Fill { table: t }) if t == table)
                    .then_some(s.text)
            })
    })
}

/// Recognises the statement forms the migrations use (read by
/// [`rvbbit_sql_text::ddl::creates`]). Anything else is `None`.
pub fn creates(statement: &str) -> Option<Creates> {
    use rvbbit_sql_text::ddl::{self, ObjectKind};
    Some(match ddl::creates(statement)? {
        ddl::Creates::Object { kind, name } => Creates::Object {
            kind: match kind {
                ObjectKind::Table => Kind::Table,
                ObjectKind::View => Kind::View,
                ObjectKind::MaterializedView => Kind::MaterializedView,
            },
            name,
        },
        ddl::Creates::Index { table, name } => Creates::Index { table, name },
        ddl::Creates::Replace { name } => Creates::Replace { name },
        ddl::Creates::Materialize { table, name } => Creates::Materialize { table, name },
        ddl::Creates::Fill { table } => Creates::Fill { table },
        ddl::Creates::Drop { name } => Creates::Drop { name },
        ddl::Creates::Settings { table } => Creates::Settings { table },
        ddl::Creates::Rewrite { table } => Creates::Rewrite { table },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvbbit_sql_text::split;

    #[test]
    fn each_form_keeps_its_meaning() {
        // The forms themselves are tested in sql-text (ddl.rs); here, that each maps
        // to the plugin's own.
        assert_eq!(
            creates("create materialized view if not exists `mv` TO t AS SELECT 1"),
            Some(Creates::Object {
                kind: Kind::MaterializedView,
                name: "mv".into()
            })
        );
        assert_eq!(
            creates("CREATE TABLE IF NOT EXISTS t (x UInt8)"),
            Some(Creates::Object {
                kind: Kind::Table,
                name: "t".into()
            })
        );
        assert_eq!(
            creates("CREATE VIEW IF NOT EXISTS v AS SELECT 1"),
            Some(Creates::Object {
                kind: Kind::View,
                name: "v".into()
            })
        );
        assert_eq!(
            creates("ALTER TABLE a ADD INDEX IF NOT EXISTS idx x TYPE set(2) GRANULARITY 1"),
            Some(Creates::Index {
                table: "a".into(),
                name: "idx".into()
            })
        );
        assert_eq!(
            creates("ALTER TABLE a MATERIALIZE INDEX idx"),
            Some(Creates::Materialize {
                table: "a".into(),
                name: "idx".into()
            })
        );
        assert_eq!(
            creates("CREATE OR REPLACE VIEW v AS SELECT 1"),
            Some(Creates::Replace { name: "v".into() })
        );
        assert_eq!(
            creates("DROP VIEW IF EXISTS `old_mv`"),
            Some(Creates::Drop {
                name: "old_mv".into()
            })
        );
        assert_eq!(
            creates("INSERT INTO t SELECT x FROM s WHERE x NOT IN (SELECT x FROM t)"),
            Some(Creates::Fill { table: "t".into() })
        );
        assert_eq!(creates("CREATE TABLE t (x UInt8)"), None);
    }

    #[test]
    fn every_embedded_statement_is_idempotent_ddl() {
        assert!(!MIGRATIONS.is_empty());
        let mut fills = Vec::new();
        for m in MIGRATIONS {
            for s in split(m.sql).unwrap() {
                match creates(&s.text) {
                    None => panic!(
                        "migration {} line {}: not an IF NOT EXISTS statement: {}",
                        m.version, s.line, s.text
                    ),
                    // `creates` takes any INSERT with a NOT IN for a fill: running it
                    // again adds nothing only if it skips the traces its own table has.
                    Some(Creates::Fill { table }) => {
                        let text = s.text.split_whitespace().collect::<Vec<_>>().join(" ");
                        // The relay table (engine Null) holds nothing: what its fill
                        // skips is the traces whose copy already has their latest
                        // annotation.
                        let guard = if table == crate::schema::TRAINABLE_ANNOTATIONS {
                            format!(
                                "NOT IN (SELECT trace_id, annotated_at FROM {})",
                                crate::schema::TRAINABLE_EXAMPLES
                            )
                        } else if table == crate::schema::EXAMPLES_TABLE {
                            // Version 5's copy of version 1's examples picks them in a
                            // subquery.
                            format!("WHERE trace_id NOT IN (SELECT trace_id FROM {table})")
                        } else {
                            format!("AND trace_id NOT IN (SELECT trace_id FROM {table})")
                        };
                        assert!(
                            text.contains(&guard),
                            "migration {} line {}: INSERT INTO {table} does not skip the traces it already has (`{guard}`): {}",
                            m.version,
                            s.line,
                            s.text
                        );
                        fills.push((m.version, table));
                    }
                    Some(_) => {}
                }
            }
        }
        assert_eq!(
            fills,
            [
                (2, "training_annotated_examples".to_string()),
                (3, "training_trainable_examples".to_string()),
                (4, "training_trainable_annotations".to_string()),
                (5, "training_examples_current".to_string()),
                (5, "training_trainable_examples".to_string()),
            ],
            "the INSERTs of the migrations"
        );
    }

    #[test]
    fn the_embedded_migrations_split_cleanly() {
        for m in MIGRATIONS {
            let statements = split(m.sql).unwrap();
            assert!(
                !statements.is_empty(),
                "migration {} has no statements",
                m.version
            );
            for s in statements {
                assert!(!s.text.trim_end().ends_with(';'));
            }
        }
    }
}
