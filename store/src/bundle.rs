//! Bundles: one streamed file carrying store objects, roots and records across the air gap.
//!
//! [`plan`] computes what to ship, [`export`] writes it, [`import`] reads it into another store. Written and read
//! strictly front to back (no seeking), so a bundle can go through a pipe, `ssh`, `dd` or split media. The user-facing
//! description is `docs/bundle-format.md`; this is the normative one. All integers are little-endian.
//!
//! ```text
//! header     magic "hstore-bundle\0" (14 bytes) · format version u32 (= 1)
//! manifest   length u64 (≤ 512 MiB) · JSON (see [`Manifest`]): format, version, roots, lockfiles, records, objects
//! signature  kind u8: 0 = unsigned · 1 = ed25519, then public key [32] · signature [64]
//!            over  "hstore-bundle-v1 manifest\0" ‖ BLAKE3(header ‖ manifest length ‖ manifest)
//! object*    tag 'O' · address [32] · encoding u8 (1 raw blob, 2 zstd blob, 3 directory node) · length u64 · payload
//!            exactly the manifest's `objects`, in that order; payload = the object's stored bytes verbatim
//! trailer    tag 'T' · object count u64 · BLAKE3 [32] of every byte before this field; then end of stream
//! ```
//!
//! Rules a writer MUST follow and [`import`] enforces:
//! - Objects appear children before parents (post-order), each once; a directory node's children are earlier in
//!   the bundle or already in the destination store (incremental bundles made with `--exclude`). So a store that
//!   imported any prefix of a bundle (a killed import) still holds only complete trees, and `verify` stays clean.
//! - The payload is the stored encoding: a `.zst` frame is shipped as is (no recompression: export runs at disk
//!   speed), raw blobs raw (the store keeps blobs raw only when compressing does not pay), directory nodes raw
//!   (at most 16 MiB each, the only payload held in memory).
//! - Every root, lockfile and record refers only to objects in the bundle or already in the destination.
//!
//! Whole-stream compression (`hstore export --level N`, for a slow link): the bundle above, written with every blob
//! decoded (encoding 1, whatever the source store keeps), then compressed as one zstd stream at level N with
//! long-distance matching over a [`COMPRESSION_WINDOW_LOG`] window, so that similar files anywhere in the closure
//! compress against each other (what `tar | zstd --long` gets and per-object frames cannot). A reader recognises the
//! zstd magic and decodes the stream before anything else; every rule above then applies to the decoded stream
//! (offsets in messages count decoded bytes). An importer stores the raw blobs of such a bundle as it stores any new
//! blob (compressing where it pays, at the store's level), so the objects it writes are byte-identical to the ones
//! an uncompressed bundle of the same closure would give it. Memory stays bounded: the decoder refuses a window above
//! 2^[`COMPRESSION_WINDOW_LOG`].
//!
//! Why the signature sits after the manifest, not in the trailer: the manifest lists every object's address, and
//! an address *is* a digest of the object. Signing the manifest therefore authenticates every object, and an
//! importer that requires trust can refuse an unsigned or wrongly signed bundle before reading a single object. Each
//! object is then checked against the signed list as it streams and may be renamed into place at once, so no staging
//! area is needed (a 100 GB bundle needs no 100 GB of staged temp files, and a killed import keeps its verified
//! objects: re-importing is cheap). The unkeyed trailer hash still catches damage in transit (a flipped byte outside
//! any payload, a truncated stream) with a plain message.
//!
//! Import order of checks: magic and version → manifest parses and is consistent (no duplicate objects, valid names,
//! every root/lockfile address is listed or already present) → signature (when trust is required, before any object)
//! → each object: listed at this position, kind and size as listed, decodes and hashes to its address, children
//! present → trailer count and hash → end of stream. Only then are records and roots written: nothing is
//! half-registered.
//!
//! Records are trusted only through the signature: a record says "this build key produced that output", which no
//! address can prove, and the manifest signature covers the records it lists. So a bundle signed by a trusted key
//! (`--trust`, `--trusted-keys`, or `[caches] trusted-keys` via [`ImportOptions::record_signers`]) vouches for its
//! records; an unsigned or foreign-signed bundle's records are dropped and reported
//! ([`ImportReport::records_dropped`]), while its objects and roots are imported as usual.

