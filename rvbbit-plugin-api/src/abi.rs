//! The C ABI between the `rvbbit` host and a plugin library.
//!
//! # Versioning
//! Two numbers, `MAJOR.MINOR` ([`ABI_VERSION`].[`ABI_MINOR`]):
//! * The major version, [`PluginDescriptor::abi_version`] (always the first field, a
//!   `u32`), changes whenever a type in this module changes in a way an older reader
//!   cannot skip: a field moved, removed or given another meaning. The host calls
//!   [`ENTRY_SYMBOL`], reads that field and nothing else, and refuses the library
//!   unless it equals the host's major version.
//! * The minor version, [`PluginDescriptor::abi_minor`], grows with each additive
//!   change: a field appended at the end of [`PluginDescriptor`] or of
//!   [`CommandDescriptor`], which an older reader may ignore. The host reads a field
//!   added in minor `N` only from a plugin whose minor is at least `N`; a plugin of an
//!   older minor lacks it, and the host treats it as absent. A plugin of a newer minor
//!   than the host loads too: the host reads the fields it knows and skips the rest,
//!   stepping through the command table by [`PluginDescriptor::command_size`] (the size
//!   of one entry as the plugin was built), never by its own idea of the size.
//!
//! | version | change                                                              |
//! |---------|---------------------------------------------------------------------|
//! | 1       | first version (no minor)                                            |
//! | 2.0     | `abi_minor` and `command_size` added to the descriptor              |
//! | 2.1     | [`CommandDescriptor::signature`]: the command's arguments, as JSON   |
//!
//! # Ownership
//! * The descriptor, its name and version strings, its command table and every string
//!   in it are owned by the plugin and stay valid, unchanged, for as long as the library
//!   is loaded. The host never writes to or frees them. The host keeps libraries loaded
//!   until it exits.
//! * Arguments passed to a command ([`RvbbitBytes`] array) are owned by the host and are
//!   valid only for the duration of the call; the plugin copies what it keeps.
//! * An error message returned by a command ([`RvbbitOwnedBuf`]) is allocated by the
//!   plugin and handed to the host, which reads it and then gives it back through
//!   [`PluginDescriptor::free_buf`] exactly once. The host never frees it itself.
//! * Strings are UTF-8 except command arguments, which are the raw bytes of the
//!   operating-system argument (not necessarily UTF-8). Nothing is NUL-terminated.
//!
//! # Panics
//! No panic crosses the boundary: every function a plugin exports through this ABI
//! catches panics and turns them into an error (see [`crate::plugin`]).

/// The major ABI version this crate speaks: a plugin must have exactly this one.
pub const ABI_VERSION: u32 = 2;

/// The minor ABI version this crate speaks: the fields it knows (see the module docs).
pub const ABI_MINOR: u32 = 1;

/// The minor version that added [`CommandDescriptor::signature`].
pub const MINOR_SIGNATURE: u32 = 1;

/// The one symbol a plugin exports: `extern "C" fn() -> *const PluginDescriptor`.
pub const ENTRY_SYMBOL: &str = "rvbbit_plugin_entry";

/// The type of [`ENTRY_SYMBOL`]. It may return null, which the host reports.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// Runs one command. `argv`/`argc` are the arguments after the command's path.
/// Returns the process exit code; on failure it may store a message in `*error_out`
/// (initialised by the host to an empty buffer).
pub type RunFn = unsafe extern "C" fn(
    argv: *const RvbbitBytes,
    argc: usize,
    error_out: *mut RvbbitOwnedBuf,
) -> i32;

/// Gives back a buffer the plugin allocated.
pub type FreeBufFn = unsafe extern "C" fn(buf: RvbbitOwnedBuf);

/// A borrowed byte string: pointer and length. `ptr` may be null only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RvbbitBytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl RvbbitBytes {
    /// Borrows a Rust byte slice (no copy).
    pub const fn from_slice(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// Reads the bytes back.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a` (or be null with `len == 0`).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(self.ptr, self.len)
        }
    }
}

/// A buffer allocated by the plugin and owned by whoever holds it; returned to the
/// plugin through [`PluginDescriptor::free_buf`]. `cap` is the allocation's capacity.
#[repr(C)]
#[derive(Debug)]
pub struct RvbbitOwnedBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl RvbbitOwnedBuf {
    /// The empty buffer (nothing allocated; freeing it is a no-op).
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// One command: a path of words (`"training migrate"`), a one-line description, the
/// function that runs it and (minor 1) its arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CommandDescriptor {
    pub path: RvbbitBytes,
    pub about: RvbbitBytes,
    pub run: RunFn,
    /// Since minor 1 ([`MINOR_SIGNATURE`]): the command's flags, options and positional
    /// arguments as a JSON [`crate::signature::Signature`] (format
    /// [`crate::signature::FORMAT`]), so the host can list and complete them. Empty
    /// when the command declares none; the command still gets every argument typed.
    pub signature: RvbbitBytes,
}

/// What [`ENTRY_SYMBOL`] returns. `abi_version` must stay the first field forever;
/// fields of later minor versions go at the end.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// The major version, [`ABI_VERSION`] when built with this crate.
    pub abi_version: u32,
    /// The minor version, [`ABI_MINOR`] when built with this crate.
    pub abi_minor: u32,
    pub name: RvbbitBytes,
    pub version: RvbbitBytes,
    pub commands: *const CommandDescriptor,
    pub command_count: usize,
    /// The size in bytes of one entry of `commands` (`size_of::<CommandDescriptor>()`
    /// as the plugin was built): the host steps through the table by this size, so a
    /// plugin whose entries have fields of a later minor version still reads right.
    pub command_size: usize,
    pub free_buf: FreeBufFn,
}
