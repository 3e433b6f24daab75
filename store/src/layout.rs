//! The on-disk layout of a store, and the names that define it.
//!
//! ```text
//! <root>/
//! ├── VERSION                    "hstore-store-v2\n" (a v1 store, which has no packs, is marked v2 when opened for
//! │                              writing); any other value is refused, never migrated
//! ├── objects-v1/                immutable, self-validating objects, sharded by the first two hex digits
//! │   └── ab/
//! │       ├── ab…ef.raw          a blob stored as is (already-compressed formats, tiny files)
//! │       ├── ab…ef.zst          a blob as zstd frames of ≤ 4 MiB each (see `frames`); its address is of the decompressed bytes
//! │       └── ab…ef.dir          a directory node in canonical encoding (see `tree`)
//! ├── packs-v1/<hex>.pack        small objects of a tree add, many to a file, stored bytes as above (see `pack`)
//! ├── trees-v1/<hex>/            read-only materialized trees (a cache: deleting it loses nothing)
//! ├── roots-v1/<name>.json       gc roots: `{"description": "…", "addresses": ["b3:…"]}` (see [`crate::Root`])
//! ├── meta-v1/<namespace>/<key>.json   small JSON records (upstream integrity → address, build records)
//! ├── tmp/                       temp files and dirs on the same file system; only ever renamed out of
//! ├── cache-v1/stat/<hex>        stat caches of added local trees (see `stat_cache`; deleting them loses nothing)
//! ├── cache-v1/base-system-contents-v1   content digests of the host's /usr/local files, for the base-system
//! │                              fingerprint (see `hstore_sandbox::fingerprint`; deleting it loses nothing)
//! └── locks/store.lock           shared by every command, exclusive for gc
//! ```
//! The suffix, never the content, says how an object is stored: raw and zstd are never guessed. Every name above
//! that holds data carries a version; a format change adds a new name beside it.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Content of the `VERSION` file.
pub const STORE_VERSION: &str = "hstore-store-v2\n";
/// Content of the `VERSION` file of a store written before packs existed (read as a v2 store without packs).
pub const STORE_VERSION_V1: &str = "hstore-store-v1\n";
/// The `VERSION` file name.
pub const VERSION_FILE: &str = "VERSION";
/// Object directory.
pub const OBJECTS_DIR: &str = "objects-v1";
/// Pack files.
pub const PACKS_DIR: &str = "packs-v1";
/// Materialized tree cache.
pub const TREES_DIR: &str = "trees-v1";
/// gc roots.
pub const ROOTS_DIR: &str = "roots-v1";
/// JSON metadata.
pub const META_DIR: &str = "meta-v1";
/// Temp files.
pub const TMP_DIR: &str = "tmp";
/// Caches that only save work (deleting them loses nothing).
pub const CACHE_DIR: &str = "cache-v1";
/// Lock files.
pub const LOCKS_DIR: &str = "locks";
/// The store-wide lock.
pub const STORE_LOCK: &str = "store.lock";

/// How an object is stored on disk; the file suffix records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectFormat {
    /// A blob, bytes as is.
    RawBlob,
    /// A blob, one or more zstd frames (one per 4 MiB, see `frames`).
    ZstdBlob,
    /// A directory node.
    Directory,
}

impl ObjectFormat {
    /// All formats, in lookup order.
    pub const ALL: [ObjectFormat; 3] = [
        ObjectFormat::RawBlob,
        ObjectFormat::ZstdBlob,
        ObjectFormat::Directory,
    ];

    /// The file suffix.
    pub const fn suffix(self) -> &'static str {
        match self {
            ObjectFormat::RawBlob => "raw",
            ObjectFormat::ZstdBlob => "zst",
            ObjectFormat::Directory => "dir",
        }
    }

    /// Parses a suffix.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|format| format.suffix() == suffix)
    }

    /// Whether this is a blob (raw or compressed).
    pub const fn is_blob(self) -> bool {
        matches!(self, ObjectFormat::RawBlob | ObjectFormat::ZstdBlob)
    }

    /// The object kind in words, as `store ls` prints it.
    pub const fn kind_name(self) -> &'static str {
        if self.is_blob() { "blob" } else { "tree" }
    }
}

/// Paths inside one store root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `objects-v1/`.
    pub fn objects(&self) -> PathBuf {
        self.root.join(OBJECTS_DIR)
    }

    /// `packs-v1/`.
    pub fn packs(&self) -> PathBuf {
        self.root.join(PACKS_DIR)
    }

    /// The shard directory holding `digest`.
    pub fn shard(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.objects().join(&hex[..2])
    }

    /// The file of `digest` stored as `format` (built once per object read or written: one allocation of the
    /// hex digits, not two).
    pub fn object(&self, digest: &Digest, format: ObjectFormat) -> PathBuf {
        let hex = digest.to_hex();
        let mut path = self.objects();
        path.push(&hex[..2]);
        path.push(format!("{hex}.{}", format.suffix()));
        path
    }

    /// `trees-v1/`.
    pub fn trees(&self) -> PathBuf {
        self.root.join(TREES_DIR)
    }

    /// The materialized copy of tree `digest`.
    pub fn tree(&self, digest: &Digest) -> PathBuf {
        self.trees().join(digest.to_hex())
    }

    /// `roots-v1/`.
    pub fn roots(&self) -> PathBuf {
        self.root.join(ROOTS_DIR)
    }

    /// `meta-v1/`.
    pub fn meta(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    /// `tmp/`.
    pub fn tmp(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// `cache-v1/stat/`: one stat cache per added local tree root.
    pub fn stat_caches(&self) -> PathBuf {
        self.root.join(CACHE_DIR).join("stat")
    }

    /// `locks/store.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCKS_DIR).join(STORE_LOCK)
    }

    /// `VERSION`.
    pub fn version_file(&self) -> PathBuf {
        self.root.join(VERSION_FILE)
    }
}
