//! Merkle directory nodes: [`Directory`], [`Node`] and their canonical encoding.
//!
//! A tree is a directory node whose entries name blobs, symlink targets and child directory nodes by address. The
//! tree's address is the BLAKE3 of its root node's canonical bytes, so it depends only on names, kinds, the
//! executable bit, contents and link targets — never on mtime, owner, other permission bits, or creation order.
//!
//! Canonical encoding, version 1 (all integers little-endian). It MUST be reproduced byte for byte; any change is a
//! new version with a new magic, never an edit of this one:
//! ```text
//! magic        "hstore-dir-v1\0"                       (14 bytes)
//! count        u64                                     number of entries
//! entry*       sorted by name bytes, strictly increasing (no duplicates)
//!   name_len   u32, then name bytes                    a valid PathComponent
//!   kind       u8: 1 file, 2 executable file, 3 symlink, 4 directory
//!   file/exe   digest [32] + size u64                  blob address and byte length
//!   symlink    target_len u32 + target bytes           kept verbatim, never followed; not empty, no NUL
//!   directory  digest [32] + size u64                  child node address and total file bytes below it
//! ```
//! Decoding enforces every rule above (order, kinds, lengths, no trailing bytes), so a directory node read back from
//! the store or a bundle is as trustworthy as one we built.

use std::collections::BTreeMap;

use crate::digest::{DIGEST_LEN, Digest};
use crate::path_component::{PathComponent, PathComponentError};

/// Magic prefix of a version-1 directory node.
pub const DIRECTORY_MAGIC: &[u8; 14] = b"hstore-dir-v1\0";

/// Longest symlink target accepted (Linux PATH_MAX).
pub const MAX_SYMLINK_TARGET: usize = 4096;

/// One entry of a [`Directory`]; its name is the key in the parent's map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Address of the file's bytes.
        digest: Digest,
        /// Length of the file in bytes.
        size: u64,
        /// Whether the executable bit is set (the only permission bit recorded).
        executable: bool,
    },
    /// A symbolic link; the target is stored verbatim and never followed.
    Symlink {
        /// The link target bytes.
        target: Vec<u8>,
    },
    /// A child directory.
    Directory {
        /// Address of the child directory node.
        digest: Digest,
        /// Total bytes of the regular files below it.
        size: u64,
    },
}

impl Node {
    /// Bytes this node contributes to its parent's total size.
    pub fn size(&self) -> u64 {
        match self {
            Node::File { size, .. } | Node::Directory { size, .. } => *size,
            Node::Symlink { .. } => 0,
        }
    }
}

/// A directory node: entries sorted by name bytes by construction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<PathComponent, Node>,
}

/// Why bytes are not a valid directory node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The node does not start with [`DIRECTORY_MAGIC`].
    #[error("not a version-1 directory node (bad magic)")]
    BadMagic,
    /// The bytes ended early.
    #[error("directory node is truncated")]
    Truncated,
    /// An entry kind byte is unknown.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// Entries are not strictly sorted by name.
    #[error("entries are not strictly sorted by name (at `{}`)", String::from_utf8_lossy(.0))]
    Unsorted(Vec<u8>),
    /// A name is not a valid path component.
    #[error(transparent)]
    BadName(#[from] PathComponentError),
    /// A symlink target is empty, too long or contains NUL.
    #[error("invalid symlink target for `{}`", String::from_utf8_lossy(.0))]
    BadSymlinkTarget(Vec<u8>),
    /// Bytes follow the last entry.
    #[error("trailing bytes after the last entry")]
    TrailingBytes,
}

