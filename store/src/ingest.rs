//! Turning a file-system path into store objects: [`Store::add_path`] and [`Store::add_tree`].
//!
//! Three steps, none recursive (a tree may be deeper than any thread's stack): a breadth-first walk lists every
//! directory with the kind of each entry (from `readdir`, no stat); all files of the tree are stated once, hashed
//! and stored in parallel (rayon over the flat file list, so one huge directory or one deep chain balances as
//! well as a bushy tree; files over 4 MiB go last, largest first, see `store_files`); then the directory nodes
//! are built bottom-up. Only the owner-executable bit of a file is
//! recorded (as Nix does); symlinks are read, never followed; sockets, FIFOs and devices are refused with the path
//! named. [`Store::add_local_tree`] adds the stat cache and an access policy for directories the user keeps;
//! [`hash_tree`] computes the same address without writing anything, which `verify` uses to check materialized
//! trees.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::path_component::PathComponent;
use crate::stat_cache::{Entry, StatCache, StatKey};
use crate::store::{BUFFER_SIZE, Durability, Store, read_full};
use crate::tree::{Directory, Node, is_valid_symlink_target};

/// What [`Store::add_path`] stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// A regular file, stored as a blob.
    Blob {
        /// Its address.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A directory, stored as a tree.
    Tree {
        /// The root node's address.
        digest: Digest,
        /// Total bytes of files below it.
        size: u64,
    },
}

impl Added {
    /// The address of what was added.
    pub fn digest(&self) -> Digest {
        match self {
            Added::Blob { digest, .. } | Added::Tree { digest, .. } => *digest,
        }
    }
}

/// Decides which entries of a tree to leave out; gets the path relative to the tree root.
pub type Exclude<'a> = &'a (dyn Fn(&Path) -> bool + Sync);

/// Where ingested bytes go: into a store, or only through the hasher.
#[derive(Clone, Copy)]
enum Sink<'a> {
    Store(&'a Store),
    HashOnly,
}

/// Which file-system entries a local tree may contribute to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Whatever the invoking user can read (`hstore store add`: the user names exactly what to store).
    Any,
    /// Only what every local user may read: a file without the others-read bit, or a directory without the
    /// others-read and -search bits, is refused with [`Error::NotReadableByOthers`]. For `path` sources: store
    /// objects are readable by every sandbox and travel in bundles, so ingest is the last point where the file's
    /// owner and mode still say who may read it.
    OthersReadable,
}

/// How a tree is walked and where its bytes go.
#[derive(Clone, Copy)]
struct Options<'a> {
    sink: Sink<'a>,
    exclude: Exclude<'a>,
    access: Access,
    /// Use and refresh the stat cache of the root (local trees only; never for hashing or verify).
    stat_cache: bool,
}

impl Store {
    /// Stores a file as a blob or a directory as a tree, whichever `path` is. A symlink at `path` itself is refused
    /// with [`Error::SymlinkNotSupported`] (symlinks are never followed; inside a tree they are stored as links).
    /// A directory goes through the stat cache ([`Store::add_local_tree`]).
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn add_path(&self, path: &Path) -> Result<Added> {
        let metadata = fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
        if metadata.is_dir() {
            let (digest, size) = self.add_local_tree(path, &|_| false, Access::Any)?;
            Ok(Added::Tree { digest, size })
        } else if metadata.is_file() {
            let (digest, size) = self.add_blob_file(path)?;
            Ok(Added::Blob { digest, size })
        } else if metadata.is_symlink() {
            // Refused rather than followed: following would make the address depend on where the link points at
            // the time of adding, and a lone link has no object kind of its own. Links inside a tree are stored.
            let target = fs::read_link(path).map_err(Error::io("read link", path))?;
            Err(Error::SymlinkNotSupported {
                path: path.to_path_buf(),
                target,
            })
        } else {
            Err(Error::UnsupportedFileType {
                path: path.to_path_buf(),
                kind: describe(metadata.file_type()),
            })
        }
    }

