//! The `debian` kind's lock and fetch (`[sources.NAME] debian = "bookworm"`, docs/recipes.md "A Debian base").
//!
//! **Lock**: read `dists/SUITE/InRelease` from the archive (mirrors applied), verify its OpenPGP signature against
//! the spec's keyring ([`super::release`]), download each component's `Packages` index checked against the sha256
//! the signed release lists, resolve the closure of the asked packages ([`super::resolve`]), and pin every `.deb`
//! by the index's URL, sha256 and size ([`DebArtifact`]). Then unpack them into one base tree ([`super::base`]),
//! locked as the source's [`DebianBaseArtifact`]. A kept source (its spec unchanged, no `--update`) keeps its
//! pins and reads no index: the archive moves on, the lock does not.
//!
//! **Fetch**: a `.deb` through the one pinned-download skeleton ([`crate::pinned`]), by its index sha256; the base
//! from the source's `.deb` blobs, checked against the locked address. The release's `Valid-Until` is not
//! checked on replay: the signature was verified at lock, and from then on the sha256 pins and the store are the
//! copy that lasts (superseded versions vanish from the archive).

use std::io::Read;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hstore_model::artifact::{DebArtifact, DebianBaseArtifact, DebianSpec};
use hstore_store::Digest;

use crate::context::Fetcher;
use crate::error::{Error, Result, blocking};
use crate::lockfile::Artifact;
use crate::pinned::Pinned;

/// Store metadata namespace of `.deb` downloads, keyed by sha256.
pub const META_NAMESPACE: &str = "deb-sha256";

/// The `.deb` download records' kind, listed by the registry of record namespaces ([`crate::kinds::records`]).
pub const RECORDS: hstore_store::RecordKind = crate::record::download_kind(META_NAMESPACE);

/// The largest `InRelease` read (bookworm's is 150 KiB).
const MAX_RELEASE_SIZE: u64 = 16 << 20;

/// The base tree's layout version ([`DebianBaseArtifact::layout`]): what [`super::base`] adds beyond the packages'
/// files. A change there bumps it, so a base locked by an older hstore is rebuilt, not reused.
pub const BASE_LAYOUT: u32 = 1;

/// Locks a `debian` source: see the module docs. `kept` are its previous artifacts when it may keep them.
pub(crate) async fn lock(
    fetcher: &Fetcher,
    source_name: &str,
    spec: &DebianSpec,
    kept: &[&Artifact],
) -> Result<Vec<Artifact>> {
    let kept_debs: Vec<&DebArtifact> = kept
        .iter()
        .filter_map(|artifact| match artifact {
            Artifact::Deb(deb) => Some(deb),
            _ => None,
        })
        .collect();
    let kept_base = kept.iter().find_map(|artifact| match artifact {
        Artifact::DebianBase(base) if base.layout == BASE_LAYOUT => Some(base),
        _ => None,
    });
    if let Some(base) = kept_base
        && !kept_debs.is_empty()
    {
        let debs = ensure_debs(fetcher, &kept_debs, true).await?;
        let base = ensure_base(fetcher, base.clone(), &debs, true).await?;
        let mut artifacts: Vec<Artifact> = debs.into_iter().map(Artifact::Deb).collect();
        artifacts.push(Artifact::DebianBase(base));
        return Ok(artifacts);
    }
    if fetcher.offline() {
        return Err(Error::Offline {
            what: format!("the Debian archive index of source `{source_name}`"),
        });
    }
    let (release, indexes) = read_archive(fetcher, spec).await?;
    let resolve_error = |source: super::Error| Error::Debian {
        source_name: source_name.to_owned(),
        source: Box::new(source),
    };
    let requests = spec
        .packages
        .iter()
        .map(|package| package.parse::<super::Request>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| resolve_error(error.into()))?;
    let mut options = super::ResolveOptions::new(spec.architecture.clone());
    // `usrmerge` would convert a live system (and pulls in perl); a tree unpacked from scratch only needs the marker.
    options.prefer = vec!["usr-is-merged".to_owned()];
    let index_slices: Vec<&[super::Package]> = indexes.iter().map(Vec::as_slice).collect();
    let chosen = super::resolve(&index_slices, &requests, &options)
        .map_err(|error| resolve_error(error.into()))?;
    let pins: Vec<DebArtifact> = chosen
        .packages()
        .map(|package| DebArtifact {
            id: format!(
                "deb+{}/{}@{}",
                package.architecture, package.name, package.version
            )
            .into(),
            package: package.name.clone(),
            version: package.version.to_string(),
            architecture: package.architecture.clone(),
            suite: spec.suite.clone(),
            url: format!("{}/{}", spec.archive, package.filename),
            sha256: package.sha256.clone(),
            // Filled in by the download; the index's size is checked by the downloader's sha256.
            address: Digest::of_bytes(b""),
            size: package.size,
        })
        .collect();
    let pin_refs: Vec<&DebArtifact> = pins.iter().collect();
    let debs = ensure_debs(fetcher, &pin_refs, false).await?;
    let mut package_set = String::with_capacity(debs.len() * 65);
    for deb in &debs {
        package_set.push_str(deb.sha256.as_str());
        package_set.push('\n');
    }
    let set_hex = Digest::of_bytes(package_set.as_bytes()).to_hex();
    let base = DebianBaseArtifact {
        id: format!(
            "debian-base+{}/{}#{}",
            spec.suite,
            spec.architecture,
            &set_hex[..16]
        )
        .into(),
        suite: spec.suite.clone(),
        architecture: spec.architecture.clone(),
        packages: debs.len(),
        release_date: release.date.clone().unwrap_or_else(|| "(none)".to_owned()),
        layout: BASE_LAYOUT,
        address: Digest::of_bytes(b""),
        size: 0,
    };
    let base = ensure_base(fetcher, base, &debs, false).await?;
    let mut artifacts: Vec<Artifact> = debs.into_iter().map(Artifact::Deb).collect();
    artifacts.push(Artifact::DebianBase(base));
    Ok(artifacts)
}

