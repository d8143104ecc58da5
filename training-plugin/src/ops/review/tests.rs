use super::ui::{key, money, split_room, wrap_text, FOOTER};
use super::*;

fn example(trace_id: &str, annotation: Option<(bool, bool, Option<f32>, &str)>) -> Example {
    let mut e = Example {
        trace_id: trace_id.into(),
        cascade_id: "casc".into(),
        cell_name: "cell".into(),
        user_input: format!("question of {trace_id}"),
        assistant_output: format!("answer of {trace_id}"),
        model: Some("openai/gpt-4o-mini".into()),
        cost: Some(0.0012),
        logged: "2026-11-30 11:02:41.123456".into(),
        ..Example::default()
    };
    if let Some((trainable, verified, confidence, by)) = annotation {
        e.annotated = true;
        e.trainable = trainable;
        e.verified = verified;
        e.confidence = confidence;
        e.notes = "Auto-assessed".into();
        e.annotated_by = by.into();
    }
    e
}

fn worker(trace_id: &str, score: f32) -> Example {
    example(
        trace_id,
        Some((false, false, Some(score), "confidence_worker")),
    )
}

/// Carries out `intent` as `review` would against a server holding `server`'s latest
/// annotation per trace.
fn serve(
    app: &mut App,
    server: &mut std::collections::BTreeMap<String, Annotation>,
    intent: Intent,
) {
    match intent {
        Intent::Decide { index, decision } => {
            let trace = app.items[index].example.trace_id.clone();
            let previous = server.get(&trace).cloned();
            let row = decide(&trace, previous.as_ref(), &decision, "ana");
            server.insert(trace, row.clone());
            app.decided(index, &decision, previous, row);
        }
        Intent::Undo(step) => {
            if let Step::Wrote {
                previous, written, ..
            } = &step
            {
                match previous {
                    Some(p) => server.insert(written.trace_id.clone(), p.as_ref().clone()),
                    None => server.remove(&written.trace_id),
                };
            }
            app.undone();
        }
        Intent::Nothing | Intent::Quit => {}
    }
}

fn typed(app: &mut App, server: &mut std::collections::BTreeMap<String, Annotation>, keys: &str) {
    for c in keys.chars() {
        let intent = app.on_key(Key::Char(c));
        serve(app, server, intent);
    }
}

#[test]
fn the_queue_query_has_a_condition_per_filter_and_the_order_asked() {
    let plain = queue_sql(&ReviewOptions::default());
    assert!(
        plain.contains(
            "FROM training_examples_with_annotations WHERE (annotated_at IS NULL OR annotated_by IN {automatic:Array(String)}) ORDER BY timestamp DESC, trace_id LIMIT {limit:UInt32}"
        ),
        "{plain}"
    );
    let all = queue_sql(&ReviewOptions {
        all: true,
        ..ReviewOptions::default()
    });
    assert!(
        all.contains("training_examples_with_annotations ORDER BY"),
        "{all}"
    );
    let every = queue_sql(&ReviewOptions {
        selection: Selection {
            cascade: Some("c".into()),
            cell: Some("x".into()),
            min_confidence: Some(0.2),
            max_confidence: Some(0.6),
        },
        order: Order::LowestConfidence,
        ..ReviewOptions::default()
    });
    for part in [
        "cascade_id = {cascade:String}",
        "cell_name = {cell:String}",
        "confidence >= {min_confidence:Float32}",
        "confidence <= {max_confidence:Float32}",
        "ORDER BY confidence ASC NULLS LAST, timestamp DESC, trace_id",
    ] {
        assert!(every.contains(part), "{part} in {every}");
    }
}

