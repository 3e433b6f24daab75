//! Fingerprints of what a build takes from the host, for the build key: the base system, declared host paths and
//! declared host tools. Each is a [`Digest`] (BLAKE3), stable while the host does not change.
//!
//! **Base system** ([`fingerprint_base_system`]) hashes what a build can see of the host base system, never a time:
//! a CI step that re-creates a symlink in `/usr/local/bin` with the same target, rewrites a file with the bytes it
//! held, or adds and removes a temp file (a directory's mtime) leaves it unchanged; a change of contents, of a link's
//! target or of permissions, or an added or removed entry changes it. Hashing all of `/usr` would take seconds to
//! minutes, so it hashes what changes whenever the base system changes:
//! - the package manager's database (`/var/lib/dpkg/status`, `/lib/apk/db/installed`,
//!   `/var/lib/rpm/rpmdb.sqlite` or `/var/lib/rpm/Packages`), whole: every install, upgrade or removal rewrites it,
//!   with exact versions;
//! - `/etc/os-release` (the release) and `/etc/ld.so.cache` (which libraries the loader finds, including ones
//!   installed outside the package manager once `ldconfig` ran), whole;
//! - the entries directly in `/usr/local/{bin,sbin,lib,include}`, which are on `PATH` but not in the package
//!   database: a symlink's target, a file's permission bits and contents (BLAKE3), a directory's permission bits.
//!
//! Reading those files costs ~34 ms for this machine's 167 MB of `/usr/local/bin` (2 cores, page cache warm), so
//! their digests are remembered in a content cache in a directory the caller names (the store's `cache-v1/`,
//! [`CONTENT_CACHE_FILE`]), by path and (device, inode, size, mtime, ctime, mode), like git's index: a file is read
//! again only when one of those changed, and a file younger than the racy window is not remembered. With the cache
//! the fingerprint costs ~0.5 ms, as the mtime-based one did. A file the caller cannot read is hashed by its size
//! and mtime. What lies deeper under those directories (`/usr/local/lib/python3.11/…`) is not seen.
//!
//! Without any known package database, it falls back to a metadata walk of `/usr/bin` and `/usr/lib/gcc`.
//! Files changed in place under `/usr` without the package manager are not seen; that is the price of speed.
//!
//! **Host paths** ([`fingerprint_host_paths`]): a metadata walk (relative path, kind, mode, size, mtime, symlink
//! target) of each declared path, in byte order, as a Merkle fold of per-directory digests, listed in parallel
//! level by level and folded bottom-up without recursion (a host path may be thousands of directories deep). It does
//! not read file contents: a CUDA toolkit is gigabytes. A host path that holds a socket is refused
//! ([`Error::SocketInHostPath`]): the sandbox binds host paths read-only, and a read-only mount does not stop
//! `connect` on a unix socket, so a listening socket there would let the build talk to a host service. The walk
//! already stats every entry, so the check costs nothing; it runs wherever a host path is fingerprinted, i.e.
//! before every build and before a lock-time probe build.
//!
//! **Host tools** ([`fingerprint_host_tools`]): the stdout of commands like `nvcc --version`, run on the host
//! with a cleared environment (`LC_ALL=C`, `PATH=/usr/local/bin:/usr/bin:/bin`).
//!
//! Every value is hashed length-prefixed after a versioned domain tag, so no two different inputs hash the same
//! byte stream. Changing what is hashed MUST change the tag's version.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hstore_store::Digest;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::DEFAULT_PATH;

const PACKAGE_DATABASES: &[&str] = &[
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
];
const SYSTEM_FILES: &[&str] = &["/etc/os-release", "/etc/ld.so.cache"];
const LOCAL_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/usr/local/include",
];
const FALLBACK_TREES: &[&str] = &["/usr/bin", "/usr/lib/gcc"];

/// A host tool whose output identifies it, e.g. `nvcc` with `["--version"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTool {
    /// The program: an absolute path, or a name looked up on `/usr/local/bin:/usr/bin:/bin`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl HostTool {
    /// A tool run as `program args…`.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        HostTool {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Length-prefixed hashing, so `("ab", "c")` and `("a", "bc")` differ.
struct Fingerprinter(blake3::Hasher);