/// Reads and verifies the archive's signed release and the `Packages` index of each component.
async fn read_archive(
    fetcher: &Fetcher,
    spec: &DebianSpec,
) -> Result<(super::Release, Vec<Vec<super::Package>>)> {
    let release_url = format!("{}/dists/{}/InRelease", spec.archive, spec.suite);
    let text = fetcher
        .downloader()
        .get_bytes(&fetcher.mirrors().rewrite(&release_url), MAX_RELEASE_SIZE)
        .await?;
    let keyring = std::fs::read(&spec.keyring).map_err(|source| Error::Io {
        action: "read the archive keyring",
        path: spec.keyring.clone().into(),
        source,
    })?;
    let release =
        super::release::verify_inrelease(&text, &keyring, &release_url).map_err(|source| {
            Error::DebianArchive {
                url: release_url.clone(),
                source: Box::new(source.into()),
            }
        })?;
    let mut packages = Vec::with_capacity(spec.components.len());
    for component in &spec.components {
        let base = format!("{component}/binary-{}/Packages", spec.architecture);
        let (compression, path, file) = ["xz", "gz", ""]
            .into_iter()
            .map(|extension| {
                let path = if extension.is_empty() {
                    base.clone()
                } else {
                    format!("{base}.{extension}")
                };
                (extension, path)
            })
            .find_map(|(extension, path)| {
                let file = release.file(&path)?.clone();
                Some((extension, path, file))
            })
            .ok_or_else(|| Error::DebianArchive {
                url: release_url.clone(),
                source: Box::new(super::Error::MissingIndex {
                    index: base.clone(),
                    component: component.clone(),
                    architecture: spec.architecture.clone(),
                }),
            })?;
        let url = format!("{}/dists/{}/{path}", spec.archive, spec.suite);
        let temp = fetcher.store().temp_file()?;
        fetcher
            .downloader()
            .download(
                &fetcher.mirrors().rewrite(&url),
                temp.path(),
                Some(file.sha256.as_str()),
                &url,
            )
            .await?;
        let local = temp.path().to_path_buf();
        let origin = url.clone();
        let parsed = blocking(move || -> Result<Vec<super::packages::Package>> {
            let compressed = std::fs::File::open(&local).map_err(|source| Error::Io {
                action: "read",
                path: local.clone(),
                source,
            })?;
            let mut reader: Box<dyn Read> = match compression {
                "xz" => Box::new(xz2::read::XzDecoder::new(compressed)),
                "gz" => Box::new(flate2::read::GzDecoder::new(compressed)),
                _ => Box::new(compressed),
            };
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
                action: "decompress",
                path: local.clone(),
                source,
            })?;
            super::packages::parse_packages(&bytes, &origin).map_err(|source| {
                Error::DebianArchive {
                    url: origin.clone(),
                    source: Box::new(source.into()),
                }
            })
        })
        .await?;
        drop(temp);
        packages.push(parsed);
    }
    Ok((release, packages))
}

