//! Errors with an exit code. Deep code returns `anyhow::Error`s whose root is a
//! [`Classified`] error (what kind of failure, see `rvbbit_plugin_api::exit`); callers
//! add context ("creating view x"); [`into_failure`] turns the chain into the one
//! message the user sees, with secrets removed.

use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::Failure;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Classified {
    pub exit_code: i32,
    pub message: String,
}

/// An error of a known kind.
pub fn classified(exit_code: i32, message: impl Into<String>) -> anyhow::Error {
    Classified {
        exit_code,
        message: message.into(),
    }
    .into()
}

/// The message and exit code the user gets for `err`. `redact` removes secrets.
pub fn into_failure(err: anyhow::Error, redact: impl Fn(&str) -> String) -> Failure {
    let exit_code = err
        .chain()
        .find_map(|e| e.downcast_ref::<Classified>())
        .map_or(exit::SERVER_ERROR, |c| c.exit_code);
    Failure::new(exit_code, redact(&format!("{err:#}")))
}
