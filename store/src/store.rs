//! [`Store`]: the object store on disk — opening, locking, writing and reading objects.
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
//!   or for a large blob through [`FRAME_BUFFERS`] frame buffers (see `frames`).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use rayon::prelude::*;
use tempfile::{NamedTempFile, TempPath};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::frames::FRAME_SIZE;
use crate::layout::{
    CACHE_DIR, LOCKS_DIR, Layout, META_DIR, OBJECTS_DIR, ObjectFormat, PACKS_DIR, ROOTS_DIR,
    STORE_VERSION, STORE_VERSION_V1, TMP_DIR, TREES_DIR, VERSION_FILE,
};
use crate::pack::{Location, PackEntry, PackIndex, PackWriter};
use crate::tree::Directory;

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

/// Default zstd level (ARCHITECTURE.md §2).
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

    /// Stores the bytes read from `reader` as a blob. `size`, when known, is checked and recorded in the
    /// compressed frame; `expected`, when given, must match or nothing is stored.
    pub fn add_blob_reader(
        &self,
        reader: &mut dyn Read,
        size: Option<u64>,
        expected: Option<Digest>,
        source_path: &Path,
    ) -> Result<(Digest, u64)> {
        self.write_blob(reader, size, expected, source_path, Durability::Now)
            .map(|(digest, size, _)| (digest, size))
    }

    pub(crate) fn write_blob(
        &self,
        reader: &mut dyn Read,
        size: Option<u64>,
        expected: Option<Digest>,
        source_path: &Path,
        durability: Durability,
    ) -> Result<(Digest, u64, ObjectFormat)> {
        let mut buffer = take_buffer();
        let result =
            self.write_blob_buffered(&mut buffer, reader, size, expected, source_path, durability);
        give_back_buffer(buffer);
        result
    }

    /// Reads the first buffer-full: a blob that fits is hashed before anything is written (so a duplicate costs no
    /// write at all) and compressed in one call; a larger one streams through hasher and encoder.
    fn write_blob_buffered(
        &self,
        buffer: &mut [u8],
        reader: &mut dyn Read,
        size: Option<u64>,
        expected: Option<Digest>,
        source_path: &Path,
        durability: Durability,
    ) -> Result<(Digest, u64, ObjectFormat)> {
        let head_len = read_full(reader, buffer).map_err(Error::io("read", source_path))?;
        if head_len < buffer.len() {
            return self.write_small_blob(
                &buffer[..head_len],
                size,
                expected,
                source_path,
                durability,
            );
        }
        let compress = size.map_or(head_len as u64, |s| s.max(head_len as u64))
            >= MIN_COMPRESS_SIZE
            && !is_already_compressed(&buffer[..head_len])
            && compress_whole(&buffer[..head_len.min(PROBE_SIZE)], self.compression_level)
                .is_ok_and(|frame| worth_compressing(frame.len(), head_len.min(PROBE_SIZE)));
        let temp = self.temp_file()?;
        let temp_path = temp.path().to_path_buf();
        let file = temp
            .as_file()
            .try_clone()
            .map_err(Error::io("open", &temp_path))?;
        let mut hasher = blake3::Hasher::new();
        let total = if compress {
            self.write_frames(
                &mut (&buffer[..head_len]).chain(reader),
                size,
                file,
                &mut hasher,
                source_path,
                &temp_path,
            )?
        } else {
            let mut sink = BufWriter::with_capacity(BUFFER_SIZE, file);
            let mut total: u64 = 0;
            let mut chunk_len = head_len;
            while chunk_len > 0 {
                let chunk = &buffer[..chunk_len];
                hash_chunk(&mut hasher, chunk);
                sink.write_all(chunk)
                    .map_err(Error::io("write", &temp_path))?;
                total += chunk_len as u64;
                chunk_len = read_full(reader, buffer).map_err(Error::io("read", source_path))?;
            }
            sink.flush().map_err(Error::io("write", &temp_path))?;
            total
        };
        if let Some(expected_size) = size
            && expected_size != total
        {
            return Err(Error::SizeChanged {
                path: source_path.to_path_buf(),
                expected: expected_size,
                actual: total,
            });
        }
        let digest = Digest::from(hasher.finalize());
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
                path: source_path.to_path_buf(),
            });
        }
        if let Some(existing) = self.known_blob_format(&digest)? {
            return Ok((digest, total, existing));
        }
        let format = if compress {
            ObjectFormat::ZstdBlob
        } else {
            ObjectFormat::RawBlob
        };
        // `total` bounds the compressed length too (a frame that saves nothing is not stored).
        self.persist(temp, &digest, format, total, durability)?;
        Ok((digest, total, format))
    }

    /// Compresses a large blob as consecutive independent frames of [`FRAME_SIZE`] bytes (see `frames`), each in
    /// one call from a contiguous buffer, through at most [`FRAME_BUFFERS`] frame buffers. `size` is the blob's,
    /// when known. Returns the bytes read.
    fn write_frames(
        &self,
        reader: &mut dyn Read,
        size: Option<u64>,
        file: File,
        hasher: &mut blake3::Hasher,
        source_path: &Path,
        temp_path: &Path,
    ) -> Result<u64> {
        let frames = size.map_or(FRAME_BUFFERS, |size| {
            usize::try_from(size.div_ceil(FRAME_SIZE as u64)).unwrap_or(FRAME_BUFFERS)
        });
        let mut slots = FrameBuffers::take(frames);
        let result =
            self.write_frames_with(&mut slots, reader, file, hasher, source_path, temp_path);
        FrameBuffers::give_back(slots);
        result
    }

    /// The slots are two sets: while one set's frames are hashed and compressed (by rayon, in parallel), this
    /// thread writes out the other set's compressed frames and reads the next frames into it; then they swap. With
    /// a single slot, reading, compressing and writing take turns.
    fn write_frames_with(
        &self,
        slots: &mut [FrameBuffers],
        reader: &mut dyn Read,
        mut file: File,
        hasher: &mut blake3::Hasher,
        source_path: &Path,
        temp_path: &Path,
    ) -> Result<u64> {
        let level = self.compression_level;
        let (mut compress_set, mut io_set) = slots.split_at_mut(slots.len().div_ceil(2));
        let mut total = 0u64;
        let (mut to_compress, mut at_end) =
            fill_round(compress_set, reader, &mut total).map_err(Error::io("read", source_path))?;
        // Frames of `io_set` compressed in the previous round and not yet written.
        let mut to_write = 0;
        loop {
            let mut compressed = Ok(());
            let mut wrote = Ok(());
            let mut read = None;
            rayon::in_place_scope(|scope| {
                let round = &mut compress_set[..to_compress];
                let (hasher, compressed) = (&mut *hasher, &mut compressed);
                scope.spawn(move |_| *compressed = compress_round(round, hasher, level));
                wrote = write_round(&mut file, &io_set[..to_write]);
                if wrote.is_ok() && !at_end && !io_set.is_empty() {
                    read = Some(fill_round(io_set, reader, &mut total));
                }
            });
            compressed.map_err(Error::io("compress into", temp_path))?;
            wrote.map_err(Error::io("write", temp_path))?;
            if let Some(read) = read {
                let (filled, end) = read.map_err(Error::io("read", source_path))?;
                std::mem::swap(&mut compress_set, &mut io_set);
                (to_write, to_compress, at_end) = (to_compress, filled, end);
            } else {
                // At the end, or a single slot: write this round before reading (or ending).
                write_round(&mut file, &compress_set[..to_compress])
                    .map_err(Error::io("write", temp_path))?;
                if at_end {
                    return Ok(total);
                }
                to_write = 0;
                (to_compress, at_end) = fill_round(compress_set, reader, &mut total)
                    .map_err(Error::io("read", source_path))?;
            }
        }
    }

    fn write_small_blob(
        &self,
        bytes: &[u8],
        size: Option<u64>,
        expected: Option<Digest>,
        source_path: &Path,
        durability: Durability,
    ) -> Result<(Digest, u64, ObjectFormat)> {
        let total = bytes.len() as u64;
        if let Some(expected_size) = size
            && expected_size != total
        {
            return Err(Error::SizeChanged {
                path: source_path.to_path_buf(),
                expected: expected_size,
                actual: total,
            });
        }
        let digest = Digest::of_bytes(bytes);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
                path: source_path.to_path_buf(),
            });
        }
        if let Some(existing) = self.known_blob_format(&digest)? {
            return Ok((digest, total, existing));
        }
        let frame = if total >= MIN_COMPRESS_SIZE && !is_already_compressed(bytes) {
            compress_whole(bytes, self.compression_level)
                .map(Some)
                .map_err(Error::io("compress", source_path))?
        } else {
            None
        };
        let (format, stored) =
            match frame.filter(|frame| worth_compressing(frame.len(), bytes.len())) {
                Some(frame) => (ObjectFormat::ZstdBlob, std::borrow::Cow::Owned(frame)),
                None => (ObjectFormat::RawBlob, std::borrow::Cow::Borrowed(bytes)),
            };
        if durability == Durability::Batched {
            let format = self.pack_object(&digest, format, &stored)?;
            return Ok((digest, total, format));
        }
        let mut temp = self.temp_file()?;
        temp.write_all(&stored)
            .map_err(Error::io("write", temp.path()))?;
        self.persist(temp, &digest, format, total, durability)?;
        Ok((digest, total, format))
    }

    /// How blob `digest` is stored, or will be once the current batches are committed, for a writer deciding
    /// whether to write it at all. In a shard directory that did not exist when this process first looked, only
    /// what this process published can be there (or what a concurrent add raced in, which the no-clobber rename
    /// takes as success), so the answer comes from memory: a cold add then costs no failed lookups per blob.
    pub(crate) fn known_blob_format(&self, digest: &Digest) -> Result<Option<ObjectFormat>> {
        if let Some(format) = self.pending_format(digest) {
            return Ok(Some(format));
        }
        if let Some(format) = self.packed_format(digest)?
            && format.is_blob()
        {
            return Ok(Some(format));
        }
        if self.publisher.is_fresh(digest) {
            return Ok(self.publisher.published_format(digest));
        }
        Ok(self
            .loose(digest, &[ObjectFormat::RawBlob, ObjectFormat::ZstdBlob])
            .map(|(format, _)| format))
    }

    /// To be called before this handle removes objects (gc, repair): [`Store::known_blob_format`] must not answer
    /// from memory for them afterwards.
    pub(crate) fn objects_removed(&self) {
        self.publisher.forget_published();
        self.packs_mut().clear();
    }

    /// The pack index, for changing it.
    fn packs_mut(&self) -> std::sync::RwLockWriteGuard<'_, PackIndex> {
        self.publisher
            .packs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How `digest` is stored in a pack this process knows (reading `packs-v1/` on first use), without looking
    /// for packs added since: for writers, to whom a miss only costs a duplicate.
    fn packed_format(&self, digest: &Digest) -> Result<Option<ObjectFormat>> {
        self.with_packs(|packs| packs.format(digest))
    }

    /// Reads the pack index now, if this process has not yet (a failure is left for the first lookup to report).
    pub(crate) fn preload_packs(&self) {
        let _ = self.with_packs(|_| ());
    }

    /// Runs `f` on the pack index, read from `packs-v1/` first if this process has not yet.
    fn with_packs<T>(&self, f: impl Fn(&PackIndex) -> T) -> Result<T> {
        {
            let packs = self
                .publisher
                .packs
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if packs.is_loaded() {
                return Ok(f(&packs));
            }
        }
        let mut packs = self.packs_mut();
        if !packs.is_loaded() {
            let dir = self.layout.packs();
            packs.refresh(&dir).map_err(Error::io("list", &dir))?;
        }
        Ok(f(&packs))
    }

    /// Where object `digest` is stored and how: in a pack, or loose. A miss reads `packs-v1/` again for packs
    /// that other processes published since, before answering `None`.
    pub fn locate(&self, digest: &Digest) -> Result<Option<(ObjectFormat, Location)>> {
        if let Some(found) = self.locate_known(digest)? {
            return Ok(Some(found));
        }
        let dir = self.layout.packs();
        let mut packs = self.packs_mut();
        packs.refresh(&dir).map_err(Error::io("list", &dir))?;
        Ok(packs.get(digest))
    }

    /// [`Store::locate`] among the packs this process knows and the loose objects.
    fn locate_known(&self, digest: &Digest) -> Result<Option<(ObjectFormat, Location)>> {
        if let Some(found) = self.with_packs(|packs| packs.get(digest))? {
            return Ok(Some(found));
        }
        Ok(self
            .loose(digest, &ObjectFormat::ALL)
            .map(|(format, path)| (format, Location::Loose(path))))
    }

    /// The loose file of `digest` in the first of `formats` it is stored as, if any (one `stat` per format tried).
    fn loose(&self, digest: &Digest, formats: &[ObjectFormat]) -> Option<(ObjectFormat, PathBuf)> {
        formats.iter().find_map(|&format| {
            let path = self.layout.object(digest, format);
            path.exists().then_some((format, path))
        })
    }

    /// How `digest` will be stored if it waits in the current batch (or the one being committed).
    fn pending_format(&self, digest: &Digest) -> Option<ObjectFormat> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .digests
            .get(digest)
            .copied();
        pending.or_else(|| {
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .digests
                .get(digest)
                .copied()
        })
    }

    /// Stores a regular file's bytes as a blob.
    pub fn add_blob_file(&self, path: &Path) -> Result<(Digest, u64)> {
        let mut file = File::open(path).map_err(Error::io("open", path))?;
        let size = file.metadata().map_err(Error::io("stat", path))?.len();
        self.write_blob(&mut file, Some(size), None, path, Durability::Now)
            .map(|(digest, size, _)| (digest, size))
    }

    /// Stores the regular file at `path`, whose stat said `size` bytes, as a blob. The file is opened without
    /// following a symlink (it may have been replaced by one since the stat) and must still hold `size` bytes.
    pub(crate) fn write_blob_file_checked(
        &self,
        path: &Path,
        size: u64,
        durability: Durability,
    ) -> Result<(Digest, ObjectFormat)> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(Error::io("open", path))?;
        self.write_blob(&mut file, Some(size), None, path, durability)
            .map(|(digest, _, format)| (digest, format))
    }

    /// Whether the store holds directory node `digest` (an existing node vouches for its children).
    pub(crate) fn has_directory(&self, digest: &Digest) -> bool {
        matches!(
            self.packed_format(digest),
            Ok(Some(ObjectFormat::Directory))
        ) || self.loose(digest, &[ObjectFormat::Directory]).is_some()
    }

    /// Whether the store holds blob `digest`, or it waits in the current batch.
    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.pending_format(digest).is_some()
            || matches!(self.locate_known(digest), Ok(Some((format, _))) if format.is_blob())
    }

    /// Stores a regular file, failing with [`Error::DigestMismatch`] (and storing nothing) unless it hashes to
    /// `expected`. Import and fetch use this so that only verified bytes become visible.
    pub fn add_blob_file_expecting(&self, path: &Path, expected: Digest) -> Result<u64> {
        let mut file = File::open(path).map_err(Error::io("open", path))?;
        let size = file.metadata().map_err(Error::io("stat", path))?.len();
        self.add_blob_reader(&mut file, Some(size), Some(expected), path)
            .map(|(_, size)| size)
    }

    /// Stores an in-memory byte string (metadata-sized things: lockfiles, logs).
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let mut reader = bytes;
        self.add_blob_reader(
            &mut reader,
            Some(bytes.len() as u64),
            None,
            Path::new("<memory>"),
        )
        .map(|(digest, _)| digest)
    }

    /// Stores a directory node and returns its address.
    pub fn put_directory(&self, directory: &Directory) -> Result<Digest> {
        self.write_directory_node(directory, Durability::Now)
    }

    pub(crate) fn write_directory_node(
        &self,
        directory: &Directory,
        durability: Durability,
    ) -> Result<Digest> {
        let bytes = directory.encode();
        let digest = Digest::of_bytes(&bytes);
        self.write_directory_bytes(&digest, &bytes, durability)?;
        Ok(digest)
    }

    /// Stores directory node `bytes`, which this process encoded and hashed to `digest` itself (so they need no
    /// re-check), unless the store has it already.
    pub(crate) fn write_new_directory(
        &self,
        digest: &Digest,
        bytes: &[u8],
        durability: Durability,
    ) -> Result<()> {
        if self.pending_format(digest).is_some() {
            return Ok(());
        }
        if durability == Durability::Batched {
            return self
                .pack_object(digest, ObjectFormat::Directory, bytes)
                .map(|_| ());
        }
        let mut temp = self.temp_file()?;
        temp.write_all(bytes)
            .map_err(Error::io("write", temp.path()))?;
        self.persist(
            temp,
            digest,
            ObjectFormat::Directory,
            bytes.len() as u64,
            durability,
        )
    }

    /// Stores an already-encoded directory node, checking that it decodes and hashes to `digest`.
    pub fn put_directory_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.write_directory_bytes(digest, bytes, Durability::Now)
    }

    /// Stores an already-encoded directory node, checked like [`Store::put_directory_bytes`], but published with the
    /// next [`Store::commit_pending`], in write order: a caller that adds a tree's blobs (with
    /// [`Store::add_encoded_blob`]) and then its directory nodes children first never exposes a node before its
    /// children, at the cost of one `syncfs` per batch instead of one fsync per node.
    pub fn add_directory_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.write_directory_bytes(digest, bytes, Durability::Batched)
    }

    /// Stores an already-encoded directory node with the given durability.
    pub(crate) fn write_directory_bytes(
        &self,
        digest: &Digest,
        bytes: &[u8],
        durability: Durability,
    ) -> Result<()> {
        self.check_directory_bytes(digest, bytes)?;
        if self.has_directory(digest) {
            return Ok(());
        }
        self.write_new_directory(digest, bytes, durability)
    }

    /// Checks that `bytes` hash to `digest` and decode as a directory node under every rule of the format.
    pub fn check_directory_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<Directory> {
        let actual = Digest::of_bytes(bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: *digest,
                actual,
                path: PathBuf::from("<directory node>"),
            });
        }
        Directory::decode(bytes).map_err(|source| Error::MalformedDirectory {
            digest: *digest,
            source,
        })
    }

    /// Appends a small object's stored bytes to the current batch's pack (started on first use), unless the batch
    /// holds `digest` already; returns how the object is stored. Room is reserved under the batch's lock and
    /// written after it is released (the pack waits for its writes before it is sealed).
    pub(crate) fn pack_object(
        &self,
        digest: &Digest,
        format: ObjectFormat,
        stored: &[u8],
    ) -> Result<ObjectFormat> {
        let (reservation, full) = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(existing) = pending.digests.get(digest) {
                return Ok(*existing);
            }
            let writer = match &mut pending.pack {
                Some(writer) => writer,
                slot => {
                    let temp = tempfile::Builder::new()
                        .prefix("pack-")
                        .tempfile_in(self.layout.tmp())
                        .map_err(Error::io("create temp file in", self.layout.tmp()))?;
                    let path = temp.path().to_path_buf();
                    slot.insert(PackWriter::new(temp).map_err(Error::io("write", &path))?)
                }
            };
            let reservation = writer.reserve(*digest, format, stored.len() as u64);
            let objects = writer.len();
            pending.digests.insert(*digest, format);
            pending.bytes += stored.len() as u64;
            let full = objects >= PACK_MAX_OBJECTS || pending.bytes >= PENDING_MAX_BYTES;
            (reservation, full)
        };
        let path = reservation.path();
        reservation
            .write(stored)
            .map_err(|error| Error::io("write", &*path)(error))?;
        if full {
            self.commit_batch(false)?;
        }
        Ok(format)
    }

    /// Makes a fully written temp file the object `digest`: now (fsync, then rename) or with the next batch.
    /// `bytes` is its length, or an upper bound (it only sizes batches; passing it saves an `fstat` per object).
    pub(crate) fn persist(
        &self,
        temp: NamedTempFile,
        digest: &Digest,
        format: ObjectFormat,
        bytes: u64,
        durability: Durability,
    ) -> Result<()> {
        match durability {
            Durability::Now => {
                temp.as_file()
                    .sync_all()
                    .map_err(Error::io("fsync", temp.path()))?;
                self.publisher
                    .publish(temp.into_temp_path(), digest, format)
            }
            Durability::Batched => {
                let full = {
                    let mut pending = self
                        .pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if pending.digests.insert(*digest, format).is_none() {
                        pending
                            .objects
                            .push((temp.into_temp_path(), *digest, format));
                        pending.bytes += bytes;
                    }
                    pending.objects.len() >= PENDING_MAX_OBJECTS
                        || pending.bytes >= PENDING_MAX_BYTES
                };
                if full {
                    self.commit_batch(false)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Makes every batched object durable and visible: one `syncfs` of the store's file system (the data of every
    /// temp file reaches the disk, as a per-file fsync would ensure, at the cost of one journal commit instead of
    /// one per file), then the no-clobber renames in write order, then an fsync of each directory that changed.
    pub fn commit_pending(&self) -> Result<()> {
        self.commit_batch(true)
    }

    /// Commits the current batch. A batch that merely filled up (`last` false) is committed by a background
    /// thread while ingest goes on writing the next one (its `syncfs` waits for the disk, which would otherwise
    /// idle one ingest thread); the next commit first waits for it, so batches are published in the order they
    /// were taken, and at most two batches are ever unpublished. A full batch skips the directory fsyncs: the next
    /// batch's `syncfs` makes its renames durable before any later rename happens (so children still land before
    /// the nodes naming them), and the last batch's commit makes every directory touched since durable. That is one
    /// directory sync per add instead of one per shard directory per batch.
    fn commit_batch(&self, last: bool) -> Result<()> {
        let _commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let committed = self.commit_taken(batch, last);
        if last {
            committed.and_then(|()| self.flush())
        } else {
            committed
        }
    }

    /// Publishes a batch taken from `pending`: now when `last`, else in the background.
    fn commit_taken(&self, batch: Pending, last: bool) -> Result<()> {
        // A failed earlier batch may have left children unpublished: this batch (which may name them) is dropped,
        // its temp files removed, and the error reported, as a failed rename in a synchronous commit would.
        self.finish_in_flight()?;
        if batch.objects.is_empty() && batch.pack.is_none() {
            return Ok(());
        }
        if last {
            return self.publisher.commit(batch.objects, batch.pack);
        }
        let publisher = Arc::clone(&self.publisher);
        let (objects, pack) = (batch.objects, batch.pack);
        let done = std::thread::Builder::new()
            .name("hstore-commit".into())
            .spawn(move || publisher.commit(objects, pack))
            .map_err(Error::io("start a commit thread for", self.layout.tmp()))?;
        // Only now: a batch whose thread did not start is dropped, and must not be taken as stored.
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.digests = batch.digests;
        in_flight.done = Some(done);
        Ok(())
    }

    /// Waits for the batch being committed in the background, if any.
    fn finish_in_flight(&self) -> Result<()> {
        let done = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .done
            .take();
        let result = match done {
            None => Ok(()),
            Some(done) => done.join().unwrap_or_else(|_| {
                Err(Error::io("commit objects from", self.layout.tmp())(
                    io::Error::other("the commit thread panicked"),
                ))
            }),
        };
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .digests
            .clear();
        result
    }

    fn mark_dirty(&self, dir: PathBuf) {
        self.publisher.mark_dirty(dir);
    }

    /// Makes every directory that gained an entry since the last flush durable, so renames survive a power loss:
    /// an fsync of each, or one `syncfs` when there are many. Called on drop; call it explicitly to see errors.
    pub fn flush(&self) -> Result<()> {
        let dirs = match self.publisher.dirty_dirs.lock() {
            Ok(mut dirty) => std::mem::take(&mut *dirty),
            Err(_) => return Ok(()),
        };
        if dirs.len() > FSYNC_DIRS_MAX {
            return sync_file_system(&self.layout.tmp());
        }
        for dir in dirs {
            File::open(&dir)
                .and_then(|handle| handle.sync_all())
                .map_err(Error::io("fsync", &dir))?;
        }
        Ok(())
    }

    /// `bytes` in a synced temp file of the store, with `path`'s parent created (and marked for the batch's directory
    /// fsync): what both atomic writers below rename or link into place.
    fn synced_temp_for(&self, path: &Path, bytes: &[u8]) -> Result<NamedTempFile> {
        let mut temp = self.temp_file()?;
        temp.write_all(bytes)
            .map_err(Error::io("write", temp.path()))?;
        temp.as_file()
            .sync_all()
            .map_err(Error::io("fsync", temp.path()))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
            self.mark_dirty(parent.to_path_buf());
        }
        Ok(temp)
    }

    /// Writes a small file atomically (temp, fsync, rename; replaces an existing file).
    pub fn write_file_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let temp = self.synced_temp_for(path, bytes)?;
        temp.persist(path)
            .map_err(|error| Error::io("rename into place", path)(error.error))?;
        Ok(())
    }

    /// Writes a small file atomically unless `path` exists; returns whether it was written. The complete temp file
    /// is hard-linked into place (which fails if the name exists), so no reader sees a partial file and no writer
    /// replaces another's.
    pub fn write_file_new(&self, path: &Path, bytes: &[u8]) -> Result<bool> {
        let temp = self.synced_temp_for(path, bytes)?;
        match temp.persist_noclobber(path) {
            Ok(_) => Ok(true),
            Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(Error::io("link into place", path)(error.error)),
        }
    }

    /// Whether `digest` and everything below it are in the store: the closure check `fetch` relies on (a root
    /// whose tree lost a blob to `verify --repair` is not complete). Walks iteratively, each node once.
    pub fn closure_complete(&self, digest: &Digest) -> Result<bool> {
        Ok(self.first_missing_in_closure(digest)?.is_none())
    }

    /// The first object missing below (or at) `digest`, if any.
    pub fn first_missing_in_closure(&self, digest: &Digest) -> Result<Option<Digest>> {
        let mut seen = HashSet::new();
        let mut pending = vec![*digest];
        while let Some(digest) = pending.pop() {
            if !seen.insert(digest) {
                continue;
            }
            match self.object_format(&digest)? {
                None => return Ok(Some(digest)),
                Some(ObjectFormat::Directory) => {
                    for (_, node) in self.directory(&digest)?.entries() {
                        match node {
                            crate::tree::Node::File { digest, .. }
                            | crate::tree::Node::Directory { digest, .. } => pending.push(*digest),
                            crate::tree::Node::Symlink { .. } => {}
                        }
                    }
                }
                Some(ObjectFormat::RawBlob | ObjectFormat::ZstdBlob) => {}
            }
        }
        Ok(None)
    }

    /// The byte length of a stored blob (from the file, or the zstd frame header); `Ok(None)` if absent.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.locate(digest)? {
            Some((ObjectFormat::RawBlob, location)) => Ok(Some(
                location
                    .stored_len()
                    .map_err(Error::io("stat", location.path()))?,
            )),
            Some((ObjectFormat::ZstdBlob, location)) => {
                Self::zstd_content_size(digest, &location).map(Some)
            }
            Some((ObjectFormat::Directory, _)) | None => Ok(None),
        }
    }

    /// How `digest` is stored, if it is a blob in this store.
    pub fn blob_format(&self, digest: &Digest) -> Result<Option<ObjectFormat>> {
        Ok(self
            .locate(digest)?
            .map(|(format, _)| format)
            .filter(|format| format.is_blob()))
    }

    /// Whether the store holds `digest`, and how.
    pub fn object_format(&self, digest: &Digest) -> Result<Option<ObjectFormat>> {
        Ok(self.locate(digest)?.map(|(format, _)| format))
    }

    /// Opens object `digest`'s stored bytes (compressed as stored, for copying to a bundle or a cache); `Ok(None)`
    /// if it is not stored.
    pub fn open_stored(&self, digest: &Digest) -> Result<Option<StoredObject>> {
        let Some((format, location, file, len)) = self.open_object(digest)? else {
            return Ok(None);
        };
        Ok(Some(StoredObject {
            format,
            path: location.path().to_path_buf(),
            len,
            reader: file.take(len),
        }))
    }

    /// Locates and opens object `digest`: its format, where it is, the file positioned at its first stored byte,
    /// and its stored length. A file that vanished since it was located (a gc or repair in another process, which
    /// a read-only reader does not lock out, removed the object or rewrote its pack) makes it look once more, so
    /// such a reader sees the object where it now is, or a clean `None`.
    fn open_object(&self, digest: &Digest) -> Result<Option<(ObjectFormat, Location, File, u64)>> {
        let mut looked_again = false;
        loop {
            let Some((format, location)) = self.locate(digest)? else {
                return Ok(None);
            };
            match location.open() {
                Ok((file, len)) => return Ok(Some((format, location, file, len))),
                Err(error) if error.kind() == io::ErrorKind::NotFound && !looked_again => {
                    looked_again = true;
                    self.packs_mut().clear();
                }
                Err(error) => return Err(Error::io("open", location.path())(error)),
            }
        }
    }

    /// The file holding object `digest` (its own, or its pack), for messages; the objects directory if absent.
    pub fn object_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self.locate(digest)?.map_or_else(
            || self.layout.objects(),
            |(_, location)| location.path().to_path_buf(),
        ))
    }

    /// Opens a blob for streaming reads; `Ok(None)` if it is not stored.
    pub fn open_blob(&self, digest: &Digest) -> Result<Option<BlobReader>> {
        let Some((format, location, file, len)) = self.open_object(digest)? else {
            return Ok(None);
        };
        if format == ObjectFormat::Directory {
            return Err(Error::WrongKind {
                digest: *digest,
                expected: "blob",
                found: "tree",
            });
        }
        let path = location.path();
        let stored = BufReader::with_capacity(BUFFER_SIZE.min(len as usize + 1), file.take(len));
        if format == ObjectFormat::RawBlob {
            Ok(Some(BlobReader {
                reader: Box::new(stored),
                size: len,
            }))
        } else {
            let size =
                Self::zstd_content_size_in(digest, &location, stored.get_ref().get_ref(), len)?;
            let decoder = zstd::stream::Decoder::with_buffer(stored)
                .map_err(Error::io("decompress", path))?;
            Ok(Some(BlobReader {
                reader: Box::new(decoder),
                size,
            }))
        }
    }

    /// The decompressed size a zstd object's frame headers record (or counted, if one of them does not).
    pub(crate) fn zstd_content_size(digest: &Digest, location: &Location) -> Result<u64> {
        let (file, len) = location
            .open()
            .map_err(Error::io("open", location.path()))?;
        Self::zstd_content_size_in(digest, location, &file, len)
    }

    /// [`Store::zstd_content_size`] from the object's file the caller has open (`len` stored bytes at the
    /// location's start). Positioned reads only: the file's offset is left where it is.
    pub(crate) fn zstd_content_size_in(
        digest: &Digest,
        location: &Location,
        file: &File,
        len: u64,
    ) -> Result<u64> {
        let path = location.path();
        match crate::frames::content_size(file, location.start(), len) {
            Ok(Some(size)) => Ok(size),
            Ok(None) => {
                // Written from a reader of unknown length: count by decompressing from the start, through a file
                // of its own (the caller's stays where it is).
                let (file, len) = location.open().map_err(Error::io("open", path))?;
                let mut decoder = zstd::stream::Decoder::new(file.take(len))
                    .map_err(Error::io("decompress", path))?;
                io::copy(&mut decoder, &mut io::sink()).map_err(Error::io("decompress", path))
            }
            Err(error) => Err(Error::CorruptObject {
                digest: *digest,
                path: path.to_path_buf(),
                reason: error.to_string(),
            }),
        }
    }

    /// Reads a whole blob into memory (for small objects such as lockfiles and records).
    pub fn read_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let Some(mut blob) = self.open_blob(digest)? else {
            return Ok(None);
        };
        let mut bytes =
            Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0).min(BUFFER_SIZE));
        if let Err(error) = blob.reader.read_to_end(&mut bytes) {
            return Err(Error::io("read", self.object_path(digest)?)(error));
        }
        Ok(Some(bytes))
    }

    /// Reads and decodes a directory node; `Ok(None)` if it is not stored.
    pub fn get_directory(&self, digest: &Digest) -> Result<Option<Directory>> {
        let (location, file, len) = match self.open_object(digest)? {
            None => return Ok(None),
            Some((ObjectFormat::Directory, location, file, len)) => (location, file, len),
            Some(_) => {
                return Err(Error::WrongKind {
                    digest: *digest,
                    expected: "tree",
                    found: "blob",
                });
            }
        };
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(BUFFER_SIZE));
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", location.path()))?;
        let directory = Directory::decode(&bytes).map_err(|source| Error::MalformedDirectory {
            digest: *digest,
            source,
        })?;
        Ok(Some(directory))
    }

    /// Like [`Store::get_directory`], but a missing node is an error.
    pub fn directory(&self, digest: &Digest) -> Result<Directory> {
        self.get_directory(digest)?
            .ok_or(Error::MissingObject { digest: *digest })
    }

    /// Like [`Store::open_blob`], but a missing blob is an error.
    pub fn blob(&self, digest: &Digest) -> Result<BlobReader> {
        self.open_blob(digest)?
            .ok_or(Error::MissingObject { digest: *digest })
    }

    /// Every object in the store, sorted by address, each once. Unknown files (never written by us) are skipped.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        let mut objects: Vec<ObjectInfo> = Vec::new();
        for copy in self.object_copies()? {
            if objects
                .last()
                .is_some_and(|last| (last.digest, last.format) == (copy.digest, copy.format))
            {
                continue;
            }
            let size = match copy.format {
                ObjectFormat::RawBlob => copy
                    .location
                    .stored_len()
                    .map_err(Error::io("stat", copy.location.path()))?,
                ObjectFormat::ZstdBlob => Self::zstd_content_size(&copy.digest, &copy.location)?,
                ObjectFormat::Directory => match self.get_directory(&copy.digest) {
                    Ok(Some(directory)) => directory.total_size(),
                    _ => 0,
                },
            };
            objects.push(ObjectInfo {
                digest: copy.digest,
                format: copy.format,
                size,
            });
        }
        Ok(objects)
    }

    /// Every stored copy of every object, loose or packed, sorted by address (an object may be in more than one
    /// pack, when concurrent adds both stored it). Packs whose index cannot be read are in `unreadable_packs`.
    pub fn object_copies(&self) -> Result<Vec<ObjectCopy>> {
        Ok(self.scan_objects()?.copies)
    }

    /// [`Store::object_copies`], and the packs that could not be read, with why.
    pub(crate) fn scan_objects(&self) -> Result<ObjectScan> {
        let dir = self.layout.packs();
        let mut read = Vec::new();
        let mut unreadable = Vec::new();
        for (pack, name) in crate::pack::list(&dir).map_err(Error::io("list", &dir))? {
            match crate::pack::read_index(&pack) {
                Ok(entries) => read.push((pack, name, entries)),
                Err(error) => unreadable.push((pack, error.to_string())),
            }
        }
        // What the lookups after a scan (verify's second pass, gc's walk from the roots) need, already read.
        self.packs_mut().insert_listed(&read);
        let mut found = Vec::new();
        for (pack, _, entries) in read {
            found.extend(entries.into_iter().map(|entry| ObjectCopy {
                digest: entry.digest,
                format: entry.format,
                location: Location::Packed {
                    pack: pack.clone(),
                    offset: entry.offset,
                    len: entry.len,
                },
            }));
        }
        let objects_dir = self.layout.objects();
        for shard in fs::read_dir(&objects_dir).map_err(Error::io("list", &objects_dir))? {
            let shard = shard.map_err(Error::io("list", &objects_dir))?;
            let shard_path = shard.path();
            if !shard_path.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard_path).map_err(Error::io("list", &shard_path))? {
                let entry = entry.map_err(Error::io("list", &shard_path))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some((hex_digits, suffix)) = name.split_once('.') else {
                    continue;
                };
                let (Ok(digest), Some(format)) = (
                    Digest::from_hex(hex_digits),
                    ObjectFormat::from_suffix(suffix),
                ) else {
                    continue;
                };
                found.push(ObjectCopy {
                    digest,
                    format,
                    location: Location::Loose(entry.path()),
                });
            }
        }
        found.sort_by_key(|copy| (copy.digest, copy.format));
        Ok(ObjectScan {
            copies: found,
            unreadable_packs: unreadable,
        })
    }

    /// Replaces the pack at `path` by one without the objects stored at the offsets in `dropped` (none left: the
    /// pack is removed), written and made durable before the old one goes, so a kept object is present at every
    /// moment. For gc and repair, which hold the store lock exclusively or remove only what is corrupt.
    pub(crate) fn drop_from_pack(&self, path: &Path, dropped: &HashSet<u64>) -> Result<()> {
        let entries = crate::pack::read_index(path).map_err(|error| Error::CorruptPack {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let keep = |entry: &PackEntry| !dropped.contains(&entry.offset);
        if entries.iter().all(keep) {
            return Ok(());
        }
        crate::pack::rewrite(
            path,
            &entries,
            &keep,
            &self.layout.tmp(),
            &self.layout.packs(),
        )
        .map_err(Error::io("rewrite", path))?;
        self.remove_pack(path)
    }

    /// Removes a pack file (the caller saw to what it held), and forgets what this process knew of packs.
    pub(crate) fn remove_pack(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io("remove", path)(error));
            }
            _ => {}
        }
        self.mark_dirty(self.layout.packs());
        self.objects_removed();
        Ok(())
    }

    /// Removes every copy of `digest`, loose or packed, as a gc or repair in another process would: for tests that
    /// need an object gone behind the store's back.
    #[cfg(test)]
    pub(crate) fn remove_every_copy(&self, digest: &Digest) {
        for copy in self.object_copies().expect("list objects") {
            if copy.digest != *digest {
                continue;
            }
            match copy.location {
                Location::Loose(path) => fs::remove_file(path).expect("remove object"),
                Location::Packed { pack, offset, .. } => self
                    .drop_from_pack(&pack, &HashSet::from([offset]))
                    .expect("rewrite pack"),
            }
        }
    }

    /// Every file in `packs-v1/` named like a pack, sorted.
    #[cfg(test)]
    pub(crate) fn pack_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.layout.packs();
        let packs = crate::pack::list(&dir).map_err(Error::io("list", &dir))?;
        Ok(packs.into_iter().map(|(path, _)| path).collect())
    }
}

