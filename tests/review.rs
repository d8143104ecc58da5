//! `rvbbit training review`, the real binary on a real terminal: tmux runs it in a
//! detached 80x24 window, the test types keys into it (`send-keys`) and reads the
//! screen (`capture-pane`), and checks against the local engine that each decision is
//! one row of `training_annotations` written at once, that undo writes the previous
//! annotation back (or removes the new one), that a second run resumes, and that the
//! terminal is given back on every way out.

use rvbbit_tests::logs::{insert, Annotated, LogRow};
use rvbbit_tests::rvbbit::{now_ms, worker_insert};
use rvbbit_tests::{bin_dir, run_in_terminal, rvbbit, TestDb};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a screen may take to show what a test waits for (the older engines answer
/// a request a second).
const PATIENCE: Duration = Duration::from_secs(120);

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One tmux server of its own (`-L`), with one detached 80x24 window running a
/// command; the server is killed when this is dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `rvbbit <args> --url … --database …` with a clean environment (plus
    /// `env`) in an 80x24 window. When it ends, the window shows `[exit N]`, the
    /// terminal's `icanon` and `echo` modes, `[end]`, and stays open.
    fn start(db: &TestDb, label: &str, args: &[&str], env: &[(&str, &str)]) -> Tmux {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is needed for these tests (apt-get install tmux; scripts/test installs it)"
        );
        let socket = format!("rvbbit-review-{}-{label}", std::process::id());
        let mut line = String::from("env -i PATH=/usr/bin:/bin HOME=/tmp TERM=screen LANG=C.UTF-8");
        for (key, value) in env {
            line.push_str(&format!(" {key}={}", quote(value)));
        }
        line.push(' ');
        line.push_str(&quote(&bin_dir().join("rvbbit").to_string_lossy()));
        for arg in args
            .iter()
            .copied()
            .chain(["--url", &db.url, "--database", &db.name])
        {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        line.push_str(
            "; echo \"[exit $?]\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo '[end]'; sleep 600",
        );
        let tmux = Tmux { socket };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "review",
            "-x",
            "80",
            "-y",
            "24",
            &line,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-u", "-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Keys by tmux's names (`t`, `Enter`, `Right`, `C-c`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "review"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Text typed as it is.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "review", "-l", text]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "review"])
    }

    /// The screen once `done` holds for it; fails with the screen after [`PATIENCE`].
    fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen once it shows `text`.
    fn wait_for(&self, text: &str) -> String {
        self.wait(text, |screen| screen.contains(text))
    }

    /// The screen once the command has ended, after checking it exited with `code` and
    /// gave the terminal back (line mode and echo on, the alternate screen left).
    fn wait_for_exit(&self, code: i32) -> String {
        let screen = self.wait_for("[end]");
        assert!(
            screen.contains(&format!("[exit {code}]")),
            "exit {code}:\n{screen}"
        );
        assert!(
            screen.contains("icanon echo [end]"),
            "the terminal's modes back:\n{screen}"
        );
        assert!(!self.alternate(), "the alternate screen left:\n{screen}");
        screen
    }

    /// Whether the window is on the alternate screen (the review's).
    fn alternate(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "review", "#{alternate_on}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The latest annotation of every annotated trace, by trace id.
async fn latest(db: &TestDb) -> Vec<Annotated> {
    db.rows(
        "SELECT trace_id, tupleElement(l, 1) AS trainable, tupleElement(l, 2) AS verified, \
         tupleElement(l, 3) AS confidence, tupleElement(l, 4) AS notes, tupleElement(l, 5) AS tags, \
         tupleElement(l, 6) AS annotated_by FROM (SELECT trace_id, \
         argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS l \
         FROM training_annotations GROUP BY trace_id) ORDER BY trace_id",
    )
    .await
}

async fn latest_of(db: &TestDb, trace_id: &str) -> Option<Annotated> {
    latest(db)
        .await
        .into_iter()
        .find(|a| a.trace_id == trace_id)
}

/// When the trace's latest annotation was written (the server's text): each decision
/// writes a row, so it moves on. (Rows are not counted: the table's merges fold a
/// trace's rows into its latest at any time.)
async fn last_written(db: &TestDb, trace_id: &str) -> String {
    db.scalar(&format!(
        "SELECT toString(max(annotated_at)) FROM training_annotations WHERE trace_id = '{trace_id}'"
    ))
    .await
}

async fn rows_of(db: &TestDb, trace_id: &str) -> u64 {
    db.scalar(&format!(
        "SELECT count() FROM training_annotations WHERE trace_id = '{trace_id}'"
    ))
    .await
}

/// Whether rvbbit's retrieval sees the trace as trainable (through the view).
async fn trainable_in_view(db: &TestDb, trace_id: &str) -> bool {
    db.scalar::<u64>(&format!(
        "SELECT count() FROM training_examples_with_annotations WHERE trace_id = '{trace_id}' AND trainable"
    ))
    .await
        > 0
}

/// Examples rv-1 … rv-5 of casc/cell (rv-1's question runs over 40 lines), one of
/// another cascade; the scorer has assessed rv-1, rv-2 and rv-4 (0.1, 0.2, 0.4), bob
/// has reviewed rv-3, rv-5 has no annotation.
async fn prepared(label: &str) -> TestDb {
    let db = TestDb::with_logs(label).await;
    let long_question = (1..=40)
        .map(|i| format!("line {i} of the first question"))
        .collect::<Vec<_>>()
        .join("\n");
    insert(
        &db.client,
        &[
            LogRow::simple("rv-1", "casc", "cell", &long_question, "the first answer"),
            LogRow::simple("rv-2", "casc", "cell", "what is 2+2?", "five"),
            LogRow::simple("rv-3", "casc", "cell", "reviewed by bob", "yes"),
            LogRow::simple("rv-4", "casc", "cell", "what is 3+3?", "six"),
            LogRow::simple("rv-5", "casc", "cell", "never scored", "ok"),
            LogRow::simple("rv-9", "other", "cell", "elsewhere", "there"),
        ],
    )
    .await;
    db.rvbbit(&["training", "migrate", "-q"]).expect_code(0);
    for (trace, score) in [("rv-1", 0.1), ("rv-2", 0.2), ("rv-4", 0.4)] {
        db.exec(&worker_insert(trace, score, &now_ms(), "confidence_worker"))
            .await;
    }
    db.rvbbit(&[
        "training",
        "annotate",
        "rv-3",
        "--not-trainable",
        "--by",
        "bob",
        "-q",
    ])
    .expect_code(0);
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn review_writes_each_decision_at_once_undoes_it_and_a_second_run_resumes() {
    let db = prepared("review").await;
    let args = [
        "training",
        "review",
        "--cascade",
        "casc",
        "--order",
        "lowest-confidence",
    ];
    let tmux = Tmux::start(&db, "first", &args, &[("USER", "ana")]);

    // The first example at 80x24: where it is, its annotation, its texts, every key.
    let screen = tmux.wait_for("1/4  rv-1  casc / cell");
    for shown in [
        "now: not trainable · not verified · confidence 0.1 · by confidence_worker",
        "notes: Auto-assessed",
        "line 1 of the first question",
        "the first answer",
        "t trainable",
        "n not trainable",
        "v verified on/off",
        "c confidence",
        "e note",
        "s/→ skip",
        "u undo",
        "↑↓/PgUp/PgDn scroll",
        "Tab input/output",
        "q quit",
    ] {
        assert!(screen.contains(shown), "{shown:?} on the screen:\n{screen}");
    }
    assert_eq!(screen.lines().count(), 24, "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    assert!(!screen.contains("rv-3"), "bob reviewed rv-3:\n{screen}");
    assert!(tmux.alternate());
    // The long question scrolls.
    tmux.keys(&["End"]);
    let screen = tmux.wait_for("line 40 of the first question");
    assert!(!screen.contains("line 1 of the first question"), "{screen}");
    tmux.keys(&["Home"]);
    tmux.wait_for("line 1 of the first question");

    // t: one row, written at once, every other value kept from the scorer's.
    tmux.keys(&["t"]);
    tmux.wait_for("2/4  rv-2");
    assert_eq!(
        latest_of(&db, "rv-1").await,
        Some(Annotated {
            trace_id: "rv-1".into(),
            trainable: true,
            verified: false,
            confidence: Some(0.1),
            notes: "Auto-assessed".into(),
            tags: vec![],
            annotated_by: "ana".into(),
        })
    );
    assert!(trainable_in_view(&db, "rv-1").await);

    // v, c 0.8, e "bad join", then t: four rows, each with the one change.
    let scored = last_written(&db, "rv-2").await;
    tmux.keys(&["v"]);
    tmux.wait_for("rv-2: verified");
    assert!(last_written(&db, "rv-2").await > scored);
    tmux.keys(&["c"]);
    tmux.wait_for("confidence 0..1:");
    tmux.type_text("0.8");
    tmux.keys(&["Enter"]);
    tmux.wait_for("rv-2: confidence 0.8");
    tmux.keys(&["e"]);
    tmux.wait_for("note:");
    tmux.type_text("bad join");
    tmux.keys(&["Enter"]);
    tmux.wait_for("rv-2: note written");
    let before_verdict = Annotated {
        trace_id: "rv-2".into(),
        trainable: false,
        verified: true,
        confidence: Some(0.8),
        notes: "bad join".into(),
        tags: vec![],
        annotated_by: "ana".into(),
    };
    assert_eq!(latest_of(&db, "rv-2").await, Some(before_verdict.clone()));
    let noted = last_written(&db, "rv-2").await;
    tmux.keys(&["t"]);
    tmux.wait_for("3/4  rv-4");
    let marked = last_written(&db, "rv-2").await;
    assert!(marked > noted, "{marked} after {noted}");
    assert!(trainable_in_view(&db, "rv-2").await);

    // → skips rv-4 (nothing written); t on rv-5, which had no annotation.
    tmux.keys(&["Right"]);
    tmux.wait_for("4/4  rv-5");
    let rv4 = latest_of(&db, "rv-4").await.expect("scored");
    assert_eq!(rv4.annotated_by, "confidence_worker", "nothing written");
    tmux.keys(&["t"]);
    tmux.wait_for("End of the queue (4 examples).");
    assert_eq!(rows_of(&db, "rv-5").await, 1);
    assert!(trainable_in_view(&db, "rv-5").await);

    // Undo rv-5: it had no annotation, so ana's row is deleted and its trainable copy
    // with it.
    tmux.keys(&["u"]);
    tmux.wait_for("undone: rv-5 has no annotation again");
    assert_eq!(rows_of(&db, "rv-5").await, 0);
    assert!(!trainable_in_view(&db, "rv-5").await);
    // Undo the skip, then rv-2's t: the annotation before it is written back.
    tmux.keys(&["u"]);
    tmux.wait_for("undone: skip of rv-4");
    tmux.keys(&["u"]);
    let screen = tmux.wait_for("undone: rv-2 has its previous annotation again");
    assert!(screen.contains("2/4  rv-2"), "{screen}");
    assert!(
        screen.contains("now: not trainable · verified · confidence 0.8 · by ana"),
        "{screen}"
    );
    assert_eq!(latest_of(&db, "rv-2").await, Some(before_verdict));
    assert!(last_written(&db, "rv-2").await > marked, "undo adds a row");
    assert!(!trainable_in_view(&db, "rv-2").await);

    // q: the terminal is given back, then the summary.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for_exit(0);
    assert!(
        screen.contains("reviewed 2 examples: 1 trainable, 1 not trainable; 0 skipped"),
        "{screen}"
    );
    drop(tmux);

    // A second run resumes: the reviewed examples no longer qualify.
    let tmux = Tmux::start(&db, "second", &args, &[("USER", "ana")]);
    let screen = tmux.wait_for("1/2  rv-4");
    assert!(
        !screen.contains("rv-1") && !screen.contains("rv-2"),
        "{screen}"
    );
    tmux.keys(&["s"]);
    tmux.wait_for("2/2  rv-5");
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for_exit(0);
    assert!(
        screen.contains("reviewed 0 examples: 0 trainable, 0 not trainable; 1 skipped"),
        "{screen}"
    );
    drop(tmux);

    // --all shows the reviewed ones again; --by names the reviewer.
    let tmux = Tmux::start(
        &db,
        "all",
        &[
            "training",
            "review",
            "--all",
            "--cascade",
            "casc",
            "--max-confidence",
            "0.15",
            "--by",
            "carla",
        ],
        &[],
    );
    tmux.wait_for("1/1  rv-1");
    tmux.keys(&["n"]);
    tmux.wait_for("End of the queue (1 example).");
    tmux.keys(&["q"]);
    tmux.wait_for_exit(0);
    let rv1 = latest_of(&db, "rv-1").await.expect("annotated");
    assert_eq!((rv1.trainable, rv1.annotated_by.as_str()), (false, "carla"));
    drop(tmux);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn review_needs_a_terminal_says_when_there_is_nothing_and_gives_the_terminal_back_after_a_panic(
) {
    let db = prepared("review_edges").await;

    // Not on a terminal: exit 2, and the commands to use instead.
    let piped = db.rvbbit(&["training", "review"]);
    piped.expect_code(2);
    for named in [
        "needs a terminal",
        "rvbbit training examples --cascade CASCADE_ID --cell CELL --all",
        "rvbbit training annotate TRACE_ID... --trainable",
    ] {
        assert!(piped.stderr.contains(named), "{named}: {}", piped.stderr);
    }
    assert_eq!(piped.stdout, "");

    // On a terminal with nothing to review: one line, exit 0, no screen taken over.
    let mut command = rvbbit();
    command.args([
        "training",
        "review",
        "--cascade",
        "nope",
        "--url",
        &db.url,
        "--database",
        &db.name,
    ]);
    let empty = run_in_terminal(&command);
    empty.expect_code(0);
    assert_eq!(
        empty.stdout.trim(),
        "nothing to review: no unreviewed example of cascade nope (--all shows the reviewed ones too)"
    );

    // A panic on the review's screen: the terminal is given back before the message.
    let tmux = Tmux::start(
        &db,
        "panic",
        &["training", "review"],
        &[("RVBBIT_TRAINING_FAILPOINT", "review-panic")],
    );
    tmux.wait_for("q quit");
    tmux.keys(&["t"]);
    let screen = tmux.wait_for_exit(70);
    assert!(screen.contains("panicked"), "{screen}");
    assert_eq!(rows_of(&db, "rv-5").await, 0, "nothing written");
    drop(tmux);
    db.drop().await;
}
