//! Reads the DDL statements of migrations: what a statement creates ([`creates`]), a
//! view's query ([`view_select`]), a table's column definitions
//! ([`column_definitions`]) and its sorting key ([`sorting_key`]). All of them read
//! [`crate::lex`]'s tokens, so words inside strings, quoted identifiers, heredocs and
//! comments never count as keywords. A statement that does not lex (something left
//! open) gives `None` or nothing.

use crate::lex::{Kind, Lexed};

/// What kind of object a `CREATE … IF NOT EXISTS` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    View,
    MaterializedView,
}

/// What an idempotent DDL statement creates, when it is one of the forms migrations use.
/// Names are unquoted; a qualified name is its parts joined with `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creates {
    /// `CREATE [MATERIALIZED] VIEW|TABLE IF NOT EXISTS name`.
    Object { kind: ObjectKind, name: String },
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
    /// `ALTER TABLE table MODIFY SETTING …`: changes a table's settings (its later parts).
    Settings { table: String },
    /// `OPTIMIZE TABLE table … FINAL`: rewrites a table's parts as they are.
    Rewrite { table: String },
}

/// The name at token `i`, parts joined with `.`.
fn name_at(lexed: &Lexed<'_>, i: usize) -> Option<String> {
    lexed.name_parts(i).map(|(_, parts)| parts.join("."))
}

/// The index after the name at token `i`.
fn after_name(lexed: &Lexed<'_>, i: usize) -> Option<usize> {
    lexed.name_parts(i).map(|(next, _)| next)
}

/// Recognises the statement forms the migrations use. Anything else is `None`.
pub fn creates(statement: &str) -> Option<Creates> {
    let l = Lexed::new(statement).ok()?;
    if l.kws(0, &["CREATE", "TABLE", "IF", "NOT", "EXISTS"]) {
        return Some(Creates::Object {
            kind: ObjectKind::Table,
            name: name_at(&l, 5)?,
        });
    }
    if l.kws(0, &["CREATE", "VIEW", "IF", "NOT", "EXISTS"]) {
        return Some(Creates::Object {
            kind: ObjectKind::View,
            name: name_at(&l, 5)?,
        });
    }
    if l.kws(
        0,
        &["CREATE", "MATERIALIZED", "VIEW", "IF", "NOT", "EXISTS"],
    ) {
        return Some(Creates::Object {
            kind: ObjectKind::MaterializedView,
            name: name_at(&l, 6)?,
        });
    }
    if l.kws(0, &["CREATE", "OR", "REPLACE", "VIEW"]) {
        return Some(Creates::Replace {
            name: name_at(&l, 4)?,
        });
    }
    if l.kws(0, &["ALTER", "TABLE"]) {
        let table = name_at(&l, 2)?;
        let next = after_name(&l, 2)?;
        if l.kws(next, &["ADD", "INDEX", "IF", "NOT", "EXISTS"]) {
            return Some(Creates::Index {
                table,
                name: name_at(&l, next + 5)?,
            });
        }
        if l.kws(next, &["MATERIALIZE", "INDEX"]) {
            return Some(Creates::Materialize {
                table,
                name: name_at(&l, next + 2)?,
            });
        }
        if l.kws(next, &["MODIFY", "SETTING"]) {
            return Some(Creates::Settings { table });
        }
        return None;
    }
    if l.kws(0, &["OPTIMIZE", "TABLE"]) {
        let table = name_at(&l, 2)?;
        let next = after_name(&l, 2)?;
        let fin = (next..l.len()).any(|i| l.kw(i, "FINAL"));
        return fin.then_some(Creates::Rewrite { table });
    }
    if (l.kw(1, "TABLE") || l.kw(1, "VIEW")) && l.kws(0, &["DROP"]) && l.kws(2, &["IF", "EXISTS"]) {
        return Some(Creates::Drop {
            name: name_at(&l, 4)?,
        });
    }
    if l.kws(0, &["INSERT", "INTO"]) {
        let not_in = (0..l.len()).any(|i| l.kws(i, &["NOT", "IN"]));
        if not_in {
            return Some(Creates::Fill {
                table: name_at(&l, 2)?,
            });
        }
    }
    None
}

