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
            // Every action's word takes the same 11 columns; what it acted on is
            // broken at spaces below it, a name wider than the line cut with `…`.
            let text = output::hanging(&object, 11, output::width());
            match action {
                Action::Created => say!("  {}  {text}", output::green("created")),
                Action::Exists => say!("  {}   {text}", output::dim("exists")),
                Action::Skipped => say!("  {}  {text}", output::dim("skipped")),
                Action::Absent => say!("  {}   {text}", output::dim("absent")),
                _ => say!("  {action:8} {text}"),
            }
        }
        self.done.push(Acted { action, object });
    }
}

/// What `migrate` did, for `--format json`.
#[derive(serde::Serialize)]
pub struct Outcome {
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
                    let added = format!(
                        "backfill added {} examples from existing {LOGS} rows",
                        self.backfilled_examples
                    );
                    say!("  {}", output::hanging_after(&added, 2, 4, output::width()));
                }
                say!();
                self.verify.print(Format::Table)
            }
            Format::Json => output::print_json(self),
        }
    }
}
