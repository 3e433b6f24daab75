//! Reading bundles: [`import`] checks every byte of a bundle while streaming it into a store.
//!
//! Objects become visible one at a time, each only after it decoded to its listed size and hashed to its address
//! (via [`Store::add_encoded_blob`] and [`Store::put_directory_bytes`]), and, for a directory node, only once all its
//! children are present. Roots and records are written only after the whole stream checked out, trailer included.
//! When trusted keys are given, the signature over the manifest is checked before the first object is read. Memory:
//! the manifest and a set of the addresses seen (about 100 bytes per object), plus a few 1 MiB buffers; never a
//! whole blob. Records are registered only from a bundle signed by a trusted key; objects need no signature.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::keys::{KeyError, PublicKey};
use super::{
    COMPRESSION_WINDOW_LOG, Error, FORMAT_VERSION, MAGIC, MANIFEST_FORMAT, MAX_DIRECTORY_BYTES,
    MAX_MANIFEST_BYTES, Manifest, ManifestObject, ObjectKind, PayloadEncoding, SIGNATURE_ED25519,
    SIGNATURE_NONE, TAG_OBJECT, TAG_TRAILER, ZSTD_MAGIC, signed_message,
};
use crate::digest::Digest;
use crate::meta::{RecordSchema, Root};
use crate::store::{BUFFER_SIZE, Durability, Store};
use crate::transfer::BlobEncoding;
use crate::tree::Node;

/// How to import.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// When set, the bundle must be signed by one of these keys, checked before any object is read.
    pub trusted_keys: Option<Vec<PublicKey>>,
    /// Further keys whose signature on a bundle vouches for its records (`[caches] trusted-keys`), without making
    /// a signature required for the objects. A record is registered only from a bundle signed by one of these or
    /// of `trusted_keys`; any other bundle's records are dropped ([`ImportReport::records_dropped`]).
    pub record_signers: Vec<PublicKey>,
    /// The schema every carried record must pass (checked with the manifest, before any object is read); the
    /// addresses it names must be in the bundle or the store. `None` accepts any record (library callers that
    /// carry their own records); the CLI always passes one.
    pub records: Option<Arc<dyn RecordSchema>>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("trusted_keys", &self.trusted_keys)
            .field("record_signers", &self.record_signers)
            .field("records", &self.records.as_ref().map(|_| "RecordSchema"))
            .finish()
    }
}

/// What [`import`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects in the bundle, all verified.
    pub objects: usize,
    /// Of those, objects the store did not hold before.
    pub added: usize,
    /// Decoded bytes of all objects.
    pub content_bytes: u64,
    /// Bytes of the bundle.
    pub bundle_bytes: u64,
    /// Roots registered.
    pub roots: Vec<String>,
    /// Lockfile blobs carried.
    pub lockfiles: Vec<Digest>,
    /// Records written (new, or replaced): only from a bundle signed by a trusted key.
    pub records: usize,
    /// Records the store already held with the same value.
    pub records_unchanged: usize,
    /// Records (`namespace/key`) not registered because the bundle is unsigned or signed by a key not trusted: a
    /// record says "this key built that output", which an object's address cannot prove, so only a trusted
    /// signature over the manifest (which lists the records) lets one in. The objects are imported all the same.
    pub records_dropped: Vec<String>,
    /// Who signed the bundle, if anyone (always a trusted key when trust was required).
    pub signer: Option<PublicKey>,
}

