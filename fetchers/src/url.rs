//! `url` sources: a plain download pinned by the sha256 the recipe gives, stored as a blob or, with `unpack = true`,
//! as the tree of the archive (`.tar.gz`, `.tgz`, `.tar.xz`, `.tar.zst`, `.tar`, `.zip`, by the URL's file name).
//!
//! Invariants: the sha256 is checked on the streamed bytes before anything is stored; unpacking goes through
//! [`crate::archive`], which refuses hostile entries naming them. Store metadata `url-sha256/<sha256>` (blob) or
//! `url-sha256/<sha256>-unpack-<strip>` (tree) records the address, so a warm lock or fetch does no work.

use std::sync::Arc;

use hstore_store::Digest;

use crate::archive::{self, ArchiveFormat, UnpackOptions};
use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::Artifact;
use crate::record::DownloadRecord as CrateRecord;
use hstore_model::Sha256;

/// Store metadata namespace.
pub const META_NAMESPACE: &str = "url-sha256";

/// The `url` download records' kind, listed by the registry of record namespaces ([`crate::kinds::records`]).
pub const RECORDS: hstore_store::RecordKind = crate::record::download_kind(META_NAMESPACE);

/// What a `url` source asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    /// Canonical URL.
    pub url: String,
    /// Pinned sha256.
    pub sha256: Sha256,
    /// Store as a tree.
    pub unpack: bool,
    /// Components dropped when unpacking.
    pub strip_components: usize,
}

impl UrlSpec {
    /// The lockfile id.
    pub fn id(&self) -> String {
        if self.unpack {
            format!("url+{}#unpack-{}", self.url, self.strip_components)
        } else {
            format!("url+{}", self.url)
        }
    }

    fn meta_key(&self) -> String {
        if self.unpack {
            format!("{}-unpack-{}", self.sha256, self.strip_components)
        } else {
            self.sha256.to_string()
        }
    }
}

/// Resolves (lock) or restores (fetch) a URL artifact.
pub async fn ensure(
    fetcher: &Fetcher,
    spec: &UrlSpec,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    let store = fetcher.store();
    let artifact = |address: Digest, size: u64| Artifact::Url {
        id: spec.id(),
        url: spec.url.clone(),
        sha256: spec.sha256.clone(),
        unpack: spec.unpack,
        strip_components: spec.strip_components,
        address,
        size,
    };
    if let Some(locked) = locked
        && store.closure_complete(&locked.address())?
    {
        return Ok(artifact(locked.address(), locked.size()));
    }
    if locked.is_none()
        && let Some(record) = store.get_meta::<CrateRecord>(META_NAMESPACE, &spec.meta_key())?
        && store.closure_complete(&record.address)?
    {
        return Ok(artifact(record.address, record.size));
    }
    if fetcher.offline() {
        return Err(Error::Offline {
            what: format!("`{}`", spec.url),
        });
    }
    let format = if spec.unpack {
        let name = spec.url.split(['?', '#']).next().unwrap_or(&spec.url);
        let name = name.rsplit('/').next().unwrap_or(name);
        Some(
            ArchiveFormat::from_file_name(name).ok_or_else(|| Error::UnknownArchive {
                url: spec.url.clone(),
            })?,
        )
    } else {
        None
    };
    let fetch_url = fetcher.mirrors().rewrite(&spec.url);
    let temp = store.temp_file()?;
    fetcher
        .downloader()
        .download(
            &fetch_url,
            temp.path(),
            Some(spec.sha256.as_str()),
            &spec.url,
        )
        .await?;
    let store_handle = Arc::clone(store);
    let options = UnpackOptions {
        strip_components: spec.strip_components,
        max_unpacked_size: fetcher.max_unpacked_size(),
        origin: Some(spec.url.clone()),
    };
    let (address, size) = crate::error::blocking(move || -> Result<(Digest, u64)> {
        let result = match format {
            None => store_handle.add_blob_file(temp.path()).map_err(Error::from),
            Some(format) => (|| {
                let staging = store_handle.temp_dir()?;
                let dir = staging.path().join("tree");
                archive::unpack(temp.path(), format, &dir, &options)?;
                Ok(store_handle.add_tree(&dir, &|_| false)?)
            })(),
        };
        drop(temp);
        result
    })
    .await?;
    crate::error::check_drift(|| spec.id(), locked, address)?;
    crate::record::put(
        store,
        &RECORDS,
        &spec.meta_key(),
        &CrateRecord {
            url: spec.url.clone(),
            address,
            size,
        },
    )?;
    fetcher.reporter().on_artifact("url", &spec.url);
    Ok(artifact(address, size))
}
