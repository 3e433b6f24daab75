//! Pack files: many small objects in one file (`packs-v1/<hex>.pack`), so that a tree add creates one file per
//! batch instead of one per object.
//!
//! Creating, filling and renaming a file per object cost a cold add of the Rust toolchain (52k files) more kernel
//! time than compressing it (`openat` → `__ext4_new_inode`, `rename` and zeroing each last page: ~30 % of all CPU in
//! `perf`), which is why `tar | zstd`, writing one stream, was faster. A pack holds each object's stored bytes
//! exactly as its loose file would (raw, zstd or a directory node), so every reader decodes them the same way; only
//! where the bytes lie changes. Format, all integers little-endian:
//!
//! ```text
//! magic     "hstore-pack-v1\0"                          15 bytes
//! objects   stored bytes, back to back
//! index     count × (digest [32], format u8, offset u64, length u64), sorted by (digest, format), no duplicates
//! trailer   count u64, index offset u64
//! ```
//!
//! The file is named by the BLAKE3 of its index and trailer, so the name vouches for the index (a reader checks it)
//! and every object vouches for itself by its address, as loose objects do. Two packs never share a name unless
//! they hold the same objects at the same places. A pack is written in `tmp/`, made durable and renamed into place
//! whole, so a pack that exists is complete; packs are never changed, only replaced by gc or repair (see
//! [`PackWriter`] and `gc`).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tempfile::{NamedTempFile, TempPath};

use crate::digest::Digest;
use crate::layout::ObjectFormat;

/// The first bytes of every pack.
const MAGIC: &[u8] = b"hstore-pack-v1\0";

/// Bytes of one index entry.
const ENTRY_SIZE: usize = 32 + 1 + 8 + 8;

/// Bytes of the trailer.
const TRAILER_SIZE: usize = 16;

/// The file suffix of a pack.
const PACK_SUFFIX: &str = "pack";

/// Bytes written between two requests to start writing a pack back to disk (see [`start_writeback`]).
const WRITEBACK_STEP: u64 = 8 << 20;

/// Asks the kernel to start writing `len` bytes of `file`'s dirty pages from `from` on to disk now, without waiting
/// for it. The batch's `syncfs` still makes them durable; this only moves the disk's work from that final wait to
/// the time spent compressing (the kernel's own writeback starts only once 10 % of memory is dirty, so otherwise a
/// whole add's output is written during the last `syncfs`). `POSIX_FADV_DONTNEED` is the safe call that does it on
/// Linux: it starts writeback of the range (as `sync_file_range(SYNC_FILE_RANGE_WRITE)` would) and drops only
/// pages that are already clean, which pages just written are not. A failure only loses the head start.
pub(crate) fn start_writeback(file: &File, from: u64, len: u64) {
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    let _ = nix::fcntl::posix_fadvise(
        file,
        from,
        len,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// One object in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackEntry {
    pub digest: Digest,
    pub format: ObjectFormat,
    /// Where its stored bytes start in the pack file.
    pub offset: u64,
    /// Their length.
    pub len: u64,
}

/// Why a pack file cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Malformed(String),
}

fn format_code(format: ObjectFormat) -> u8 {
    match format {
        ObjectFormat::RawBlob => 1,
        ObjectFormat::ZstdBlob => 2,
        ObjectFormat::Directory => 3,
    }
}

fn format_of_code(code: u8) -> Option<ObjectFormat> {
    match code {
        1 => Some(ObjectFormat::RawBlob),
        2 => Some(ObjectFormat::ZstdBlob),
        3 => Some(ObjectFormat::Directory),
        _ => None,
    }
}

/// A pack being filled in `tmp/`. Space is reserved under the caller's lock ([`PackWriter::reserve`]) and written
/// outside it ([`Reservation::write`]), so threads copy their objects into the page cache in parallel instead of in
/// turn; [`PackWriter::finish`] waits for every reserved write before it writes the index.
#[derive(Debug)]
pub(crate) struct PackWriter {
    temp: TempPath,
    /// The temp file's path, shared with reservations for their errors.
    path: Arc<Path>,
    file: Arc<File>,
    end: u64,
    entries: Vec<PackEntry>,
    writes: Arc<Writes>,
}

/// The reserved writes of one pack that have not finished, and whether any failed.
#[derive(Debug, Default)]
struct Writes {
    pending: Mutex<usize>,
    finished: Condvar,
    failed: AtomicBool,
}

