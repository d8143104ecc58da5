//! Golden tests of `ON CLUSTER` rendering: every statement of every `migrations/*.sql`
//! file, rendered for the cluster `rvbbit_cluster` and compared with
//! `tests/golden/cluster/<file>`. There is no cluster to run them on, so these files
//! are what a reviewer checks against ClickHouse's grammar.
//!
//! The same directory holds the golden files of the plugin's own tables (the migration
//! ledger and the migrate lease): their statements live in the training plugin, which
//! this crate cannot reach, so the plugin's unit test `cluster_golden` renders and
//! checks them; this test only knows their names, so as not to take them for stale.
//!
//! `UPDATE_GOLDEN=1` (or `UPDATE_SNAPSHOTS=1`, as for the repository's other
//! snapshots) rewrites the golden files and removes those of migrations that are gone.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rvbbit_sql_text::cluster::render;
use rvbbit_sql_text::split;

const CLUSTER: &str = "rvbbit_cluster";

/// The golden files of the plugin's own tables, checked by `training-plugin/src/cluster_golden.rs`.
const PLUGIN_TABLE_GOLDEN: [&str; 2] = [
    "ledger_rvbbit_plugin_migrations.sql",
    "lease_rvbbit_plugin_leases.sql",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    manifest_dir().join("tests/golden/cluster")
}

fn updating() -> bool {
    ["UPDATE_GOLDEN", "UPDATE_SNAPSHOTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"))
}

/// Statements joined by ";\n\n", ending with ";\n".
fn render_all(origin: &str, statements: &[String]) -> String {
    let rendered: Vec<String> = statements
        .iter()
        .map(|s| render(s, CLUSTER).unwrap_or_else(|e| panic!("{origin}: `{s}`: {e}")))
        .collect();
    rendered.join(";\n\n") + ";\n"
}

/// Compares `actual` with the golden file `name`, or rewrites it when updating.
/// Returns a description of the difference, if any.
fn check(name: &str, actual: &str) -> Option<String> {
    let path = golden_dir().join(name);
    if updating() {
        fs::create_dir_all(golden_dir()).expect("create the golden directory");
        fs::write(&path, actual).expect("write a golden file");
        return None;
    }
    let expected = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            return Some(format!(
                "{}: cannot read it ({e}); run with UPDATE_GOLDEN=1 to create it",
                path.display()
            ))
        }
    };
    if expected == actual {
        return None;
    }
    let (exp, act): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let line = exp
        .iter()
        .zip(&act)
        .position(|(e, a)| e != a)
        .unwrap_or(exp.len().min(act.len()));
    Some(format!(
        "{} differs from the rendering at line {} (UPDATE_GOLDEN=1 accepts the new rendering):\n- {}\n+ {}",
        path.display(),
        line + 1,
        exp.get(line).unwrap_or(&"<end of file>"),
        act.get(line).unwrap_or(&"<end of file>"),
    ))
}

fn migration_files() -> Vec<PathBuf> {
    let dir = manifest_dir().join("../migrations");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.sql file in {}", dir.display());
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_migration_renders_as_its_golden_file() {
    let mut failures = Vec::new();
    let mut expected_files: BTreeSet<String> =
        PLUGIN_TABLE_GOLDEN.iter().map(|n| n.to_string()).collect();
    for path in migration_files() {
        let name = file_name(&path);
        let script = fs::read_to_string(&path).expect("read a migration");
        let statements: Vec<String> = split(&script)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert!(!statements.is_empty(), "{name} has no statement");
        failures.extend(check(&name, &render_all(&name, &statements)));
        expected_files.insert(name);
    }
    // Golden files of migrations that no longer exist.
    if let Ok(entries) = fs::read_dir(golden_dir()) {
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            let name = file_name(&path);
            if !expected_files.contains(&name) {
                if updating() {
                    fs::remove_file(&path).expect("remove a stale golden file");
                } else {
                    failures.push(format!(
                        "{} belongs to no migration; UPDATE_GOLDEN=1 removes it",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