impl Fingerprinter {
    fn new(tag: &str) -> Self {
        let mut hasher = Fingerprinter(blake3::Hasher::new());
        hasher.field(tag.as_bytes());
        hasher
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn number(&mut self, value: i64) {
        self.0.update(&value.to_le_bytes());
    }

    fn finish(&self) -> Digest {
        Digest::from(self.0.finalize())
    }
}

/// Fingerprints the host base system the sandbox binds read-only; see the [module docs](self) for what it covers.
///
/// `content_cache` is a directory where the content digests of the `/usr/local` files it hashes are kept between
/// runs (the store's `cache-v1/`), as [`CONTENT_CACHE_FILE`]; without one every such file is read on every call.
pub fn fingerprint_base_system(content_cache: Option<&Path>) -> Result<Digest> {
    fingerprint_base_system_at(Path::new("/"), content_cache, SystemTime::now())
        .map(|(digest, _)| digest)
}

/// [`fingerprint_base_system`] of the tree at `root` (`/` but in tests), with `now` as the time the racy window
/// ends at; also returns how many files' contents were read.
fn fingerprint_base_system_at(
    root: &Path,
    content_cache: Option<&Path>,
    now: SystemTime,
) -> Result<(Digest, usize)> {
    let mut hasher = Fingerprinter::new("hstore-sandbox base-system v3");
    let mut found_database = false;
    for path in PACKAGE_DATABASES.iter().chain(SYSTEM_FILES) {
        let file = under_root(root, path);
        match fs::read(&file) {
            Ok(bytes) => {
                found_database |= PACKAGE_DATABASES.contains(path);
                hasher.field(path.as_bytes());
                hasher.field(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", file)(e)),
        }
    }
    let mut contents = ContentCache::load(content_cache, now);
    for dir in LOCAL_DIRS {
        hash_local_dir(&mut hasher, root, dir, &mut contents)?;
    }
    contents.save();
    if !found_database {
        for tree in FALLBACK_TREES {
            hash_tree(&mut hasher, &under_root(root, tree), usize::MAX, None)?;
        }
    }
    Ok((hasher.finish(), contents.hashed))
}

/// `path` (absolute) under `root`.
fn under_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Hashes what a build sees of the entries directly in `dir` (under `root`), in byte order of names: a symlink's
/// target, a file's permission bits and contents, a directory's permission bits; never a time, an inode or a
/// directory's size, so re-creating a link or rewriting a file with what it held changes nothing.
fn hash_local_dir(
    hasher: &mut Fingerprinter,
    root: &Path,
    dir: &str,
    contents: &mut ContentCache,
) -> Result<()> {
    let path = under_root(root, dir);
    let listing = match fs::read_dir(&path) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", path)(e)),
    };
    let mut entries: Vec<fs::DirEntry> = listing
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("list", &path))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    hasher.field(dir.as_bytes());
    hasher.number(i64::try_from(entries.len()).unwrap_or(i64::MAX));
    for entry in entries {
        let name = entry.file_name();
        let entry_path = entry.path();
        let meta = fs::symlink_metadata(&entry_path)
            .map_err(Error::io("read the metadata of", &entry_path))?;
        hasher.field(name.as_bytes());
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target =
                fs::read_link(&entry_path).map_err(Error::io("read the symlink", &entry_path))?;
            hasher.field(b"symlink");
            hasher.field(target.as_os_str().as_bytes());
        } else if file_type.is_file() {
            hasher.field(b"file");
            hasher.number(i64::from(meta.mode() & 0o7777));
            let digest = contents.digest(&entry_path, &meta)?;
            hasher.field(digest.as_bytes());
        } else if file_type.is_dir() {
            hasher.field(b"directory");
            hasher.number(i64::from(meta.mode() & 0o7777));
        } else {
            // A device, fifo or socket: its kind and permissions are all a build sees of it.
            hasher.field(b"special");
            hasher.number(i64::from(meta.mode()));
        }
    }
    Ok(())
}

/// The name of the content cache file in the directory given to [`fingerprint_base_system`].
pub const CONTENT_CACHE_FILE: &str = "base-system-contents-v1";
const CONTENT_CACHE_MAGIC: &[u8; 28] = b"hstore-base-system-contents\0";
/// A file whose mtime or ctime is this close to now is not recorded: a write within the same timestamp tick could
/// leave both unchanged (git's "racily clean" entries; the store's stat cache uses the same window).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What must be unchanged for a remembered content digest to hold: a write sets mtime and ctime (ctime cannot be set
/// back from user space), a replacement gives another inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

