//! Reading objects: finding one ([`Store::locate`]: packs, pending batch, loose files), opening it stored or
//! decoded, directory nodes, sizes, and whether a closure is complete.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::PoisonError;

use super::{BUFFER_SIZE, BlobReader, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::pack::{Location, PackIndex};
use crate::tree::Directory;

impl Store {
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
    pub(super) fn packs_mut(&self) -> std::sync::RwLockWriteGuard<'_, PackIndex> {
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
    pub(super) fn pending_format(&self, digest: &Digest) -> Option<ObjectFormat> {
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
