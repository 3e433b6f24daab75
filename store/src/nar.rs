//! Nix ARchive (NAR) serialization of store objects: `hstore store dump` streams a tree as the exact bytes
//! `nix-store --dump` gives for the same directory.
//!
//! Format (Eelco Dolstra's thesis, §5.2.1; Nix `src/libutil/archive.cc`): every token is a string written as a u64
//! little-endian length, the bytes, and zero padding to a multiple of 8. Entries of a directory MUST appear sorted by
//! name bytes — the same order as our directory nodes, so no re-sorting is needed. Names and link targets are bytes.
//! File contents stream from the object, so memory stays bounded.
//! See: <https://github.com/NixOS/nix/blob/master/src/libutil/archive.cc>

use std::io::{self, Read, Write};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::store::{BUFFER_SIZE, Store, read_full};
use crate::tree::Node;

/// The NAR magic token.
const NAR_MAGIC: &[u8] = b"nix-archive-1";

struct NarWriter<W: Write> {
    out: W,
}

impl<W: Write> NarWriter<W> {
    fn token(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let padding = (8 - (len % 8)) % 8;
        self.out.write_all(&[0u8; 8][..padding as usize])
    }

    /// Streams `size` bytes of `reader` as one string token; the reader must yield exactly `size` bytes.
    fn contents(&mut self, reader: &mut dyn Read, size: u64) -> io::Result<()> {
        self.out.write_all(&size.to_le_bytes())?;
        let mut buffer = vec![
            0u8;
            BUFFER_SIZE
                .min(usize::try_from(size).unwrap_or(BUFFER_SIZE))
                .max(1)
        ];
        let mut written = 0u64;
        loop {
            let n = read_full(reader, &mut buffer)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "blob longer than recorded",
                ));
            }
            self.out.write_all(&buffer[..n])?;
        }
        if written != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "blob shorter than recorded",
            ));
        }
        self.pad(size)
    }
}

impl Store {
    /// Writes the NAR serialization of blob or tree `digest` to `out`.
    pub fn dump_nar(&self, digest: &Digest, out: &mut dyn Write) -> Result<()> {
        let mut writer = NarWriter { out };
        let result = (|| -> Result<()> {
            writer
                .token(NAR_MAGIC)
                .map_err(Error::io("write", "<output>"))?;
            match self.object_format(digest)? {
                None => Err(Error::MissingObject { digest: *digest }),
                Some(ObjectFormat::Directory) => self.dump_directory(&mut writer, digest),
                Some(_) => {
                    let size = self.blob(digest)?.size;
                    self.dump_file(&mut writer, digest, size, false)
                }
            }
        })();
        writer.out.flush().map_err(Error::io("write", "<output>"))?;
        result
    }

    fn dump_file<W: Write>(
        &self,
        writer: &mut NarWriter<W>,
        digest: &Digest,
        size: u64,
        executable: bool,
    ) -> Result<()> {
        let write_error = || Error::io("write", "<output>");
        let mut blob = self.blob(digest)?;
        if blob.size != size {
            return Err(Error::CorruptObject {
                digest: *digest,
                path: self.layout().object(digest, ObjectFormat::ZstdBlob),
                reason: format!("size {} differs from the tree's record {size}", blob.size),
            });
        }
        for token in [&b"("[..], b"type", b"regular"] {
            writer.token(token).map_err(write_error())?;
        }
        if executable {
            writer.token(b"executable").map_err(write_error())?;
            writer.token(b"").map_err(write_error())?;
        }
        writer.token(b"contents").map_err(write_error())?;
        writer
            .contents(&mut blob.reader, size)
            .map_err(write_error())?;
        writer.token(b")").map_err(write_error())
    }

    fn dump_directory<W: Write>(&self, writer: &mut NarWriter<W>, digest: &Digest) -> Result<()> {
        let write_error = || Error::io("write", "<output>");
        let directory = self.directory(digest)?;
        for token in [&b"("[..], b"type", b"directory"] {
            writer.token(token).map_err(write_error())?;
        }
        for (name, node) in directory.entries() {
            for token in [&b"entry"[..], b"(", b"name", name.as_bytes(), b"node"] {
                writer.token(token).map_err(write_error())?;
            }
            match node {
                Node::File {
                    digest,
                    size,
                    executable,
                } => self.dump_file(writer, digest, *size, *executable)?,
                Node::Symlink { target } => {
                    for token in [&b"("[..], b"type", b"symlink", b"target", target, b")"] {
                        writer.token(token).map_err(write_error())?;
                    }
                }
                Node::Directory { digest, .. } => self.dump_directory(writer, digest)?,
            }
            writer.token(b")").map_err(write_error())?;
        }
        writer.token(b")").map_err(write_error())
    }
}
