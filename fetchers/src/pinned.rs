//! The one pinned-download skeleton every kind that downloads a file by its upstream sha256 goes through (`url`
//! sources, wheels, xmake archives, registry crates): cargo's download/finish split, written once.
//!
//! [`ensure`] does, in this order, and nothing else:
//! 1. **Resume** from what the store already holds: the locked address when its closure is complete (a warm fetch, or
//!    an imported store without download records), else — at lock time only — the kind's download record
//!    (`<namespace>/<key>`) when its object is complete. Neither touches the network.
//! 2. Refuse under `--offline`, naming what is missing.
//! 3. **Download** the file (mirrors applied) into a store temp file, the sha256 checked on the streamed bytes by
//!    the downloader before anything is stored.
//! 4. **Store** it the kind's way (a blob, an unpacked tree, a vendored crate) on the blocking pool.
//! 5. Check the result against the locked address ([`Error::AddressDrift`]), write the download record, report.
//!
//! The kinds keep only what differs: the record key, the URL (a crate's is found in its index only when needed)
//! and how the verified file becomes a store object.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use hstore_store::{Digest, RecordKind, Store};

use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::Artifact;
use crate::record::DownloadRecord;

/// One pinned download, as a kind describes it to [`ensure`].
pub(crate) struct Pinned<'a> {
    /// The artifact's lockfile id (for [`Error::AddressDrift`]).
    pub id: String,
    /// What it is, for [`Error::Offline`] (``crate `serde@1.0.0` ``).
    pub what: String,
    /// What it is, for the downloader's messages (`serde@1.0.0`).
    pub label: String,
    /// The upstream sha256 the bytes must have (lowercase hex).
    pub sha256: &'a str,
    /// The kind's download records.
    pub records: &'a RecordKind,
    /// The record's key (the sha256, plus how it was stored when that varies).
    pub record_key: String,
    /// The reporter's kind word and label for a fresh download (`("url", url)`).
    pub report: (&'static str, &'a str),
}

/// Where a pinned download is, once [`ensure`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The store object's address.
    pub address: Digest,
    /// Its size (blob bytes, or total file bytes of a tree).
    pub size: u64,
    /// The canonical URL, when it came from a download record or a download (`None`: the locked artifact's).
    pub url: Option<String>,
}

/// Makes the store hold `pinned` (see the module docs for the steps). `url` is awaited only when the file must be
/// downloaded; `store` turns the verified temp file (given with the canonical URL) into a store object.
pub(crate) async fn ensure<U, S>(
    fetcher: &Fetcher,
    pinned: &Pinned<'_>,
    locked: Option<&Artifact>,
    url: U,
    store: S,
) -> Result<Stored>
where
    U: Future<Output = Result<String>>,
    S: FnOnce(&Store, &Path, String) -> Result<(Digest, u64)> + Send + 'static,
{
    let objects = fetcher.store();
    if let Some(locked) = locked
        && objects.closure_complete(&locked.address())?
    {
        return Ok(Stored {
            address: locked.address(),
            size: locked.size(),
            url: None,
        });
    }
    if locked.is_none()
        && let Some(record) =
            objects.get_meta::<DownloadRecord>(pinned.records.namespace, &pinned.record_key)?
        && objects.closure_complete(&record.address)?
    {
        return Ok(Stored {
            address: record.address,
            size: record.size,
            url: Some(record.url),
        });
    }
    if fetcher.offline() {
        return Err(Error::Offline {
            what: pinned.what.clone(),
        });
    }
    let url = url.await?;
    let fetch_url = fetcher.mirrors().rewrite(&url);
    let temp = objects.temp_file()?;
    fetcher
        .downloader()
        .download(&fetch_url, temp.path(), Some(pinned.sha256), &pinned.label)
        .await?;
    let handle = Arc::clone(objects);
    let origin = url.clone();
    let (address, size) = crate::error::blocking(move || -> Result<(Digest, u64)> {
        let result = store(&handle, temp.path(), origin);
        drop(temp);
        result
    })
    .await?;
    crate::error::check_drift(|| pinned.id.clone(), locked, address)?;
    crate::record::put(
        objects,
        pinned.records,
        &pinned.record_key,
        &DownloadRecord {
            url: url.clone(),
            address,
            size,
        },
    )?;
    let (kind, label) = pinned.report;
    fetcher.reporter().on_artifact(kind, label);
    Ok(Stored {
        address,
        size,
        url: Some(url),
    })
}