/// The input, hashed and counted as it is read; remembers whether it ended.
struct StreamReader<'a> {
    inner: BufReader<Box<dyn Read + 'a>>,
    hasher: blake3::Hasher,
    offset: u64,
    ended: bool,
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        if n == 0 && !buffer.is_empty() {
            self.ended = true;
        }
        if n >= BUFFER_SIZE / 2 {
            self.hasher.update_rayon(&buffer[..n]);
        } else {
            self.hasher.update(&buffer[..n]);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// One object's payload: exactly `remaining` bytes of the stream, or an `UnexpectedEof` error.
pub(super) struct Payload<'s, 'a> {
    stream: &'s mut StreamReader<'a>,
    remaining: u64,
}

impl Payload<'_, '_> {
    /// Payload bytes not read yet.
    pub(super) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether the stream ended (inside this payload, when bytes remain).
    pub(super) fn ended(&self) -> bool {
        self.stream.ended
    }
}

impl Read for Payload<'_, '_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let n = self.stream.read(&mut buffer[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the bundle ends inside an object payload",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The bundle being read, before anything knows of a store: its name for messages and the hashed stream. Header,
/// manifest, object records and trailer are parsed here, for import and for `inspect` alike.
pub(super) struct BundleReader<'a> {
    pub(super) name: String,
    compressed: bool,
    stream: StreamReader<'a>,
}

impl<'a> BundleReader<'a> {
    /// Starts reading `input`; a bundle compressed as a whole (it starts with zstd's magic) is decoded on the way.
    pub(super) fn new(input: &'a mut dyn Read, name: &str) -> Result<Self, Error> {
        let read_error = |source| Error::Read {
            name: name.to_owned(),
            offset: 0,
            source,
        };
        let mut head = [0u8; ZSTD_MAGIC.len()];
        let mut filled = 0;
        while filled < head.len() {
            match input.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(read_error(source)),
            }
        }
        let compressed = head == ZSTD_MAGIC;
        let whole = io::Cursor::new(head[..filled].to_vec()).chain(input);
        let inner: Box<dyn Read + 'a> = if compressed {
            // The decoder's default `windowLogMax` is the window export writes: a larger one is refused, not
            // allocated.
            let mut decoder = zstd::stream::read::Decoder::new(whole).map_err(read_error)?;
            decoder
                .window_log_max(COMPRESSION_WINDOW_LOG)
                .map_err(read_error)?;
            Box::new(decoder)
        } else {
            Box::new(whole)
        };
        Ok(BundleReader {
            name: name.to_owned(),
            compressed,
            stream: StreamReader {
                inner: BufReader::with_capacity(BUFFER_SIZE, inner),
                hasher: blake3::Hasher::new(),
                offset: 0,
                ended: false,
            },
        })
    }

    /// Bytes read so far (of the decoded stream, for a bundle compressed as a whole).
    pub(super) fn offset(&self) -> u64 {
        self.stream.offset
    }

    /// Whether the bundle is compressed as a whole (`export --level`).
    pub(super) fn compressed(&self) -> bool {
        self.compressed
    }

    /// Fills `buffer` from the stream; running out is [`Error::Truncated`] naming what was being read.
    fn exact(&mut self, buffer: &mut [u8], inside: impl FnOnce() -> String) -> Result<(), Error> {
        self.stream
            .read_exact(buffer)
            .map_err(|error| self.read_error(error, inside))
    }

    /// A failed read: [`Error::Truncated`] when the stream ran out inside `inside`, else [`Error::Read`].
    fn read_error(&self, error: io::Error, inside: impl FnOnce() -> String) -> Error {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Error::Truncated {
                name: self.name.clone(),
                offset: self.stream.offset,
                inside: inside(),
            }
        } else {
            Error::Read {
                name: self.name.clone(),
                offset: self.stream.offset,
                source: error,
            }
        }
    }

    fn inconsistent(&self, problem: String) -> Error {
        Error::InconsistentManifest {
            name: self.name.clone(),
            problem,
        }
    }

    /// The next `length` bytes of the stream, an object's payload (still hashed for the trailer).
    pub(super) fn payload(&mut self, length: u64) -> Payload<'_, 'a> {
        Payload {
            stream: &mut self.stream,
            remaining: length,
        }
    }

    /// Reads and discards `length` payload bytes (still hashed for the trailer), in bounded memory.
    pub(super) fn skip_payload(
        &mut self,
        length: u64,
        inside: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        let mut payload = Payload {
            stream: &mut self.stream,
            remaining: length,
        };
        let copied = io::copy(&mut payload, &mut io::sink());
        copied
            .map(drop)
            .map_err(|error| self.read_error(error, inside))
    }
}

