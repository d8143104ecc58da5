//! Docs that cannot drift: every command shown in README.md and docs/*.md is run or
//! checked here, against the local engine.
//!
//! - `console` blocks: each `$ …` line is run in the order the document shows it (one
//!   fresh database per document, prepared like `scripts/quickstart`: rvbbit's
//!   `unified_logs` with the rows of `scripts/sample-logs.py`), stdout and stderr
//!   together, and what it prints is compared with the lines below it. A line `...` or
//!   `…` alone stands for any number of lines. Only what must vary is normalised (see
//!   [`normalise`]); everything else must match.
//! - other blocks (`sh`, unlabelled): each `rvbbit …` line is checked, not run: the
//!   command exists (`--help` answers) and shows every flag written on the line. Those
//!   lines need what a test cannot have (a cluster, a remote URL, a file of traces, a
//!   shell's completion directory, root for `install`, rvbbit's own CLI to hand off to)
//!   or are usage lines. `scripts/…` lines: the script exists and knows each flag.
//! - a block right after `<!-- not run: REASON -->` is skipped and counted; one right
//!   after `<!-- run on a fresh database -->` runs on a newly prepared database (it
//!   shows what is printed before `migrate`).

use rvbbit_tests::{bin_dir, engine_url, repo_root, Run, TestDb};
use std::path::Path;
use std::process::Command;

/// One fenced block of a document.
struct Block {
    file: String,
    /// Line of the opening fence (1-based).
    line: usize,
    lang: String,
    lines: Vec<String>,
    not_run: Option<String>,
    /// After `<!-- run on a fresh database -->`: the block shows a database before
    /// `migrate`, so it runs on a newly prepared one instead of the document's.
    fresh: bool,
}

fn documents() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo_root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn blocks(file: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(repo_root().join(file)).expect("document");
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        if let Some(fence) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => {
                    let not_run = previous
                        .trim()
                        .strip_prefix("<!-- not run:")
                        .and_then(|r| r.strip_suffix("-->"))
                        .map(|r| r.trim().to_string());
                    let fresh = previous.trim() == "<!-- run on a fresh database -->";
                    current = Some(Block {
                        file: file.to_string(),
                        line: i + 1,
                        lang: fence.trim().to_string(),
                        lines: Vec::new(),
                        not_run,
                        fresh,
                    });
                }
            }
        } else if let Some(block) = current.as_mut() {
            block.lines.push(line.to_string());
        }
        previous = line;
    }
    out
}

/// A `console` block as commands, each with the output shown below it.
fn steps(block: &Block) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in &block.lines {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push((command.to_string(), Vec::new()));
        } else if let Some((_, output)) = steps.last_mut() {
            output.push(line.clone());
        }
    }
    steps
}

/// Commands shown in a console block that the harness has already done.
const DONE_BY_THE_TEST: &[&str] = &["cargo build --workspace"];

/// Runs `command` as a shell line with the built rvbbit first on PATH, pointed at the
/// engine and `database` by its environment; `--database NAME` becomes `NAME` prefixed
/// by the test database's name.
fn run_line(command: &str, database: &str) -> Run {
    let command = command
        .replace("target/debug/rvbbit", "rvbbit")
        .replace("--database ", &format!("--database {database}_"));
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(format!("{{ {command}\n}} 2>&1"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RVBBIT_") {
            shell.env_remove(key);
        }
    }
    shell
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir().display()))
        .env("HOME", std::env::temp_dir())
        .env("RVBBIT_CLICKHOUSE_URL", engine_url())
        .env("RVBBIT_CLICKHOUSE_DATABASE", database)
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::null());
    Run::from_output(shell.output().expect("sh runs"))
}

/// Replaces each maximal match of `is_part` that `accept` takes with `with`.
fn replace_runs(
    text: &str,
    is_part: impl Fn(char) -> bool,
    accept: impl Fn(&str) -> bool,
    with: &str,
) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if is_part(c) {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            out.push_str(if accept(&run) { with } else { &run });
            run.clear();
        }
        out.push(c);
    }
    out.pop();
    out
}

