//! Writing objects: blobs streamed through the hasher and (where it pays) the zstd encoder, small blobs compressed
//! in one call, directory nodes; and the pooled buffers and frame rounds that keep memory bounded.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::{IndexedParallelIterator, IntoParallelRefIterator, ParallelIterator};

use super::{BUFFER_SIZE, Durability, MIN_COMPRESS_SIZE, PROBE_SIZE, Store, is_already_compressed};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::frames::FRAME_SIZE;
use crate::layout::ObjectFormat;
use crate::tree::Directory;

impl Store {
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
