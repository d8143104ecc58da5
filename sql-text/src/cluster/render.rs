//! The `ON CLUSTER` rewriter: [`render`] puts a statement on a cluster and makes
//! MergeTree-family engines Replicated (the placement of the clause for each statement
//! form is in [the module above](super)).

use super::ClusterError;
use crate::lex::{is_space, Kind, Lexed};
use std::ops::Deref;

/// The Keeper path every Replicated table gets; `{shard}` and `{database}` are
/// expanded by each server (its `<macros>` and the table's database).
const ZOOKEEPER_PATH_PREFIX: &str = "/clickhouse/tables/{shard}/{database}/";
/// The replica name every Replicated table gets, from each server's `<macros>`.
const REPLICA_NAME: &str = "{replica}";

/// The MergeTree-family engines that have a `Replicated…` variant taking the Keeper
/// path and the replica name before their own arguments.
const MERGE_TREE_FAMILY: &[&str] = &[
    "MergeTree",
    "ReplacingMergeTree",
    "SummingMergeTree",
    "AggregatingMergeTree",
    "CollapsingMergeTree",
    "VersionedCollapsingMergeTree",
    "GraphiteMergeTree",
    "CoalescingMergeTree",
];

/// `statement` with `ON CLUSTER '<cluster>'` after its object name (see the module
/// documentation for each form) and MergeTree-family engines replaced by their
/// Replicated variant:
/// `ENGINE = ReplacingMergeTree(v)` becomes
/// `ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/<table>', '{replica}', v)`.
/// `INSERT`, `SELECT` and `WITH` statements come back unchanged.
///
/// `cluster` must be a plain name (`[A-Za-z0-9_.-]+`); anything else is refused
/// rather than quoted.
pub fn render(statement: &str, cluster: &str) -> Result<String, ClusterError> {
    check_cluster_name(cluster)?;
    let parsed = Parsed::new(statement)?;
    let Some(edits) = parsed.plan()? else {
        return Ok(statement.to_string());
    };
    let mut out = String::with_capacity(statement.len() + 128);
    let mut copied = 0;
    for edit in edits {
        out.push_str(&statement[copied..edit.start]);
        let text = match edit.text {
            EditText::OnCluster => {
                let mut text = format!(" ON CLUSTER '{cluster}'");
                if statement[edit.end..]
                    .bytes()
                    .next()
                    .is_some_and(|b| !is_space(b))
                {
                    text.push(' ');
                }
                text
            }
            EditText::Literal(text) => text,
        };
        out.push_str(&text);
        copied = edit.end;
    }
    out.push_str(&statement[copied..]);
    Ok(out)
}

fn check_cluster_name(cluster: &str) -> Result<(), ClusterError> {
    let plain = !cluster.is_empty()
        && cluster
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if plain {
        Ok(())
    } else {
        Err(ClusterError::BadClusterName(cluster.to_string()))
    }
}

/// One change to the statement's text: bytes `start..end` (empty for an insertion)
/// replaced by `text`.
struct Edit {
    start: usize,
    end: usize,
    text: EditText,
}

enum EditText {
    /// ` ON CLUSTER '<cluster>'`, plus a space when a token follows directly.
    OnCluster,
    Literal(String),
}

/// A statement cut into tokens, comments and whitespace left out.
struct Parsed<'a> {
    lexed: Lexed<'a>,
}

impl<'a> Deref for Parsed<'a> {
    type Target = Lexed<'a>;

    fn deref(&self) -> &Lexed<'a> {
        &self.lexed
    }
}

impl<'a> Parsed<'a> {
    fn new(text: &'a str) -> Result<Self, ClusterError> {
        let lexed = Lexed::new(text).map_err(|u| ClusterError::Unterminated { what: u.what })?;
        Ok(Parsed { lexed })
    }

    /// The first few tokens, for messages.
    fn start_words(&self) -> String {
        let Some(first) = self.toks.first() else {
            return String::new();
        };
        let last = self.toks[self.toks.len().min(4) - 1];
        let words: Vec<&str> = self.text[first.start..last.end]
            .split_whitespace()
            .collect();
        let mut start = words.join(" ");
        if start.chars().count() > 60 {
            start = start.chars().take(60).collect::<String>() + "…";
        }
        start
    }

