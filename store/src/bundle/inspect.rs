//! `hstore bundle inspect`: what a bundle holds, read without a store — its roots, lockfiles and records, its
//! objects counted and sized by encoding, and who signed it — so an operator can decide before importing.
//!
//! The whole stream is read, in the reader's bounded buffers (payloads are skipped, never held): the header and
//! signature are checked as import checks them, every object record's header against the manifest, and the
//! trailer's count and hash, so a damaged or truncated copy is named here as it would be at import. What only an
//! import proves is left out: that each payload decodes to the bytes of its address.

use std::collections::BTreeMap;
use std::io::Read;

use super::read::{BundleReader, ObjectHeader, next_object, read_head, read_trailer};
use super::{Error, Manifest, PayloadEncoding, PublicKey};

/// What a bundle holds, by the manifest and the stream.
#[derive(Debug)]
pub struct Inspection {
    /// The manifest: roots, lockfiles, records and the object list.
    pub manifest: Manifest,
    /// Who signed the manifest (the signature verified), if anyone.
    pub signer: Option<PublicKey>,
    /// Objects by payload encoding (`raw blob`, `zstd blob`, `directory`).
    pub by_encoding: BTreeMap<&'static str, EncodingTotals>,
    /// The bundle's length in bytes (as read: compressed, for a bundle compressed as a whole).
    pub bundle_bytes: u64,
    /// Whether the bundle is compressed as a whole (`export --level`).
    pub compressed: bool,
}

/// Counts the bytes read through it.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    read: u64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Counts of one payload encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodingTotals {
    /// Objects.
    pub objects: usize,
    /// Their bytes in the bundle (compressed, for zstd blobs).
    pub payload_bytes: u64,
    /// Their decoded bytes (a blob's length, a directory node's encoding).
    pub content_bytes: u64,
}

impl Inspection {
    /// Whether one of `keys` signed the bundle.
    pub fn signed_by_one_of(&self, keys: &[PublicKey]) -> bool {
        self.signer.is_some_and(|signer| keys.contains(&signer))
    }
}

fn encoding_name(encoding: PayloadEncoding) -> &'static str {
    match encoding {
        PayloadEncoding::RawBlob => "raw blob",
        PayloadEncoding::ZstdBlob => "zstd blob",
        PayloadEncoding::Directory => "directory",
    }
}

/// Reads the bundle `input` (named `name` in messages) front to back and reports what it holds. A bad signature,
/// a record out of the manifest's order, a truncation or a trailer mismatch is the same error import gives.
pub fn inspect(input: &mut dyn Read, name: &str) -> Result<Inspection, Error> {
    let mut counted = CountingReader {
        inner: input,
        read: 0,
    };
    let mut reader = BundleReader::new(&mut counted, name)?;
    // Any signature must verify; whether its key is one the caller trusts is the caller's to say.
    let (manifest, signer) = read_head(&mut reader, None)?;
    let mut by_encoding: BTreeMap<&'static str, EncodingTotals> = BTreeMap::new();
    for position in 0.. {
        let Some(ObjectHeader {
            listed,
            encoding,
            length,
        }) = next_object(&mut reader, &manifest, position)?
        else {
            break;
        };
        reader.skip_payload(length, || {
            format!("the payload of object #{position} ({})", listed.address)
        })?;
        let totals = by_encoding.entry(encoding_name(encoding)).or_default();
        totals.objects += 1;
        totals.payload_bytes += length;
        totals.content_bytes += listed.size;
    }
    read_trailer(&mut reader, manifest.objects.len())?;
    let compressed = reader.compressed();
    drop(reader);
    Ok(Inspection {
        manifest,
        signer,
        by_encoding,
        bundle_bytes: counted.read,
        compressed,
    })
}
