//! The stat cache: re-adding a local tree that has not changed reads no file contents.
//!
//! Like git's index, it remembers, per tree root and relative path, a file's (device, inode, size, mtime, ctime,
//! mode) and the address its bytes had. When a later add finds the same stat, it takes the address without opening
//! the file. A change of contents always changes the stat: a write sets mtime and ctime (ctime cannot be set back
//! from user space), a rename or replacement gives another inode or path, a chmod sets ctime.
//!
//! **Racy entries.** Timestamps have a granularity (a kernel tick; up to 2 s on some file systems), so a file
//! modified within the same tick as our stat could keep its mtime and ctime. An entry is therefore only recorded
//! when both of the file's timestamps are older than [`RACY_WINDOW`] before the add began; younger ("racily clean")
//! files are re-hashed on every add until they have aged.
//!
//! **Trust.** The cache is a hint about the local file system, never about the store: an entry whose blob is missing
//! from the store is re-read (see `ingest`). It lives in the store (`cache-v1/stat/`, one file per tree root, named
//! by the BLAKE3 of the root's path) with the same trust as the objects; it is only ever used for local directories
//! the user adds (`store add`, `path` sources), never for verify. A missing, torn or foreign cache file is
//! ignored (it ends with the BLAKE3 of its body), and concurrent writers replace it atomically, last one wins.
//!
//! Encoding (little-endian): magic `"hstore-statcache-v1\0"`, count u64, then per entry: path_len u32 + path bytes
//! (relative to the root), dev u64, ino u64, size u64, mtime_s i64, mtime_ns u32, ctime_s i64, ctime_ns u32,
//! mode u32, format u8 (0 raw, 1 zstd), digest [32]; then BLAKE3 of everything before it [32].

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::digest::{DIGEST_LEN, Digest};
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::store::Store;

const MAGIC: &[u8; 20] = b"hstore-statcache-v1\0";

/// Files whose mtime or ctime is this close to the start of an add are not recorded (see the module docs).
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What must be unchanged for a cached address to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
    mode: u32,
}

impl StatKey {
    /// The key of a file from its `stat` (`fstatat` with `AT_SYMLINK_NOFOLLOW`).
    pub(crate) fn of_stat(stat: &nix::sys::stat::FileStat) -> Self {
        Self {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: u64::try_from(stat.st_size).unwrap_or(u64::MAX),
            mtime: (
                stat.st_mtime,
                u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            ),
            ctime: (
                stat.st_ctime,
                u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
            ),
            mode: stat.st_mode,
        }
    }

    /// Whether both timestamps are strictly before `cutoff` (seconds, nanoseconds since the epoch).
    fn settled_before(&self, cutoff: (i64, u32)) -> bool {
        self.mtime < cutoff && self.ctime < cutoff
    }
}

/// One remembered file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: StatKey,
    pub(crate) digest: Digest,
    pub(crate) format: ObjectFormat,
}

/// The cache of one tree root, as loaded, plus the entries this add will save.
#[derive(Debug)]
pub(crate) struct StatCache {
    file: PathBuf,
    old: HashMap<Vec<u8>, Entry>,
    cutoff: (i64, u32),
}