    fn unrecognised(&self) -> ClusterError {
        ClusterError::Unrecognised {
            start: self.start_words(),
        }
    }

    /// `IF NOT EXISTS` / `IF EXISTS` / `IF EMPTY` at `i`: the index after them.
    fn skip_words(&self, mut i: usize, words: &[&str]) -> usize {
        if words.iter().enumerate().all(|(k, w)| self.kw(i + k, w)) {
            i += words.len();
        }
        i
    }

    /// The ON CLUSTER insertion after the token before `next`, refused when the
    /// statement already has one there.
    fn on_cluster_after(&self, next: usize) -> Result<Edit, ClusterError> {
        if self.kw(next, "ON") && self.kw(next + 1, "CLUSTER") {
            return Err(ClusterError::AlreadyOnCluster {
                start: self.start_words(),
            });
        }
        let at = self.toks[next - 1].end;
        Ok(Edit {
            start: at,
            end: at,
            text: EditText::OnCluster,
        })
    }

    /// Requires token `i` to end the statement or be one of `allowed` (what may follow
    /// the name in that form), so that an unknown form is never given a misplaced
    /// clause.
    fn followed_by(&self, i: usize, allowed: &[&str]) -> Result<(), ClusterError> {
        if i >= self.toks.len() || allowed.iter().any(|w| self.kw(i, w)) {
            Ok(())
        } else {
            Err(self.unrecognised())
        }
    }

    /// The edits that put the statement on the cluster, or `None` to run it unchanged.
    fn plan(&self) -> Result<Option<Vec<Edit>>, ClusterError> {
        if self.toks.is_empty() {
            return Err(ClusterError::Empty);
        }
        let first = if self.toks[0].kind == Kind::Word {
            self.src(0).to_ascii_uppercase()
        } else {
            String::new()
        };
        let edits = match first.as_str() {
            "SELECT" | "WITH" | "INSERT" => return Ok(None),
            "CREATE" => self.create()?,
            "ALTER" => {
                if !self.kw(1, "TABLE") {
                    return Err(self.unrecognised());
                }
                let (next, _) = self.name(2).ok_or_else(|| self.unrecognised())?;
                if next >= self.toks.len() {
                    return Err(self.unrecognised());
                }
                vec![self.on_cluster_after(next)?]
            }
            "DROP" => {
                if !["TABLE", "VIEW", "DICTIONARY", "DATABASE"]
                    .iter()
                    .any(|k| self.kw(1, k))
                {
                    return Err(self.unrecognised());
                }
                let mut i = self.skip_words(2, &["IF", "EXISTS"]);
                i = self.skip_words(i, &["IF", "EMPTY"]);
                let (mut next, _) = self.name(i).ok_or_else(|| self.unrecognised())?;
                while self.punct(next, b',') {
                    (next, _) = self.name(next + 1).ok_or_else(|| self.unrecognised())?;
                }
                let edit = self.on_cluster_after(next)?;
                self.followed_by(next, &["SYNC", "NO", "PERMANENTLY", "SETTINGS", "FORMAT"])?;
                vec![edit]
            }
            "RENAME" => {
                let mut i = 1;
                if ["TABLE", "DICTIONARY", "DATABASE"]
                    .iter()
                    .any(|k| self.kw(1, k))
                {
                    i = 2;
                }
                let next = loop {
                    let (to, _) = self.name(i).ok_or_else(|| self.unrecognised())?;
                    if !self.kw(to, "TO") {
                        return Err(self.unrecognised());
                    }
                    let (next, _) = self.name(to + 1).ok_or_else(|| self.unrecognised())?;
                    if self.punct(next, b',') {
                        i = next + 1;
                    } else {
                        break next;
                    }
                };
                let edit = self.on_cluster_after(next)?;
                self.followed_by(next, &["SETTINGS", "FORMAT"])?;
                vec![edit]
            }
            "EXCHANGE" => {
                if !self.kw(1, "TABLES") && !self.kw(1, "DICTIONARIES") {
                    return Err(self.unrecognised());
                }
                let (and, _) = self.name(2).ok_or_else(|| self.unrecognised())?;
                if !self.kw(and, "AND") {
                    return Err(self.unrecognised());
                }
                let (next, _) = self.name(and + 1).ok_or_else(|| self.unrecognised())?;
                let edit = self.on_cluster_after(next)?;
                self.followed_by(next, &["SETTINGS", "FORMAT"])?;
                vec![edit]
            }
            "OPTIMIZE" => {
                if !self.kw(1, "TABLE") {
                    return Err(self.unrecognised());
                }
                let (next, _) = self.name(2).ok_or_else(|| self.unrecognised())?;
                let edit = self.on_cluster_after(next)?;
                self.followed_by(
                    next,
                    &[
                        "PARTITION",
                        "FINAL",
                        "DEDUPLICATE",
                        "CLEANUP",
                        "SETTINGS",
                        "FORMAT",
                    ],
                )?;
                vec![edit]
            }
            "TRUNCATE" => {
                let mut i = self.skip_words(1, &["TABLE"]);
                i = self.skip_words(i, &["IF", "EXISTS"]);
                let (next, _) = self.name(i).ok_or_else(|| self.unrecognised())?;
                let edit = self.on_cluster_after(next)?;
                self.followed_by(next, &["SYNC", "SETTINGS", "FORMAT"])?;
                vec![edit]
            }
            _ => return Err(self.unrecognised()),
        };
        Ok(Some(edits))
    }

