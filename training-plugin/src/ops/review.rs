//! The logic behind `rvbbit training review`: a queue of examples read from
//! `training_examples_with_annotations` ([`queue_sql`]), shown one at a time in the
//! terminal ([`ui`]), each decision written at once as one row of
//! `training_annotations`, decided the way `annotate` decides its rows
//! ([`decide`], on [`crate::ops::annotate::decide`]). The review itself is a pure state
//! machine ([`App`]): keys in, [`Intent`]s out; [`review`] carries the intents out
//! against the server and tells the machine what happened. `commands/review.rs` only
//! parses the flags into [`ReviewOptions`].

pub mod ui;

use crate::db::Db;
use crate::failure::classified;
use crate::ops::annotate::{self, parse_confidence, Annotation, Change};
use crate::ops::selection::Selection;
use crate::output;
use crate::say;
use crate::schema::{ANNOTATIONS, JOINED_VIEW};
use anyhow::Context;
use rvbbit_plugin_api::exit;

/// The `annotated_by` of rvbbit's automatic scorers (the confidence worker, and its
/// on-demand run from Studio): an example whose latest annotation is theirs has not
/// been reviewed by a person.
pub const AUTOMATIC: [&str; 2] = ["confidence_worker", "confidence_worker_ondemand"];

/// The order of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first.
    #[default]
    Newest,
    /// Lowest confidence first (examples never assessed last), then newest.
    LowestConfidence,
}

/// What `review` was asked for, the flags of its command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewOptions {
    /// Cascade, cell and the confidence's bounds.
    pub selection: Selection,
    /// Every example, reviewed or not; otherwise only those no person annotated yet.
    pub all: bool,
    pub order: Order,
    /// At most this many examples in one run.
    pub limit: u32,
    /// Who reviews (`annotated_by`); `$USER` when `None`.
    pub by: Option<String>,
}

/// Refuses what the options cannot mean, before anything is sent.
pub fn check_options(options: &ReviewOptions) -> anyhow::Result<()> {
    if let (Some(min), Some(max)) = (
        options.selection.min_confidence,
        options.selection.max_confidence,
    ) {
        if min > max {
            return Err(classified(
                exit::USAGE,
                format!("--min-confidence {min} is above --max-confidence {max}: no example could qualify"),
            ));
        }
    }
    if let Some(by) = options.by.as_deref() {
        if AUTOMATIC.contains(&by) {
            return Err(classified(
                exit::USAGE,
                format!("--by {by} is the name of rvbbit's automatic scorer: a review written under it would not count as reviewed by a person"),
            ));
        }
    }
    Ok(())
}

/// The review needs a person at a terminal: both standard input and output must be one.
pub fn require_terminal(stdin: bool, stdout: bool) -> anyhow::Result<()> {
    if stdin && stdout {
        return Ok(());
    }
    let which = match (stdin, stdout) {
        (false, false) => "neither standard input nor standard output is one",
        (false, true) => "standard input is not one",
        _ => "standard output is not one",
    };
    Err(classified(
        exit::USAGE,
        format!(
            "rvbbit training review needs a terminal ({which}); without one, list the examples with \
             `rvbbit training examples --cascade CASCADE_ID --cell CELL --all` and mark them with \
             `rvbbit training annotate TRACE_ID... --trainable` (or --not-trainable)"
        ),
    ))
}

/// `-v` prints every statement on stderr, which is the review's screen when it is a
/// terminal.
pub fn check_verbose(verbose: bool, stderr: bool) -> anyhow::Result<()> {
    if verbose && stderr {
        return Err(classified(
            exit::USAGE,
            "-v would print the statements over the review's screen; redirect standard error to see them (2>statements.log)",
        ));
    }
    Ok(())
}

/// An example of the queue, with its latest annotation as the view shows it.
#[derive(clickhouse::Row, serde::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Example {
    pub trace_id: String,
    pub cascade_id: String,
    pub cell_name: String,
    pub user_input: String,
    pub assistant_output: String,
    pub model: Option<String>,
    pub cost: Option<f64>,
    /// When it was logged, as ClickHouse prints it in UTC.
    pub logged: String,
    /// Whether the trace has an annotation at all (the values below are then its latest).
    pub annotated: bool,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: String,
    pub tags: Vec<String>,
    pub annotated_by: String,
}