impl StatKey {
    fn of(meta: &fs::Metadata) -> Self {
        StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
        }
    }

    const ENCODED_LEN: usize = 8 * 7 + 4;

    fn encode(&self, out: &mut Vec<u8>) {
        for value in [self.dev, self.ino, self.size] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for value in [self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&self.mode.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        let i64_at = |at: usize| Some(i64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        Some(StatKey {
            dev: u64_at(0)?,
            ino: u64_at(8)?,
            size: u64_at(16)?,
            mtime: (i64_at(24)?, i64_at(32)?),
            ctime: (i64_at(40)?, i64_at(48)?),
            mode: u32::from_le_bytes(bytes.get(56..60)?.try_into().ok()?),
        })
    }
}

/// The content digests of the files [`hash_local_dir`] reads, remembered by path and [`StatKey`] in one small file
/// (a cache: a missing, torn or foreign file is ignored, and losing it costs one read of each file). Encoding
/// (little-endian): [`CONTENT_CACHE_MAGIC`], then per entry: path length u32, path bytes, dev, ino, size u64,
/// mtime s/ns, ctime s/ns i64, mode u32, digest [32]; then the BLAKE3 of everything before it [32]. It holds the
/// entries of the last run only, so it never grows past the files in those directories.
struct ContentCache {
    file: Option<PathBuf>,
    remembered: HashMap<PathBuf, (StatKey, Digest)>,
    /// This run's entries that may be recorded (settled before the racy window).
    seen: Vec<(PathBuf, StatKey, Digest)>,
    /// Whether the file must be rewritten: an entry was added, changed or is no longer seen.
    dirty: bool,
    /// Files whose contents this run read.
    hashed: usize,
    /// Timestamps at or after this (seconds, nanoseconds) are racy.
    cutoff: (i64, i64),
}

impl ContentCache {
    fn load(dir: Option<&Path>, now: SystemTime) -> Self {
        let since_epoch = now
            .checked_sub(RACY_WINDOW)
            .and_then(|cutoff| cutoff.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let file = dir.map(|dir| dir.join(CONTENT_CACHE_FILE));
        let remembered = file
            .as_deref()
            .and_then(|file| fs::read(file).ok())
            .and_then(|bytes| Self::decode(&bytes))
            .unwrap_or_default();
        ContentCache {
            file,
            remembered,
            seen: Vec::new(),
            dirty: false,
            hashed: 0,
            cutoff: (
                i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
                i64::from(since_epoch.subsec_nanos()),
            ),
        }
    }

    fn decode(bytes: &[u8]) -> Option<HashMap<PathBuf, (StatKey, Digest)>> {
        let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if blake3::hash(body).as_bytes() != checksum {
            return None;
        }
        let mut rest = body.strip_prefix(CONTENT_CACHE_MAGIC.as_slice())?;
        let mut entries = HashMap::new();
        while !rest.is_empty() {
            let length = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(rest.get(4..4 + length)?));
            rest = rest.get(4 + length..)?;
            let key = StatKey::decode(rest.get(..StatKey::ENCODED_LEN)?)?;
            rest = rest.get(StatKey::ENCODED_LEN..)?;
            let digest: [u8; 32] = rest.get(..32)?.try_into().ok()?;
            rest = rest.get(32..)?;
            entries.insert(path, (key, Digest::from(blake3::Hash::from_bytes(digest))));
        }
        Some(entries)
    }

    /// The BLAKE3 of the contents of the regular file `path`, whose metadata is `meta`: remembered when its
    /// [`StatKey`] is unchanged, else read. A file the caller may not read (a `0700` tool of another user) is
    /// hashed by its size and mtime instead; the build, run as the caller or a build user, cannot read it either.
    fn digest(&mut self, path: &Path, meta: &fs::Metadata) -> Result<Digest> {
        let key = StatKey::of(meta);
        let digest = match self.remembered.get(path) {
            Some((remembered, digest)) if *remembered == key => *digest,
            _ => {
                self.dirty = true;
                self.hashed += 1;
                let mut hasher = blake3::Hasher::new();
                match hasher.update_mmap_rayon(path) {
                    Ok(_) => Digest::from(hasher.finalize()),
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        let mut unreadable = Fingerprinter::new("unreadable file");
                        unreadable.number(meta.size().cast_signed());
                        unreadable.number(meta.mtime());
                        unreadable.number(meta.mtime_nsec());
                        unreadable.finish()
                    }
                    Err(e) => return Err(Error::io("read", path)(e)),
                }
            }
        };
        if key.mtime < self.cutoff && key.ctime < self.cutoff {
            self.seen.push((path.to_path_buf(), key, digest));
        } else {
            self.dirty |= self.remembered.contains_key(path);
        }
        Ok(digest)
    }

    /// Replaces the cache file with this run's settled entries when they differ from what it held. Failing to is
    /// no error: the next run reads the files again.
    fn save(&self) {
        let Some(file) = &self.file else {
            return;
        };
        if !self.dirty && self.seen.len() == self.remembered.len() {
            return;
        }
        let mut bytes = CONTENT_CACHE_MAGIC.to_vec();
        for (path, key, digest) in &self.seen {
            let path = path.as_os_str().as_bytes();
            bytes.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes());
            bytes.extend_from_slice(path);
            key.encode(&mut bytes);
            bytes.extend_from_slice(digest.as_bytes());
        }
        let checksum = blake3::hash(&bytes);
        bytes.extend_from_slice(checksum.as_bytes());
        // Unique per process and call: two threads of one hstore (`build -j`) may save at once.
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let temporary = file.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            SAVES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = file
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&temporary, &bytes))
            .and_then(|()| fs::rename(&temporary, file));
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            tracing::debug!(file = %file.display(), %error, "could not save the base system's content cache");
        }
    }
}