/// Room for one object in a pack, to be filled with [`Reservation::write`] (dropping it unwritten fails the pack).
#[must_use]
pub(crate) struct Reservation {
    path: Arc<Path>,
    file: Arc<File>,
    offset: u64,
    len: u64,
    writes: Arc<Writes>,
    done: bool,
}

impl Reservation {
    /// The pack's temp file (for errors; shared, so keeping it costs no allocation).
    pub fn path(&self) -> Arc<Path> {
        Arc::clone(&self.path)
    }

    /// Writes the object's stored bytes, which must be as long as reserved.
    pub fn write(mut self, stored: &[u8]) -> io::Result<()> {
        let result = if stored.len() as u64 == self.len {
            self.file.write_all_at(stored, self.offset)
        } else {
            Err(io::Error::other(
                "object length differs from the reservation",
            ))
        };
        if result.is_ok() {
            // Crossed a step boundary: start writing back the step before it (see `start_writeback`).
            let (before, after) = (
                self.offset / WRITEBACK_STEP,
                (self.offset + self.len) / WRITEBACK_STEP,
            );
            if after > before && after >= 2 {
                start_writeback(&self.file, (after - 2) * WRITEBACK_STEP, WRITEBACK_STEP);
            }
        }
        self.finish(result.is_ok());
        result
    }

    fn finish(&mut self, ok: bool) {
        self.done = true;
        if !ok {
            self.writes.failed.store(true, Ordering::Relaxed);
        }
        let mut pending = self
            .writes
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *pending -= 1;
        if *pending == 0 {
            self.writes.finished.notify_all();
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.finish(false);
        }
    }
}

/// A finished pack, complete in `tmp/`, not yet durable nor visible.
#[derive(Debug)]
pub(crate) struct SealedPack {
    pub temp: TempPath,
    /// Its file name in `packs-v1/`.
    pub name: String,
    pub entries: Vec<PackEntry>,
}

impl PackWriter {
    /// Starts a pack in the temp file `temp`.
    pub fn new(temp: NamedTempFile) -> io::Result<Self> {
        let (file, temp) = temp.into_parts();
        file.write_all_at(MAGIC, 0)?;
        Ok(Self {
            path: Arc::from(temp.to_path_buf()),
            temp,
            file: Arc::new(file),
            end: MAGIC.len() as u64,
            entries: Vec::new(),
            writes: Arc::default(),
        })
    }

    /// The temp file's path (for errors).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Objects in it so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reserves room for one object of `len` stored bytes and records it in the index. The caller makes sure an
    /// object is reserved once, and writes it with the returned [`Reservation`].
    pub fn reserve(&mut self, digest: Digest, format: ObjectFormat, len: u64) -> Reservation {
        self.entries.push(PackEntry {
            digest,
            format,
            offset: self.end,
            len,
        });
        let offset = self.end;
        self.end += len;
        *self
            .writes
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        Reservation {
            path: Arc::clone(&self.path),
            file: Arc::clone(&self.file),
            offset,
            len,
            writes: Arc::clone(&self.writes),
            done: false,
        }
    }

    /// Reserves and writes one object at once (for a single writer: gc and repair).
    pub fn append(
        &mut self,
        digest: Digest,
        format: ObjectFormat,
        stored: &[u8],
    ) -> io::Result<()> {
        self.reserve(digest, format, stored.len() as u64)
            .write(stored)
    }