    /// Stores the directory at `root` as a tree, leaving out entries for which `exclude` returns true.
    /// Objects are written in batches (one `syncfs` per batch, not one fsync per file); all are durable and visible when this
    /// returns, whether it succeeds or fails.
    pub fn add_tree(&self, root: &Path, exclude: Exclude<'_>) -> Result<(Digest, u64)> {
        self.ingest_and_commit(root, self.plain(exclude))
    }

    /// Ingests `root`, then publishes what the walk left pending even if it failed (what was written is complete),
    /// reporting the walk's error first.
    fn ingest_and_commit(&self, root: &Path, options: Options<'_>) -> Result<(Digest, u64)> {
        let result = ingest(root, options);
        let committed = self.commit_pending();
        let added = result?;
        committed?;
        Ok(added)
    }

    /// Like [`Store::add_tree`], for a directory the user keeps and adds again (a checkout, a toolchain, a `path`
    /// source): files whose stat is unchanged since the last add of the same `root` are not read again (see
    /// [`crate::stat_cache`]), and `access` decides which entries may be stored at all.
    pub fn add_local_tree(
        &self,
        root: &Path,
        exclude: Exclude<'_>,
        access: Access,
    ) -> Result<(Digest, u64)> {
        self.add_local_tree_with(root, exclude, access, true)
    }

    /// Like [`Store::add_local_tree`], but every file is read again, whatever the stat cache says: for a tree known
    /// to have lost objects (a `path` source whose locked tree is incomplete after `store verify --repair`), where
    /// an unchanged stat and an existing directory node no longer vouch for the blobs below it. A lost blob whose
    /// file is unchanged is stored again.
    pub fn add_local_tree_uncached(
        &self,
        root: &Path,
        exclude: Exclude<'_>,
        access: Access,
    ) -> Result<(Digest, u64)> {
        self.add_local_tree_with(root, exclude, access, false)
    }

    fn add_local_tree_with(
        &self,
        root: &Path,
        exclude: Exclude<'_>,
        access: Access,
        stat_cache: bool,
    ) -> Result<(Digest, u64)> {
        let options = Options {
            access,
            stat_cache,
            ..self.plain(exclude)
        };
        self.ingest_and_commit(root, options)
    }

    /// Like [`Store::add_tree`], but the objects join the store's current batch and become visible at the next
    /// [`Store::commit_pending`] (or when the batch fills). For callers adding many small trees in a row — the
    /// crates of a Cargo.lock — so they share one `syncfs` instead of paying one each; the caller commits.
    pub fn add_tree_batched(&self, root: &Path, exclude: Exclude<'_>) -> Result<(Digest, u64)> {
        ingest(root, self.plain(exclude))
    }

    fn plain<'a>(&'a self, exclude: Exclude<'a>) -> Options<'a> {
        Options {
            sink: Sink::Store(self),
            exclude,
            access: Access::Any,
            stat_cache: false,
        }
    }
}

/// The address `root` would have as a tree, computed without writing anything (and without the stat cache: verify
/// uses it to re-read materialized trees).
pub fn hash_tree(root: &Path) -> Result<(Digest, u64)> {
    ingest(
        root,
        Options {
            sink: Sink::HashOnly,
            exclude: &|_| false,
            access: Access::Any,
            stat_cache: false,
        },
    )
}

fn describe(file_type: fs::FileType) -> &'static str {
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "unknown"
    }
}

/// One directory found by the walk. Directories are numbered in walk order, so a child's index is always larger
/// than its parent's: building nodes in descending index order is bottom-up, with no recursion (a tree may be
/// deeper than any thread's stack).
struct ScannedDir {
    path: PathBuf,
    /// Path relative to the root, as the exclude function and the stat cache see it.
    relative: PathBuf,
    entries: Vec<(PathComponent, Slot)>,
}

