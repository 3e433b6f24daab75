//! Turning a file-system path into store objects: [`Store::add_path`] and [`Store::add_tree`].
//!
//! Files of a directory are hashed and stored in parallel (rayon), then the directory node is built from the
//! results, bottom-up. Only the owner-executable bit of a file is recorded (as Nix does); symlinks are read, never
//! followed; sockets, FIFOs and devices are refused with the path named. [`hash_tree`] computes the same address
//! without writing anything, which `verify` uses to check materialized trees.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::path_component::PathComponent;
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

impl Store {
    /// Stores a file as a blob or a directory as a tree, whichever `path` is. A symlink at `path` itself is refused
    /// with [`Error::SymlinkNotSupported`] (symlinks are never followed; inside a tree they are stored as links).
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn add_path(&self, path: &Path) -> Result<Added> {
        let metadata = fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
        if metadata.is_dir() {
            let (digest, size) = self.add_tree(path, &|_| false)?;
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
        let result = ingest_directory(Sink::Store(self), root, Path::new(""), exclude);
        let committed = self.commit_pending();
        let added = result?;
        committed?;
        Ok(added)
    }

    /// Like [`Store::add_tree`], but the objects join the store's current batch and become visible at the next
    /// [`Store::commit_pending`] (or when the batch fills). For callers adding many small trees in a row — the
    /// crates of a Cargo.lock — so they share one `syncfs` instead of paying one each; the caller commits.
    pub fn add_tree_batched(&self, root: &Path, exclude: Exclude<'_>) -> Result<(Digest, u64)> {
        ingest_directory(Sink::Store(self), root, Path::new(""), exclude)
    }
}

/// The address `root` would have as a tree, computed without writing anything.
pub fn hash_tree(root: &Path) -> Result<(Digest, u64)> {
    ingest_directory(Sink::HashOnly, root, Path::new(""), &|_| false)
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

fn ingest_directory(
    sink: Sink<'_>,
    path: &Path,
    relative: &Path,
    exclude: Exclude<'_>,
) -> Result<(Digest, u64)> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(path).map_err(Error::io("list", path))? {
        let entry = entry.map_err(Error::io("list", path))?;
        let child_relative = relative.join(entry.file_name());
        if exclude(&child_relative) {
            continue;
        }
        entries.push((entry, child_relative));
    }
    let nodes: Vec<(PathComponent, Node)> = entries
        .par_iter()
        .map(|(entry, child_relative)| {
            let child_path = entry.path();
            let name = PathComponent::new(entry.file_name().as_bytes()).map_err(|source| {
                Error::InvalidName {
                    path: child_path.clone(),
                    source,
                }
            })?;
            let metadata =
                fs::symlink_metadata(&child_path).map_err(Error::io("stat", &child_path))?;
            let file_type = metadata.file_type();
            let node = if file_type.is_dir() {
                let (digest, size) = ingest_directory(sink, &child_path, child_relative, exclude)?;
                Node::Directory { digest, size }
            } else if file_type.is_file() {
                let (digest, size) = ingest_file(sink, &child_path)?;
                Node::File {
                    digest,
                    size,
                    executable: metadata.permissions().mode() & 0o100 != 0,
                }
            } else if file_type.is_symlink() {
                let target =
                    fs::read_link(&child_path).map_err(Error::io("read link", &child_path))?;
                let target = target.as_os_str().as_bytes().to_vec();
                if !is_valid_symlink_target(&target) {
                    return Err(Error::InvalidSymlinkTarget { path: child_path });
                }
                Node::Symlink { target }
            } else {
                return Err(Error::UnsupportedFileType {
                    path: child_path,
                    kind: describe(file_type),
                });
            };
            Ok((name, node))
        })
        .collect::<Result<_>>()?;
    let mut directory = Directory::new();
    for (name, node) in nodes {
        directory.insert(name, node);
    }
    let size = directory.total_size();
    let digest = match sink {
        Sink::Store(store) => store.write_directory_node(&directory, Durability::Batched)?,
        Sink::HashOnly => directory.digest(),
    };
    Ok((digest, size))
}

fn ingest_file(sink: Sink<'_>, path: &Path) -> Result<(Digest, u64)> {
    match sink {
        Sink::Store(store) => store.write_blob_file(path, Durability::Batched),
        Sink::HashOnly => hash_file(path),
    }
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
