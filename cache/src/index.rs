//! Packs and their indexes: the unit a cache moves objects in, so a closure of tens of thousands of small files
//! travels in a few requests. All integers are little-endian.
//!
//! ```text
//! pack   magic "hstore-cache-pack\0" (18 bytes) · version u32 (= 2) · payload*
//!        payload = a store object's stored bytes verbatim (raw blob, zstd frame, or directory node), back to back
//! index  magic "hstore-cache-idx\0" (17 bytes) · version u32 (= 2) · pack length u64 · pack BLAKE3 [32] ·
//!        entry count u64 · entry* · BLAKE3 [32] of every byte before it
//!        entry = address [32] · encoding u8 (1 raw blob, 2 zstd blob, 3 directory node) · offset u64 ·
//!                length u64 (payload bytes in the pack) · size u64 (decoded bytes: blob length or node length)
//! ```
//! Rules a writer MUST follow and readers check:
//! - The pack id is the lowercase hex BLAKE3 of the index bytes; the index names the pack's length and hash. A
//!   reader refuses an index whose bytes do not hash to its name. (Pack bytes are not re-hashed as a whole: each
//!   object is verified by its address as it is read, which is what matters, and allows ranged reads.)
//! - Entries are in pack order: every directory node first, then every blob (version 2; version 1 interleaved
//!   them), each group in the closure's post-order. Offsets are strictly increasing and every payload lies inside
//!   the pack. So a pack's directory nodes are one contiguous section, which a pull reads in one request before it
//!   knows which blobs it wants ([`CacheIndex::directory_section`]).
//! - The same objects in the same order give byte-identical packs and indexes, hence the same id.

use std::collections::HashMap;

use hstore_store::Digest;
use hstore_store::bundle::PayloadEncoding;

/// First bytes of a pack.
pub const PACK_MAGIC: &[u8; 18] = b"hstore-cache-pack\0";
/// First bytes of an index.
pub const INDEX_MAGIC: &[u8; 17] = b"hstore-cache-idx\0";
/// The pack/index format version (2: directory nodes before blobs; see [`crate::CACHE_DIR`]).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes before the first payload of a pack.
pub const PACK_HEADER_LEN: u64 = PACK_MAGIC.len() as u64 + 4;
/// Bytes of one index entry.
const ENTRY_LEN: usize = 32 + 1 + 8 + 8 + 8;
/// Bytes of the index header.
const HEADER_LEN: usize = INDEX_MAGIC.len() + 4 + 8 + 32 + 8;

/// Where one object lies in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The object's address.
    pub address: Digest,
    /// How the payload is encoded.
    pub encoding: PayloadEncoding,
    /// Offset of the payload in the pack.
    pub offset: u64,
    /// Payload bytes.
    pub length: u64,
    /// Decoded bytes.
    pub size: u64,
}

/// One pack's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackIndex {
    /// Bytes of the pack.
    pub pack_length: u64,
    /// BLAKE3 of the pack.
    pub pack_digest: Digest,
    /// The entries, in pack order.
    pub entries: Vec<IndexEntry>,
}

impl PackIndex {
    /// The index bytes and the pack id they give.
    pub fn encode(&self) -> (Vec<u8>, String) {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.entries.len() * ENTRY_LEN + 32);
        bytes.extend_from_slice(INDEX_MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.pack_length.to_le_bytes());
        bytes.extend_from_slice(self.pack_digest.as_bytes());
        bytes.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for entry in &self.entries {
            bytes.extend_from_slice(entry.address.as_bytes());
            bytes.push(entry.encoding as u8);
            bytes.extend_from_slice(&entry.offset.to_le_bytes());
            bytes.extend_from_slice(&entry.length.to_le_bytes());
            bytes.extend_from_slice(&entry.size.to_le_bytes());
        }
        let trailer = blake3::hash(&bytes);
        bytes.extend_from_slice(trailer.as_bytes());
        let id = blake3::hash(&bytes).to_hex().to_string();
        (bytes, id)
    }

    /// Parses index bytes that were stored as pack `id`, checking every rule above. The error is the problem in
    /// words.
    pub fn decode(bytes: &[u8], id: &str) -> Result<Self, String> {
        let actual = blake3::hash(bytes).to_hex().to_string();
        if actual != id {
            return Err(format!(
                "its bytes hash to {actual}, not to its name (the index was altered)"
            ));
        }
        if bytes.len() < HEADER_LEN + 32 || !bytes.starts_with(INDEX_MAGIC) {
            return Err("it does not start with the index magic".into());
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != trailer {
            return Err("its trailing hash does not match".into());
        }
        let mut reader = Reader {
            bytes: &body[INDEX_MAGIC.len()..],
        };
        let version = reader.u32();
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}; this hstore reads {FORMAT_VERSION}"
            ));
        }
        let pack_length = reader.u64();
        let pack_digest = reader.digest();
        let count = reader.u64();
        if reader.bytes.len() as u64 != count.saturating_mul(ENTRY_LEN as u64) {
            return Err(format!(
                "it announces {count} entries but holds {} bytes of entries",
                reader.bytes.len()
            ));
        }
        let mut entries = Vec::with_capacity(reader.bytes.len() / ENTRY_LEN);
        let mut next = PACK_HEADER_LEN;
        let mut blobs_began = false;
        while !reader.bytes.is_empty() {
            let address = reader.digest();
            let byte = reader.u8();
            let encoding = PayloadEncoding::from_byte(byte)
                .ok_or_else(|| format!("entry {address} has unknown encoding {byte}"))?;
            let offset = reader.u64();
            let length = reader.u64();
            let size = reader.u64();
            if offset < next
                || offset
                    .checked_add(length)
                    .is_none_or(|end| end > pack_length)
            {
                return Err(format!(
                    "entry {address} lies at {offset}+{length}, outside the pack or overlapping the previous one"
                ));
            }
            next = offset + length;
            if encoding == PayloadEncoding::Directory && blobs_began {
                return Err(format!(
                    "directory entry {address} follows a blob (directories come first)"
                ));
            }
            blobs_began |= encoding != PayloadEncoding::Directory;
            entries.push(IndexEntry {
                address,
                encoding,
                offset,
                length,
                size,
            });
        }
        Ok(Self {
            pack_length,
            pack_digest,
            entries,
        })
    }
}

