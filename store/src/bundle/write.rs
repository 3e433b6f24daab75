//! Writing bundles: [`plan`] walks the closure into a [`Manifest`], [`export`] streams it.
//!
//! The closure is walked depth-first and listed post-order (children before parents), each object once, skipping
//! whole subtrees whose root is excluded (the other side's inventory). Each payload is the object's stored bytes,
//! copied verbatim and re-verified in the same pass (a corrupt source object stops the export instead of failing on
//! the far side of the air gap). With [`Compression`], blobs are written decoded (still verified) and the whole
//! stream goes through one zstd encoder.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::keys::SecretKey;
use super::{
    Error, FORMAT_VERSION, MAGIC, MANIFEST_FORMAT, Manifest, ManifestObject, ObjectKind,
    PayloadEncoding, Record, SIGNATURE_ED25519, SIGNATURE_NONE, TAG_OBJECT, TAG_TRAILER,
    signed_message,
};
use crate::digest::Digest;
use crate::layout::ObjectFormat;
use crate::meta::Root;
use crate::store::{BUFFER_SIZE, Store};
use crate::transfer::{BlobEncoding, copy_verified};
use crate::tree::Node;

/// What to put in a bundle.
#[derive(Clone, Debug, Default)]
pub struct ExportSpec {
    /// gc roots to carry (and register on import), by name; their closures are shipped.
    pub roots: BTreeMap<String, Root>,
    /// Lockfile blobs carried (they should also be in a root, so gc keeps them on the other side).
    pub lockfiles: Vec<Digest>,
    /// Metadata records to carry.
    pub records: Vec<Record>,
    /// Objects the destination already holds (with their subtrees): not shipped.
    pub exclude: HashSet<Digest>,
}

/// What [`export`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Objects shipped.
    pub objects: usize,
    /// Their decoded bytes (blob lengths plus directory nodes).
    pub content_bytes: u64,
    /// Bytes of the whole bundle.
    pub bundle_bytes: u64,
}

/// Computes the manifest for `spec`: the closure of every root and lockfile minus what is excluded.
pub fn plan(store: &Store, spec: &ExportSpec) -> Result<Manifest, Error> {
    let mut starts: Vec<(Digest, String)> = Vec::new();
    for (name, root) in &spec.roots {
        crate::meta::validate_name(name)?;
        for address in &root.addresses {
            starts.push((*address, format!("root `{name}`")));
        }
    }
    for lockfile in &spec.lockfiles {
        starts.push((*lockfile, format!("lockfile {lockfile}")));
    }
    let mut visited: HashSet<Digest> = HashSet::new();
    let mut objects = Vec::new();
    for (start, needed_by) in starts {
        walk(
            store,
            start,
            &needed_by,
            &spec.exclude,
            &mut visited,
            &mut objects,
        )?;
    }
    let mut records = spec.records.clone();
    for record in &records {
        crate::meta::validate_name(&record.namespace)?;
        crate::meta::validate_name(&record.key)?;
    }
    records.sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
    records.dedup_by(|a, b| a.namespace == b.namespace && a.key == b.key);
    let mut lockfiles = spec.lockfiles.clone();
    lockfiles.sort();
    lockfiles.dedup();
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        version: FORMAT_VERSION,
        roots: spec.roots.clone(),
        lockfiles,
        records,
        objects,
    })
}

/// Appends the not-yet-visited closure of `start` to `objects`, post-order, without recursion (trees can be deep).
fn walk(
    store: &Store,
    start: Digest,
    needed_by: &str,
    exclude: &HashSet<Digest>,
    visited: &mut HashSet<Digest>,
    objects: &mut Vec<ManifestObject>,
) -> Result<(), Error> {
    // (address, expanded): an expanded directory is emitted when popped again, after its children.
    let mut stack: Vec<(Digest, Option<u64>)> = vec![(start, None)];
    while let Some((address, expanded)) = stack.pop() {
        if let Some(size) = expanded {
            objects.push(ManifestObject {
                address,
                kind: ObjectKind::Dir,
                size,
            });
            continue;
        }
        if exclude.contains(&address) || !visited.insert(address) {
            continue;
        }
        let Some((format, location)) = store.locate(&address)? else {
            return Err(Error::MissingFromStore {
                address,
                needed_by: needed_by.to_owned(),
            });
        };
        match format {
            ObjectFormat::RawBlob => {
                let size = location
                    .stored_len()
                    .map_err(crate::Error::io("stat", location.path()))?;
                objects.push(ManifestObject {
                    address,
                    kind: ObjectKind::Blob,
                    size,
                });
            }
            ObjectFormat::ZstdBlob => {
                let size = Store::zstd_content_size(&address, &location)?;
                objects.push(ManifestObject {
                    address,
                    kind: ObjectKind::Blob,
                    size,
                });
            }
            ObjectFormat::Directory => {
                let size = location
                    .stored_len()
                    .map_err(crate::Error::io("stat", location.path()))?;
                let directory = store.directory(&address)?;
                stack.push((address, Some(size)));
                // Pushed in reverse so children are listed in name order.
                let children: Vec<Digest> = directory
                    .entries()
                    .filter_map(|(_, node)| match node {
                        Node::File { digest, .. } | Node::Directory { digest, .. } => Some(*digest),
                        Node::Symlink { .. } => None,
                    })
                    .collect();
                for child in children.into_iter().rev() {
                    stack.push((child, None));
                }
            }
        }
    }
    Ok(())
}

/// A writer that hashes and counts everything written through it.
struct HashingWriter<'a> {
    inner: BufWriter<&'a mut dyn Write>,
    hasher: blake3::Hasher,
    offset: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl HashingWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let offset = self.offset;
        self.write_all(bytes)
            .map_err(|source| Error::Write { offset, source })
    }
}

