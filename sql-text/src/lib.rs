//! Pure text handling for ClickHouse, with no I/O, so it can be unit-tested and fuzzed:
//! [`split`] turns a SQL script into statements; [`server`] reads what a server says
//! (its version, the code of an error); [`cluster`] renders statements for a cluster
//! (`ON CLUSTER`, Replicated engines) and reads the per-host result of distributed DDL.

pub mod cluster;
pub mod server;
pub mod split;

pub use split::{split, SplitError, Statement};