#[test]
fn options_that_cannot_mean_anything_are_refused() {
    let crossed = ReviewOptions {
        selection: Selection {
            min_confidence: Some(0.8),
            max_confidence: Some(0.2),
            ..Selection::default()
        },
        ..ReviewOptions::default()
    };
    assert!(format!("{:#}", check_options(&crossed).unwrap_err()).contains("above"));
    let scorer = ReviewOptions {
        by: Some("confidence_worker".into()),
        ..ReviewOptions::default()
    };
    assert!(check_options(&scorer).is_err());
    assert!(check_options(&ReviewOptions::default()).is_ok());
}

#[test]
fn without_a_terminal_the_error_names_the_commands_to_use() {
    assert!(require_terminal(true, true).is_ok());
    for (stdin, stdout) in [(false, true), (true, false), (false, false)] {
        let e = require_terminal(stdin, stdout).unwrap_err();
        let message = format!("{e:#}");
        assert!(message.contains("rvbbit training examples"), "{message}");
        assert!(message.contains("--all"), "{message}");
        assert!(
            message.contains("rvbbit training annotate TRACE_ID"),
            "{message}"
        );
        let code = e
            .downcast_ref::<crate::failure::Classified>()
            .map(|c| c.exit_code);
        assert_eq!(code, Some(exit::USAGE));
    }
    assert!(check_verbose(true, true).is_err());
    assert!(check_verbose(true, false).is_ok());
    assert!(check_verbose(false, true).is_ok());
}

#[test]
fn the_empty_queue_says_what_was_asked() {
    assert_eq!(
        nothing_to_review(&ReviewOptions::default()),
        "nothing to review: no unreviewed example (--all shows the reviewed ones too)"
    );
    assert_eq!(
        nothing_to_review(&ReviewOptions {
            selection: Selection {
                cascade: Some("c".into()),
                cell: Some("x".into()),
                min_confidence: Some(0.5),
                max_confidence: Some(0.75),
            },
            all: true,
            ..ReviewOptions::default()
        }),
        "nothing to review: no example of cascade c, cell x with confidence from 0.5 to 0.75"
    );
}

#[test]
fn decisions_change_one_value_and_keep_the_rest_as_annotate_does() {
    let current = worker("t", 0.42).annotation();
    let current = current.as_ref();
    let trainable = decide("t", current, &Decision::Trainable, "ana");
    assert!(trainable.trainable && !trainable.verified);
    assert_eq!(trainable.confidence, Some(0.42));
    assert_eq!(trainable.notes, "Auto-assessed");
    assert_eq!(trainable.annotated_by, "ana");
    let verified = decide("t", current, &Decision::ToggleVerified, "ana");
    assert!(verified.verified && !verified.trainable);
    let unverified = decide("t", Some(&verified), &Decision::ToggleVerified, "ana");
    assert!(!unverified.verified);
    let confidence = decide("t", current, &Decision::Confidence(0.9), "ana");
    assert_eq!(confidence.confidence, Some(0.9));
    assert!(!confidence.trainable);
    let note = decide("t", current, &Decision::Note("wrong join".into()), "ana");
    assert_eq!(note.notes, "wrong join");
    // A trace not yet annotated starts trainable, as with annotate.
    let fresh = decide("u", None, &Decision::ToggleVerified, "ana");
    assert!(fresh.trainable && fresh.verified && fresh.confidence.is_none());
    let not = decide("u", None, &Decision::NotTrainable, "ana");
    assert!(!not.trainable);
    assert!(Decision::Trainable.moves_on() && Decision::NotTrainable.moves_on());
    assert!(!Decision::ToggleVerified.moves_on() && !Decision::Note(String::new()).moves_on());
}