    fn create(&self) -> Result<Vec<Edit>, ClusterError> {
        let or_replace = self.kw(1, "OR") && self.kw(2, "REPLACE");
        let mut i = if or_replace { 3 } else { 1 };
        let object = if self.kw(i, "MATERIALIZED") && self.kw(i + 1, "VIEW") {
            i += 2;
            Object::MaterializedView
        } else {
            let object = if self.kw(i, "TABLE") {
                Object::Table
            } else if self.kw(i, "VIEW") {
                Object::View
            } else if self.kw(i, "DATABASE") {
                Object::Database
            } else if self.kw(i, "DICTIONARY") {
                Object::Dictionary
            } else {
                return Err(self.unrecognised());
            };
            i += 1;
            object
        };
        i = self.skip_words(i, &["IF", "NOT", "EXISTS"]);
        let (mut next, name) = self.name(i).ok_or_else(|| self.unrecognised())?;
        if object != Object::Dictionary
            && self.kw(next, "UUID")
            && self.toks.get(next + 1).is_some_and(|t| t.kind == Kind::Str)
        {
            next += 2;
        }
        let mut edits = vec![self.on_cluster_after(next)?];
        if matches!(object, Object::Table | Object::MaterializedView) {
            edits.extend(self.replicated_engine(next, object, or_replace, &name)?);
        }
        Ok(edits)
    }