impl Example {
    /// Its latest annotation, if it has one.
    pub fn annotation(&self) -> Option<Annotation> {
        self.annotated.then(|| Annotation {
            trace_id: self.trace_id.clone(),
            trainable: self.trainable,
            verified: self.verified,
            confidence: self.confidence,
            notes: self.notes.clone(),
            tags: self.tags.clone(),
            annotated_by: self.annotated_by.clone(),
        })
    }
}

/// The queue's query. Values travel as parameters (`cascade`, `cell`, `automatic`,
/// `min_confidence`, `max_confidence`, `limit`); only the conditions present and the
/// ORDER BY, from a closed set, are part of the text.
pub fn queue_sql(options: &ReviewOptions) -> String {
    let mut conditions = options.selection.conditions();
    if !options.all {
        conditions.push("(annotated_at IS NULL OR annotated_by IN {automatic:Array(String)})");
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let order = match options.order {
        Order::Newest => "timestamp DESC, trace_id",
        Order::LowestConfidence => "confidence ASC NULLS LAST, timestamp DESC, trace_id",
    };
    format!(
        "SELECT trace_id, cascade_id, cell_name, user_input, assistant_output, \
         CAST(model AS Nullable(String)) AS model, CAST(cost AS Nullable(Float64)) AS cost, \
         toString(timestamp, 'UTC') AS logged, CAST(annotated_at IS NOT NULL AS Bool) AS annotated, \
         trainable, verified, confidence, notes, tags, annotated_by \
         FROM {JOINED_VIEW}{filter} ORDER BY {order} LIMIT {{limit:UInt32}}"
    )
}

/// The examples to review, in the queue's order.
async fn queue(db: &Db, options: &ReviewOptions) -> anyhow::Result<Vec<Example>> {
    let query = options
        .selection
        .bind(db.query(&queue_sql(options)))
        .param("automatic", AUTOMATIC.as_slice())
        .param("limit", options.limit);
    db.fetch_all::<Example>(query)
        .await
        .with_context(|| format!("reading the examples to review from {JOINED_VIEW}"))
}

/// The one line printed when the queue is empty.
pub fn nothing_to_review(options: &ReviewOptions) -> String {
    let mut what = String::from(if options.all {
        "no example"
    } else {
        "no unreviewed example"
    });
    what.push_str(&options.selection.describe());
    if !options.all {
        what.push_str(" (--all shows the reviewed ones too)");
    }
    format!("nothing to review: {what}")
}

/// One decision of the reviewer, each written as one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Trainable,
    NotTrainable,
    /// Verified becomes the opposite of what it is now.
    ToggleVerified,
    Confidence(f32),
    /// Replaces the notes.
    Note(String),
}

impl Decision {
    /// A verdict moves on to the next example; the other decisions stay on it.
    pub fn moves_on(&self) -> bool {
        matches!(self, Decision::Trainable | Decision::NotTrainable)
    }
}

/// The row `decision` writes for `trace_id`: what it changes, every other value kept
/// from the trace's `current` annotation, exactly as `annotate` decides its rows (a
/// trace with no annotation yet starts trainable).
pub fn decide(
    trace_id: &str,
    current: Option<&Annotation>,
    decision: &Decision,
    by: &str,
) -> Annotation {
    let change = match decision {
        Decision::Trainable => Change {
            trainable: Some(true),
            ..Change::default()
        },
        Decision::NotTrainable => Change {
            trainable: Some(false),
            ..Change::default()
        },
        Decision::ToggleVerified => Change {
            verified: Some(!current.is_some_and(|c| c.verified)),
            ..Change::default()
        },
        Decision::Confidence(value) => Change {
            confidence: Some(Some(*value)),
            ..Change::default()
        },
        Decision::Note(text) => Change {
            notes: Some(text.clone()),
            ..Change::default()
        },
    };
    annotate::decide(trace_id, current, &change, by)
}