#[test]
fn verdicts_move_on_edits_stay_and_skips_write_nothing() {
    let mut app = App::new(vec![worker("a", 0.3), example("b", None), worker("c", 0.9)]);
    let mut server = std::collections::BTreeMap::new();
    assert_eq!(
        app.on_key(Key::Char('t')),
        Intent::Decide {
            index: 0,
            decision: Decision::Trainable
        }
    );
    let mut app = App::new(vec![worker("a", 0.3), example("b", None), worker("c", 0.9)]);
    typed(&mut app, &mut server, "v");
    assert_eq!(app.position, 0, "an edit stays");
    assert!(server["a"].verified);
    typed(&mut app, &mut server, "t");
    assert_eq!(app.position, 1);
    assert!(server["a"].trainable && server["a"].verified);
    let intent = app.on_key(Key::Right);
    assert_eq!(intent, Intent::Nothing, "a skip writes nothing");
    assert_eq!(app.position, 2);
    assert!(!server.contains_key("b"));
    typed(&mut app, &mut server, "n");
    assert_eq!(app.position, 3, "the end of the queue");
    assert!(app.item().is_none());
    assert_eq!(
        app.on_key(Key::Char('t')),
        Intent::Nothing,
        "nothing to mark at the end"
    );
    assert_eq!(
        app.summary(),
        Summary {
            reviewed: 2,
            trainable: 1,
            not_trainable: 1,
            skipped: 1
        }
    );
    assert_eq!(
        app.summary().to_string(),
        "reviewed 2 examples: 1 trainable, 1 not trainable; 1 skipped"
    );
    assert_eq!(app.on_key(Key::Char('q')), Intent::Quit);
    assert_eq!(app.on_key(Key::Interrupt), Intent::Quit);
}

#[test]
fn undo_writes_the_previous_annotation_back_or_removes_the_new_one() {
    let mut app = App::new(vec![worker("a", 0.3), example("b", None)]);
    let mut server = std::collections::BTreeMap::new();
    server.insert("a".to_string(), worker("a", 0.3).annotation().unwrap());
    typed(&mut app, &mut server, "tt");
    assert!(server["b"].trainable);
    // Undo b: it had no annotation, so the new row goes.
    let Intent::Undo(step) = app.on_key(Key::Char('u')) else {
        panic!("an undo");
    };
    assert!(
        matches!(&step, Step::Wrote { previous: None, written, .. } if written.trace_id == "b")
    );
    serve(&mut app, &mut server, Intent::Undo(step));
    assert!(!server.contains_key("b"));
    assert_eq!(app.position, 1, "back on b");
    assert_eq!(app.items[1].current, None);
    // Undo a: the scorer's annotation comes back, as it was.
    typed(&mut app, &mut server, "u");
    assert_eq!(server["a"], worker("a", 0.3).annotation().unwrap());
    assert_eq!(app.position, 0);
    assert_eq!(app.items[0].current, worker("a", 0.3).annotation());
    assert_eq!(app.summary(), Summary::default());
    typed(&mut app, &mut server, "u");
    assert_eq!(app.message, "nothing to undo");
    // Undoing a skip goes back to the example; nothing was written.
    typed(&mut app, &mut server, "s");
    assert_eq!(app.position, 1);
    typed(&mut app, &mut server, "u");
    assert_eq!(app.position, 0);
    assert!(app.history.is_empty());
}

