//! Running migrations on a ClickHouse cluster: [`render`] turns one statement as our
//! migrations write it into its `ON CLUSTER` form, with MergeTree-family engines made
//! Replicated; [`parse_ddl_status`] reads the per-host result a distributed DDL query
//! returns.
//!
//! `ON CLUSTER '<cluster>'` goes where ClickHouse's grammar has it:
//!
//! | statement | placement |
//! | --- | --- |
//! | `CREATE [OR REPLACE] TABLE\|VIEW\|MATERIALIZED VIEW\|DATABASE\|DICTIONARY [IF NOT EXISTS] name [UUID '…']` | after the name (and UUID), before the columns, `TO`, `ENGINE`, `AS` |
//! | `ALTER TABLE name …` | after the name, before the commands |
//! | `DROP TABLE\|VIEW\|DICTIONARY\|DATABASE [IF EXISTS] [IF EMPTY] a[, b …]` | after the last name, before `SYNC` |
//! | `RENAME [TABLE\|DICTIONARY\|DATABASE] a TO b[, c TO d …]` | after the whole list |
//! | `EXCHANGE TABLES\|DICTIONARIES a AND b` | after `b` |
//! | `OPTIMIZE TABLE name` | after the name, before `PARTITION`/`FINAL` |
//! | `TRUNCATE [TABLE] [IF EXISTS] name` | after the name |
//!
//! `INSERT`, `SELECT` and `WITH` statements are returned unchanged: they run on the
//! host we are connected to and reach the other replicas through replication. Any
//! other statement is an error, never passed through unchanged.
//!
//! Keywords are recognised only as bare words: text inside '…' strings, `…` and "…"
//! identifiers, `$$…$$` heredocs and comments never counts.

use std::fmt;

/// Why a statement cannot be run on a cluster, or a distributed DDL result cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster name {0:?} is not a plain name: use only letters, digits, `_`, `.` and `-`")]
    BadClusterName(String),
    #[error("{what} is never closed")]
    Unterminated { what: &'static str },
    #[error("the statement is empty")]
    Empty,
    #[error("cannot run `{start}` on a cluster: not a statement form this tool knows")]
    Unrecognised { start: String },
    #[error("`{start}` already has an ON CLUSTER clause")]
    AlreadyOnCluster { start: String },
    #[error(
        "CREATE {object} names no ENGINE: on a cluster a table needs an explicit engine to be made Replicated"
    )]
    NoEngine { object: String },
    #[error(
        "CREATE OR REPLACE TABLE {table} with a MergeTree engine cannot be made Replicated: the new table would take the Keeper path of the one it replaces"
    )]
    ReplaceReplicated { table: String },
    #[error("table name {0:?} cannot be part of a Keeper path (it contains `{{`, `}}`, `/` or a control character)")]
    BadTableName(String),
    #[error("distributed DDL result, line {line}: {reason}")]
    Status { line: usize, reason: String },
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A bare word: keyword, identifier or number.
    Word,
    /// A `…` or "…" identifier.
    Quoted,
    /// A '…' string or a `$$…$$` heredoc.
    Str,
    /// Any other character.
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    /// Brackets (`(` and `[`) open around the token; a bracket itself is outside.
    depth: usize,
}

/// A statement cut into tokens, comments and whitespace left out.
struct Parsed<'a> {
    text: &'a str,
    toks: Vec<Token>,
}

impl<'a> Parsed<'a> {
    fn new(text: &'a str) -> Result<Self, ClusterError> {
        Ok(Parsed {
            text,
            toks: lex(text)?,
        })
    }

