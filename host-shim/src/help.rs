//! Help built from what the loaded plugins declare: the command tree (each plugin
//! command with its description and declared arguments), `rvbbit --help`,
//! `--version`, the listing of a group (`rvbbit training`), `rvbbit help ...`, and
//! the error for a command nobody provides, with a suggestion.

use crate::builtins::{COMPLETIONS, PLUGINS};
use crate::discovery::Registry;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap_complete::aot::Shell;
use rvbbit_plugin_api::signature::Signature;
use rvbbit_plugin_api::{
    abi::{ABI_MINOR, ABI_VERSION},
    exit,
};
use std::collections::BTreeMap;
use std::ffi::OsString;

const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shells `rvbbit completions` writes scripts for.
const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// A node of the command tree: a group of words or a command.
#[derive(Default)]
struct Node {
    about: Option<String>,
    /// The arguments a plugin command declared (for completions).
    signature: Option<Signature>,
    children: BTreeMap<String, Node>,
}

fn tree(registry: &Registry) -> Node {
    let mut root = Node::default();
    root.children.insert(
        PLUGINS.into(),
        Node {
            about: Some(
                "List loaded plugins, their commands, and plugin files that failed to load".into(),
            ),
            ..Node::default()
        },
    );
    root.children.insert(
        COMPLETIONS.into(),
        Node {
            about: Some("Print a completion script for bash, zsh or fish to stdout".into()),
            ..Node::default()
        },
    );
    for (command, plugin) in &registry.commands {
        let mut node = &mut root;
        for (depth, word) in command.path.iter().enumerate() {
            node = node.children.entry(word.clone()).or_default();
            if depth + 1 < command.path.len() && node.about.is_none() {
                node.about = Some(
                    if registry.plugins.iter().any(|p| &p.name == word) && depth == 0 {
                        format!("Commands of the {word} plugin")
                    } else {
                        format!("Plugin commands under '{word}' ({plugin})")
                    },
                );
            }
        }
        node.about = Some(command.about.clone());
        node.signature = command.signature.clone();
    }
    root
}

fn to_clap(name: &str, node: &Node) -> clap::Command {
    let mut command = clap::Command::new(name.to_string()).disable_help_subcommand(true);
    if let Some(about) = &node.about {
        command = command.about(about.clone());
    }
    if let Some(signature) = &node.signature {
        command = crate::signature::add_args(command, signature);
    }
    for (word, child) in &node.children {
        command = command.subcommand(to_clap(word, child));
    }
    command
}

/// The whole command line: built-ins and every loaded plugin's commands. Help and
/// completion scripts are both generated from it.
pub fn root_command(registry: &Registry) -> clap::Command {
    to_clap("rvbbit", &tree(registry))
        .mut_subcommand(COMPLETIONS, |command| {
            command
                .arg(
                    clap::Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .help("The shell to write the script for")
                        .value_parser(
                            PossibleValuesParser::new(SHELLS).try_map(|s| s.parse::<Shell>()),
                        ),
                )
                .after_help(
                    "The script completes the commands of the plugins loaded now: write it again after adding or removing a plugin.\n\n\
                     bash  rvbbit completions bash > ~/.local/share/bash-completion/completions/rvbbit\n\
                     zsh   rvbbit completions zsh > ~/.zfunc/_rvbbit   (with ~/.zfunc in $fpath)\n\
                     fish  rvbbit completions fish > ~/.config/fish/completions/rvbbit.fish",
                )
        })
        .version(HOST_VERSION)
        .about("rvbbit, with plugins. Commands below come from plugins; any other command is handed to rvbbit's own CLI (the next `rvbbit` on PATH).")
        .after_help("Plugins are searched in RVBBIT_PLUGIN_PATH, next to this executable, in <exe dir>/../lib/rvbbit/plugins and in ~/.local/share/rvbbit/plugins. `rvbbit plugins` shows what was loaded.")
}

fn is_help(arg: &OsString) -> bool {
    arg == "--help" || arg == "-h"
}

/// Answers `rvbbit`, `--help`, `--version` and a group of plugin commands without a
/// command (`rvbbit training`, `rvbbit training --help`). `None`: not for the host.
pub fn answer(
    registry: &Registry,
    mut root: clap::Command,
    args: &[OsString],
    has_fallback: bool,
) -> Option<i32> {
    match args.first().and_then(|a| a.to_str()) {
        None => {
            let _ = root.print_help();
            return Some(exit::SUCCESS);
        }
        Some("--help" | "-h") => {
            let _ = root.print_help();
            return Some(exit::SUCCESS);
        }
        Some("--version" | "-V") => {
            println!("rvbbit host {HOST_VERSION} (plugin ABI {ABI_VERSION}.{ABI_MINOR})");
            for plugin in &registry.plugins {
                println!(
                    "plugin {} {} (ABI {}.{})",
                    plugin.name, plugin.version, plugin.abi_version, plugin.abi_minor
                );
            }
            return Some(exit::SUCCESS);
        }
        _ => {}
    }
    // A group of plugin commands (`rvbbit training`, `rvbbit training --help`).
    let wants_help = args.last().is_some_and(is_help);
    let words = if wants_help {
        &args[..args.len() - 1]
    } else {
        args
    };
    let words: Option<Vec<&str>> = words.iter().map(|a| a.to_str()).collect();
    let words = words?;
    let owned = registry
        .plugins
        .iter()
        .any(|p| Some(p.name.as_str()) == words.first().copied());
    if has_fallback && !owned {
        return None;
    }
    let mut group = &mut root;
    for word in &words {
        group = group.find_subcommand_mut(word)?;
    }
    // A command (not a group) that no plugin matched: not ours to answer.
    group.get_subcommands().next()?;
    let bin_name = format!("rvbbit {}", words.join(" "));
    let mut group = group.clone().bin_name(bin_name);
    if wants_help {
        let _ = group.print_help();
        Some(exit::SUCCESS)
    } else {
        eprint!("{}", group.render_help());
        Some(exit::USAGE)
    }
}