enum Slot {
    /// Index into the file list.
    File(usize),
    Symlink(Vec<u8>),
    /// Index into the directory list.
    Dir(usize),
}

/// A regular file found by the walk: its directory and its entry in that directory.
struct ScannedFile {
    dir: usize,
    entry: usize,
}

/// A file once stored or hashed.
struct Stored {
    digest: Digest,
    size: u64,
    executable: bool,
    /// Taken from the stat cache without reading the file (its blob may still be missing from the store).
    cached: bool,
    /// What the stat cache should remember about it, if anything.
    remember: Option<Entry>,
}

/// Files read, and files whose address came from the stat cache, in one ingest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct IngestStats {
    read: usize,
    cached: usize,
}

fn ingest(root: &Path, options: Options<'_>) -> Result<(Digest, u64)> {
    let (digest, size, stats) = ingest_counted(root, options)?;
    if options.stat_cache {
        tracing::debug!(
            "{}: {} files read, {} unchanged since the last add (stat cache)",
            root.display(),
            stats.read,
            stats.cached
        );
    }
    Ok((digest, size))
}

/// Walks `root` (without recursion), stores or hashes its files in parallel, then builds the directory nodes
/// bottom-up.
fn ingest_counted(root: &Path, options: Options<'_>) -> Result<(Digest, u64, IngestStats)> {
    // The stat cache (megabytes for a toolchain) and the pack index are read and decoded on another thread while
    // the walk lists the tree: a fifth of a warm add, otherwise spent before the walk or the directory nodes.
    let (cache, scanned) = std::thread::scope(|scope| {
        let store = match (options.stat_cache, options.sink) {
            (true, Sink::Store(store)) => Some(store),
            _ => None,
        };
        let loading = store.map(|store| {
            let load = move || {
                // The pack index too: the directory nodes' lookups need it, and the walk does not.
                store.preload_packs();
                (store, StatCache::load(store, root))
            };
            std::thread::Builder::new()
                .name("hstore-stat-cache".into())
                .spawn_scoped(scope, load)
                .map_err(|_| load)
        });
        let scanned = scan(root, &options);
        let cache = loading.map(|loading| match loading {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: read it here.
            Err(load) => load(),
        });
        (cache, scanned)
    });
    let (dirs, files) = scanned?;
    let cache_ref = cache.as_ref().map(|(store, cache)| (*store, cache));
    let stored = store_files(&dirs, &files, &options, cache_ref)?;
    let mut dir_results: Vec<Option<(Digest, u64)>> = vec![None; dirs.len()];
    for index in (0..dirs.len()).rev() {
        let dir = &dirs[index];
        let mut directory = Directory::new();
        for (name, slot) in &dir.entries {
            let node = match slot {
                Slot::File(file) => {
                    let file = &stored[*file];
                    Node::File {
                        digest: file.digest,
                        size: file.size,
                        executable: file.executable,
                    }
                }
                Slot::Symlink(target) => Node::Symlink {
                    target: target.clone(),
                },
                Slot::Dir(child) => {
                    let (digest, size) = dir_results[*child]
                        .take()
                        .ok_or_else(|| walk_order_broken(&dir.path))?;
                    Node::Directory { digest, size }
                }
            };
            directory.insert(name.clone(), node);
        }
        let size = directory.total_size();
        let digest = match options.sink {
            Sink::Store(store) => {
                let bytes = directory.encode();
                let digest = Digest::of_bytes(&bytes);
                if !store.has_directory(&digest) {
                    // The node is new, so nothing vouches for blobs taken from the stat cache: store any that
                    // gc or repair removed since (a node that exists already vouches for its children; after
                    // `verify --repair` dropped one of them it does not, and `add_local_tree_uncached` reads past the
                    // cache to store it again).
                    for (name, slot) in &dir.entries {
                        if let Slot::File(file) = slot
                            && stored[*file].cached
                            && !store.has_blob(&stored[*file].digest)
                        {
                            let path = dir.path.join(name.as_os_str());
                            let (digest, _) = store.write_blob_file_checked(
                                &path,
                                stored[*file].size,
                                Durability::Batched,
                            )?;
                            if digest != stored[*file].digest {
                                return Err(Error::ChangedWhileAdding { path });
                            }
                        }
                    }
                    store.write_new_directory(&digest, &bytes, Durability::Batched)?;
                }
                digest
            }
            Sink::HashOnly => directory.digest(),
        };
        dir_results[index] = Some((digest, size));
    }
    // Every file taken from the cache, and the cache holding no other paths: it is already what would be saved.
    let unchanged = cache.as_ref().is_some_and(|(_, cache)| {
        stored.iter().all(|file| file.cached) && cache.len() == stored.len()
    });
    if let Some((store, cache)) = cache.filter(|_| !unchanged) {
        let mut remembered = Vec::with_capacity(files.len());
        for (file, stored) in files.iter().zip(&stored) {
            if let Some(entry) = stored.remember {
                remembered.push((relative_bytes(&dirs, file), entry));
            }
        }
        // Only a hint: failing to save it must not fail the add.
        if let Err(error) = cache.save(store, &remembered) {
            tracing::warn!("could not save the stat cache: {error}");
        }
    }
    let cached = stored.iter().filter(|file| file.cached).count();
    let stats = IngestStats {
        read: stored.len() - cached,
        cached,
    };
    let (digest, size) = dir_results
        .first_mut()
        .and_then(Option::take)
        .ok_or_else(|| walk_order_broken(root))?;
    Ok((digest, size, stats))
}

