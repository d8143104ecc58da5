//! Handing a command no plugin provides to rvbbit's own CLI: the next `rvbbit` on
//! PATH that is not this binary, with the same arguments and exit code.
//!
//! `RVBBIT_HOST_VISITED` lists the hosts a command already passed through, so two
//! copies of this binary on PATH can never hand a command back and forth.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

const VISITED: &str = "RVBBIT_HOST_VISITED";

fn me() -> Option<PathBuf> {
    std::env::current_exe().ok()?.canonicalize().ok()
}

/// The next `rvbbit` executable on PATH that is neither this binary nor a host the
/// command already went through.
pub fn next_rvbbit() -> Option<PathBuf> {
    let me = me();
    let visited: Vec<PathBuf> = std::env::var_os(VISITED)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(exe_name()))
        .filter(|candidate| is_executable(candidate))
        .find(|candidate| {
            let canonical = candidate
                .canonicalize()
                .unwrap_or_else(|_| candidate.clone());
            Some(&canonical) != me.as_ref() && !visited.contains(&canonical)
        })
}

fn exe_name() -> String {
    format!("rvbbit{}", std::env::consts::EXE_SUFFIX)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `next` with `args` in place of this process (on Unix: exec, so exit code,
/// signals and terminal behave exactly as if the user had called it).
pub fn exec(next: &Path, args: &[OsString]) -> i32 {
    let mut visited: Vec<PathBuf> = std::env::var_os(VISITED)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    visited.extend(me());
    let mut command = std::process::Command::new(next);
    command.args(args);
    if let Ok(joined) = std::env::join_paths(&visited) {
        command.env(VISITED, joined);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        eprintln!("error: cannot run {}: {error}", next.display());
        crate::NO_SUCH_COMMAND
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(error) => {
            eprintln!("error: cannot run {}: {error}", next.display());
            crate::NO_SUCH_COMMAND
        }
    }
}
