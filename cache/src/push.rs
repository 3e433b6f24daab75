//! Writing a cache: [`push_closure`] uploads what the cache lacks of some closures, in packs, then the build
//! records that name them.
//!
//! Order of work: load the cache's indexes → plan the closure minus what the cache holds (a directory the cache
//! holds is a whole subtree, see the crate docs) → cut the plan into packs of about [`PACK_BYTES`] in post-order →
//! build each pack from the store's stored objects (each re-verified as it is copied: a corrupt local object stops
//! the push instead of poisoning the cache) and upload it, a few at once → upload the indexes in plan order (this
//! publishes the packs) → update the catalogue → upload the build records. A push killed midway leaves only
//! unpublished packs, which a rerun overwrites with identical bytes under the same names.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use hstore_store::bundle::{self, ExportSpec, ManifestObject, PayloadEncoding, SecretKey};
use hstore_store::{BlobEncoding, Digest, ObjectFormat, Root, Store, copy_verified};

use crate::error::{Error, Result};
use crate::index::{FORMAT_VERSION, IndexEntry, PACK_MAGIC, PackIndex};
use crate::location::Cache;
use crate::pull::{CATALOGUE, Catalogue};
use crate::record::SignedRecord;

/// Target size of one pack (decoded bytes of its objects); a larger single object makes a pack of its own.
pub const PACK_BYTES: u64 = 64 << 20;
/// Packs built and uploaded at once (bounds memory to about this many packs).
const CONCURRENCY: usize = 3;

/// What to push.
#[derive(Clone, Debug, Default)]
pub struct PushSpec {
    /// Roots whose closures to upload (lockfile roots, build roots).
    pub roots: BTreeMap<String, Root>,
    /// Build records to upload: (build key hex, the store's record). Their objects must be in `roots`.
    pub records: Vec<(String, serde_json::Value)>,
}

/// What [`push_closure`] did.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    /// Objects of the closures (0 when the cache already held everything: a no-op push does not walk them).
    pub closure_objects: usize,
    /// Objects the cache lacked and that were uploaded.
    pub uploaded_objects: usize,
    /// Bytes of the packs uploaded.
    pub uploaded_bytes: u64,
    /// Packs uploaded.
    pub packs: usize,
    /// Build records uploaded.
    pub records: usize,
}

