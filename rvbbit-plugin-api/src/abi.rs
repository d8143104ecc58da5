//! The C ABI between the `rvbbit` host and a plugin library.
//!
//! # Versioning
//! [`ABI_VERSION`] changes whenever any type in this module changes layout or meaning.
//! The host calls [`ENTRY_SYMBOL`], reads [`PluginDescriptor::abi_version`] (always the
//! first field, a `u32`) and refuses the library unless it equals the host's version.
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

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

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

/// One command: a path of words (`"training migrate"`), a one-line description, and
/// the function that runs it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CommandDescriptor {
    pub path: RvbbitBytes,
    pub about: RvbbitBytes,
    pub run: RunFn,
}

/// What [`ENTRY_SYMBOL`] returns. `abi_version` must stay the first field forever.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    pub abi_version: u32,
    pub name: RvbbitBytes,
    pub version: RvbbitBytes,
    pub commands: *const CommandDescriptor,
    pub command_count: usize,
    pub free_buf: FreeBufFn,
}
