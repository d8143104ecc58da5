//! The host's side: load a plugin library, check its major ABI version before reading
//! anything else, validate its descriptor (reading the fields of its minor version
//! that this host knows, see [`crate::abi`]) and run its commands.

use crate::abi::{
    CommandDescriptor, EntryFn, FreeBufFn, PluginDescriptor, RunFn, RvbbitBytes, RvbbitOwnedBuf,
    ABI_VERSION, ENTRY_SYMBOL, MINOR_SIGNATURE,
};
use crate::exit;
use crate::signature::Signature;
use std::ffi::OsString;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Upper bounds that catch a garbage descriptor before the host walks it.
const MAX_COMMANDS: usize = 1024;
const MAX_TEXT_LEN: usize = 4096;
const MAX_SIGNATURE_LEN: usize = 1 << 20;
/// Larger command entries than this are taken for garbage, not a later minor version.
const MAX_COMMAND_SIZE: usize = 4096;

/// The fields of [`CommandDescriptor`] every minor version has, as the host reads them:
/// a plugin written in C can leave `run` null, which a Rust function pointer cannot
/// be, so it is read as an `Option` (same layout: the null pointer is `None`) and
/// checked. Later fields are read one by one, when the plugin's minor has them.
#[repr(C)]
struct RawCommandDescriptor {
    path: RvbbitBytes,
    about: RvbbitBytes,
    run: Option<RunFn>,
}

/// [`PluginDescriptor`] as the host reads it, `free_buf` checked like `run` above.
#[repr(C)]
struct RawPluginDescriptor {
    abi_version: u32,
    abi_minor: u32,
    name: RvbbitBytes,
    version: RvbbitBytes,
    commands: *const u8,
    command_count: usize,
    command_size: usize,
    free_buf: Option<FreeBufFn>,
}

// The raw types must keep the layout of the ABI types they stand for.
const _: () = {
    assert!(offset_of!(RawCommandDescriptor, path) == offset_of!(CommandDescriptor, path));
    assert!(offset_of!(RawCommandDescriptor, about) == offset_of!(CommandDescriptor, about));
    assert!(offset_of!(RawCommandDescriptor, run) == offset_of!(CommandDescriptor, run));
    assert!(size_of::<RawCommandDescriptor>() <= offset_of!(CommandDescriptor, signature));
    assert!(size_of::<RawPluginDescriptor>() == size_of::<PluginDescriptor>());
    assert!(
        offset_of!(RawPluginDescriptor, abi_version) == offset_of!(PluginDescriptor, abi_version)
    );
    assert!(offset_of!(RawPluginDescriptor, abi_minor) == offset_of!(PluginDescriptor, abi_minor));
    assert!(
        offset_of!(RawPluginDescriptor, command_size) == offset_of!(PluginDescriptor, command_size)
    );
    assert!(offset_of!(RawPluginDescriptor, name) == offset_of!(PluginDescriptor, name));
    assert!(offset_of!(RawPluginDescriptor, version) == offset_of!(PluginDescriptor, version));
    assert!(offset_of!(RawPluginDescriptor, commands) == offset_of!(PluginDescriptor, commands));
    assert!(
        offset_of!(RawPluginDescriptor, command_count)
            == offset_of!(PluginDescriptor, command_count)
    );
    assert!(offset_of!(RawPluginDescriptor, free_buf) == offset_of!(PluginDescriptor, free_buf));
};

/// Why a file could not be used as a plugin. Displayed as the reason next to the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("not a loadable library: {0}")]
    NotALibrary(String),
    #[error("not an rvbbit plugin: it does not export the symbol `{ENTRY_SYMBOL}`")]
    NoEntrySymbol,
    #[error("`{ENTRY_SYMBOL}` returned no descriptor (null)")]
    NullDescriptor,
    #[error("built for plugin ABI version {found}, but this rvbbit speaks version {ABI_VERSION} (any {ABI_VERSION}.x); rebuild the plugin against this rvbbit")]
    AbiMismatch { found: u32 },
    #[error("malformed descriptor: {0}")]
    Malformed(String),
}

/// A command a loaded plugin provides.
#[derive(Clone)]
pub struct PluginCommand {
    /// The words that select it, e.g. `["training", "migrate"]`.
    pub path: Vec<String>,
    pub about: String,
    /// Its arguments, when the plugin declared them (minor 1 and later).
    pub signature: Option<Signature>,
    /// The name of the plugin that provides it.
    pub plugin: String,
    run: RunFn,
    free_buf: FreeBufFn,
    // Keeps the code behind `run` loaded.
    _library: Arc<libloading::Library>,
}

/// A library that passed every check.
pub struct LoadedPlugin {
    pub file: PathBuf,
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    /// The plugin's minor ABI version (it may be newer or older than the host's).
    pub abi_minor: u32,
    pub commands: Vec<PluginCommand>,
}

impl PluginCommand {
    /// The path as one string, `"training migrate"`.
    pub fn path_string(&self) -> String {
        self.path.join(" ")
    }