    /// Waits for every reserved write, then writes the index and trailer and names the pack. A failed write fails
    /// the pack.
    pub fn finish(mut self) -> io::Result<SealedPack> {
        {
            let mut pending = self
                .writes
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while *pending > 0 {
                pending = self
                    .writes
                    .finished
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        if self.writes.failed.load(Ordering::Relaxed) {
            return Err(io::Error::other("an object of the pack was not written"));
        }
        self.entries
            .sort_by_key(|entry| (entry.digest, entry.format));
        self.entries
            .dedup_by_key(|entry| (entry.digest, entry.format));
        let mut tail = Vec::with_capacity(self.entries.len() * ENTRY_SIZE + TRAILER_SIZE);
        for entry in &self.entries {
            tail.extend_from_slice(entry.digest.as_bytes());
            tail.push(format_code(entry.format));
            tail.extend_from_slice(&entry.offset.to_le_bytes());
            tail.extend_from_slice(&entry.len.to_le_bytes());
        }
        tail.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        tail.extend_from_slice(&self.end.to_le_bytes());
        self.file.write_all_at(&tail, self.end)?;
        let name = format!("{}.{PACK_SUFFIX}", blake3::hash(&tail).to_hex());
        Ok(SealedPack {
            temp: self.temp,
            name,
            entries: self.entries,
        })
    }
}

/// Reads and checks the index of the pack at `path`: the name must be the hash of index and trailer, and every
/// entry must lie inside the object area, in order and without duplicates.
pub(crate) fn read_index(path: &Path) -> Result<Vec<PackEntry>, PackError> {
    let malformed = |reason: &str| PackError::Malformed(reason.to_owned());
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let min = (MAGIC.len() + TRAILER_SIZE) as u64;
    if len < min {
        return Err(malformed("shorter than a pack's header and trailer"));
    }
    let mut magic = [0; MAGIC.len()];
    file.read_exact_at(&mut magic, 0)?;
    if magic != MAGIC {
        return Err(malformed("does not start with the pack magic"));
    }
    let mut trailer = [0; TRAILER_SIZE];
    file.read_exact_at(&mut trailer, len - TRAILER_SIZE as u64)?;
    let count = u64_at(&trailer, 0);
    let index_offset = u64_at(&trailer, 8);
    let index_len = count
        .checked_mul(ENTRY_SIZE as u64)
        .filter(|index_len| {
            index_offset >= MAGIC.len() as u64
                && index_offset.checked_add(*index_len) == Some(len - TRAILER_SIZE as u64)
        })
        .ok_or_else(|| malformed("its trailer does not match its length"))?;
    let mut tail = vec![0; usize::try_from(index_len).map_err(|_| malformed("index too large"))?];
    file.read_exact_at(&mut tail, index_offset)?;
    tail.extend_from_slice(&trailer);
    let expected = format!("{}.{PACK_SUFFIX}", blake3::hash(&tail).to_hex());
    if path.file_name().and_then(|name| name.to_str()) != Some(expected.as_str()) {
        return Err(PackError::Malformed(format!(
            "its index hashes to {expected}, not to its name"
        )));
    }
    let mut entries = Vec::with_capacity(tail.len() / ENTRY_SIZE);
    for raw in tail[..tail.len() - TRAILER_SIZE].chunks_exact(ENTRY_SIZE) {
        let mut digest = [0; 32];
        digest.copy_from_slice(&raw[..32]);
        let format = format_of_code(raw[32]).ok_or_else(|| malformed("unknown object format"))?;
        let offset = u64_at(raw, 33);
        let object_len = u64_at(raw, 41);
        if offset < MAGIC.len() as u64
            || offset
                .checked_add(object_len)
                .is_none_or(|end| end > index_offset)
        {
            return Err(malformed("an entry lies outside the object area"));
        }
        let entry = PackEntry {
            digest: Digest::from(blake3::Hash::from_bytes(digest)),
            format,
            offset,
            len: object_len,
        };
        if entries.last().is_some_and(|last: &PackEntry| {
            (last.digest, last.format) >= (entry.digest, entry.format)
        }) {
            return Err(malformed("index entries out of order"));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The little-endian `u64` at `at` in `bytes` (the caller has checked the length).
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut le = [0; 8];
    le.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(le)
}

/// Where an object's stored bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Its own file in `objects-v1/`, whole.
    Loose(PathBuf),
    /// A range of a pack file.
    Packed {
        /// The pack file.
        pack: PathBuf,
        /// Where the bytes start.
        offset: u64,
        /// How many.
        len: u64,
    },
}

impl Location {
    /// The file holding the bytes (for errors and reports).
    pub fn path(&self) -> &Path {
        match self {
            Location::Loose(path) | Location::Packed { pack: path, .. } => path,
        }
    }

    /// Where the object's stored bytes start in that file.
    pub fn start(&self) -> u64 {
        match self {
            Location::Loose(_) => 0,
            Location::Packed { offset, .. } => *offset,
        }
    }

    /// How many stored bytes the object has: known for a packed one, a `stat` for a loose one.
    pub fn stored_len(&self) -> io::Result<u64> {
        match self {
            Location::Loose(path) => Ok(fs::metadata(path)?.len()),
            Location::Packed { len, .. } => Ok(*len),
        }
    }

    /// Opens the file positioned at the object's first byte, with the number of stored bytes.
    pub fn open(&self) -> io::Result<(File, u64)> {
        match self {
            Location::Loose(path) => {
                let file = File::open(path)?;
                let len = file.metadata()?.len();
                Ok((file, len))
            }
            Location::Packed { pack, offset, len } => {
                let mut file = File::open(pack)?;
                file.seek(SeekFrom::Start(*offset))?;
                Ok((file, *len))
            }
        }
    }

    /// Reads the whole stored bytes.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        match self {
            Location::Loose(path) => fs::read(path),
            Location::Packed { pack, offset, len } => {
                let file = File::open(pack)?;
                let mut bytes = vec![0; usize::try_from(*len).map_err(io::Error::other)?];
                file.read_exact_at(&mut bytes, *offset)?;
                Ok(bytes)
            }
        }
    }
}

/// Every file in `dir` named like a pack (path and name), sorted; none when `dir` does not exist (a v1 store).
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut packs = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && name.ends_with(PACK_SUFFIX)
        {
            packs.push((entry.path(), name.to_owned()));
        }
    }
    packs.sort();
    Ok(packs)
}

