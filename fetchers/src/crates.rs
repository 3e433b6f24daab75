//! `cargo_lock` sources: every package of a Cargo.lock, stored the way `cargo vendor` lays it out.
//!
//! Invariants:
//! - A registry crate's `.crate` is downloaded from the registry's `dl` (read from the index's `config.json`: sparse
//!   `sparse+URL` indexes, and crates.io's canonical `registry+https://github.com/rust-lang/crates.io-index`, whose
//!   config is read from `https://index.crates.io/config.json` as cargo does; mirrors apply to both the config URL and
//!   the `dl` URL). Its sha256 MUST equal the Cargo.lock `checksum` before anything is unpacked; on a mismatch
//!   nothing is stored and the error names `name@version`, the URL, expected and computed.
//! - The artifact is the vendored directory, exactly as `cargo vendor` (cargo 1.95) writes it: the `.crate` contents
//!   without their `name-version/` prefix, minus every `.gitattributes`, `.gitignore`, `.git` and `.cargo-ok`,
//!   plus `.cargo-checksum.json` = `{"files":{path:sha256,…},"package":"<sha256 of the .crate>"}` in compact JSON with
//!   paths sorted (cargo serializes a `BTreeMap`). `cargo build --offline --frozen` accepts it with the
//!   configuration a build writes (`hstore_build::InputShape`'s cargo config).
//! - Git dependencies (`git+URL?branch=x#commit`) are checked out like git sources (submodules included, as cargo
//!   does), the package is found by its `Cargo.toml` `name`, and its directory is vendored with `"package": null`.
//!   Cargo normalizes git packages' manifests when it vendors them; we copy the manifest as is, which works for
//!   packages that do not inherit from a workspace (`field.workspace = true`); those fail at build time, not
//!   silently (cargo reports the manifest).
//! - Store metadata `crate-sha256/<sha256>` records which address a `.crate` gave and where it came from, so a
//!   warm `lock` or `fetch` needs neither the network nor any hashing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hstore_store::{Digest, Store};
use serde::Serialize;
use sha2::Digest as _;

use crate::archive::{self, ArchiveFormat, MaxUnpackedSize, UnpackOptions};
use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::{Artifact, CrateArtifact};
use crate::pinned::Pinned;
use hstore_model::{CommitId, Sha256};

/// Store metadata namespace: sha256 of a `.crate` → its vendored tree.
pub const META_NAMESPACE: &str = "crate-sha256";

/// The `.crate` download records' kind, listed by the registry of record namespaces ([`crate::kinds::records`]).
pub const RECORDS: hstore_store::RecordKind = crate::record::download_kind(META_NAMESPACE);

/// The Cargo.lock `source` of crates.io.
pub const CRATES_IO_SOURCE: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// Where crates.io's index config lives (cargo's default sparse protocol).
pub const CRATES_IO_SPARSE_INDEX: &str = "https://index.crates.io/";

/// File names `cargo vendor` does not copy, at any depth (checked against cargo 1.95: a crate's
/// `tests/x/.gitignore` is left out too).
const SKIPPED_NAMES: [&str; 4] = [".gitattributes", ".gitignore", ".git", ".cargo-ok"];

/// What the store remembers about a `.crate` (the shared download record; see [`crate::record`]).
pub use crate::record::DownloadRecord as CrateRecord;

/// One Cargo.lock package that needs vendoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CratePackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Cargo.lock `source`, verbatim.
    pub source: String,
    /// Where it comes from.
    pub origin: Origin,
}

/// Where a [`CratePackage`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A registry, by index URL (`https://index.crates.io/`), with the `.crate`'s sha256.
    Registry {
        /// The sparse index base URL, ending in `/`.
        index: String,
        /// Cargo.lock checksum.
        sha256: Sha256,
    },
    /// A git repository at a commit.
    Git {
        /// Repository URL (no query, no fragment).
        url: String,
        /// The pinned commit.
        commit: CommitId,
    },
}

impl CratePackage {
    /// The lockfile id: `crate+<source>#<name>@<version>`.
    pub fn id(&self) -> String {
        format!("crate+{}#{}@{}", self.source, self.name, self.version)
    }
}

