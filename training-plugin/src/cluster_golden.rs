//! Golden files of this plugin's own tables as `migrate --cluster` creates them: the
//! migration ledger ([`ledger::CREATE_LEDGER`]) and the migrate lease
//! ([`lease::CREATE_LEASES`]), the very statements `migrate` sends, rendered for the
//! cluster `rvbbit_cluster` and compared with `sql-text/tests/golden/cluster/<file>`,
//! beside the golden files of the migrations (those are rendered by
//! `sql-text/tests/cluster_golden.rs`, which cannot reach this crate's statements and
//! leaves these files to this test). There is no cluster to run them on, so these files
//! are what a reviewer checks against ClickHouse's grammar.
//!
//! `UPDATE_GOLDEN=1` (or `UPDATE_SNAPSHOTS=1`, as for the repository's other
//! snapshots) rewrites the golden files.

use crate::{lease, ledger};
use rvbbit_sql_text::cluster::render;
use std::path::{Path, PathBuf};

const CLUSTER: &str = "rvbbit_cluster";

/// Each golden file and the statement `migrate` sends for it.
const TABLES: [(&str, &str); 2] = [
    ("ledger_rvbbit_plugin_migrations.sql", ledger::CREATE_LEDGER),
    ("lease_rvbbit_plugin_leases.sql", lease::CREATE_LEASES),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the plugin is in the workspace")
        .join("sql-text/tests/golden/cluster")
}

fn updating() -> bool {
    ["UPDATE_GOLDEN", "UPDATE_SNAPSHOTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"))
}

#[test]
fn the_ledger_and_lease_tables_render_as_their_golden_files() {
    let mut failures = Vec::new();
    for (name, statement) in TABLES {
        let rendered = render(statement, CLUSTER)
            .unwrap_or_else(|e| panic!("{name}: `{statement}`: {e}"))
            + ";\n";
        assert_ne!(
            rendered.trim_end_matches(";\n"),
            statement,
            "{name}: the statement is sent unchanged to a cluster"
        );
        let path = golden_dir().join(name);
        if updating() {
            std::fs::write(&path, &rendered)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            continue;
        }
        let expected = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!(
                    "{}: cannot read it ({e}); run with UPDATE_GOLDEN=1 to create it",
                    path.display()
                ));
                continue;
            }
        };
        if expected != rendered {
            let line = expected
                .lines()
                .zip(rendered.lines())
                .position(|(e, a)| e != a)
                .unwrap_or(expected.lines().count().min(rendered.lines().count()));
            failures.push(format!(
                "{} differs from the rendering at line {} (UPDATE_GOLDEN=1 accepts the new rendering):\n- {}\n+ {}",
                path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end of file>"),
                rendered.lines().nth(line).unwrap_or("<end of file>"),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