/// Whole-stream compression of a bundle (see the module docs of [`super`]): zstd at `level`, long-distance matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// The zstd level, 1 to 22.
    pub level: i32,
}

/// Counts the bytes that reach the destination (the compressed length, under a compressing encoder).
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buffer)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the bundle for `manifest` (from [`plan`]) to `out`, signed when `signer` is given, compressed as a whole
/// when `compression` is given.
pub fn export(
    store: &Store,
    manifest: &Manifest,
    signer: Option<&SecretKey>,
    compression: Option<Compression>,
    out: &mut dyn Write,
) -> Result<ExportReport, Error> {
    let Some(Compression { level }) = compression else {
        return write_stream(store, manifest, signer, false, out);
    };
    let mut counted = CountingWriter {
        inner: out,
        written: 0,
    };
    let setup = |source| Error::Write { offset: 0, source };
    let mut encoder = zstd::stream::write::Encoder::new(&mut counted, level).map_err(setup)?;
    encoder.long_distance_matching(true).map_err(setup)?;
    encoder
        .window_log(super::COMPRESSION_WINDOW_LOG)
        .map_err(setup)?;
    // zstd's multi-threaded output does not depend on the number of workers (only on the parameters), so the
    // bundle stays byte-identical from machine to machine.
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    encoder
        .multithread(u32::try_from(workers).unwrap_or(1))
        .map_err(setup)?;
    let mut report = write_stream(store, manifest, signer, true, &mut encoder)?;
    let offset = report.bundle_bytes;
    encoder
        .finish()
        .map_err(|source| Error::Write { offset, source })?;
    report.bundle_bytes = counted.written;
    Ok(report)
}

/// Writes the bundle's records to `out`; with `decode_blobs`, every blob is written decoded (encoding 1).
fn write_stream(
    store: &Store,
    manifest: &Manifest,
    signer: Option<&SecretKey>,
    decode_blobs: bool,
    out: &mut dyn Write,
) -> Result<ExportReport, Error> {
    let manifest_json = serde_json::to_vec(manifest).map_err(|source| crate::Error::Json {
        path: "<bundle manifest>".into(),
        source,
    })?;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(manifest_json.len() as u64).to_le_bytes());
    header.extend_from_slice(&manifest_json);
    let mut writer = HashingWriter {
        inner: BufWriter::with_capacity(BUFFER_SIZE, out),
        hasher: blake3::Hasher::new(),
        offset: 0,
    };
    writer.put(&header)?;
    match signer {
        None => writer.put(&[SIGNATURE_NONE])?,
        Some(key) => {
            let signature = key.sign(&signed_message(&Digest::of_bytes(&header)));
            writer.put(&[SIGNATURE_ED25519])?;
            writer.put(&key.public_key().to_bytes())?;
            writer.put(&signature)?;
        }
    }
    drop(header);
    let mut report = ExportReport::default();
    for object in &manifest.objects {
        write_object(store, object, decode_blobs, &mut writer)?;
        report.objects += 1;
        report.content_bytes += object.size;
    }
    writer.put(&[TAG_TRAILER])?;
    writer.put(&(manifest.objects.len() as u64).to_le_bytes())?;
    let digest = Digest::from(writer.hasher.finalize());
    writer.put(digest.as_bytes())?;
    let offset = writer.offset;
    writer
        .flush()
        .map_err(|source| Error::Write { offset, source })?;
    report.bundle_bytes = writer.offset;
    Ok(report)
}

fn write_object(
    store: &Store,
    object: &ManifestObject,
    decode_blobs: bool,
    writer: &mut HashingWriter<'_>,
) -> Result<(), Error> {
    let address = object.address;
    let stored = store
        .open_stored(&address)?
        .ok_or(crate::Error::MissingObject { digest: address })?;
    let (format, path) = (stored.format, stored.path);
    // A compressed bundle carries a zstd blob decoded: the stream's compressor does better on the bytes themselves.
    let decode = decode_blobs && format == ObjectFormat::ZstdBlob;
    let (encoding, length) = match format {
        ObjectFormat::RawBlob => (PayloadEncoding::RawBlob, stored.len),
        ObjectFormat::ZstdBlob if decode => (PayloadEncoding::RawBlob, object.size),
        ObjectFormat::ZstdBlob => (PayloadEncoding::ZstdBlob, stored.len),
        ObjectFormat::Directory => (PayloadEncoding::Directory, stored.len),
    };
    writer.put(&[TAG_OBJECT])?;
    writer.put(address.as_bytes())?;
    writer.put(&[encoding as u8])?;
    writer.put(&length.to_le_bytes())?;
    let mut reader = BufReader::with_capacity(BUFFER_SIZE, stored.reader);
    if let Some(blob_encoding) = BlobEncoding::of_format(format) {
        let offset = writer.offset;
        let write_failed = |error| match error {
            crate::Error::Io {
                action: "write",
                source,
                ..
            } => Error::Write { offset, source },
            other => Error::Store(other),
        };
        let copied = if decode {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(crate::Error::io("decompress", &path))?;
            copy_verified(
                &mut decoder,
                BlobEncoding::Raw,
                &address,
                object.size,
                writer,
                &path,
                Path::new("<bundle>"),
            )
        } else {
            copy_verified(
                &mut reader,
                blob_encoding,
                &address,
                object.size,
                writer,
                &path,
                Path::new("<bundle>"),
            )
        }
        .map_err(write_failed)?;
        if copied != length {
            return Err(crate::Error::SizeMismatch {
                path,
                expected: length,
                actual: copied,
            }
            .into());
        }
    } else {
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(crate::Error::io("read", &path))?;
        store.check_directory_bytes(&address, &bytes)?;
        writer.put(&bytes)?;
    }
    Ok(())
}
