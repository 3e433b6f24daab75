//! [`Store`]: the object store on disk — opening, locking, writing and reading objects.
//!
//! This file opens and locks a store; the rest is split by concern: `write` (blobs and directory nodes in),
//! `publish` (the pending batch, its commit, atomic metadata files), `read` (finding and opening objects), `scan`
//! (every object and copy, for ls, gc and repair).
//!
//! Invariants:
//! - Every write goes temp file in `tmp/` → hash while streaming → data durable → no-clobber rename into
//!   `objects-v1/`, or for the small objects of a batch, into one pack in `packs-v1/` (see `pack`). Single objects
//!   fsync their file; tree ingest batches them behind one `syncfs` and renames loose blobs first, the pack last
//!   (children first). A killed process leaves only temp files; an object file or pack that exists is complete.
//! - Every reader finds an object through [`Store::locate`]: the packs this process has read (all of `packs-v1/`,
//!   indexed in memory on first use, read again on a miss), then the loose files.
//! - A [`Store`] holds the store lock for its whole life: shared for normal work, exclusive for gc. So gc never
//!   runs while another command is between adding an object and recording the root that keeps it.
//! - A store this process may not write (a read-only mount shared by cluster nodes, a store owned by another user)
//!   opens read-only for shared work: the lock file is opened for reading only (`flock` needs no write access), or
//!   skipped when it does not exist. Skipping is safe because a read-only handle never adds, removes or renames
//!   anything: objects are immutable and self-validating, so the worst a gc elsewhere can do to such a reader is make
//!   an object disappear (or move to a rewritten pack, where the reader looks again), which reads as a clear
//!   "missing object" error, never as wrong bytes. Writes through a
//!   read-only handle fail with the file system's own error, naming the path.
//! - A store is only ever created in a missing or empty directory (or one holding nothing but the layout's own
//!   names, as a killed first open leaves it): `--store` pointed at a directory of other files is refused.
//! - Memory is bounded whatever the object size: bytes stream from source to hasher to encoder, through one buffer,
//!   or for a large blob through `FRAME_BUFFERS` frame buffers (`write.rs`, and see `frames`).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tempfile::{NamedTempFile, TempPath};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::{
    CACHE_DIR, LOCKS_DIR, Layout, META_DIR, OBJECTS_DIR, ObjectFormat, PACKS_DIR, ROOTS_DIR,
    STORE_VERSION, STORE_VERSION_V1, TMP_DIR, TREES_DIR, VERSION_FILE,
};
use crate::pack::{PackIndex, PackWriter};

/// Size of the streaming buffer; memory per concurrent write is a small multiple of it.
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

/// Blobs smaller than this are stored raw: a zstd frame header would eat the gain.
const MIN_COMPRESS_SIZE: u64 = 128;

/// A batch of deferred objects is made durable and visible once it holds this many objects…
const PENDING_MAX_OBJECTS: usize = 4096;

/// …or its pack holds this many (a pack's index costs ~60 bytes of memory per object in every later command, so
/// objects are cheap; the bound keeps a pack's rewrite by gc small)…
const PACK_MAX_OBJECTS: usize = 1 << 16;

/// …or this many bytes (so `tmp/` never holds more than twice this much unpublished data per process: the batch
/// being filled and the one being committed in the background).
const PENDING_MAX_BYTES: u64 = 1 << 30;

/// A flush that must make more directories durable than this does one `syncfs` instead of an fsync per directory
/// (a tree add touches up to 256 shard directories; each fsync waits for the disk on its own).
const FSYNC_DIRS_MAX: usize = 8;

/// Bytes at the head of a large blob compressed to decide whether zstd is worth it (small: the probe is extra work).
const PROBE_SIZE: usize = 128 << 10;

/// Default zstd level (ARCHITECTURE.md, "The store").
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;

/// How a [`Store`] holds the store lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Normal commands: many at once.
    Shared,
    /// gc: alone.
    Exclusive,
}

/// When a newly written object must become durable and visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the call returns: fsync the file, then rename it into place.
    Now,
    /// At the next [`Store::commit_pending`]: one `syncfs` for the whole batch, then the renames in order. Used by
    /// tree ingest, where one fsync per file would cost a journal commit per file.
    Batched,
}

/// Objects fully written to temp files but not yet synced and renamed, in the order they were written (children
/// before the directory nodes naming them, so renaming in order never exposes a node before its children).
#[derive(Debug, Default)]
struct Pending {
    /// Loose objects (large blobs), each in its own temp file.
    objects: Vec<(TempPath, Digest, ObjectFormat)>,
    /// Small blobs and directory nodes, gathered in one pack.
    pack: Option<PackWriter>,
    digests: HashMap<Digest, ObjectFormat>,
    bytes: u64,
}