    /// The edits that make the engine of a CREATE TABLE (or a materialized view's inner
    /// table) Replicated, searching from token `from` to the query (`SELECT`/`WITH`).
    fn replicated_engine(
        &self,
        from: usize,
        object: Object,
        or_replace: bool,
        table: &str,
    ) -> Result<Vec<Edit>, ClusterError> {
        let mut has_to = false;
        let mut engine = None;
        for j in from..self.toks.len() {
            if self.toks[j].depth != 0 {
                continue;
            }
            if self.kw(j, "SELECT") || self.kw(j, "WITH") {
                break;
            }
            if self.kw(j, "TO") {
                has_to = true;
            }
            if self.kw(j, "ENGINE") {
                engine = Some(j);
                break;
            }
        }
        let Some(j) = engine else {
            if object == Object::MaterializedView && has_to {
                return Ok(Vec::new()); // writes into a table created on its own
            }
            return Err(ClusterError::NoEngine {
                object: format!("{} {table}", object.name()),
            });
        };
        let mut k = j + 1;
        if self.punct(k, b'=') {
            k += 1;
        }
        let Some(engine_name) = self.ident(k) else {
            return Err(self.unrecognised());
        };
        if !MERGE_TREE_FAMILY.contains(&engine_name.as_str()) {
            return Ok(Vec::new()); // already Replicated, or not a MergeTree
        }
        if or_replace {
            return Err(ClusterError::ReplaceReplicated {
                table: table.to_string(),
            });
        }
        if table
            .chars()
            .any(|c| matches!(c, '{' | '}' | '/') || c.is_control())
        {
            return Err(ClusterError::BadTableName(table.to_string()));
        }
        let path = string_literal(&format!("{ZOOKEEPER_PATH_PREFIX}{table}"));
        let replica = string_literal(REPLICA_NAME);
        let tok = self.toks[k];
        // A quoted name may touch the word before it (ENGINE`MergeTree`); written
        // bare, it needs a space not to run into that word.
        let touches_word = self.text[..tok.start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let space = if touches_word { " " } else { "" };
        let mut edits = vec![Edit {
            start: tok.start,
            end: tok.end,
            text: EditText::Literal(format!("{space}Replicated{engine_name}")),
        }];
        if self.punct(k + 1, b'(') {
            let at = self.toks[k + 1].end;
            let separator = if self.punct(k + 2, b')') { "" } else { ", " };
            edits.push(Edit {
                start: at,
                end: at,
                text: EditText::Literal(format!("{path}, {replica}{separator}")),
            });
        } else {
            edits.push(Edit {
                start: tok.end,
                end: tok.end,
                text: EditText::Literal(format!("({path}, {replica})")),
            });
        }
        Ok(edits)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Table,
    View,
    MaterializedView,
    Database,
    Dictionary,
}

impl Object {
    fn name(self) -> &'static str {
        match self {
            Object::Table => "TABLE",
            Object::View => "VIEW",
            Object::MaterializedView => "MATERIALIZED VIEW",
            Object::Database => "DATABASE",
            Object::Dictionary => "DICTIONARY",
        }
    }
}

/// `value` as a ClickHouse '…' string literal.
fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "rvbbit_cluster";

    fn r(statement: &str) -> String {
        render(statement, C).unwrap()
    }

    fn path(table: &str) -> String {
        format!("'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}'")
    }

    #[test]
    fn create_table_gets_on_cluster_and_a_replicated_engine() {
        assert_eq!(
            r("CREATE TABLE IF NOT EXISTS training_annotations\n(\n    trace_id String,\n    annotated_at DateTime64(6)\n)\nENGINE = ReplacingMergeTree(annotated_at)\nORDER BY trace_id"),
            format!("CREATE TABLE IF NOT EXISTS training_annotations ON CLUSTER 'rvbbit_cluster'\n(\n    trace_id String,\n    annotated_at DateTime64(6)\n)\nENGINE = ReplicatedReplacingMergeTree({}, annotated_at)\nORDER BY trace_id", path("training_annotations"))
        );
    }

    #[test]
    fn every_merge_tree_engine_form_becomes_replicated() {
        let cases = [
            ("MergeTree", "ReplicatedMergeTree(P)"),
            ("MergeTree()", "ReplicatedMergeTree(P)"),
            ("MergeTree( )", "ReplicatedMergeTree(P )"),
            ("ReplacingMergeTree", "ReplicatedReplacingMergeTree(P)"),
            (
                "ReplacingMergeTree(ver)",
                "ReplicatedReplacingMergeTree(P, ver)",
            ),
            (
                "ReplacingMergeTree(ver, is_deleted)",
                "ReplicatedReplacingMergeTree(P, ver, is_deleted)",
            ),
            ("SummingMergeTree", "ReplicatedSummingMergeTree(P)"),
            (
                "SummingMergeTree((a, b))",
                "ReplicatedSummingMergeTree(P, (a, b))",
            ),
            (
                "AggregatingMergeTree()",
                "ReplicatedAggregatingMergeTree(P)",
            ),
            (
                "CollapsingMergeTree(sign)",
                "ReplicatedCollapsingMergeTree(P, sign)",
            ),
            (
                "VersionedCollapsingMergeTree(sign, v)",
                "ReplicatedVersionedCollapsingMergeTree(P, sign, v)",
            ),
            (
                "GraphiteMergeTree('graphite_rollup')",
                "ReplicatedGraphiteMergeTree(P, 'graphite_rollup')",
            ),
        ];
        for (engine, want) in cases {
            let got = r(&format!(
                "CREATE TABLE t (x UInt8) ENGINE = {engine} ORDER BY x"
            ));
            let want = format!(
                "CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE = {} ORDER BY x",
                want.replace('P', &path("t"))
            );
            assert_eq!(got, want, "{engine}");
        }
        // `ENGINE MergeTree` without `=`, and no space before the column list.
        assert_eq!(
            r("CREATE TABLE t(x UInt8) ENGINE MergeTree ORDER BY x"),
            format!(
                "CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE ReplicatedMergeTree({}) ORDER BY x",
                path("t")
            )
        );
        // A quoted name touching ENGINE gets a space, not `ENGINEReplicatedMergeTree`
        // (found by the cluster fuzz target).
        assert_eq!(
            r("CREATE TABLE t (x UInt8) ENGINE`MergeTree` ORDER BY x"),
            format!(
                "CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE ReplicatedMergeTree({}) ORDER BY x",
                path("t")
            )
        );
    }