struct Importer<'a, 's> {
    store: &'s Store,
    reader: BundleReader<'a>,
}

impl<'a> std::ops::Deref for Importer<'a, '_> {
    type Target = BundleReader<'a>;

    fn deref(&self) -> &Self::Target {
        &self.reader
    }
}

impl std::ops::DerefMut for Importer<'_, '_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.reader
    }
}

/// Reads the bundle `input` (named `name` in messages) into `store`. See the module docs of [`super`] for the
/// order of checks. On error, objects already verified stay in the store (harmless: they are content-addressed and
/// complete, and they make a retry cheap); no root or record is written.
pub fn import(
    store: &Store,
    input: &mut dyn Read,
    name: &str,
    options: &ImportOptions,
) -> Result<ImportReport, Error> {
    let mut importer = Importer {
        store,
        reader: BundleReader::new(input, name)?,
    };
    let (manifest, signer) = read_head(&mut importer.reader, options.trusted_keys.as_deref())?;
    check_manifest(&importer, &manifest, options.records.as_deref())?;
    // Objects are written in batches (one syncfs per batch instead of one fsync per object); whatever was verified
    // is published even if a later part of the bundle fails, which keeps a re-import cheap and is harmless because
    // every published object was checked against its address.
    let objects = read_objects(&mut importer, &manifest);
    let published = store.commit_pending();
    let mut report = objects?;
    published?;
    read_trailer(&mut importer.reader, manifest.objects.len())?;
    report.bundle_bytes = importer.stream.offset;
    report.signer = signer;
    report.lockfiles.clone_from(&manifest.lockfiles);

    // Everything checked out: only now register what the bundle carries. Records only when a trusted key signed
    // the manifest that lists them (the signature itself was checked in `read_head`).
    let trusted = report.signer.is_some_and(|signer| {
        options
            .trusted_keys
            .iter()
            .flatten()
            .chain(&options.record_signers)
            .any(|key| *key == signer)
    });
    for record in &manifest.records {
        let existing = store.get_meta::<serde_json::Value>(&record.namespace, &record.key);
        match existing {
            Ok(Some(value)) if value == record.value => report.records_unchanged += 1,
            // Absent, different, or unreadable (verify reports it; `verify --repair` removes it).
            Ok(_) | Err(_) if trusted => {
                store.put_meta(&record.namespace, &record.key, &record.value)?;
                report.records += 1;
            }
            Ok(_) | Err(_) => report
                .records_dropped
                .push(format!("{}/{}", record.namespace, record.key)),
        }
    }
    let existing: HashMap<String, Root> = store.roots()?.into_iter().collect();
    for (root_name, root) in &manifest.roots {
        let mut merged = root.clone();
        if let Some(old) = existing.get(root_name) {
            // Never drop gc protection a root already gave: keep the union of addresses.
            merged.addresses.extend(old.addresses.iter().copied());
            merged.addresses.sort();
            merged.addresses.dedup();
        }
        store.set_root(root_name, &merged)?;
        report.roots.push(root_name.clone());
    }
    store.flush()?;
    Ok(report)
}

