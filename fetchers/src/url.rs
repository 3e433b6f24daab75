//! `url` sources: a plain download pinned by the sha256 the recipe gives, stored as a blob or, with `unpack = true`,
//! as the tree of the archive (`.tar.gz`, `.tgz`, `.tar.xz`, `.tar.zst`, `.tar`, `.zip`, by the URL's file name).
//!
//! Invariants: the sha256 is checked on the streamed bytes before anything is stored; unpacking goes through
//! [`crate::archive`], which refuses hostile entries naming them. Store metadata `url-sha256/<sha256>` (blob) or
//! `url-sha256/<sha256>-unpack-<strip>` (tree) records the address, so a warm lock or fetch does no work.

use hstore_store::Digest;

use crate::archive::{self, ArchiveFormat, UnpackOptions};
use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::{Artifact, UrlArtifact};
use crate::pinned::Pinned;
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
    let artifact = |address: Digest, size: u64| {
        Artifact::Url(UrlArtifact {
            id: spec.id().into(),
            url: spec.url.clone(),
            sha256: spec.sha256.clone(),
            unpack: spec.unpack,
            strip_components: spec.strip_components,
            address,
            size,
        })
    };
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
    let options = UnpackOptions {
        strip_components: spec.strip_components,
        max_unpacked_size: fetcher.max_unpacked_size(),
        origin: Some(spec.url.clone()),
    };
    let pinned = Pinned {
        id: spec.id(),
        what: format!("`{}`", spec.url),
        label: spec.url.clone(),
        sha256: spec.sha256.as_str(),
        records: &RECORDS,
        record_key: spec.meta_key(),
        report: ("url", &spec.url),
    };
    let url = spec.url.clone();
    let stored = crate::pinned::ensure(
        fetcher,
        &pinned,
        locked,
        async { Ok(url) },
        move |store, file, _url| match format {
            None => Ok(store.add_blob_file(file)?),
            Some(format) => {
                let staging = store.temp_dir()?;
                let dir = staging.path().join("tree");
                archive::unpack(file, format, &dir, &options)?;
                Ok(store.add_tree(&dir, &|_| false)?)
            }
        },
    )
    .await?;
    Ok(artifact(stored.address, stored.size))
}
