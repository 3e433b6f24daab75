//! Nix ARchive (NAR) serialization of store objects: `hstore store dump` streams a tree as the exact bytes
//! `nix-store --dump` gives for the same directory.
//!
//! Format (Eelco Dolstra's thesis, §5.2.1; Nix `src/libutil/archive.cc`): every token is a string written as a u64
//! little-endian length, the bytes, and zero padding to a multiple of 8. Entries of a directory MUST appear sorted by
//! name bytes — the same order as our directory nodes, so no re-sorting is needed. Names and link targets are bytes.
//!
//! Pipeline (decompression dominates, and one core decompresses about as fast as `nix-store` copies):
//! - a *walker* thread visits the tree in NAR order and emits [`Item`]s: the serialized tokens between file contents,
//!   and for each job a channel its bytes will arrive on. A file larger than [`BATCH_FILE_SIZE`] is a [`Job`] of
//!   its own; smaller ones are gathered, with the tokens around them, into batches of about [`BATCH_SIZE`] bytes
//!   that a worker serializes whole (a tree of small files then costs a handoff per batch, not two per file);
//! - *workers* (up to `available_parallelism`) take jobs in NAR order and decompress each file into chunks; a large
//!   file stored as several frames (see `frames`) is one job per frame, so one file keeps every worker busy;
//! - the calling thread writes the items strictly in order, so the output is byte-identical whatever the timing.
//!
//! When the tree is in the materialized-tree cache (`trees-v1/`), files are read from there, raw, instead of
//! being decompressed: the cache is checked by `store verify` like the objects, and sizes are checked here.
//!
//! Invariant (bounded memory): decompressed chunks not yet written count against [`BUFFER_BUDGET`]; a worker waits
//! for room unless its job is the one being written (that job must progress, or nothing would free room).
//! See: <https://github.com/NixOS/nix/blob/master/src/libutil/archive.cc>

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::frames::{FRAME_SIZE, Frame};
use crate::layout::ObjectFormat;
use crate::path_component::PathComponent;
use crate::store::{BUFFER_SIZE, Store, read_full};
use crate::tree::Node;

/// The NAR magic token.
const NAR_MAGIC: &[u8] = b"nix-archive-1";

/// Decompressed bytes held between the workers and the writer, at most (beyond the chunk being written).
const BUFFER_BUDGET: usize = 16 << 20;

/// Files at most this large (decompressed) are decompressed in one call into one buffer.
const WHOLE_FILE_SIZE: u64 = 8 << 20;

/// Buffers of this capacity range are pooled for reuse, at most [`POOL_BUFFERS`] of them.
const POOL_MIN: usize = 64 << 10;
const POOL_MAX: usize = 2 * BUFFER_SIZE;
const POOL_BUFFERS: usize = 16;

/// Files at most this large are gathered into batches: a worker reads (and decompresses) a run of them with the
/// tokens between them into one chunk, so a tree of small files costs a handoff per batch, not two per file.
const BATCH_FILE_SIZE: u64 = 64 << 10;

/// Serialized bytes (tokens and small files' contents) gathered into one batch before it is handed on.
const BATCH_SIZE: u64 = 256 << 10;

/// Items queued between the walker and the writer (tokens and file slots, not file contents).
const ITEM_QUEUE: usize = 4096;

/// What the writer emits, in order.
enum Item {
    /// Serialized tokens.
    Tokens(Vec<u8>),
    /// Exactly `size` bytes from a job: one file's contents, one frame of a large file, or a batch.
    Contents {
        seq: u64,
        size: u64,
        chunks: Receiver<Result<Vec<u8>>>,
    },
    /// The walker failed: the dump stops here.
    Failed(Error),
}

/// What a worker turns into bytes.
enum Job {
    File(FileJob),
    Batch(BatchJob),
}