mod extract;
mod inspect;
mod inventory;
mod keys;
mod read;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::meta::Root;

pub use extract::read_selected;
pub use inspect::{EncodingTotals, Inspection, inspect};
pub use inventory::Inventory;
pub use keys::{
    KeyError, PUBLIC_PREFIX as PUBLIC_KEY_PREFIX, PublicKey, SecretKey, read_trusted_keys,
};
pub use read::{ImportOptions, ImportReport, import};
pub use write::{Compression, ExportReport, ExportSpec, export, plan};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 14] = b"hstore-bundle\0";
/// The first bytes of a zstd frame: a bundle compressed as a whole (`export --level`) starts with them.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The zstd window of a compressed bundle (128 MiB, `zstd --long`'s default): also the most a reader accepts, which
/// bounds its memory.
pub const COMPRESSION_WINDOW_LOG: u32 = 27;
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "hstore-bundle";
/// Largest manifest accepted (about 6 million objects).
pub const MAX_MANIFEST_BYTES: u64 = 512 << 20;
/// Largest directory node accepted (a directory of roughly 200,000 entries).
pub const MAX_DIRECTORY_BYTES: u64 = 16 << 20;
/// Domain separation for the signed message.
pub const SIGNATURE_CONTEXT: &[u8] = b"hstore-bundle-v1 manifest\0";

/// Record tag of an object.
pub(crate) const TAG_OBJECT: u8 = b'O';
/// Record tag of the trailer.
pub(crate) const TAG_TRAILER: u8 = b'T';
/// Signature kind: none.
pub(crate) const SIGNATURE_NONE: u8 = 0;
/// Signature kind: ed25519.
pub(crate) const SIGNATURE_ED25519: u8 = 1;

/// What an object is, as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A file's bytes.
    Blob,
    /// A directory node.
    Dir,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ObjectKind {
    /// The kind in words.
    pub const fn name(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Dir => "dir",
        }
    }
}

/// How an object's payload is encoded in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PayloadEncoding {
    /// A blob's bytes as they are.
    RawBlob = 1,
    /// A blob as zstd frames (the store's `.zst` file verbatim).
    ZstdBlob = 2,
    /// A directory node's canonical bytes.
    Directory = 3,
}

impl PayloadEncoding {
    /// Parses the encoding byte.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(PayloadEncoding::RawBlob),
            2 => Some(PayloadEncoding::ZstdBlob),
            3 => Some(PayloadEncoding::Directory),
            _ => None,
        }
    }

    /// The kind of object this encoding carries.
    pub const fn kind(self) -> ObjectKind {
        match self {
            PayloadEncoding::RawBlob | PayloadEncoding::ZstdBlob => ObjectKind::Blob,
            PayloadEncoding::Directory => ObjectKind::Dir,
        }
    }
}

/// One object the manifest lists: `[address, kind, size]` in JSON (compact: a bundle may list 250,000 objects).
/// `size` is the blob's length, or the directory node's encoded length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(Digest, ObjectKind, u64)", into = "(Digest, ObjectKind, u64)")]
pub struct ManifestObject {
    /// The object's address.
    pub address: Digest,
    /// Blob or directory node.
    pub kind: ObjectKind,
    /// Decoded length in bytes.
    pub size: u64,
}

impl From<(Digest, ObjectKind, u64)> for ManifestObject {
    fn from((address, kind, size): (Digest, ObjectKind, u64)) -> Self {
        Self {
            address,
            kind,
            size,
        }
    }
}

impl From<ManifestObject> for (Digest, ObjectKind, u64) {
    fn from(object: ManifestObject) -> Self {
        (object.address, object.kind, object.size)
    }
}

/// A metadata record carried as is (`meta-v1/<namespace>/<key>.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The namespace (e.g. `build`).
    pub namespace: String,
    /// The key in that namespace.
    pub key: String,
    /// The record, opaque to the bundle.
    pub value: serde_json::Value,
}

