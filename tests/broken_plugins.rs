//! Broken plugins, built by these tests: a file that is not a library, a library
//! without the entry symbol, another ABI version, null and malformed descriptors (a
//! command table stride too small for its minor, a signature that is not JSON), C
//! plugins (one valid, proving the ABI is C; others claiming commands that are not
//! theirs), plugins of an older and a newer minor ABI version (both load), a command
//! returning an impossible exit code, and a Rust plugin whose command panics. The host reports each with the file and the reason, keeps every
//! other plugin working and never crashes.
//!
//! The C plugins are compiled from `tests/fixtures/plugins/*.c` with `cc` into a
//! temporary directory per test; the panicking plugin is the crate
//! `tests/fixtures/plugins/panicky`, built once per test process into
//! `target/fixtures`. The host finds them through `RVBBIT_PLUGIN_PATH`. No database is
//! needed.

use rvbbit_tests::{repo_root, run, rvbbit, Run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn fixtures() -> PathBuf {
    repo_root().join("tests").join("fixtures").join("plugins")
}

/// An empty directory for one test's plugins.
fn plugin_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rvbbit-broken-plugins-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `tests/fixtures/plugins/<source>` into `<dir>/<file>` as a shared library.
fn compile_c(dir: &Path, source: &str, defines: &[&str], file: &str) -> PathBuf {
    let output = dir.join(file);
    let result = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-shared", "-fPIC"])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-o")
        .arg(&output)
        .arg(fixtures().join(source))
        .output()
        .expect("cc runs (the C compiler is needed to build the C test plugins)");
    assert!(
        result.status.success(),
        "cc failed to build {file} from {source} {defines:?}:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    output
}

/// `claim.c` built as plugin `name`, claiming the command `claimed`.
fn compile_claim(dir: &Path, name: &str, claimed: &str) -> PathBuf {
    compile_c(
        dir,
        "claim.c",
        &[
            &format!("PLUGIN_NAME=\"{name}\""),
            &format!("CLAIMED=\"{claimed}\""),
        ],
        &format!("lib{name}.so"),
    )
}

/// The panicking plugin, built once per test process. Returns the built library.
fn panicky_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = repo_root().join("target").join("fixtures");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .arg("build")
            .arg("--manifest-path")
            .arg(fixtures().join("panicky").join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building tests/fixtures/plugins/panicky failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let library = target
            .join("debug")
            .join(format!("libpanicky_plugin{}", std::env::consts::DLL_SUFFIX));
        assert!(library.is_file(), "no {}", library.display());
        library
    })
}

/// `rvbbit` loading the plugins in `dir` (and the ones built next to it), nothing from
/// the user's data directory.
fn host(dir: &Path) -> Command {
    let mut command = rvbbit();
    command
        .env("RVBBIT_PLUGIN_PATH", dir)
        .env("XDG_DATA_HOME", dir.join("no-data-home"));
    command
}

fn rvbbit_in(dir: &Path, args: &[&str]) -> Run {
    let run = run(host(dir).args(args));
    assert_no_crash(&run, args);
    run
}

/// The process ended by itself (no signal) and printed nothing a crash or an escaped
/// panic prints.
#[track_caller]
fn assert_no_crash(run: &Run, args: &[&str]) {
    assert!(
        run.code >= 0,
        "rvbbit {args:?} was killed by a signal (crash):\n{}",
        run.all()
    );
    for text in [
        "panicked at",
        "thread '",
        "stack backtrace",
        "RUST_BACKTRACE",
        "internal error",
        "Segmentation fault",
    ] {
        assert!(
            !run.all().contains(text),
            "rvbbit {args:?} printed {text:?}:\n{}",
            run.all()
        );
    }
}

/// `rvbbit plugins` exits 0, lists the training plugin with its commands, and has the
/// line `  <file>: <reason>` for each expected failure.
#[track_caller]
fn assert_listed(dir: &Path, expected: &[(&Path, &str)]) -> Run {
    let listing = rvbbit_in(dir, &["plugins"]);
    listing.expect_code(0);
    assert!(
        listing.stdout.contains("training 0.1.0 (ABI 2.1)"),
        "the training plugin still loads:\n{}",
        listing.stdout
    );
    for command in [
        "training verify",
        "training migrate",
        "sql migrate training",
    ] {
        assert!(
            listing.stdout.contains(command),
            "{command} is still listed:\n{}",
            listing.stdout
        );
    }
    for (file, reason) in expected {
        let line = format!("  {}: {reason}\n", file.display());
        assert!(
            listing.stdout.contains(&line),
            "expected the line\n{line}in:\n{}",
            listing.stdout
        );
    }
    listing
}