/// Fingerprints declared host paths by a metadata walk. A missing path is [`Error::MissingHostPath`].
pub fn fingerprint_host_paths(paths: &[PathBuf]) -> Result<Digest> {
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut hasher = Fingerprinter::new("hstore-sandbox host-paths v2");
    for path in sorted {
        let meta = fs::symlink_metadata(path).map_err(|source| Error::MissingHostPath {
            path: path.clone(),
            source,
        })?;
        // A declared path is often a symlink (`/usr/local/cuda -> cuda-12.4`): record where it points, then walk
        // what it points to, as the sandbox's bind does.
        hasher.field(path.as_os_str().as_bytes());
        if meta.file_type().is_symlink() {
            let target = fs::read_link(path).map_err(Error::io("read the symlink", path))?;
            hasher.field(target.as_os_str().as_bytes());
            fs::metadata(path).map_err(|source| Error::MissingHostPath {
                path: path.clone(),
                source,
            })?;
        }
        hash_tree(&mut hasher, path, usize::MAX, Some(path))?;
    }
    Ok(hasher.finish())
}

/// Fingerprints host tools by their stdout. A tool that cannot be started is [`Error::MissingHostTool`]; one that
/// fails is [`Error::HostToolFailed`].
pub fn fingerprint_host_tools(tools: &[HostTool]) -> Result<Digest> {
    let mut hasher = Fingerprinter::new("hstore-sandbox host-tools v1");
    for tool in tools {
        let output = Command::new(&tool.program)
            .args(&tool.args)
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::MissingHostTool {
                program: tool.program.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::HostToolFailed {
                program: tool.program.clone(),
                status: output.status.to_string(),
                stderr: stderr
                    .chars()
                    .take(500)
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            });
        }
        hasher.field(tool.program.as_bytes());
        hasher.number(i64::try_from(tool.args.len()).unwrap_or(i64::MAX));
        for arg in &tool.args {
            hasher.field(arg.as_bytes());
        }
        hasher.field(&output.stdout);
    }
    Ok(hasher.finish())
}

/// Hashes the metadata of `root` and, down to `depth` levels, everything below it, in byte order of names.
/// Symlinks below the root are recorded, not followed. With `host_path` (the declared path `root` is walked for),
/// a socket anywhere in the tree is [`Error::SocketInHostPath`].
fn hash_tree(
    hasher: &mut Fingerprinter,
    root: &Path,
    depth: usize,
    host_path: Option<&Path>,
) -> Result<()> {
    let meta = match fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read the metadata of", root)(e)),
    };
    if let Some(host_path) = host_path {
        refuse_socket(host_path, root, &meta)?;
    }
    hash_entry(hasher, Path::new(""), &meta, None);
    if meta.is_dir() {
        walk(hasher, root, Path::new(""), depth, host_path)?;
    }
    Ok(())
}