/// Parses Cargo.lock text and lists the packages to vendor (local packages, without a source, are skipped).
pub fn parse_cargo_lock(text: &str, source_name: &str, path: &str) -> Result<Vec<CratePackage>> {
    let invalid = |message: String| Error::CargoLock {
        source_name: source_name.to_owned(),
        path: path.to_owned(),
        message,
    };
    let lockfile: cargo_lock::Lockfile = text
        .parse()
        .map_err(|error: cargo_lock::Error| invalid(error.to_string()))?;
    let mut packages = Vec::new();
    for package in lockfile.packages {
        let Some(source) = package.source else {
            continue;
        };
        let name = package.name.as_str().to_owned();
        let version = package.version.to_string();
        let source_text = source.to_string();
        let origin = if source.is_git() {
            let Some(commit) = source.precise() else {
                return Err(invalid(format!(
                    "git package `{name}@{version}` has no pinned commit"
                )));
            };
            let mut url = source.url().clone();
            url.set_query(None);
            url.set_fragment(None);
            Origin::Git {
                url: url.to_string(),
                commit: CommitId::new(commit).map_err(|error| invalid(error.to_string()))?,
            }
        } else if source.is_remote_registry() {
            let index = if source_text == CRATES_IO_SOURCE || source.is_default_registry() {
                CRATES_IO_SPARSE_INDEX.to_owned()
            } else if source_text.starts_with("sparse+") {
                let mut index = source.url().to_string();
                if !index.ends_with('/') {
                    index.push('/');
                }
                index
            } else {
                return Err(Error::UnsupportedCrateSource {
                    name,
                    version,
                    source_id: source_text,
                });
            };
            let Some(checksum) = package
                .checksum
                .as_ref()
                .and_then(cargo_lock::Checksum::as_sha256)
            else {
                return Err(Error::MissingChecksum {
                    name,
                    version,
                    source_id: source_text,
                });
            };
            Origin::Registry {
                index,
                sha256: Sha256::new(hex::encode(checksum))?,
            }
        } else {
            return Err(Error::UnsupportedCrateSource {
                name,
                version,
                source_id: source_text,
            });
        };
        packages.push(CratePackage {
            name,
            version,
            source: source_text,
            origin,
        });
    }
    packages.sort_by_key(CratePackage::id);
    packages.dedup_by(|a, b| a.id() == b.id());
    Ok(packages)
}

/// Expands a `dl` template (see <https://doc.rust-lang.org/cargo/reference/registry-index.html#index-configuration>).
pub fn dl_url(template: &str, name: &str, version: &str, sha256: &str) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !MARKERS.iter().any(|marker| template.contains(marker)) {
        return format!(
            "{}/{name}/{version}/download",
            template.trim_end_matches('/')
        );
    }
    let prefix = match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    };
    template
        .replace("{crate}", name)
        .replace("{version}", version)
        .replace("{lowerprefix}", &prefix.to_lowercase())
        .replace("{prefix}", &prefix)
        .replace("{sha256-checksum}", sha256)
}

/// Resolves (lock) or restores (fetch) one package: returns its artifact. With `locked`, the artifact must come out
/// at the locked address.
pub async fn ensure(
    fetcher: &Fetcher,
    package: &CratePackage,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    match &package.origin {
        Origin::Registry { index, sha256 } => {
            ensure_registry(fetcher, package, index, sha256, locked).await
        }
        Origin::Git { url, commit } => ensure_git(fetcher, package, url, commit, locked).await,
    }
}

async fn ensure_registry(
    fetcher: &Fetcher,
    package: &CratePackage,
    index: &str,
    sha256: &Sha256,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    let what = format!("{}@{}", package.name, package.version);
    let artifact = |url: String, address: Digest, size: u64| {
        Artifact::Crate(CrateArtifact {
            id: package.id().into(),
            name: package.name.clone(),
            version: package.version.clone(),
            source: package.source.clone(),
            url: Some(url),
            sha256: Some(sha256.clone()),
            commit: None,
            address,
            size,
        })
    };
    let locked_url = match locked {
        Some(Artifact::Crate(CrateArtifact { url: Some(url), .. })) => Some(url.clone()),
        _ => None,
    };
    let pinned = Pinned {
        id: package.id(),
        what: format!("crate `{what}`"),
        label: what.clone(),
        sha256: sha256.as_str(),
        records: &RECORDS,
        record_key: sha256.to_string(),
        report: ("crate", &what),
    };
    let sha = sha256.to_string();
    let limit = fetcher.max_unpacked_size();
    let url = async {
        if let Some(url) = locked_url.clone() {
            Ok(url)
        } else {
            let template = fetcher.index_dl(index).await?;
            Ok(dl_url(&template, &package.name, &package.version, sha256))
        }
    };
    let stored =
        crate::pinned::ensure(fetcher, &pinned, locked, url, move |store, file, origin| {
            vendor_crate_file(store, file, &sha, limit, origin)
        })
        .await?;
    let url = stored
        .url
        .or(locked_url)
        .ok_or_else(|| Error::InconsistentLockfile {
            artifact: package.id(),
            problem: "is a registry crate without a `url`".into(),
        })?;
    Ok(artifact(url, stored.address, stored.size))
}

