//! The rvbbit plugin API.
//!
//! A plugin is a dynamic library exporting one C symbol, [`abi::ENTRY_SYMBOL`]
//! (`rvbbit_plugin_entry`). It returns a pointer to a `#[repr(C)]`
//! [`abi::PluginDescriptor`] whose first field is `abi_version`; the host reads that
//! field, and only that field, until it has checked it equals [`abi::ABI_VERSION`]
//! (the major version). The minor version, [`abi::ABI_MINOR`], grows with additive
//! changes that older and newer hosts both accept (see [`abi`]).
//!
//! * [`abi`]: the C types that cross the boundary and who owns each of them.
//! * [`plugin`]: the safe side for plugin authors: [`register_command!`] where a
//!   command is defined (once: path, clap arguments, function), [`export_plugin!`]
//!   once per library.
//! * `cli` (feature `cli`): the clap glue, parsing and exit codes written once.
//! * [`signature`]: a command's arguments as the host lists and completes them.
//! * `host` (feature `host`): loading libraries and checking them, for the `rvbbit`
//!   binary only, so plugins do not link the loader.
//! * [`exit`]: the exit codes every command and the host share.
//! * `json` (feature `json`, on with `cli` and `host`): the one JSON document every
//!   command prints under `--format json`.

pub mod abi;
#[cfg(feature = "cli")]
pub mod cli;
pub mod exit;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "json")]
pub mod json;
pub mod plugin;
pub mod signature;

#[doc(hidden)]
pub use inventory;
