//! The review's screen: the terminal taken over (raw mode, the alternate screen) and
//! given back whatever happens ([`Screen`]'s `Drop`: after quitting, an error or a
//! panic), keys read, and one example drawn ([`render`]): where it came from, its
//! current annotation, its input and output (each wrapped and scrollable), the status
//! line and a footer naming every key. Made to be read at 80x24.

use super::{App, Item, Key, Mode, Pane};
use crate::output;
use anyhow::Context;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::{Frame, Terminal};
use unicode_width::UnicodeWidthChar;

/// The smallest screen the review is drawn on; a smaller one gets a note instead.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 12;

/// The keys, as the footer names them: (key, what it does), two lines.
pub const FOOTER: [&[(&str, &str)]; 2] = [
    &[
        ("t", "trainable"),
        ("n", "not trainable"),
        ("v", "verified on/off"),
        ("c", "confidence"),
        ("e", "note"),
    ],
    &[
        ("s/→", "skip"),
        ("u", "undo"),
        ("↑↓/PgUp/PgDn", "scroll"),
        ("Tab", "input/output"),
        ("q", "quit"),
    ],
];

/// Gives the terminal back as it was: leaves the alternate screen, shows the cursor,
/// leaves raw mode. Runs on every way out, a panic's unwinding included.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
        let _ = disable_raw_mode();
    }
}

/// The terminal, taken over for the review until dropped.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
    _restore: Restore,
}

impl Screen {
    /// Takes the terminal over: raw mode (keys one at a time, Ctrl-C as a key) and the
    /// alternate screen (the shell's screen comes back as it was).
    pub fn enter() -> anyhow::Result<Screen> {
        enable_raw_mode().context("switching the terminal to raw mode")?;
        let restore = Restore;
        execute!(std::io::stdout(), EnterAlternateScreen)
            .context("switching to the terminal's alternate screen")?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))
            .context("setting up the review's screen")?;
        Ok(Screen {
            terminal,
            _restore: restore,
        })
    }

    pub fn draw(&mut self, app: &mut App) -> anyhow::Result<()> {
        self.terminal
            .draw(|frame| render(frame, app))
            .context("drawing the review's screen")?;
        Ok(())
    }

    /// The next key pressed; `None` for anything else (a resize: draw again).
    pub fn next_key(&mut self) -> anyhow::Result<Option<Key>> {
        match event::read().context("reading the keyboard")? {
            Event::Key(pressed) => Ok(key(pressed)),
            _ => Ok(None),
        }
    }
}

/// A terminal's key event as the review reads it.
pub fn key(event: KeyEvent) -> Option<Key> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    Some(match event.code {
        KeyCode::Char('c') if ctrl => Key::Interrupt,
        KeyCode::Char('u') if ctrl => Key::ClearLine,
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        _ => return None,
    })
}

/// `text` as lines of at most `width` columns: its own line breaks kept, lines broken
/// at the last space that fits (a word wider than the line is cut where it must be),
/// tabs as four spaces, other control characters shown as `�` (never sent to the
/// terminal).
pub fn wrap_text(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for source in text.split('\n') {
        let source = source.strip_suffix('\r').unwrap_or(source);
        let mut line: Vec<(char, usize)> = Vec::new();
        let mut used = 0;
        for c in source.chars() {
            let (c, repeat) = match c {
                '\t' => (' ', 4),
                c if c.is_control() => ('\u{fffd}', 1),
                c => (c, 1),
            };
            let w = c.width().unwrap_or(0);
            for _ in 0..repeat {
                if used + w > width && !line.is_empty() {
                    // Break after the last space, unless the line has none (or only
                    // at its start).
                    let rest = match line.iter().rposition(|&(c, _)| c == ' ') {
                        Some(at) if at > 0 => line.split_off(at + 1),
                        _ => Vec::new(),
                    };
                    lines.push(line.iter().map(|&(c, _)| c).collect::<String>());
                    line = rest;
                    used = line.iter().map(|&(_, w)| w).sum();
                }
                line.push((c, w));
                used += w;
            }
        }
        lines.push(line.iter().map(|&(c, _)| c).collect::<String>());
    }
    lines
}

