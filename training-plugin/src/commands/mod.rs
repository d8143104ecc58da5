//! One module per command, each with its `Args` (clap) and its `exec`, declared once
//! with `register_command!(path, args, run)`: the plugin API parses the arguments and
//! derives the description and the signature the host completes from `Args`. `exec`
//! only turns `Args` into the plain options struct of the command's logic in
//! [`crate::ops`] and calls it through [`run`].
//!
//! | command                                   | module              | logic                         |
//! |-------------------------------------------|---------------------|-------------------------------|
//! | `rvbbit training migrate`                 | [`migrate`]         | [`crate::ops::migrate`]       |
//! | `rvbbit sql migrate training` (same)      | [`migrate`]         | [`crate::ops::migrate`]       |
//! | `rvbbit training verify`                  | [`verify`]          | [`crate::ops::verify`]        |
//! | `rvbbit training test-annotation`         | [`test_annotation`] | [`crate::ops::test_annotation`] |
//! | `rvbbit training annotate`                | [`annotate`]        | [`crate::ops::annotate`]      |
//! | `rvbbit training stats`                   | [`stats`]           | [`crate::ops::stats`]         |
//! | `rvbbit training examples`                | [`examples`]        | [`crate::ops::examples`]      |
//! | `rvbbit training export`                  | [`export`]          | [`crate::ops::export`]        |
//! | `rvbbit training review`                  | [`review`]          | [`crate::ops::review`]        |
//! | `rvbbit training status`                  | [`status`]          | [`crate::ops::status`]        |
//! | `rvbbit training uninstall`               | [`uninstall`]       | [`crate::ops::uninstall`]     |

pub mod annotate;
pub mod examples;
pub mod export;
pub mod migrate;
pub mod review;
pub mod stats;
pub mod status;
pub mod test_annotation;
pub mod uninstall;
pub mod verify;

#[cfg(test)]
mod help_examples;

use crate::connection::{resolve, ConnectionArgs, Target};
use crate::db::Db;
use crate::failure::into_failure;
use crate::output::OutputArgs;
use rvbbit_plugin_api::exit;
use rvbbit_plugin_api::plugin::{CommandResult, Failure};
use std::future::Future;

pub use crate::output::Format;

pub use crate::ops::annotate::parse_confidence;

/// Applies the output flags, resolves the connection flags and runs `body` on a fresh
/// single-threaded runtime; any error becomes the user's one message, with the
/// password removed. Under `--format json` (`format`), stdout gets one JSON document
/// whatever the outcome (`output::finish_json`, docs/JSON.md).
pub fn run<F, Fut>(
    format: Format,
    connection: &ConnectionArgs,
    output: &OutputArgs,
    body: F,
) -> CommandResult
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = anyhow::Result<i32>>,
{
    output.apply();
    crate::output::start(format);
    let result = run_body(connection, body);
    // Under `--format json`, stdout gets the one document, failed or not; the message
    // goes to stderr as well, as in table format.
    crate::output::finish_json(result.as_ref().err());
    result.map_err(fit_to_terminal)
}

/// [`run`] with the connection opened: `body` gets the [`Db`].
pub fn run_db<F, Fut>(
    format: Format,
    connection: &ConnectionArgs,
    output: &OutputArgs,
    body: F,
) -> CommandResult
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = anyhow::Result<i32>>,
{
    run(format, connection, output, |target| async move {
        body(Db::connect(target).await?).await
    })
}

/// The error message broken into lines that fit the terminal when stderr is one (the
/// host prints it there after "error: "); one line otherwise, for scripts.
fn fit_to_terminal(mut failure: Failure) -> Failure {
    if let Some(columns) = crate::output::stderr_width() {
        let room = columns.saturating_sub("error: ".len()).max(20);
        failure.message = crate::output::wrap(&failure.message, room).join("\n");
    }
    failure
}

fn run_body<F, Fut>(connection: &ConnectionArgs, body: F) -> CommandResult
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = anyhow::Result<i32>>,
{
    if connection.password.is_some() && !crate::output::quiet() {
        eprintln!(
            "warning: a password given with --password is visible to other users of this machine (ps, shell history); prefer RVBBIT_CLICKHOUSE_PASSWORD"
        );
    }
    let target = resolve(connection).map_err(|e| into_failure(e, |s| s.to_string()))?;
    let redactor = target.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                exit::INTERNAL,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    // Panics are caught here, before the plugin API would catch them, so that their
    // message goes through the same redaction as every error.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        failpoint_panic(&target);
        runtime.block_on(body(target))
    }));
    match outcome {
        Ok(Ok(exit::SUCCESS)) => Ok(()),
        Ok(Ok(code)) => Err(Failure::silent(code)),
        Ok(Err(e)) => Err(into_failure(e, |s| redactor.redact(s))),
        Err(payload) => Err(Failure::new(
            exit::INTERNAL,
            redactor.redact_everywhere(&format!(
                "the training plugin panicked: {}; this is a bug, please report it",
                rvbbit_plugin_api::plugin::describe_panic(payload.as_ref())
            )),
        )),
    }
}

/// Test-only failpoint (debug builds): `RVBBIT_TRAINING_FAILPOINT=panic` panics with a
/// message that contains the password, to prove panic messages are redacted.
fn failpoint_panic(target: &Target) {
    if cfg!(debug_assertions)
        && std::env::var("RVBBIT_TRAINING_FAILPOINT").as_deref() == Ok("panic")
    {
        panic!(
            "failpoint reached while connected as {}:{}",
            target.user, target.password
        );
    }
}