    #[test]
    fn other_engines_are_left_alone() {
        for engine in [
            "Memory",
            "Log",
            "Null",
            "ReplicatedMergeTree('/p/{shard}', '{replica}')",
            "Distributed(c, db, t, rand())",
        ] {
            assert_eq!(
                r(&format!("CREATE TABLE t (x UInt8) ENGINE = {engine}")),
                format!("CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE = {engine}")
            );
        }
    }

    #[test]
    fn a_replacing_merge_tree_keeps_its_version_column() {
        // A short ledger-like table; the real ledger and lease tables, as the plugin
        // defines them, are rendered by training-plugin's test `cluster_golden`.
        assert_eq!(
            r("CREATE TABLE IF NOT EXISTS _rvbbit_plugin_migrations (plugin String, version UInt32, updated_at DateTime64(6)) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (plugin, version)"),
            format!("CREATE TABLE IF NOT EXISTS _rvbbit_plugin_migrations ON CLUSTER 'rvbbit_cluster' (plugin String, version UInt32, updated_at DateTime64(6)) ENGINE = ReplicatedReplacingMergeTree({}, updated_at) ORDER BY (plugin, version)", path("_rvbbit_plugin_migrations"))
        );
    }

    #[test]
    fn engine_text_in_strings_comments_and_identifiers_is_not_an_engine() {
        // The default value and the comment mention MergeTree; the engine is Memory.
        let s = "CREATE TABLE t (s String DEFAULT 'ENGINE = MergeTree', `ENGINE` String) -- ENGINE = MergeTree\n/* ENGINE = MergeTree */ ENGINE = Memory COMMENT 'ENGINE = MergeTree'";
        assert_eq!(
            r(s),
            s.replacen(
                "CREATE TABLE t",
                "CREATE TABLE t ON CLUSTER 'rvbbit_cluster'",
                1
            )
        );
        // A string containing a quote and a backslash before the real engine.
        let s = "CREATE TABLE t (s String DEFAULT 'it''s \\' ENGINE = Log') ENGINE = MergeTree ORDER BY s";
        assert_eq!(
            r(s),
            format!("CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (s String DEFAULT 'it''s \\' ENGINE = Log') ENGINE = ReplicatedMergeTree({}) ORDER BY s", path("t"))
        );
        // A heredoc.
        let s = "CREATE TABLE t (s String DEFAULT $$ENGINE = MergeTree$$) ENGINE = Memory";
        assert_eq!(
            r(s),
            "CREATE TABLE t ON CLUSTER 'rvbbit_cluster' (s String DEFAULT $$ENGINE = MergeTree$$) ENGINE = Memory"
        );
    }

