//! What migrate did: the actions as they happen (printed at once for people), and the
//! closing report, printed by one printer in either format.

use crate::model::{Action, Found};
use crate::ops::verify;
use crate::output::{self, Format};
use crate::say;
use crate::schema::LOGS;

/// One object and what happened to it.
#[derive(serde::Serialize)]
pub struct Acted {
    pub action: Action,
    pub object: String,
}

/// The actions of one run, in order.
pub struct Actions {
    format: Format,
    pub done: Vec<Acted>,
}

impl Actions {
    pub fn new(format: Format) -> Actions {
        Actions {
            format,
            done: Vec::new(),
        }
    }

    /// Records an action, and prints it for people in table format.
    pub fn act(&mut self, action: Action, object: String) {
        if self.format == Format::Table {
            match action {
                Action::Created => say!("  {}  {object}", output::green("created")),
                Action::Exists => say!("  {}   {object}", output::dim("exists")),
                Action::Skipped => say!("  {}  {object}", output::dim("skipped")),
                Action::Absent => say!("  {}   {object}", output::dim("absent")),
                _ => say!("  {action:8} {object}"),
            }
        }
        self.done.push(Acted { action, object });
    }
}

/// What `migrate` did, for `--format json`.
#[derive(serde::Serialize)]
pub struct Outcome {
    pub database: String,
    pub server_version: String,
    /// What migrate found before it began: "new", "installed", or "hand-applied" (an
    /// install made by hand from an earlier version of the SQL).
    pub found: Found,
    pub findings: Vec<String>,
    pub actions: Vec<Acted>,
    pub backfilled_examples: u64,
    pub verify: verify::Report,
}

impl Outcome {
    /// The closing lines (table: the backfill, then the checks) or the JSON document.
    pub fn print(&self, format: Format) -> anyhow::Result<()> {
        match format {
            Format::Table => {
                if self.backfilled_examples == 0 {
                    say!("  backfill examples already cover {LOGS}");
                } else {
                    say!(
                        "  backfill added {} examples from existing {LOGS} rows",
                        self.backfilled_examples
                    );
                }
                say!();
                self.verify.print(Format::Table)
            }
            Format::Json => {
                println!("{}", serde_json::to_string_pretty(self)?);
                Ok(())
            }
        }
    }
}