/// A key as the review reads it (the terminal's events, translated by [`ui`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Tab,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Left,
    Right,
    /// Ctrl-C: quits from anywhere.
    Interrupt,
    /// Ctrl-U: clears the line being typed.
    ClearLine,
}

/// What the keys are doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Single keys decide.
    Browse,
    /// Typing a confidence (`c`).
    Confidence(String),
    /// Typing a note (`e`).
    Note(String),
}

/// The text the scroll keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Input,
    Output,
}

impl Pane {
    fn at(self) -> usize {
        match self {
            Pane::Input => 0,
            Pane::Output => 1,
        }
    }
}

/// One thing the reviewer did, kept so that it can be undone.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A row was written for the example at `index`; `previous` was its latest
    /// annotation just before (`None`: it had none).
    Wrote {
        index: usize,
        previous: Option<Box<Annotation>>,
        written: Box<Annotation>,
    },
    /// The example at `index` was skipped.
    Skipped { index: usize },
}

impl Step {
    fn index(&self) -> usize {
        match self {
            Step::Wrote { index, .. } | Step::Skipped { index } => *index,
        }
    }
}

/// What the review asks [`review`] to do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Nothing,
    Quit,
    /// Write `decision` for the example at `index`, then call [`App::decided`].
    Decide {
        index: usize,
        decision: Decision,
    },
    /// Undo `step` (the last one), then call [`App::undone`].
    Undo(Step),
}

/// One example of the queue and its annotation as this review knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub example: Example,
    pub current: Option<Annotation>,
}

/// The numbers of the closing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub reviewed: usize,
    pub trainable: usize,
    pub not_trainable: usize,
    pub skipped: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reviewed {} example{}: {} trainable, {} not trainable; {} skipped",
            self.reviewed,
            if self.reviewed == 1 { "" } else { "s" },
            self.trainable,
            self.not_trainable,
            self.skipped
        )
    }
}

/// The review: the queue, where it stands, what was done. Pure: keys come in through
/// [`App::on_key`], and what the server did through [`App::decided`] and
/// [`App::undone`].
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub items: Vec<Item>,
    /// The example shown; `items.len()` once the queue is done.
    pub position: usize,
    pub mode: Mode,
    pub focus: Pane,
    /// The first line shown of each text (input, output).
    pub scroll: [usize; 2],
    /// How many lines each text has and how many are shown, as last drawn.
    pub viewport: [(usize, usize); 2],
    /// What was done, oldest first; undo takes the last.
    pub history: Vec<Step>,
    /// The status line: what just happened.
    pub message: String,
}

impl App {
    pub fn new(examples: Vec<Example>) -> App {
        let items = examples
            .into_iter()
            .map(|example| Item {
                current: example.annotation(),
                example,
            })
            .collect();
        App {
            items,
            position: 0,
            mode: Mode::Browse,
            focus: Pane::Input,
            scroll: [0, 0],
            viewport: [(0, 0), (0, 0)],
            history: Vec::new(),
            message: String::new(),
        }
    }

    /// The example shown, `None` once the queue is done.
    pub fn item(&self) -> Option<&Item> {
        self.items.get(self.position)
    }

    /// The drawn size of each text: `(lines, shown)`; scrolling stays within it.
    pub fn set_viewport(&mut self, input: (usize, usize), output: (usize, usize)) {
        self.viewport = [input, output];
        for pane in [Pane::Input, Pane::Output] {
            let i = pane.at();
            self.scroll[i] = self.scroll[i].min(self.max_scroll(pane));
        }
    }

    fn max_scroll(&self, pane: Pane) -> usize {
        let (lines, shown) = self.viewport[pane.at()];
        lines.saturating_sub(shown)
    }

    fn scroll_by(&mut self, delta: isize) {
        let i = self.focus.at();
        let max = self.max_scroll(self.focus);
        self.scroll[i] = self.scroll[i].saturating_add_signed(delta).min(max);
    }