/// The index of the token after `CREATE [OR REPLACE] [MATERIALIZED] VIEW`, if the
/// statement starts so.
fn after_create_view(l: &Lexed<'_>) -> Option<usize> {
    if !l.kw(0, "CREATE") {
        return None;
    }
    let mut i = if l.kws(1, &["OR", "REPLACE"]) { 3 } else { 1 };
    if l.kw(i, "MATERIALIZED") {
        i += 1;
    }
    l.kw(i, "VIEW").then_some(i + 1)
}

/// The query of `CREATE [OR REPLACE] [MATERIALIZED] VIEW [IF NOT EXISTS] name [TO t]
/// … AS query`: the text after the first `AS` outside brackets, trimmed. `None` for
/// any other statement.
pub fn view_select(statement: &str) -> Option<String> {
    let l = Lexed::new(statement).ok()?;
    let from = after_create_view(&l)?;
    let as_ = (from..l.len()).find(|&i| l.toks[i].depth == 0 && l.kw(i, "AS"))?;
    let query = statement[l.toks[as_].end..].trim();
    (!query.is_empty()).then(|| query.to_string())
}

/// The column definitions (`name Type [DEFAULT expr] …`) of the first bracketed list of
/// a `CREATE TABLE … ( … )`: `(name, definition)` for each item that is not an
/// `INDEX`, the definition's tokens with each gap between them (whitespace, comments)
/// written as one space. An item the list does not finish (no `,` or `)` after it) is
/// left out.
pub fn column_definitions(statement: &str) -> Vec<(String, String)> {
    let Ok(l) = Lexed::new(statement) else {
        return Vec::new();
    };
    let Some(open) = (0..l.len()).find(|&i| l.punct(i, b'(')) else {
        return Vec::new();
    };
    let inner = l.toks[open].depth + 1;
    let mut out = Vec::new();
    let mut first = open + 1;
    for i in open + 1..l.len() {
        let t = l.toks[i];
        let ends_item = t.depth == inner && t.kind == Kind::Punct(b',')
            || t.depth < inner && t.kind == Kind::Punct(b')');
        if !ends_item {
            if t.depth < inner {
                break; // a `]` closing the list: not a column list
            }
            continue;
        }
        if first < i && !l.kw(first, "INDEX") {
            if let Some(name) = l.ident(first) {
                out.push((name, l.joined(first, i)));
            }
        }
        if t.kind == Kind::Punct(b')') {
            break;
        }
        first = i + 1;
    }
    out
}

/// Clause keywords that end an unbracketed sorting key.
const AFTER_ORDER_BY: &[&str] = &[
    "PARTITION",
    "PRIMARY",
    "SAMPLE",
    "TTL",
    "SETTINGS",
    "COMMENT",
    "AS",
    "POPULATE",
    "EMPTY",
    "DEFINER",
    "SQL",
    "ENGINE",
    "ORDER",
];

/// The sorting key of a `CREATE TABLE … ORDER BY key`: the text inside the brackets
/// of `ORDER BY (a, b)` as written, or else the tokens after `ORDER BY` up to the next
/// clause (`PARTITION BY`, `SETTINGS`, …). Only a bare `ORDER BY` outside brackets
/// counts (not one in a comment, string or the table's column defaults).
pub fn sorting_key(statement: &str) -> Option<String> {
    let l = Lexed::new(statement).ok()?;
    let at = (0..l.len()).find(|&i| l.toks[i].depth == 0 && l.kws(i, &["ORDER", "BY"]))?;
    let from = at + 2;
    if l.punct(from, b'(') {
        let close = l.closing(from)?;
        return Some(statement[l.toks[from].end..l.toks[close].start].to_string());
    }
    let to = (from..l.len())
        .find(|&i| {
            l.toks[i].depth == 0 && (l.punct(i, b';') || AFTER_ORDER_BY.iter().any(|w| l.kw(i, w)))
        })
        .unwrap_or(l.len());
    (from < to).then(|| statement[l.toks[from].start..l.toks[to - 1].end].to_string())
}

