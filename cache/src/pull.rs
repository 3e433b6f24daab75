//! Reading a cache: loading its pack indexes ([`Cache::load_index`]) and bringing closures into a store
//! ([`pull_objects`]).
//!
//! A pull walks the wanted trees breadth-first through the cache's indexes: the first time the walk needs a
//! directory node of a pack, it reads the pack's whole directory section (directory nodes come first in a pack; one
//! request of up to [`SECTION_BYTES`]; all packs' sections at once when together they are no larger), so later
//! levels in that pack cost no request; other directory nodes are read
//! in a few ranged requests per pack (neighbouring objects coalesced into one request of up to [`SPAN_BYTES`]).
//! Each node is verified and decoded when the walk reaches it, and its missing children become the next level
//! (nodes of a section the walk never reaches are dropped, verified or not). Then all blobs are read the same way and
//! streamed into the store, each verified by address as it arrives. Directory nodes are written last, children
//! first, and only when their whole subtree is present, all published by one batch commit. So a pull killed at any
//! point (SIGKILL, a dead node, a lost network) leaves only complete, verified objects, and a rerun fetches only
//! what is still missing. An object that fails verification is reported by address, not stored, and left missing,
//! so the caller can try the next cache or upstream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use hstore_store::bundle::PayloadEncoding;
use hstore_store::{BlobEncoding, Digest, Directory, Node, Store};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::{CacheIndex, Location, PackIndex};
use crate::location::Cache;
use crate::phase;

/// Largest coalesced read; bigger objects are streamed alone to a temp file (memory stays bounded).
pub const SPAN_BYTES: u64 = 16 << 20;
/// Gap between two wanted objects of a pack that is still read through rather than split into two requests.
const GAP_BYTES: u64 = 256 << 10;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// Largest directory section of a pack read whole (see [`CacheIndex::directory_section`]); a larger one is read
/// object by object like blobs.
const SECTION_BYTES: u64 = 4 << 20;
/// The pack catalogue, for servers that cannot list (plain HTTP).
pub(crate) const CATALOGUE: &str = "packs.json";

/// The catalogue of published packs: `{"format": "hstore-cache-packs", "version": 1, "packs": [ids…]}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Catalogue {
    pub format: String,
    pub version: u32,
    pub packs: Vec<String>,
}

/// What [`pull_objects`] did.
#[derive(Debug, Default)]
pub struct PullReport {
    /// Objects of the wanted closures that were missing locally and found in the cache.
    pub fetched: usize,
    /// Their payload bytes.
    pub fetched_bytes: u64,
    /// Requests made for objects (index loading not counted).
    pub requests: usize,
    /// Bytes those requests read (payloads plus the gaps read through).
    pub downloaded_bytes: u64,
    /// Wanted objects the cache does not hold (or that could not be completed): still missing locally.
    pub missing: Vec<Digest>,
    /// Objects that failed verification (not stored).
    pub damaged: Vec<Error>,
}

fn is_not_found(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. })
}

impl Cache {
    /// The ids of every published pack: a listing of `packs/` on S3 and file caches; the catalogue on plain HTTP,
    /// where listing is not part of the protocol (WebDAV's PROPFIND is an extension most static servers lack, and a
    /// server that answers 404 to it would look like an empty cache).
    pub async fn pack_ids(&self) -> Result<Vec<String>> {
        if matches!(self.url, crate::CacheUrl::Http { .. }) {
            return Ok(self.catalogue().await?.packs);
        }
        self.list_stems(crate::PACKS_DIR, ".idx").await
    }