    fn page(&self) -> isize {
        let shown = self.viewport[self.focus.at()].1;
        isize::try_from(shown.saturating_sub(1).max(1)).unwrap_or(1)
    }

    fn show(&mut self, position: usize) {
        self.position = position.min(self.items.len());
        self.scroll = [0, 0];
        self.focus = Pane::Input;
    }

    /// Handles one key; returns what must be done on the server, if anything.
    pub fn on_key(&mut self, key: Key) -> Intent {
        if key == Key::Interrupt {
            return Intent::Quit;
        }
        match std::mem::replace(&mut self.mode, Mode::Browse) {
            Mode::Browse => self.browse(key),
            Mode::Confidence(text) => self.typing_confidence(text, key),
            Mode::Note(text) => self.typing_note(text, key),
        }
    }

    fn browse(&mut self, key: Key) -> Intent {
        let on_example = self.position < self.items.len();
        let key = match key {
            Key::Char(c) => Key::Char(c.to_ascii_lowercase()),
            other => other,
        };
        match key {
            Key::Char('q') => Intent::Quit,
            Key::Char('u') => match self.history.last() {
                Some(step) => Intent::Undo(step.clone()),
                None => {
                    self.message = "nothing to undo".into();
                    Intent::Nothing
                }
            },
            Key::Char('t') if on_example => self.decision(Decision::Trainable),
            Key::Char('n') if on_example => self.decision(Decision::NotTrainable),
            Key::Char('v') if on_example => self.decision(Decision::ToggleVerified),
            Key::Char('c') if on_example => {
                self.mode = Mode::Confidence(String::new());
                self.message.clear();
                Intent::Nothing
            }
            Key::Char('e') if on_example => {
                self.mode = Mode::Note(String::new());
                self.message.clear();
                Intent::Nothing
            }
            Key::Char('s') | Key::Right if on_example => {
                let index = self.position;
                self.history.push(Step::Skipped { index });
                self.message = format!("skipped {}", self.items[index].example.trace_id);
                self.show(index + 1);
                Intent::Nothing
            }
            Key::Tab => {
                self.focus = match self.focus {
                    Pane::Input => Pane::Output,
                    Pane::Output => Pane::Input,
                };
                Intent::Nothing
            }
            Key::Up => {
                self.scroll_by(-1);
                Intent::Nothing
            }
            Key::Down => {
                self.scroll_by(1);
                Intent::Nothing
            }
            Key::PageUp => {
                self.scroll_by(-self.page());
                Intent::Nothing
            }
            Key::PageDown => {
                self.scroll_by(self.page());
                Intent::Nothing
            }
            Key::Home => {
                self.scroll[self.focus.at()] = 0;
                Intent::Nothing
            }
            Key::End => {
                self.scroll[self.focus.at()] = self.max_scroll(self.focus);
                Intent::Nothing
            }
            _ => Intent::Nothing,
        }
    }

    fn decision(&mut self, decision: Decision) -> Intent {
        Intent::Decide {
            index: self.position,
            decision,
        }
    }

    fn typing_confidence(&mut self, mut text: String, key: Key) -> Intent {
        match key {
            Key::Esc => {
                self.message = "confidence not changed".into();
                Intent::Nothing
            }
            Key::Enter => match parse_confidence(&text) {
                Ok(value) => self.decision(Decision::Confidence(value)),
                Err(e) => {
                    self.message = format!("{e}: type a number from 0 to 1, or Esc");
                    self.mode = Mode::Confidence(text);
                    Intent::Nothing
                }
            },
            other => {
                match other {
                    Key::Char(c) if (c.is_ascii_digit() || c == '.') && text.len() < 12 => {
                        text.push(c);
                    }
                    Key::Backspace => {
                        text.pop();
                    }
                    Key::ClearLine => text.clear(),
                    _ => {}
                }
                self.mode = Mode::Confidence(text);
                Intent::Nothing
            }
        }
    }

