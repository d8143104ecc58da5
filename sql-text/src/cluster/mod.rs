//! Running migrations on a ClickHouse cluster, in two parts: [`render`] (module
//! [`mod@render`]) turns one statement as our migrations write it into its `ON CLUSTER`
//! form, with MergeTree-family engines made Replicated; [`parse_ddl_status`] (module
//! [`ddl_status`]) reads the per-host result a distributed DDL query returns.
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
//! Keywords are recognised only as bare words of [`crate::lex`]: text inside '…'
//! strings, `…` and "…" identifiers, `$$…$$` heredocs and comments never counts.

pub mod ddl_status;
pub mod render;

pub use ddl_status::{failed_hosts, parse_ddl_status, HostStatus};
pub use render::render;

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