/// Facts about one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its address.
    pub digest: Digest,
    /// How it is stored.
    pub format: ObjectFormat,
    /// For a blob, its byte length; for a tree, the total bytes of files below it.
    pub size: u64,
}

/// A readable blob with its length.
pub struct BlobReader {
    /// The decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    /// The blob's length in bytes.
    pub size: u64,
}

/// An open store. See the module docs for its invariants.
#[derive(Debug)]
pub struct Store {
    layout: Layout,
    /// The lock file, held in `lock_mode`; `None` only for a read-only store without a lock file.
    lock: Option<File>,
    lock_mode: LockMode,
    read_only: bool,
    pending: Mutex<Pending>,
    /// What renames objects into place, shared with the thread committing a full batch in the background.
    publisher: Arc<Publisher>,
    /// The full batch being committed in the background, if any (at most one: the next full batch waits for it).
    in_flight: Mutex<InFlight>,
    /// Serializes commits, so a batch taken later is never published before one taken earlier.
    commit: Mutex<()>,
    compression_level: i32,
}

/// Renames durable temp files into `objects-v1/` and packs into `packs-v1/`, remembers which directories gained
/// entries, and holds the in-memory index of the packs.
#[derive(Debug)]
struct Publisher {
    layout: Layout,
    /// Shard directories known to exist (indexed by the first digest byte), to skip a `mkdir` per object.
    shards_ready: Vec<AtomicBool>,
    /// Per shard: [`SHARD_UNKNOWN`], [`SHARD_FRESH`] (missing when this process first looked) or
    /// [`SHARD_EXISTING`].
    shard_state: Vec<AtomicU8>,
    /// Objects this process published into shards not known to exist before it (see
    /// [`Store::known_blob_format`]).
    published: Mutex<HashMap<Digest, ObjectFormat>>,
    dirty_dirs: Mutex<BTreeSet<PathBuf>>,
    /// The objects of every pack read or published, read from `packs-v1/` on first use.
    packs: RwLock<PackIndex>,
}

const SHARD_UNKNOWN: u8 = 0;
const SHARD_FRESH: u8 = 1;
const SHARD_EXISTING: u8 = 2;

/// A full batch handed to a background thread: `syncfs`, then the renames in order. Until it is joined its objects
/// are neither pending nor visible, so their digests stay here for [`Store::pending_format`].
#[derive(Debug, Default)]
struct InFlight {
    digests: HashMap<Digest, ObjectFormat>,
    done: Option<JoinHandle<Result<()>>>,
}

/// Whether the first bytes of a blob show a format that is already compressed (zstd gains ≤0.4% on these).
fn is_already_compressed(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 8] = [
        b"\x1f\x8b",           // gzip: .crate, .tar.gz, .tgz
        b"PK\x03\x04",         // zip: .whl, .zip, .jar
        b"\x28\xb5\x2f\xfd",   // zstd
        b"\xfd7zXZ\x00",       // xz
        b"BZh",                // bzip2
        b"7z\xbc\xaf\x27\x1c", // 7z
        b"\x89PNG\r\n\x1a\n",  // png
        b"\x04\x22\x4d\x18",   // lz4
    ];
    MAGICS.iter().any(|magic| head.starts_with(magic))
}

