//! Exit codes shared by the host and every plugin command: one per kind of failure.
//! The README's "Exit codes" table documents the same list.

/// Everything held.
pub const SUCCESS: i32 = 0;
/// A check did not hold (`verify` found a problem, `test-annotation` read back something else).
pub const CHECK_FAILED: i32 = 1;
/// The command line or a value in it is invalid; nothing was sent to the server.
pub const USAGE: i32 = 2;
/// The server could not be reached (refused, unknown host, timed out, TLS failure).
pub const CONNECTION: i32 = 3;
/// The server refused the credentials.
pub const AUTHENTICATION: i32 = 4;
/// The server's version is older than the schema needs; nothing was changed.
pub const SERVER_TOO_OLD: i32 = 5;
/// The database, or a table the command needs (such as `unified_logs`), does not exist.
pub const MISSING_PREREQUISITE: i32 = 6;
/// The server rejected a statement (the message says which one and why).
pub const SERVER_ERROR: i32 = 7;
/// The host could not find a command, or a plugin could not be loaded.
pub const NO_SUCH_COMMAND: i32 = 8;
/// Another `migrate` holds the database's migrate lease and did not finish in time; nothing was changed.
pub const BUSY: i32 = 9;
/// A bug: a plugin panicked or broke the ABI contract.
pub const INTERNAL: i32 = 70;
/// Interrupted by the user (Ctrl-C); the message says what was done and how to resume.
pub const INTERRUPTED: i32 = 130;

/// The snake_case name of an exit code, as JSON output names the kind of a failure
/// (`"kind"` of the error object, see [`crate::json`]): `check_failed`, `usage`, …;
/// `error` for a code not in the table.
pub fn kind(code: i32) -> &'static str {
    match code {
        SUCCESS => "success",
        CHECK_FAILED => "check_failed",
        USAGE => "usage",
        CONNECTION => "connection",
        AUTHENTICATION => "authentication",
        SERVER_TOO_OLD => "server_too_old",
        MISSING_PREREQUISITE => "missing_prerequisite",
        SERVER_ERROR => "server_error",
        NO_SUCH_COMMAND => "no_such_command",
        BUSY => "busy",
        INTERNAL => "internal",
        INTERRUPTED => "interrupted",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_kind() {
        let codes = [
            SUCCESS,
            CHECK_FAILED,
            USAGE,
            CONNECTION,
            AUTHENTICATION,
            SERVER_TOO_OLD,
            MISSING_PREREQUISITE,
            SERVER_ERROR,
            NO_SUCH_COMMAND,
            BUSY,
            INTERNAL,
            INTERRUPTED,
        ];
        let mut kinds: Vec<&str> = codes.iter().map(|&c| kind(c)).collect();
        assert!(kinds.iter().all(|k| *k != "error"));
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), codes.len());
        assert_eq!(kind(42), "error");
        assert_eq!(kind(MISSING_PREREQUISITE), "missing_prerequisite");
    }
}