    fn src(&self, i: usize) -> &'a str {
        &self.text[self.toks[i].start..self.toks[i].end]
    }

    /// Whether token `i` is the bare word `kw` (any case).
    fn kw(&self, i: usize, kw: &str) -> bool {
        i < self.toks.len()
            && self.toks[i].kind == Kind::Word
            && self.src(i).eq_ignore_ascii_case(kw)
    }

    fn punct(&self, i: usize, c: u8) -> bool {
        i < self.toks.len() && self.toks[i].kind == Kind::Punct(c)
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

    /// The value of the identifier at `i` (unquoted), if it is one.
    fn ident(&self, i: usize) -> Option<String> {
        match self.toks.get(i)?.kind {
            Kind::Word => Some(self.src(i).to_string()),
            Kind::Quoted => Some(unquote(self.src(i))),
            _ => None,
        }
    }

    /// A `[db.]name` at `i`: the index after it and the name's last part.
    fn name(&self, i: usize) -> Option<(usize, String)> {
        let mut last = self.ident(i)?;
        let mut next = i + 1;
        while self.punct(next, b'.') {
            last = self.ident(next + 1)?;
            next += 2;
        }
        Some((next, last))
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
        let mut edits = vec![Edit {
            start: tok.start,
            end: tok.end,
            text: EditText::Literal(format!("Replicated{engine_name}")),
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

/// The value of a `…` or "…" identifier: quotes removed, `\x` and doubled quotes
/// unescaped.
fn unquote(quoted: &str) -> String {
    let mut chars = quoted.chars();
    let quote = chars.next();
    let mut inner: Vec<char> = chars.collect();
    inner.pop();
    let mut out = String::new();
    let mut k = 0;
    while k < inner.len() {
        let c = inner[k];
        if c == '\\' && k + 1 < inner.len() {
            out.push(unescape_char(inner[k + 1]));
            k += 2;
        } else if Some(c) == quote && inner.get(k + 1) == Some(&c) {
            out.push(c);
            k += 2;
        } else {
            out.push(c);
            k += 1;
        }
    }
    out
}

/// What `\c` stands for in ClickHouse's quoted strings and TSV.
fn unescape_char(c: char) -> char {
    match c {
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '0' => '\0',
        'a' => '\u{7}',
        'v' => '\u{b}',
        'e' => '\u{1b}',
        other => other,
    }
}

/// Whitespace as ClickHouse's lexer has it: `is_ascii_whitespace` plus `\v` (0x0B).
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0B
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Cuts `text` into tokens as ClickHouse's lexer would for our purposes: comments
/// (`--`, `# `, `#!`, nested `/* */`) and whitespace are skipped; strings, quoted
/// identifiers and heredocs are single tokens.
fn lex(text: &str) -> Result<Vec<Token>, ClusterError> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let start = i;
        let kind = match b {
            _ if is_space(b) => {
                i += 1;
                continue;
            }
            b'-' if next == Some(b'-') => {
                i = skip_line(bytes, i);
                continue;
            }
            b'#' if matches!(next, Some(b' ') | Some(b'!')) => {
                i = skip_line(bytes, i);
                continue;
            }
            b'/' if next == Some(b'*') => {
                let mut level = 0usize;
                loop {
                    if i >= bytes.len() {
                        return Err(ClusterError::Unterminated {
                            what: "a /* comment",
                        });
                    }
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        level += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        level -= 1;
                        i += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(ClusterError::Unterminated {
                                what: match b {
                                    b'\'' => "a '…' string",
                                    b'"' => "a \"…\" identifier",
                                    _ => "a `…` identifier",
                                },
                            })
                        }
                        Some(b'\\') => i += 2,
                        Some(&c) if c == b && bytes.get(i + 1) == Some(&b) => i += 2,
                        Some(&c) if c == b => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                i = i.min(bytes.len());
                if b == b'\'' {
                    Kind::Str
                } else {
                    Kind::Quoted
                }
            }
            b'$' => {
                // A heredoc `$tag$…$tag$`, or else a lone character.
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(e) if bytes[e] == b'$' => {
                        let tag = &text[i..=e];
                        match text[e + 1..].find(tag) {
                            Some(p) => {
                                i = e + 1 + p + tag.len();
                                Kind::Str
                            }
                            None => {
                                return Err(ClusterError::Unterminated {
                                    what: "a $$…$$ heredoc",
                                })
                            }
                        }
                    }
                    _ => {
                        i += 1;
                        Kind::Punct(b'$')
                    }
                }
            }
            _ if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Punct(b)
            }
        };
        if matches!(kind, Kind::Punct(b')') | Kind::Punct(b']')) {
            depth = depth.saturating_sub(1);
        }
        toks.push(Token {
            kind,
            start,
            end: i,
            depth,
        });
        if matches!(kind, Kind::Punct(b'(') | Kind::Punct(b'[')) {
            depth += 1;
        }
    }
    Ok(toks)
}

fn skip_line(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// One host's answer to a distributed DDL query (a row of its result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub host: String,
    pub port: u16,
    /// 0 when the host executed the query, else the ClickHouse error code it got.
    /// `None` when the host had not finished when `distributed_ddl_task_timeout`
    /// ran out (the server sends NULL; the host goes on executing the query in the
    /// background).
    pub status: Option<i64>,
    /// The host's error message, TSV escapes undone; empty when `status` is 0 or None.
    pub error: String,
    pub hosts_remaining: u64,
    pub hosts_active: u64,
}