#[test]
fn confidence_and_notes_are_typed_then_entered_or_cancelled() {
    let mut app = App::new(vec![worker("a", 0.3)]);
    let mut server = std::collections::BTreeMap::new();
    typed(&mut app, &mut server, "c");
    assert_eq!(app.mode, Mode::Confidence(String::new()));
    typed(&mut app, &mut server, "1.5x");
    assert_eq!(app.mode, Mode::Confidence("1.5".into()), "letters ignored");
    assert_eq!(app.on_key(Key::Enter), Intent::Nothing);
    assert!(app.message.contains("outside 0..1"), "{}", app.message);
    app.on_key(Key::ClearLine);
    typed(&mut app, &mut server, "0.75");
    app.on_key(Key::Backspace);
    let intent = app.on_key(Key::Enter);
    assert_eq!(
        intent,
        Intent::Decide {
            index: 0,
            decision: Decision::Confidence(0.7)
        }
    );
    serve(&mut app, &mut server, intent);
    assert_eq!(app.mode, Mode::Browse);
    assert_eq!(server["a"].confidence, Some(0.7));
    assert_eq!(app.message, "a: confidence 0.7");
    // Esc cancels: nothing written.
    typed(&mut app, &mut server, "c9");
    assert_eq!(app.on_key(Key::Esc), Intent::Nothing);
    assert_eq!(app.mode, Mode::Browse);
    // A note: any character, q included; Enter writes it.
    typed(&mut app, &mut server, "equite wrong");
    assert_eq!(app.mode, Mode::Note("quite wrong".into()));
    let intent = app.on_key(Key::Enter);
    serve(&mut app, &mut server, intent);
    assert_eq!(server["a"].notes, "quite wrong");
    assert_eq!(app.position, 0, "a note stays on the example");
    typed(&mut app, &mut server, "e");
    assert_eq!(app.on_key(Key::Enter), Intent::Nothing, "an empty note");
    assert_eq!(app.mode, Mode::Browse);
    assert_eq!(app.history.len(), 2);
    // Ctrl-C quits while typing too.
    typed(&mut app, &mut server, "e");
    assert_eq!(app.on_key(Key::Interrupt), Intent::Quit);
}

#[test]
fn scrolling_stays_within_the_text_and_resets_on_the_next_example() {
    let mut app = App::new(vec![worker("a", 0.3), worker("b", 0.4)]);
    app.set_viewport((30, 7), (3, 8));
    app.on_key(Key::PageDown);
    assert_eq!(app.scroll, [6, 0]);
    app.on_key(Key::End);
    assert_eq!(app.scroll, [23, 0]);
    app.on_key(Key::Down);
    assert_eq!(app.scroll, [23, 0], "not past the end");
    app.on_key(Key::Up);
    app.on_key(Key::PageUp);
    assert_eq!(app.scroll, [16, 0]);
    app.on_key(Key::Home);
    assert_eq!(app.scroll, [0, 0]);
    app.on_key(Key::Tab);
    assert_eq!(app.focus, Pane::Output);
    app.on_key(Key::Down);
    assert_eq!(app.scroll, [0, 0], "the output fits: nothing to scroll");
    app.on_key(Key::Tab);
    app.on_key(Key::Down);
    app.on_key(Key::Char('s'));
    assert_eq!((app.scroll, app.focus), ([0, 0], Pane::Input));
    // A smaller screen pulls the scroll back within the text.
    app.scroll = [20, 0];
    app.set_viewport((10, 5), (3, 8));
    assert_eq!(app.scroll, [5, 0]);
}

#[test]
fn texts_wrap_at_spaces_within_the_width_and_keep_their_lines() {
    let text = "the quick brown fox jumps over the lazy dog\n\nsecond\tline";
    let lines = wrap_text(text, 12);
    assert_eq!(
        lines,
        vec![
            "the quick ",
            "brown fox ",
            "jumps over ",
            "the lazy dog",
            "",
            "second    ",
            "line"
        ]
    );
    let long = wrap_text("abcdefghijklmnopqrstuvwxyz", 10);
    assert_eq!(long, vec!["abcdefghij", "klmnopqrst", "uvwxyz"]);
    let wide = wrap_text("日本語のテキスト", 6);
    assert!(wide.iter().all(|l| l.chars().count() <= 3), "{wide:?}");
    assert_eq!(wide.concat(), "日本語のテキスト");
    let control = wrap_text("a\u{1b}[2Jb\r\nc", 20);
    assert_eq!(control, vec!["a\u{fffd}[2Jb", "c"]);
    assert_eq!(wrap_text("", 10), vec![""]);
}

#[test]
fn the_panes_share_the_room_a_short_text_whole() {
    assert_eq!(split_room(15, 3, 5), (3, 12));
    assert_eq!(split_room(15, 3, 40), (3, 12));
    assert_eq!(split_room(15, 40, 4), (11, 4));
    assert_eq!(split_room(15, 40, 40), (7, 8));
    assert_eq!(split_room(15, 1, 1), (1, 14));
    assert_eq!(split_room(2, 40, 40), (1, 1));
}

