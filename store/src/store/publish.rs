//! Publishing: a verified temp file or packed small object joins the pending batch; a batch is committed with one
//! `syncfs` and no-clobber renames (loose blobs first, the pack last); atomic writes of small metadata files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use tempfile::{NamedTempFile, TempPath};

use super::{
    Durability, FSYNC_DIRS_MAX, PACK_MAX_OBJECTS, PENDING_MAX_BYTES, PENDING_MAX_OBJECTS, Pending,
    Publisher, SHARD_EXISTING, SHARD_FRESH, SHARD_UNKNOWN, Store,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::pack::PackWriter;

impl Store {
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

    pub(super) fn mark_dirty(&self, dir: PathBuf) {
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
    pub(super) fn is_fresh(&self, digest: &Digest) -> bool {
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
    pub(super) fn forget_published(&self) {
        for state in &self.shard_state {
            state.store(SHARD_EXISTING, Ordering::Relaxed);
        }
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How this process published `digest` into a fresh shard, if it did.
    pub(super) fn published_format(&self, digest: &Digest) -> Option<ObjectFormat> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .copied()
    }

    pub(super) fn mark_dirty(&self, dir: PathBuf) {
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