/// What [`Store::scan_objects`] found.
pub(crate) struct ObjectScan {
    /// Every stored copy, sorted by address.
    pub copies: Vec<ObjectCopy>,
    /// Packs whose index cannot be read, with why.
    pub unreadable_packs: Vec<(PathBuf, String)>,
}

/// One stored copy of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCopy {
    /// Its address.
    pub digest: Digest,
    /// How it is stored.
    pub format: ObjectFormat,
    /// Where.
    pub location: Location,
}

/// An object's stored bytes, open for reading (see [`Store::open_stored`]).
pub struct StoredObject {
    /// How it is stored.
    pub format: ObjectFormat,
    /// The file holding it (a pack or its own file), for errors.
    pub path: PathBuf,
    /// Its stored length.
    pub len: u64,
    /// Exactly its stored bytes.
    pub reader: io::Take<File>,
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

impl Publisher {
    /// One `syncfs` of the store's file system (the data of every temp file reaches the disk, as a per-file fsync
    /// would ensure, at the cost of one journal commit instead of one per file), then the no-clobber renames in
    /// write order.
    ///
    /// The batch's pack goes last: its directory nodes may name the batch's loose blobs, never the other way round.
    fn commit(
        &self,
        objects: Vec<(TempPath, Digest, ObjectFormat)>,
        pack: Option<PackWriter>,
    ) -> Result<()> {
        let pack = match pack {
            None => None,
            Some(writer) => {
                let path = writer.path().to_path_buf();
                Some(writer.finish().map_err(Error::io("write", &path))?)
            }
        };
        sync_file_system(&self.layout.tmp())?;
        for (temp, digest, format) in objects {
            self.publish(temp, &digest, format)?;
        }
        if let Some(pack) = pack {
            let dir = self.layout.packs();
            let target = dir.join(&pack.name);
            match pack.temp.persist_noclobber(&target) {
                Ok(()) => {}
                // The same objects at the same places: that pack is this one.
                Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(Error::io("rename into place", &target)(error.error)),
            }
            self.mark_dirty(dir);
            self.packs
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(target, pack.name, &pack.entries);
        }
        Ok(())
    }