    /// Runs the command with the arguments that follow its path. Returns the exit code
    /// and the message the plugin wants shown, if any. A code the operating system
    /// cannot report (outside 0 to 255: 256 would read as success) becomes
    /// [`exit::INTERNAL`] with a message saying so.
    pub fn run(&self, args: &[OsString]) -> (i32, Option<String>) {
        let bytes: Vec<Vec<u8>> = args.iter().map(os_bytes).collect();
        let argv: Vec<RvbbitBytes> = bytes.iter().map(|b| RvbbitBytes::from_slice(b)).collect();
        let mut error = RvbbitOwnedBuf::empty();
        // SAFETY: `argv` holds `argv.len()` valid borrowed strings for the call and
        // `error` is a valid out-parameter, as the ABI requires.
        let code = unsafe { (self.run)(argv.as_ptr(), argv.len(), &mut error) };
        let message = if error.ptr.is_null() {
            None
        } else {
            // SAFETY: the plugin allocated `len` bytes at `ptr`.
            let text = String::from_utf8_lossy(unsafe {
                RvbbitBytes {
                    ptr: error.ptr,
                    len: error.len,
                }
                .as_slice()
            })
            .into_owned();
            // SAFETY: returned exactly once to the plugin that allocated it.
            unsafe { (self.free_buf)(error) };
            Some(text)
        };
        if (0..=255).contains(&code) {
            return (code, message);
        }
        let broken = format!(
            "plugin '{}' broke the ABI: command '{}' returned {code}, which is not an exit code (0 to 255); this is a bug in the plugin",
            self.plugin,
            self.path_string()
        );
        let message = match message {
            Some(text) if !text.is_empty() => format!("{broken} (its message: {text})"),
            _ => broken,
        };
        (exit::INTERNAL, Some(message))
    }
}

