//! The `training` plugin for rvbbit: sets up, checks and tests rvbbit's universal
//! training system in ClickHouse.
//!
//! One module per command under [`commands`]; each has its own `Args` and `exec`, and
//! leaves the work to the engine under `ops` (the migration planner, applier and
//! backfill, the checks of verify), in the vocabulary of `model`.
//! The SQL lives in `migrations/` at the workspace root and is embedded at build time.

#[cfg(test)]
mod cluster_golden;
mod commands;
mod connection;
mod db;
mod drift;
mod examples;
mod failure;
mod lease;
mod ledger;
mod migrations;
mod model;
mod ops;
mod output;
mod prerequisite;
mod schema;

rvbbit_plugin_api::export_plugin!(name: "training", version: env!("CARGO_PKG_VERSION"));
