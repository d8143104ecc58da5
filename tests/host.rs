//! The `rvbbit` host: loading plugins, reporting broken files, handing other commands on.

use rvbbit_tests::{run, rvbbit};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn temp_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rvbbit-host-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn it_loads_the_built_training_plugin() {
    let listing = run(rvbbit().arg("plugins"));
    listing.expect_code(0);
    assert!(
        listing.stdout.contains("training 0.1.0 (ABI 2.1)"),
        "{}",
        listing.stdout
    );
    for command in [
        "training migrate",
        "training verify",
        "training test-annotation",
        "sql migrate training",
    ] {
        assert!(
            listing.stdout.contains(command),
            "{command} missing:\n{}",
            listing.stdout
        );
    }
    let help = run(rvbbit().arg("--help"));
    help.expect_code(0);
    assert!(
        help.stdout.contains("training") && help.stdout.contains("plugins"),
        "{}",
        help.stdout
    );
    let group = run(rvbbit().args(["training", "--help"]));
    group.expect_code(0);
    for word in ["migrate", "verify", "test-annotation"] {
        assert!(group.stdout.contains(word), "{}", group.stdout);
    }
    let command_help = run(rvbbit().args(["training", "migrate", "--help"]));
    command_help.expect_code(0);
    assert!(
        command_help
            .stdout
            .contains("Usage: rvbbit training migrate"),
        "{}",
        command_help.stdout
    );
    assert!(
        command_help.stdout.contains("RVBBIT_CLICKHOUSE_URL"),
        "--help names the variables it reads"
    );
}

#[test]
fn broken_plugin_files_are_reported_and_skipped() {
    let dir = temp_dir("broken");
    std::fs::write(dir.join("libnot_a_library.so"), "this is text, not ELF").unwrap();
    // A real shared library that is not an rvbbit plugin.
    let libz = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("zlib is on every Debian system");
    std::fs::copy(libz, dir.join("libz_not_a_plugin.so")).unwrap();
    let listing = run(rvbbit().arg("plugins").env("RVBBIT_PLUGIN_PATH", &dir));
    listing.expect_code(0);
    assert!(
        listing
            .stdout
            .contains("libnot_a_library.so: not a loadable library"),
        "{}",
        listing.stdout
    );
    assert!(listing.stdout.contains("libz_not_a_plugin.so: not an rvbbit plugin: it does not export the symbol `rvbbit_plugin_entry`"), "{}", listing.stdout);
    assert!(
        listing.stdout.contains("training 0.1.0"),
        "the good plugin still loads:\n{}",
        listing.stdout
    );
    let help = run(rvbbit()
        .args(["training", "verify", "--help"])
        .env("RVBBIT_PLUGIN_PATH", &dir));
    help.expect_code(0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn other_commands_go_to_the_next_rvbbit_on_path_with_args_and_exit_code() {
    let dir = temp_dir("forward");
    let python_cli = dir.join("rvbbit");
    std::fs::write(&python_cli, "#!/bin/sh\nprintf 'python-rvbbit got:'\nfor a in \"$@\"; do printf ' [%s]' \"$a\"; done\necho\nexit 42\n").unwrap();
    std::fs::set_permissions(&python_cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let run = run(rvbbit()
        .args(["sql", "query", "SELECT 'a b'", "--limit", "3"])
        .env("PATH", &path));
    assert_eq!(run.code, 42, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "python-rvbbit got: [sql] [query] [SELECT 'a b'] [--limit] [3]"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_another_rvbbit_an_unknown_command_gets_one_line_and_a_suggestion() {
    for (typed, suggestion) in [
        (&["training", "migrat"][..], "rvbbit training migrate"),
        (&["trainig"][..], "rvbbit training"),
        (&["trainig", "verify"][..], "rvbbit training verify"),
        (&["training", "statu"][..], "rvbbit training status"),
        (&["plugin"][..], "rvbbit plugins"),
        (&["complete", "bash"][..], "rvbbit completions bash"),
    ] {
        let run = run(rvbbit().args(typed));
        run.expect_code(8);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines,
            [
                format!(
                    "error: no plugin provides 'rvbbit {}', and there is no other rvbbit on PATH to hand it to.",
                    typed.join(" ")
                )
                .as_str(),
                format!("  tip: did you mean '{suggestion}'?").as_str(),
                "  `rvbbit --help` lists the commands.",
            ],
            "{typed:?}"
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let far = run(rvbbit().args(["serve"]));
    far.expect_code(8);
    assert!(!far.stderr.contains("tip:"), "{}", far.stderr);
}

#[test]
fn help_as_a_word_shows_the_same_help_as_the_flag() {
    for (words, flag) in [
        (&["help"][..], &["--help"][..]),
        (&["help", "training"][..], &["training", "--help"][..]),
        (&["training", "help"][..], &["training", "--help"][..]),
        (
            &["help", "training", "migrate"][..],
            &["training", "migrate", "--help"][..],
        ),
        (
            &["training", "help", "verify"][..],
            &["training", "verify", "--help"][..],
        ),
    ] {
        let as_word = run(rvbbit().args(words));
        as_word.expect_code(0);
        let as_flag = run(rvbbit().args(flag));
        as_flag.expect_code(0);
        assert_eq!(as_word.stdout, as_flag.stdout, "{words:?}");
        assert!(!as_word.stdout.is_empty(), "{words:?}");
    }
    let migrate = run(rvbbit().args(["help", "training", "migrate"]));
    assert!(migrate.stdout.contains("--dry-run"), "{}", migrate.stdout);
}

#[test]
fn options_before_the_command_get_a_clear_message() {
    let run = run(rvbbit().args(["--url", "http://x", "training", "verify"]));
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("'--url' is not a command: options go after the command"),
        "{}",
        run.stderr
    );
}

#[test]
fn plugins_as_json_and_a_closed_pipe_is_not_an_error() {
    let listing = run(rvbbit().args(["plugins", "--format", "json"]));
    listing.expect_code(0);
    let json = rvbbit_tests::json_data(&listing);
    let training = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "training")
        .expect("training plugin");
    assert_eq!(training["abi_version"], 2);
    assert_eq!(training["abi_minor"], 1);
    assert!(training["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "training migrate"));
    assert!(json["not_loaded"].as_array().is_some());
    run(rvbbit().args(["plugins", "--format", "xml"])).expect_code(2);

    // The reader is gone before rvbbit writes, as in `rvbbit plugins | true`: rvbbit's
    // standard output is a pipe whose only reader (`true`) has already exited. Like
    // other Unix tools, rvbbit ends by SIGPIPE at its first write, silently: no "failed
    // printing" panic, no error.
    use std::os::unix::process::ExitStatusExt;
    let mut reader = std::process::Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("true starts");
    let pipe = reader.stdin.take().expect("piped stdin");
    assert!(reader.wait().expect("true ends").success());
    let out = rvbbit()
        .args(["plugins", "--format", "json"])
        .stdout(pipe)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("rvbbit runs");
    const SIGPIPE: i32 = 13;
    assert_eq!(
        (out.status.code(), out.status.signal()),
        (None, Some(SIGPIPE)),
        "ended by SIGPIPE; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "nothing said");
}