/// Checks a symlink target the way decoding does: non-empty, no NUL, at most [`MAX_SYMLINK_TARGET`] bytes.
pub fn is_valid_symlink_target(target: &[u8]) -> bool {
    !target.is_empty() && target.len() <= MAX_SYMLINK_TARGET && !target.contains(&0)
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, name: PathComponent, node: Node) {
        self.entries.insert(name, node);
    }

    /// Looks up an entry by name.
    pub fn get(&self, name: &PathComponent) -> Option<&Node> {
        self.entries.get(name)
    }

    /// Entries in canonical (byte-wise name) order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&PathComponent, &Node)> {
        self.entries.iter()
    }

    /// Entries in canonical order, by value.
    pub fn into_entries(self) -> impl ExactSizeIterator<Item = (PathComponent, Node)> {
        self.entries.into_iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of regular files below this directory.
    pub fn total_size(&self) -> u64 {
        self.entries.values().map(Node::size).sum()
    }

    /// The canonical bytes of this node (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DIRECTORY_MAGIC.len() + 8 + self.entries.len() * 64);
        out.extend_from_slice(DIRECTORY_MAGIC);
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (name, node) in &self.entries {
            let name = name.as_bytes();
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name);
            match node {
                Node::File {
                    digest,
                    size,
                    executable,
                } => {
                    out.push(if *executable { 2 } else { 1 });
                    out.extend_from_slice(digest.as_bytes());
                    out.extend_from_slice(&size.to_le_bytes());
                }
                Node::Symlink { target } => {
                    out.push(3);
                    out.extend_from_slice(&(target.len() as u32).to_le_bytes());
                    out.extend_from_slice(target);
                }
                Node::Directory { digest, size } => {
                    out.push(4);
                    out.extend_from_slice(digest.as_bytes());
                    out.extend_from_slice(&size.to_le_bytes());
                }
            }
        }
        out
    }

    /// The address of this node: BLAKE3 of [`Directory::encode`].
    pub fn digest(&self) -> Digest {
        Digest::of_bytes(&self.encode())
    }

    /// Parses canonical bytes, enforcing every rule of the format.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader { bytes, position: 0 };
        if reader.take(DIRECTORY_MAGIC.len())? != DIRECTORY_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let count = reader.u64()?;
        let mut entries = BTreeMap::new();
        let mut previous: Option<Vec<u8>> = None;
        for _ in 0..count {
            let name_len = reader.u32()? as usize;
            let name = reader.take(name_len)?.to_vec();
            if previous
                .as_deref()
                .is_some_and(|prev| prev >= name.as_slice())
            {
                return Err(DecodeError::Unsorted(name));
            }
            let component = PathComponent::new(name.clone())?;
            let node = match reader.u8()? {
                kind @ (1 | 2) => Node::File {
                    digest: reader.digest()?,
                    size: reader.u64()?,
                    executable: kind == 2,
                },
                3 => {
                    let target_len = reader.u32()? as usize;
                    let target = reader.take(target_len)?.to_vec();
                    if !is_valid_symlink_target(&target) {
                        return Err(DecodeError::BadSymlinkTarget(name));
                    }
                    Node::Symlink { target }
                }
                4 => Node::Directory {
                    digest: reader.digest()?,
                    size: reader.u64()?,
                },
                other => return Err(DecodeError::UnknownKind(other)),
            };
            entries.insert(component, node);
            previous = Some(name);
        }
        if reader.position != bytes.len() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self { entries })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(len)
            .ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(DecodeError::Truncated)?;
        self.position = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn digest(&mut self) -> Result<Digest, DecodeError> {
        let mut buf = [0u8; DIGEST_LEN];
        buf.copy_from_slice(self.take(DIGEST_LEN)?);
        Ok(Digest::from_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Directory {
        let mut dir = Directory::new();
        dir.insert(
            PathComponent::new("b").unwrap(),
            Node::File {
                digest: Digest::of_bytes(b"x"),
                size: 1,
                executable: true,
            },
        );
        dir.insert(
            PathComponent::new("a").unwrap(),
            Node::Symlink {
                target: b"../b".to_vec(),
            },
        );
        dir.insert(
            PathComponent::new(vec![0xff]).unwrap(),
            Node::Directory {
                digest: Directory::new().digest(),
                size: 0,
            },
        );
        dir
    }

    #[test]
    fn encode_decode_round_trip() {
        let dir = sample();
        let bytes = dir.encode();
        assert_eq!(Directory::decode(&bytes).unwrap(), dir);
    }

    #[test]
    fn digest_is_stable() {
        // Pinned: a change here means the on-disk format changed and needs a new version.
        assert_eq!(
            Directory::new().digest().to_string(),
            Digest::of_bytes(b"hstore-dir-v1\0\0\0\0\0\0\0\0\0").to_string()
        );
    }

    #[test]
    fn decode_rejects_malformed() {
        let bytes = sample().encode();
        assert_eq!(
            Directory::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Directory::decode(&trailing),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(Directory::decode(b"nope"), Err(DecodeError::Truncated));
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert_eq!(Directory::decode(&bad_magic), Err(DecodeError::BadMagic));

        // Hand-made node with a `..` entry must be refused.
        let mut evil = DIRECTORY_MAGIC.to_vec();
        evil.extend_from_slice(&1u64.to_le_bytes());
        evil.extend_from_slice(&2u32.to_le_bytes());
        evil.extend_from_slice(b"..");
        evil.push(3);
        evil.extend_from_slice(&1u32.to_le_bytes());
        evil.push(b'x');
        assert!(matches!(
            Directory::decode(&evil),
            Err(DecodeError::BadName(_))
        ));
    }
}
