//! Moving blobs in their stored encoding, checked in the same pass: [`copy_verified`] and
//! [`Store::add_encoded_blob`]; and [`Store::add_decoded_blob`] for a blob that a compressed bundle carries decoded.
//!
//! A bundle carries a blob exactly as a store keeps it (a raw file, or the `.zst` frame verbatim), so exporting never
//! recompresses and importing never compresses. Whoever moves the bytes also checks them, in one pass: the encoded
//! bytes go to the sink untouched while a decoder (for zstd) feeds the hasher.
//!
//! Invariants:
//! - the sink receives exactly the encoded bytes that were read, in order;
//! - decoding stops as soon as the output exceeds the announced size, so a lying size or a zstd bomb cannot make us
//!   hash (or write) without end;
//! - [`Store::add_encoded_blob`] renames into place only after both the length and the address matched;
//! - memory is a few buffers whatever the blob size (zstd's own window is bounded by its default `windowLogMax`
//!   of 2^27, and the store writes level-3 frames with a 2 MiB window).

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::store::{BUFFER_SIZE, Durability, Store, read_full};

/// How a blob's bytes are encoded on disk and on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobEncoding {
    /// The bytes as they are.
    Raw,
    /// One or more zstd frames that decode to the bytes.
    Zstd,
}

impl BlobEncoding {
    /// The encoding's name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            BlobEncoding::Raw => "raw",
            BlobEncoding::Zstd => "zstd",
        }
    }

    /// The store format a blob in this encoding is kept as.
    pub const fn format(self) -> ObjectFormat {
        match self {
            BlobEncoding::Raw => ObjectFormat::RawBlob,
            BlobEncoding::Zstd => ObjectFormat::ZstdBlob,
        }
    }

    /// The encoding of a stored blob format; `None` for directory nodes.
    pub const fn of_format(format: ObjectFormat) -> Option<Self> {
        match format {
            ObjectFormat::RawBlob => Some(BlobEncoding::Raw),
            ObjectFormat::ZstdBlob => Some(BlobEncoding::Zstd),
            ObjectFormat::Directory => None,
        }
    }
}

/// A reader that copies everything it yields to a sink, remembering which side failed.
struct Tee<'a> {
    reader: &'a mut dyn Read,
    sink: &'a mut dyn Write,
    read_error: Option<io::Error>,
    write_error: Option<io::Error>,
    copied: u64,
}

impl Read for Tee<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            match self.reader.read(buffer) {
                Ok(n) => break n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let surfaced = io::Error::new(error.kind(), error.to_string());
                    self.read_error = Some(error);
                    return Err(surfaced);
                }
            }
        };
        if let Err(error) = self.sink.write_all(&buffer[..n]) {
            let surfaced = io::Error::new(error.kind(), error.to_string());
            self.write_error = Some(error);
            return Err(surfaced);
        }
        self.copied += n as u64;
        Ok(n)
    }
}

/// Hashes what `reader` yields, stopping early once more than `limit` bytes came out.
fn hash_limited(reader: &mut dyn Read, limit: u64) -> io::Result<(Digest, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = read_full(reader, &mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            break;
        }
        if n >= BUFFER_SIZE / 2 {
            hasher.update_rayon(&buffer[..n]);
        } else {
            hasher.update(&buffer[..n]);
        }
    }
    Ok((Digest::from(hasher.finalize()), total))
}

