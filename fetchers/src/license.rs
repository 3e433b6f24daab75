//! Declared licences of locked artifacts, read from what was fetched: a crate's `license` from the `Cargo.toml` at
//! the top of its vendored tree, a wheel's `License-Expression` (else a one-line `License`) from its
//! `*.dist-info/METADATA`. Other kinds carry no licence metadata hstore could read (a git tree, a download, a
//! toolchain, a local directory). Used by `hstore sbom` ([`hstore_model::sbom`]).
//!
//! Two places hold the bytes: a store ([`from_store`]), or a bundle not imported ([`from_bundle`]), which is
//! read front to back up to three times (its lockfile; then each crate's top directory node and each wheel; then
//! the manifests those nodes name), because a bundle lists children before parents. An object neither holds (a
//! lockfile-only machine, an incremental bundle) leaves that licence unknown, never an error: an SBOM of what is
//! known beats none. Memory is bounded: a manifest is read up to [`MAX_METADATA_BYTES`], a wheel is streamed
//! entry by entry (its `METADATA` sits near its end, so the wheel is read through, never held).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hstore_model::sbom::Licenses;
use hstore_store::bundle::{ObjectKind, read_selected};
use hstore_store::{Digest, Directory, Node, PathComponent, Store};

use crate::lockfile::Lockfile;
use hstore_model::artifact::LicenceSource;

/// Most bytes of a `Cargo.toml` or a `METADATA` file read.
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// Most bytes of a lockfile read out of a bundle.
pub const MAX_LOCKFILE_BYTES: u64 = 512 << 20;

/// Why licences could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (not: an object is missing, which leaves a licence unknown).
    #[error("failed to read the licence metadata of `{id}` from the store")]
    Store {
        /// The artifact.
        id: String,
        /// Why.
        #[source]
        source: hstore_store::Error,
    },
    /// The bundle is damaged or not a bundle.
    #[error(transparent)]
    Bundle(#[from] hstore_store::bundle::Error),
    /// The bundle could not be opened again for the next pass.
    #[error("failed to open bundle `{}`", path.display())]
    Open {
        /// The bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The bundle carries no lockfile, or several: an SBOM describes one.
    #[error("bundle `{}` carries {} lockfiles{}; an SBOM describes exactly one", path.display(), found.len(), listed(found))]
    Lockfiles {
        /// The bundle.
        path: PathBuf,
        /// The lockfile addresses it lists.
        found: Vec<Digest>,
    },
    /// The lockfile the bundle carries does not parse.
    #[error(transparent)]
    Lockfile(#[from] crate::lockfile::Error),
}

fn listed(found: &[Digest]) -> String {
    if found.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = found.iter().map(ToString::to_string).collect();
        format!(" ({})", names.join(", "))
    }
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Bundle(error) => error.hint(),
            Error::Lockfile(error) => error.hint(),
            Error::Lockfiles { found, .. } if found.is_empty() => Some(
                "a bundle made with `hstore export --all` carries no lockfile; export with `--lockfile FILE`, or run \
                 `hstore sbom --lockfile FILE` on the lockfile itself"
                    .into(),
            ),
            Error::Lockfiles { .. } => Some(
                "export each lockfile into a bundle of its own, or run `hstore sbom --lockfile FILE` on each".into(),
            ),
            Error::Store { .. } => Some("run `hstore store verify` to find damaged objects".into()),
            Error::Open { .. } => None,
        }
    }
}

/// The `license` of a `Cargo.toml`'s `[package]`; `None` when absent or not TOML.
pub fn cargo_license(manifest: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(manifest).ok()?;
    let value: toml::Table = toml::from_str(text).ok()?;
    let license = value.get("package")?.get("license")?.as_str()?.trim();
    (!license.is_empty()).then(|| license.to_owned())
}

/// The licence a wheel's core metadata declares: `License-Expression` (PEP 639), else `License` when it is one
/// line (a multi-line `License` holds a licence's text, which names no licence), never `UNKNOWN`.
pub fn metadata_license(metadata: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(metadata);
    let mut expression = None;
    let mut legacy: Option<(String, bool)> = None;
    let mut current_is_license = false;
    for line in text.lines() {
        if line.is_empty() {
            break; // The body (description) starts after the first blank line.
        }
        if line.starts_with([' ', '\t']) {
            if current_is_license && let Some((_, multi_line)) = &mut legacy {
                *multi_line = true;
            }
            continue;
        }
        current_is_license = false;
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if field.eq_ignore_ascii_case("License-Expression") && !value.is_empty() {
            expression = Some(value.to_owned());
        } else if field.eq_ignore_ascii_case("License") {
            current_is_license = true;
            legacy = Some((value.to_owned(), false));
        }
    }
    expression.or_else(|| {
        legacy.and_then(|(value, multi_line)| {
            (!multi_line && !value.is_empty() && !value.eq_ignore_ascii_case("UNKNOWN"))
                .then_some(value)
        })
    })
}

