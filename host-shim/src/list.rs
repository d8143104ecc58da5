//! `rvbbit plugins [--format table|json]`: the loaded plugins with their commands, and
//! the plugin files that were not loaded with the reason.

use crate::builtins::PLUGINS;
use crate::discovery::Registry;
use rvbbit_plugin_api::{cli, exit};
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
/// files that were not loaded with the reason.
fn plugins_json(registry: &Registry) -> String {
    let plugins: Vec<serde_json::Value> = registry
        .plugins
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "version": p.version,
                "abi_version": p.abi_version,
                "abi_minor": p.abi_minor,
                "file": p.file.display().to_string(),
                "commands": p.commands.iter().map(|c| serde_json::json!({"path": c.path_string(), "about": c.about})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let not_loaded: Vec<serde_json::Value> = registry
        .rejected
        .iter()
        .map(|r| serde_json::json!({"file": r.file.display().to_string(), "reason": r.reason}))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({"plugins": plugins, "not_loaded": not_loaded}))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn print_plugins(registry: &Registry) {
    if registry.plugins.is_empty() {
        println!("No plugins loaded.");
    }
    for plugin in &registry.plugins {
        println!(
            "{} {} (ABI {}.{})  {}",
            plugin.name,
            plugin.version,
            plugin.abi_version,
            plugin.abi_minor,
            plugin.file.display()
        );
        let width = plugin
            .commands
            .iter()
            .map(|c| c.path_string().len())
            .max()
            .unwrap_or(0);
        for command in &plugin.commands {
            println!("    {:width$}  {}", command.path_string(), command.about);
        }
    }
    if !registry.rejected.is_empty() {
        println!();
        println!("Not loaded:");
        for rejected in &registry.rejected {
            println!("  {}: {}", rejected.file.display(), rejected.reason);
        }
    }
}