impl StatCache {
    /// The cache of `root` in `store`; empty if there is none or it cannot be read. Call before walking: the racy
    /// cutoff is taken now.
    pub(crate) fn load(store: &Store, root: &Path) -> Self {
        let cutoff = crate::clock::now()
            .checked_sub(RACY_WINDOW)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs().cast_signed(), d.subsec_nanos()));
        // `./tree` and `/abs/tree` are one tree: key by the canonical path when there is one.
        let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut hasher = blake3::Hasher::new();
        hasher.update(MAGIC);
        hasher.update(canonical.as_os_str().as_bytes());
        let file = store
            .layout()
            .stat_caches()
            .join(Digest::from(hasher.finalize()).to_hex());
        let old = match fs::read(&file) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                tracing::debug!("ignoring unreadable stat cache `{}`", file.display());
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        Self { file, old, cutoff }
    }

    /// How many paths the loaded cache holds.
    pub(crate) fn len(&self) -> usize {
        self.old.len()
    }

    /// The cached entry for `relative` if the file's stat is still `key`.
    pub(crate) fn lookup(&self, relative: &[u8], key: &StatKey) -> Option<Entry> {
        self.old
            .get(relative)
            .filter(|entry| entry.key == *key)
            .copied()
    }

    /// Whether an entry with `key` may be recorded (its timestamps are older than the racy window).
    pub(crate) fn may_record(&self, key: &StatKey) -> bool {
        key.settled_before(self.cutoff)
    }

    /// Replaces the cache file with `entries` (atomically; not fsynced: losing it only costs re-hashing).
    pub(crate) fn save(&self, store: &Store, entries: &[(Vec<u8>, Entry)]) -> Result<()> {
        let bytes = encode(entries);
        let dir = store.layout().stat_caches();
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        let mut temp = store.temp_file()?;
        temp.write_all(&bytes)
            .map_err(Error::io("write", temp.path()))?;
        temp.persist(&self.file)
            .map_err(|error| Error::io("rename into place", &self.file)(error.error))?;
        Ok(())
    }
}

fn encode(entries: &[(Vec<u8>, Entry)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + entries.len() * 128 + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (path, entry) in entries {
        let key = &entry.key;
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(&key.dev.to_le_bytes());
        out.extend_from_slice(&key.ino.to_le_bytes());
        out.extend_from_slice(&key.size.to_le_bytes());
        out.extend_from_slice(&key.mtime.0.to_le_bytes());
        out.extend_from_slice(&key.mtime.1.to_le_bytes());
        out.extend_from_slice(&key.ctime.0.to_le_bytes());
        out.extend_from_slice(&key.ctime.1.to_le_bytes());
        out.extend_from_slice(&key.mode.to_le_bytes());
        out.push(match entry.format {
            ObjectFormat::ZstdBlob => 1,
            ObjectFormat::RawBlob | ObjectFormat::Directory => 0,
        });
        out.extend_from_slice(entry.digest.as_bytes());
    }
    let trailer = blake3::hash(&out);
    out.extend_from_slice(trailer.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<HashMap<Vec<u8>, Entry>> {
    let body_len = bytes.len().checked_sub(DIGEST_LEN)?;
    let (body, trailer) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != trailer {
        return None;
    }
    let mut reader = Reader(body);
    if reader.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let count = u64::from_le_bytes(reader.array()?);
    let mut entries = HashMap::new();
    for _ in 0..count {
        let path_len = u32::from_le_bytes(reader.array()?) as usize;
        let path = reader.take(path_len)?.to_vec();
        let key = StatKey {
            dev: u64::from_le_bytes(reader.array()?),
            ino: u64::from_le_bytes(reader.array()?),
            size: u64::from_le_bytes(reader.array()?),
            mtime: (
                i64::from_le_bytes(reader.array()?),
                u32::from_le_bytes(reader.array()?),
            ),
            ctime: (
                i64::from_le_bytes(reader.array()?),
                u32::from_le_bytes(reader.array()?),
            ),
            mode: u32::from_le_bytes(reader.array()?),
        };
        let format = match reader.take(1)?[0] {
            0 => ObjectFormat::RawBlob,
            1 => ObjectFormat::ZstdBlob,
            _ => return None,
        };
        let digest = Digest::from_bytes(reader.array()?);
        entries.insert(
            path,
            Entry {
                key,
                digest,
                format,
            },
        );
    }
    reader.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_damage_is_ignored() {
        let key = StatKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (4, 5),
            ctime: (-6, 7),
            mode: 0o100_644,
        };
        let entries = vec![
            (
                b"a/b".to_vec(),
                Entry {
                    key,
                    digest: Digest::of_bytes(b"x"),
                    format: ObjectFormat::ZstdBlob,
                },
            ),
            (
                vec![0xff],
                Entry {
                    key,
                    digest: Digest::of_bytes(b"y"),
                    format: ObjectFormat::RawBlob,
                },
            ),
        ];
        let bytes = encode(&entries);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[&b"a/b".to_vec()], entries[0].1);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(decode(&flipped).is_none());
    }
}