/// The text lines each pane gets of `room` (input, output), given how many lines
/// each text has: both whole when they fit; else a short text whole and the other
/// the rest; else half each. Each gets at least one line when `room` has two.
pub fn split_room(room: usize, input: usize, output: usize) -> (usize, usize) {
    let half = room / 2;
    let input_part = if input + output <= room || input <= half {
        input
    } else if output <= room - half {
        room - output
    } else {
        half
    };
    let input_part = input_part.clamp(usize::from(room >= 2), room.saturating_sub(1).max(1));
    (input_part, room.saturating_sub(input_part))
}

/// A cost for people: `$0.0012`, up to six decimals, `-` when unknown.
pub fn money(cost: Option<f64>) -> String {
    match cost {
        None => "-".into(),
        Some(c) => {
            let text = format!("{c:.6}");
            let text = text.trim_end_matches('0');
            let text = text.strip_suffix('.').unwrap_or(text);
            format!("${text}")
        }
    }
}

/// What the example's current annotation says, in a line.
pub fn annotation_line(item: &Item) -> String {
    let Some(a) = &item.current else {
        return "now: not annotated".into();
    };
    let confidence = a
        .confidence
        .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)));
    let by = if a.annotated_by.is_empty() {
        "(nobody named)"
    } else {
        a.annotated_by.as_str()
    };
    format!(
        "now: {} · {} · confidence {confidence} · by {by}",
        if a.trainable {
            "trainable"
        } else {
            "not trainable"
        },
        if a.verified {
            "verified"
        } else {
            "not verified"
        },
    )
}

/// The notes and tags of the current annotation, in a line.
pub fn notes_line(item: &Item) -> String {
    let (notes, tags) = item
        .current
        .as_ref()
        .map(|a| (a.notes.replace(['\n', '\r', '\t'], " "), a.tags.join(", ")))
        .unwrap_or_default();
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    format!("notes: {} · tags: {}", dash(notes), dash(tags))
}

/// The footer's lines, the keys in bold.
fn footer() -> Vec<Line<'static>> {
    FOOTER
        .iter()
        .map(|keys| {
            let mut spans = Vec::new();
            for (i, (key, what)) in keys.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::raw("  "));
                }
                spans.push(Span::styled(
                    *key,
                    Style::new().add_modifier(Modifier::BOLD),
                ));
                spans.push(Span::raw(format!(" {what}")));
            }
            Line::from(spans)
        })
        .collect()
}

/// `text` cut to `width` columns with `…`, control characters made visible.
fn fit(text: &str, width: u16) -> String {
    let plain: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    output::truncate(&plain, usize::from(width))
}

