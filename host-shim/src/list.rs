//! `rvbbit plugins [--format table|json]`: the loaded plugins with their commands, and
//! the plugin files that were not loaded with the reason.

use crate::builtins::PLUGINS;
use crate::discovery::Registry;
use rvbbit_plugin_api::cli::wrap;
use rvbbit_plugin_api::{cli, exit, json};
use std::ffi::OsString;

/// Runs `rvbbit plugins` with `args` (what follows the word); `root` is the command
/// tree, which holds its description.
pub fn run(registry: &Registry, root: &clap::Command, args: &[OsString]) -> i32 {
    let command = root
        .find_subcommand(PLUGINS)
        .cloned()
        .unwrap_or_else(|| clap::Command::new(PLUGINS))
        .arg(
            clap::Arg::new("format")
                .long("format")
                .help("Output format")
                .value_parser(["table", "json"])
                .default_value("table"),
        );
    match cli::matches(command, "rvbbit plugins", args.iter().cloned()) {
        Ok(matches) => {
            if matches
                .get_one::<String>("format")
                .is_some_and(|f| f == "json")
            {
                println!("{}", plugins_json(registry));
            } else {
                print_plugins(registry);
            }
            exit::SUCCESS
        }
        Err(failure) => failure.exit_code,
    }
}

/// `rvbbit plugins --format json`: the loaded plugins with their commands, and the
/// files that were not loaded with the reason, as the `data` of the JSON document every
/// command prints (no server: `database` and `server_version` are null).
fn plugins_json(registry: &Registry) -> String {
    #[derive(serde::Serialize)]
    struct Listing<'a> {
        plugins: Vec<Plugin<'a>>,
        not_loaded: Vec<NotLoaded<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Plugin<'a> {
        name: &'a str,
        version: &'a str,
        abi_version: u32,
        abi_minor: u32,
        file: String,
        commands: Vec<Command<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Command<'a> {
        path: String,
        about: &'a str,
    }
    #[derive(serde::Serialize)]
    struct NotLoaded<'a> {
        file: String,
        reason: &'a str,
    }
    let listing = Listing {
        plugins: registry
            .plugins
            .iter()
            .map(|p| Plugin {
                name: &p.name,
                version: &p.version,
                abi_version: p.abi_version,
                abi_minor: p.abi_minor,
                file: p.file.display().to_string(),
                commands: p
                    .commands
                    .iter()
                    .map(|c| Command {
                        path: c.path_string(),
                        about: &c.about,
                    })
                    .collect(),
            })
            .collect(),
        not_loaded: registry
            .rejected
            .iter()
            .map(|r| NotLoaded {
                file: r.file.display().to_string(),
                reason: &r.reason,
            })
            .collect(),
    };
    json::document(PLUGINS, None, None, Some(&listing), None)
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn print_plugins(registry: &Registry) {
    for line in plugin_lines(registry, width().unwrap_or(usize::MAX)) {
        println!("{line}");
    }
}

/// The columns the listing may use on a terminal (at least 40; 80 when it reports no
/// size); `None` when stdout is not a terminal: then each entry stays on one line, as
/// logs and scripts read it.
fn width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    Some(match terminal_size::terminal_size() {
        Some((terminal_size::Width(columns), _)) if columns > 0 => usize::from(columns).max(40),
        _ => 80,
    })
}

/// The listing as lines of at most `width` columns: a plugin's file goes below its name
/// when it does not fit beside it; a command's description wraps below itself (or below
/// the command when the commands leave it less than 20 columns); command paths and
/// file names are never broken.
fn plugin_lines(registry: &Registry, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if registry.plugins.is_empty() {
        lines.push("No plugins loaded.".to_string());
    }
    for plugin in &registry.plugins {
        let head = format!(
            "{} {} (ABI {}.{})",
            plugin.name, plugin.version, plugin.abi_version, plugin.abi_minor
        );
        let file = plugin.file.display().to_string();
        if head.chars().count() + 2 + file.chars().count() <= width {
            lines.push(format!("{head}  {file}"));
        } else {
            lines.push(head);
            lines.push(format!("    {file}"));
        }
        let paths = plugin
            .commands
            .iter()
            .map(|c| c.path_string().chars().count())
            .max()
            .unwrap_or(0);
        let indent = 4 + paths + 2;
        for command in &plugin.commands {
            let path = command.path_string();
            if width.saturating_sub(indent) >= 20 {
                let about = wrap(&command.about, width.saturating_sub(indent));
                for (i, text) in about.iter().enumerate() {
                    if i == 0 {
                        lines.push(format!("    {path:paths$}  {text}"));
                    } else {
                        lines.push(format!("{:indent$}{text}", ""));
                    }
                }
            } else {
                lines.push(format!("    {path}"));
                for text in wrap(&command.about, width.saturating_sub(8).max(20)) {
                    lines.push(format!("        {text}"));
                }
            }
        }
    }
    if !registry.rejected.is_empty() {
        lines.push(String::new());
        lines.push("Not loaded:".to_string());
        for rejected in &registry.rejected {
            let whole = format!("  {}: {}", rejected.file.display(), rejected.reason);
            if whole.chars().count() <= width {
                lines.push(whole);
                continue;
            }
            lines.push(format!("  {}:", rejected.file.display()));
            for text in wrap(&rejected.reason, width.saturating_sub(4).max(20)) {
                lines.push(format!("    {text}"));
            }
        }
    }
    lines
}