/// Where one packed object is, in memory: its pack by number.
#[derive(Clone, Copy, Debug)]
struct Packed {
    pack: usize,
    format: ObjectFormat,
    offset: u64,
    len: u64,
}

/// The objects of every pack this process has read (or written), by address.
#[derive(Debug, Default)]
pub(crate) struct PackIndex {
    packs: Vec<PathBuf>,
    names: HashSet<String>,
    objects: HashMap<Digest, Packed>,
    /// Whether `packs-v1/` has been listed at least once.
    loaded: bool,
}

impl PackIndex {
    /// Whether the directory was read at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Reads every pack in `dir` not read yet. A pack that cannot be read is skipped with a warning (verify
    /// reports it): its objects read as missing, never as wrong bytes.
    pub fn refresh(&mut self, dir: &Path) -> io::Result<()> {
        self.loaded = true;
        for (path, name) in list(dir)? {
            if self.names.contains(&name) {
                continue;
            }
            match read_index(&path) {
                Ok(entries) => self.insert(path, name, &entries),
                // Removed by a gc since the listing: what it held is elsewhere now, or gone.
                Err(PackError::Io(error)) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!("skipping pack {}: {error}", path.display()),
            }
        }
        Ok(())
    }

    /// Records the packs of a listing of the whole directory that the caller read itself (verify, gc, `ls`), so
    /// the lookups that follow do not read their indexes again.
    pub fn insert_listed(&mut self, packs: &[(PathBuf, String, Vec<PackEntry>)]) {
        self.loaded = true;
        for (path, name, entries) in packs {
            if !self.names.contains(name) {
                self.insert(path.clone(), name.clone(), entries);
            }
        }
    }

    /// Records a pack's objects (a pack just read, or just published by this process).
    pub fn insert(&mut self, path: PathBuf, name: String, entries: &[PackEntry]) {
        if !self.names.insert(name) {
            return;
        }
        let pack = self.packs.len();
        self.packs.push(path);
        self.objects.reserve(entries.len());
        for entry in entries {
            self.objects.entry(entry.digest).or_insert(Packed {
                pack,
                format: entry.format,
                offset: entry.offset,
                len: entry.len,
            });
        }
    }

    /// Forgets everything (after gc or repair rewrote packs); the next lookup reads the directory again.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Where `digest` is packed, if in a pack this index has read.
    pub fn get(&self, digest: &Digest) -> Option<(ObjectFormat, Location)> {
        let packed = self.objects.get(digest)?;
        let pack = self.packs.get(packed.pack)?;
        Some((
            packed.format,
            Location::Packed {
                pack: pack.clone(),
                offset: packed.offset,
                len: packed.len,
            },
        ))
    }

    /// The format of `digest`, if packed.
    pub fn format(&self, digest: &Digest) -> Option<ObjectFormat> {
        self.objects.get(digest).map(|packed| packed.format)
    }
}