fn accent() -> Style {
    if output::color() {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// Draws the review: the example shown, or the end of the queue.
pub fn render(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let note = format!(
            "The terminal is {}x{}; the review needs at least {MIN_WIDTH}x{MIN_HEIGHT}. q quits.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(note).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [head, body, status, foot] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(4),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(area);
    match app.item() {
        Some(item) => {
            render_head(frame, app, item, head);
            let (input, output) = render_texts(frame, app, item, body);
            app.set_viewport(input, output);
        }
        None => render_end(frame, app, head),
    }
    render_status(frame, app, status);
    frame.render_widget(Paragraph::new(footer()), foot);
}

fn render_head(frame: &mut Frame, app: &App, item: &Item, area: Rect) {
    let e = &item.example;
    let width = area.width;
    let first = format!(
        "{}/{}  {}  {} / {}",
        app.position + 1,
        app.items.len(),
        e.trace_id,
        e.cascade_id,
        e.cell_name
    );
    let logged = e.logged.get(..19).unwrap_or(&e.logged);
    let second = format!(
        "model {} · cost {} · logged {logged} UTC",
        e.model.as_deref().filter(|m| !m.is_empty()).unwrap_or("-"),
        money(e.cost),
    );
    let lines = vec![
        Line::styled(fit(&first, width), accent()),
        Line::raw(fit(&second, width)),
        Line::styled(
            fit(&annotation_line(item), width),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::raw(fit(&notes_line(item), width)),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// Draws the input and the output; returns each one's `(lines, shown)`.
fn render_texts(
    frame: &mut Frame,
    app: &App,
    item: &Item,
    area: Rect,
) -> ((usize, usize), (usize, usize)) {
    let width = usize::from(area.width);
    let input = wrap_text(&item.example.user_input, width);
    let output = wrap_text(&item.example.assistant_output, width);
    // Each pane has one line of title above its text.
    let room = usize::from(area.height).saturating_sub(2);
    let (input_room, output_room) = split_room(room, input.len(), output.len());
    let [top, bottom] = Layout::vertical([
        Constraint::Length(u16::try_from(input_room + 1).unwrap_or(u16::MAX)),
        Constraint::Min(1),
    ])
    .areas(area);
    for (pane, name, lines, place) in [
        (Pane::Input, "input", &input, top),
        (Pane::Output, "output", &output, bottom),
    ] {
        let shown = usize::from(place.height).saturating_sub(1);
        // Within the text, also when the screen has just grown.
        let scroll = app.scroll[pane.at()].min(lines.len().saturating_sub(shown));
        let last = (scroll + shown).min(lines.len());
        let empty = lines.len() == 1 && lines[0].is_empty();
        let mut title = if empty {
            format!(" {name} (empty) ")
        } else {
            format!(" {name} · lines {}-{last} of {} ", scroll + 1, lines.len())
        };
        let focused = app.focus == pane;
        if focused && lines.len() > shown {
            title.push_str("· ↑↓ scroll ");
        }
        let title_style = if focused {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        let text: Vec<Line> = lines
            .iter()
            .skip(scroll)
            .take(shown)
            .map(|l| Line::raw(l.as_str()))
            .collect();
        frame.render_widget(
            Paragraph::new(text).block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(Span::styled(fit(&title, place.width), title_style)),
            ),
            place,
        );
    }
    ((input.len(), input_room), (output.len(), output_room))
}

fn render_end(frame: &mut Frame, app: &App, area: Rect) {
    let width = area.width;
    let lines = vec![
        Line::styled(
            fit(
                &format!(
                    "End of the queue ({} example{}).",
                    app.items.len(),
                    if app.items.len() == 1 { "" } else { "s" }
                ),
                width,
            ),
            accent(),
        ),
        Line::raw(fit(&app.summary().to_string(), width)),
        Line::raw(fit(
            "u undoes the last decision; q quits. Decisions are already written.",
            width,
        )),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_status(frame: &mut Frame, app: &App, area: Rect) {
    let width = usize::from(area.width);
    let (prompt, text, hint) = match &app.mode {
        Mode::Browse => {
            frame.render_widget(
                Paragraph::new(fit(&app.message, area.width)).style(accent()),
                area,
            );
            return;
        }
        Mode::Confidence(text) => ("confidence 0..1: ", text, "  Enter sets it, Esc cancels"),
        Mode::Note(text) => ("note: ", text, "  Enter writes it, Esc cancels"),
    };
    let message = if app.message.is_empty() {
        hint.to_string()
    } else {
        format!("  {}", app.message)
    };
    // The end of what is typed, where the cursor is, always in sight.
    let room = width
        .saturating_sub(prompt.len() + 1 + message.chars().count().min(width / 2))
        .max(1);
    let count = text.chars().count();
    let typed: String = text.chars().skip(count.saturating_sub(room)).collect();
    let cursor = prompt.len() + typed.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
    let line = Line::from(vec![
        Span::styled(prompt, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(typed),
        Span::raw(" "),
        Span::styled(message, Style::new().add_modifier(Modifier::DIM)),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    frame.set_cursor_position(Position::new(
        area.x + u16::try_from(cursor).unwrap_or(area.width.saturating_sub(1)),
        area.y,
    ));
}