impl HostStatus {
    pub fn failed(&self) -> bool {
        self.status != Some(0)
    }
}

impl fmt::Display for HostStatus {
    /// `host:port: what happened` (IPv6 hosts in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}: ", self.host, self.port)?;
        } else {
            write!(f, "{}:{}: ", self.host, self.port)?;
        }
        match self.status {
            Some(0) => f.write_str("done"),
            Some(code) if self.error.is_empty() => write!(f, "failed with code {code}"),
            Some(_) => f.write_str(&self.error),
            None => f.write_str(
                "not finished within distributed_ddl_task_timeout (it goes on in the background)",
            ),
        }
    }
}

/// The columns of a distributed DDL result, as ClickHouse names them.
const STATUS_COLUMNS: [&str; 6] = [
    "host",
    "port",
    "status",
    "error",
    "num_hosts_remaining",
    "num_hosts_active",
];

/// Reads the result of an `ON CLUSTER` query in `TabSeparatedWithNames`: a header
/// naming `host, port, status, error, num_hosts_remaining, num_hosts_active` (other
/// columns are ignored) and one row per host. `status` and `error` may be `\N`
/// (`distributed_ddl_output_mode` `null_status_on_timeout` or `never_throw`: the host
/// did not finish in time). Empty input (the `none` output modes) gives no hosts.
/// Anything else — such as an exception the server appended after the rows — is an
/// error quoting the offending line.
pub fn parse_ddl_status(tsv: &str) -> Result<Vec<HostStatus>, ClusterError> {
    let body = tsv.strip_suffix('\n').unwrap_or(tsv);
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = body.split('\n');
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(unescape_tsv)
        .collect();
    let mut index = [0usize; 6];
    for (slot, name) in index.iter_mut().zip(STATUS_COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ClusterError::Status {
                line: 1,
                reason: format!(
                    "no column `{name}` in the header ({}); expected {}",
                    excerpt(&header.join(", ")),
                    STATUS_COLUMNS.join(", ")
                ),
            })?;
    }
    let mut hosts = Vec::new();
    for (n, line) in lines.enumerate() {
        let line_no = n + 2;
        let bad = |reason: String| ClusterError::Status {
            line: line_no,
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "expected {} tab-separated fields, found {}: {}",
                header.len(),
                fields.len(),
                excerpt(line)
            )));
        }
        let field = |k: usize| fields[index[k]];
        let number = |k: usize| -> Result<u64, ClusterError> {
            field(k).parse().map_err(|_| {
                bad(format!(
                    "{} is not a number: {}",
                    STATUS_COLUMNS[k],
                    excerpt(field(k))
                ))
            })
        };
        let port = u16::try_from(number(1)?)
            .map_err(|_| bad(format!("port {} is out of range", field(1))))?;
        let status = match field(2) {
            "\\N" => None,
            text => Some(
                text.parse::<i64>()
                    .map_err(|_| bad(format!("status is not a number: {}", excerpt(text))))?,
            ),
        };
        let error = match field(3) {
            "\\N" => String::new(),
            text => unescape_tsv(text),
        };
        hosts.push(HostStatus {
            host: unescape_tsv(field(0)),
            port,
            status,
            error,
            hosts_remaining: number(4)?,
            hosts_active: number(5)?,
        });
    }
    Ok(hosts)
}

/// The hosts whose status is not 0: failed, or not finished in time.
pub fn failed_hosts(hosts: &[HostStatus]) -> Vec<&HostStatus> {
    hosts.iter().filter(|h| h.failed()).collect()
}