/// The manifest: everything an importer needs to know before the objects arrive. Serialized as JSON with fields in
/// this order and no timestamps, so the same store and selection give a byte-identical bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// gc roots to register, by name.
    pub roots: BTreeMap<String, Root>,
    /// Addresses of the lockfile blobs carried.
    pub lockfiles: Vec<Digest>,
    /// Metadata records to write, sorted by namespace and key.
    pub records: Vec<Record>,
    /// The objects, in stream order (children before parents).
    pub objects: Vec<ManifestObject>,
}

/// Everything that can go wrong writing or reading a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed underneath (reading objects to export, writing imported ones).
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// Reading the bundle failed.
    #[error("failed to read bundle `{name}` at byte {offset}")]
    Read {
        /// The bundle (a path, or `<stdin>`).
        name: String,
        /// How far it got.
        offset: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the bundle failed.
    #[error("failed to write the bundle at byte {offset}")]
    Write {
        /// How far it got.
        offset: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input does not start with [`MAGIC`].
    #[error("`{name}` is not an hstore bundle (it does not start with the bundle magic)")]
    NotABundle {
        /// The input.
        name: String,
    },
    /// The bundle was written by an incompatible hstore.
    #[error(
        "bundle `{name}` has format version {found}; this hstore reads version {FORMAT_VERSION}"
    )]
    UnsupportedVersion {
        /// The input.
        name: String,
        /// The version found.
        found: u32,
    },
    /// The stream ended early.
    #[error("bundle `{name}` is truncated: it ends at byte {offset}, inside {inside}")]
    Truncated {
        /// The input.
        name: String,
        /// Where it ended.
        offset: u64,
        /// What was being read, in words.
        inside: String,
    },
    /// The manifest length is beyond [`MAX_MANIFEST_BYTES`].
    #[error(
        "bundle `{name}` announces a manifest of {length} bytes (at most {MAX_MANIFEST_BYTES} are accepted)"
    )]
    ManifestTooLarge {
        /// The input.
        name: String,
        /// The announced length.
        length: u64,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("the manifest of bundle `{name}` is not valid")]
    InvalidManifest {
        /// The input.
        name: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest contradicts itself or the header.
    #[error("the manifest of bundle `{name}` is inconsistent: {problem}")]
    InconsistentManifest {
        /// The input.
        name: String,
        /// What is wrong, with the values involved.
        problem: String,
    },
    /// A root, lockfile or record refers to an object that is neither in the bundle nor in the store.
    #[error(
        "bundle `{name}`: {what} names {address}, which is neither in the bundle nor in the store"
    )]
    NotInClosure {
        /// The input.
        name: String,
        /// Who refers to it (``root `lockfile-…` ``, `lockfile`).
        what: String,
        /// The missing address.
        address: Digest,
    },
    /// A carried record fails the schema of its layer.
    #[error("bundle `{name}`: record `{record}` is not valid: {reason}")]
    InvalidRecord {
        /// The input.
        name: String,
        /// `namespace/key`.
        record: String,
        /// What is wrong.
        reason: String,
    },
    /// Trust is required and the bundle carries no signature.
    #[error("bundle `{name}` is not signed, and trusted keys were given")]
    Unsigned {
        /// The input.
        name: String,
    },
    /// The bundle is signed by a key that is not trusted.
    #[error("bundle `{name}` is signed by `{key}`, which is not among the trusted keys")]
    UntrustedKey {
        /// The input.
        name: String,
        /// The signer's public key (text form).
        key: String,
    },
    /// The signature does not match the manifest.
    #[error("the signature of bundle `{name}` by `{key}` does not match its manifest")]
    BadSignature {
        /// The input.
        name: String,
        /// The claimed signer (text form).
        key: String,
    },
    /// The signature block has an unknown kind.
    #[error("bundle `{name}` has an unknown signature kind {kind}")]
    UnknownSignatureKind {
        /// The input.
        name: String,
        /// The kind byte.
        kind: u8,
    },
    /// A record tag is neither an object nor the trailer.
    #[error("bundle `{name}` is damaged: unknown record tag {tag:#04x} at byte {offset}")]
    UnknownTag {
        /// The input.
        name: String,
        /// Where.
        offset: u64,
        /// The byte found.
        tag: u8,
    },
    /// An object arrived that the manifest does not list (or lists elsewhere).
    #[error("bundle `{name}`: object #{position} is {found}, but the manifest lists {}", match expected {
        Some(expected) => format!("{expected} at that position"),
        None => "no more objects".to_owned(),
    })]
    UnexpectedObject {
        /// The input.
        name: String,
        /// Zero-based position in the stream.
        position: usize,
        /// What the manifest lists there, if anything.
        expected: Option<Digest>,
        /// What arrived.
        found: Digest,
    },
    /// The stream holds fewer objects than the manifest lists.
    #[error(
        "bundle `{name}` holds {found} objects, but its manifest lists {listed}; the first missing is {missing}"
    )]
    MissingObjects {
        /// The input.
        name: String,
        /// Objects the manifest lists.
        listed: usize,
        /// Objects the stream holds.
        found: usize,
        /// The first one absent.
        missing: Digest,
    },
    /// An object's record disagrees with the manifest on kind or size, or has an unknown encoding.
    #[error("bundle `{name}`: object #{position} ({address}) {problem}")]
    ObjectMismatch {
        /// The input.
        name: String,
        /// Zero-based position.
        position: usize,
        /// The object.
        address: Digest,
        /// What disagrees, with both values.
        problem: String,
    },
    /// An object's payload failed verification (wrong address, wrong length, bad zstd).
    #[error("bundle `{name}`: object #{position} ({address}) failed verification")]
    BadObject {
        /// The input.
        name: String,
        /// Zero-based position.
        position: usize,
        /// The object.
        address: Digest,
        /// What the check found.
        #[source]
        source: Box<crate::Error>,
    },
    /// A directory node names a child that is not earlier in the bundle nor in the store.
    #[error(
        "bundle `{name}`: directory {parent} names `{entry}` = {kind} {child}, which is neither earlier in the bundle nor in the store"
    )]
    MissingChild {
        /// The input.
        name: String,
        /// The directory node.
        parent: Digest,
        /// The entry's name.
        entry: String,
        /// The child's kind.
        kind: ObjectKind,
        /// The child's address.
        child: Digest,
    },
    /// The trailer's object count or hash is wrong.
    #[error("bundle `{name}` is damaged: {problem}")]
    BadTrailer {
        /// The input.
        name: String,
        /// What is wrong, with both values.
        problem: String,
    },
    /// Bytes follow the trailer.
    #[error("bundle `{name}` has unexpected bytes after its trailer (at byte {offset})")]
    TrailingData {
        /// The input.
        name: String,
        /// Where they start.
        offset: u64,
    },
    /// An object to export is missing from the source store.
    #[error("{address}, needed by {needed_by}, is not in the store")]
    MissingFromStore {
        /// The absent object.
        address: Digest,
        /// The root (or lockfile) whose closure needs it.
        needed_by: String,
    },
    /// A key could not be read, parsed or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An inventory file could not be parsed.
    #[error("inventory `{}` is not valid", path.display())]
    InvalidInventory {
        /// The file.
        path: PathBuf,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

impl crate::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Store(error) => error.hint(),
            Error::Truncated { .. } | Error::BadTrailer { .. } | Error::BadObject { .. } | Error::UnknownTag { .. } => {
                Some("the bundle was damaged in transit: copy it again (compare `b3sum` on both sides); objects already verified stay in the store, so a re-import is cheap".into())
            }
            Error::Unsigned { .. } | Error::UntrustedKey { .. } => Some(
                "ask for a bundle signed with `hstore export --sign KEY` by a key you trust, or pass its `.pub` with `--trust`".into(),
            ),
            Error::BadSignature { .. } => Some("the bundle was modified after it was signed; do not import it".into()),
            Error::MissingChild { .. } | Error::NotInClosure { .. } => Some(
                "an incremental bundle must be made against this store's inventory (`hstore store inventory`); import the full bundle it builds on first".into(),
            ),
            Error::MissingFromStore { .. } => {
                Some("run `hstore fetch` for that lockfile first, then `hstore store verify`".into())
            }
            Error::UnsupportedVersion { .. } => Some("import it with the hstore release that wrote it".into()),
            Error::NotABundle { .. } => {
                Some("`hstore export -o FILE` writes bundles; check that the path names one (not a lockfile or NAR)".into())
            }
            Error::InvalidRecord { .. } => Some(
                "the bundle was made by an incompatible hstore, or crafted: export it again with this release, and import only bundles you trust (`--trust KEY`)".into(),
            ),
            Error::Key(error) => error.hint(),
            _ => None,
        }
    }
}

