//! Reading chosen objects out of a bundle without a store: [`read_selected`] streams a bundle once, checked as
//! [`super::inspect`] checks it (header, signature, every record against the manifest, trailer), and hands each
//! object the caller asked for to a callback as a reader of its decoded bytes.
//!
//! What a caller sees is verified: every object it reads MUST hash to its address and decode to its listed size,
//! and whatever the callback leaves unread is read and hashed too, so a damaged payload fails the whole call (and a
//! caller keeping what it read from a failed call would be wrong). Objects not asked for are skipped unread, as
//! `inspect` skips them. Memory stays bounded by the reader's buffers and zstd's window, whatever the object sizes:
//! the callback streams.
//!
//! A bundle lists its objects children before parents, so a caller that needs an object it learns of only from a
//! parent (a file inside a tree) reads the bundle again: the SBOM of a bundle reads it up to three times (its
//! lockfile, then the trees' top nodes and the wheels, then the manifests those nodes name).

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use super::read::{BundleReader, ObjectHeader, next_object, read_head, read_trailer};
use super::{Error, Manifest, ManifestObject, PayloadEncoding};
use crate::digest::Digest;

/// Decoded bytes of one object, hashed and counted as the callback reads them.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
    /// At most this many bytes are handed out (the listed size), so a payload decoding to more is caught.
    limit: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        // One byte beyond the limit is read, so a longer object is seen (and refused) rather than cut short.
        let allowed = self.limit.saturating_add(1).saturating_sub(self.count);
        let max = usize::try_from(allowed)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let n = self.inner.read(&mut buffer[..max])?;
        self.hasher.update(&buffer[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads the bundle `input` (named `name` in messages) once. `wanted` is given the manifest and names the objects
/// to hand over; `read` is called once for each of them, in stream order, with its manifest entry and a reader of
/// its decoded bytes (a blob's content, a directory node's canonical encoding). Returns the manifest.
///
/// Any signature must verify (whose key it is, is the caller's to judge from [`super::inspect`]). A bad record, a
/// payload that does not hash to its address, a truncation or a trailer mismatch is the error import gives.
pub fn read_selected(
    input: &mut dyn Read,
    name: &str,
    wanted: impl FnOnce(&Manifest) -> HashSet<Digest>,
    mut read: impl FnMut(&ManifestObject, &mut dyn Read),
) -> Result<Manifest, Error> {
    let mut reader = BundleReader::new(input, name)?;
    let (manifest, _signer) = read_head(&mut reader, None)?;
    let wanted = wanted(&manifest);
    for position in 0.. {
        let Some(ObjectHeader {
            listed,
            encoding,
            length,
        }) = next_object(&mut reader, &manifest, position)?
        else {
            break;
        };
        let inside = || format!("the payload of object #{position} ({})", listed.address);
        if !wanted.contains(&listed.address) {
            reader.skip_payload(length, inside)?;
            continue;
        }
        let mut payload = reader.payload(length);
        let outcome = decode_into(&mut payload, encoding, &listed, &mut read);
        let remaining = payload.remaining();
        let ended = payload.ended();
        match outcome {
            Ok(()) if remaining != 0 => {
                return Err(Error::ObjectMismatch {
                    name: name.to_owned(),
                    position,
                    address: listed.address,
                    problem: format!("decoded fully with {remaining} payload bytes left over"),
                });
            }
            Ok(()) => {}
            Err(_) if ended => {
                return Err(Error::Truncated {
                    name: name.to_owned(),
                    offset: reader.offset(),
                    inside: inside(),
                });
            }
            Err(source) => {
                return Err(Error::BadObject {
                    name: name.to_owned(),
                    position,
                    address: listed.address,
                    source: Box::new(source),
                });
            }
        }
    }
    read_trailer(&mut reader, manifest.objects.len())?;
    Ok(manifest)
}

/// Decodes one payload through `read`, then drains it, and checks its size and address.
fn decode_into(
    payload: &mut dyn Read,
    encoding: PayloadEncoding,
    listed: &ManifestObject,
    read: &mut impl FnMut(&ManifestObject, &mut dyn Read),
) -> Result<(), crate::Error> {
    let source = Path::new("<bundle payload>");
    let invalid = |error: io::Error| crate::Error::InvalidEncoding {
        path: source.to_path_buf(),
        encoding: "zstd",
        source: error,
    };
    let decoded: Box<dyn Read + '_> = match encoding {
        PayloadEncoding::RawBlob | PayloadEncoding::Directory => Box::new(payload),
        PayloadEncoding::ZstdBlob => {
            Box::new(zstd::stream::read::Decoder::new(payload).map_err(invalid)?)
        }
    };
    let mut hashing = Hashing {
        inner: decoded,
        hasher: blake3::Hasher::new(),
        count: 0,
        limit: listed.size,
    };
    read(listed, &mut hashing);
    io::copy(&mut hashing, &mut io::sink()).map_err(invalid)?;
    if hashing.count != listed.size {
        return Err(crate::Error::SizeMismatch {
            path: source.to_path_buf(),
            expected: listed.size,
            actual: hashing.count,
        });
    }
    let actual = Digest::from(hashing.hasher.finalize());
    if actual != listed.address {
        return Err(crate::Error::DigestMismatch {
            expected: listed.address,
            actual,
            path: source.to_path_buf(),
        });
    }
    Ok(())
}