    /// Renames a durable temp file to the object's place without clobbering. Losing a race to an identical object
    /// is success: both have the same bytes.
    fn publish(&self, temp: TempPath, digest: &Digest, format: ObjectFormat) -> Result<()> {
        let shard = self.layout.shard(digest);
        let shard_index = usize::from(digest.as_bytes()[0]);
        if !self.shards_ready[shard_index].load(Ordering::Relaxed) {
            fs::create_dir_all(&shard).map_err(Error::io("create directory", &shard))?;
            self.shards_ready[shard_index].store(true, Ordering::Relaxed);
        }
        let target = self.layout.object(digest, format);
        match temp.persist_noclobber(&target) {
            Ok(()) => {}
            Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(Error::io("rename into place", &target)(error.error)),
        }
        if self.shard_state[shard_index].load(Ordering::Relaxed) != SHARD_EXISTING {
            self.published
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(*digest, format);
        }
        self.mark_dirty(shard);
        Ok(())
    }

    /// Whether `digest`'s shard directory was missing when this process first looked (looking once per shard).
    fn is_fresh(&self, digest: &Digest) -> bool {
        let state = &self.shard_state[usize::from(digest.as_bytes()[0])];
        match state.load(Ordering::Relaxed) {
            SHARD_FRESH => true,
            SHARD_EXISTING => false,
            _ => {
                let missing = matches!(
                    fs::symlink_metadata(self.layout.shard(digest)),
                    Err(error) if error.kind() == io::ErrorKind::NotFound
                );
                let seen = if missing { SHARD_FRESH } else { SHARD_EXISTING };
                // The first look wins; a later one may already see what this process published.
                let _ = state.compare_exchange(
                    SHARD_UNKNOWN,
                    seen,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                state.load(Ordering::Relaxed) == SHARD_FRESH
            }
        }
    }

    /// Forgets what was published: objects were removed through this handle (gc, repair), so every shard is
    /// probed on disk from now on.
    fn forget_published(&self) {
        for state in &self.shard_state {
            state.store(SHARD_EXISTING, Ordering::Relaxed);
        }
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How this process published `digest` into a fresh shard, if it did.
    fn published_format(&self, digest: &Digest) -> Option<ObjectFormat> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .copied()
    }

    fn mark_dirty(&self, dir: PathBuf) {
        if let Ok(mut dirty) = self.dirty_dirs.lock() {
            dirty.insert(dir);
        }
    }
}

/// `syncfs` of the file system holding `dir`.
fn sync_file_system(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(Error::io("open", dir))?;
    nix::unistd::syncfs(&handle)
        .map_err(|errno| Error::io("sync the file system of", dir)(io::Error::from(errno)))
}

thread_local! {
    /// Streaming buffers kept per thread: a tree of 50 000 small files should not zero 50 000 fresh megabytes.
    static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// One zstd context per thread (and level) for blobs that fit in the buffer.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// A [`BUFFER_SIZE`] buffer; taken out of the thread's pool (not borrowed) because rayon may run another ingest
/// task on this thread while this one waits.
fn take_buffer() -> Vec<u8> {
    BUFFERS
        .with(|buffers| buffers.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; BUFFER_SIZE])
}

fn give_back_buffer(buffer: Vec<u8>) {
    BUFFERS.with(|buffers| {
        let mut buffers = buffers.borrow_mut();
        if buffers.len() < 2 {
            buffers.push(buffer);
        }
    });
}

/// Frame buffers for large blobs, process-wide: two frames compressed (one per core on this project's 2-core
/// machines) while two are written out and refilled. Each holds a frame's input and output (about 8 MiB), so a
/// lone large add peaks at ~38 MB RSS (the goal is 64 MB). Measured on a 2 GB file, 5 runs each: 3.9–4.7 s (old
/// zstdmt stream: 4.0–4.5 s; four frames read, compressed, then written in turn: 4.1–5.7 s).
const FRAME_BUFFERS: usize = 4;

/// Frame buffers of the process: those lent to writers, and those kept for reuse (a fresh 4 MiB buffer costs a page
/// fault per 4 KiB on first use). Process-wide, not per thread: rayon may run another blob's frames on a thread
/// that is waiting for its own.
static FRAME_POOL: Mutex<FramePool> = Mutex::new(FramePool {
    free: Vec::new(),
    lent: 0,
});

struct FramePool {
    free: Vec<FrameBuffers>,
    lent: usize,
}

/// The input and output of one frame being compressed.
struct FrameBuffers {
    input: Vec<u8>,
    len: usize,
    output: Vec<u8>,
}

impl FrameBuffers {
    /// Buffers for up to `wanted` frames: what is left of [`FRAME_BUFFERS`] process-wide, but at
    /// least one. So when a tree's rayon threads write large files at once, they share the four instead of each
    /// taking four (the frames are the same whatever the count; only the parallelism within one file changes).
    fn take(wanted: usize) -> Vec<Self> {
        let mut pool = FRAME_POOL.lock().unwrap_or_else(PoisonError::into_inner);
        let count = wanted.min(FRAME_BUFFERS.saturating_sub(pool.lent)).max(1);
        pool.lent += count;
        let reused = pool.free.len().min(count);
        let start = pool.free.len() - reused;
        let mut slots: Vec<Self> = pool.free.drain(start..).collect();
        drop(pool);
        slots.resize_with(count, || FrameBuffers {
            input: vec![0u8; FRAME_SIZE],
            len: 0,
            output: Vec::with_capacity(zstd::zstd_safe::compress_bound(FRAME_SIZE)),
        });
        slots
    }