/// The signed message for a header digest.
pub(crate) fn signed_message(header_digest: &Digest) -> Vec<u8> {
    let mut message = SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(header_digest.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::fs;

    use super::*;
    use crate::store::Store;

    /// A source store with a small tree (text, an already-compressed blob, a symlink, a subdirectory) under a root.
    fn source() -> (tempfile::TempDir, Store, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("a.txt"), "hello bundle ".repeat(40)).unwrap();
        fs::write(
            tree.join("sub/b.gz"),
            b"\x1f\x8b\x08\x00 not really gzip but stored raw",
        )
        .unwrap();
        std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
        let added = store.add_path(&tree).unwrap().digest();
        (dir, store, added)
    }

    fn spec(address: Digest) -> ExportSpec {
        ExportSpec {
            roots: BTreeMap::from([(
                "test-root".to_owned(),
                Root {
                    description: "test".into(),
                    addresses: vec![address],
                },
            )]),
            records: vec![Record {
                namespace: "build".into(),
                key: "k".into(),
                value: serde_json::json!({"out": address}),
            }],
            ..ExportSpec::default()
        }
    }

    fn bundle_bytes(store: &Store, spec: &ExportSpec, signer: Option<&SecretKey>) -> Vec<u8> {
        let manifest = plan(store, spec).unwrap();
        let mut out = Vec::new();
        export(store, &manifest, signer, None, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_is_deterministic_and_complete() {
        let (_dir, store, address) = source();
        let bytes = bundle_bytes(&store, &spec(address), None);
        assert_eq!(bytes, bundle_bytes(&store, &spec(address), None));
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        let report = import(&dest, &mut bytes.as_slice(), "b", &ImportOptions::default()).unwrap();
        assert_eq!(report.objects, 4);
        assert_eq!(report.added, 4);
        assert_eq!(report.roots, vec!["test-root".to_owned()]);
        assert!(dest.verify(false).unwrap().problems.is_empty());
        assert_eq!(dest.list_objects().unwrap(), store.list_objects().unwrap());
        // Unsigned: the objects and roots, never the record.
        assert_eq!(report.records_dropped, vec!["build/k".to_owned()]);
        assert!(dest.list_meta("build").unwrap().is_empty());
        // Incremental: against the destination's inventory nothing is left to ship.
        let mut incremental = spec(address);
        incremental.exclude = Inventory::of_store(&dest).unwrap().into_set();
        assert!(plan(&store, &incremental).unwrap().objects.is_empty());
    }

    /// The bytes the store keeps for `address` (its stored encoding), read whole.
    fn stored_bytes(store: &Store, address: &Digest) -> (crate::ObjectFormat, Vec<u8>) {
        let mut stored = store.open_stored(address).unwrap().unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stored.reader, &mut bytes).unwrap();
        (stored.format, bytes)
    }

    #[test]
    fn compressed_bundle_is_smaller_deterministic_and_imports_the_same_objects() {
        let (dir, store, _) = source();
        // Large enough for the store to keep it as zstd frames in a file of its own (several frames).
        let tree = dir.path().join("big");
        fs::create_dir_all(&tree).unwrap();
        let text: Vec<u8> = (0..400_000u32)
            .flat_map(|n| format!("line {} of a log\n", n % 977).into_bytes())
            .collect();
        fs::write(tree.join("log.txt"), &text).unwrap();
        fs::write(tree.join("copy.txt"), &text).unwrap();
        fs::write(tree.join("small.txt"), "hello bundle ".repeat(40)).unwrap();
        fs::write(tree.join("kept-raw.gz"), b"\x1f\x8b\x08\x00 stored raw").unwrap();
        let address = store.add_path(&tree).unwrap().digest();
        let manifest = plan(&store, &spec(address)).unwrap();
        let compressed = |level| {
            let mut out = Vec::new();
            let report = export(
                &store,
                &manifest,
                None,
                Some(Compression { level }),
                &mut out,
            )
            .unwrap();
            assert_eq!(report.bundle_bytes, out.len() as u64);
            out
        };
        let plain = bundle_bytes(&store, &spec(address), None);
        let level_19 = compressed(19);
        assert_eq!(
            level_19,
            compressed(19),
            "same store, same level: same bytes"
        );
        assert_eq!(level_19[..4], ZSTD_MAGIC);
        assert!(
            level_19.len() < plain.len() / 2,
            "{} vs {}",
            level_19.len(),
            plain.len()
        );

        let inspection = inspect(&mut level_19.as_slice(), "b").unwrap();
        assert!(inspection.compressed);
        assert_eq!(inspection.bundle_bytes, level_19.len() as u64);
        assert!(
            !inspection.by_encoding.contains_key("zstd blob"),
            "blobs travel decoded"
        );

        let from_plain = tempfile::tempdir().unwrap();
        let from_plain = Store::open(from_plain.path()).unwrap();
        import(
            &from_plain,
            &mut plain.as_slice(),
            "b",
            &ImportOptions::default(),
        )
        .unwrap();
        let from_compressed = tempfile::tempdir().unwrap();
        let from_compressed = Store::open(from_compressed.path()).unwrap();
        let report = import(
            &from_compressed,
            &mut level_19.as_slice(),
            "b",
            &ImportOptions::default(),
        )
        .unwrap();
        assert_eq!(report.objects, manifest.objects.len());
        assert!(from_compressed.verify(false).unwrap().problems.is_empty());
        let mut formats = std::collections::BTreeSet::new();
        for object in &manifest.objects {
            let expected = stored_bytes(&store, &object.address);
            formats.insert(format!("{:?}", expected.0));
            assert_eq!(stored_bytes(&from_plain, &object.address), expected);
            assert_eq!(
                stored_bytes(&from_compressed, &object.address),
                expected,
                "{} is stored differently after a compressed bundle",
                object.address
            );
        }
        assert_eq!(
            formats.len(),
            3,
            "raw, zstd and directory objects: {formats:?}"
        );

        // Damage inside the compressed stream is refused, and nothing is registered.
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        for index in (4..level_19.len()).step_by(level_19.len() / 16) {
            let mut flipped = level_19.clone();
            flipped[index] ^= 0x20;
            assert!(
                import(
                    &dest,
                    &mut flipped.as_slice(),
                    "b",
                    &ImportOptions::default()
                )
                .is_err()
            );
            let truncated = &level_19[..index];
            assert!(import(&dest, &mut &truncated[..], "b", &ImportOptions::default()).is_err());
        }
        assert!(dest.roots().unwrap().is_empty());
    }

    #[test]
    fn read_selected_hands_over_verified_objects_and_refuses_a_damaged_one() {
        let (_dir, store, address) = source();
        let bytes = bundle_bytes(&store, &spec(address), None);
        let root = store.directory(&address).unwrap();
        let Some(crate::Node::File { digest: text, .. }) = root
            .get(&crate::PathComponent::new("a.txt").unwrap())
            .cloned()
        else {
            panic!("a.txt is a file");
        };
        let mut seen = Vec::new();
        let manifest = read_selected(
            &mut bytes.as_slice(),
            "b",
            |manifest| {
                assert_eq!(manifest.objects.len(), 4);
                [text, address].into_iter().collect()
            },
            |object, reader| {
                let mut content = Vec::new();
                reader.read_to_end(&mut content).unwrap();
                seen.push((object.address, content));
            },
        )
        .unwrap();
        assert_eq!(manifest.roots.len(), 1);
        // Children come first: the file, then the root node.
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (text, "hello bundle ".repeat(40).into_bytes()));
        assert_eq!(seen[1], (address, root.encode()));

        // A callback that reads nothing still gets the object checked; every flipped byte fails the call.
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x20;
            let result = read_selected(
                &mut flipped.as_slice(),
                "b",
                |manifest| manifest.objects.iter().map(|o| o.address).collect(),
                |_, _| {},
            );
            assert!(result.is_err(), "flipping byte {index} went unnoticed");
        }
        let error = read_selected(&mut &b"{}"[..], "x.json", |_| HashSet::new(), |_, _| {});
        assert!(matches!(error, Err(Error::NotABundle { .. })));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let (_dir, store, address) = source();
        let bytes = bundle_bytes(&store, &spec(address), None);
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x20;
            let result = import(
                &dest,
                &mut flipped.as_slice(),
                "b",
                &ImportOptions::default(),
            );
            assert!(result.is_err(), "flipping byte {index} went unnoticed");
            let truncated = &bytes[..index];
            assert!(import(&dest, &mut &truncated[..], "b", &ImportOptions::default()).is_err());
        }
        assert!(dest.roots().unwrap().is_empty());
        assert!(dest.list_meta("build").unwrap().is_empty());
        assert!(dest.verify(false).unwrap().problems.is_empty());
    }

    #[test]
    fn trust_is_checked_before_any_object() {
        let (_dir, store, address) = source();
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let signed = bundle_bytes(&store, &spec(address), Some(&key));
        let unsigned = bundle_bytes(&store, &spec(address), None);
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        let trust = |keys: Vec<PublicKey>| ImportOptions {
            records: None,
            trusted_keys: Some(keys),
            record_signers: Vec::new(),
        };
        let error = import(
            &dest,
            &mut unsigned.as_slice(),
            "b",
            &trust(vec![key.public_key()]),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Unsigned { .. }), "{error}");
        let error = import(
            &dest,
            &mut signed.as_slice(),
            "b",
            &trust(vec![other.public_key()]),
        )
        .unwrap_err();
        assert!(matches!(error, Error::UntrustedKey { .. }), "{error}");
        assert!(dest.list_objects().unwrap().is_empty());
        let report = import(
            &dest,
            &mut signed.as_slice(),
            "b",
            &trust(vec![key.public_key()]),
        )
        .unwrap();
        assert_eq!(report.signer, Some(key.public_key()));
        assert_eq!(report.records, 1);
    }

    #[test]
    fn lying_manifests_are_refused() {
        let (_dir, store, address) = source();
        let good = plan(&store, &spec(address)).unwrap();
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        let try_import = |manifest: &Manifest| {
            let mut out = Vec::new();
            // Writing a lying manifest works: the writer trusts its plan; the reader must not.
            let _ = export(&store, manifest, None, None, &mut out);
            import(&dest, &mut out.as_slice(), "b", &ImportOptions::default()).unwrap_err()
        };
        let mut wrong_size = good.clone();
        wrong_size.objects[0].size += 1;
        assert!(matches!(try_import(&wrong_size), Error::BadObject { .. }));
        let mut missing = good.clone();
        missing.objects.remove(1);
        assert!(matches!(try_import(&missing), Error::MissingChild { .. }));
        let mut outside = good.clone();
        outside.roots.insert(
            "extra".into(),
            Root {
                description: String::new(),
                addresses: vec![Digest::of_bytes(b"not there")],
            },
        );
        assert!(matches!(try_import(&outside), Error::NotInClosure { .. }));
        let mut twice = good.clone();
        twice.objects.push(twice.objects[0]);
        assert!(matches!(
            try_import(&twice),
            Error::InconsistentManifest { .. }
        ));
        assert!(dest.roots().unwrap().is_empty());
    }

    /// A schema that accepts `{"out": address}` in namespace `build` and names that address.
    struct OutSchema;

    impl crate::meta::RecordSchema for OutSchema {
        fn check(
            &self,
            namespace: &str,
            _key: &str,
            value: &serde_json::Value,
        ) -> std::result::Result<Vec<Digest>, String> {
            if namespace != "build" {
                return Err(format!("unknown namespace `{namespace}`"));
            }
            let out = value
                .get("out")
                .and_then(serde_json::Value::as_str)
                .ok_or("missing field `out`")?;
            Ok(vec![out.parse().map_err(|_| "bad address".to_owned())?])
        }
    }

    fn with_schema(trusted_keys: Option<Vec<PublicKey>>) -> ImportOptions {
        ImportOptions {
            trusted_keys,
            record_signers: Vec::new(),
            records: Some(std::sync::Arc::new(OutSchema)),
        }
    }

    #[test]
    fn records_come_only_from_a_bundle_signed_by_a_trusted_key() {
        let (_dir, store, address) = source();
        let secret = SecretKey::generate();
        let stranger = SecretKey::generate();
        let unsigned = bundle_bytes(&store, &spec(address), None);
        let foreign = bundle_bytes(&store, &spec(address), Some(&stranger));
        let signed = bundle_bytes(&store, &spec(address), Some(&secret));
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        // `record_signers` vouch for records without requiring a signature on the objects.
        let vouching = ImportOptions {
            record_signers: vec![secret.public_key()],
            ..with_schema(None)
        };
        for bytes in [&unsigned, &foreign] {
            let report = import(&dest, &mut bytes.as_slice(), "b", &vouching).unwrap();
            assert_eq!(report.records_dropped, vec!["build/k".to_owned()]);
            assert_eq!(report.records, 0);
            assert_eq!(report.roots, vec!["test-root".to_owned()]);
            assert!(dest.list_meta("build").unwrap().is_empty());
        }
        assert_eq!(dest.list_objects().unwrap(), store.list_objects().unwrap());
        let report = import(&dest, &mut signed.as_slice(), "b", &vouching).unwrap();
        assert!(report.records_dropped.is_empty());
        assert_eq!(report.records, 1);
        assert_eq!(
            dest.get_meta::<serde_json::Value>("build", "k").unwrap(),
            Some(serde_json::json!({"out": address}))
        );
        // The same record again, unsigned: unchanged, nothing dropped.
        let report = import(&dest, &mut unsigned.as_slice(), "b", &vouching).unwrap();
        assert_eq!(
            (report.records_unchanged, report.records_dropped.len()),
            (1, 0)
        );
    }

    #[test]
    fn records_are_checked_and_never_replaced_without_trust() {
        let (_dir, store, address) = source();
        let other = store.add_bytes(b"another output").unwrap();
        let dest_dir = tempfile::tempdir().unwrap();
        let dest = Store::open(dest_dir.path()).unwrap();
        let honest = serde_json::json!({"out": address});
        dest.put_meta("build", "k", &honest).unwrap();

        let mut evil = spec(address);
        evil.records[0].value = serde_json::json!({"out": other});
        evil.roots
            .get_mut("test-root")
            .unwrap()
            .addresses
            .push(other);
        let bytes = bundle_bytes(&store, &evil, None);
        let report = import(&dest, &mut bytes.as_slice(), "b", &with_schema(None)).unwrap();
        assert_eq!(report.records_dropped, vec!["build/k".to_owned()]);
        assert_eq!(report.records, 0);
        assert_eq!(
            dest.get_meta::<serde_json::Value>("build", "k").unwrap(),
            Some(honest)
        );

        // Signed by a trusted key: replaced.
        let secret = SecretKey::generate();
        let signed = bundle_bytes(&store, &evil, Some(&secret));
        let report = import(
            &dest,
            &mut signed.as_slice(),
            "b",
            &with_schema(Some(vec![secret.public_key()])),
        )
        .unwrap();
        assert!(report.records_dropped.is_empty());
        assert_eq!(report.records, 1);
        assert_eq!(
            dest.get_meta::<serde_json::Value>("build", "k").unwrap(),
            Some(serde_json::json!({"out": other}))
        );

        // A record the schema refuses: the import fails before any object is read.
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Store::open(fresh_dir.path()).unwrap();
        let mut malformed = spec(address);
        malformed.records[0].value = serde_json::json!({"output": address});
        let bytes = bundle_bytes(&store, &malformed, None);
        let error = import(&fresh, &mut bytes.as_slice(), "b", &with_schema(None)).unwrap_err();
        assert!(matches!(error, Error::InvalidRecord { .. }), "{error}");
        assert!(fresh.list_objects().unwrap().is_empty());
        assert!(fresh.list_meta("build").unwrap().is_empty());
    }
}