/// Uploads the closures of `spec` that the cache lacks, then its records signed by `signer`.
pub async fn push_closure(
    cache: &Cache,
    store: Arc<Store>,
    spec: PushSpec,
    signer: Option<SecretKey>,
) -> Result<PushReport> {
    let index = cache.load_index().await?;
    let exclude: HashSet<Digest> = index.objects.keys().copied().collect();
    let planner = Arc::clone(&store);
    let roots = spec.roots.clone();
    let (closure, manifest) = tokio::task::spawn_blocking(move || {
        let missing = bundle::plan(
            &planner,
            &ExportSpec {
                roots: roots.clone(),
                exclude,
                ..ExportSpec::default()
            },
        )?;
        // The closure's size only for the report, and only when there is work: a no-op push stops at the roots.
        let total = if missing.objects.is_empty() {
            0
        } else {
            bundle::plan(
                &planner,
                &ExportSpec {
                    roots,
                    ..ExportSpec::default()
                },
            )?
            .objects
            .len()
        };
        Ok::<_, Error>((total, missing))
    })
    .await
    .map_err(|error| task_error(&error))??;
    let mut report = PushReport {
        closure_objects: closure,
        ..PushReport::default()
    };
    let chunks = chunk(&manifest.objects);
    let uploaded: Vec<(String, Bytes, usize, u64)> = futures_util::stream::iter(chunks)
        .map(|objects| {
            let store = Arc::clone(&store);
            async move {
                let count = objects.len();
                let (pack, index) =
                    tokio::task::spawn_blocking(move || build_pack(&store, &objects))
                        .await
                        .map_err(|error| task_error(&error))??;
                let (index_bytes, id) = index.encode();
                let length = pack.len() as u64;
                let path = cache.path(&format!("{}/{id}.pack", crate::PACKS_DIR));
                cache.put(&path, Bytes::from(pack)).await?;
                Ok::<_, Error>((id, Bytes::from(index_bytes), count, length))
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    // Publish in plan order: a pack's directories may name objects of the packs before it.
    let mut new_ids = Vec::new();
    for (id, index_bytes, count, length) in uploaded {
        let path = cache.path(&format!("{}/{id}.idx", crate::PACKS_DIR));
        cache.put(&path, index_bytes).await?;
        report.packs += 1;
        report.uploaded_objects += count;
        report.uploaded_bytes += length;
        new_ids.push(id);
    }
    if !new_ids.is_empty() {
        update_catalogue(cache, &index.packs, &new_ids).await?;
    }
    for (key, record) in spec.records {
        if push_record(cache, &key, record, signer.as_ref()).await? {
            report.records += 1;
        }
    }
    Ok(report)
}

fn task_error(error: &tokio::task::JoinError) -> Error {
    Error::Task {
        message: error.to_string(),
    }
}

/// The catalogue lists every pack for readers that cannot list (plain HTTP). It is a read-modify-write: two
/// pushes racing may drop each other's ids from it (never add a wrong one), and each push re-adds what the listing
/// or the catalogue it read showed, so a later push repairs it.
async fn update_catalogue(cache: &Cache, known: &[String], new_ids: &[String]) -> Result<()> {
    let current = cache.catalogue().await?;
    let mut packs: Vec<String> = current
        .packs
        .into_iter()
        .chain(known.iter().cloned())
        .chain(new_ids.iter().cloned())
        .collect();
    packs.sort();
    packs.dedup();
    let catalogue = Catalogue {
        format: "hstore-cache-packs".into(),
        version: 1,
        packs,
    };
    let bytes = serde_json::to_vec(&catalogue).map_err(|source| {
        Error::Store(hstore_store::Error::Json {
            path: CATALOGUE.into(),
            source,
        })
    })?;
    cache.put(&cache.path(CATALOGUE), Bytes::from(bytes)).await
}

/// Uploads one record unless the cache already has it with the same content and a signature by `signer`.
/// Returns whether it uploaded.
async fn push_record(
    cache: &Cache,
    key: &str,
    record: serde_json::Value,
    signer: Option<&SecretKey>,
) -> Result<bool> {
    let path = cache.path(&format!("{}/{key}.json", crate::BUILDS_DIR));
    let mut signed = SignedRecord::new(key, record, signer);
    if let Some(existing) = cache.get_optional(&path).await?
        && let Ok(existing) = serde_json::from_slice::<SignedRecord>(&existing)
        && existing.record == signed.record
        && existing.key == signed.key
    {
        let ours: Vec<String> = signed.signatures.iter().map(|s| s.key.clone()).collect();
        if ours
            .iter()
            .all(|key| existing.signatures.iter().any(|s| &s.key == key))
        {
            return Ok(false);
        }
        // Same record, another signer: keep both signatures.
        let mut signatures = existing.signatures;
        signatures.retain(|s| !ours.contains(&s.key));
        signatures.append(&mut signed.signatures);
        signed.signatures = signatures;
    }
    let bytes = serde_json::to_vec_pretty(&signed).map_err(|source| {
        Error::Store(hstore_store::Error::Json {
            path: path.to_string().into(),
            source,
        })
    })?;
    cache.put(&path, Bytes::from(bytes)).await?;
    Ok(true)
}

/// Cuts the plan into packs of about [`PACK_BYTES`], keeping its order.
fn chunk(objects: &[ManifestObject]) -> Vec<Vec<ManifestObject>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0u64;
    for object in objects {
        if !current.is_empty() && bytes + object.size > PACK_BYTES {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += object.size;
        current.push(*object);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Builds one pack in memory from the store's stored objects, verifying each as it is copied.
fn build_pack(store: &Store, objects: &[ManifestObject]) -> Result<(Vec<u8>, PackIndex)> {
    let estimate: u64 = objects.iter().map(|object| object.size).sum();
    let mut pack = Vec::with_capacity(usize::try_from(estimate / 2).unwrap_or(0));
    pack.extend_from_slice(PACK_MAGIC);
    pack.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    for object in objects {
        let address = object.address;
        let stored = store
            .open_stored(&address)?
            .ok_or(hstore_store::Error::MissingObject { digest: address })?;
        let (format, path) = (stored.format, stored.path);
        let mut reader = BufReader::new(stored.reader);
        let offset = pack.len() as u64;
        let encoding = if let Some(blob_encoding) = BlobEncoding::of_format(format) {
            copy_verified(
                &mut reader,
                blob_encoding,
                &address,
                object.size,
                &mut pack,
                &path,
                Path::new("<pack>"),
            )?;
            match blob_encoding {
                BlobEncoding::Raw => PayloadEncoding::RawBlob,
                BlobEncoding::Zstd => PayloadEncoding::ZstdBlob,
            }
        } else {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(hstore_store::Error::io("read", &path))?;
            store.check_directory_bytes(&address, &bytes)?;
            pack.extend_from_slice(&bytes);
            debug_assert_eq!(format, ObjectFormat::Directory);
            PayloadEncoding::Directory
        };
        entries.push(IndexEntry {
            address,
            encoding,
            offset,
            length: pack.len() as u64 - offset,
            size: object.size,
        });
    }
    let index = PackIndex {
        pack_length: pack.len() as u64,
        pack_digest: Digest::of_bytes(&pack),
        entries,
    };
    Ok((pack, index))
}
