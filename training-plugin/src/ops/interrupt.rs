//! Ctrl-C, caught from the start of a command so that migrate can stop between steps.

use crate::failure::classified;
use anyhow::Context;
use rvbbit_plugin_api::exit;
use std::future::Future;

pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub fn new() -> anyhow::Result<Interrupt> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("installing the Ctrl-C handler")?,
        })
    }

    /// Runs `step`; if Ctrl-C comes first, returns an interruption error built by `what_was_done`.
    pub async fn guard<T>(
        &mut self,
        step: impl Future<Output = anyhow::Result<T>>,
        what_was_done: impl FnOnce() -> String,
    ) -> anyhow::Result<T> {
        self.race(step, || {
            format!("interrupted: {}. Nothing is half-applied: run `rvbbit training migrate` again to resume.", what_was_done())
        })
        .await
    }

    /// Runs `step`; if Ctrl-C comes first, returns an interruption error saying `message`.
    pub async fn race<T>(
        &mut self,
        step: impl Future<Output = anyhow::Result<T>>,
        message: impl FnOnce() -> String,
    ) -> anyhow::Result<T> {
        #[cfg(unix)]
        let ctrl_c = self.signal.recv();
        #[cfg(not(unix))]
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::select! {
            result = step => result,
            _ = ctrl_c => {
                // The terminal echoed `^C` where the cursor was: the message that
                // follows starts a line of its own.
                if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    eprintln!();
                }
                Err(classified(exit::INTERRUPTED, message()))
            }
        }
    }
}