/// A TSV field's value: `\t`, `\n`, `\\`, `\'` and the other escapes ClickHouse writes
/// undone (`\xHH` too).
fn unescape_tsv(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        if c == b'x' {
            let hex = field
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        if c.is_ascii() {
            out.push(unescape_char(char::from(c)) as u8);
            i += 2;
        } else {
            // A backslash before a multi-byte character stands for the character.
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` shortened for a message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() > MAX {
        text.chars().take(MAX).collect::<String>() + "…"
    } else {
        text.to_string()
    }
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

    const HEADER: &str = "host\tport\tstatus\terror\tnum_hosts_remaining\tnum_hosts_active\n";

    #[test]
    fn ddl_status_rows_are_read() {
        let tsv = format!(
            "{HEADER}ch-1\t9000\t0\t\t1\t2\nch-2\t9000\t57\tCode: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)\t0\t2\n"
        );
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(
            hosts,
            vec![
                HostStatus {
                    host: "ch-1".into(),
                    port: 9000,
                    status: Some(0),
                    error: String::new(),
                    hosts_remaining: 1,
                    hosts_active: 2,
                },
                HostStatus {
                    host: "ch-2".into(),
                    port: 9000,
                    status: Some(57),
                    error: "Code: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)".into(),
                    hosts_remaining: 0,
                    hosts_active: 2,
                },
            ]
        );
        let failed = failed_hosts(&hosts);
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].to_string(),
            "ch-2:9000: Code: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)"
        );
        assert_eq!(hosts[0].to_string(), "ch-1:9000: done");
    }

    #[test]
    fn escaped_tabs_newlines_and_quotes_in_errors_are_undone() {
        // As ClickHouse writes `a<TAB>b<LF>c\d'e<NUL>f<BS><FF><CR>g` in TSV.
        let tsv = format!("{HEADER}h\t9000\t1\ta\\tb\\nc\\\\d\\'e\\0f\\b\\f\\rg\\x41\t0\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].error, "a\tb\nc\\d'e\0f\u{8}\u{c}\rgA");
        // The host may be escaped too, and an IPv6 host is shown in brackets.
        let tsv = format!("{HEADER}::1\t9440\t2\tx\\\\y\t0\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].to_string(), "[::1]:9440: x\\y");
    }

    #[test]
    fn hosts_that_did_not_finish_have_no_status_and_count_as_failed() {
        // distributed_ddl_output_mode = never_throw / null_status_on_timeout.
        let tsv = format!("{HEADER}a\t9000\t0\t\\N\t1\t2\nb\t9000\t\\N\t\\N\t1\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].status, Some(0));
        assert_eq!(hosts[0].error, "");
        assert_eq!(hosts[1].status, None);
        let failed = failed_hosts(&hosts);
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].to_string(),
            "b:9000: not finished within distributed_ddl_task_timeout (it goes on in the background)"
        );
        // A code without a message still says which.
        let tsv = format!("{HEADER}c\t9000\t999\t\t0\t1\n");
        assert_eq!(
            parse_ddl_status(&tsv).unwrap()[0].to_string(),
            "c:9000: failed with code 999"
        );
    }

    #[test]
    fn empty_results() {
        assert_eq!(parse_ddl_status(""), Ok(vec![]));
        assert_eq!(parse_ddl_status("\n"), Ok(vec![]));
        assert_eq!(parse_ddl_status(HEADER), Ok(vec![]));
        assert!(failed_hosts(&[]).is_empty());
    }

    #[test]
    fn columns_are_found_by_name() {
        let tsv = "num_hosts_active\textra\terror\tstatus\tport\thost\tnum_hosts_remaining\n3\tq\t\t0\t9000\th\t0";
        let hosts = parse_ddl_status(tsv).unwrap();
        assert_eq!(hosts[0].host, "h");
        assert_eq!(hosts[0].hosts_active, 3);
        assert_eq!(hosts[0].status, Some(0));
    }

    #[test]
    fn malformed_results_are_errors_with_their_line() {
        // A Replicated database's result has other columns.
        let err = parse_ddl_status(
            "shard\treplica\tstatus\tnum_hosts_remaining\tnum_hosts_active\n01\tr1\tOK\t0\t1\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ClusterError::Status { line: 1, reason } if reason.contains("no column `host`")),
            "{err}"
        );
        // An exception the server appended after the rows.
        let tsv = format!("{HEADER}a\t9000\t0\t\t1\t2\nCode: 159. DB::Exception: Watching task is executing longer than distributed_ddl_task_timeout (=180) seconds. (TIMEOUT_EXCEEDED)\n");
        let err = parse_ddl_status(&tsv).unwrap_err();
        assert!(
            matches!(&err, ClusterError::Status { line: 3, reason } if reason.contains("TIMEOUT_EXCEEDED")),
            "{err}"
        );
        for (row, what) in [
            ("a\tx\t0\t\t0\t1", "port is not a number"),
            ("a\t70000\t0\t\t0\t1", "port 70000 is out of range"),
            ("a\t9000\tok\t\t0\t1", "status is not a number"),
            ("a\t9000\t0\t\t-1\t1", "num_hosts_remaining is not a number"),
            (
                "a\t9000\t0\t\t0",
                "expected 6 tab-separated fields, found 5",
            ),
            ("", "expected 6 tab-separated fields, found 1"),
        ] {
            let err = parse_ddl_status(&format!("{HEADER}{row}\n")).unwrap_err();
            assert!(
                matches!(&err, ClusterError::Status { line: 2, reason } if reason.contains(what)),
                "{row:?}: {err}"
            );
        }
    }
}
