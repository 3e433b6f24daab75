//! Writing a cache: [`push_closure`] uploads what the cache lacks of some closures, in packs, then the build
//! records that name them.
//!
//! Order of work: load the cache's indexes → plan the closure minus what the cache holds, in one walk (a directory
//! the cache holds is a whole subtree, see the crate docs) → cut the plan into packs of about [`PACK_BYTES`] in
//! post-order → build each pack from the store's stored objects, its directory nodes first (each object re-verified
//! as it is copied: a corrupt local object stops the push instead of poisoning the cache), a couple ahead of the
//! uploads → upload the packs, a few at once → publish each pack's index in plan order as soon as the pack and all
//! before it are up → update the catalogue → upload the build records. A push killed midway leaves a prefix of the
//! plan published (each published pack's trees complete, as for a finished push) and at most a few unpublished
//! packs, which a rerun overwrites with identical bytes under the same names.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use hstore_store::bundle::{
    self, ExportSpec, ManifestObject, ObjectKind, PayloadEncoding, SecretKey,
};
use hstore_store::{BlobEncoding, Digest, ObjectFormat, Root, Store, copy_verified};

use crate::error::{Error, Result};
use crate::index::{FORMAT_VERSION, IndexEntry, PACK_MAGIC, PackIndex};
use crate::location::Cache;
use crate::phase;
use crate::pull::{CATALOGUE, Catalogue};
use crate::record::SignedRecord;

/// Target size of one pack (decoded bytes of its objects); a larger single object makes a pack of its own.
pub const PACK_BYTES: u64 = 64 << 20;
/// Pack uploads in flight at once.
const CONCURRENCY: usize = 3;
/// Packs built ahead of the uploads (each build is one blocking task reading and verifying the store's objects).
const BUILD_AHEAD: usize = 2;

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
    let started = Instant::now();
    let exclude: HashSet<Digest> = index.objects.keys().copied().collect();
    let planner = Arc::clone(&store);
    let roots = spec.roots.clone();
    // One walk, of the closure minus what the cache holds: a no-op push stops at the roots.
    let manifest = tokio::task::spawn_blocking(move || {
        bundle::plan(
            &planner,
            &ExportSpec {
                roots,
                exclude,
                ..ExportSpec::default()
            },
        )
    })
    .await
    .map_err(|error| task_error(&error))??;
    phase(
        "plan",
        started,
        format_args!("{} objects missing from the cache", manifest.objects.len()),
    );
    let mut report = PushReport::default();
    let started = Instant::now();
    let new_ids = upload_packs(cache, &store, chunk(&manifest.objects), &mut report).await?;
    phase(
        "packs",
        started,
        format_args!(
            "{} packs, {} objects, {} bytes built, uploaded and published",
            report.packs, report.uploaded_objects, report.uploaded_bytes
        ),
    );
    let started = Instant::now();
    if !new_ids.is_empty() {
        update_catalogue(cache, &index.packs, &new_ids).await?;
    }
    phase("catalogue", started, format_args!("updated"));
    let started = Instant::now();
    for (key, record) in spec.records {
        if push_record(cache, &key, record, signer.as_ref()).await? {
            report.records += 1;
        }
    }
    phase(
        "records",
        started,
        format_args!("{} uploaded", report.records),
    );
    Ok(report)
}

/// One pack, built and uploaded, waiting to be published by its index.
struct Uploaded {
    id: String,
    index: Bytes,
    objects: usize,
    bytes: u64,
}

/// Builds the packs of `chunks` and uploads them, a few at once, while publishing their indexes in plan order as
/// soon as each pack and every pack before it is up: a pack's directories may name objects of the packs before it,
/// so index `k` goes up only after index `k - 1`. Building runs [`BUILD_AHEAD`] packs ahead of the uploads, so the
/// disk and the network are busy at once; at most `BUILD_AHEAD + CONCURRENCY` packs are in memory. Returns the ids
/// published, in order.
async fn upload_packs(
    cache: &Cache,
    store: &Arc<Store>,
    chunks: Vec<Vec<ManifestObject>>,
    report: &mut PushReport,
) -> Result<Vec<String>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Uploaded>(CONCURRENCY);
    let (built_seconds, put_seconds) = (Mutex::new(0.0f64), Mutex::new(0.0f64));
    let upload = async {
        let mut uploads = futures_util::stream::iter(chunks)
            .map(|objects| {
                let store = Arc::clone(store);
                let built_seconds = &built_seconds;
                async move {
                    let building = Instant::now();
                    let count = objects.len();
                    let built = tokio::task::spawn_blocking(move || build_pack(&store, &objects))
                        .await
                        .map_err(|error| task_error(&error))??;
                    *lock(built_seconds) += building.elapsed().as_secs_f64();
                    Ok::<_, Error>((built, count))
                }
            })
            .buffered(BUILD_AHEAD)
            .map_ok(|((pack, index), objects)| {
                let put_seconds = &put_seconds;
                async move {
                    let putting = Instant::now();
                    let (index_bytes, id) = index.encode();
                    let bytes = pack.len() as u64;
                    let path = cache.path(&format!("{}/{id}.pack", crate::PACKS_DIR));
                    cache.put(&path, Bytes::from(pack)).await?;
                    *lock(put_seconds) += putting.elapsed().as_secs_f64();
                    Ok::<_, Error>(Uploaded {
                        id,
                        index: Bytes::from(index_bytes),
                        objects,
                        bytes,
                    })
                }
            })
            .try_buffered(CONCURRENCY);
        while let Some(uploaded) = uploads.try_next().await? {
            if sender.send(uploaded).await.is_err() {
                break; // The publisher failed; its error is the one reported.
            }
        }
        drop(sender);
        Ok::<_, Error>(())
    };
    let publish = async {
        let mut ids = Vec::new();
        let mut publishing = 0.0f64;
        while let Some(uploaded) = receiver.recv().await {
            let started = Instant::now();
            let path = cache.path(&format!("{}/{}.idx", crate::PACKS_DIR, uploaded.id));
            cache.put(&path, uploaded.index.clone()).await?;
            cache.remember_index(&uploaded.id, &uploaded.index);
            publishing += started.elapsed().as_secs_f64();
            report.packs += 1;
            report.uploaded_objects += uploaded.objects;
            report.uploaded_bytes += uploaded.bytes;
            ids.push(uploaded.id);
        }
        Ok::<_, Error>((ids, publishing))
    };
    let ((), (ids, publishing)) = tokio::try_join!(upload, publish)?;
    tracing::debug!(
        "summed over packs: build {:.3} s, pack upload {:.3} s, index upload {publishing:.3} s",
        *lock(&built_seconds),
        *lock(&put_seconds)
    );
    Ok(ids)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Builds one pack in memory from the store's stored objects, verifying each as it is copied: its directory nodes
/// first, then its blobs (see [`crate::index`]).
fn build_pack(store: &Store, objects: &[ManifestObject]) -> Result<(Vec<u8>, PackIndex)> {
    let estimate: u64 = objects.iter().map(|object| object.size).sum();
    let mut pack = Vec::with_capacity(usize::try_from(estimate / 2).unwrap_or(0));
    pack.extend_from_slice(PACK_MAGIC);
    pack.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    // Directory nodes first, then blobs, each in plan order: a pull reads a pack's directories in one request.
    let (directories, blobs): (Vec<&ManifestObject>, Vec<&ManifestObject>) = objects
        .iter()
        .partition(|object| object.kind == ObjectKind::Dir);
    for object in directories.into_iter().chain(blobs) {
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