/// Header, manifest and signature. A signature must verify; with `trusted_keys`, the bundle must be signed by one of
/// them, decided before the manifest is parsed.
pub(super) fn read_head(
    importer: &mut BundleReader<'_>,
    trusted_keys: Option<&[PublicKey]>,
) -> Result<(Manifest, Option<PublicKey>), Error> {
    let mut magic = [0u8; MAGIC.len()];
    let mut filled = 0;
    while filled < magic.len() {
        match importer.stream.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Read {
                    name: importer.name.clone(),
                    offset: importer.stream.offset,
                    source,
                });
            }
        }
    }
    if magic[..filled] != MAGIC[..filled] || filled == 0 {
        return Err(Error::NotABundle {
            name: importer.name.clone(),
        });
    }
    if filled < magic.len() {
        return Err(Error::Truncated {
            name: importer.name.clone(),
            offset: importer.stream.offset,
            inside: "the header".into(),
        });
    }
    let mut version = [0u8; 4];
    importer.exact(&mut version, || "the header".into())?;
    let found = u32::from_le_bytes(version);
    if found != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            name: importer.name.clone(),
            found,
        });
    }
    let mut length = [0u8; 8];
    importer.exact(&mut length, || "the header".into())?;
    let manifest_length = u64::from_le_bytes(length);
    if manifest_length > MAX_MANIFEST_BYTES {
        return Err(Error::ManifestTooLarge {
            name: importer.name.clone(),
            length: manifest_length,
        });
    }
    let mut manifest_bytes = vec![0u8; manifest_length as usize];
    importer.exact(&mut manifest_bytes, || "the manifest".into())?;
    let mut header_hasher = blake3::Hasher::new();
    header_hasher.update(MAGIC);
    header_hasher.update(&version);
    header_hasher.update(&length);
    header_hasher.update(&manifest_bytes);
    let header_digest = Digest::from(header_hasher.finalize());
    let mut kind = [0u8; 1];
    importer.exact(&mut kind, || "the signature".into())?;
    let signer = match kind[0] {
        SIGNATURE_NONE => None,
        SIGNATURE_ED25519 => {
            let mut key = [0u8; 32];
            let mut signature = [0u8; 64];
            importer.exact(&mut key, || "the signature".into())?;
            importer.exact(&mut signature, || "the signature".into())?;
            let key = PublicKey::from_bytes(&key).ok_or_else(|| KeyError::Invalid {
                text: hex::encode(key),
                kind: "public",
                reason: "the bundle's signing key is not a valid ed25519 point",
            })?;
            if !key.verify(&signed_message(&header_digest), &signature) {
                return Err(Error::BadSignature {
                    name: importer.name.clone(),
                    key: key.to_string(),
                });
            }
            Some(key)
        }
        other => {
            return Err(Error::UnknownSignatureKind {
                name: importer.name.clone(),
                kind: other,
            });
        }
    };
    if let Some(trusted) = trusted_keys {
        match signer {
            None => {
                return Err(Error::Unsigned {
                    name: importer.name.clone(),
                });
            }
            Some(key) if !trusted.contains(&key) => {
                return Err(Error::UntrustedKey {
                    name: importer.name.clone(),
                    key: key.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    // Parsed only now: with trust required, an untrusted manifest is never even parsed.
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|source| Error::InvalidManifest {
            name: importer.name.clone(),
            source,
        })?;
    drop(manifest_bytes);
    if manifest.format != MANIFEST_FORMAT || manifest.version != FORMAT_VERSION {
        return Err(importer.inconsistent(format!(
            "it says format `{}` version {}, the header says `{MANIFEST_FORMAT}` version {FORMAT_VERSION}",
            manifest.format, manifest.version
        )));
    }

    Ok((manifest, signer))
}

/// Checks the manifest against itself and the store, before any object is read.
fn check_manifest(
    importer: &Importer<'_, '_>,
    manifest: &Manifest,
    schema: Option<&dyn RecordSchema>,
) -> Result<(), Error> {
    let store = importer.store;
    let mut listed: HashMap<Digest, ObjectKind> = HashMap::with_capacity(manifest.objects.len());
    for (position, object) in manifest.objects.iter().enumerate() {
        if listed.insert(object.address, object.kind).is_some() {
            return Err(importer.inconsistent(format!(
                "object {} is listed twice (again at #{position})",
                object.address
            )));
        }
        if object.kind == ObjectKind::Dir && object.size > MAX_DIRECTORY_BYTES {
            return Err(importer.inconsistent(format!(
                "directory node {} is listed with {} bytes (at most {MAX_DIRECTORY_BYTES} are accepted)",
                object.address, object.size
            )));
        }
    }
    let valid = |name: &str| crate::meta::validate_name(name).is_ok();
    for (root_name, root) in &manifest.roots {
        if !valid(root_name) {
            return Err(importer.inconsistent(format!("root name `{root_name}` is not valid")));
        }
        for address in &root.addresses {
            if !listed.contains_key(address) && store.object_format(address)?.is_none() {
                return Err(Error::NotInClosure {
                    name: importer.name.clone(),
                    what: format!("root `{root_name}`"),
                    address: *address,
                });
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for record in &manifest.records {
        if !valid(&record.namespace) || !valid(&record.key) {
            return Err(importer.inconsistent(format!(
                "record name `{}/{}` is not valid",
                record.namespace, record.key
            )));
        }
        if !names.insert((&record.namespace, &record.key)) {
            return Err(importer.inconsistent(format!(
                "record `{}/{}` is listed twice",
                record.namespace, record.key
            )));
        }
        let Some(schema) = schema else { continue };
        let addresses = schema
            .check(&record.namespace, &record.key, &record.value)
            .map_err(|reason| Error::InvalidRecord {
                name: importer.name.clone(),
                record: format!("{}/{}", record.namespace, record.key),
                reason,
            })?;
        for address in addresses {
            if !listed.contains_key(&address) && store.object_format(&address)?.is_none() {
                return Err(Error::NotInClosure {
                    name: importer.name.clone(),
                    what: format!("record `{}/{}`", record.namespace, record.key),
                    address,
                });
            }
        }
    }
    for lockfile in &manifest.lockfiles {
        let present = match listed.get(lockfile) {
            Some(kind) => *kind == ObjectKind::Blob,
            None => store.blob_format(lockfile)?.is_some(),
        };
        if !present {
            return Err(Error::NotInClosure {
                name: importer.name.clone(),
                what: "the lockfile list".into(),
                address: *lockfile,
            });
        }
    }
    Ok(())
}

/// The object records, each checked against the manifest and stored once verified.
fn read_objects(
    importer: &mut Importer<'_, '_>,
    manifest: &Manifest,
) -> Result<ImportReport, Error> {
    let compressed = importer.compressed();
    let store = importer.store;
    let count = manifest.objects.len();
    let mut seen: HashMap<Digest, (ObjectKind, u64)> = HashMap::with_capacity(count);
    let mut report = ImportReport::default();
    let mut buffer = Vec::new();
    for position in 0.. {
        let Some(ObjectHeader {
            listed,
            encoding,
            length,
        }) = next_object(importer, manifest, position)?
        else {
            break;
        };
        let found = listed.address;
        let bundle_name = importer.name.clone();
        let mismatch = |problem: String| Error::ObjectMismatch {
            name: bundle_name.clone(),
            position,
            address: found,
            problem,
        };
        let (added, claimable) = match encoding {
            PayloadEncoding::Directory => {
                buffer.clear();
                buffer.resize(length as usize, 0);
                importer.exact(&mut buffer, || {
                    format!("the payload of object #{position} ({found})")
                })?;
                import_directory(importer, &seen, position, found, &buffer)?
            }
            PayloadEncoding::RawBlob | PayloadEncoding::ZstdBlob => {
                let blob_encoding = if encoding == PayloadEncoding::RawBlob {
                    BlobEncoding::Raw
                } else {
                    BlobEncoding::Zstd
                };
                let source = format!("{} object #{position}", importer.name);
                let mut payload = Payload {
                    stream: &mut importer.reader.stream,
                    remaining: length,
                };
                let result = if compressed && blob_encoding == BlobEncoding::Raw {
                    store.add_decoded_blob(&mut payload, found, listed.size, Path::new(&source))
                } else {
                    store.add_encoded_blob(
                        &mut payload,
                        blob_encoding,
                        found,
                        listed.size,
                        Path::new(&source),
                    )
                };
                let remaining = payload.remaining;
                match result {
                    Ok(_) if remaining != 0 => {
                        return Err(mismatch(format!(
                            "decoded fully with {remaining} payload bytes left over"
                        )));
                    }
                    Ok(added) => (added, listed.size),
                    // The store could not write (a full disk, a read-only or unwritable store): not the bundle's
                    // fault, and the message must say so.
                    Err(error) if is_store_write_failure(&error) => {
                        return Err(Error::Store(error));
                    }
                    Err(_) if importer.stream.ended => {
                        return Err(Error::Truncated {
                            name: importer.name.clone(),
                            offset: importer.stream.offset,
                            inside: format!("the payload of object #{position} ({found})"),
                        });
                    }
                    Err(source) => {
                        return Err(Error::BadObject {
                            name: importer.name.clone(),
                            position,
                            address: found,
                            source: Box::new(source),
                        });
                    }
                }
            }
        };
        // What a parent may claim for this child: a blob's length, a directory's total file bytes.
        seen.insert(found, (listed.kind, claimable));
        report.objects += 1;
        report.added += usize::from(added);
        report.content_bytes += listed.size;
    }
    Ok(report)
}

/// An object record's header, checked against the manifest: what it is, how its payload is encoded, how long.
pub(super) struct ObjectHeader {
    /// The manifest's entry for it (same address and kind).
    pub(super) listed: ManifestObject,
    /// The payload's encoding.
    pub(super) encoding: PayloadEncoding,
    /// The payload's length in the stream.
    pub(super) length: u64,
}

/// Reads the next record's tag and header, checked against the manifest entry at `position`; `None` at the
/// trailer's tag once every listed object came (the trailer itself is left to [`read_trailer`]).
pub(super) fn next_object(
    importer: &mut BundleReader<'_>,
    manifest: &Manifest,
    position: usize,
) -> Result<Option<ObjectHeader>, Error> {
    let count = manifest.objects.len();
    let mut tag = [0u8; 1];
    importer.exact(&mut tag, || {
        manifest.objects.get(position).map_or_else(
            || "the trailer".to_owned(),
            |object| format!("the record of object #{position} ({})", object.address),
        )
    })?;
    match tag[0] {
        TAG_TRAILER => {
            if let Some(missing) = manifest.objects.get(position) {
                return Err(Error::MissingObjects {
                    name: importer.name.clone(),
                    listed: count,
                    found: position,
                    missing: missing.address,
                });
            }
            return Ok(None);
        }
        TAG_OBJECT => {}
        other => {
            return Err(Error::UnknownTag {
                name: importer.name.clone(),
                offset: importer.stream.offset - 1,
                tag: other,
            });
        }
    }
    let mut head = [0u8; 32 + 1 + 8];
    importer.exact(&mut head, || {
        format!("the record header of object #{position}")
    })?;
    let mut address_bytes = [0u8; 32];
    address_bytes.copy_from_slice(&head[..32]);
    let found = Digest::from_bytes(address_bytes);
    let mut length_bytes = [0u8; 8];
    length_bytes.copy_from_slice(&head[33..]);
    let length = u64::from_le_bytes(length_bytes);
    let listed = manifest.objects.get(position);
    let Some(listed) = listed.filter(|listed| listed.address == found).copied() else {
        return Err(Error::UnexpectedObject {
            name: importer.name.clone(),
            position,
            expected: listed.map(|listed| listed.address),
            found,
        });
    };
    let mismatch = |problem: String| Error::ObjectMismatch {
        name: importer.name.clone(),
        position,
        address: found,
        problem,
    };
    let Some(encoding) = PayloadEncoding::from_byte(head[32]) else {
        return Err(mismatch(format!(
            "has unknown payload encoding {}",
            head[32]
        )));
    };
    if encoding.kind() != listed.kind {
        return Err(mismatch(format!(
            "is a {} in the stream but listed as a {}",
            encoding.kind().name(),
            listed.kind.name()
        )));
    }
    if encoding == PayloadEncoding::Directory && length != listed.size {
        return Err(mismatch(format!(
            "is {length} bytes in the stream but listed with {} bytes",
            listed.size
        )));
    }
    Ok(Some(ObjectHeader {
        listed,
        encoding,
        length,
    }))
}

/// Verifies a directory node, checks its children are present and of the size it claims, and stores it. Returns
/// whether it was new, and its total file bytes.
fn import_directory(
    importer: &Importer<'_, '_>,
    seen: &HashMap<Digest, (ObjectKind, u64)>,
    position: usize,
    address: Digest,
    bytes: &[u8],
) -> Result<(bool, u64), Error> {
    let store = importer.store;
    let directory = store
        .check_directory_bytes(&address, bytes)
        .map_err(|source| Error::BadObject {
            name: importer.name.clone(),
            position,
            address,
            source: Box::new(source),
        })?;
    for (entry, node) in directory.entries() {
        let (child, kind, claimed) = match node {
            Node::File { digest, size, .. } => (*digest, ObjectKind::Blob, *size),
            Node::Directory { digest, size } => (*digest, ObjectKind::Dir, *size),
            Node::Symlink { .. } => continue,
        };
        let entry_name = || String::from_utf8_lossy(entry.as_bytes()).into_owned();
        let actual = match seen.get(&child) {
            Some((seen_kind, size)) if *seen_kind == kind => Some(*size),
            Some(_) => None,
            None => match kind {
                ObjectKind::Blob => store.blob_size(&child)?,
                ObjectKind::Dir => store
                    .get_directory(&child)
                    .ok()
                    .flatten()
                    .map(|directory| directory.total_size()),
            },
        };
        let Some(actual) = actual else {
            return Err(Error::MissingChild {
                name: importer.name.clone(),
                parent: address,
                entry: entry_name(),
                kind,
                child,
            });
        };
        if actual != claimed {
            return Err(Error::ObjectMismatch {
                name: importer.name.clone(),
                position,
                address,
                problem: format!(
                    "is a directory whose entry `{}` claims {claimed} bytes, but {kind} {child} holds {actual}",
                    entry_name()
                ),
            });
        }
    }
    let total = directory.total_size();
    if store.has_directory(&address) {
        return Ok((false, total));
    }
    store.write_directory_bytes(&address, bytes, Durability::Batched)?;
    Ok((true, total))
}

/// Whether a failed blob write failed on the store's side (no space, no quota, no write access), not the bundle's.
fn is_store_write_failure(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Io { source, .. } if matches!(
        source.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::FileTooLarge
    ))
}

/// The trailer: object count and the hash of everything before it, then the end of the stream.
pub(super) fn read_trailer(importer: &mut BundleReader<'_>, count: usize) -> Result<(), Error> {
    let mut count_bytes = [0u8; 8];
    importer.exact(&mut count_bytes, || "the trailer".into())?;
    let computed = Digest::from(importer.stream.hasher.finalize());
    let mut stored = [0u8; 32];
    importer.exact(&mut stored, || "the trailer".into())?;
    let stored = Digest::from_bytes(stored);
    let trailer_count = u64::from_le_bytes(count_bytes);
    if trailer_count != count as u64 {
        return Err(Error::BadTrailer {
            name: importer.name.clone(),
            problem: format!("the trailer counts {trailer_count} objects, the stream held {count}"),
        });
    }
    if computed != stored {
        return Err(Error::BadTrailer {
            name: importer.name.clone(),
            problem: format!(
                "its bytes do not match the trailer hash\n  expected: {stored}\n  computed: {computed}"
            ),
        });
    }
    let offset = importer.stream.offset;
    let mut extra = [0u8; 1];
    match importer.stream.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::TrailingData {
            name: importer.name.clone(),
            offset,
        }),
        Err(source) => Err(Error::Read {
            name: importer.name.clone(),
            offset,
            source,
        }),
    }
}