    fn typing_note(&mut self, mut text: String, key: Key) -> Intent {
        match key {
            Key::Esc => {
                self.message = "note not written".into();
                Intent::Nothing
            }
            Key::Enter if text.trim().is_empty() => {
                self.message = "nothing typed, no note written".into();
                Intent::Nothing
            }
            Key::Enter => self.decision(Decision::Note(text.trim().to_string())),
            other => {
                match other {
                    Key::Char(c) if !c.is_control() && text.chars().count() < 2000 => {
                        text.push(c);
                    }
                    Key::Backspace => {
                        text.pop();
                    }
                    Key::ClearLine => text.clear(),
                    _ => {}
                }
                self.mode = Mode::Note(text);
                Intent::Nothing
            }
        }
    }

    /// `written` was written for the example at `index` (its latest annotation had
    /// been `previous`): shows it, remembers it, and moves on after a verdict.
    pub fn decided(
        &mut self,
        index: usize,
        decision: &Decision,
        previous: Option<Annotation>,
        written: Annotation,
    ) {
        let Some(item) = self.items.get_mut(index) else {
            return;
        };
        item.current = Some(written.clone());
        let trace = &item.example.trace_id;
        self.message = match decision {
            Decision::Trainable => format!("{trace}: trainable"),
            Decision::NotTrainable => format!("{trace}: not trainable"),
            Decision::ToggleVerified if written.verified => format!("{trace}: verified"),
            Decision::ToggleVerified => format!("{trace}: not verified"),
            Decision::Confidence(_) => format!(
                "{trace}: confidence {}",
                written
                    .confidence
                    .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)))
            ),
            Decision::Note(_) => format!("{trace}: note written"),
        };
        self.history.push(Step::Wrote {
            index,
            previous: previous.map(Box::new),
            written: Box::new(written),
        });
        if decision.moves_on() {
            self.show(index + 1);
        }
    }

    /// The last step was undone on the server: forgets it and shows its example again.
    pub fn undone(&mut self) {
        let Some(step) = self.history.pop() else {
            return;
        };
        let index = step.index();
        if let (Step::Wrote { previous, .. }, Some(item)) = (&step, self.items.get_mut(index)) {
            item.current = previous.as_deref().cloned();
            self.message = match previous {
                Some(_) => format!(
                    "undone: {} has its previous annotation again",
                    item.example.trace_id
                ),
                None => format!("undone: {} has no annotation again", item.example.trace_id),
            };
        } else if let Some(item) = self.items.get(index) {
            self.message = format!("undone: skip of {}", item.example.trace_id);
        }
        self.show(index);
    }

    /// What this review did, as it stands (undone steps not counted): the examples it
    /// wrote rows for, by their latest row; the examples skipped and left unmarked.
    pub fn summary(&self) -> Summary {
        let mut reviewed = std::collections::BTreeSet::new();
        let mut skipped = std::collections::BTreeSet::new();
        for step in &self.history {
            match step {
                Step::Wrote { index, .. } => {
                    reviewed.insert(*index);
                }
                Step::Skipped { index } => {
                    skipped.insert(*index);
                }
            }
        }
        let trainable = reviewed
            .iter()
            .filter(|&&i| {
                self.items
                    .get(i)
                    .and_then(|item| item.current.as_ref())
                    .is_some_and(|a| a.trainable)
            })
            .count();
        Summary {
            reviewed: reviewed.len(),
            trainable,
            not_trainable: reviewed.len() - trainable,
            skipped: skipped.difference(&reviewed).count(),
        }
    }
}

/// Deletes the rows this review wrote for `trace_id` (`annotated_by` = `by`, written
/// since `since`, the server's clock in microseconds when the review started), and
/// puts the trainable copy right.
async fn remove_own_rows(db: &Db, trace_id: &str, by: &str, since: i64) -> anyhow::Result<()> {
    db.execute(
        db.query(&format!(
            "DELETE FROM {ANNOTATIONS} WHERE trace_id = {{id:String}} AND annotated_by = {{by:String}} \
             AND annotated_at >= fromUnixTimestamp64Micro({{since:Int64}})"
        ))
        .param("id", trace_id)
        .param("by", by)
        .param("since", since)
        .with_setting("mutations_sync", "2"),
    )
    .await
    .with_context(|| format!("removing the annotations this review wrote for trace {trace_id:?}"))?;
    crate::examples::recopy_trainable(db, trace_id).await
}