    #[test]
    fn keywords_inside_strings_do_not_change_the_statement_form() {
        // `INSERT` inside a leading comment, `TABLE` inside a string.
        assert_eq!(
            r("/* INSERT INTO x */ DROP TABLE IF EXISTS t"),
            "/* INSERT INTO x */ DROP TABLE IF EXISTS t ON CLUSTER 'rvbbit_cluster'"
        );
        assert!(matches!(
            render("SET x = 'CREATE TABLE t'", C),
            Err(ClusterError::Unrecognised { .. })
        ));
        // A comment between the name and the rest stays where it was.
        assert_eq!(
            r("ALTER TABLE t -- ADD INDEX\n MODIFY COLUMN x UInt16"),
            "ALTER TABLE t ON CLUSTER 'rvbbit_cluster' -- ADD INDEX\n MODIFY COLUMN x UInt16"
        );
    }

    #[test]
    fn quoted_and_qualified_names() {
        assert_eq!(
            r("CREATE TABLE `my db`.`odd ``name`` ON CLUSTER x` (x UInt8) ENGINE = MergeTree ORDER BY x"),
            format!("CREATE TABLE `my db`.`odd ``name`` ON CLUSTER x` ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE = ReplicatedMergeTree({}) ORDER BY x", path("odd `name` ON CLUSTER x"))
        );
        assert_eq!(
            r("CREATE TABLE \"it's\" (x UInt8) ENGINE = MergeTree ORDER BY x"),
            format!(
                "CREATE TABLE \"it's\" ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE = ReplicatedMergeTree({}) ORDER BY x",
                "'/clickhouse/tables/{shard}/{database}/it\\'s', '{replica}'"
            )
        );
        assert_eq!(
            r("ALTER TABLE db.t ADD COLUMN IF NOT EXISTS y UInt8"),
            "ALTER TABLE db.t ON CLUSTER 'rvbbit_cluster' ADD COLUMN IF NOT EXISTS y UInt8"
        );
        assert_eq!(
            render(
                "CREATE TABLE `a{b}` (x UInt8) ENGINE = MergeTree ORDER BY x",
                C
            ),
            Err(ClusterError::BadTableName("a{b}".into()))
        );
        assert_eq!(
            render(
                "CREATE TABLE `a/b` (x UInt8) ENGINE = MergeTree ORDER BY x",
                C
            ),
            Err(ClusterError::BadTableName("a/b".into()))
        );
    }

    #[test]
    fn lowercase_keywords() {
        assert_eq!(
            r("create table if not exists t (x UInt8) engine = ReplacingMergeTree(x) order by x"),
            format!("create table if not exists t ON CLUSTER 'rvbbit_cluster' (x UInt8) engine = ReplicatedReplacingMergeTree({}, x) order by x", path("t"))
        );
        assert_eq!(
            r("alter table t add index if not exists i x type set(2) granularity 1"),
            "alter table t ON CLUSTER 'rvbbit_cluster' add index if not exists i x type set(2) granularity 1"
        );
        assert_eq!(
            r("rename table a to b"),
            "rename table a to b ON CLUSTER 'rvbbit_cluster'"
        );
        assert_eq!(r("insert into t select 1"), "insert into t select 1");
    }

    #[test]
    fn views() {
        assert_eq!(
            r("CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO training_examples AS\nWITH 1 AS x SELECT x FROM unified_logs"),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS mv ON CLUSTER 'rvbbit_cluster' TO training_examples AS\nWITH 1 AS x SELECT x FROM unified_logs"
        );
        // A materialized view with an inner table: that table is made Replicated.
        assert_eq!(
            r("CREATE MATERIALIZED VIEW mv ENGINE = SummingMergeTree ORDER BY k AS SELECT k, count() AS n FROM t GROUP BY k"),
            format!("CREATE MATERIALIZED VIEW mv ON CLUSTER 'rvbbit_cluster' ENGINE = ReplicatedSummingMergeTree({}) ORDER BY k AS SELECT k, count() AS n FROM t GROUP BY k", path("mv"))
        );
        assert_eq!(
            render("CREATE MATERIALIZED VIEW mv AS SELECT 1", C),
            Err(ClusterError::NoEngine {
                object: "MATERIALIZED VIEW mv".into()
            })
        );
        // An ENGINE inside the view's query is not the view's.
        assert_eq!(
            r("CREATE MATERIALIZED VIEW mv TO t AS SELECT engine FROM system.tables WHERE engine = 'MergeTree'"),
            "CREATE MATERIALIZED VIEW mv ON CLUSTER 'rvbbit_cluster' TO t AS SELECT engine FROM system.tables WHERE engine = 'MergeTree'"
        );
        assert_eq!(
            r("CREATE VIEW IF NOT EXISTS v AS SELECT 1 SETTINGS join_use_nulls = 1"),
            "CREATE VIEW IF NOT EXISTS v ON CLUSTER 'rvbbit_cluster' AS SELECT 1 SETTINGS join_use_nulls = 1"
        );
        assert_eq!(
            r("CREATE OR REPLACE VIEW v AS SELECT 1"),
            "CREATE OR REPLACE VIEW v ON CLUSTER 'rvbbit_cluster' AS SELECT 1"
        );
    }