/// What must vary between runs, in documented and actual output alike: timestamps,
/// durations, server version, random test ids, rates and ETAs of progress lines.
fn normalise(line: &str) -> String {
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '.');
    // Server version (four dotted numbers, not the local address) and dates/times.
    let line = replace_runs(
        &line.trim_end().replace("127.0.0.1", "LOCALHOST"),
        |c| c.is_ascii_digit() || c == '.',
        |s| s.split('.').count() == 4 && s.split('.').all(|p| !p.is_empty() && digits(p)),
        "VERSION",
    );
    let line = replace_runs(
        &line,
        |c| c.is_ascii_digit() || c == '-',
        |s| s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-',
        "DATE",
    );
    let line = replace_runs(
        &line,
        |c| c.is_ascii_digit() || c == ':' || c == '.',
        |s| s.len() >= 8 && s.as_bytes()[2] == b':' && s.as_bytes()[5] == b':',
        "TIME",
    );
    // Random test ids.
    let line = replace_runs(
        &line,
        |c| c.is_ascii_alphanumeric() || c == '-',
        |s| s.starts_with("rvbbit-test-"),
        "rvbbit-test-ID",
    );
    // Durations: a number followed by " s" or "ms".
    let mut out = String::new();
    let words: Vec<&str> = line.split(' ').collect();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let unit = next.trim_end_matches([',', ')', ';', '.']);
        let is_number = !word.is_empty() && digits(word.trim_start_matches('('));
        if is_number && matches!(unit, "s" | "ms" | "rows/s" | "examples/s") {
            out.push_str(if word.starts_with('(') { "(N" } else { "N" });
        } else if word.ends_with("ms") && digits(word.trim_end_matches("ms")) {
            out.push('N');
            out.push_str("ms");
        } else {
            out.push_str(word);
        }
        out.push(' ');
    }
    out.pop();
    out.replace("LOCALHOST", "127.0.0.1")
}

/// [`normalise`] for every line; the backfill's lines per month (how many months the
/// sample's rows fall in depends on today's date) become one line, and trailing empty
/// lines go. Trailing spaces (table cells are padded) are not kept by the documents.
fn normalise_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines.map(normalise) {
        let is_month = line.starts_with("  backfill ") && line.contains(" log rows scanned (");
        if is_month {
            if out.last().is_some_and(|l| l == "  backfill MONTHS") {
                continue;
            }
            out.push("  backfill MONTHS".to_string());
        } else {
            out.push(line);
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Does `actual` match `documented`, where a documented `...`/`…` line matches any lines?
fn matches(documented: &[String], actual: &[String]) -> bool {
    match documented.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if matches!(first.trim(), "..." | "…") => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            !actual.is_empty()
                && (first == &actual[0]
                    || (first.trim_end().ends_with('…')
                        && actual[0].starts_with(first.trim_end().trim_end_matches('…'))))
                && matches(rest, &actual[1..])
        }
    }
}

/// A unified-diff-like listing: `-` documented only, `+` printed only, ` ` both.
fn diff(documented: &[String], actual: &[String]) -> String {
    let (n, m) = (documented.len(), actual.len());
    // Longest common subsequence, from the ends.
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if documented[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && documented[i] == actual[j] {
            out.push_str(&format!(" {}\n", documented[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", documented[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", actual[j]));
            j += 1;
        }
    }
    out
}

async fn prepared_database(label: &str) -> TestDb {
    let db = TestDb::with_logs(label).await;
    let sample = Command::new("python3")
        .arg(repo_root().join("scripts/sample-logs.py"))
        .output()
        .expect("python3 runs scripts/sample-logs.py");
    assert!(sample.status.success(), "scripts/sample-logs.py failed");
    db.exec(&format!(
        "INSERT INTO unified_logs FORMAT JSONEachRow\n{}",
        String::from_utf8_lossy(&sample.stdout)
    ))
    .await;
    db
}

/// Runs a document's console blocks in order; returns the mismatches.
async fn run_console_blocks(file: &str, blocks: &[Block]) -> Vec<String> {
    let label = file
        .trim_start_matches("docs/")
        .trim_end_matches(".md")
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let shared = prepared_database(&format!("docs_{label}")).await;
    let url = engine_url();
    let mut failures = Vec::new();
    for block in blocks {
        let own;
        let db = if block.fresh {
            own = prepared_database(&format!("docs_{label}_fresh")).await;
            &own
        } else {
            &shared
        };
        for (command, documented) in steps(block) {
            let bare = command.split('#').next().unwrap_or("").trim();
            if DONE_BY_THE_TEST.contains(&bare) {
                continue;
            }
            let run = run_line(&command, &db.name);
            let text = run
                .stdout
                .replace(&format!("{}_", db.name), "")
                .replace(&db.name, "rvbbit")
                .replace(&url, "http://127.0.0.1:8123");
            let actual = normalise_lines(text.lines());
            let expected = normalise_lines(documented.iter().map(String::as_str));
            if !matches(&expected, &actual) {
                failures.push(format!(
                    "{}:{}: `$ {command}` printed something else (exit {}):\n{}",
                    block.file,
                    block.line,
                    run.code,
                    diff(&expected, &actual)
                ));
            }
        }
    }
    failures
}

/// The subcommand words of an `rvbbit …` line and the flags written on it.
fn command_and_flags(line: &str) -> (Vec<String>, Vec<String>) {
    let line = line.split(" # ").next().unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| *w == "rvbbit")
        .map_or(0, |p| p + 1);
    let path: Vec<String> = words[start..]
        .iter()
        .take_while(|w| {
            w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
        })
        .map(|w| w.to_string())
        .collect();
    let mut flags = Vec::new();
    for word in &words[start..] {
        for part in word.split(['[', ']', '|', '=']) {
            let is_flag = (part.starts_with("--") && part.len() > 2)
                || (part.len() == 2 && part.starts_with('-') && part != "--");
            if is_flag
                && part[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                flags.push(part.to_string());
            }
        }
    }
    (path, flags)
}