/// A little-endian cursor over bytes whose length was checked beforehand.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn digest(&mut self) -> Digest {
        Digest::from_bytes(self.take())
    }
}

/// Where an object can be read from: a pack and the entry.
#[derive(Clone, Debug)]
pub struct Location {
    /// The pack id.
    pub pack: String,
    /// The entry.
    pub entry: IndexEntry,
}

/// Every published pack of a cache, by object address.
#[derive(Clone, Debug, Default)]
pub struct CacheIndex {
    /// Pack ids loaded.
    pub packs: Vec<String>,
    /// Each address, with every place it can be read from (first is preferred; the rest are fallbacks).
    pub objects: HashMap<Digest, Vec<Location>>,
    /// Each pack's directory section: the byte range its directory nodes fill, and their entries.
    pub directories: HashMap<String, (std::ops::Range<u64>, Vec<IndexEntry>)>,
}

impl CacheIndex {
    /// The byte range of pack `id` that holds all its directory nodes, and their entries (none if it has none).
    pub fn directory_section(&self, id: &str) -> Option<(std::ops::Range<u64>, &[IndexEntry])> {
        self.directories
            .get(id)
            .map(|(range, entries)| (range.clone(), entries.as_slice()))
    }

    /// Adds one pack's entries.
    pub fn add(&mut self, id: &str, index: &PackIndex) {
        self.packs.push(id.to_owned());
        let directories: Vec<IndexEntry> = index
            .entries
            .iter()
            .take_while(|entry| entry.encoding == PayloadEncoding::Directory)
            .copied()
            .collect();
        if let (Some(first), Some(last)) = (directories.first(), directories.last()) {
            let range = first.offset..last.offset + last.length;
            self.directories.insert(id.to_owned(), (range, directories));
        }
        for entry in &index.entries {
            self.objects
                .entry(entry.address)
                .or_default()
                .push(Location {
                    pack: id.to_owned(),
                    entry: *entry,
                });
        }
    }

    /// Whether the cache holds `address`.
    pub fn contains(&self, address: &Digest) -> bool {
        self.objects.contains_key(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PackIndex {
        PackIndex {
            pack_length: 100,
            pack_digest: Digest::of_bytes(b"pack"),
            entries: vec![
                IndexEntry {
                    address: Digest::of_bytes(b"a"),
                    encoding: PayloadEncoding::Directory,
                    offset: PACK_HEADER_LEN,
                    length: 10,
                    size: 10,
                },
                IndexEntry {
                    address: Digest::of_bytes(b"b"),
                    encoding: PayloadEncoding::RawBlob,
                    offset: PACK_HEADER_LEN + 10,
                    length: 20,
                    size: 20,
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_names_itself() {
        let (bytes, id) = sample().encode();
        assert_eq!(PackIndex::decode(&bytes, &id).unwrap(), sample());
        assert_eq!(sample().encode().1, id, "deterministic");
    }

    #[test]
    fn refuses_every_flipped_byte_and_lies() {
        let (bytes, id) = sample().encode();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 1;
            assert!(PackIndex::decode(&flipped, &id).is_err(), "byte {index}");
            assert!(PackIndex::decode(&bytes[..index], &id).is_err());
        }
        let mut outside = sample();
        outside.entries[1].length = 1000;
        let (bytes, id) = outside.encode();
        assert!(
            PackIndex::decode(&bytes, &id)
                .unwrap_err()
                .contains("outside")
        );
        let mut interleaved = sample();
        interleaved.entries[0].encoding = PayloadEncoding::RawBlob;
        interleaved.entries[1].encoding = PayloadEncoding::Directory;
        let (bytes, id) = interleaved.encode();
        assert!(
            PackIndex::decode(&bytes, &id)
                .unwrap_err()
                .contains("directories come first")
        );
    }

    #[test]
    fn knows_each_packs_directory_section() {
        let mut index = CacheIndex::default();
        index.add("p", &sample());
        let (range, entries) = index.directory_section("p").unwrap();
        assert_eq!(range, PACK_HEADER_LEN..PACK_HEADER_LEN + 10);
        assert_eq!(entries.len(), 1);
        assert!(index.directory_section("other").is_none());
    }
}
