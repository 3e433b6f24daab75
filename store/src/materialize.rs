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
use crate::layout::ObjectFormat;
use crate::remove::remove_tree;
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
                check_parent_exists(dest)?;
                if fs::symlink_metadata(dest).is_ok() {
                    return Err(Error::DestinationExists {
                        path: dest.to_path_buf(),
                    });
                }
                self.write_file(digest, dest, permissions.file_mode(false))
            }
        }
    }

    /// Writes tree `digest` into the existing empty directory `dir`, without recursion (a tree may be deeper than
    /// any thread's stack): directories and symlinks are created breadth-first, then every file of the tree is
    /// written in parallel, then directories get their final mode deepest first (a read-only directory is closed
    /// only after everything inside it exists).
    fn write_directory(&self, digest: &Digest, dir: &Path, permissions: Permissions) -> Result<()> {
        let mut dirs = vec![(*digest, dir.to_path_buf())];
        let mut files = Vec::new();
        let mut next = 0;
        while let Some((digest, path)) = dirs.get(next).cloned() {
            next += 1;
            for (name, node) in self.directory(&digest)?.into_entries() {
                let child = path.join(name.as_os_str());
                match node {
                    Node::File {
                        digest, executable, ..
                    } => files.push((digest, child, permissions.file_mode(executable))),
                    Node::Symlink { target } => {
                        std::os::unix::fs::symlink(OsStr::from_bytes(&target), &child)
                            .map_err(Error::io("create symlink", &child))?;
                    }
                    Node::Directory { digest, .. } => {
                        fs::create_dir(&child).map_err(Error::io("create directory", &child))?;
                        dirs.push((digest, child));
                    }
                }
            }
        }
        files
            .par_iter()
            .try_for_each(|(digest, path, mode)| self.write_file(digest, path, *mode))?;
        for (_, path) in dirs.iter().rev() {
            fs::set_permissions(path, fs::Permissions::from_mode(permissions.dir_mode()))
                .map_err(Error::io("set permissions of", path))?;
        }
        Ok(())
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
                path: self.object_path(digest)?,
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
            // Renaming a directory rewrites its `..`, which takes write permission on it unless the caller is
            // root: the root goes in writable and is made read-only in place.
            .and_then(|()| set_mode(&checkout, Permissions::Writable.dir_mode()))
            .and_then(|()| match fs::rename(&checkout, &target) {
                Ok(()) => set_mode(&target, Permissions::ReadOnly.dir_mode()),
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
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(Error::io("set permissions of", path))
}

/// A destination is created, never its parents: a typo in DEST should not silently build a directory chain.
fn check_parent_exists(dest: &Path) -> Result<()> {
    let Some(parent) = dest
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    else {
        return Ok(());
    };
    match fs::metadata(parent) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(Error::DestinationParentMissing {
                path: dest.to_path_buf(),
                parent: parent.to_path_buf(),
            })
        }
        Err(error) => Err(Error::io("stat", parent)(error)),
    }
}

fn prepare_destination(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            check_parent_exists(dest)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path_component::PathComponent;
    use crate::tree::{DIRECTORY_MAGIC, Directory};

    /// A version-1 node with one file entry named `name`, encoded by hand so no validation runs on the way.
    fn hand_encoded_node(name: &[u8], blob: &Digest) -> Vec<u8> {
        let mut bytes = DIRECTORY_MAGIC.to_vec();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(name);
        bytes.push(1);
        bytes.extend_from_slice(blob.as_bytes());
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes
    }

    fn files_below(path: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs::read_dir(path).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                found.extend(files_below(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn nodes_with_escaping_names_are_refused_on_the_way_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let blob = store.add_bytes(b"payload").unwrap();
        for (i, name) in [&b".."[..], b"a/b", b"/etc", b".", b"", b"x\0y"]
            .into_iter()
            .enumerate()
        {
            let bytes = hand_encoded_node(name, &blob);
            let digest = Digest::of_bytes(&bytes);
            let error = store.put_directory_bytes(&digest, &bytes).unwrap_err();
            assert!(matches!(error, Error::MalformedDirectory { .. }), "{error}");
            assert_eq!(store.object_format(&digest).unwrap(), None);

            // Planted straight into objects-v1/, bypassing every check on the way in.
            let path = store.layout().object(&digest, ObjectFormat::Directory);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
            assert!(matches!(
                store.get_directory(&digest),
                Err(Error::MalformedDirectory { .. })
            ));

            // Directly, and as the child of a valid root.
            let mut root = Directory::new();
            root.insert(
                PathComponent::new("sub").unwrap(),
                Node::Directory { digest, size: 7 },
            );
            let root_digest = store.put_directory(&root).unwrap();
            for target in [digest, root_digest] {
                let work = dir.path().join(format!("work-{i}-{}", target.to_hex()));
                fs::create_dir(&work).unwrap();
                let dest = work.join("dest");
                let error = store
                    .materialize(&target, &dest, Permissions::Writable)
                    .unwrap_err();
                assert!(matches!(error, Error::MalformedDirectory { .. }), "{error}");
                let names: Vec<_> = fs::read_dir(&work)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert_eq!(names, ["dest"], "nothing may appear beside the destination");
                assert!(files_below(&dest).is_empty(), "no file may be written");
            }
            assert!(!dir.path().join("b").exists() && !dir.path().join("etc").exists());
        }
        let verify = store.verify(false).unwrap();
        assert_eq!(
            verify
                .problems
                .iter()
                .filter(|p| matches!(p, crate::verify::Problem::Corrupt { .. }))
                .count(),
            6,
            "verify reports every planted node: {:?}",
            verify.problems
        );
    }
}