#[cfg(unix)]
fn os_bytes(arg: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    arg.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(arg: &OsString) -> Vec<u8> {
    arg.to_string_lossy().into_owned().into_bytes()
}

/// Loads `file` and checks it is a plugin this host can use.
pub fn load(file: &Path) -> Result<LoadedPlugin, LoadError> {
    // SAFETY: loading a library runs its initialisers; that is inherent to plugins and
    // the reason plugins are only searched for in the directories the user controls.
    let library = unsafe { libloading::Library::new(file) }
        .map_err(|e| LoadError::NotALibrary(loader_error(file, &e)))?;
    let library = Arc::new(library);
    // SAFETY: the symbol's type is fixed by the ABI.
    let entry: EntryFn = unsafe {
        *library
            .get::<EntryFn>(ENTRY_SYMBOL.as_bytes())
            .map_err(|_| LoadError::NoEntrySymbol)?
    };
    // SAFETY: calling the plugin's entry point as the ABI defines it.
    let descriptor: *const PluginDescriptor = unsafe { entry() };
    if descriptor.is_null() {
        return Err(LoadError::NullDescriptor);
    }
    // Read the version through a pointer to the first field only: a plugin of another
    // ABI may have a descriptor of another size.
    // SAFETY: every ABI version starts the descriptor with a `u32`.
    let found = unsafe { std::ptr::read_unaligned(descriptor as *const u32) };
    if found != ABI_VERSION {
        return Err(LoadError::AbiMismatch { found });
    }
    if !descriptor.cast::<RawPluginDescriptor>().is_aligned() {
        return Err(LoadError::Malformed(
            "the descriptor is not aligned for its type".into(),
        ));
    }
    // SAFETY: same ABI version, so the layout is ours (read with nullable function
    // pointers, see `RawPluginDescriptor`); the plugin owns it while loaded.
    let descriptor = unsafe { &*(descriptor as *const RawPluginDescriptor) };
    let name = text(descriptor.name, "plugin name")?;
    if !is_word(&name) {
        return Err(LoadError::Malformed(format!(
            "plugin name {name:?} must be a letter then letters, digits, '-' or '_'"
        )));
    }
    let version = text(descriptor.version, "plugin version")?;
    if descriptor.command_count > MAX_COMMANDS {
        return Err(LoadError::Malformed(format!(
            "it declares {} commands (at most {MAX_COMMANDS})",
            descriptor.command_count
        )));
    }
    if descriptor.commands.is_null() && descriptor.command_count > 0 {
        return Err(LoadError::Malformed("its command table is null".into()));
    }
    let minor = descriptor.abi_minor;
    let stride = descriptor.command_size;
    // The size of an entry with every field of the plugin's minor this host knows.
    let needed = if minor >= MINOR_SIGNATURE {
        size_of::<CommandDescriptor>()
    } else {
        size_of::<RawCommandDescriptor>()
    };
    if descriptor.command_count > 0
        && (stride < needed
            || stride > MAX_COMMAND_SIZE
            || stride % align_of::<RawCommandDescriptor>() != 0)
    {
        return Err(LoadError::Malformed(format!(
            "its command entries are {stride} bytes apart; ABI {ABI_VERSION}.{minor} needs at least {needed}, a multiple of {}, at most {MAX_COMMAND_SIZE}",
            align_of::<RawCommandDescriptor>()
        )));
    }
    if !descriptor
        .commands
        .cast::<RawCommandDescriptor>()
        .is_aligned()
    {
        return Err(LoadError::Malformed(
            "its command table is not aligned for its type".into(),
        ));
    }
    let Some(free_buf) = descriptor.free_buf else {
        return Err(LoadError::Malformed("its free_buf function is null".into()));
    };
    let mut commands: Vec<PluginCommand> = Vec::with_capacity(descriptor.command_count);
    for index in 0..descriptor.command_count {
        // SAFETY: the table is non-null and aligned (checked), holds `command_count`
        // entries `stride` bytes apart (bounded), each at least `needed` bytes long;
        // owned by the loaded plugin.
        let entry = unsafe { descriptor.commands.add(index * stride) };
        let command = unsafe { &*entry.cast::<RawCommandDescriptor>() };
        let signature = if minor >= MINOR_SIGNATURE {
            // SAFETY: the plugin's minor has the field and its entries are long enough.
            Some(unsafe {
                std::ptr::read(
                    entry
                        .add(offset_of!(CommandDescriptor, signature))
                        .cast::<RvbbitBytes>(),
                )
            })
        } else {
            None
        };
        let path = text(command.path, &format!("path of command #{index}"))?;
        let words: Vec<String> = path.split_whitespace().map(str::to_string).collect();
        if words.is_empty() || words.len() > 8 || !words.iter().all(|w| is_word(w)) {
            return Err(LoadError::Malformed(format!(
                "command #{index} has the path {path:?}; a path is 1 to 8 words, each a letter then letters, digits, '-' or '_'"
            )));
        }
        let path = words.join(" ");
        if let Some(first) = commands.iter().position(|c| c.path == words) {
            return Err(LoadError::Malformed(format!(
                "commands #{first} and #{index} both have the path '{path}'"
            )));
        }
        let Some(run) = command.run else {
            return Err(LoadError::Malformed(format!(
                "command '{path}' has a null run function"
            )));
        };
        let signature = match signature {
            None => None,
            Some(json) => {
                let what = format!("signature of command '{path}'");
                let json = bounded_text(json, &what, MAX_SIGNATURE_LEN)?;
                if json.is_empty() {
                    None
                } else {
                    Signature::from_json(&json)
                        .map_err(|e| LoadError::Malformed(format!("{what} is not valid: {e}")))?
                }
            }
        };
        commands.push(PluginCommand {
            path: words,
            about: text(command.about, &format!("description of command '{path}'"))?,
            signature,
            plugin: name.clone(),
            run,
            free_buf,
            _library: Arc::clone(&library),
        });
    }
    Ok(LoadedPlugin {
        file: file.to_path_buf(),
        name,
        version,
        abi_version: found,
        abi_minor: minor,
        commands,
    })
}

/// The system loader's reason, without the file name it starts with (the caller shows
/// the file): "dlopen failed: invalid ELF header".
fn loader_error(file: &Path, error: &libloading::Error) -> String {
    let mut reason = error.to_string();
    if let Some(detail) = std::error::Error::source(error).map(ToString::to_string) {
        let prefix = format!("{}: ", file.display());
        reason = format!(
            "{reason}: {}",
            detail.strip_prefix(&prefix).unwrap_or(&detail)
        );
    }
    reason
}

fn text(bytes: RvbbitBytes, what: &str) -> Result<String, LoadError> {
    bounded_text(bytes, what, MAX_TEXT_LEN)
}

fn bounded_text(bytes: RvbbitBytes, what: &str, max: usize) -> Result<String, LoadError> {
    if bytes.len > max {
        return Err(LoadError::Malformed(format!(
            "{what} is {} bytes long (at most {max})",
            bytes.len
        )));
    }
    if bytes.ptr.is_null() && bytes.len > 0 {
        return Err(LoadError::Malformed(format!("{what} is a null pointer")));
    }
    // SAFETY: non-null (or empty) and bounded; owned by the loaded plugin.
    let slice = unsafe { bytes.as_slice() };
    String::from_utf8(slice.to_vec())
        .map_err(|_| LoadError::Malformed(format!("{what} is not UTF-8")))
}

/// A plugin name or command word: starts with a letter, then letters, digits, '-', '_'.
fn is_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_plain() {
        assert!(is_word("test-annotation"));
        assert!(is_word("sql"));
        assert!(!is_word(""));
        assert!(!is_word("a b"));
        assert!(!is_word("--help"));
        assert!(!is_word("rm;"));
    }

    #[test]
    fn a_text_file_is_not_a_library() {
        let dir = std::env::temp_dir().join(format!("rvbbit-api-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("libfake.so");
        std::fs::write(&file, "not an ELF file").unwrap();
        let err = load(&file).err().expect("a text file must not load");
        assert!(matches!(err, LoadError::NotALibrary(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
