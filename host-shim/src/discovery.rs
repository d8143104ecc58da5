//! Where plugins are found and how the loaded set is assembled.
//!
//! Search order (first found wins):
//! 1. each directory in `RVBBIT_PLUGIN_PATH` (colon-separated);
//! 2. the directory of the `rvbbit` executable (so `cargo build` output works as is);
//! 3. `<exe dir>/../lib/rvbbit/plugins`;
//! 4. the user's data directory: `$XDG_DATA_HOME/rvbbit/plugins`, by default
//!    `~/.local/share/rvbbit/plugins`.
//!
//! Every file with the platform's library suffix (`.so` on Linux) in those
//! directories is tried. A file that fails is recorded with its reason and skipped;
//! it never stops the other plugins.
//!
//! When two plugins claim one command path, the plugin named by the path's first word
//! keeps it (`training verify` stays the training plugin's, wherever another plugin is
//! found); otherwise the first one found does. A path starting with one of the host's
//! own commands (`plugins`, `completions`) is refused: it would hide them. A refused
//! command is reported with its file and dropped from its plugin, whose other commands
//! still work.

use rvbbit_plugin_api::host::{self, LoadedPlugin, PluginCommand};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// First words a plugin command may not have: the host's own commands, which a plugin
/// command would hide (plugin commands are looked up first).
use crate::builtins::BUILTINS as HOST_COMMANDS;

pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("RVBBIT_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.clone());
        dirs.push(
            exe_dir
                .join("..")
                .join("lib")
                .join("rvbbit")
                .join("plugins"),
        );
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
        });
    if let Some(data_home) = data_home {
        dirs.push(data_home.join("rvbbit").join("plugins"));
    }
    dirs
}

/// A file that could not be used, and why.
pub struct Rejected {
    pub file: PathBuf,
    pub reason: String,
}

#[derive(Default)]
pub struct Registry {
    pub plugins: Vec<LoadedPlugin>,
    pub rejected: Vec<Rejected>,
    /// Every usable command with the name of the plugin providing it.
    pub commands: Vec<(PluginCommand, String)>,
}

impl Registry {
    pub fn load(dirs: &[PathBuf]) -> Registry {
        let mut registry = Registry::default();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_library_name(p))
                .collect();
            files.sort();
            for file in files {
                let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
                if seen.insert(canonical) {
                    registry.add(file);
                }
            }
        }
        registry.assign_commands();
        registry
    }

    fn add(&mut self, file: PathBuf) {
        let plugin = match host::load(&file) {
            Ok(plugin) => plugin,
            Err(e) => {
                self.rejected.push(Rejected {
                    file,
                    reason: e.to_string(),
                });
                return;
            }
        };
        if let Some(first) = self.plugins.iter().find(|p| p.name == plugin.name) {
            self.rejected.push(Rejected {
                file,
                reason: format!(
                    "plugin '{}' is already loaded from {}; this copy is ignored",
                    plugin.name,
                    first.file.display()
                ),
            });
            return;
        }
        self.plugins.push(plugin);
    }

    /// Decides, once every plugin is loaded, which plugin provides each command path
    /// (see the module docs), reports the refused ones and drops them from their
    /// plugins, so `rvbbit plugins` lists each command under the plugin that runs it.
    fn assign_commands(&mut self) {
        let mut provider: HashMap<&[String], usize> = HashMap::new();
        for (index, plugin) in self.plugins.iter().enumerate() {
            for command in &plugin.commands {
                if HOST_COMMANDS.contains(&command.path[0].as_str()) {
                    continue;
                }
                let owns = |p: &LoadedPlugin| p.name == command.path[0];
                provider
                    .entry(&command.path)
                    .and_modify(|current| {
                        if owns(plugin) && !owns(&self.plugins[*current]) {
                            *current = index;
                        }
                    })
                    .or_insert(index);
            }
        }
        let mut refused: Vec<(usize, Vec<String>, String)> = Vec::new();
        for (index, plugin) in self.plugins.iter().enumerate() {
            for command in &plugin.commands {
                let path = command.path_string();
                let reason = match provider.get(command.path.as_slice()) {
                    Some(&owner) if owner == index => continue,
                    Some(&owner) => format!(
                        "command '{path}' of plugin '{}' is already provided by plugin '{}'; it is ignored here",
                        plugin.name, self.plugins[owner].name
                    ),
                    None => format!(
                        "command '{path}' of plugin '{}' would hide rvbbit's own 'rvbbit {}'; it is ignored here",
                        plugin.name, command.path[0]
                    ),
                };
                refused.push((index, command.path.clone(), reason));
            }
        }
        for (index, path, reason) in refused {
            let plugin = &mut self.plugins[index];
            plugin.commands.retain(|c| c.path != path);
            self.rejected.push(Rejected {
                file: plugin.file.clone(),
                reason,
            });
        }
        self.commands = self
            .plugins
            .iter()
            .flat_map(|p| p.commands.iter().map(|c| (c.clone(), p.name.clone())))
            .collect();
    }

    /// The plugin command named by the longest matching prefix of `args`, and the
    /// arguments after it.
    pub fn find<'a>(&self, args: &'a [OsString]) -> Option<(&PluginCommand, &'a [OsString])> {
        self.commands
            .iter()
            .map(|(c, _)| c)
            .filter(|c| {
                c.path.len() <= args.len()
                    && c.path
                        .iter()
                        .zip(args)
                        .all(|(word, arg)| arg.to_str() == Some(word.as_str()))
            })
            .max_by_key(|c| c.path.len())
            .map(|c| (c, &args[c.path.len()..]))
    }
}

fn is_library_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(std::env::consts::DLL_SUFFIX))
}