    /// The names under `dir` that end in `suffix`, without it, sorted: one listing of the backend (which must be
    /// able to list; plain HTTP cannot).
    pub(crate) async fn list_stems(&self, dir: &str, suffix: &str) -> Result<Vec<String>> {
        let prefix = self.path(dir);
        let objects: Vec<_> = self
            .backend
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|error| self.backend_error("list", &prefix, &error))?;
        let mut stems: Vec<String> = objects
            .iter()
            .filter_map(|meta| {
                meta.location
                    .filename()?
                    .strip_suffix(suffix)
                    .map(str::to_owned)
            })
            .collect();
        stems.sort();
        Ok(stems)
    }

    /// The pack catalogue (empty if absent).
    pub(crate) async fn catalogue(&self) -> Result<Catalogue> {
        let path = self.path(CATALOGUE);
        match self.backend.get(&path).await {
            Ok(result) => {
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|error| self.backend_error("get", &path, &error))?;
                serde_json::from_slice(&bytes).map_err(|error| Error::DamagedIndex {
                    url: self.url.to_string(),
                    id: CATALOGUE.into(),
                    problem: error.to_string(),
                })
            }
            Err(error) if is_not_found(&error) => Ok(Catalogue::default()),
            Err(error) => Err(self.backend_error("get", &path, &error)),
        }
    }

    /// Reads (or takes from the local index cache) every published pack index. A damaged index is an error: it
    /// names the pack, and nothing of the cache is used.
    pub async fn load_index(&self) -> Result<CacheIndex> {
        let started = Instant::now();
        let ids = self.pack_ids().await?;
        phase("list", started, format_args!("{} packs", ids.len()));
        let loaded: Vec<(String, PackIndex)> = futures_util::stream::iter(ids)
            .map(|id| async move {
                let index = self.pack_index(&id).await?;
                Ok::<_, Error>((id, index))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut index = CacheIndex::default();
        for (id, pack) in &loaded {
            index.add(id, pack);
        }
        phase(
            "index",
            started,
            format_args!(
                "{} packs, {} objects",
                index.packs.len(),
                index.objects.len()
            ),
        );
        Ok(index)
    }

    async fn pack_index(&self, id: &str) -> Result<PackIndex> {
        let damaged = |problem: String| Error::DamagedIndex {
            url: self.url.to_string(),
            id: id.to_owned(),
            problem,
        };
        let local = self
            .local_indexes
            .as_ref()
            .map(|dir| dir.join(format!("{id}.idx")));
        if let Some(local) = &local
            && let Ok(bytes) = std::fs::read(local)
            && let Ok(index) = PackIndex::decode(&bytes, id)
        {
            return Ok(index);
        }
        let path = self.path(&format!("{}/{id}.idx", crate::PACKS_DIR));
        let bytes = self
            .backend
            .get(&path)
            .await
            .map_err(|error| self.backend_error("get", &path, &error))?
            .bytes()
            .await
            .map_err(|error| self.backend_error("get", &path, &error))?;
        let index = PackIndex::decode(&bytes, id).map_err(damaged)?;
        self.remember_index(id, &bytes);
        Ok(index)
    }

    /// Keeps index `id` in the local index cache, so later runs on this machine (a pull, the next push) read it
    /// without a request. Best effort: the index cache only saves requests, and it is content-addressed.
    pub(crate) fn remember_index(&self, id: &str, bytes: &[u8]) {
        if let Some(dir) = &self.local_indexes {
            let _ = save_atomic(&dir.join(format!("{id}.idx")), bytes);
        }
    }

    /// Reads the object at `path` whole, `None` if absent.
    pub(crate) async fn get_optional(&self, path: &ObjectPath) -> Result<Option<Bytes>> {
        match self.backend.get(path).await {
            Ok(result) => {
                Ok(Some(result.bytes().await.map_err(|error| {
                    self.backend_error("get", path, &error)
                })?))
            }
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(self.backend_error("get", path, &error)),
        }
    }

    /// Reads the file `relative` to the cache's versioned directory (`packs/….idx`, `builds/….json`), `None` if
    /// absent. Low level, for tooling and tests: nothing is verified.
    pub async fn get_raw(&self, relative: &str) -> Result<Option<Bytes>> {
        self.get_optional(&self.path(relative)).await
    }

    /// Writes the file `relative` to the cache's versioned directory, unchecked. Low level, for tooling and tests
    /// (a test damages a pack with it); pushes never call it.
    pub async fn put_raw(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.put(&self.path(relative), Bytes::from(bytes)).await
    }

    /// Writes `bytes` at `path`.
    pub(crate) async fn put(&self, path: &ObjectPath, bytes: Bytes) -> Result<()> {
        self.backend
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|error| self.backend_error("put", path, &error))?;
        Ok(())
    }
}

fn save_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// One read request: a span of one pack holding one or more wanted objects.
struct Span {
    pack: String,
    start: u64,
    end: u64,
    objects: Vec<Location>,
}