/// Makes the store hold each `.deb` (concurrently; the downloader bounds the network); returns them with their
/// addresses, sorted by id. `locked`: the pins carry their locked addresses (checked), else they are new.
async fn ensure_debs(
    fetcher: &Fetcher,
    pins: &[&DebArtifact],
    locked: bool,
) -> Result<Vec<DebArtifact>> {
    let mut pending: FuturesUnordered<_> = pins
        .iter()
        .map(|pin| async move {
            let as_artifact = Artifact::Deb((*pin).clone());
            ensure_deb(fetcher, pin, locked.then_some(&as_artifact)).await
        })
        .collect();
    let mut debs = Vec::with_capacity(pins.len());
    while let Some(result) = pending.next().await {
        debs.push(result?);
    }
    debs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(debs)
}

/// Makes the store hold one `.deb`, by its index sha256.
pub(crate) async fn ensure_deb(
    fetcher: &Fetcher,
    pin: &DebArtifact,
    locked: Option<&Artifact>,
) -> Result<DebArtifact> {
    let label = format!("{}_{}_{}.deb", pin.package, pin.version, pin.architecture);
    let pinned = Pinned {
        id: pin.id.to_string(),
        what: format!("Debian package `{}` {}", pin.package, pin.version),
        label: label.clone(),
        sha256: pin.sha256.as_str(),
        records: &RECORDS,
        record_key: pin.sha256.to_string(),
        report: ("deb", &label),
    };
    let url = pin.url.clone();
    let stored = crate::pinned::ensure_blob(fetcher, &pinned, locked, url).await?;
    Ok(DebArtifact {
        address: stored.address,
        size: stored.size,
        ..pin.clone()
    })
}

/// Makes the store hold the base tree of `debs`. `locked`: `base` carries its locked address, so it is kept when
/// that tree is complete, and a tree unpacked again from the `.deb` blobs (which must be in the store) must come out
/// at that address; otherwise `base`'s address and size are filled in.
pub(crate) async fn ensure_base(
    fetcher: &Fetcher,
    base: DebianBaseArtifact,
    debs: &[DebArtifact],
    locked: bool,
) -> Result<DebianBaseArtifact> {
    let store = Arc::clone(fetcher.store());
    if locked && store.closure_complete(&base.address)? {
        return Ok(base);
    }
    let debs = debs.to_vec();
    let id = base.id.to_string();
    let options = super::base::BaseOptions {
        merged_usr: super::base::MergedUsr::Auto,
        max_unpacked_size: fetcher.max_unpacked_size(),
    };
    let (address, size) = blocking(move || -> Result<(Digest, u64)> {
        let staging = store.temp_dir()?;
        let packages = staging.path().join("debs");
        std::fs::create_dir(&packages).map_err(|source| Error::Io {
            action: "create",
            path: packages.clone(),
            source,
        })?;
        let mut files = Vec::with_capacity(debs.len());
        for deb in &debs {
            let path = packages.join(format!("{}.deb", deb.package));
            let mut reader = store.blob(&deb.address)?.reader;
            let mut file = std::fs::File::create(&path).map_err(|source| Error::Io {
                action: "create",
                path: path.clone(),
                source,
            })?;
            std::io::copy(&mut reader, &mut file).map_err(|source| Error::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            files.push((
                super::base::PackageLabel::new(deb.package.clone(), deb.version.clone()),
                path,
            ));
        }
        let packages: Vec<(super::base::PackageLabel, &std::path::Path)> = files
            .iter()
            .map(|(label, path)| (label.clone(), path.as_path()))
            .collect();
        let root = staging.path().join("root");
        super::base::assemble_base(&packages, &root, &options).map_err(|source| {
            Error::DebianBase {
                id: id.clone(),
                source: Box::new(source.into()),
            }
        })?;
        Ok(store.add_tree(&root, &|_| false)?)
    })
    .await?;
    if locked && address != base.address {
        return Err(Error::AddressDrift {
            id: base.id.to_string(),
            expected: base.address,
            actual: address,
        });
    }
    fetcher.reporter().on_artifact(
        "debian_base",
        &format!("{} {}", base.suite, base.architecture),
    );
    Ok(DebianBaseArtifact {
        address,
        size,
        ..base
    })
}