/// [`Error::SocketInHostPath`] if `meta` (of `path`, inside the declared `host_path`) is a socket.
fn refuse_socket(host_path: &Path, path: &Path, meta: &fs::Metadata) -> Result<()> {
    if meta.file_type().is_socket() {
        return Err(Error::SocketInHostPath {
            host_path: host_path.to_path_buf(),
            socket: path.to_path_buf(),
        });
    }
    Ok(())
}

/// One listed entry of a directory: its path relative to the root, metadata, link target, and the index of its
/// own listing when the walk descends into it.
struct Listed {
    child: PathBuf,
    meta: fs::Metadata,
    target: Option<PathBuf>,
    below: Option<usize>,
}

/// Hashes everything below `root`, down to `depth` levels, without recursion (a host path may be thousands of
/// directories deep). Directories are listed level by level, each level's directories in parallel (a toolchain is
/// ~50k files), then folded bottom-up: each subdirectory condensed to its own digest (a Merkle walk), folded into
/// its parent in name order, so the result does not depend on scheduling.
fn walk(
    hasher: &mut Fingerprinter,
    root: &Path,
    relative: &Path,
    depth: usize,
    host_path: Option<&Path>,
) -> Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let mut dirs: Vec<(PathBuf, usize)> = vec![(relative.to_path_buf(), depth)];
    let mut listings: Vec<Vec<Listed>> = Vec::new();
    let mut level = 0..1;
    while !level.is_empty() {
        let listed = dirs[level.clone()]
            .par_iter()
            .map(|(relative, _)| list(root, relative))
            .collect::<Result<Vec<_>>>()?;
        for (offset, entries) in listed.into_iter().enumerate() {
            let depth = dirs[level.start + offset].1;
            let mut listing = Vec::with_capacity(entries.len());
            for (child, meta, target) in entries {
                if let Some(host_path) = host_path {
                    refuse_socket(host_path, &root.join(&child), &meta)?;
                }
                let below = (meta.is_dir() && depth > 1).then(|| {
                    dirs.push((child.clone(), depth - 1));
                    dirs.len() - 1
                });
                listing.push(Listed {
                    child,
                    meta,
                    target,
                    below,
                });
            }
            listings.push(listing);
        }
        level = level.end..dirs.len();
    }
    let mut digests: Vec<Option<Digest>> = vec![None; dirs.len()];
    for index in (1..dirs.len()).rev() {
        let mut sub = Fingerprinter::new("dir");
        fold(&mut sub, &listings[index], &digests);
        digests[index] = Some(sub.finish());
    }
    fold(hasher, &listings[0], &digests);
    Ok(())
}

/// Lists one directory in name order, with each entry's metadata (`fstatat`, not following symlinks).
fn list(root: &Path, relative: &Path) -> Result<Vec<(PathBuf, fs::Metadata, Option<PathBuf>)>> {
    let dir = root.join(relative);
    let mut dir_entries: Vec<fs::DirEntry> = fs::read_dir(&dir)
        .map_err(Error::io("list", &dir))?
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("list", &dir))?;
    dir_entries.sort_by_key(fs::DirEntry::file_name);
    dir_entries
        .iter()
        .map(|entry| {
            let child = relative.join(entry.file_name());
            let path = entry.path();
            let meta = entry
                .metadata()
                .map_err(Error::io("read the metadata of", &path))?;
            let target = if meta.file_type().is_symlink() {
                Some(fs::read_link(&path).map_err(Error::io("read the symlink", &path))?)
            } else {
                None
            };
            Ok((child, meta, target))
        })
        .collect()
}

fn fold(hasher: &mut Fingerprinter, listing: &[Listed], digests: &[Option<Digest>]) {
    for entry in listing {
        hash_entry(hasher, &entry.child, &entry.meta, entry.target.as_deref());
        if let Some(below) = entry.below.and_then(|index| digests[index]) {
            hasher.field(below.as_bytes());
        }
    }
}