/// The `rvbbit …` command of a shell line: after environment assignments, a pipe or a
/// `case` label, up to a `;`.
fn rvbbit_command(line: &str) -> Option<String> {
    let line = line.split(" # ").next().unwrap_or("");
    for segment in line.split(" | ") {
        let words: Vec<&str> = segment
            .split(';')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with('-') || w.ends_with(')'))
            .collect();
        if words.first() == Some(&"rvbbit") && words.len() > 1 {
            return Some(words.join(" "));
        }
    }
    None
}

/// Checks a non-console block's `rvbbit …` and `scripts/…` lines.
fn check_lines(block: &Block) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut commands: Vec<String> = Vec::new();
    for line in &block.lines {
        let trimmed = line.trim_start();
        if let Some(command) = rvbbit_command(trimmed) {
            commands.push(command);
        } else if trimmed.starts_with("scripts/") {
            commands.push(trimmed.to_string());
        } else if line.starts_with(' ') && trimmed.starts_with('[') {
            if let Some(last) = commands.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
        }
    }
    let count = commands.len();
    for line in commands {
        if line.starts_with("scripts/") {
            let script = line.split_whitespace().next().unwrap_or("");
            let text = std::fs::read_to_string(repo_root().join(script)).unwrap_or_default();
            if text.is_empty() {
                failures.push(format!(
                    "{}:{}: `{line}`: no script {script}",
                    block.file, block.line
                ));
                continue;
            }
            let (_, flags) = command_and_flags(&format!(
                "rvbbit {}",
                line.split_once(' ').map_or("", |(_, r)| r)
            ));
            for flag in flags {
                if !text.contains(&flag) {
                    failures.push(format!(
                        "{}:{}: `{line}`: {script} knows no {flag}",
                        block.file, block.line
                    ));
                }
            }
            continue;
        }
        if line.contains("rvbbit_plugin_api") || line.contains("rvbbit-plugin-api") {
            continue;
        }
        let (mut path, flags) = command_and_flags(&line);
        // The longest run of words that is a command (`completions bash` is a command and
        // its argument).
        let help = |path: &[String]| {
            let mut help = rvbbit_tests::rvbbit();
            help.args(path).arg("--help");
            rvbbit_tests::run(&mut help)
        };
        let mut run = help(&path);
        while run.code != 0 && path.len() > 1 {
            path.pop();
            run = help(&path);
        }
        if run.code != 0 {
            failures.push(format!(
                "{}:{}: `{line}`: `rvbbit {} --help` exits {}:\n{}",
                block.file,
                block.line,
                path.join(" "),
                run.code,
                run.all()
            ));
            continue;
        }
        let text = run.all();
        for flag in flags {
            let shown = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(|w| w == flag);
            if !shown {
                failures.push(format!(
                    "{}:{}: `{line}`: `rvbbit {} --help` shows no {flag}",
                    block.file,
                    block.line,
                    path.join(" ")
                ));
            }
        }
    }
    (count, failures)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_command_runs_as_shown() {
    assert!(Path::new(&repo_root().join("README.md")).is_file());
    let mut failures = Vec::new();
    let (mut run, mut checked, mut not_run) = (0, 0, Vec::new());
    for file in documents() {
        let all = blocks(&file);
        let mut console = Vec::new();
        for block in all {
            if let Some(reason) = &block.not_run {
                not_run.push(format!("{}:{} ({reason})", block.file, block.line));
            } else if block.lang == "console" {
                run += steps(&block).len();
                console.push(block);
            } else if matches!(block.lang.as_str(), "" | "sh") {
                let (count, found) = check_lines(&block);
                checked += count;
                failures.extend(found);
            }
        }
        if !console.is_empty() {
            failures.extend(run_console_blocks(&file, &console).await);
        }
    }
    eprintln!(
        "docs: {run} commands run, {checked} command lines checked for their command and flags, {} blocks not run: {}",
        not_run.len(),
        not_run.join(", ")
    );
    assert!(
        run > 20,
        "the documents show fewer console commands than expected: {run}"
    );
    assert!(
        failures.is_empty(),
        "{} documented commands drifted from the tool:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