fn walk_order_broken(path: &Path) -> Error {
    Error::ChangedWhileAdding {
        path: path.to_path_buf(),
    }
}

fn relative_bytes(dirs: &[ScannedDir], file: &ScannedFile) -> Vec<u8> {
    let dir = &dirs[file.dir];
    dir.relative
        .join(dir.entries[file.entry].0.as_os_str())
        .into_os_string()
        .into_vec()
}

/// The longest path Linux accepts (`PATH_MAX`, terminating NUL included): a directory whose path is longer cannot be
/// listed by path, and a tree holding one could never be materialized.
pub const MAX_PATH_LEN: usize = 4096;

/// Lists every directory below `root` breadth-first, with the kind of each entry from `readdir` (no `stat` per
/// file here: the file's own stat happens once, in parallel, when it is stored).
fn scan(root: &Path, options: &Options<'_>) -> Result<(Vec<ScannedDir>, Vec<ScannedFile>)> {
    check_directory_access(root, options.access)?;
    let mut dirs = vec![ScannedDir {
        path: root.to_path_buf(),
        relative: PathBuf::new(),
        entries: Vec::new(),
    }];
    let mut files = Vec::new();
    let mut next = 0;
    while next < dirs.len() {
        let path = dirs[next].path.clone();
        let mut entries = Vec::new();
        for entry in fs::read_dir(&path).map_err(Error::io("list", &path))? {
            let entry = entry.map_err(Error::io("list", &path))?;
            let file_name = entry.file_name();
            let relative = dirs[next].relative.join(&file_name);
            if (options.exclude)(&relative) {
                continue;
            }
            let child_path = entry.path();
            let name =
                PathComponent::new(file_name.as_bytes()).map_err(|source| Error::InvalidName {
                    path: child_path.clone(),
                    source,
                })?;
            let file_type = entry.file_type().map_err(Error::io("stat", &child_path))?;
            let slot = if file_type.is_dir() {
                if child_path.as_os_str().len() >= MAX_PATH_LEN {
                    return Err(Error::TooDeep {
                        root: root.to_path_buf(),
                        start: relative.iter().take(3).collect(),
                        depth: relative.iter().count(),
                        limit: MAX_PATH_LEN,
                    });
                }
                check_directory_access(&child_path, options.access)?;
                dirs.push(ScannedDir {
                    path: child_path,
                    relative,
                    entries: Vec::new(),
                });
                Slot::Dir(dirs.len() - 1)
            } else if file_type.is_file() {
                files.push(ScannedFile {
                    dir: next,
                    entry: entries.len(),
                });
                Slot::File(files.len() - 1)
            } else if file_type.is_symlink() {
                let target =
                    fs::read_link(&child_path).map_err(Error::io("read link", &child_path))?;
                let target = target.into_os_string().into_vec();
                if !is_valid_symlink_target(&target) {
                    return Err(Error::InvalidSymlinkTarget { path: child_path });
                }
                Slot::Symlink(target)
            } else {
                return Err(Error::UnsupportedFileType {
                    path: child_path,
                    kind: describe(file_type),
                });
            };
            entries.push((name, slot));
        }
        dirs[next].entries = entries;
        next += 1;
    }
    Ok((dirs, files))
}