/// Unpacks a verified `.crate` (downloaded from `origin`) into the store's `tmp/`, at most `max_unpacked_size`, lays
/// it out as `cargo vendor` does, and adds the tree.
pub fn vendor_crate_file(
    store: &Store,
    crate_file: &Path,
    sha256: &str,
    max_unpacked_size: MaxUnpackedSize,
    origin: String,
) -> Result<(Digest, u64)> {
    let staging = store.temp_dir()?;
    let dir = staging.path().join("crate");
    archive::unpack(
        crate_file,
        ArchiveFormat::TarGz,
        &dir,
        &UnpackOptions {
            strip_components: 1,
            max_unpacked_size,
            origin: Some(origin),
        },
    )?;
    finish_vendor_dir(&dir, Some(sha256))?;
    Ok(store.add_tree_batched(&dir, &|_| false)?)
}

/// Removes what `cargo vendor` skips and writes `.cargo-checksum.json`.
fn finish_vendor_dir(dir: &Path, package_sha256: Option<&str>) -> Result<()> {
    let skipped: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .filter(|entry| {
            entry.depth() > 0 && SKIPPED_NAMES.iter().any(|name| entry.file_name() == *name)
        })
        .map(walkdir::DirEntry::into_path)
        .collect();
    for path in skipped {
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {
                // A crate is untrusted in shape: no recursion, whatever its depth.
                hstore_store::remove_tree(&path)?;
            }
            Ok(_) => std::fs::remove_file(&path).map_err(Error::io("remove", &path))?,
            Err(_) => {} // inside a directory removed already
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(|error| Error::Io {
            action: "walk",
            path: dir.to_path_buf(),
            source: error.into(),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        // cargo reads through symlinks when it hashes; a dangling one cannot be vendored by cargo either.
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        files.insert(relative, sha256_file(path)?);
    }
    #[derive(Serialize)]
    struct Checksums<'a> {
        files: &'a BTreeMap<String, String>,
        package: Option<&'a str>,
    }
    let json = serde_json::to_vec(&Checksums {
        files: &files,
        package: package_sha256,
    })
    .map_err(|error| Error::Io {
        action: "encode",
        path: dir.join(".cargo-checksum.json"),
        source: error.into(),
    })?;
    let path = dir.join(".cargo-checksum.json");
    std::fs::write(&path, json).map_err(Error::io("write", &path))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(Error::io("read", path))?;
    Ok(hex::encode(hasher.finalize()))
}

async fn ensure_git(
    fetcher: &Fetcher,
    package: &CratePackage,
    url: &str,
    commit: &CommitId,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    let store = Arc::clone(fetcher.store());
    let artifact = |address: Digest, size: u64| {
        Artifact::Crate(CrateArtifact {
            id: package.id().into(),
            name: package.name.clone(),
            version: package.version.clone(),
            source: package.source.clone(),
            url: Some(url.to_owned()),
            sha256: None,
            commit: Some(commit.clone()),
            address,
            size,
        })
    };
    if let Some(locked) = locked
        && store.closure_complete(&locked.address())?
    {
        return Ok(artifact(locked.address(), locked.size()));
    }
    let meta_key = format!("git-{commit}-{}", package.name);
    if locked.is_none()
        && let Some(record) = store.get_meta::<CrateRecord>(META_NAMESPACE, &meta_key)?
        && store.closure_complete(&record.address)?
    {
        return Ok(artifact(record.address, record.size));
    }
    let git = fetcher.git().clone();
    let (name, url_owned, commit_owned) =
        (package.name.clone(), url.to_owned(), commit.to_string());
    let (address, size) = crate::error::blocking(move || -> Result<(Digest, u64)> {
        let staging = store.temp_dir()?;
        let checkout = staging.path().join("repo");
        git.checkout(&url_owned, &commit_owned, true, &checkout)?;
        let package_dir =
            find_package(&checkout, &name).ok_or_else(|| Error::GitPackageNotFound {
                name: name.clone(),
                url: url_owned.clone(),
                commit: commit_owned.clone(),
            })?;
        let vendor = staging.path().join("vendor");
        copy_package(&package_dir, &vendor)?;
        finish_vendor_dir(&vendor, None)?;
        Ok(store.add_tree_batched(&vendor, &|_| false)?)
    })
    .await?;
    crate::error::check_drift(|| package.id(), locked, address)?;
    crate::record::put(
        fetcher.store(),
        &RECORDS,
        &meta_key,
        &CrateRecord {
            url: url.to_owned(),
            address,
            size,
        },
    )?;
    fetcher
        .reporter()
        .on_artifact("crate", &format!("{}@{}", package.name, package.version));
    Ok(artifact(address, size))
}

/// The directory of the package named `name` in a checkout: the shallowest `Cargo.toml` whose `[package] name`
/// matches (cargo searches the same way), skipping `target/` and hidden directories.
fn find_package(root: &Path, name: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0
                || !(entry.file_type().is_dir()
                    && (entry.file_name() == "target"
                        || entry.file_name().to_string_lossy().starts_with('.')))
        })
        .filter_map(std::result::Result::ok)
        .filter(|entry| entry.file_type().is_file() && entry.file_name() == "Cargo.toml")
        .filter(|entry| {
            std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .and_then(|table| {
                    table
                        .get("package")?
                        .get("name")?
                        .as_str()
                        .map(|n| n == name)
                })
                .unwrap_or(false)
        })
        .filter_map(|entry| entry.path().parent().map(Path::to_path_buf))
        .collect();
    found.sort_by_key(|path| (path.components().count(), path.clone()));
    found.into_iter().next()
}