/// Small files and the tokens around them, in NAR order, for a worker to serialize into one chunk.
struct BatchJob {
    seq: u64,
    /// The bytes this batch yields: its tokens and its files' sizes.
    size: u64,
    pieces: Vec<Piece>,
    chunks: Sender<Result<Vec<u8>>>,
}

/// Part of a batch.
enum Piece {
    Tokens(Vec<u8>),
    File {
        digest: Digest,
        size: u64,
        /// The file's copy in the materialized-tree cache, read instead of the object when the tree is cached.
        cached: Option<PathBuf>,
    },
}

/// One file, or one frame of a large file, for a worker to decompress.
struct FileJob {
    seq: u64,
    digest: Digest,
    /// The bytes this job yields: the file's size, or the frame's.
    size: u64,
    source: FileSource,
    chunks: Sender<Result<Vec<u8>>>,
}

/// Where a file job's bytes come from.
enum FileSource {
    /// The blob's object.
    Object,
    /// The file's copy in the materialized-tree cache, read instead of the object when the tree is cached.
    Cached(PathBuf),
    /// One frame of the (already open) object, when the walker cut a large file.
    Frame(Arc<ObjectFile>, Frame),
}

/// A zstd object opened by the walker, shared by the jobs of its frames.
struct ObjectFile {
    path: PathBuf,
    file: File,
}

/// The byte budget shared by workers and writer.
struct Budget {
    state: Mutex<BudgetState>,
    changed: Condvar,
    /// Written chunks kept for reuse: fresh megabyte buffers would cost a page fault per 4 KiB.
    pool: Mutex<Vec<Vec<u8>>>,
}

struct BudgetState {
    used: usize,
    /// The job the writer is on.
    current: u64,
    stop: bool,
}

impl Budget {
    /// Waits until `bytes` fit (or `seq` is the job being written); false if the dump stopped.
    fn acquire(&self, seq: u64, bytes: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.stop
            && state.current != seq
            && state.used > 0
            && state.used + bytes > BUFFER_BUDGET
        {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.used += bytes;
        !state.stop
    }

    /// An empty buffer with room for `size` bytes, reused when one is pooled.
    fn buffer(&self, size: usize) -> Vec<u8> {
        if size >= POOL_MIN {
            let pooled = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            if let Some(mut buffer) = pooled {
                buffer.clear();
                buffer.reserve(size);
                return buffer;
            }
        }
        Vec::with_capacity(size)
    }

    /// A buffer of exactly `size` bytes to read into, reused when one is pooled. A pooled buffer keeps its old
    /// bytes (they are overwritten by the read, and the buffer cut to what was read): zero-filling a megabyte per
    /// chunk first would cost a pass over every byte dumped.
    fn filled_buffer(&self, size: usize) -> Vec<u8> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buffer = pooled.unwrap_or_else(|| Vec::with_capacity(size));
        buffer.resize(size, 0);
        buffer
    }

    /// Returns a written chunk for reuse.
    fn recycle(&self, buffer: Vec<u8>) {
        if (POOL_MIN..=POOL_MAX).contains(&buffer.capacity()) {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < POOL_BUFFERS {
                pool.push(buffer);
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut BudgetState)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }
}

/// Serializes tokens into a byte buffer.
#[derive(Default)]
struct Tokens(Vec<u8>);

impl Tokens {
    fn token(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self.pad(bytes.len() as u64);
    }

    fn tokens(&mut self, tokens: &[&[u8]]) {
        for token in tokens {
            self.token(token);
        }
    }

    fn pad(&mut self, len: u64) {
        let padding = (8 - (len % 8)) % 8;
        self.0
            .extend_from_slice(&[0u8; 8][..usize::try_from(padding).unwrap_or(0)]);
    }
}

/// The walker: emits the NAR's items in order and queues the file jobs.
struct Walker<'a> {
    store: &'a Store,
    /// The directory being walked inside the tree's materialized copy, when the tree is in the cache.
    cached: Option<PathBuf>,
    /// Tokens not yet handed on (they follow the batch's pieces).
    tokens: Tokens,
    /// The batch being gathered: small files and the tokens before each.
    pieces: Vec<Piece>,
    /// The bytes `pieces` yield.
    pieces_size: u64,
    items: SyncSender<Item>,
    jobs: SyncSender<Job>,
    seq: u64,
}