/// The error for a command no plugin provides when there is no rvbbit to hand it to:
/// one line, a suggestion when a command or group is close to what was typed, and where
/// to find the list.
pub fn no_such_command(registry: &Registry, args: &[OsString]) -> i32 {
    if let Some(option) = args
        .first()
        .and_then(|a| a.to_str())
        .filter(|a| a.starts_with('-'))
    {
        eprintln!(
            "error: '{option}' is not a command: options go after the command, e.g. 'rvbbit training verify {option} …'; `rvbbit --help` lists the commands"
        );
        return exit::USAGE;
    }
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| !a.starts_with('-'))
        .collect();
    eprintln!(
        "error: no plugin provides 'rvbbit {}', and there is no other rvbbit on PATH to hand it to.",
        words.join(" ")
    );
    if let Some(suggestion) = closest(&candidates(registry), &words) {
        eprintln!("  tip: did you mean 'rvbbit {suggestion}'?");
    }
    eprintln!("  `rvbbit --help` lists the commands.");
    if !registry.rejected.is_empty() {
        eprintln!(
            "  {} plugin file(s) could not be loaded; `rvbbit plugins` says why.",
            registry.rejected.len()
        );
    }
    exit::NO_SUCH_COMMAND
}

/// What a typed command may have meant: every command's path, every group of words
/// above one (`training`), and the host's own commands.
fn candidates(registry: &Registry) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = Vec::new();
    for (command, _) in &registry.commands {
        for n in 1..=command.path.len() {
            all.push(command.path[..n].to_vec());
        }
    }
    all.extend(
        crate::builtins::BUILTINS
            .iter()
            .map(|b| vec![b.to_string()]),
    );
    all.sort();
    all.dedup();
    all
}

/// The candidate closest to the words typed, with the words after it kept: a candidate
/// the typed words start with (`statu` for `status`) before one a few edits away
/// (`stats`), before one that only starts the same way (`complete`, `completions`);
/// then the fewest edits, then the longest path. `None` when nothing is close.
fn closest(candidates: &[Vec<String>], words: &[String]) -> Option<String> {
    candidates
        .iter()
        .filter(|candidate| candidate.len() <= words.len())
        .filter_map(|candidate| {
            let path = candidate.join(" ");
            let attempt = words[..candidate.len()].join(" ");
            if attempt == path {
                return None; // right so far: the mistake is in a later word
            }
            let distance = levenshtein(&attempt, &path);
            let prefix = attempt.len() >= 3 && path.starts_with(&attempt);
            let close = distance <= (path.chars().count() / 4).max(2);
            // `complete` for `completions`: a long common start, then a different ending.
            let same_start = attempt
                .chars()
                .zip(path.chars())
                .take_while(|(a, b)| a == b)
                .count()
                >= 5;
            let class = if prefix {
                0
            } else if close {
                1
            } else if same_start {
                2
            } else {
                return None;
            };
            Some({
                let rest = &words[candidate.len()..];
                let shown = std::iter::once(path)
                    .chain(rest.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" ");
                ((class, distance, std::cmp::Reverse(candidate.len())), shown)
            })
        })
        .min()
        .map(|(_, shown)| shown)
}

/// `rvbbit help [WORDS…]` and `rvbbit GROUP help [WORDS…]` as `rvbbit [GROUP] WORDS… --help`,
/// when every word before `help` names a group of plugin commands (or there is none).
pub fn help_as_flag(registry: &Registry, args: &[OsString]) -> Option<Vec<OsString>> {
    let at = args.iter().position(|a| a == "help")?;
    let before: Option<Vec<&str>> = args[..at].iter().map(|a| a.to_str()).collect();
    let before = before?;
    let is_group = before.is_empty()
        || registry.commands.iter().any(|(c, _)| {
            c.path.len() > before.len() && c.path[..before.len()].iter().eq(before.iter())
        });
    if !is_group {
        return None;
    }
    let mut rewritten: Vec<OsString> = args[..at].to_vec();
    rewritten.extend(args[at + 1..].iter().cloned());
    rewritten.push(OsString::from("--help"));
    Some(rewritten)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, levenshtein};

    fn paths(list: &[&str]) -> Vec<Vec<String>> {
        list.iter()
            .map(|p| p.split(' ').map(String::from).collect())
            .collect()
    }

    fn typed(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn suggestions_find_the_group_the_command_and_prefer_a_prefix() {
        let candidates = paths(&[
            "training",
            "training migrate",
            "training stats",
            "training status",
            "training verify",
            "plugins",
            "completions",
        ]);
        let suggest = |text: &str| closest(&candidates, &typed(text));
        assert_eq!(suggest("trainig").as_deref(), Some("training"));
        assert_eq!(
            suggest("trainig migrate").as_deref(),
            Some("training migrate")
        );
        assert_eq!(
            suggest("training statu").as_deref(),
            Some("training status")
        );
        assert_eq!(suggest("training stat").as_deref(), Some("training stats"));
        assert_eq!(
            suggest("training migrat").as_deref(),
            Some("training migrate")
        );
        assert_eq!(suggest("plugin").as_deref(), Some("plugins"));
        assert_eq!(
            suggest("complete bash").as_deref(),
            Some("completions bash")
        );
        assert_eq!(suggest("run"), None);
        assert_eq!(suggest("serve"), None);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("training migrat", "training migrate"), 1);
        assert_eq!(levenshtein("trainig verify", "training verify"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