impl Store {
    /// Opens (creating if needed) the store at `root` with a shared lock.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with(root, LockMode::Shared)
    }

    /// Opens the store at `root`, holding the lock in `mode` until dropped; waits for conflicting holders. A store
    /// this process cannot write opens read-only for [`LockMode::Shared`] (see the module docs).
    pub fn open_with(root: impl Into<PathBuf>, mode: LockMode) -> Result<Self> {
        let layout = Layout::new(root);
        let root = layout.root().to_path_buf();
        check_store_root(&layout)?;
        let lock_path = layout.lock_file();
        let (lock, read_only) = match create_layout(&layout).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&lock_path)
                .map_err(Error::io("open lock file", &lock_path))
        }) {
            Ok(lock) => (Some(lock), false),
            Err(error) if mode == LockMode::Shared && is_read_only_error(&error) => {
                // Not writable by us: read it as it is, under a shared lock when the lock file exists.
                match File::open(&lock_path) {
                    Ok(lock) => (Some(lock), true),
                    Err(open_error) if open_error.kind() == io::ErrorKind::NotFound => (None, true),
                    Err(_) => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        if let Some(lock) = &lock {
            match mode {
                LockMode::Shared => lock.lock_shared(),
                LockMode::Exclusive => lock.lock(),
            }
            .map_err(Error::io("lock", &lock_path))?;
        }
        let publisher = Arc::new(Publisher {
            layout: layout.clone(),
            shards_ready: (0..256).map(|_| AtomicBool::new(false)).collect(),
            shard_state: (0..256).map(|_| AtomicU8::new(SHARD_UNKNOWN)).collect(),
            published: Mutex::new(HashMap::new()),
            dirty_dirs: Mutex::new(BTreeSet::new()),
            packs: RwLock::new(PackIndex::default()),
        });
        let store = Self {
            layout,
            lock,
            lock_mode: mode,
            read_only,
            pending: Mutex::new(Pending::default()),
            publisher,
            in_flight: Mutex::new(InFlight::default()),
            commit: Mutex::new(()),
            compression_level: DEFAULT_COMPRESSION_LEVEL,
        };
        store.check_version(&root)?;
        Ok(store)
    }

    /// Whether this handle reads a store it cannot write (see the module docs).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_version(&self, root: &Path) -> Result<()> {
        let version_path = self.layout.version_file();
        match fs::read_to_string(&version_path) {
            Ok(found) if found == STORE_VERSION => Ok(()),
            // A v1 store is a v2 store without packs: it is marked v2 before a pack can appear in it (a v1 binary
            // would not see packed objects), and read as it is when read-only.
            Ok(found) if found == STORE_VERSION_V1 => {
                if self.read_only {
                    Ok(())
                } else {
                    self.write_file_atomic(&version_path, STORE_VERSION.as_bytes())
                }
            }
            Ok(found) => Err(Error::IncompatibleStore {
                path: root.to_path_buf(),
                found,
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound && !self.read_only => {
                self.write_file_atomic(&version_path, STORE_VERSION.as_bytes())
            }
            Err(error) => Err(Error::io("read", &version_path)(error)),
        }
    }

    /// The store's paths.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// How this handle holds the store lock.
    pub fn lock_mode(&self) -> LockMode {
        self.lock_mode
    }

    /// Sets the zstd level for new compressed blobs (does not change addresses).
    pub fn set_compression_level(&mut self, level: i32) {
        self.compression_level = level;
    }

    /// A new temp file in `tmp/`, on the store's file system.
    pub fn temp_file(&self) -> Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix("obj-")
            .tempfile_in(self.layout.tmp())
            .map_err(Error::io("create temp file in", self.layout.tmp()))
    }

    /// A new temp directory in `tmp/`, for callers that assemble a tree before adding it. It is 0700: what is
    /// assembled there (a build's output, which may try to be a setuid binary) is no one else's to reach.
    ///
    /// Dropping it removes it without recursion and whatever modes its contents were left with (see
    /// [`TempTree`](crate::TempTree)): what is assembled there is untrusted in shape too.
    pub fn temp_dir(&self) -> Result<crate::TempTree> {
        tempfile::Builder::new()
            .prefix("dir-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(self.layout.tmp())
            .map(|dir| crate::TempTree::new(dir.keep()))
            .map_err(Error::io("create temp directory in", self.layout.tmp()))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(error) = self.commit_pending().and_then(|()| self.flush()) {
            tracing::warn!("{error}");
        }
        if let Some(lock) = &self.lock {
            let _ = lock.unlock();
        }
    }
}

/// Refuses to make a store in a directory that holds anything but a store (or a killed first open's layout).
fn check_store_root(layout: &Layout) -> Result<()> {
    let root = layout.root();
    if layout.version_file().exists() {
        return Ok(());
    }
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io("list", root)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", root))?;
        let name = entry.file_name();
        // Every name the layout has, `VERSION` and the caches included: commands opening a new store at once (six
        // concurrent adds in the tests) see each other's first entries appear between the check above and this
        // listing.
        let ours = name.to_str().is_some_and(|name| {
            [
                VERSION_FILE,
                OBJECTS_DIR,
                PACKS_DIR,
                TREES_DIR,
                ROOTS_DIR,
                META_DIR,
                TMP_DIR,
                CACHE_DIR,
                LOCKS_DIR,
            ]
            .contains(&name)
        });
        if !ours {
            return Err(Error::NotAStore {
                path: root.to_path_buf(),
                found: entry.path(),
            });
        }
    }
    Ok(())
}

/// Creates the layout's directories (a no-op on an existing store, even a read-only one).
fn create_layout(layout: &Layout) -> Result<()> {
    for dir in [
        layout.objects(),
        layout.packs(),
        layout.trees(),
        layout.roots(),
        layout.meta(),
        layout.tmp(),
        layout.root().join(LOCKS_DIR),
    ] {
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
    }
    Ok(())
}

/// Whether opening failed only because this process may not write the store.
fn is_read_only_error(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied))
}

mod publish;
mod read;
mod scan;
mod write;

pub use read::StoredObject;
pub use scan::ObjectCopy;
pub(crate) use scan::ObjectScan;
pub(crate) use write::read_full;

#[cfg(test)]
mod tests;
