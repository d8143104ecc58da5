//! `rvbbit`: the host. It loads plugins ([`discovery`]), runs the plugin command the
//! arguments name, answers its own commands from what the plugins declare ([`help`],
//! [`completions`], [`list`]; their arguments through [`signature`]), and hands any
//! other command to rvbbit's own CLI further down PATH ([`forward`]).

mod builtins;
mod completions;
mod discovery;
mod forward;
mod help;
mod list;
mod signature;

use rvbbit_plugin_api::exit;
use std::ffi::OsString;

fn main() {
    // Like other Unix tools: when the reader of our output goes away (`rvbbit … | head`),
    // end quietly instead of failing to print. Rust ignores SIGPIPE by default; plugins
    // run in this process, so this covers their output too.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::panic::set_hook(Box::new(|info| {
        // One line: the panic's message and where it happened.
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        let message = message.lines().collect::<Vec<_>>().join(" ");
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: rvbbit hit an internal error ({message}{location}); this is a bug, please report it"
        );
    }));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // A panic in the host is a bug: the hook above says so, and the exit code is 70 like
    // a plugin's panic (not Rust's default 101).
    let code = std::panic::catch_unwind(|| run(args)).unwrap_or(exit::INTERNAL);
    std::process::exit(code);
}

fn run(args: Vec<OsString>) -> i32 {
    // Test-only (debug builds): `RVBBIT_HOST_FAILPOINT=panic` panics here, to prove a
    // panic in the host ends with one line and exit 70.
    if cfg!(debug_assertions)
        && std::env::var_os("RVBBIT_HOST_FAILPOINT").is_some_and(|v| v == "panic")
    {
        panic!("host failpoint reached");
    }
    let registry = discovery::Registry::load(&discovery::search_dirs());
    let args = help::help_as_flag(&registry, &args).unwrap_or(args);

    if let Some((command, rest)) = registry.find(&args) {
        let (code, message) = command.run(rest);
        if let Some(message) = message {
            eprintln!("error: {message}");
        }
        return code;
    }
    let root = help::root_command(&registry);
    match args.first().and_then(|a| a.to_str()) {
        Some(builtins::PLUGINS) => return list::run(&registry, &root, &args[1..]),
        Some(builtins::COMPLETIONS) => return completions::run(&root, &args[1..]),
        _ => {}
    }
    let next = forward::next_rvbbit();
    if let Some(code) = help::answer(&registry, root, &args, next.is_some()) {
        return code;
    }
    match next {
        Some(next) => forward::exec(&next, &args),
        None => help::no_such_command(&registry, &args),
    }
}

/// Exit code for commands nobody provides (re-exported for the modules).
pub const NO_SUCH_COMMAND: i32 = exit::NO_SUCH_COMMAND;
