//! The `training` plugin for rvbbit: sets up, checks and tests rvbbit's universal
//! training system in ClickHouse.
//!
//! One module per command under [`commands`]; each has its own `Args` and a short
//! `exec` that turns them into an options struct and leaves the work to `ops`: one
//! module per command's logic (annotate, examples, export, review, stats, status,
//! test-annotation, uninstall), and the engine of migrate and verify (the planner,
//! applier and backfill, the checks), in the vocabulary of `model`.
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