/// Groups wanted objects into spans: per pack, in offset order, neighbours coalesced up to [`SPAN_BYTES`].
fn spans(locations: Vec<Location>) -> Vec<Span> {
    let mut by_pack: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    for location in locations {
        by_pack
            .entry(location.pack.clone())
            .or_default()
            .push(location);
    }
    let mut spans = Vec::new();
    for (pack, mut locations) in by_pack {
        locations.sort_by_key(|location| location.entry.offset);
        let mut current: Option<Span> = None;
        for location in locations {
            let start = location.entry.offset;
            let end = start + location.entry.length;
            if let Some(span) = &mut current
                && start <= span.end + GAP_BYTES
                && end - span.start <= SPAN_BYTES
            {
                span.end = span.end.max(end);
                span.objects.push(location);
                continue;
            }
            spans.extend(current.take());
            current = Some(Span {
                pack: pack.clone(),
                start,
                end,
                objects: vec![location],
            });
        }
        spans.extend(current);
    }
    spans
}

/// The outcome of verifying one object.
enum Verified {
    Directory(Digest, Vec<u8>, Directory),
    Blob(Digest, u64),
    Damaged(Error),
}

/// Brings every object below `wanted` that the store lacks and the cache holds into `store`.
pub async fn pull_objects(
    cache: &Cache,
    index: &CacheIndex,
    store: Arc<Store>,
    wanted: &[Digest],
) -> Result<PullReport> {
    let mut report = PullReport::default();
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut frontier: Vec<Digest> = Vec::new();
    for address in wanted {
        if seen.insert(*address) && store.object_format(address)?.is_none() {
            frontier.push(*address);
        }
    }
    let started = Instant::now();
    let mut levels = 0;
    let mut directories: HashMap<Digest, (Vec<u8>, Directory)> = HashMap::new();
    let mut blob_locations: Vec<Location> = Vec::new();
    let mut missing: HashSet<Digest> = HashSet::new();
    // Directory nodes read with their pack's whole directory section, not yet reached by the walk.
    let mut prefetched: HashMap<Digest, Verified> = HashMap::new();
    let mut sections_read: HashSet<String> = HashSet::new();
    // Breadth-first over directory nodes: at most one round of requests per tree level, and usually only the first
    // levels make any, because each pack's directory section is read whole the first time the walk enters it.
    while !frontier.is_empty() {
        levels += 1;
        let mut level: Vec<Location> = Vec::new();
        for address in frontier.drain(..) {
            match index
                .objects
                .get(&address)
                .and_then(|places| places.first())
            {
                None => {
                    missing.insert(address);
                }
                Some(location) if location.entry.encoding == PayloadEncoding::Directory => {
                    level.push(location.clone());
                }
                Some(location) => blob_locations.push(location.clone()),
            }
        }
        // The packs whose directory section to read now: those this level enters; or, on the first level, every
        // pack when all their sections together are small (one round of requests instead of one per level).
        let all_sections: u64 = index
            .directories
            .values()
            .map(|(range, _)| range.end - range.start)
            .sum();
        let entering: Vec<String> = if levels == 1 && all_sections <= SECTION_BYTES {
            index.directories.keys().cloned().collect()
        } else {
            level.iter().map(|location| location.pack.clone()).collect()
        };
        let sections: Vec<Span> = entering
            .into_iter()
            .filter_map(|pack| {
                if !sections_read.insert(pack.clone()) {
                    return None;
                }
                let (range, entries) = index.directory_section(&pack)?;
                (range.end - range.start <= SECTION_BYTES).then(|| Span {
                    pack: pack.clone(),
                    start: range.start,
                    end: range.end,
                    objects: entries
                        .iter()
                        .map(|entry| Location {
                            pack: pack.clone(),
                            entry: *entry,
                        })
                        .collect(),
                })
            })
            .collect();
        for (address, outcome) in fetch_spans(cache, &store, sections, &mut report).await? {
            prefetched.insert(address, outcome);
        }
        let mut outcomes = Vec::with_capacity(level.len());
        let mut unread = Vec::new();
        for location in level {
            match prefetched.remove(&location.entry.address) {
                Some(outcome) => outcomes.push(outcome),
                None => unread.push(location),
            }
        }
        outcomes.extend(fetch(cache, &store, unread, &mut report).await?);
        for outcome in outcomes {
            match outcome {
                Verified::Directory(address, bytes, directory) => {
                    report.fetched_bytes += bytes.len() as u64;
                    for (_, node) in directory.entries() {
                        if let Node::File { digest, .. } | Node::Directory { digest, .. } = node
                            && seen.insert(*digest)
                            && store.object_format(digest)?.is_none()
                        {
                            frontier.push(*digest);
                        }
                    }
                    directories.insert(address, (bytes, directory));
                }
                Verified::Blob(..) => {}
                Verified::Damaged(error) => report.damaged.push(error),
            }
        }
    }
    drop(prefetched);
    phase(
        "directories",
        started,
        format_args!(
            "{} directory nodes in {levels} levels, {} requests, {} bytes read so far",
            directories.len(),
            report.requests,
            report.downloaded_bytes
        ),
    );
    let started = Instant::now();
    let mut fetched_blobs: HashSet<Digest> = HashSet::new();
    for outcome in fetch(cache, &store, blob_locations, &mut report).await? {
        match outcome {
            Verified::Blob(address, length) => {
                report.fetched += 1;
                report.fetched_bytes += length;
                fetched_blobs.insert(address);
            }
            Verified::Directory(..) => {}
            Verified::Damaged(error) => report.damaged.push(error),
        }
    }
    phase(
        "blobs",
        started,
        format_args!(
            "{} blobs, {} requests, {} bytes read in all",
            fetched_blobs.len(),
            report.requests,
            report.downloaded_bytes
        ),
    );
    let started = Instant::now();
    // Directory nodes, children first, each only when its whole subtree is present.
    let store_for_dirs = Arc::clone(&store);
    let roots: Vec<Digest> = wanted.to_vec();
    let (written, incomplete) = tokio::task::spawn_blocking(move || {
        write_directories(&store_for_dirs, &roots, &directories, &fetched_blobs)
    })
    .await
    .map_err(|error| Error::Task {
        message: error.to_string(),
    })??;
    report.fetched += written;
    missing.extend(incomplete);
    store.commit_pending()?;
    phase(
        "write-directories",
        started,
        format_args!("{written} directory nodes written and committed"),
    );
    let mut missing: Vec<Digest> = missing.into_iter().collect();
    missing.sort();
    report.missing = missing;
    Ok(report)
}