/// Copies a package directory, leaving out `target/` and nested packages (directories with their own
/// `Cargo.toml`), as cargo's package listing does.
fn copy_package(from: &Path, to: &Path) -> Result<()> {
    let walker = walkdir::WalkDir::new(from)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0
                || !(entry.file_type().is_dir()
                    && (entry.file_name() == "target" || entry.path().join("Cargo.toml").is_file()))
        });
    for entry in walker {
        let entry = entry.map_err(|error| Error::Io {
            action: "walk",
            path: from.to_path_buf(),
            source: error.into(),
        })?;
        let relative = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(relative);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            std::fs::create_dir_all(&dest).map_err(Error::io("create directory", &dest))?;
        } else if file_type.is_symlink() {
            let target =
                std::fs::read_link(entry.path()).map_err(Error::io("read link", entry.path()))?;
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(Error::io("create symlink", &dest))?;
        } else {
            std::fs::copy(entry.path(), &dest).map_err(Error::io("copy", &dest))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dl_templates_expand_like_cargo() {
        assert_eq!(
            dl_url("https://static.crates.io/crates", "serde", "1.0.0", "ab"),
            "https://static.crates.io/crates/serde/1.0.0/download"
        );
        assert_eq!(
            dl_url(
                "https://x/{prefix}/{lowerprefix}/{crate}/{crate}-{version}.crate?h={sha256-checksum}",
                "ABcd",
                "0.1.0",
                "ff"
            ),
            "https://x/AB/cd/ab/cd/ABcd/ABcd-0.1.0.crate?h=ff"
        );
        assert_eq!(
            dl_url("https://x/{prefix}/{crate}", "syn", "1.0.0", ""),
            "https://x/3/s/syn"
        );
        assert_eq!(
            dl_url("https://x/{prefix}/{crate}", "a", "1.0.0", ""),
            "https://x/1/a"
        );
    }

    #[test]
    fn cargo_lock_packages_are_classified() {
        let text = r#"
version = 4

[[package]]
name = "local"
version = "0.1.0"

[[package]]
name = "itoa"
version = "1.0.19"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4"

[[package]]
name = "dep"
version = "0.2.0"
source = "git+https://example.invalid/dep.git?branch=main#0123456789abcdef0123456789abcdef01234567"
"#;
        let packages = parse_cargo_lock(text, "self", "Cargo.lock").unwrap();
        assert_eq!(packages.len(), 2);
        let itoa = packages.iter().find(|p| p.name == "itoa").unwrap();
        assert!(
            matches!(&itoa.origin, Origin::Registry { index, .. } if index == CRATES_IO_SPARSE_INDEX)
        );
        let dep = packages.iter().find(|p| p.name == "dep").unwrap();
        assert!(
            matches!(&dep.origin, Origin::Git { url, commit } if url == "https://example.invalid/dep.git" && commit.starts_with("0123"))
        );
    }
}
