//! Writing trees back out: [`Store::materialize`] into a fresh destination, and [`Store::materialized_tree`], the
//! read-only cache under `trees-v1/` that sandboxes bind instead of unpacking per build.
//!
//! Safety: every name comes from a decoded directory node, so it is a validated [`PathComponent`]; entries are
//! created with `create_new`/`mkdir`/`symlink`, which never follow an existing link. The destination must be new or
//! an empty directory. Together these mean nothing is ever written outside the destination.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ingest::hash_reader;
use crate::layout::ObjectFormat;
use crate::store::Store;
use crate::tree::Node;

/// Permissions of materialized entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permissions {
    /// 0644 / 0755 files, 0755 directories: a normal, writable checkout.
    Writable,
    /// 0444 / 0555 files, 0555 directories: the shape of the tree cache.
    ReadOnly,
}

impl Permissions {
    fn file_mode(self, executable: bool) -> u32 {
        match (self, executable) {
            (Permissions::Writable, false) => 0o644,
            (Permissions::Writable, true) => 0o755,
            (Permissions::ReadOnly, false) => 0o444,
            (Permissions::ReadOnly, true) => 0o555,
        }
    }

    fn dir_mode(self) -> u32 {
        match self {
            Permissions::Writable => 0o755,
            Permissions::ReadOnly => 0o555,
        }
    }
}

impl Store {
    /// Writes the blob or tree `digest` to `dest`, which must not exist or be an empty directory. Every blob is
    /// re-hashed as it is written, so a corrupt object fails loudly instead of producing a wrong tree.
    pub fn materialize(
        &self,
        digest: &Digest,
        dest: &Path,
        permissions: Permissions,
    ) -> Result<()> {
        match self.object_format(digest)? {
            None => Err(Error::MissingObject { digest: *digest }),
            Some(ObjectFormat::Directory) => {
                prepare_destination(dest)?;
                self.write_directory(digest, dest, permissions)
            }
            Some(_) => {
                if fs::symlink_metadata(dest).is_ok() {
                    return Err(Error::DestinationExists {
                        path: dest.to_path_buf(),
                    });
                }
                self.write_file(digest, dest, permissions.file_mode(false))
            }
        }
    }

    fn write_directory(&self, digest: &Digest, dir: &Path, permissions: Permissions) -> Result<()> {
        let directory = self.directory(digest)?;
        let entries: Vec<_> = directory.entries().collect();
        entries
            .par_iter()
            .try_for_each(|(name, node)| -> Result<()> {
                let path = dir.join(name.as_os_str());
                match node {
                    Node::File {
                        digest, executable, ..
                    } => self.write_file(digest, &path, permissions.file_mode(*executable)),
                    Node::Symlink { target } => {
                        std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                            .map_err(Error::io("create symlink", &path))
                    }
                    Node::Directory { digest, .. } => {
                        fs::create_dir(&path).map_err(Error::io("create directory", &path))?;
                        self.write_directory(digest, &path, permissions)
                    }
                }
            })?;
        fs::set_permissions(dir, fs::Permissions::from_mode(permissions.dir_mode()))
            .map_err(Error::io("set permissions of", dir))
    }

    fn write_file(&self, digest: &Digest, path: &Path, mode: u32) -> Result<()> {
        let mut blob = self.blob(digest)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(Error::io("create", path))?;
        let mut tee = HashingWriter {
            inner: &mut file,
            hasher: blake3::Hasher::new(),
        };
        io::copy(&mut blob.reader, &mut tee).map_err(Error::io("write", path))?;
        let actual = Digest::from(tee.hasher.finalize());
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: *digest,
                actual,
                path: self.layout().object(
                    digest,
                    self.blob_format(digest)?.unwrap_or(ObjectFormat::RawBlob),
                ),
            });
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(Error::io("set permissions of", path))
    }

    /// The read-only materialized copy of tree `digest` in the cache, created on first use. Concurrent callers may
    /// both build it; one rename wins and the other copy is discarded.
    pub fn materialized_tree(&self, digest: &Digest) -> Result<PathBuf> {
        let target = self.layout().tree(digest);
        if target.is_dir() {
            return Ok(target);
        }
        let staging = self.temp_dir()?.keep();
        let checkout = staging.join("tree");
        let result = self
            .materialize(digest, &checkout, Permissions::ReadOnly)
            .and_then(|()| match fs::rename(&checkout, &target) {
                Ok(()) => Ok(()),
                Err(error) if target.is_dir() => {
                    tracing::debug!("lost the race to cache {digest}: {error}");
                    Ok(())
                }
                Err(error) => Err(Error::io("rename into place", &target)(error)),
            });
        remove_tree(&staging)?;
        result.map(|()| target)
    }

    /// Whether `digest` is in the tree cache.
    pub fn has_materialized_tree(&self, digest: &Digest) -> bool {
        self.layout().tree(digest).is_dir()
    }

    /// Re-hashes a stored blob, streaming (for verify).
    pub fn hash_stored_blob(&self, digest: &Digest) -> Result<(Digest, u64)> {
        let mut blob = self.blob(digest)?;
        let path = self.layout().object(
            digest,
            self.blob_format(digest)?.unwrap_or(ObjectFormat::RawBlob),
        );
        hash_reader(&mut blob.reader).map_err(Error::io("read", path))
    }
}

/// Removes a directory tree that may contain read-only directories (the cache's shape).
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io("stat", path)(error)),
        Ok(metadata) if !metadata.is_dir() => {
            return fs::remove_file(path).map_err(Error::io("remove", path));
        }
        Ok(_) => {}
    }
    make_writable(path)?;
    fs::remove_dir_all(path).map_err(Error::io("remove", path))
}

fn make_writable(path: &Path) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(Error::io("set permissions of", path))?;
    for entry in fs::read_dir(path).map_err(Error::io("list", path))? {
        let entry = entry.map_err(Error::io("list", path))?;
        if entry
            .file_type()
            .map_err(Error::io("stat", entry.path()))?
            .is_dir()
        {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

fn prepare_destination(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(dest).map_err(Error::io("create directory", dest))
        }
        Err(error) => Err(Error::io("stat", dest)(error)),
        Ok(metadata) if metadata.is_dir() => {
            let mut entries = fs::read_dir(dest).map_err(Error::io("list", dest))?;
            if entries.next().is_some() {
                Err(Error::DestinationExists {
                    path: dest.to_path_buf(),
                })
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(Error::DestinationExists {
            path: dest.to_path_buf(),
        }),
    }
}

struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