fn check_directory_access(path: &Path, access: Access) -> Result<()> {
    match access {
        Access::Any => Ok(()),
        Access::OthersReadable => {
            let mode = fs::symlink_metadata(path)
                .map_err(Error::io("stat", path))?
                .mode();
            if mode & 0o005 == 0o005 {
                Ok(())
            } else {
                Err(Error::NotReadableByOthers {
                    path: path.to_path_buf(),
                    mode: mode & 0o7777,
                })
            }
        }
    }
}

/// What [`store_file`] did with one file.
enum Outcome {
    Stored(Stored),
    /// A large file left for later (see [`store_files`]), with the size its stat gave.
    Deferred(u64),
}

/// Stores (or hashes) every file, in parallel. Small files go first, in walk order; large ones are left for a
/// second pass that starts them largest first, each thread taking the next largest as it finishes one (greedy
/// longest-first scheduling). In walk order, a large library met last would be compressed by one thread while the
/// others have nothing left to do: on the Rust toolchain, the last second of a cold add ran on 1.2 of 2 cores.
fn store_files(
    dirs: &[ScannedDir],
    files: &[ScannedFile],
    options: &Options<'_>,
    cache: Option<(&Store, &StatCache)>,
) -> Result<Vec<Stored>> {
    let walk = WALKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let first: Vec<Outcome> = files
        .par_iter()
        .map(|file| store_file(walk, dirs, file, options, cache, true))
        .collect::<Result<_>>()?;
    let mut large: Vec<(usize, u64)> = first
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| match outcome {
            Outcome::Deferred(size) => Some((index, *size)),
            Outcome::Stored(_) => None,
        })
        .collect();
    large.sort_by_key(|&(index, size)| (std::cmp::Reverse(size), index));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<Vec<(usize, Stored)>> = (0..rayon::current_num_threads().min(large.len()))
        .into_par_iter()
        .map(|_| {
            let mut done = Vec::new();
            loop {
                let taken = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(index, _)) = large.get(taken) else {
                    return Ok(done);
                };
                let file = &files[index];
                match store_file(walk, dirs, file, options, cache, false)? {
                    Outcome::Stored(stored) => done.push((index, stored)),
                    // Never: only asked-for deferrals happen.
                    Outcome::Deferred(_) => return Err(walk_order_broken(&dirs[file.dir].path)),
                }
            }
        })
        .collect::<Result<_>>()?;
    let mut stored: Vec<Option<Stored>> = first
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Stored(stored) => Some(stored),
            Outcome::Deferred(_) => None,
        })
        .collect();
    for (index, file) in done.into_iter().flatten() {
        stored[index] = Some(file);
    }
    stored
        .into_iter()
        .zip(files)
        .map(|(stored, file)| stored.ok_or_else(|| walk_order_broken(&dirs[file.dir].path)))
        .collect()
}

thread_local! {
    /// The directory this thread last stated a file in: (walk, directory index, open directory).
    static STAT_DIR: std::cell::RefCell<Option<(u64, usize, fs::File)>> = const { std::cell::RefCell::new(None) };
}