/// Reads a wheel (a zip) entry by entry up to its `NAME.dist-info/METADATA` and returns the licence it declares.
/// A damaged or unusual zip gives `None`, as a wheel without a licence does.
pub fn wheel_license(wheel: &mut dyn Read) -> Option<String> {
    let mut wheel = wheel;
    loop {
        let mut entry = zip::read::read_zipfile_from_stream(&mut wheel).ok()??;
        let name = entry.name().to_owned();
        let is_metadata = name
            .split_once('/')
            .is_some_and(|(dir, file)| dir.ends_with(".dist-info") && file == "METADATA");
        if is_metadata {
            let mut metadata = Vec::new();
            entry
                .by_ref()
                .take(MAX_METADATA_BYTES)
                .read_to_end(&mut metadata)
                .ok()?;
            return metadata_license(&metadata);
        }
        // Dropping the entry reads past its data.
    }
}

/// The `Cargo.toml` file of a crate's top directory node.
fn cargo_toml(directory: &Directory) -> Option<Digest> {
    let name = PathComponent::new("Cargo.toml").ok()?;
    match directory.get(&name)? {
        Node::File { digest, .. } => Some(*digest),
        Node::Symlink { .. } | Node::Directory { .. } => None,
    }
}

fn read_bounded(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(MAX_METADATA_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The declared licences of `lockfile`'s artifacts that `store` holds.
pub fn from_store(store: &Store, lockfile: &Lockfile) -> Result<Licenses, Error> {
    let mut licenses = Licenses::new();
    for artifact in &lockfile.artifacts {
        let id = artifact.id();
        let failed = |source| Error::Store {
            id: id.to_owned(),
            source,
        };
        let found = match artifact.kind_impl().licence_source() {
            LicenceSource::CrateTree(tree) => {
                let Some(directory) = store.get_directory(&tree).map_err(failed)? else {
                    continue;
                };
                let Some(manifest) = cargo_toml(&directory) else {
                    continue;
                };
                let Some(mut blob) = store.open_blob(&manifest).map_err(failed)? else {
                    continue;
                };
                let bytes = read_bounded(&mut blob.reader).map_err(|error| {
                    failed(hstore_store::Error::io("read", Path::new(id))(error))
                })?;
                cargo_license(&bytes)
            }
            LicenceSource::Wheel(blob) => {
                let Some(mut blob) = store.open_blob(&blob).map_err(failed)? else {
                    continue;
                };
                wheel_license(&mut blob.reader)
            }
            LicenceSource::None => None,
        };
        if let Some(license) = found {
            licenses.insert(id.to_owned(), license);
        }
    }
    Ok(licenses)
}

/// What [`from_bundle`] found: the lockfile the bundle carries, its bytes, and the licences.
#[derive(Debug)]
pub struct BundleContents {
    /// The lockfile's exact bytes (its BLAKE3 is the address the bundle lists).
    pub bytes: Vec<u8>,
    /// The lockfile.
    pub lockfile: Lockfile,
    /// The declared licences found in the bundle, or else in `store`.
    pub licenses: Licenses,
}

/// Reads the lockfile a bundle carries and its artifacts' declared licences, without importing anything. `open`
/// opens the bundle afresh for each pass (at most three). Objects the bundle lacks (an incremental bundle) are
/// read from `store` when one is given and holds them.
pub fn from_bundle(
    path: &Path,
    mut open: impl FnMut() -> io::Result<Box<dyn Read>>,
    store: Option<&Store>,
) -> Result<BundleContents, Error> {
    let name = path.display().to_string();
    let mut reopen = || {
        open().map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })
    };

    // Pass 1: the lockfile.
    let mut lockfiles: Vec<Digest> = Vec::new();
    let mut bytes = None;
    read_selected(
        &mut reopen()?,
        &name,
        |manifest| {
            lockfiles.clone_from(&manifest.lockfiles);
            manifest.lockfiles.iter().copied().collect()
        },
        |_, reader| {
            let mut read = Vec::new();
            if reader
                .take(MAX_LOCKFILE_BYTES)
                .read_to_end(&mut read)
                .is_ok()
            {
                bytes = Some(read);
            }
        },
    )?;
    let [address] = lockfiles.as_slice() else {
        return Err(Error::Lockfiles {
            path: path.to_path_buf(),
            found: lockfiles,
        });
    };
    let bytes = match bytes {
        Some(bytes) => bytes,
        // Listed but not carried (an incremental bundle against a store that had it).
        None => match store.map(|store| store.read_blob(address)) {
            Some(Ok(Some(bytes))) => bytes,
            _ => {
                return Err(Error::Lockfiles {
                    path: path.to_path_buf(),
                    found: lockfiles,
                });
            }
        },
    };
    let lockfile = Lockfile::from_slice(&bytes, &PathBuf::from(format!("{name}:{address}")))?;

    // Pass 2: each crate's top directory node, and each wheel.
    let mut trees: BTreeMap<Digest, Vec<&str>> = BTreeMap::new();
    let mut wheels: BTreeMap<Digest, Vec<&str>> = BTreeMap::new();
    for artifact in &lockfile.artifacts {
        match artifact.kind_impl().licence_source() {
            LicenceSource::CrateTree(tree) => trees.entry(tree).or_default().push(artifact.id()),
            LicenceSource::Wheel(blob) => wheels.entry(blob).or_default().push(artifact.id()),
            LicenceSource::None => {}
        }
    }
    let mut licenses = Licenses::new();
    let mut manifests: BTreeMap<Digest, Vec<&str>> = BTreeMap::new();
    read_selected(
        &mut reopen()?,
        &name,
        |_| trees.keys().chain(wheels.keys()).copied().collect(),
        |object, reader| match object.kind {
            ObjectKind::Dir => {
                let mut node = Vec::new();
                if reader.read_to_end(&mut node).is_ok()
                    && let Ok(directory) = Directory::decode(&node)
                    && let Some(manifest) = cargo_toml(&directory)
                {
                    let ids = trees.get(&object.address).cloned().unwrap_or_default();
                    manifests.entry(manifest).or_default().extend(ids);
                }
            }
            ObjectKind::Blob => {
                if let Some(license) = wheel_license(reader) {
                    for id in wheels.get(&object.address).into_iter().flatten() {
                        licenses.insert((*id).to_owned(), license.clone());
                    }
                }
            }
        },
    )?;

    // Pass 3: the crates' manifests.
    if !manifests.is_empty() {
        read_selected(
            &mut reopen()?,
            &name,
            |_| manifests.keys().copied().collect(),
            |object, reader| {
                if let Ok(bytes) = read_bounded(reader)
                    && let Some(license) = cargo_license(&bytes)
                {
                    for id in manifests.get(&object.address).into_iter().flatten() {
                        licenses.insert((*id).to_owned(), license.clone());
                    }
                }
            },
        )?;
    }

    // What the bundle does not carry (an incremental bundle), from the store if it holds it.
    if let Some(store) = store {
        let unknown = Lockfile {
            artifacts: lockfile
                .artifacts
                .iter()
                .filter(|artifact| !licenses.contains_key(artifact.id()))
                .cloned()
                .collect(),
            ..Lockfile::default()
        };
        licenses.extend(from_store(store, &unknown)?);
    }
    Ok(BundleContents {
        bytes,
        lockfile,
        licenses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_and_wheel_metadata() {
        assert_eq!(
            cargo_license(b"[package]\nname = \"a\"\nlicense = \"MIT OR Apache-2.0\"\n").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(cargo_license(b"[package]\nname = \"a\"\n"), None);
        assert_eq!(cargo_license(b"not toml ["), None);
        let both = b"Metadata-Version: 2.4\nName: a\nLicense: MIT\nLicense-Expression: Apache-2.0\n\nbody\n";
        assert_eq!(metadata_license(both).as_deref(), Some("Apache-2.0"));
        let legacy = b"Metadata-Version: 2.1\nName: a\nLicense: BSD\nVersion: 1\n";
        assert_eq!(metadata_license(legacy).as_deref(), Some("BSD"));
        let text =
            b"Name: a\nLicense: Copyright (c) 2005\n        All rights reserved.\nVersion: 1\n";
        assert_eq!(metadata_license(text), None);
        assert_eq!(metadata_license(b"Name: a\nLicense: UNKNOWN\n"), None);
        assert_eq!(metadata_license(b"Name: a\n\nLicense: MIT\n"), None);
    }
}