    #[test]
    fn alter_forms() {
        for rest in [
            "ADD INDEX IF NOT EXISTS idx_trainable trainable TYPE set(2) GRANULARITY 1",
            "MATERIALIZE INDEX idx_trainable",
            "MODIFY COLUMN confidence Nullable(Float64)",
            "ADD COLUMN IF NOT EXISTS source String DEFAULT ''",
            "ADD COLUMN a UInt8, DROP COLUMN b",
        ] {
            assert_eq!(
                r(&format!("ALTER TABLE training_annotations {rest}")),
                format!("ALTER TABLE training_annotations ON CLUSTER 'rvbbit_cluster' {rest}")
            );
        }
    }

    #[test]
    fn drop_rename_exchange_optimize_truncate() {
        let cases = [
            ("DROP VIEW v", "DROP VIEW v ON CLUSTER 'rvbbit_cluster'"),
            (
                "DROP VIEW IF EXISTS v",
                "DROP VIEW IF EXISTS v ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "DROP TABLE IF EXISTS t SYNC",
                "DROP TABLE IF EXISTS t ON CLUSTER 'rvbbit_cluster' SYNC",
            ),
            (
                "DROP TABLE IF EMPTY db.t",
                "DROP TABLE IF EMPTY db.t ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "DROP TABLE a, b",
                "DROP TABLE a, b ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "DROP DATABASE IF EXISTS d",
                "DROP DATABASE IF EXISTS d ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "RENAME TABLE a TO b",
                "RENAME TABLE a TO b ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "RENAME TABLE a TO a_old, a_new TO a",
                "RENAME TABLE a TO a_old, a_new TO a ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "RENAME db.a TO db.b",
                "RENAME db.a TO db.b ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "EXCHANGE TABLES a AND b",
                "EXCHANGE TABLES a AND b ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "OPTIMIZE TABLE t",
                "OPTIMIZE TABLE t ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "OPTIMIZE TABLE t FINAL",
                "OPTIMIZE TABLE t ON CLUSTER 'rvbbit_cluster' FINAL",
            ),
            (
                "OPTIMIZE TABLE t PARTITION 202401 FINAL DEDUPLICATE",
                "OPTIMIZE TABLE t ON CLUSTER 'rvbbit_cluster' PARTITION 202401 FINAL DEDUPLICATE",
            ),
            (
                "TRUNCATE TABLE IF EXISTS t",
                "TRUNCATE TABLE IF EXISTS t ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "CREATE DATABASE IF NOT EXISTS `rvbbit`",
                "CREATE DATABASE IF NOT EXISTS `rvbbit` ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "CREATE DATABASE IF NOT EXISTS rvbbit",
                "CREATE DATABASE IF NOT EXISTS rvbbit ON CLUSTER 'rvbbit_cluster'",
            ),
            (
                "CREATE TABLE t UUID '0-1' (x UInt8) ENGINE = Memory",
                "CREATE TABLE t UUID '0-1' ON CLUSTER 'rvbbit_cluster' (x UInt8) ENGINE = Memory",
            ),
        ];
        for (statement, want) in cases {
            assert_eq!(r(statement), want, "{statement}");
        }
    }