/// Numbers the walks of this process, so a thread's open directory is never taken for another walk's.
static WALKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stats `name` in directory `dir` (number `index` of walk `walk`) without following a symlink, relative to the
/// directory's descriptor, which the thread keeps open while it stats that directory's files: the kernel then
/// resolves one name, not the whole path (a warm add of the toolchain spent a sixth of its CPU walking paths).
fn stat_in_dir(
    walk: u64,
    index: usize,
    dir: &ScannedDir,
    name: &std::ffi::OsStr,
) -> std::io::Result<nix::sys::stat::FileStat> {
    STAT_DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let open = match cell.take() {
            Some((w, i, handle)) if w == walk && i == index => handle,
            _ => fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(&dir.path)?,
        };
        let stat = nix::sys::stat::fstatat(&open, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(std::io::Error::from);
        *cell = Some((walk, index, open));
        stat
    })
}

/// Files larger than this are stored in [`store_files`]' second pass (they are cut into frames).
const LARGE_FILE: u64 = crate::frames::FRAME_SIZE as u64;

/// Stats one file (once), takes its address from the stat cache when the stat is unchanged, else reads it; with
/// `defer_large`, a large file that must be read is left for later. `walk` numbers the walk (see [`stat_in_dir`]).
fn store_file(
    walk: u64,
    dirs: &[ScannedDir],
    file: &ScannedFile,
    options: &Options<'_>,
    cache: Option<(&Store, &StatCache)>,
    defer_large: bool,
) -> Result<Outcome> {
    let dir = &dirs[file.dir];
    let name = dir.entries[file.entry].0.as_os_str();
    // Built only when needed: a file taken from the stat cache is never opened.
    let path = || dir.path.join(name);
    let stat =
        stat_in_dir(walk, file.dir, dir, name).map_err(|error| Error::io("stat", path())(error))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        // Replaced by something else since the directory was listed.
        return Err(Error::ChangedWhileAdding { path: path() });
    }
    let mode = stat.st_mode;
    if options.access == Access::OthersReadable && mode & 0o004 == 0 {
        return Err(Error::NotReadableByOthers {
            path: path(),
            mode: mode & 0o7777,
        });
    }
    let executable = mode & 0o100 != 0;
    let size =
        u64::try_from(stat.st_size).map_err(|_| Error::ChangedWhileAdding { path: path() })?;
    let deferred = defer_large && size > LARGE_FILE;
    let Some((store, cache)) = cache else {
        if deferred {
            return Ok(Outcome::Deferred(size));
        }
        let (digest, size) = match options.sink {
            Sink::Store(store) => store
                .write_blob_file_checked(&path(), size, Durability::Batched)
                .map(|(digest, _)| (digest, size))?,
            Sink::HashOnly => hash_file(&path())?,
        };
        return Ok(Outcome::Stored(Stored {
            digest,
            size,
            executable,
            cached: false,
            remember: None,
        }));
    };
    let key = StatKey::of_stat(&stat);
    let relative = relative_bytes(dirs, file);
    if let Some(entry) = cache.lookup(&relative, &key) {
        return Ok(Outcome::Stored(Stored {
            digest: entry.digest,
            size,
            executable,
            cached: true,
            remember: Some(entry),
        }));
    }
    if deferred {
        return Ok(Outcome::Deferred(size));
    }
    let (digest, format) = store.write_blob_file_checked(&path(), size, Durability::Batched)?;
    Ok(Outcome::Stored(Stored {
        digest,
        size,
        executable,
        cached: false,
        remember: cache.may_record(&key).then_some(Entry {
            key,
            digest,
            format,
        }),
    }))
}

/// BLAKE3 of a file's bytes, streamed.
pub fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let mut file = fs::File::open(path).map_err(Error::io("open", path))?;
    hash_reader(&mut file).map_err(Error::io("read", path))
}

