//! Embeds every `migrations/NNNN_name.sql` file into the plugin, in version order.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("..")
        .join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the migrations/ directory must exist") {
        let path = entry.expect("readable directory entry").path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = file_name.strip_suffix(".sql") else {
            continue;
        };
        println!("cargo:rerun-if-changed={}", path.display());
        let (version, name) = stem
            .split_once('_')
            .and_then(|(v, n)| Some((v.parse::<u32>().ok()?, n)))
            .unwrap_or_else(|| panic!("migration file {file_name} must be named NNNN_name.sql"));
        files.push((
            version,
            name.to_string(),
            path.canonicalize().expect("path exists"),
        ));
    }
    files.sort();
    for pair in files.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "two migrations share version {}",
            pair[0].0
        );
    }
    let mut out = String::from("pub static MIGRATIONS: &[Migration] = &[\n");
    for (version, name, path) in &files {
        writeln!(
            out,
            "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({:?}) }},",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("migrations.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