/// Whether `statement` names the object `name` anywhere in its code (a table it
/// reads, a view it targets): an identifier token, bare or quoted, or the last part of
/// a qualified name, equal to `name`. Words in comments and strings do not count.
pub fn mentions(statement: &str, name: &str) -> bool {
    let Ok(l) = Lexed::new(statement) else {
        return false;
    };
    (0..l.len()).any(|i| l.ident(i).is_some_and(|ident| ident == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_identifiers_not_words_in_comments_or_strings() {
        let sql = "INSERT INTO copy SELECT x FROM db.`kept` -- from old\nWHERE note != 'old'";
        assert!(mentions(sql, "kept"));
        assert!(mentions(sql, "copy"));
        assert!(!mentions(sql, "old"));
        assert!(!mentions(sql, "kep"));
        assert!(!mentions("SELECT 'unterminated", "unterminated"));
    }

    #[test]
    fn recognises_the_statement_forms() {
        assert_eq!(
            creates("CREATE TABLE IF NOT EXISTS training_annotations\n(x UInt8)"),
            Some(Creates::Object {
                kind: ObjectKind::Table,
                name: "training_annotations".into()
            })
        );
        assert_eq!(
            creates("create materialized view if not exists `mv` TO t AS SELECT 1"),
            Some(Creates::Object {
                kind: ObjectKind::MaterializedView,
                name: "mv".into()
            })
        );
        assert_eq!(
            creates("CREATE VIEW IF NOT EXISTS v AS SELECT 1"),
            Some(Creates::Object {
                kind: ObjectKind::View,
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
            creates("CREATE TABLE t (x UInt8)"),
            None,
            "not idempotent, not ours"
        );
        assert_eq!(
            creates("DROP VIEW IF EXISTS `old_mv`"),
            Some(Creates::Drop {
                name: "old_mv".into()
            })
        );
        assert_eq!(creates("DROP TABLE t"), None, "not idempotent");
        assert_eq!(
            creates("INSERT INTO t SELECT x FROM s WHERE x NOT IN (SELECT x FROM t)"),
            Some(Creates::Fill { table: "t".into() })
        );
        assert_eq!(
            creates("INSERT INTO t SELECT x FROM s"),
            None,
            "not idempotent"
        );
        assert_eq!(
            creates("ALTER TABLE t MODIFY SETTING min_bytes_for_wide_part = 10485760"),
            Some(Creates::Settings { table: "t".into() })
        );
        assert_eq!(
            creates("OPTIMIZE TABLE db.`t` FINAL"),
            Some(Creates::Rewrite {
                table: "db.t".into()
            })
        );
        assert_eq!(
            creates("OPTIMIZE TABLE t -- FINAL\n"),
            None,
            "a merge that may do nothing rewrites nothing"
        );
        assert_eq!(creates("SELECT 1"), None);
    }

    #[test]
    fn names_are_read_as_tokens() {
        // A name followed directly by its column list, a qualified name.
        assert_eq!(
            creates("CREATE TABLE IF NOT EXISTS t(x UInt8)"),
            Some(Creates::Object {
                kind: ObjectKind::Table,
                name: "t".into()
            })
        );
        assert_eq!(
            creates("DROP TABLE IF EXISTS db.`t`"),
            Some(Creates::Drop {
                name: "db.t".into()
            })
        );
        // No name where one belongs.
        assert_eq!(creates("CREATE TABLE IF NOT EXISTS (x UInt8)"), None);
        assert_eq!(creates("CREATE TABLE IF NOT EXISTS 'x'"), None);
    }

    #[test]
    fn keywords_in_strings_and_comments_do_not_count() {
        assert_eq!(
            creates("INSERT INTO t SELECT 'NOT IN' FROM s -- NOT IN\n"),
            None
        );
        assert_eq!(
            creates("INSERT INTO t SELECT x FROM s WHERE x NOT\n  IN (SELECT x FROM t)"),
            Some(Creates::Fill { table: "t".into() })
        );
        assert_eq!(creates("CREATE TABLE 'IF NOT EXISTS' t"), None);
        assert_eq!(creates("CREATE TABLE IF NOT EXISTS 'open"), None);
    }

    #[test]
    fn view_select_takes_the_query_after_as() {
        assert_eq!(
            view_select("CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO t AS\nSELECT 1 AS x")
                .as_deref(),
            Some("SELECT 1 AS x")
        );
        assert_eq!(view_select("CREATE TABLE t (x UInt8)"), None);
        assert_eq!(
            view_select("create or replace view v AS WITH 1 AS y SELECT y").as_deref(),
            Some("WITH 1 AS y SELECT y")
        );
        // An `AS` inside brackets (a column list, a column's alias) or a comment is not
        // the one before the query.
        assert_eq!(
            view_select(
                "CREATE MATERIALIZED VIEW mv TO t (x UInt8 ALIAS 1 AS y) /* AS no */ AS SELECT 1"
            )
            .as_deref(),
            Some("SELECT 1")
        );
        assert_eq!(view_select("CREATE VIEW v"), None);
        assert_eq!(view_select("CREATE VIEW v AS "), None);
        assert_eq!(view_select("CREATE TABLE t AS SELECT 1"), None);
    }

    #[test]
    fn column_definitions_keep_defaults_and_nested_types() {
        let cols = column_definitions(
            "CREATE TABLE IF NOT EXISTS t\n(\n  a Bool DEFAULT false,\n  b Array(String) DEFAULT [],\n  c Nullable(Float32)\n)\nENGINE = MergeTree ORDER BY a",
        );
        assert_eq!(
            cols,
            vec![
                ("a".to_string(), "a Bool DEFAULT false".to_string()),
                ("b".to_string(), "b Array(String) DEFAULT []".to_string()),
                ("c".to_string(), "c Nullable(Float32)".to_string()),
            ]
        );
    }

    #[test]
    fn column_definitions_read_quotes_comments_and_indexes() {
        let cols = column_definitions(
            "CREATE TABLE t (`odd, name` String DEFAULT 'a, (b', -- c, d\n x Tuple(a UInt8, b String), INDEX i x TYPE set(2) GRANULARITY 1, y UInt8 /* , z */)",
        );
        assert_eq!(
            cols,
            vec![
                (
                    "odd, name".to_string(),
                    "`odd, name` String DEFAULT 'a, (b'".to_string()
                ),
                ("x".to_string(), "x Tuple(a UInt8, b String)".to_string()),
                ("y".to_string(), "y UInt8".to_string()),
            ]
        );
        assert_eq!(column_definitions("CREATE TABLE t AS s"), vec![]);
        assert_eq!(
            column_definitions("CREATE TABLE t (a UInt8, b"),
            vec![("a".to_string(), "a UInt8".to_string())]
        );
        assert_eq!(column_definitions("CREATE TABLE t ('open"), vec![]);
    }

    #[test]
    fn sorting_keys_are_read_from_the_statement() {
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY (a, b)")
                .as_deref(),
            Some("a, b")
        );
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY trace_id").as_deref(),
            Some("trace_id")
        );
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY toDate(ts) PARTITION BY x SETTINGS a = 1")
                .as_deref(),
            Some("toDate(ts)")
        );
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY (a, (b + 1)) TTL x")
                .as_deref(),
            Some("a, (b + 1)")
        );
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = Memory"),
            None
        );
        assert_eq!(
            sorting_key("CREATE TABLE t ENGINE = MergeTree ORDER BY (a"),
            None
        );
        assert_eq!(
            sorting_key("CREATE TABLE t ENGINE = MergeTree ORDER BY"),
            None
        );
    }

    #[test]
    fn order_by_in_comments_strings_and_brackets_is_not_the_key() {
        assert_eq!(
            sorting_key(
                "CREATE TABLE t (x UInt8 DEFAULT 'ORDER BY y', -- ORDER BY z\n s Array(UInt8) DEFAULT arraySort((a) -> a, [1]) /* ORDER BY w */) ENGINE = MergeTree ORDER BY x"
            )
            .as_deref(),
            Some("x")
        );
        assert_eq!(
            sorting_key("CREATE TABLE t (x UInt8) ENGINE = Memory COMMENT 'ORDER BY x'"),
            None
        );
    }
}