#[test]
fn costs_read_as_money() {
    assert_eq!(money(Some(0.0012)), "$0.0012");
    assert_eq!(money(Some(1.5)), "$1.5");
    assert_eq!(money(Some(0.0)), "$0");
    assert_eq!(money(None), "-");
}

#[test]
fn terminal_keys_become_review_keys() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
    let press = |code, modifiers| KeyEvent::new(code, modifiers);
    assert_eq!(
        key(press(KeyCode::Char('t'), KeyModifiers::NONE)),
        Some(Key::Char('t'))
    );
    assert_eq!(
        key(press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Key::Interrupt)
    );
    assert_eq!(
        key(press(KeyCode::Char('u'), KeyModifiers::CONTROL)),
        Some(Key::ClearLine)
    );
    assert_eq!(key(press(KeyCode::Char('x'), KeyModifiers::CONTROL)), None);
    assert_eq!(
        key(press(KeyCode::PageDown, KeyModifiers::NONE)),
        Some(Key::PageDown)
    );
    let mut release = press(KeyCode::Char('t'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(key(release), None);
}

/// The screen as text, line by line, drawn at `width` x `height`.
fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("a test terminal");
    terminal
        .draw(|frame| ui::render(frame, app))
        .expect("drawn");
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

#[test]
fn at_80x24_the_screen_shows_the_example_its_annotation_and_every_key() {
    let mut long = worker("rv-1", 0.42);
    long.user_input = (1..=40)
        .map(|i| format!("line {i} of the question"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut app = App::new(vec![long, example("rv-2", None)]);
    let lines = screen(&mut app, 80, 24);
    let text = lines.join("\n");
    assert!(lines.iter().all(|l| l.chars().count() == 80));
    assert!(lines[0].starts_with("1/2  rv-1  casc / cell"), "{text}");
    assert!(
        text.contains("model openai/gpt-4o-mini · cost $0.0012 · logged 2026-11-30 11:02:41 UTC"),
        "{text}"
    );
    assert!(
        text.contains("now: not trainable · not verified · confidence 0.42 · by confidence_worker"),
        "{text}"
    );
    assert!(text.contains("notes: Auto-assessed · tags: -"), "{text}");
    assert!(text.contains("input · lines 1-"), "{text}");
    assert!(text.contains("of 40"), "{text}");
    assert!(text.contains("line 1 of the question"), "{text}");
    assert!(text.contains("answer of rv-1"), "{text}");
    for row in FOOTER {
        for (key, what) in row {
            assert!(
                text.contains(&format!("{key} {what}")),
                "{key} {what} in\n{text}"
            );
        }
    }
    // Scrolled to its end, the input shows its last line.
    app.on_key(Key::End);
    let text = screen(&mut app, 80, 24).join("\n");
    assert!(text.contains("line 40 of the question"), "{text}");
    assert!(!text.contains("line 1 of the question"), "{text}");
    // Typing a confidence: the prompt on the status line.
    app.on_key(Key::Char('c'));
    app.on_key(Key::Char('0'));
    let text = screen(&mut app, 80, 24).join("\n");
    assert!(text.contains("confidence 0..1: 0"), "{text}");
    assert!(text.contains("Enter sets it, Esc cancels"), "{text}");
    // The end of the queue.
    app.on_key(Key::Esc);
    app.position = 2;
    let text = screen(&mut app, 80, 24).join("\n");
    assert!(text.contains("End of the queue (2 examples)."), "{text}");
    assert!(text.contains("reviewed 0 examples"), "{text}");
    // A screen too small for the review says so.
    let text = screen(&mut app, 30, 8).join("\n");
    assert!(text.contains("30x8"), "{text}");
}