/// Carries out one intent against the server; `Ok(false)` to quit.
async fn carry_out(
    db: &Db,
    app: &mut App,
    intent: Intent,
    by: &str,
    since: i64,
) -> anyhow::Result<bool> {
    match intent {
        Intent::Nothing => {}
        Intent::Quit => return Ok(false),
        Intent::Decide { index, decision } => {
            let Some(item) = app.items.get(index) else {
                return Ok(true);
            };
            let trace_id = item.example.trace_id.clone();
            // The latest annotation now, not when the queue was read: rvbbit's scorer
            // or a colleague may have written one since.
            let previous = annotate::current_annotations(db, std::slice::from_ref(&trace_id))
                .await?
                .remove(&trace_id);
            let row = decide(&trace_id, previous.as_ref(), &decision, by);
            annotate::write(db, std::slice::from_ref(&row)).await?;
            app.decided(index, &decision, previous, row);
        }
        Intent::Undo(step) => {
            match &step {
                Step::Skipped { .. } => {}
                Step::Wrote {
                    previous: Some(previous),
                    ..
                } => annotate::write(db, std::slice::from_ref(previous.as_ref())).await?,
                Step::Wrote {
                    previous: None,
                    written,
                    ..
                } => remove_own_rows(db, &written.trace_id, by, since).await?,
            }
            app.undone();
        }
    }
    Ok(true)
}

/// The review loop: draw, read a key, carry out what it asks; until quit or an error.
async fn session(
    db: &Db,
    app: &mut App,
    screen: &mut ui::Screen,
    by: &str,
    since: i64,
) -> anyhow::Result<()> {
    loop {
        screen.draw(app)?;
        let Some(key) = screen.next_key()? else {
            continue;
        };
        failpoint(key);
        let intent = app.on_key(key);
        if matches!(intent, Intent::Decide { .. } | Intent::Undo(_)) {
            app.message = "writing…".into();
            screen.draw(app)?;
        }
        if !carry_out(db, app, intent, by, since).await? {
            return Ok(());
        }
    }
}

/// Test-only failpoint (debug builds): `RVBBIT_TRAINING_FAILPOINT=review-panic` panics
/// at the first key, on the review's screen, to prove the terminal is given back.
fn failpoint(key: Key) {
    if cfg!(debug_assertions)
        && std::env::var("RVBBIT_TRAINING_FAILPOINT").as_deref() == Ok("review-panic")
    {
        panic!("failpoint reached in the review at key {key:?}");
    }
}

/// Runs the review: reads the queue, and, unless it is empty, shows it on the terminal
/// until the reviewer quits; every decision is written as it is made. Prints the
/// summary after giving the terminal back, whatever ended the review.
pub async fn review(db: &Db, options: &ReviewOptions) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[JOINED_VIEW, ANNOTATIONS]).await?;
    // The worker's latest scores first (they reach the examples within 2 seconds).
    crate::examples::settle_scores(db).await?;
    let by = annotate::annotator(options.by.as_deref());
    let since: i64 = db
        .fetch_one(db.query("SELECT toUnixTimestamp64Micro(now64(6))"))
        .await
        .context("reading the server's clock")?;
    let examples = queue(db, options).await?;
    if examples.is_empty() {
        say!("{}", nothing_to_review(options));
        return Ok(exit::SUCCESS);
    }
    let mut app = App::new(examples);
    let outcome = {
        let mut screen = ui::Screen::enter()?;
        session(db, &mut app, &mut screen, &by, since).await
        // The screen is left here, before anything is printed.
    };
    say!("{}", app.summary());
    outcome.map(|()| exit::SUCCESS)
}

#[cfg(test)]
mod tests;
