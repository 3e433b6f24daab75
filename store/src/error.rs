//! The store crate's [`Error`] and the [`Hint`] trait the CLI uses to print `hint:` lines.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::path_component::PathComponentError;
use crate::tree::DecodeError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing ("read", "create", "rename into place"…).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes did not hash to the address they claimed.
    #[error("content does not match its address for `{}`\n  expected: {expected}\n  computed: {actual}", path.display())]
    DigestMismatch {
        /// The address that was claimed.
        expected: Digest,
        /// The address the bytes actually have.
        actual: Digest,
        /// Where the bytes were.
        path: PathBuf,
    },
    /// A stored object (its own file, or its range of a pack) exists but cannot be decoded.
    #[error("store object {digest} at `{}` is corrupt: {reason}", path.display())]
    CorruptObject {
        /// The object's address.
        digest: Digest,
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A pack file's index cannot be read or does not match the pack's name.
    #[error("pack `{}` is corrupt: {reason}", path.display())]
    CorruptPack {
        /// The pack file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A directory node failed to decode.
    #[error("directory node {digest} is malformed")]
    MalformedDirectory {
        /// The node's address.
        digest: Digest,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The object is not in the store.
    #[error("object {digest} is not in the store")]
    MissingObject {
        /// The address looked for.
        digest: Digest,
    },
    /// A blob was asked for where the address names a directory, or the other way round.
    #[error("object {digest} is a {found}, expected a {expected}")]
    WrongKind {
        /// The address.
        digest: Digest,
        /// What the caller needed.
        expected: &'static str,
        /// What the store holds.
        found: &'static str,
    },
    /// A file system entry cannot be stored (socket, FIFO, device…).
    #[error("cannot store `{}`: {kind} files are not supported", path.display())]
    UnsupportedFileType {
        /// The entry.
        path: PathBuf,
        /// Its kind, in words.
        kind: &'static str,
    },
    /// The path given to add is a symlink: an address names a blob or a tree, and a lone link is neither.
    #[error("`{}` is a symlink (to `{}`); only a file or a directory can be added", path.display(), target.display())]
    SymlinkNotSupported {
        /// The symlink.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// An entry changed kind (or vanished from its listing) while its tree was being added.
    #[error("`{}` changed while its tree was being stored", path.display())]
    ChangedWhileAdding {
        /// The entry.
        path: PathBuf,
    },
    /// A local tree holds an entry that other users cannot read, and the tree may only hold what they can.
    #[error("`{}` is not readable by other users (mode {mode:04o}); refusing to copy it into the store, where every sandbox and every bundle could read it", path.display())]
    NotReadableByOthers {
        /// The entry.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file name cannot be stored.
    #[error("cannot store `{}`", path.display())]
    InvalidName {
        /// The entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: PathComponentError,
    },
    /// A tree nests so deep that a path below it is longer than Linux accepts: it can be neither listed by path nor
    /// materialized, so it is refused as a whole (named by its root and the depth, not by a path too long to read).
    #[error(
        "cannot store `{}`: it is too deep — `{}/…` reaches {depth} directories down, where a path exceeds {} bytes",
        root.display(), start.display(), limit
    )]
    TooDeep {
        /// The tree being added.
        root: PathBuf,
        /// The first few components of the deep branch, relative to `root`.
        start: PathBuf,
        /// How many directories down the path became too long.
        depth: usize,
        /// The longest path accepted, in bytes.
        limit: usize,
    },
    /// A symlink target cannot be stored.
    #[error("cannot store symlink `{}`: its target is empty, longer than 4096 bytes or contains NUL", path.display())]
    InvalidSymlinkTarget {
        /// The symlink.
        path: PathBuf,
    },
    /// A file changed size while it was being stored.
    #[error("`{}` changed while it was being stored (expected {expected} bytes, read {actual})", path.display())]
    SizeChanged {
        /// The file.
        path: PathBuf,
        /// Size from metadata.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// Bytes in a stored encoding decoded to a different length than announced.
    #[error("`{}` holds {actual} bytes, expected {expected}", path.display())]
    SizeMismatch {
        /// Where the bytes came from.
        path: PathBuf,
        /// The announced length.
        expected: u64,
        /// The length the bytes actually have (a lower bound when decoding stopped early).
        actual: u64,
    },
    /// Bytes claimed to be in a stored encoding (a zstd frame) cannot be decoded.
    #[error("`{}` is not a valid {encoding} payload", path.display())]
    InvalidEncoding {
        /// Where the bytes came from.
        path: PathBuf,
        /// The encoding that was claimed.
        encoding: &'static str,
        /// What the decoder said.
        #[source]
        source: std::io::Error,
    },
    /// A materialization destination is not empty.
    #[error("destination `{}` already exists and is not an empty directory", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The directory a materialization destination would go in does not exist.
    #[error("cannot create `{}`: its parent directory `{}` does not exist", path.display(), parent.display())]
    DestinationParentMissing {
        /// The destination.
        path: PathBuf,
        /// Its missing parent.
        parent: PathBuf,
    },
    /// The store directory holds an incompatible format.
    #[error("`{}` is not a version-1 hstore store (found {found:?})", path.display())]
    IncompatibleStore {
        /// The store root.
        path: PathBuf,
        /// What the VERSION file says.
        found: String,
    },
    /// A metadata key or root name is not acceptable.
    #[error("invalid metadata name `{name}`: use letters, digits, `.`, `_`, `-` (at most 200)")]
    InvalidMetadataName {
        /// The rejected name.
        name: String,
    },
    /// A gc root named to be removed does not exist.
    #[error("the store has no gc root named `{name}`")]
    NoSuchRoot {
        /// The name asked for.
        name: String,
        /// The roots the store has, sorted.
        roots: Vec<String>,
    },
    /// A JSON metadata file could not be read or written.
    #[error("metadata file `{}` is not valid", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The store path is a directory of other files, not a store.
    #[error("`{}` is not an hstore store: it is a non-empty directory without a `VERSION` file (it holds `{}`)", path.display(), found.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// One entry that is not part of a store.
        found: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with what we were doing and where.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// Suggestions printed after an error as `hint:` lines.
pub trait Hint {
    /// A suggestion for the user, if this error has one.
    fn hint(&self) -> Option<String>;
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::DigestMismatch { .. }
            | Error::CorruptObject { .. }
            | Error::CorruptPack { .. }
            | Error::MalformedDirectory { .. } => Some(
                "run `hstore store verify --repair` to drop corrupt objects, then `hstore fetch` to get them again"
                    .into(),
            ),
            Error::MissingObject { .. } => {
                Some("run `hstore fetch` on a connected machine, or `hstore import` a bundle that holds it".into())
            }
            Error::DestinationExists { .. } => Some("choose a new path or remove the existing one".into()),
            Error::NoSuchRoot { roots, .. } if roots.is_empty() => Some("the store has no gc roots".into()),
            Error::NoSuchRoot { roots, .. } => Some(format!(
                "the store's roots are {}; `hstore store roots` lists them with what holds each",
                roots.iter().map(|root| format!("`{root}`")).collect::<Vec<_>>().join(", ")
            )),
            Error::NotAStore { .. } => Some(
                "point `--store` (or HSTORE_STORE) at an existing store, or at a new or empty directory to create one"
                    .into(),
            ),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => Some(
                "the file system is full: free space (`hstore store gc` removes unreachable objects) and run the command again"
                    .into(),
            ),
            Error::IncompatibleStore { .. } => {
                Some("point `--store` (or HSTORE_STORE) at an empty directory or an hstore store".into())
            }
            Error::SymlinkNotSupported { path, .. } => Some(format!(
                "add what it points to: `hstore store add \"$(readlink -f {})\"`",
                path.display()
            )),
            Error::DestinationParentMissing { parent, .. } => {
                Some(format!("create it first (`mkdir -p {}`) or choose another destination", parent.display()))
            }
            Error::NotReadableByOthers { path, .. } => Some(format!(
                "if it is meant to be shared, make it readable (`chmod o+r{} {}`); otherwise leave it out with \
                 `exclude = [\"{}\"]` in the recipe's source",
                if path.is_dir() { "x" } else { "" },
                path.display(),
                path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
            )),
            Error::ChangedWhileAdding { .. } => Some("run the command again once the directory stops changing".into()),
            Error::TooDeep { .. } => Some(
                "flatten the tree: nothing nested past Linux's path length can be materialized or installed".into(),
            ),
            Error::UnsupportedFileType { .. } => {
                Some("remove sockets, FIFOs and device files from the tree, or exclude them".into())
            }
            _ => None,
        }
    }
}

/// Result alias for the store crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