/// The writer or the workers are gone: the walk stops quietly (the writer reports the cause).
struct Stopped;

impl Walker<'_> {
    /// Hands on everything gathered: the tokens alone straight to the writer, a batch with files to a worker.
    fn flush(&mut self) -> std::result::Result<(), Stopped> {
        let tokens = std::mem::take(&mut self.tokens.0);
        if self.pieces.is_empty() {
            if !tokens.is_empty() {
                self.items.send(Item::Tokens(tokens)).map_err(|_| Stopped)?;
            }
            return Ok(());
        }
        let size = self.pieces_size + tokens.len() as u64;
        let mut pieces = std::mem::take(&mut self.pieces);
        self.pieces_size = 0;
        if !tokens.is_empty() {
            pieces.push(Piece::Tokens(tokens));
        }
        self.queue(size, |seq, chunks| {
            Job::Batch(BatchJob {
                seq,
                size,
                pieces,
                chunks,
            })
        })
    }

    fn maybe_flush(&mut self) -> std::result::Result<(), Stopped> {
        if self.pieces_size + self.tokens.0.len() as u64 >= BATCH_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        digest: &Digest,
        size: u64,
        executable: bool,
        cached: Option<PathBuf>,
    ) -> std::result::Result<(), Stopped> {
        self.tokens.tokens(&[b"(", b"type", b"regular"]);
        if executable {
            self.tokens.tokens(&[b"executable", b""]);
        }
        self.tokens.token(b"contents");
        self.tokens.0.extend_from_slice(&size.to_le_bytes());
        if size <= BATCH_FILE_SIZE {
            let tokens = std::mem::take(&mut self.tokens.0);
            self.pieces_size += tokens.len() as u64 + size;
            self.pieces.push(Piece::Tokens(tokens));
            self.pieces.push(Piece::File {
                digest: *digest,
                size,
                cached,
            });
        } else {
            self.flush()?;
            let frames = match &cached {
                None if size > FRAME_SIZE as u64 => self.store.object_frames(digest, size),
                _ => None,
            };
            match frames {
                Some((object, frames)) => {
                    let object = Arc::new(object);
                    for frame in frames {
                        let source = FileSource::Frame(object.clone(), frame);
                        self.job(digest, frame.content, source)?;
                    }
                }
                None => self.job(
                    digest,
                    size,
                    cached.map_or(FileSource::Object, FileSource::Cached),
                )?,
            }
        }
        self.tokens.pad(size);
        self.tokens.token(b")");
        Ok(())
    }

    /// Queues one job and the item its bytes will fill.
    fn job(
        &mut self,
        digest: &Digest,
        size: u64,
        source: FileSource,
    ) -> std::result::Result<(), Stopped> {
        self.queue(size, |seq, chunks| {
            Job::File(FileJob {
                seq,
                digest: *digest,
                size,
                source,
                chunks,
            })
        })
    }

    /// Queues the job `make` builds from its sequence number and the sender of its bytes, and the item its `size`
    /// bytes will fill.
    fn queue(
        &mut self,
        size: u64,
        make: impl FnOnce(u64, Sender<Result<Vec<u8>>>) -> Job,
    ) -> std::result::Result<(), Stopped> {
        let (sender, receiver) = channel();
        let seq = self.seq;
        self.seq += 1;
        self.jobs.send(make(seq, sender)).map_err(|_| Stopped)?;
        self.items
            .send(Item::Contents {
                seq,
                size,
                chunks: receiver,
            })
            .map_err(|_| Stopped)
    }

    /// Walks directory `digest` with an explicit stack (a tree may be deeper than any thread's stack); a store
    /// error is sent to the writer as [`Item::Failed`].
    fn directory(&mut self, digest: &Digest) -> std::result::Result<(), Stopped> {
        let mut stack = vec![self.open_directory(digest)?];
        while let Some(entries) = stack.last_mut() {
            let Some((name, node)) = entries.next() else {
                stack.pop();
                self.tokens.token(b")");
                if let Some(cached) = &mut self.cached
                    && !stack.is_empty()
                {
                    cached.pop();
                }
                if !stack.is_empty() {
                    // Closes the parent's `entry (` of this directory.
                    self.tokens.token(b")");
                    self.maybe_flush()?;
                }
                continue;
            };
            self.tokens
                .tokens(&[b"entry", b"(", b"name", name.as_bytes(), b"node"]);
            match node {
                Node::File {
                    digest,
                    size,
                    executable,
                } => {
                    let cached = self.cached.as_ref().map(|dir| dir.join(name.as_os_str()));
                    self.file(&digest, size, executable, cached)?;
                }
                Node::Symlink { target } => {
                    self.tokens
                        .tokens(&[b"(", b"type", b"symlink", b"target", &target, b")"]);
                }
                Node::Directory { digest, .. } => {
                    let child = self.open_directory(&digest)?;
                    if let Some(cached) = &mut self.cached {
                        cached.push(name.as_os_str());
                    }
                    stack.push(child);
                    continue;
                }
            }
            self.tokens.token(b")");
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// Reads directory node `digest` and emits its opening tokens.
    fn open_directory(
        &mut self,
        digest: &Digest,
    ) -> std::result::Result<std::vec::IntoIter<(PathComponent, Node)>, Stopped> {
        let directory = match self.store.directory(digest) {
            Ok(directory) => directory,
            Err(error) => {
                self.flush()?;
                self.items.send(Item::Failed(error)).map_err(|_| Stopped)?;
                return Err(Stopped);
            }
        };
        self.tokens.tokens(&[b"(", b"type", b"directory"]);
        Ok(directory.into_entries().collect::<Vec<_>>().into_iter())
    }
}

thread_local! {
    /// One zstd decompression context per worker, reused across the many small files of a tree.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// One buffer per worker for the compressed bytes of small objects (at most [`WHOLE_FILE_SIZE`]).
    static COMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Decompresses the zstd frames in `compressed` after the end of `out` (into its spare room, no zero-filling) with
/// the thread's reusable context, making room for `room` bytes; returns the bytes appended. zstd fails when the
/// frames hold more than there is room for, whether or not their headers record a size.
fn decompress_append(compressed: &[u8], out: &mut Vec<u8>, room: usize) -> io::Result<usize> {
    let cached = DECOMPRESSOR.with(|cell| cell.borrow_mut().take());
    let mut decompressor = match cached {
        Some(decompressor) => decompressor,
        None => zstd::bulk::Decompressor::new()?,
    };
    out.reserve(room);
    let mut cursor = io::Cursor::new(out);
    cursor.set_position(cursor.get_ref().len() as u64);
    let result = decompressor.decompress_to_buffer(compressed, &mut cursor);
    DECOMPRESSOR.with(|cell| *cell.borrow_mut() = Some(decompressor));
    result
}

/// Appends the bytes of a zstd object held whole in memory to `out`: exactly `size` of them, or `mismatch` (fewer
/// or more) or a `CorruptObject` naming `path` (not zstd, damaged).
fn append_decompressed(
    digest: &Digest,
    path: &Path,
    compressed: &[u8],
    size: u64,
    out: &mut Vec<u8>,
    mismatch: &dyn Fn(u64) -> Error,
) -> Result<()> {
    // One byte of room more than `size`, to see a longer object.
    let room = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let written =
        decompress_append(compressed, out, room).map_err(|error| Error::CorruptObject {
            digest: *digest,
            path: path.to_path_buf(),
            reason: format!("cannot decompress: {error}"),
        })?;
    if written as u64 != size {
        return Err(mismatch(written as u64));
    }
    Ok(())
}

impl Store {
    /// Writes the NAR serialization of blob or tree `digest` to `out`.
    pub fn dump_nar(&self, digest: &Digest, out: &mut dyn Write) -> Result<()> {
        let root = match self.object_format(digest)? {
            None => return Err(Error::MissingObject { digest: *digest }),
            Some(ObjectFormat::Directory) => None,
            Some(_) => Some(self.blob(digest)?.size),
        };
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let budget = Budget {
            state: Mutex::new(BudgetState {
                used: 0,
                current: 0,
                stop: false,
            }),
            changed: Condvar::new(),
            pool: Mutex::new(Vec::new()),
        };
        let (item_sender, items) = sync_channel(ITEM_QUEUE);
        let (job_sender, jobs) = sync_channel::<Job>(ITEM_QUEUE);
        let jobs = Mutex::new(jobs);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut walker = Walker {
                    store: self,
                    // A cached checkout holds the raw bytes: reading them skips decompression entirely.
                    cached: root
                        .is_none()
                        .then(|| self.layout().tree(digest))
                        .filter(|tree| tree.is_dir()),
                    tokens: Tokens::default(),
                    pieces: Vec::new(),
                    pieces_size: 0,
                    items: item_sender,
                    jobs: job_sender,
                    seq: 0,
                };
                walker.tokens.token(NAR_MAGIC);
                let walked = match root {
                    Some(size) => walker.file(digest, size, false, None),
                    None => walker.directory(digest),
                };
                if walked.is_ok() {
                    let _ = walker.flush();
                }
            });
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let job = {
                            let jobs = jobs.lock().unwrap_or_else(PoisonError::into_inner);
                            jobs.recv()
                        };
                        let (result, chunks) = match job {
                            Ok(Job::File(job)) => (self.decompress_job(&job, &budget), job.chunks),
                            Ok(Job::Batch(batch)) => {
                                (self.serialize_batch(&batch, &budget), batch.chunks)
                            }
                            Err(_) => break,
                        };
                        if let Err(error) = result {
                            let _ = chunks.send(Err(error));
                        }
                    }
                });
            }
            let result = write_items(&items, out, &budget);
            // Stop the walker and the workers (whether done or failed) before the scope joins them.
            budget.update(|state| state.stop = true);
            drop(items);
            result
        });
        out.flush().map_err(Error::io("write", "<output>"))?;
        result
    }

    /// Serializes a batch: its tokens, and each small file read (and decompressed) in place after them.
    fn serialize_batch(&self, batch: &BatchJob, budget: &Budget) -> Result<()> {
        let mut out = budget.buffer(usize::try_from(batch.size).unwrap_or(0));
        for piece in &batch.pieces {
            match piece {
                Piece::Tokens(tokens) => out.extend_from_slice(tokens),
                Piece::File {
                    digest,
                    size,
                    cached,
                } => self.append_small(digest, *size, cached.as_deref(), &mut out)?,
            }
        }
        if budget.acquire(batch.seq, out.len()) {
            let _ = batch.chunks.send(Ok(out));
        }
        Ok(())
    }

    /// Appends the contents of a small file (at most [`BATCH_FILE_SIZE`] bytes) to `out`: from the materialized
    /// tree when `cached`, else from its object, checked against `size` like a worker's.
    fn append_small(
        &self,
        digest: &Digest,
        size: u64,
        cached: Option<&Path>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let (format, path, file, _) = self.open_contents(digest, cached)?;
        let corrupt = |reason: String| Error::CorruptObject {
            digest: *digest,
            path: path.clone(),
            reason,
        };
        let mismatch = |actual: u64| {
            corrupt(format!(
                "size {actual} differs from the tree's record {size}"
            ))
        };
        let start = out.len();
        if format == ObjectFormat::RawBlob {
            // One byte more than the file should hold, to see a longer one; read straight into `out`.
            file.take(size + 1)
                .read_to_end(out)
                .map_err(Error::io("read", &path))?;
            let read = (out.len() - start) as u64;
            if read != size {
                return Err(mismatch(read));
            }
            return Ok(());
        }
        let limit = zstd::zstd_safe::compress_bound(usize::try_from(size).unwrap_or(0)) as u64 + 1;
        let mut compressed = COMPRESSED.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        compressed.clear();
        let result = file
            .take(limit)
            .read_to_end(&mut compressed)
            .map_err(Error::io("read", &path))
            .and_then(|_| append_decompressed(digest, &path, &compressed, size, out, &mismatch));
        COMPRESSED.with(|cell| *cell.borrow_mut() = compressed);
        result
    }

    /// The frames of blob `digest` (of `size` bytes) when it is a zstd object cut into frames that each fit a
    /// worker's whole-file buffer, so that workers can decompress them in parallel; `None` sends the file to one
    /// worker whole (which also reports whatever is wrong with the object).
    fn object_frames(&self, digest: &Digest, size: u64) -> Option<(ObjectFile, Vec<Frame>)> {
        let path = self.layout().object(digest, ObjectFormat::ZstdBlob);
        let file = File::open(&path).ok()?;
        let stored = file.metadata().ok()?.len();
        let frames = crate::frames::frames(&file, 0, stored).ok()??;
        let fits = frames.len() > 1
            && frames.iter().all(|frame| frame.content <= WHOLE_FILE_SIZE)
            && frames.iter().map(|frame| frame.content).sum::<u64>() == size;
        fits.then_some((ObjectFile { path, file }, frames))
    }

    /// Decompresses one frame the walker found into one chunk.
    fn decompress_frame(
        job: &FileJob,
        object: &ObjectFile,
        frame: &Frame,
        budget: &Budget,
        send: &dyn Fn(Vec<u8>) -> bool,
        mismatch: &dyn Fn(u64) -> Error,
    ) -> Result<()> {
        let mut compressed = COMPRESSED.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        compressed.resize(usize::try_from(frame.compressed).unwrap_or(usize::MAX), 0);
        let result = object
            .file
            .read_exact_at(&mut compressed, frame.offset)
            .map_err(Error::io("read", &object.path))
            .and_then(|()| {
                Self::decompress_small(job, &object.path, &compressed, budget, send, mismatch)
            });
        COMPRESSED.with(|cell| *cell.borrow_mut() = compressed);
        result
    }

    /// Decompresses one file (or one frame of it) into chunks on `job.chunks`, each counted against the budget.
    fn decompress_job(&self, job: &FileJob, budget: &Budget) -> Result<()> {
        let send = |chunk: Vec<u8>| -> bool {
            budget.acquire(job.seq, chunk.len()) && job.chunks.send(Ok(chunk)).is_ok()
        };
        let cached = match &job.source {
            FileSource::Object => None,
            FileSource::Cached(path) => Some(path.as_path()),
            FileSource::Frame(object, frame) => {
                let mismatch = |actual: u64| Error::CorruptObject {
                    digest: job.digest,
                    path: object.path.clone(),
                    reason: format!(
                        "the frame at byte {} holds {actual} bytes, not the {} its header records",
                        frame.offset, job.size
                    ),
                };
                return Self::decompress_frame(job, object, frame, budget, &send, &mismatch);
            }
        };
        let (format, path, mut file, stored) = self.open_contents(&job.digest, cached)?;
        let corrupt = |reason: String| Error::CorruptObject {
            digest: job.digest,
            path: path.clone(),
            reason,
        };
        let mismatch = |actual: u64| {
            corrupt(format!(
                "size {actual} differs from the tree's record {}",
                job.size
            ))
        };
        if format == ObjectFormat::RawBlob {
            if stored != job.size {
                return Err(mismatch(stored));
            }
            let mut left = job.size;
            while left > 0 {
                let len = left.min(BUFFER_SIZE as u64);
                let mut chunk = budget.buffer(usize::try_from(len).unwrap_or(BUFFER_SIZE));
                // Into the spare capacity: no zero-filling first, and no read past the known length.
                let read = (&mut file)
                    .take(len)
                    .read_to_end(&mut chunk)
                    .map_err(Error::io("read", &path))?;
                if read as u64 != len {
                    return Err(mismatch(job.size - left + read as u64));
                }
                left -= len;
                if !send(chunk) {
                    return Ok(());
                }
            }
            return Ok(());
        }
        if job.size <= WHOLE_FILE_SIZE && stored <= WHOLE_FILE_SIZE {
            // The worker's own buffer for compressed bytes, reused across the many small files of a tree.
            let mut compressed = COMPRESSED.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
            compressed.clear();
            let result = (&mut file)
                .take(stored)
                .read_to_end(&mut compressed)
                .map_err(Error::io("read", &path))
                .and_then(|_| {
                    Self::decompress_small(job, &path, &compressed, budget, &send, &mismatch)
                });
            COMPRESSED.with(|cell| *cell.borrow_mut() = compressed);
            return result;
        }
        Self::decompress_stream(
            job,
            &path,
            io::BufReader::new(file),
            budget,
            &send,
            &mismatch,
        )
    }

    /// Decompresses a small object (or one frame) read whole into one chunk.
    fn decompress_small(
        job: &FileJob,
        path: &Path,
        compressed: &[u8],
        budget: &Budget,
        send: &dyn Fn(Vec<u8>) -> bool,
        mismatch: &dyn Fn(u64) -> Error,
    ) -> Result<()> {
        let size = usize::try_from(job.size).unwrap_or(0);
        let mut out = budget.buffer(size.saturating_add(1));
        append_decompressed(&job.digest, path, compressed, job.size, &mut out, mismatch)?;
        send(out);
        Ok(())
    }

    /// Streams a large zstd object in [`BUFFER_SIZE`] chunks.
    fn decompress_stream(
        job: &FileJob,
        path: &Path,
        compressed: impl io::BufRead,
        budget: &Budget,
        send: &dyn Fn(Vec<u8>) -> bool,
        mismatch: &dyn Fn(u64) -> Error,
    ) -> Result<()> {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
            .map_err(Error::io("decompress", path))?;
        let mut total = 0u64;
        // The last chunk is held back until the end of the frame has been checked, so the writer never finishes a
        // file whose object turns out longer than recorded or corrupt at its end.
        let mut held: Option<Vec<u8>> = None;
        loop {
            let mut chunk = budget.filled_buffer(BUFFER_SIZE);
            // A read error here is the object's: zstd's own (truncated or damaged data), or the file's.
            let n = read_full(&mut decoder, &mut chunk).map_err(|error| Error::CorruptObject {
                digest: job.digest,
                path: path.to_path_buf(),
                reason: format!("cannot decompress: {error}"),
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > job.size {
                return Err(mismatch(total));
            }
            chunk.truncate(n);
            if let Some(previous) = held.replace(chunk)
                && !send(previous)
            {
                return Ok(());
            }
        }
        if total != job.size {
            return Err(mismatch(total));
        }
        if let Some(last) = held {
            send(last);
        }
        Ok(())
    }

    /// Opens a file's contents: its copy in the materialized-tree cache when `cached` (raw), else its blob's
    /// stored bytes (its own file or its range of a pack). Returns how it is stored, the file holding it (for
    /// errors), a reader of exactly its stored bytes, and their length.
    fn open_contents(
        &self,
        digest: &Digest,
        cached: Option<&Path>,
    ) -> Result<(ObjectFormat, PathBuf, io::Take<File>, u64)> {
        if let Some(path) = cached {
            let file = File::open(path).map_err(Error::io("open", path))?;
            let len = file.metadata().map_err(Error::io("stat", path))?.len();
            return Ok((
                ObjectFormat::RawBlob,
                path.to_path_buf(),
                file.take(len),
                len,
            ));
        }
        let stored = self
            .open_stored(digest)?
            .ok_or(Error::MissingObject { digest: *digest })?;
        if stored.format == ObjectFormat::Directory {
            return Err(Error::WrongKind {
                digest: *digest,
                expected: "blob",
                found: "tree",
            });
        }
        Ok((stored.format, stored.path, stored.reader, stored.len))
    }
}

/// Writes the walker's items in order; returns the first error from the walker, a worker or `out`.
fn write_items(items: &Receiver<Item>, out: &mut dyn Write, budget: &Budget) -> Result<()> {
    let write_error = || Error::io("write", "<output>");
    while let Ok(item) = items.recv() {
        match item {
            Item::Tokens(bytes) => out.write_all(&bytes).map_err(write_error())?,
            Item::Failed(error) => return Err(error),
            Item::Contents { seq, size, chunks } => {
                budget.update(|state| state.current = seq);
                let mut written = 0u64;
                while written < size {
                    // A worker drops its sender only after sending every chunk or an error.
                    let Ok(chunk) = chunks.recv() else {
                        return Err(Error::io("write", "<output>")(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "blob shorter than recorded",
                        )));
                    };
                    let chunk = chunk?;
                    written += chunk.len() as u64;
                    if written > size {
                        return Err(Error::io("write", "<output>")(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "blob longer than recorded",
                        )));
                    }
                    let wrote = out.write_all(&chunk);
                    budget.update(|state| state.used -= chunk.len());
                    budget.recycle(chunk);
                    wrote.map_err(write_error())?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// Small files are read in batches: a damaged small object still fails the dump, naming it.
    #[test]
    fn small_files_read_in_batches_are_checked_like_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        let text = "compressible small file\n".repeat(20);
        fs::write(tree.join("text"), &text).unwrap();
        fs::write(tree.join("tiny"), "raw").unwrap();
        fs::write(tree.join("large"), "x".repeat(64 << 10)).unwrap();
        // Stored alone first, so the tree's add finds them and they stay loose files (a tree add packs its small
        // objects), which the damage below can make longer or shorter.
        store.add_bytes(text.as_bytes()).unwrap();
        store.add_bytes(b"raw").unwrap();
        let root = store.add_path(&tree).unwrap().digest();
        let mut nar = Vec::new();
        store.dump_nar(&root, &mut nar).unwrap();
        for contents in [text.as_bytes(), b"raw", "x".repeat(64 << 10).as_bytes()] {
            assert!(nar.windows(contents.len()).any(|window| window == contents));
        }

        let object = |bytes: &[u8]| {
            let digest = Digest::of_bytes(bytes);
            let format = store.blob_format(&digest).unwrap().unwrap();
            store.layout().object(&digest, format)
        };
        let damage = |path: &Path, bytes: &[u8]| {
            let mut permissions = fs::metadata(path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
            fs::set_permissions(path, permissions).unwrap();
            fs::write(path, bytes).unwrap();
        };
        // A raw object one byte longer, then a zstd object that is not a frame.
        let tiny = object(b"raw");
        damage(&tiny, b"raw!");
        let error = store.dump_nar(&root, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&error, Error::CorruptObject { path, .. } if *path == tiny),
            "{error}"
        );
        damage(&tiny, b"raw");
        let compressed = object(text.as_bytes());
        assert!(compressed.to_string_lossy().ends_with(".zst"));
        damage(&compressed, b"not zstd at all");
        let error = store.dump_nar(&root, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&error, Error::CorruptObject { path, .. } if *path == compressed),
            "{error}"
        );
    }
}