/// The training plugin's commands still run, and the host's help still works.
#[track_caller]
fn assert_others_work(dir: &Path) {
    let verify = rvbbit_in(dir, &["training", "verify", "--help"]);
    verify.expect_code(0);
    assert!(
        verify.stdout.contains("Usage: rvbbit training verify"),
        "the training plugin's own verify answers:\n{}",
        verify.all()
    );
    let help = rvbbit_in(dir, &["--help"]);
    help.expect_code(0);
    assert!(
        help.stdout.contains("training") && help.stdout.contains("plugins"),
        "{}",
        help.stdout
    );
}

/// One file that must not load, and the reason `rvbbit plugins` gives.
struct Broken {
    file: &'static str,
    build: Build,
    reason: &'static str,
}

enum Build {
    /// A file with this text.
    Text(&'static str),
    /// `broken.c` compiled with `-D<CASE>`.
    Broken(&'static str),
}

fn broken_files() -> Vec<Broken> {
    let c = |file, case, reason| Broken {
        file,
        build: Build::Broken(case),
        reason,
    };
    vec![
        Broken {
            file: "libnot_a_library.so",
            build: Build::Text(
                "This is a text file that happens to end in .so; the system loader must refuse it.\n",
            ),
            reason: "not a loadable library: dlopen failed: invalid ELF header",
        },
        c(
            "libno_entry.so",
            "NO_ENTRY",
            "not an rvbbit plugin: it does not export the symbol `rvbbit_plugin_entry`",
        ),
        c(
            "libabi_99.so",
            "ABI_99",
            "built for plugin ABI version 99, but this rvbbit speaks version 2 (any 2.x); rebuild the plugin against this rvbbit",
        ),
        c(
            "libnull_descriptor.so",
            "NULL_DESCRIPTOR",
            "`rvbbit_plugin_entry` returned no descriptor (null)",
        ),
        c(
            "libname_not_utf8.so",
            "NAME_NOT_UTF8",
            "malformed descriptor: plugin name is not UTF-8",
        ),
        c(
            "libname_empty.so",
            "NAME_EMPTY",
            "malformed descriptor: plugin name \"\" must be a letter then letters, digits, '-' or '_'",
        ),
        c(
            "libname_null.so",
            "NAME_NULL",
            "malformed descriptor: plugin name is a null pointer",
        ),
        c(
            "libversion_huge.so",
            "VERSION_HUGE",
            "malformed descriptor: plugin version is 1099511627776 bytes long (at most 4096)",
        ),
        c(
            "libpath_spaces.so",
            "PATH_SPACES",
            "malformed descriptor: command #0 has the path \"   \"; a path is 1 to 8 words, each a letter then letters, digits, '-' or '_'",
        ),
        c(
            "libpath_bad_word.so",
            "PATH_BAD_WORD",
            "malformed descriptor: command #0 has the path \"broken rm;rf\"; a path is 1 to 8 words, each a letter then letters, digits, '-' or '_'",
        ),
        c(
            "libhuge_count.so",
            "HUGE_COUNT",
            "malformed descriptor: it declares 1000000 commands (at most 1024)",
        ),
        c(
            "libnull_table.so",
            "NULL_TABLE",
            "malformed descriptor: its command table is null",
        ),
        c(
            "libnull_run.so",
            "NULL_RUN",
            "malformed descriptor: command 'broken hello' has a null run function",
        ),
        c(
            "libnull_free_buf.so",
            "NULL_FREE_BUF",
            "malformed descriptor: its free_buf function is null",
        ),
        c(
            "libduplicate_path.so",
            "DUPLICATE_PATH",
            "malformed descriptor: commands #1 and #2 both have the path 'broken other'",
        ),
        c(
            "libsmall_stride.so",
            "SMALL_STRIDE",
            "malformed descriptor: its command entries are 40 bytes apart; ABI 2.1 needs at least 56, a multiple of 8, at most 4096",
        ),
        c(
            "libbad_signature.so",
            "BAD_SIGNATURE",
            "malformed descriptor: signature of command 'broken hello' is not valid: expected ident at line 1 column 2",
        ),
    ]
}

fn build(dir: &Path, broken: &Broken) -> PathBuf {
    match broken.build {
        Build::Text(text) => {
            let file = dir.join(broken.file);
            std::fs::write(&file, text).unwrap();
            file
        }
        Build::Broken(case) => compile_c(dir, "broken.c", &[case], broken.file),
    }
}

#[test]
fn each_broken_file_alone_is_reported_and_the_others_keep_working() {
    let dir = plugin_dir("alone");
    for broken in broken_files() {
        let case_dir = dir.join(broken.file.trim_end_matches(".so"));
        std::fs::create_dir_all(&case_dir).unwrap();
        let file = build(&case_dir, &broken);
        let listing = assert_listed(&case_dir, &[(&file, broken.reason)]);
        assert_eq!(
            listing.stdout.matches(&*file.display().to_string()).count(),
            1,
            "{} is listed once, as not loaded:\n{}",
            broken.file,
            listing.stdout
        );
        assert_others_work(&case_dir);
        // What a broken plugin would have provided is not there; the error says why.
        let missing = rvbbit_in(&case_dir, &["broken", "hello"]);
        missing.expect_code(8);
        assert!(
            missing
                .stderr
                .contains("1 plugin file(s) could not be loaded; `rvbbit plugins` says why."),
            "{}: {}",
            broken.file,
            missing.stderr
        );
        let version = rvbbit_in(&case_dir, &["--version"]);
        version.expect_code(0);
        assert!(
            version.stdout.contains("plugin training 0.1.0 (ABI 2.1)"),
            "{}",
            version.stdout
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn all_broken_files_together_are_each_reported_next_to_working_plugins() {
    let dir = plugin_dir("together");
    let mut expected: Vec<(PathBuf, &str)> = broken_files()
        .iter()
        .map(|broken| (build(&dir, broken), broken.reason))
        .collect();
    compile_c(&dir, "cplug.c", &[], "libcplug.so");
    std::fs::copy(panicky_library(), dir.join("libpanicky_plugin.so")).unwrap();
    let conflict = compile_claim(&dir, "cconflict", "training verify");
    expected.push((
        conflict,
        "command 'training verify' of plugin 'cconflict' is already provided by plugin 'training'; it is ignored here",
    ));
    let expected: Vec<(&Path, &str)> = expected.iter().map(|(f, r)| (f.as_path(), *r)).collect();
    let listing = assert_listed(&dir, &expected);
    assert!(
        listing.stdout.contains("cplug 1.2.3 (ABI 2.1)")
            && listing.stdout.contains("panicky 0.1.0 (ABI 2.1)")
            && listing.stdout.contains("cconflict 0.1.0 (ABI 2.1)"),
        "the good plugins load:\n{}",
        listing.stdout
    );
    assert_others_work(&dir);
    let hello = rvbbit_in(&dir, &["cplug", "hello"]);
    hello.expect_code(0);
    assert_eq!(hello.stdout, "hello from C\n");
    let ok = rvbbit_in(&dir, &["panicky", "ok"]);
    ok.expect_code(0);
    assert_eq!(ok.stdout, "panicky ok (0 arguments)\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_plugin_written_in_c_loads_and_runs() {
    let dir = plugin_dir("cplug");
    compile_c(&dir, "cplug.c", &[], "libcplug.so");

    let listing = assert_listed(&dir, &[]);
    assert!(
        listing.stdout.contains(&format!(
            "cplug 1.2.3 (ABI 2.1)  {}\n    cplug hello  Print a greeting from C\n    cplug fail   Fail with exit code 3 and a message\n",
            dir.join("libcplug.so").display()
        )),
        "{}",
        listing.stdout
    );
    assert!(
        !listing.stdout.contains("Not loaded:"),
        "{}",
        listing.stdout
    );

    let hello = rvbbit_in(&dir, &["cplug", "hello"]);
    hello.expect_code(0);
    assert_eq!(hello.stdout, "hello from C\n");
    assert_eq!(hello.stderr, "");

    // Arguments arrive as the bytes typed, one per argument.
    let args = rvbbit_in(&dir, &["cplug", "hello", "a b", "--flag", "ü"]);
    args.expect_code(0);
    assert_eq!(args.stdout, "hello from C\narg: a b\narg: --flag\narg: ü\n");

    // The message is the plugin's malloc'd buffer, given back to its free_buf once.
    let fail = run(host(&dir)
        .args(["cplug", "fail"])
        .env("CPLUG_TRACE_FREE", "1"));
    assert_no_crash(&fail, &["cplug", "fail"]);
    fail.expect_code(3);
    assert_eq!(fail.stdout, "");
    assert_eq!(
        fail.stderr,
        "cplug: free_buf(47 bytes)\nerror: cplug fail failed on purpose (a message from C)\n"
    );
    let fail = rvbbit_in(&dir, &["cplug", "fail"]);
    fail.expect_code(3);
    assert_eq!(
        fail.stderr,
        "error: cplug fail failed on purpose (a message from C)\n"
    );

    let group = rvbbit_in(&dir, &["cplug", "--help"]);
    group.expect_code(0);
    assert!(
        group.stdout.contains("hello") && group.stdout.contains("Fail with exit code 3"),
        "{}",
        group.stdout
    );
    let help = rvbbit_in(&dir, &["--help"]);
    help.expect_code(0);
    assert!(
        help.stdout.contains("Commands of the cplug plugin"),
        "{}",
        help.stdout
    );
    let version = rvbbit_in(&dir, &["--version"]);
    assert!(
        version.stdout.contains("plugin cplug 1.2.3 (ABI 2.1)"),
        "{}",
        version.stdout
    );
    assert_others_work(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_command_claimed_by_two_plugins_is_a_conflict_reported_with_the_file() {
    let dir = plugin_dir("conflict");
    // Found before the training plugin (RVBBIT_PLUGIN_PATH comes first), and still
    // not given the training plugin's command.
    let conflict = compile_claim(&dir, "cconflict", "training verify");
    // Two plugins claiming a path neither is named after: the first found keeps it.
    let twin_a = compile_claim(&dir, "twin-a", "twins hello");
    let twin_b = compile_claim(&dir, "twin-b", "twins hello");
    // The host's own commands cannot be hidden.
    let hijack = compile_claim(&dir, "chijack", "plugins");
    let hijack_completions = compile_claim(&dir, "chijack-completions", "completions bash");

    let listing = assert_listed(
        &dir,
        &[
            (
                &conflict,
                "command 'training verify' of plugin 'cconflict' is already provided by plugin 'training'; it is ignored here",
            ),
            (
                &twin_b,
                "command 'twins hello' of plugin 'twin-b' is already provided by plugin 'twin-a'; it is ignored here",
            ),
            (
                &hijack,
                "command 'plugins' of plugin 'chijack' would hide rvbbit's own 'rvbbit plugins'; it is ignored here",
            ),
            (
                &hijack_completions,
                "command 'completions bash' of plugin 'chijack-completions' would hide rvbbit's own 'rvbbit completions'; it is ignored here",
            ),
        ],
    );
    // Each command is listed under the plugin that runs it, and only there.
    assert!(
        listing.stdout.contains(&format!(
            "cconflict 0.1.0 (ABI 2.1)  {}\n    cconflict hello  Say hello\n",
            conflict.display()
        )),
        "{}",
        listing.stdout
    );
    assert_eq!(
        listing.stdout.matches("\n    training verify ").count(),
        1,
        "{}",
        listing.stdout
    );
    assert!(
        listing.stdout.contains(&format!(
            "twin-a 0.1.0 (ABI 2.1)  {}\n    twins hello   A command claimed by twin-a\n",
            twin_a.display()
        )),
        "{}",
        listing.stdout
    );
    assert!(
        !listing.stdout.contains("claimed by twin-b")
            && !listing.stdout.contains("claimed by chijack"),
        "{}",
        listing.stdout
    );

    assert_others_work(&dir);
    let verify = rvbbit_in(&dir, &["training", "verify", "--help"]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains("Usage: rvbbit training verify [OPTIONS]"),
        "the training plugin's own help:\n{}",
        verify.all()
    );
    assert!(!verify.stdout.contains("cconflict"), "{}", verify.stdout);
    let twins = rvbbit_in(&dir, &["twins", "hello"]);
    twins.expect_code(0);
    assert_eq!(twins.stdout, "twin-a: twins hello\n");
    // The rest of each conflicting plugin still works.
    for name in ["cconflict", "twin-b", "chijack", "chijack-completions"] {
        let hello = rvbbit_in(&dir, &[name, "hello"]);
        hello.expect_code(0);
        assert_eq!(hello.stdout, format!("{name}: {name} hello\n"));
    }
    let completions = rvbbit_in(&dir, &["completions", "bash"]);
    completions.expect_code(0);
    assert!(
        !completions
            .stdout
            .contains("chijack-completions: completions bash"),
        "{}",
        completions.stdout
    );
    assert!(
        completions.stdout.contains("rvbbit"),
        "{}",
        completions.all()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exit_code_the_system_cannot_report_is_an_error_not_a_success() {
    let dir = plugin_dir("exit");
    compile_c(&dir, "broken.c", &["BAD_EXIT"], "libcexit.so");
    for (command, code) in [("big", "256"), ("negative", "-1")] {
        let run = rvbbit_in(&dir, &["cexit", command]);
        run.expect_code(70);
        assert_eq!(
            run.stderr,
            format!("error: plugin 'cexit' broke the ABI: command 'cexit {command}' returned {code}, which is not an exit code (0 to 255); this is a bug in the plugin\n")
        );
    }
    assert_others_work(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_panicking_command_is_one_error_line_and_exit_70() {
    let dir = plugin_dir("panicky");
    std::fs::copy(panicky_library(), dir.join("libpanicky_plugin.so")).unwrap();
    // Also with backtraces asked for: none may be printed.
    let boom = run(host(&dir)
        .args(["panicky", "boom"])
        .env("RUST_BACKTRACE", "full"));
    assert_no_crash(&boom, &["panicky", "boom"]);
    boom.expect_code(70);
    assert_eq!(boom.stdout, "");
    let lines: Vec<&str> = boom.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{}", boom.stderr);
    let line = lines[0];
    assert!(
        line.starts_with("error: plugin 'panicky' panicked in command 'panicky boom': the boom command exploded on purpose")
            && line.ends_with("; this is a bug in the plugin"),
        "{line}"
    );
    assert!(line.contains(" at src/lib.rs:"), "where: {line}");

    let ok = rvbbit_in(&dir, &["panicky", "ok", "x"]);
    ok.expect_code(0);
    assert_eq!(ok.stdout, "panicky ok (1 arguments)\n");
    assert_eq!(ok.stderr, "");
    let listing = assert_listed(&dir, &[]);
    assert!(
        listing.stdout.contains("panicky 0.1.0 (ABI 2.1)")
            && !listing.stdout.contains("Not loaded:"),
        "{}",
        listing.stdout
    );
    assert_others_work(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A plugin of an older minor ABI version (2.0, no signatures) and one of a newer minor
/// (2.2, fields this host does not know in the descriptor and in each command entry)
/// both load, list their commands and run the right one (the host steps through each
/// table by the plugin's entry size); the newer one's signature reaches completions.
#[test]
fn plugins_of_an_older_and_a_newer_minor_version_load_and_run() {
    let dir = plugin_dir("minor");
    compile_c(&dir, "minor.c", &["OLDER"], "libolder.so");
    compile_c(&dir, "minor.c", &["NEWER"], "libnewer.so");
    let listing = rvbbit_in(&dir, &["plugins"]);
    listing.expect_code(0);
    for line in [
        format!(
            "older 2.0.0 (ABI 2.0)  {}\n",
            dir.join("libolder.so").display()
        ),
        "    older second  The second command of an ABI 2.0 plugin\n".to_string(),
        format!(
            "newer 2.2.0 (ABI 2.2)  {}\n",
            dir.join("libnewer.so").display()
        ),
        "    newer second  The second command of an ABI 2.2 plugin\n".to_string(),
    ] {
        assert!(
            listing.stdout.contains(&line),
            "{line:?} in:\n{}",
            listing.all()
        );
    }
    assert!(!listing.stdout.contains("Not loaded:"), "{}", listing.all());
    for (args, expected) in [
        (&["older", "first"][..], "first\n"),
        (&["older", "second", "a", "b"][..], "second 2\n"),
        (&["newer", "first"][..], "first\n"),
        (&["newer", "second", "a"][..], "second 1\n"),
    ] {
        let run = rvbbit_in(&dir, args);
        run.expect_code(0);
        assert_eq!(run.stdout, expected, "rvbbit {args:?}:\n{}", run.all());
    }
    let script = rvbbit_in(&dir, &["completions", "bash"]);
    script.expect_code(0);
    assert!(
        script.stdout.contains("--from-the-future"),
        "the 2.2 plugin's declared flag is completed:\n{}",
        script.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
