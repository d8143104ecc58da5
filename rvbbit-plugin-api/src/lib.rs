//! The rvbbit plugin API.
//!
//! A plugin is a dynamic library exporting one C symbol, [`abi::ENTRY_SYMBOL`]
//! (`rvbbit_plugin_entry`). It returns a pointer to a `#[repr(C)]`
//! [`abi::PluginDescriptor`] whose first field is `abi_version`; the host reads that
//! field, and only that field, until it has checked it equals [`abi::ABI_VERSION`].
//!
//! * [`abi`]: the C types that cross the boundary and who owns each of them.
//! * [`plugin`]: the safe side for plugin authors: [`register_command!`] where a
//!   command is defined, [`export_plugin!`] once per library.
//! * `host` (feature `host`): loading libraries and checking them, for the `rvbbit`
//!   binary only, so plugins do not link the loader.
//! * [`exit`]: the exit codes every command and the host share.

pub mod abi;
pub mod exit;
#[cfg(feature = "host")]
pub mod host;
pub mod plugin;

#[doc(hidden)]
pub use inventory;