fn hash_entry(
    hasher: &mut Fingerprinter,
    relative: &Path,
    meta: &fs::Metadata,
    target: Option<&Path>,
) {
    hasher.field(relative.as_os_str().as_bytes());
    hasher.number(i64::from(meta.mode()));
    // Directories' sizes and mtimes change when entries are added, which the walk sees anyway; skipping them keeps
    // the fingerprint independent of e.g. a removed-then-recreated temp file.
    if !meta.is_dir() {
        hasher.number(meta.size().cast_signed());
        hasher.number(meta.mtime());
        hasher.number(meta.mtime_nsec());
    }
    if let Some(target) = target {
        hasher.field(target.as_os_str().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_system_fingerprint_is_stable_and_cheap() {
        let cache = tempfile::tempdir().expect("tempdir");
        let started = std::time::Instant::now();
        let uncached = fingerprint_base_system(None).expect("fingerprint");
        let elapsed_uncached = started.elapsed();
        let first = fingerprint_base_system(Some(cache.path())).expect("fingerprint");
        let started = std::time::Instant::now();
        let second = fingerprint_base_system(Some(cache.path())).expect("fingerprint");
        let elapsed_cached = started.elapsed();
        assert_eq!(uncached, first);
        assert_eq!(first, second);
        // The design budget is 0.1 s; allow slack for a loaded CI machine and debug builds.
        assert!(
            elapsed_cached.as_secs_f64() < 1.0,
            "took {elapsed_cached:?}"
        );
        #[expect(clippy::print_stderr, reason = "a measurement for the test's reader")]
        {
            eprintln!(
                "base system fingerprint: {elapsed_uncached:?} reading every file, {elapsed_cached:?} cached"
            );
        }
    }

    /// A host root under a temp dir, as `fingerprint_base_system_at` reads it: a package database, a file, a
    /// symlink and a directory in `usr/local/bin`, a library in `usr/local/lib`.
    fn fake_host() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let at = |path: &str| root.path().join(path);
        for dir in ["var/lib/dpkg", "usr/local/bin/sub", "usr/local/lib"] {
            fs::create_dir_all(at(dir)).expect("mkdir");
        }
        fs::write(
            at("var/lib/dpkg/status"),
            "Package: base-files\nVersion: 12.4\n",
        )
        .expect("write");
        fs::write(at("usr/local/bin/tool"), "#!/bin/sh\necho v1\n").expect("write");
        fs::write(at("usr/local/lib/libtool.so"), "ELF v1").expect("write");
        std::os::unix::fs::symlink("tool", at("usr/local/bin/alias")).expect("symlink");
        root
    }

    /// Sets the mtime of `path` (not following a symlink) to `seconds` after the epoch.
    fn set_mtime(path: &Path, seconds: i64) {
        use nix::sys::stat::{UtimensatFlags, utimensat};
        use nix::sys::time::TimeSpec;
        let time = TimeSpec::new(seconds, 0);
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimensat");
    }

    /// Both ways of fingerprinting `root`: reading every file, and with a content cache (filled by an earlier call
    /// when `cache` is reused), the racy window already past.
    fn fingerprints_of(root: &Path, cache: &Path) -> (Digest, Digest) {
        let later = SystemTime::now() + Duration::from_secs(10);
        let (uncached, _) = fingerprint_base_system_at(root, None, later).expect("fingerprint");
        let (cached, _) =
            fingerprint_base_system_at(root, Some(cache), later).expect("fingerprint");
        assert_eq!(uncached, cached, "the cache changed the fingerprint");
        (uncached, cached)
    }

    /// A CI step re-created a symlink in `/usr/local/bin` (same target): the old fingerprint, which hashed mtimes,
    /// changed the key of every build and cost a 407 s rebuild. Nothing a build sees changed, so neither may the
    /// fingerprint: not for a re-created link, a file rewritten with its contents, or a directory's mtime.
    #[test]
    fn a_relinked_symlink_a_touched_file_or_a_directory_mtime_keep_the_base_fingerprint() {
        let host = fake_host();
        let cache = tempfile::tempdir().expect("tempdir");
        let at = |path: &str| host.path().join(path);
        let (before, _) = fingerprints_of(host.path(), cache.path());

        fs::remove_file(at("usr/local/bin/alias")).expect("unlink");
        std::os::unix::fs::symlink("tool", at("usr/local/bin/alias")).expect("symlink");
        set_mtime(&at("usr/local/bin/alias"), 1_000_000);
        assert_eq!(
            fingerprints_of(host.path(), cache.path()).0,
            before,
            "re-created link"
        );

        fs::write(at("usr/local/bin/tool"), "#!/bin/sh\necho v1\n").expect("write");
        set_mtime(&at("usr/local/bin/tool"), 2_000_000);
        assert_eq!(
            fingerprints_of(host.path(), cache.path()).0,
            before,
            "touched file"
        );

        fs::write(at("usr/local/bin/scratch"), "").expect("write");
        fs::remove_file(at("usr/local/bin/scratch")).expect("unlink");
        for dir in ["usr/local/bin", "usr/local/bin/sub", "usr/local/lib"] {
            set_mtime(&at(dir), 3_000_000);
        }
        assert_eq!(
            fingerprints_of(host.path(), cache.path()).0,
            before,
            "directory mtimes"
        );
    }

    #[test]
    fn changed_contents_link_targets_or_entries_change_the_base_fingerprint() {
        let host = fake_host();
        let cache = tempfile::tempdir().expect("tempdir");
        let at = |path: &str| host.path().join(path);
        set_mtime(&at("usr/local/bin/tool"), 1_000_000);
        let mut seen = vec![fingerprints_of(host.path(), cache.path()).0];
        let mut expect_new = |what: &str| {
            let digest = fingerprints_of(host.path(), cache.path()).0;
            assert!(
                !seen.contains(&digest),
                "{what} did not change the fingerprint"
            );
            seen.push(digest);
        };

        // Same size and mtime, other bytes: only the contents tell.
        fs::write(at("usr/local/bin/tool"), "#!/bin/sh\necho v2\n").expect("write");
        set_mtime(&at("usr/local/bin/tool"), 1_000_000);
        expect_new("new contents of the same size and mtime");
        fs::write(at("usr/local/lib/libtool.so"), "ELF v2").expect("write");
        expect_new("a library's new contents");

        fs::remove_file(at("usr/local/bin/alias")).expect("unlink");
        std::os::unix::fs::symlink("sub", at("usr/local/bin/alias")).expect("symlink");
        expect_new("a link's new target");

        fs::write(at("usr/local/bin/added"), "").expect("write");
        expect_new("an added file");
        fs::remove_file(at("usr/local/bin/added")).expect("unlink");
        fs::remove_file(at("usr/local/lib/libtool.so")).expect("unlink");
        expect_new("a removed file");
        fs::create_dir(at("usr/local/include")).expect("mkdir");
        fs::write(at("usr/local/include/tool.h"), "").expect("write");
        expect_new("an added header");

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(at("usr/local/bin/tool"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        expect_new("a file made executable");

        fs::write(
            at("var/lib/dpkg/status"),
            "Package: base-files\nVersion: 12.5\n",
        )
        .expect("write");
        expect_new("an upgraded package");
    }

    #[test]
    fn the_content_cache_reads_only_changed_files_and_survives_damage() {
        let host = fake_host();
        let cache = tempfile::tempdir().expect("tempdir");
        let at = |path: &str| host.path().join(path);
        let later = SystemTime::now() + Duration::from_secs(10);
        let run = |now| {
            fingerprint_base_system_at(host.path(), Some(cache.path()), now).expect("fingerprint")
        };

        // Just written, the files are racy: read every time until they have aged.
        let (digest, read) = run(SystemTime::now());
        assert_eq!(read, 2);
        assert_eq!(run(SystemTime::now()), (digest, 2));
        assert_eq!(run(later), (digest, 2));
        assert_eq!(run(later), (digest, 0), "settled files are remembered");

        fs::write(at("usr/local/bin/tool"), "#!/bin/sh\necho v1\n").expect("write");
        assert_eq!(run(later), (digest, 1), "a touched file is read again");
        assert_eq!(run(later), (digest, 0));

        let file = cache.path().join(CONTENT_CACHE_FILE);
        let mut bytes = fs::read(&file).expect("read the cache");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&file, &bytes).expect("write");
        assert_eq!(run(later), (digest, 2), "a damaged cache is ignored");
        fs::write(&file, b"foreign").expect("write");
        assert_eq!(run(later), (digest, 2), "a foreign file is ignored");
        assert_eq!(run(later), (digest, 0), "and replaced");
    }

    #[test]
    fn host_path_fingerprint_follows_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sdk = dir.path().join("sdk");
        fs::create_dir_all(sdk.join("bin")).expect("mkdir");
        fs::write(sdk.join("bin/tool"), "v1").expect("write");
        let paths = vec![sdk.clone()];
        let first = fingerprint_host_paths(&paths).expect("fingerprint");
        assert_eq!(first, fingerprint_host_paths(&paths).expect("fingerprint"));
        fs::write(sdk.join("bin/tool"), "v2 longer").expect("write");
        let second = fingerprint_host_paths(&paths).expect("fingerprint");
        assert_ne!(first, second);
        fs::write(sdk.join("new-file"), "").expect("write");
        assert_ne!(second, fingerprint_host_paths(&paths).expect("fingerprint"));
    }

    #[test]
    fn a_deep_host_path_is_fingerprinted_from_a_small_stack() {
        let dir = tempfile::tempdir().unwrap();
        let mut leaf = dir.path().to_path_buf();
        for _ in 0..1500 {
            leaf.push("d");
        }
        fs::create_dir_all(&leaf).unwrap();
        fs::write(leaf.join("f"), b"x").unwrap();
        let root = dir.path().to_path_buf();
        // Recursion 1000 deep overflowed even the main thread; rayon's threads have 2 MiB.
        let digest = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || fingerprint_host_paths(&[root]).unwrap())
            .unwrap()
            .join()
            .unwrap();
        fs::write(leaf.join("f"), b"changed").unwrap();
        assert_ne!(
            fingerprint_host_paths(&[dir.path().to_path_buf()]).unwrap(),
            digest
        );
    }

    /// Issue 20, attack 7: a listening socket under a declared host path let the build reach a host service.
    #[test]
    fn a_host_path_holding_a_socket_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sdk = dir.path().join("sdk");
        fs::create_dir_all(sdk.join("run")).expect("mkdir");
        fs::write(sdk.join("tool"), "sdk").expect("write");
        fingerprint_host_paths(std::slice::from_ref(&sdk)).expect("no socket yet");
        let socket = sdk.join("run/agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        match fingerprint_host_paths(std::slice::from_ref(&sdk)) {
            Err(Error::SocketInHostPath {
                host_path,
                socket: found,
            }) => {
                assert_eq!(host_path, sdk);
                assert_eq!(found, socket);
            }
            other => panic!("expected SocketInHostPath, got {other:?}"),
        }
        // Declaring the socket itself is no way around it.
        assert!(matches!(
            fingerprint_host_paths(std::slice::from_ref(&socket)),
            Err(Error::SocketInHostPath { .. })
        ));
    }

    #[test]
    fn host_path_order_does_not_matter() {
        let a = PathBuf::from("/usr/lib/os-release");
        let b = PathBuf::from("/etc/hostname");
        let forward = fingerprint_host_paths(&[a.clone(), b.clone()]).expect("fingerprint");
        assert_eq!(
            forward,
            fingerprint_host_paths(&[b, a]).expect("fingerprint")
        );
    }

    #[test]
    fn missing_host_path_and_tool_are_named() {
        match fingerprint_host_paths(&[PathBuf::from("/nonexistent/opt/hpcc")]) {
            Err(Error::MissingHostPath { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent/opt/hpcc"));
            }
            other => panic!("expected MissingHostPath, got {other:?}"),
        }
        match fingerprint_host_tools(&[HostTool::new("hstore-no-such-nvcc", ["--version"])]) {
            Err(Error::MissingHostTool { program, .. }) => {
                assert_eq!(program, "hstore-no-such-nvcc");
            }
            other => panic!("expected MissingHostTool, got {other:?}"),
        }
    }

    #[test]
    fn host_tool_output_is_fingerprinted() {
        let echo = |text: &str| {
            fingerprint_host_tools(&[HostTool::new("echo", [text])]).expect("echo runs")
        };
        assert_eq!(echo("release 12.4"), echo("release 12.4"));
        assert_ne!(echo("release 12.4"), echo("release 12.5"));
        match fingerprint_host_tools(&[HostTool::new("false", Vec::<String>::new())]) {
            Err(Error::HostToolFailed { program, .. }) => assert_eq!(program, "false"),
            other => panic!("expected HostToolFailed, got {other:?}"),
        }
    }
}