/// Copies the encoded bytes of one blob from `reader` (until it ends) to `sink`, checking that they decode to
/// exactly `size` bytes whose address is `expected`. Returns the number of encoded bytes copied.
///
/// `source` and `sink_path` name the two sides in errors. The sink may already hold a prefix of the bytes when this
/// fails; callers that must not expose them write to a temp file (as [`Store::add_encoded_blob`] does).
pub fn copy_verified(
    reader: &mut dyn Read,
    encoding: BlobEncoding,
    expected: &Digest,
    size: u64,
    sink: &mut dyn Write,
    source: &Path,
    sink_path: &Path,
) -> Result<u64> {
    let mut tee = Tee {
        reader,
        sink,
        read_error: None,
        write_error: None,
        copied: 0,
    };
    let outcome = match encoding {
        BlobEncoding::Raw => hash_limited(&mut tee, size),
        BlobEncoding::Zstd => zstd::stream::read::Decoder::new(&mut tee)
            .and_then(|mut decoder| hash_limited(&mut decoder, size)),
    };
    let (actual, decoded) = match outcome {
        Ok(result) => result,
        Err(error) => {
            if let Some(error) = tee.read_error.take() {
                return Err(Error::io("read", source)(error));
            }
            if let Some(error) = tee.write_error.take() {
                return Err(Error::io("write", sink_path)(error));
            }
            return Err(Error::InvalidEncoding {
                path: source.to_path_buf(),
                encoding: encoding.name(),
                source: error,
            });
        }
    };
    if decoded != size {
        return Err(Error::SizeMismatch {
            path: source.to_path_buf(),
            expected: size,
            actual: decoded,
        });
    }
    if actual != *expected {
        return Err(Error::DigestMismatch {
            expected: *expected,
            actual,
            path: source.to_path_buf(),
        });
    }
    Ok(tee.copied)
}

/// A memory buffer that refuses to grow past `limit`: a payload whose stored bytes are longer than any the store
/// writes for its size is not held in memory whatever it claims.
struct BoundedBuffer {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for BoundedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "stored bytes longer than the {} bytes a blob of this size is stored in",
                    self.limit
                ),
            ));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Store {
    /// Stores a blob that arrives in its stored `encoding` (a bundle's payload): the bytes are written verbatim to a
    /// temp file (or, for a small blob, into the batch's pack) while being decoded and hashed, in one pass, and
    /// published only if they decode to exactly `size` bytes with address `expected`. If the store already holds
    /// the blob, the bytes are still checked (a damaged bundle is reported even when nothing would be written) but
    /// nothing is written. Returns whether the blob was new.
    ///
    /// The object is published with the store's next batch commit ([`Store::commit_pending`]); callers commit once
    /// after a run of objects.
    pub fn add_encoded_blob(
        &self,
        reader: &mut dyn Read,
        encoding: BlobEncoding,
        expected: Digest,
        size: u64,
        source: &Path,
    ) -> Result<bool> {
        if self.check_known_blob(reader, encoding, expected, size, source)? {
            return Ok(false);
        }
        if size < BUFFER_SIZE as u64 {
            // Small: checked in memory and packed with the batch's other small objects (one file per batch, not
            // one per object). The decoded size bounds the stored one.
            let len = usize::try_from(size).unwrap_or(BUFFER_SIZE);
            let mut stored = BoundedBuffer {
                bytes: Vec::with_capacity(len),
                // What the store writes for a blob this small: the bytes, or one zstd frame of them.
                limit: zstd::zstd_safe::compress_bound(len).max(len) + 64,
            };
            copy_verified(
                reader,
                encoding,
                &expected,
                size,
                &mut stored,
                source,
                Path::new("<memory>"),
            )?;
            self.pack_object(&expected, encoding.format(), &stored.bytes)?;
            return Ok(true);
        }
        let temp = self.temp_file()?;
        let temp_path = temp.path().to_path_buf();
        {
            let mut writer = BufWriter::with_capacity(BUFFER_SIZE, temp.as_file());
            copy_verified(
                reader,
                encoding,
                &expected,
                size,
                &mut writer,
                source,
                &temp_path,
            )?;
            writer.flush().map_err(Error::io("write", &temp_path))?;
        }
        // The decompressed size bounds the stored one.
        self.persist(
            temp,
            &expected,
            encoding.format(),
            size,
            Durability::Batched,
        )?;
        Ok(true)
    }
}

impl Store {
    /// Whether the store holds blob `expected` already; if so, the incoming bytes are still read and checked (a
    /// damaged bundle is reported even when nothing would be written), then discarded.
    fn check_known_blob(
        &self,
        reader: &mut dyn Read,
        encoding: BlobEncoding,
        expected: Digest,
        size: u64,
        source: &Path,
    ) -> Result<bool> {
        if self.known_blob_format(&expected)?.is_none() {
            return Ok(false);
        }
        copy_verified(
            reader,
            encoding,
            &expected,
            size,
            &mut io::sink(),
            source,
            Path::new("<discarded>"),
        )?;
        Ok(true)
    }