/// BLAKE3 of everything a reader yields, streamed.
pub fn hash_reader(reader: &mut dyn Read) -> std::io::Result<(Digest, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = read_full(reader, &mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((Digest::from(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::stat_cache::RACY_WINDOW;

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    /// Lets every file written so far age past the racy window, so the next add may record it.
    fn settle() {
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(200));
    }

    fn add(store: &Store, root: &Path) -> (Digest, IngestStats) {
        let options = Options {
            access: Access::Any,
            stat_cache: true,
            ..store.plain(&|_| false)
        };
        let (digest, _, stats) = ingest_counted(root, options).unwrap();
        store.commit_pending().unwrap();
        assert_eq!(
            digest,
            hash_tree(root).unwrap().0,
            "stat cache gave a stale address"
        );
        (digest, stats)
    }

    #[test]
    fn unchanged_files_are_not_read_again_and_every_change_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let root = dir.path().join("tree");
        write(&root.join("a.txt"), b"alpha alpha");
        write(&root.join("sub/b.txt"), b"bravo bravo");
        write(&root.join("sub/c.bin"), b"charlie");
        write(&root.join("d.txt"), b"delta");

        // Files younger than the racy window are read every time.
        let (first, stats) = add(&store, &root);
        assert_eq!((stats.read, stats.cached), (4, 0));
        let (again, stats) = add(&store, &root);
        assert_eq!((again, stats.read, stats.cached), (first, 4, 0));

        settle();
        let (settled, stats) = add(&store, &root);
        assert_eq!((settled, stats.read), (first, 4));
        let (warm, stats) = add(&store, &root);
        assert_eq!((warm, stats.read, stats.cached), (first, 0, 4));

        // Touch (same bytes): re-read, same address.
        let file = fs::File::options()
            .write(true)
            .open(root.join("a.txt"))
            .unwrap();
        file.set_modified(SystemTime::now()).unwrap();
        drop(file);
        let (touched, stats) = add(&store, &root);
        assert_eq!((touched, stats.read), (first, 1));

        // Same-size rewrite with the old mtime put back (a rewrite within one timestamp tick): ctime still moves.
        let path = root.join("sub/b.txt");
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, b"BRAVO BRAVO").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let (rewritten, stats) = add(&store, &root);
        assert_ne!(rewritten, first);
        // b.txt, and a.txt again: touched within the racy window, it was not recorded.
        assert_eq!(stats.read, 2);

        // Rename, mode change, replaced by a symlink: each gives the address a fresh hash gives (checked in `add`).
        fs::rename(root.join("sub/c.bin"), root.join("sub/c2.bin")).unwrap();
        let (renamed, _) = add(&store, &root);
        assert_ne!(renamed, rewritten);
        fs::set_permissions(root.join("d.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        let (executable, _) = add(&store, &root);
        assert_ne!(executable, renamed);
        fs::remove_file(root.join("a.txt")).unwrap();
        symlink("d.txt", root.join("a.txt")).unwrap();
        let (linked, _) = add(&store, &root);
        assert_ne!(linked, executable);
    }

    #[test]
    fn a_cached_blob_missing_from_the_store_is_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let root = dir.path().join("tree");
        write(&root.join("keep.txt"), b"kept in the store");
        write(
            &root.join("sub/lost.txt"),
            b"removed from the store behind the cache's back",
        );
        settle();
        add(&store, &root);
        let lost = Digest::of_bytes(b"removed from the store behind the cache's back");
        store.remove_every_copy(&lost);
        // Removed as gc or repair in another process would: while this handle lived, its lock kept them out.
        drop(store);
        let store = Store::open(dir.path().join("store")).unwrap();
        // A new file makes the cached file's directory node new, so no existing node vouches for it.
        write(&root.join("sub/new.txt"), b"new");
        let (digest, stats) = add(&store, &root);
        assert_eq!((stats.read, stats.cached), (1, 2));
        assert!(store.has_blob(&lost));
        let mut nar = Vec::new();
        store.dump_nar(&digest, &mut nar).unwrap();
    }

    #[test]
    fn others_readable_refuses_private_files_and_directories_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let root = dir.path().join("tree");
        write(&root.join("public.txt"), b"anyone");
        write(&root.join("secret.txt"), b"owner only");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("public.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(root.join("secret.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        let error = store
            .add_local_tree(&root, &|_| false, Access::OthersReadable)
            .unwrap_err();
        assert!(
            matches!(&error, Error::NotReadableByOthers { path, mode: 0o640 } if path.ends_with("secret.txt")),
            "{error}"
        );
        let hint = crate::Hint::hint(&error).unwrap();
        assert!(
            hint.contains("chmod o+r") && hint.contains("exclude = [\"secret.txt\"]"),
            "{hint}"
        );
        assert!(store.list_objects().unwrap().iter().all(|o| o.size != 10));
        // Excluded, it is fine; a private directory is refused before anything in it is read.
        let (digest, _) = store
            .add_local_tree(
                &root,
                &|p| p == Path::new("secret.txt"),
                Access::OthersReadable,
            )
            .unwrap();
        assert!(store.get_directory(&digest).unwrap().is_some());
        write(&root.join("private/x.txt"), b"x");
        fs::set_permissions(
            root.join("private/x.txt"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
        let error = store
            .add_local_tree(
                &root,
                &|p| p == Path::new("secret.txt"),
                Access::OthersReadable,
            )
            .unwrap_err();
        assert!(
            matches!(&error, Error::NotReadableByOthers { path, .. } if path.ends_with("private")),
            "{error}"
        );
        // `Any` (what `hstore store add` uses) stores what the user can read.
        store
            .add_local_tree(&root, &|_| false, Access::Any)
            .unwrap();
    }

    #[test]
    fn deep_trees_are_added_hashed_dumped_and_materialized_without_recursion() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let root = dir.path().join("deep");
        let mut leaf = root.clone();
        for _ in 0..1000 {
            leaf.push("d");
        }
        write(&leaf.join("f"), b"at the bottom");
        // On a small stack, as rayon and tokio's blocking threads have: recursion 1000 deep overflowed it.
        let digest = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn({
                let root = root.clone();
                let store_root = dir.path().join("store");
                move || {
                    let store = Store::open(store_root).unwrap();
                    let (digest, _) = store
                        .add_local_tree(&root, &|_| false, Access::Any)
                        .unwrap();
                    assert_eq!(hash_tree(&root).unwrap().0, digest);
                    let mut nar = Vec::new();
                    store.dump_nar(&digest, &mut nar).unwrap();
                    let out = root.parent().unwrap().join("out");
                    store
                        .materialize(&digest, &out, crate::Permissions::ReadOnly)
                        .unwrap();
                    assert_eq!(hash_tree(&out).unwrap().0, digest);
                    crate::remove_tree(&out).unwrap();
                    digest
                }
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(store.get_directory(&digest).unwrap().is_some());
    }

    #[test]
    fn a_tree_20000_directories_deep_dumps_from_a_small_stack() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut node = Directory::new();
        for _ in 0..20_000 {
            // Batched: 20 000 single-object fsyncs would take minutes.
            let digest = store
                .write_directory_node(&node, Durability::Batched)
                .unwrap();
            node = Directory::new();
            node.insert(
                PathComponent::new("d").unwrap(),
                Node::Directory { digest, size: 0 },
            );
        }
        let top = store.put_directory(&node).unwrap();
        store.commit_pending().unwrap();
        let store_root = dir.path().to_path_buf();
        let len = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let store = Store::open(store_root).unwrap();
                let mut nar = Vec::new();
                store.dump_nar(&top, &mut nar).unwrap();
                assert!(store.reachable().unwrap().is_empty());
                nar.len()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(len > 20_000 * 100);
    }
}