/// [`ensure`] for a file stored as it was downloaded (a blob) from a URL known up front: wheels, xmake archives,
/// `.deb` files.
pub(crate) async fn ensure_blob(
    fetcher: &Fetcher,
    pinned: &Pinned<'_>,
    locked: Option<&Artifact>,
    url: String,
) -> Result<Stored> {
    ensure(
        fetcher,
        pinned,
        locked,
        async { Ok(url) },
        |store, file, _url| Ok(store.add_blob_file(file)?),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::FetcherOptions;
    use crate::lockfile::PathArtifact;

    const SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn offline_fetcher(dir: &Path) -> Fetcher {
        let store = Arc::new(Store::open(dir.join("store")).unwrap());
        let options = FetcherOptions {
            cache_dir: dir.join("cache"),
            mirrors: crate::mirrors::Mirrors::default(),
            offline: true,
            download: crate::http::DownloadOptions::default(),
            uv: "uv".into(),
            rustup_home: None,
            max_unpacked_size: crate::archive::MaxUnpackedSize::default(),
        };
        Fetcher::new(store, options, Arc::new(crate::NoReporter)).unwrap()
    }

    fn pinned(records: &RecordKind) -> Pinned<'_> {
        Pinned {
            id: "url+http://127.0.0.1/f".into(),
            what: "`http://127.0.0.1/f`".into(),
            label: "http://127.0.0.1/f".into(),
            sha256: SHA256,
            records,
            record_key: SHA256.into(),
            report: ("url", "http://127.0.0.1/f"),
        }
    }

    fn never_stores(_: &Store, _: &Path, _: String) -> Result<(Digest, u64)> {
        panic!("nothing may be downloaded or stored")
    }

    #[tokio::test]
    async fn resumes_from_the_locked_address_or_the_download_record_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let fetcher = offline_fetcher(dir.path());
        let (address, _) = fetcher
            .store()
            .add_blob_reader(&mut &b"file"[..], Some(4), None, Path::new("file"))
            .unwrap();
        let records = crate::record::download_kind("example-sha256");
        let pinned = pinned(&records);
        let no_url = async { panic!("the URL is only needed to download") };

        // Lock time: the record names a stored object.
        crate::record::put(
            fetcher.store(),
            &records,
            SHA256,
            &DownloadRecord {
                url: "http://127.0.0.1/f".into(),
                address,
                size: 4,
            },
        )
        .unwrap();
        let stored = ensure(&fetcher, &pinned, None, no_url, never_stores)
            .await
            .unwrap();
        assert_eq!(
            stored,
            Stored {
                address,
                size: 4,
                url: Some("http://127.0.0.1/f".into())
            }
        );

        // Fetch time: the locked address is complete (the record is not consulted).
        let locked = Artifact::Path(PathArtifact {
            id: "path+x".into(),
            path: "x".into(),
            address,
            size: 4,
        });
        let no_url = async { panic!("the URL is only needed to download") };
        let stored = ensure(&fetcher, &pinned, Some(&locked), no_url, never_stores)
            .await
            .unwrap();
        assert_eq!(stored.url, None);
        assert_eq!(stored.address, address);
    }

    #[tokio::test]
    async fn offline_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let fetcher = offline_fetcher(dir.path());
        let records = crate::record::download_kind("example-sha256");
        let no_url = async { panic!("the URL is only needed to download") };
        let error = ensure(&fetcher, &pinned(&records), None, no_url, never_stores)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Offline { what } if what == "`http://127.0.0.1/f`"),
            "{error}"
        );
    }
}
