//! Plugins as an author writes them, and the operator's terminal: the example plugin
//! in `examples/hello-plugin` is built and loaded next to `rvbbit`, its commands run
//! through the host, `rvbbit completions` writes scripts from the same command tree
//! as `--help`, and `rvbbit --help` matches its snapshot.

use rvbbit_tests::{bin_dir, repo_root, run, rvbbit, Run};
use std::process::Command;

const HELLO_FAIL_MESSAGE: &str = "hello fail always fails: this is what a failed check looks like";

/// `rvbbit` as the harness gives it, and no plugins from the user's data directory
/// either: only the ones built next to the binary are loaded.
fn host() -> Command {
    let hello = bin_dir().join(format!(
        "librvbbit_hello_plugin{}",
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        hello.is_file(),
        "the example plugin was not built: no {} (build the workspace first: `cargo build --workspace`)",
        hello.display()
    );
    let mut command = rvbbit();
    command.env(
        "XDG_DATA_HOME",
        std::env::temp_dir().join(format!(
            "rvbbit-plugins-test-no-data-{}",
            std::process::id()
        )),
    );
    command
}

fn rvbbit_run(args: &[&str]) -> Run {
    run(host().args(args))
}

#[test]
fn the_example_plugin_is_built_and_loaded() {
    let listing = rvbbit_run(&["plugins"]);
    listing.expect_code(0);
    assert!(
        listing
            .stdout
            .contains(&format!("hello {} (ABI 2.1)", env!("CARGO_PKG_VERSION"))),
        "{}",
        listing.stdout
    );
    assert!(
        listing.stdout.contains("librvbbit_hello_plugin.so"),
        "{}",
        listing.stdout
    );
    for command in ["hello greet", "hello fail"] {
        assert!(
            listing.stdout.contains(command),
            "{command} missing:\n{}",
            listing.stdout
        );
    }
    assert!(
        !listing.stdout.contains("Not loaded:"),
        "every built plugin loads:\n{}",
        listing.stdout
    );
}

#[test]
fn hello_greet_prints_the_greeting() {
    let plain = rvbbit_run(&["hello", "greet", "World"]);
    plain.expect_code(0);
    assert_eq!(plain.stdout, "Hello, World!\n");
    assert_eq!(plain.stderr, "");

    let shout = rvbbit_run(&["hello", "greet", "Ada", "--shout"]);
    shout.expect_code(0);
    assert_eq!(shout.stdout, "HELLO, ADA!\n");

    let default = rvbbit_run(&["hello", "greet"]);
    default.expect_code(0);
    assert_eq!(default.stdout, "Hello, World!\n");
}

#[test]
fn hello_greet_parses_with_clap() {
    let help = rvbbit_run(&["hello", "greet", "--help"]);
    help.expect_code(0);
    assert!(
        help.stdout
            .contains("Usage: rvbbit hello greet [OPTIONS] [NAME]"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("--shout"), "{}", help.stdout);

    let wrong = rvbbit_run(&["hello", "greet", "--whisper"]);
    wrong.expect_code(2);
    assert!(
        wrong
            .stderr
            .contains("unexpected argument '--whisper' found"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("Usage: rvbbit hello greet"),
        "{}",
        wrong.stderr
    );
    assert_eq!(wrong.stdout, "");
}

#[test]
fn hello_fail_exits_1_with_its_message() {
    let fail = rvbbit_run(&["hello", "fail"]);
    fail.expect_code(1);
    assert_eq!(fail.stderr, format!("error: {HELLO_FAIL_MESSAGE}\n"));
    assert_eq!(fail.stdout, "");
}

#[test]
fn version_lists_the_host_and_both_plugins() {
    let version = rvbbit_run(&["--version"]);
    version.expect_code(0);
    let v = env!("CARGO_PKG_VERSION");
    for line in [
        format!("rvbbit host {v} (plugin ABI 2.1)"),
        format!("plugin hello {v} (ABI 2.1)"),
        format!("plugin training {v} (ABI 2.1)"),
    ] {
        assert!(
            version.stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{}",
            version.stdout
        );
    }
}

fn completions(shell: &str) -> String {
    let script = rvbbit_run(&["completions", shell]);
    script.expect_code(0);
    assert_eq!(script.stderr, "", "{shell}");
    for word in [
        "training",
        "migrate",
        "test-annotation",
        "hello",
        "greet",
        "plugins",
        "completions",
    ] {
        assert!(
            script.stdout.contains(word),
            "the {shell} script does not mention {word}:\n{}",
            script.stdout
        );
    }
    script.stdout
}

#[test]
fn completions_for_bash() {
    let script = completions("bash");
    assert!(
        script.contains("complete -F _rvbbit"),
        "not a bash completion script:\n{script}"
    );
}

/// A plugin command's flags, declared once with its clap arguments, are completed:
/// `rvbbit training migrate <TAB>` offers `--dry-run`, and the values of an option
/// with a fixed list are offered too.
#[test]
fn completions_know_the_flags_plugins_declare() {
    for shell in ["bash", "zsh", "fish"] {
        let script = completions(shell);
        for flag in ["dry-run", "backfill-max-memory", "shout"] {
            assert!(
                script.contains(flag),
                "the {shell} script does not complete --{flag}:\n{script}"
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("rvbbit-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let file = dir.join("rvbbit.bash");
    std::fs::write(&file, completions("bash")).expect("write the script");
    let offered = bash_completes(&file, &["training", "migrate"]);
    assert!(
        offered.iter().any(|f| f == "--dry-run"),
        "after `rvbbit training migrate `: {offered:?}"
    );
    let formats = bash_completes(&file, &["training", "verify", "--format"]);
    assert!(
        formats.iter().any(|f| f == "json") && formats.iter().any(|f| f == "table"),
        "after `rvbbit training verify --format`: {formats:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_for_zsh() {
    let script = completions("zsh");
    assert!(
        script.starts_with("#compdef rvbbit"),
        "not a zsh completion script:\n{script}"
    );
    assert!(
        script.contains("(bash zsh fish)"),
        "zsh completes the shells of `rvbbit completions`:\n{script}"
    );
}

#[test]
fn completions_for_fish() {
    let script = completions("fish");
    assert!(
        script.contains("complete -c rvbbit"),
        "not a fish completion script:\n{script}"
    );
    assert!(
        script.contains("-a \"greet\""),
        "fish completes the hello plugin's commands:\n{script}"
    );
}

/// What bash offers after `rvbbit <words> <TAB>` with the generated script loaded.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let mut line = String::from("source \"$1\"; COMP_WORDS=(rvbbit");
    for word in words {
        line.push_str(&format!(" '{word}'"));
    }
    line.push_str(" ''); COMP_CWORD=${#COMP_WORDS[@]}; COMP_CWORD=$((COMP_CWORD - 1)); ");
    line.push_str(
        "_rvbbit rvbbit '' \"${COMP_WORDS[COMP_CWORD-1]}\"; printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    let out = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &line, "bash"])
        .arg(script));
    out.expect_code(0);
    assert_eq!(out.stderr, "", "bash reported errors");
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn the_bash_script_completes_plugin_commands_in_bash() {
    let dir = std::env::temp_dir().join(format!("rvbbit-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("rvbbit.bash");
    std::fs::write(&file, completions("bash")).expect("write the script");

    let top = bash_completes(&file, &[]);
    for word in ["completions", "hello", "plugins", "sql", "training"] {
        assert!(top.iter().any(|w| w == word), "{word} not offered: {top:?}");
    }
    let hello = bash_completes(&file, &["hello"]);
    assert!(
        hello.iter().any(|w| w == "greet") && hello.iter().any(|w| w == "fail"),
        "{hello:?}"
    );
    let shells = bash_completes(&file, &["completions"]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|w| w == shell), "{shells:?}");
    }
    assert!(!shells.iter().any(|w| w == "powershell"), "{shells:?}");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

#[test]
fn completions_refuses_other_shells_with_a_usage_error() {
    let powershell = rvbbit_run(&["completions", "powershell"]);
    powershell.expect_code(2);
    assert_eq!(powershell.stdout, "");
    assert!(
        powershell
            .stderr
            .contains("invalid value 'powershell' for '<SHELL>'"),
        "{}",
        powershell.stderr
    );
    assert!(
        powershell
            .stderr
            .contains("[possible values: bash, zsh, fish]"),
        "{}",
        powershell.stderr
    );

    let missing = rvbbit_run(&["completions"]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("Usage: rvbbit completions <SHELL>"),
        "{}",
        missing.stderr
    );

    let help = rvbbit_run(&["completions", "--help"]);
    help.expect_code(0);
    assert!(
        help.stdout.contains("Usage: rvbbit completions <SHELL>"),
        "{}",
        help.stdout
    );
}

#[test]
fn help_lists_completions_and_matches_its_snapshot() {
    let help = run(host().arg("--help").env("COLUMNS", "100"));
    help.expect_code(0);
    assert!(
        help.stdout.lines().any(|l| l
            .trim_start()
            .starts_with("completions  Print a completion script")),
        "`rvbbit --help` lists completions:\n{}",
        help.stdout
    );
    assert_matches_snapshot("host_help", &help.stdout);
}

/// Compares `actual` with `tests/snapshots/<name>.txt`, ignoring only trailing
/// whitespace (at line ends and at the end of the text). On a difference it fails
/// with a line diff: `-` lines are expected but missing, `+` lines are new.
/// `UPDATE_SNAPSHOTS=1` rewrites the file instead.
#[track_caller]
fn assert_matches_snapshot(name: &str, actual: &str) {
    let path = repo_root()
        .join("tests")
        .join("snapshots")
        .join(format!("{name}.txt"));
    let normalise = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    };
    let actual = normalise(actual);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, format!("{}\n", actual.join("\n"))).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the snapshot {}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    let expected = normalise(&expected);
    if expected != actual {
        panic!(
            "the output differs from {} (- expected, + actual; UPDATE_SNAPSHOTS=1 accepts the new output):\n{}",
            path.display(),
            line_diff(&expected, &actual)
        );
    }
}

/// A full line diff from the longest common subsequence of lines.
fn line_diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: length of the longest common subsequence of expected[i..], actual[j..].
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(format!("  {}", expected[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push(format!("- {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", actual[j]));
            j += 1;
        }
    }
    out.join("\n")
}