/// Writes fetched directory nodes in post-order, skipping (and returning) those whose subtree is incomplete.
fn write_directories(
    store: &Store,
    roots: &[Digest],
    directories: &HashMap<Digest, (Vec<u8>, Directory)>,
    blobs: &HashSet<Digest>,
) -> Result<(usize, Vec<Digest>)> {
    // complete[d]: whether d (fetched now) is written; absent = not decided yet.
    let mut complete: HashMap<Digest, bool> = HashMap::new();
    let mut written = 0;
    let mut incomplete = Vec::new();
    for root in roots {
        if !directories.contains_key(root) {
            continue;
        }
        let mut stack: Vec<(Digest, bool)> = vec![(*root, false)];
        while let Some((address, expanded)) = stack.pop() {
            if complete.contains_key(&address) {
                continue;
            }
            let Some((bytes, directory)) = directories.get(&address) else {
                continue;
            };
            let children: Vec<(Digest, bool)> = directory
                .entries()
                .filter_map(|(_, node)| match node {
                    Node::File { digest, .. } => Some((*digest, false)),
                    Node::Directory { digest, .. } => Some((*digest, true)),
                    Node::Symlink { .. } => None,
                })
                .collect();
            if !expanded {
                stack.push((address, true));
                for (child, is_dir) in &children {
                    if *is_dir && directories.contains_key(child) && !complete.contains_key(child) {
                        stack.push((*child, false));
                    }
                }
                continue;
            }
            let mut ok = true;
            for (child, is_dir) in &children {
                let present = if *is_dir && directories.contains_key(child) {
                    complete.get(child).copied().unwrap_or(false)
                } else if !*is_dir && blobs.contains(child) {
                    true
                } else {
                    store.object_format(child)?.is_some()
                };
                ok &= present;
            }
            if ok {
                store.add_directory_bytes(&address, bytes)?;
                written += 1;
            } else {
                incomplete.push(address);
            }
            complete.insert(address, ok);
        }
    }
    Ok((written, incomplete))
}

/// Reads `locations` in spans, verifies each object, and stores blobs (directories are returned, not stored).
async fn fetch(
    cache: &Cache,
    store: &Arc<Store>,
    locations: Vec<Location>,
    report: &mut PullReport,
) -> Result<Vec<Verified>> {
    Ok(fetch_spans(cache, store, spans(locations), report)
        .await?
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect())
}