    /// Returns buffers from [`FrameBuffers::take`]; at most [`FRAME_BUFFERS`] are kept.
    fn give_back(slots: Vec<Self>) {
        let mut pool = FRAME_POOL.lock().unwrap_or_else(PoisonError::into_inner);
        pool.lent -= slots.len();
        let room = FRAME_BUFFERS.saturating_sub(pool.free.len());
        pool.free.extend(slots.into_iter().take(room));
    }
}

/// Reads the next frames into `slots`, in order; returns how many were filled and whether the reader is done.
fn fill_round(
    slots: &mut [FrameBuffers],
    reader: &mut dyn Read,
    total: &mut u64,
) -> io::Result<(usize, bool)> {
    for (filled, slot) in slots.iter_mut().enumerate() {
        slot.len = read_full(reader, &mut slot.input)?;
        *total += slot.len as u64;
        if slot.len < FRAME_SIZE {
            return Ok((filled + usize::from(slot.len > 0), true));
        }
    }
    Ok((slots.len(), false))
}

/// Hashes the frames of `round` in order while compressing them in parallel, each into its own output.
fn compress_round(
    round: &mut [FrameBuffers],
    hasher: &mut blake3::Hasher,
    level: i32,
) -> io::Result<()> {
    let (inputs, outputs): (Vec<&[u8]>, Vec<&mut Vec<u8>>) = round
        .iter_mut()
        .map(|slot| (&slot.input[..slot.len], &mut slot.output))
        .unzip();
    let ((), compressed) = rayon::join(
        || inputs.iter().for_each(|input| hash_chunk(hasher, input)),
        || {
            inputs
                .par_iter()
                .zip(outputs)
                .try_for_each(|(input, output)| compress_frame_into(input, level, output))
        },
    );
    compressed
}

/// Writes the compressed frames of `round`, in order.
fn write_round(file: &mut File, round: &[FrameBuffers]) -> io::Result<()> {
    let from = file.stream_position()?;
    let mut written = 0;
    for slot in round {
        file.write_all(&slot.output)?;
        written += slot.output.len() as u64;
    }
    crate::pack::start_writeback(file, from, written);
    Ok(())
}

/// Feeds a chunk to the hasher, using blake3's own parallelism for large chunks.
fn hash_chunk(hasher: &mut blake3::Hasher, chunk: &[u8]) {
    if chunk.len() >= BUFFER_SIZE / 2 {
        hasher.update_rayon(chunk);
    } else {
        hasher.update(chunk);
    }
}

/// Compresses `bytes` as one frame (with its content size) into `out`, replacing its contents, with the thread's
/// reusable context.
fn compress_frame_into(bytes: &[u8], level: i32, out: &mut Vec<u8>) -> io::Result<()> {
    let cached = COMPRESSOR.with(|cell| cell.borrow_mut().take());
    let mut compressor = match cached {
        Some((cached_level, compressor)) if cached_level == level => compressor,
        _ => zstd::bulk::Compressor::new(level)?,
    };
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(bytes.len()));
    let result = compressor.compress_to_buffer(bytes, out).map(|_| ());
    COMPRESSOR.with(|cell| *cell.borrow_mut() = Some((level, compressor)));
    result
}

/// One zstd frame (with its content size) of `bytes`, using the thread's reusable context.
fn compress_whole(bytes: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut frame = Vec::new();
    compress_frame_into(bytes, level, &mut frame)?;
    Ok(frame)
}

/// Whether a zstd frame of `compressed` bytes saves enough over `original` bytes (3%) to be worth decompressing on
/// every read; incompressible data (random, encrypted, packed formats we do not recognize) is stored raw.
fn worth_compressing(compressed: usize, original: usize) -> bool {
    compressed.saturating_mul(100) <= original.saturating_mul(97)
}

/// Reads until `buffer` is full or the reader is exhausted; returns the bytes read.
pub(crate) fn read_full(reader: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_formats_are_detected() {
        assert!(is_already_compressed(b"\x1f\x8b\x08\x00"));
        assert!(is_already_compressed(b"PK\x03\x04rest"));
        assert!(!is_already_compressed(b"fn main() {}"));
    }

    #[test]
    fn blob_round_trip_raw_and_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let text = b"hello world, hello world, hello world, hello world, hello world, hello world, hello world!!"
            .repeat(10);
        let digest = store.add_bytes(&text).unwrap();
        assert_eq!(digest, Digest::of_bytes(&text));
        assert_eq!(
            store.blob_format(&digest).unwrap(),
            Some(ObjectFormat::ZstdBlob)
        );
        assert_eq!(store.read_blob(&digest).unwrap().unwrap(), text);

        let gz = b"\x1f\x8b\x08\x00 pretend gzip body that is long enough to be compressed otherwise......"
            .repeat(3);
        let digest = store.add_bytes(&gz).unwrap();
        assert_eq!(
            store.blob_format(&digest).unwrap(),
            Some(ObjectFormat::RawBlob)
        );
        let listed = store.list_objects().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|o| o.size == text.len() as u64));
    }

    /// Compressible text of `len` bytes whose lines all differ (so zstd cannot fold it into a few blocks).
    fn numbered_lines(len: usize) -> Vec<u8> {
        let mut text = Vec::with_capacity(len + 64);
        let mut line = 0u64;
        while text.len() < len {
            text.extend_from_slice(
                format!("line {line} of a large compressible blob\n").as_bytes(),
            );
            line += 1;
        }
        text.truncate(len);
        text
    }

    /// A large blob is stored as 4 MiB frames, the same bytes whichever way it comes in, read back whole, dumped
    /// frame by frame, and a missing or cut frame is reported, not read as a shorter file.
    #[test]
    fn a_large_blob_is_stored_as_frames_the_same_way_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let text = numbered_lines(2 * FRAME_SIZE + (1 << 20) + 3);
        let digest = Digest::of_bytes(&text);

        let known = Store::open(dir.path().join("known")).unwrap();
        let (added, size) = known
            .add_blob_reader(
                &mut &text[..],
                Some(text.len() as u64),
                None,
                Path::new("x"),
            )
            .unwrap();
        assert_eq!((added, size), (digest, text.len() as u64));
        let unknown = Store::open(dir.path().join("unknown")).unwrap();
        unknown
            .add_blob_reader(&mut &text[..], None, None, Path::new("x"))
            .unwrap();
        let batched = Store::open(dir.path().join("batched")).unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("big.txt"), &text).unwrap();
        let root = batched.add_path(&tree).unwrap().digest();

        let object = |store: &Store| store.layout().object(&digest, ObjectFormat::ZstdBlob);
        let stored = fs::read(object(&known)).unwrap();
        assert!(
            fs::read(object(&unknown)).unwrap() == stored,
            "unknown size"
        );
        assert!(fs::read(object(&batched)).unwrap() == stored, "batched");
        let frames_of = |path: &Path| {
            let file = File::open(path).unwrap();
            let stored = file.metadata().unwrap().len();
            crate::frames::frames(&file, 0, stored).unwrap().unwrap()
        };
        let frames = frames_of(&object(&known));
        let contents: Vec<u64> = frames.iter().map(|frame| frame.content).collect();
        let frame = FRAME_SIZE as u64;
        assert_eq!(contents, [frame, frame, (1 << 20) + 3]);
        assert!(
            stored.len() < text.len() / 4,
            "{} bytes stored",
            stored.len()
        );

        assert_eq!(known.blob_size(&digest).unwrap(), Some(text.len() as u64));
        assert!(
            known.read_blob(&digest).unwrap().unwrap() == text,
            "read back"
        );
        let mut nar = Vec::new();
        known.dump_nar(&digest, &mut nar).unwrap();
        // The contents, their padding to 8 bytes, then the closing token (a u64 length and ")" padded to 8).
        let end = nar.len() - 16 - 5;
        assert!(nar[end - text.len()..end] == text[..], "dump differs");
        assert!(known.verify(false).unwrap().problems.is_empty());

        // A blob of whole frames ends with a full frame: no empty one after it.
        let whole = &text[..2 * FRAME_SIZE];
        let (digest_whole, _) = unknown
            .add_blob_reader(&mut &whole[..], None, None, Path::new("whole"))
            .unwrap();
        let frames_whole = frames_of(
            &unknown
                .layout()
                .object(&digest_whole, ObjectFormat::ZstdBlob),
        );
        assert_eq!(frames_whole.len(), 2);
        assert!(
            unknown.read_blob(&digest_whole).unwrap().unwrap() == whole,
            "whole frames"
        );

        // Without its last frame, and then cut inside a frame: the tree records the size, so a dump of it fails
        // naming the object (a lone blob's size comes from the object itself, as a raw blob's does: verify finds
        // both).
        let last = frames.last().unwrap().offset;
        for cut in [last, last + 100] {
            let path = object(&batched);
            let mut permissions = fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
            fs::set_permissions(&path, permissions).unwrap();
            fs::write(&path, &stored[..usize::try_from(cut).unwrap()]).unwrap();
            let error = batched.dump_nar(&root, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(&error, Error::CorruptObject { path: named, .. } if *named == path),
                "cut at {cut}: {error}"
            );
            let report = batched.verify(false).unwrap();
            assert_eq!(report.problems.len(), 1, "cut at {cut}");
        }
    }

    #[test]
    fn expected_digest_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut reader = &b"some bytes"[..];
        let error = store
            .add_blob_reader(
                &mut reader,
                Some(10),
                Some(Digest::of_bytes(b"other")),
                Path::new("x"),
            )
            .unwrap_err();
        assert!(matches!(error, Error::DigestMismatch { .. }));
        assert!(store.list_objects().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.layout().tmp()).unwrap().count(), 0);
    }

    #[test]
    fn a_foreign_directory_is_not_made_a_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let error = Store::open(dir.path()).unwrap_err();
        assert!(matches!(error, Error::NotAStore { .. }), "{error}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn closure_check_sees_a_missing_blob_below_a_present_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/file"), "content").unwrap();
        let root = store.add_path(&tree).unwrap().digest();
        assert!(store.closure_complete(&root).unwrap());
        let blob = Digest::of_bytes(b"content");
        store.remove_every_copy(&blob);
        assert!(store.object_format(&root).unwrap().is_some());
        assert_eq!(store.first_missing_in_closure(&root).unwrap(), Some(blob));
    }

    #[test]
    fn put_meta_if_absent_keeps_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.put_meta_if_absent("build", "k", &1).unwrap());
        assert!(!store.put_meta_if_absent("build", "k", &2).unwrap());
        assert_eq!(store.get_meta::<u32>("build", "k").unwrap(), Some(1));
        assert_eq!(fs::read_dir(store.layout().tmp()).unwrap().count(), 0);
    }

    fn small_tree(root: &Path) {
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a"), "alpha\n".repeat(50)).unwrap();
        fs::write(root.join("sub/b"), "beta").unwrap();
    }

    /// A store in `dir` holding [`small_tree`], added: the tree's path, the store and the tree's address.
    fn store_with_small_tree(dir: &Path) -> (PathBuf, Store, Digest) {
        let tree = dir.join("tree");
        small_tree(&tree);
        let store = Store::open(dir.join("store")).unwrap();
        let root = store.add_path(&tree).unwrap().digest();
        (tree, store, root)
    }

    #[test]
    fn a_tree_add_packs_its_small_objects_and_another_handle_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        small_tree(&tree);
        let reader = Store::open(dir.path().join("store")).unwrap();
        // The reader has read `packs-v1/` (empty) before the writer adds anything.
        assert_eq!(
            reader.object_format(&Digest::of_bytes(b"beta")).unwrap(),
            None
        );
        let writer = Store::open(dir.path().join("store")).unwrap();
        let root = writer.add_path(&tree).unwrap().digest();
        assert_eq!(writer.pack_files().unwrap().len(), 1);
        assert!(
            fs::read_dir(writer.layout().objects())
                .unwrap()
                .next()
                .is_none(),
            "nothing loose"
        );
        // A miss reads the packs directory again.
        assert_eq!(
            reader.object_format(&root).unwrap(),
            Some(ObjectFormat::Directory)
        );
        assert_eq!(
            reader
                .read_blob(&Digest::of_bytes(b"beta"))
                .unwrap()
                .unwrap(),
            b"beta"
        );
        assert_eq!(
            reader
                .blob_size(&Digest::of_bytes("alpha\n".repeat(50).as_bytes()))
                .unwrap(),
            Some(300)
        );
        assert!(reader.closure_complete(&root).unwrap());
    }

    #[test]
    fn a_v1_store_is_marked_v2_when_opened_for_writing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        drop(Store::open(&root).unwrap());
        fs::write(root.join("VERSION"), STORE_VERSION_V1).unwrap();
        fs::remove_dir(root.join(PACKS_DIR)).unwrap();
        let store = Store::open(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("VERSION")).unwrap(),
            STORE_VERSION
        );
        assert!(root.join(PACKS_DIR).is_dir());
        drop(store);
        fs::write(root.join("VERSION"), "hstore-store-v3\n").unwrap();
        assert!(matches!(
            Store::open(&root),
            Err(Error::IncompatibleStore { .. })
        ));
    }

    #[test]
    fn verify_reports_a_damaged_pack_and_repair_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, store, root) = store_with_small_tree(dir.path());
        let pack = store.pack_files().unwrap().remove(0);
        let mut bytes = fs::read(&pack).unwrap();
        let last = bytes.len() - 20;
        bytes[last] ^= 1;
        fs::write(&pack, &bytes).unwrap();
        drop(store);

        let store = Store::open(dir.path().join("store")).unwrap();
        // The pack's objects read as missing, not as wrong bytes.
        assert_eq!(store.object_format(&root).unwrap(), None);
        let report = store.verify(false).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(
            matches!(&report.problems[0], crate::verify::Problem::CorruptPack { path, .. } if *path == pack),
            "{:?}",
            report.problems
        );
        let report = store.verify(true).unwrap();
        assert_eq!(report.repaired, 1);
        assert!(store.pack_files().unwrap().is_empty());
        assert!(store.verify(false).unwrap().problems.is_empty());
        // Adding the tree again brings everything back.
        assert_eq!(store.add_path(&tree).unwrap().digest(), root);
        assert!(store.closure_complete(&root).unwrap());
    }

    #[test]
    fn repair_drops_a_damaged_packed_object_and_keeps_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let (_, store, root) = store_with_small_tree(dir.path());
        let alpha = Digest::of_bytes("alpha\n".repeat(50).as_bytes());
        let copy = store
            .object_copies()
            .unwrap()
            .into_iter()
            .find(|copy| copy.digest == alpha)
            .unwrap();
        let Location::Packed { pack, offset, len } = &copy.location else {
            panic!("{copy:?}");
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(pack)
            .unwrap();
        let mut byte = [0];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, offset + len / 2).unwrap();
        byte[0] ^= 0x40;
        std::os::unix::fs::FileExt::write_all_at(&file, &byte, offset + len / 2).unwrap();

        let report = store.verify(true).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(report.repaired, 1);
        assert_eq!(store.object_format(&alpha).unwrap(), None);
        assert_eq!(store.first_missing_in_closure(&root).unwrap(), Some(alpha));
        assert_eq!(
            store
                .read_blob(&Digest::of_bytes(b"beta"))
                .unwrap()
                .unwrap(),
            b"beta"
        );
        let after = store.verify(false).unwrap();
        assert!(
            after
                .problems
                .iter()
                .all(|problem| matches!(problem, crate::verify::Problem::MissingChild { .. })),
            "{:?}",
            after.problems
        );
    }

    #[test]
    fn every_object_is_stored_the_same_in_two_stores_whatever_the_packs_look_like() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for n in 0..300 {
            let sub = tree.join(format!("d{}", n % 7));
            fs::create_dir_all(&sub).unwrap();
            fs::write(
                sub.join(format!("f{n}")),
                format!("file {n}\n").repeat(n % 50 + 1),
            )
            .unwrap();
        }
        fs::write(tree.join("large"), numbered_lines(9 << 20)).unwrap();
        let stored = |name: &str| {
            let store = Store::open(dir.path().join(name)).unwrap();
            let root = store.add_path(&tree).unwrap().digest();
            let mut objects = Vec::new();
            for copy in store.object_copies().unwrap() {
                let mut bytes = Vec::new();
                store
                    .open_stored(&copy.digest)
                    .unwrap()
                    .unwrap()
                    .reader
                    .read_to_end(&mut bytes)
                    .unwrap();
                objects.push((copy.digest, copy.format, bytes));
            }
            (root, objects)
        };
        let (root_a, objects_a) = stored("a");
        let (root_b, objects_b) = stored("b");
        assert_eq!(root_a, root_b);
        assert_eq!(objects_a.len(), 300 + 7 + 1 + 1);
        assert!(
            objects_a == objects_b,
            "the same objects, stored byte for byte alike"
        );
    }
}