/// Writes a new pack holding the `keep` entries of the pack at `path`, copied as they are, into `dir` (through a
/// temp file in `tmp`), durable before it is renamed; returns its path, or `None` when nothing is kept. The caller
/// removes the old pack afterwards, so every kept object is present at every moment.
pub(crate) fn rewrite(
    path: &Path,
    entries: &[PackEntry],
    keep: &dyn Fn(&PackEntry) -> bool,
    tmp: &Path,
    dir: &Path,
) -> io::Result<Option<PathBuf>> {
    let kept: Vec<&PackEntry> = entries.iter().filter(|entry| keep(entry)).collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let source = File::open(path)?;
    let mut writer = PackWriter::new(tempfile::Builder::new().prefix("pack-").tempfile_in(tmp)?)?;
    let mut bytes = Vec::new();
    for entry in kept {
        bytes.resize(usize::try_from(entry.len).map_err(io::Error::other)?, 0);
        source.read_exact_at(&mut bytes, entry.offset)?;
        writer.append(entry.digest, entry.format, &bytes)?;
    }
    let sealed = writer.finish()?;
    File::open(&sealed.temp)?.sync_all()?;
    let target = dir.join(&sealed.name);
    match sealed.temp.persist_noclobber(&target) {
        Ok(()) => {}
        Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error.error),
    }
    File::open(dir)?.sync_all()?;
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_of(dir: &Path, objects: &[(&[u8], ObjectFormat)]) -> (PathBuf, Vec<PackEntry>) {
        let mut writer = PackWriter::new(NamedTempFile::new_in(dir).unwrap()).unwrap();
        for (bytes, format) in objects {
            writer
                .append(Digest::of_bytes(bytes), *format, bytes)
                .unwrap();
        }
        let sealed = writer.finish().unwrap();
        let path = dir.join(&sealed.name);
        sealed.temp.persist(&path).unwrap();
        (path, sealed.entries)
    }

    const THREE: [(&[u8], ObjectFormat); 3] = [
        (b"one", ObjectFormat::RawBlob),
        (b"two two", ObjectFormat::RawBlob),
        (b"", ObjectFormat::RawBlob),
    ];

    #[test]
    fn a_pack_reads_back_what_was_appended_and_its_name_is_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let (path, written) = pack_of(dir.path(), &THREE);
        let read = read_index(&path).unwrap();
        assert_eq!(read, written);
        for entry in &read {
            let location = Location::Packed {
                pack: path.clone(),
                offset: entry.offset,
                len: entry.len,
            };
            assert_eq!(Digest::of_bytes(&location.read().unwrap()), entry.digest);
        }
        // The same objects appended in the same order make the same pack, byte for byte.
        let again = tempfile::tempdir().unwrap();
        let (same, _) = pack_of(again.path(), &THREE);
        assert_eq!(path.file_name(), same.file_name());
        assert_eq!(fs::read(&path).unwrap(), fs::read(&same).unwrap());
    }

    #[test]
    fn a_damaged_index_or_a_renamed_pack_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = pack_of(dir.path(), &[(b"one", ObjectFormat::RawBlob)]);
        let renamed = dir.path().join(format!("{}.pack", "0".repeat(64)));
        fs::copy(&path, &renamed).unwrap();
        assert!(matches!(read_index(&renamed), Err(PackError::Malformed(_))));
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - TRAILER_SIZE - 1;
        bytes[at] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(read_index(&path), Err(PackError::Malformed(_))));
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(read_index(&path), Err(PackError::Malformed(_))));
    }

    #[test]
    fn a_pack_with_a_reserved_object_never_written_is_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = PackWriter::new(NamedTempFile::new_in(dir.path()).unwrap()).unwrap();
        writer
            .append(Digest::of_bytes(b"one"), ObjectFormat::RawBlob, b"one")
            .unwrap();
        drop(writer.reserve(Digest::of_bytes(b"two"), ObjectFormat::RawBlob, 3));
        assert!(writer.finish().is_err());
        let mut writer = PackWriter::new(NamedTempFile::new_in(dir.path()).unwrap()).unwrap();
        let reservation = writer.reserve(Digest::of_bytes(b"two"), ObjectFormat::RawBlob, 3);
        assert!(reservation.write(b"too long").is_err());
        assert!(writer.finish().is_err());
    }

    #[test]
    fn rewrite_keeps_only_what_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, entries) = pack_of(
            dir.path(),
            &[
                (b"keep me", ObjectFormat::RawBlob),
                (b"drop me", ObjectFormat::RawBlob),
            ],
        );
        let kept = Digest::of_bytes(b"keep me");
        let new = rewrite(
            &path,
            &entries,
            &|entry| entry.digest == kept,
            dir.path(),
            dir.path(),
        )
        .unwrap()
        .unwrap();
        let read = read_index(&new).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].digest, kept);
        assert_eq!(
            rewrite(&path, &entries, &|_| false, dir.path(), dir.path()).unwrap(),
            None
        );
    }
}