    /// Stores a blob that arrives decoded from a bundle compressed as a whole: as the store writes any new blob
    /// (compressed where that pays, at the store's level, so the stored bytes are the ones any other way of adding
    /// it gives), published only if it is exactly `size` bytes with address `expected`. A blob the store holds is
    /// still read and checked, not written. Returns whether the blob was new; published with the next batch commit.
    pub fn add_decoded_blob(
        &self,
        reader: &mut dyn Read,
        expected: Digest,
        size: u64,
        source: &Path,
    ) -> Result<bool> {
        if self.check_known_blob(reader, BlobEncoding::Raw, expected, size, source)? {
            return Ok(false);
        }
        self.write_blob(
            reader,
            Some(size),
            Some(expected),
            source,
            Durability::Batched,
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zstd_bytes(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    #[test]
    fn copies_verbatim_and_checks() {
        let data =
            b"some text that is long enough to compress, some text that is long enough".repeat(50);
        let encoded = zstd_bytes(&data);
        let digest = Digest::of_bytes(&data);
        let mut out = Vec::new();
        let copied = copy_verified(
            &mut encoded.as_slice(),
            BlobEncoding::Zstd,
            &digest,
            data.len() as u64,
            &mut out,
            Path::new("in"),
            Path::new("out"),
        )
        .unwrap();
        assert_eq!(out, encoded);
        assert_eq!(copied, encoded.len() as u64);
    }

    #[test]
    fn rejects_wrong_size_wrong_digest_and_garbage() {
        let data = b"0123456789".repeat(100);
        let encoded = zstd_bytes(&data);
        let digest = Digest::of_bytes(&data);
        let check = |bytes: &[u8], encoding, size| {
            copy_verified(
                &mut &bytes[..],
                encoding,
                &digest,
                size,
                &mut io::sink(),
                Path::new("in"),
                Path::new("out"),
            )
        };
        assert!(matches!(
            check(&encoded, BlobEncoding::Zstd, 999),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(matches!(
            check(&data[..999], BlobEncoding::Raw, 999),
            Err(Error::DigestMismatch { .. })
        ));
        let mut garbage = encoded.clone();
        garbage.extend_from_slice(b"trailing");
        assert!(matches!(
            check(&garbage, BlobEncoding::Zstd, 1000),
            Err(Error::InvalidEncoding { .. })
        ));
        assert!(matches!(
            check(&encoded[..encoded.len() - 3], BlobEncoding::Zstd, 1000),
            Err(Error::InvalidEncoding { .. })
        ));
        assert!(check(&data, BlobEncoding::Raw, 1000).is_ok());
    }

    #[test]
    fn add_encoded_blob_persists_only_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data = b"hello hello hello hello hello hello hello hello hello hello".repeat(40);
        let encoded = zstd_bytes(&data);
        let digest = Digest::of_bytes(&data);
        let wrong = Digest::of_bytes(b"x");
        assert!(
            store
                .add_encoded_blob(
                    &mut encoded.as_slice(),
                    BlobEncoding::Zstd,
                    wrong,
                    data.len() as u64,
                    Path::new("b")
                )
                .is_err()
        );
        assert!(store.list_objects().unwrap().is_empty());
        assert!(
            store
                .add_encoded_blob(
                    &mut encoded.as_slice(),
                    BlobEncoding::Zstd,
                    digest,
                    data.len() as u64,
                    Path::new("b")
                )
                .unwrap()
        );
        // Imports publish in batches.
        store.commit_pending().unwrap();
        assert_eq!(store.read_blob(&digest).unwrap().unwrap(), data);
        assert_eq!(
            store.blob_format(&digest).unwrap(),
            Some(ObjectFormat::ZstdBlob)
        );
        assert!(
            !store
                .add_encoded_blob(
                    &mut encoded.as_slice(),
                    BlobEncoding::Zstd,
                    digest,
                    data.len() as u64,
                    Path::new("b")
                )
                .unwrap()
        );
    }
}