/// Reads `spans`, a few at once, verifies each object, and stores blobs; returns each object's outcome by address.
async fn fetch_spans(
    cache: &Cache,
    store: &Arc<Store>,
    spans: Vec<Span>,
    report: &mut PullReport,
) -> Result<Vec<(Digest, Verified)>> {
    report.requests += spans.len();
    report.downloaded_bytes += spans.iter().map(|span| span.end - span.start).sum::<u64>();
    let results: Vec<Vec<(Digest, Verified)>> = futures_util::stream::iter(spans)
        .map(|span| {
            let store = Arc::clone(store);
            async move { fetch_span(cache, store, span).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(results.into_iter().flatten().collect())
}

async fn fetch_span(
    cache: &Cache,
    store: Arc<Store>,
    span: Span,
) -> Result<Vec<(Digest, Verified)>> {
    let path = cache.path(&format!("{}/{}.pack", crate::PACKS_DIR, span.pack));
    let options = GetOptions {
        range: Some(GetRange::Bounded(span.start..span.end)),
        ..GetOptions::default()
    };
    let result = cache
        .backend
        .get_opts(&path, options)
        .await
        .map_err(|error| cache.backend_error("get", &path, &error))?;
    let url = cache.url.to_string();
    if span.objects.len() == 1 && span.end - span.start > SPAN_BYTES {
        // One large object: stream it to a temp file, then verify it into the store from there.
        let mut temp = store.temp_file()?;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| cache.backend_error("get", &path, &error))?;
            temp.write_all(&chunk).map_err(|source| Error::Local {
                action: "write",
                path: temp.path().to_path_buf(),
                source,
            })?;
        }
        let location = span.objects[0].clone();
        return tokio::task::spawn_blocking(move || {
            let file = temp.as_file_mut();
            file.rewind().map_err(|source| Error::Local {
                action: "rewind",
                path: temp.path().to_path_buf(),
                source,
            })?;
            let mut reader = BufReader::new(temp.as_file());
            Ok(vec![(
                location.entry.address,
                verify(&store, &url, &location, &mut reader)?,
            )])
        })
        .await
        .map_err(|error| Error::Task {
            message: error.to_string(),
        })?;
    }
    let bytes = result
        .bytes()
        .await
        .map_err(|error| cache.backend_error("get", &path, &error))?;
    tokio::task::spawn_blocking(move || {
        let mut outcomes = Vec::with_capacity(span.objects.len());
        for location in &span.objects {
            let start = usize::try_from(location.entry.offset - span.start).unwrap_or(usize::MAX);
            let end =
                start.saturating_add(usize::try_from(location.entry.length).unwrap_or(usize::MAX));
            let payload = bytes.get(start..end).unwrap_or(&[]);
            outcomes.push((
                location.entry.address,
                verify(&store, &url, location, &mut &payload[..])?,
            ));
        }
        Ok(outcomes)
    })
    .await
    .map_err(|error| Error::Task {
        message: error.to_string(),
    })?
}

/// Verifies one payload; stores it if it is a blob. A verification failure is an outcome; a store failure is an
/// error.
fn verify(
    store: &Store,
    url: &str,
    location: &Location,
    payload: &mut dyn Read,
) -> Result<Verified> {
    let entry = &location.entry;
    let source = format!("{url} pack {} at {}", location.pack, entry.offset);
    let damaged = |error: hstore_store::Error| {
        Verified::Damaged(Error::DamagedObject {
            url: url.to_owned(),
            address: entry.address,
            pack: location.pack.clone(),
            source: Box::new(error),
        })
    };
    let encoding = match entry.encoding {
        PayloadEncoding::RawBlob => BlobEncoding::Raw,
        PayloadEncoding::ZstdBlob => BlobEncoding::Zstd,
        PayloadEncoding::Directory => {
            let mut bytes = Vec::new();
            if let Err(error) = payload.read_to_end(&mut bytes) {
                return Ok(damaged(hstore_store::Error::io("read", &source)(error)));
            }
            return Ok(match store.check_directory_bytes(&entry.address, &bytes) {
                Ok(directory) => Verified::Directory(entry.address, bytes, directory),
                Err(error) => damaged(error),
            });
        }
    };
    match store.add_encoded_blob(
        payload,
        encoding,
        entry.address,
        entry.size,
        Path::new(&source),
    ) {
        Ok(_) => Ok(Verified::Blob(entry.address, entry.length)),
        Err(
            error @ (hstore_store::Error::DigestMismatch { .. }
            | hstore_store::Error::SizeMismatch { .. }
            | hstore_store::Error::InvalidEncoding { .. }),
        ) => Ok(damaged(error)),
        Err(error) => Err(Error::Store(error)),
    }
}
