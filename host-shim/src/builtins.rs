//! The host's own commands. Both the command line ([`crate::cli`]) and plugin
//! discovery ([`crate::discovery`], which refuses plugin commands that would hide
//! them) read these names from here.

/// The built-in that lists plugins.
pub const PLUGINS: &str = "plugins";
/// The built-in that prints a shell completion script.
pub const COMPLETIONS: &str = "completions";
/// The host's own commands; no plugin command may start with one (it would hide it).
pub const BUILTINS: [&str; 2] = [PLUGINS, COMPLETIONS];