    #[test]
    fn insert_select_and_with_pass_through() {
        for s in [
            "INSERT INTO training_examples SELECT * FROM unified_logs WHERE cascade_id != ''",
            "SELECT 1",
            "WITH 1 AS x SELECT x",
            "insert into t (a) values ('CREATE TABLE x')",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn unknown_forms_are_errors_naming_their_start() {
        for s in [
            "CREATE TEMPORARY TABLE t (x UInt8) ENGINE = Memory",
            "CREATE LIVE VIEW v AS SELECT 1",
            "CREATE FUNCTION f AS x -> x",
            "ALTER USER u",
            "DROP TEMPORARY TABLE t",
            "DETACH TABLE t",
            "SYSTEM SYNC REPLICA t",
            "SET allow_experimental_object_type = 1",
            "TRUNCATE ALL TABLES FROM db",
            "RENAME TABLE a",
            "EXCHANGE TABLES a b",
            "OPTIMIZE t",
            "(SELECT 1)",
        ] {
            match render(s, C) {
                Err(ClusterError::Unrecognised { start }) => {
                    assert!(s.starts_with(&start), "{s}: {start}")
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        let err = render("SYSTEM SYNC REPLICA t", C).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot run `SYSTEM SYNC REPLICA t` on a cluster: not a statement form this tool knows"
        );
        assert_eq!(render("  -- nothing\n", C), Err(ClusterError::Empty));
    }

    #[test]
    fn statements_already_on_a_cluster_are_refused() {
        for s in [
            "CREATE TABLE t ON CLUSTER c (x UInt8) ENGINE = Memory",
            "alter table t on cluster c add column y UInt8",
            "DROP TABLE t ON CLUSTER 'c'",
            "RENAME TABLE a TO b ON CLUSTER c",
        ] {
            assert!(
                matches!(render(s, C), Err(ClusterError::AlreadyOnCluster { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn tables_without_engine_or_replaced_in_place_are_refused() {
        assert_eq!(
            render("CREATE TABLE t AS other", C),
            Err(ClusterError::NoEngine {
                object: "TABLE t".into()
            })
        );
        assert_eq!(
            render("CREATE TABLE t (x UInt8)", C),
            Err(ClusterError::NoEngine {
                object: "TABLE t".into()
            })
        );
        assert_eq!(
            render(
                "CREATE OR REPLACE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x",
                C
            ),
            Err(ClusterError::ReplaceReplicated { table: "t".into() })
        );
        // CREATE TABLE … AS SELECT with an engine is fine.
        assert_eq!(
            r("CREATE TABLE t ENGINE = MergeTree ORDER BY x AS SELECT 1 AS x"),
            format!("CREATE TABLE t ON CLUSTER 'rvbbit_cluster' ENGINE = ReplicatedMergeTree({}) ORDER BY x AS SELECT 1 AS x", path("t"))
        );
    }

    #[test]
    fn cluster_names_must_be_plain() {
        for good in ["c", "rvbbit_cluster", "prod-eu.1", "A_9"] {
            assert!(render("DROP TABLE t", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "it's",
            "back\\slash",
            "with space",
            "{cluster}",
            "c'; DROP TABLE unified_logs; --",
            "über",
            "a\nb",
        ] {
            assert_eq!(
                render("DROP TABLE t", bad),
                Err(ClusterError::BadClusterName(bad.into())),
                "{bad:?}"
            );
        }
        // The name is checked even for statements that pass through.
        assert!(render("SELECT 1", "x y").is_err());
    }

    #[test]
    fn unterminated_text_is_an_error() {
        assert_eq!(
            render("CREATE TABLE t (s String DEFAULT 'x) ENGINE = MergeTree", C),
            Err(ClusterError::Unterminated {
                what: "a '…' string"
            })
        );
        assert!(render("DROP TABLE `t", C).is_err());
        assert!(render("DROP TABLE t /* open", C).is_err());
        assert!(render("SELECT $tag$ open", C).is_err());
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(
            r("CREATE VIEW v AS SELECT 'héllo 🐇' AS x"),
            "CREATE VIEW v ON CLUSTER 'rvbbit_cluster' AS SELECT 'héllo 🐇' AS x"
        );
    }
}
