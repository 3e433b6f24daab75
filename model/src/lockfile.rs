//! `lockfile.json`: exactly which bytes every recipe source resolved to.
//!
//! Format version 1 (documented for users in `docs/lockfile.md`):
//! ```json
//! {
//!   "version": 1,
//!   "recipes": [ { "name": "…", "sources": [ { "name": "…", "spec": { "kind": "git", … }, "artifacts": ["id", …] } ] } ],
//!   "artifacts": [ { "kind": "git" | "crate" | "url" | "path", "id": "…", …identity…, …integrity…, "address": "b3:…", "size": N } ]
//! }
//! ```
//! Determinism rules, enforced by [`Lockfile::to_json`] and not by callers: recipes sorted by name, sources by
//! name, artifacts by `id` with no duplicates, each source's artifact ids sorted, fields in declaration order, two-space
//! indentation, a trailing newline, no timestamps. The same inputs give the same bytes on any machine.
//! A source's `spec` is the recipe's normalized source table, so `--locked` can tell whether recipes changed; a source
//! limited to some targets (`targets = [...]` in its table) also records them as `targets`, beside the spec (absent
//! for a source every target uses, so lockfiles without limits keep their bytes). [`Lockfile::for_target`] is the
//! part of a lockfile one target's builds read, for `fetch`, `export` and `cache push --target`.
//! New source kinds (wheel, xmake) are new [`Artifact`] variants; existing ones never change shape within a version.
//! A `requirements` source also records its [`Resolution`] (the resolver and index snapshot time), so re-locking
//! after a recipe change resolves against the same snapshot until `--update`. An `xmake_requires` source records its
//! [`XmakeResolution`] (the project and xmake-repo trees the probe ran against, the targets it locked, and the
//! packages xmake takes from the host), so an unchanged source keeps its archives without re-probing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hstore_store::Digest;
use serde::{Deserialize, Serialize};

use crate::ids::ArtifactId;
use crate::python::TargetPython;
use crate::recipe::SourceSpec;

pub use crate::artifact::{
    Artifact, CrateArtifact, DebArtifact, DebianBaseArtifact, GitArtifact, LockedSubmodule,
    PathArtifact, RustToolchainArtifact, UrlArtifact, WheelArtifact, XmakeArchiveArtifact,
};

/// The format version this build reads and writes.
pub const LOCKFILE_VERSION: u32 = 1;

/// Why a lockfile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("failed to {action} lockfile `{}`", path.display())]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The lockfile.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is invalid.
    #[error("lockfile `{}` is not valid", path.display())]
    Parse {
        /// The lockfile.
        path: PathBuf,
        /// serde's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The version is not one we read.
    #[error("lockfile `{}` has format version {found}; this hstore reads version {LOCKFILE_VERSION}", path.display())]
    UnsupportedVersion {
        /// The lockfile.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A source refers to an artifact id that is not listed.
    #[error("lockfile `{}`: source `{recipe}.{source_name}` refers to unknown artifact `{id}`", path.display())]
    DanglingArtifact {
        /// The lockfile.
        path: PathBuf,
        /// The recipe.
        recipe: String,
        /// The source.
        source_name: String,
        /// The missing id.
        id: String,
    },
    /// An artifact id or a recipe name appears twice: which entry counts would be a guess.
    #[error("lockfile `{}` lists {what} `{name}` twice", path.display())]
    Duplicate {
        /// The lockfile.
        path: PathBuf,
        /// `artifact` or `recipe`.
        what: &'static str,
        /// The repeated id or name.
        name: String,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Io { action: "read", .. } => Some("run `hstore lock` to create it, or pass `--lockfile FILE`".into()),
            Error::UnsupportedVersion { .. } => Some("use the hstore release that wrote it, or re-run `hstore lock`".into()),
            Error::Parse { .. } | Error::DanglingArtifact { .. } | Error::Duplicate { .. } => {
                Some("the lockfile was edited by hand or truncated; restore it from version control or re-run `hstore lock`".into())
            }
            Error::Io { .. } => None,
        }
    }
}

/// The whole lockfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version ([`LOCKFILE_VERSION`]).
    pub version: u32,
    /// What each recipe's sources resolved to.
    pub recipes: Vec<LockedRecipe>,
    /// Every artifact, once.
    pub artifacts: Vec<Artifact>,
}

/// One recipe's resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRecipe {
    /// The recipe's name.
    pub name: String,
    /// Its sources.
    pub sources: Vec<LockedSource>,
}

/// One source's resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    /// The source's name in the recipe.
    pub name: String,
    /// The recipe's source table when it was locked.
    pub spec: SourceSpec,
    /// The recipe's targets that use this source, sorted (`targets = [...]` in its table); empty: every target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Ids of the artifacts it resolved to (one for most kinds, many for `cargo_lock`).
    pub artifacts: Vec<ArtifactId>,
    /// How a `requirements` source was resolved (absent for other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// What an `xmake_requires` source's probe ran against and found on the host (absent for other kinds, and for
    /// an `xmake_requires` source not probed yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmake: Option<XmakeResolution>,
}

/// How an `xmake_requires` source was locked: the inputs its probe evaluated, the targets locked, and the packages
/// xmake takes from the host system instead of an archive (recorded, not stored; see docs/xmake.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmakeResolution {
    /// Address of the project tree whose `xmake.lua` was evaluated.
    pub project: Digest,
    /// Address of the xmake-repo tree it was evaluated against.
    pub repo: Digest,
    /// The targets probed, sorted (a target whose declared host paths were absent on the locking machine is not).
    pub targets: Vec<String>,
    /// Packages xmake takes from the host, sorted by target, then package.
    pub host_packages: Vec<HostPackage>,
}

/// A package xmake takes from the host for one target: recorded in the lockfile and the build log, not stored.
#[derive(Clone, Debug, PartialEq, Eq, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPackage {
    /// The target it was locked for.
    pub target: String,
    /// The package name.
    pub package: String,
    /// The version found on the host, else the version xmake-repo would have installed (empty when neither is
    /// known).
    pub version: String,
    /// How xmake finds it.
    pub origin: HostOrigin,
}

/// How xmake finds a host package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOrigin {
    /// On the host system (pkg-config, `/usr`, a package's `on_fetch` script).
    System,
    /// Through a third-party package manager (conan, vcpkg, apt…).
    Thirdparty,
}

impl HostOrigin {
    /// The word used in the lockfile and the build log.
    pub fn as_str(self) -> &'static str {
        match self {
            HostOrigin::System => "system",
            HostOrigin::Thirdparty => "thirdparty",
        }
    }
}

/// What resolved a `requirements` source, and against which index snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// The resolver and its version (`uv 0.13.9`), or `pinned` for pre-pinned inputs.
    pub resolver: String,
    /// Files uploaded after this UTC time were invisible (uv's `--exclude-newer`).
    pub exclude_newer: String,
}

impl Default for Lockfile {
    fn default() -> Self {
        Self {
            version: LOCKFILE_VERSION,
            recipes: Vec::new(),
            artifacts: Vec::new(),
        }
    }
}

impl Lockfile {
    /// Reads and checks a lockfile.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_slice(&bytes, path)
    }

    /// Parses lockfile bytes; `path` is for messages.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        if let Ok(VersionOnly { version }) = serde_json::from_slice::<VersionOnly>(bytes)
            && version != LOCKFILE_VERSION
        {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let lockfile: Lockfile = serde_json::from_slice(bytes).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut ids: BTreeSet<&str> = BTreeSet::new();
        for artifact in &lockfile.artifacts {
            if !ids.insert(artifact.id()) {
                return Err(Error::Duplicate {
                    path: path.to_path_buf(),
                    what: "artifact",
                    name: artifact.id().to_owned(),
                });
            }
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for recipe in &lockfile.recipes {
            if !names.insert(recipe.name.as_str()) {
                return Err(Error::Duplicate {
                    path: path.to_path_buf(),
                    what: "recipe",
                    name: recipe.name.clone(),
                });
            }
        }
        for recipe in &lockfile.recipes {
            for source in &recipe.sources {
                if let Some(id) = source
                    .artifacts
                    .iter()
                    .find(|id| !ids.contains(id.as_str()))
                {
                    return Err(Error::DanglingArtifact {
                        path: path.to_path_buf(),
                        recipe: recipe.name.clone(),
                        source_name: source.name.clone(),
                        id: id.to_string(),
                    });
                }
            }
        }
        Ok(lockfile)
    }

    /// Puts everything in canonical order and drops duplicate artifacts (same id).
    pub fn normalize(&mut self) {
        self.recipes.sort_by(|a, b| a.name.cmp(&b.name));
        for recipe in &mut self.recipes {
            recipe.sources.sort_by(|a, b| a.name.cmp(&b.name));
            for source in &mut recipe.sources {
                source.artifacts.sort();
                source.artifacts.dedup();
            }
        }
        let mut by_id: BTreeMap<String, Artifact> = BTreeMap::new();
        for artifact in self.artifacts.drain(..) {
            by_id.entry(artifact.id().to_owned()).or_insert(artifact);
        }
        self.artifacts = by_id.into_values().collect();
    }

    /// The canonical bytes (see the module docs).
    pub fn to_json(&self) -> Vec<u8> {
        let mut normalized = self.clone();
        normalized.normalize();
        // Serializing plain data structures to a Vec cannot fail.
        let mut bytes = serde_json::to_vec_pretty(&normalized).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Writes the canonical bytes atomically (temp file beside it, then rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let io_error = |source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error)?;
        std::io::Write::write_all(&mut temp, &self.to_json()).map_err(io_error)?;
        temp.as_file().sync_all().map_err(io_error)?;
        temp.persist(path).map_err(|error| io_error(error.error))?;
        Ok(())
    }

    /// Looks up an artifact by id.
    pub fn artifact(&self, id: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|artifact| artifact.id() == id)
    }

    /// Every content address the lockfile names, sorted and unique: its closure's roots.
    pub fn addresses(&self) -> Vec<Digest> {
        let set: BTreeSet<Digest> = self.artifacts.iter().map(Artifact::address).collect();
        set.into_iter().collect()
    }

    /// The gc root that keeps this lockfile's closure alive: its artifacts plus the lockfile itself, stored as
    /// the blob `blob`, under a name derived from the lockfile's `bytes`. `fetch`, `lock`, `export` and `import`
    /// all register lockfiles this way, so the same lockfile is one root whichever command saw it first.
    pub fn gc_root(
        &self,
        bytes: &[u8],
        blob: Digest,
        description: String,
    ) -> (String, hstore_store::Root) {
        let mut addresses = self.addresses();
        addresses.push(blob);
        addresses.sort();
        addresses.dedup();
        let name = format!("lockfile-{}", &Digest::of_bytes(bytes).to_hex()[..16]);
        (
            name,
            hstore_store::Root {
                description,
                addresses,
            },
        )
    }

    /// The locked recipe named `name`.
    pub fn recipe(&self, name: &str) -> Option<&LockedRecipe> {
        self.recipes.iter().find(|recipe| recipe.name == name)
    }

    /// The part of this lockfile that builds for `target` read: every recipe built for `target`, and the recipes
    /// their `recipe` sources name, for the pinned target or `target`, followed through the graph; of each, the
    /// sources that target uses ([`LockedSource::targets`]), and only the artifacts those sources name. A source
    /// limited to other targets, and a recipe reached only through one, drop out. A `requirements` source keeps
    /// only the wheels of the targets it is read for (its spec names each target's Python), and drops out for a
    /// target it has no Python for: the CUDA recipes' wheels (targets `x86_64`, `aarch64`) are not part of `cpu`,
    /// nor their aarch64 wheels of a `cuda` build that reads them for `x86_64`. Otherwise a recipe without `target`
    /// keeps every source not limited away from it (the lockfile does not know which targets a recipe declares):
    /// more than needed, never less.
    #[must_use]
    pub fn for_target(&self, target: &str) -> Lockfile {
        // Per recipe, per source: every artifact (`None`), or only the wheels of these Python keys.
        let mut wanted: BTreeMap<&str, BTreeMap<&str, Option<BTreeSet<String>>>> = BTreeMap::new();
        let mut visited: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut stack: Vec<(&str, &str)> = self
            .recipes
            .iter()
            .map(|recipe| (recipe.name.as_str(), target))
            .collect();
        while let Some((name, node_target)) = stack.pop() {
            if !visited.insert((name, node_target)) {
                continue;
            }
            let Some(recipe) = self.recipe(name) else {
                continue;
            };
            for source in &recipe.sources {
                if !source.targets.is_empty() && !source.targets.iter().any(|t| t == node_target) {
                    continue;
                }
                let wheels = match &source.spec {
                    SourceSpec::Requirements { targets, .. } if !targets.is_empty() => {
                        let Some(python) = targets.get(node_target) else {
                            continue;
                        };
                        // An unparsable Python keeps every wheel: more than needed, never less.
                        TargetPython::parse(python).ok().map(|python| python.key())
                    }
                    _ => None,
                };
                let entry = wanted
                    .entry(name)
                    .or_default()
                    .entry(source.name.as_str())
                    .or_insert_with(|| Some(BTreeSet::new()));
                match (entry.as_mut(), wheels) {
                    (Some(keys), Some(key)) => {
                        keys.insert(key);
                    }
                    _ => *entry = None,
                }
                if let SourceSpec::Recipe {
                    recipe: dependency,
                    target: pinned,
                    ..
                } = &source.spec
                {
                    stack.push((dependency, pinned.as_deref().unwrap_or(node_target)));
                }
            }
        }
        let wheel_targets: BTreeMap<&str, &str> = self
            .artifacts
            .iter()
            .filter_map(|artifact| {
                if let Artifact::Wheel(wheel) = artifact {
                    Some((wheel.id.as_str(), wheel.target.as_str()))
                } else {
                    None
                }
            })
            .collect();
        let recipes: Vec<LockedRecipe> = self
            .recipes
            .iter()
            .map(|recipe| LockedRecipe {
                name: recipe.name.clone(),
                sources: recipe
                    .sources
                    .iter()
                    .filter_map(|source| {
                        let keys = wanted
                            .get(recipe.name.as_str())?
                            .get(source.name.as_str())?;
                        let mut source = source.clone();
                        if let Some(keys) = keys {
                            source.artifacts.retain(|id| {
                                wheel_targets
                                    .get(id.as_str())
                                    .is_none_or(|wheel_target| keys.contains(*wheel_target))
                            });
                        }
                        Some(source)
                    })
                    .collect(),
            })
            .collect();
        let ids: BTreeSet<&str> = recipes
            .iter()
            .flat_map(|recipe| &recipe.sources)
            .flat_map(|source| source.artifacts.iter().map(ArtifactId::as_str))
            .collect();
        let artifacts = self
            .artifacts
            .iter()
            .filter(|artifact| ids.contains(artifact.id()))
            .cloned()
            .collect();
        Lockfile {
            version: self.version,
            recipes,
            artifacts,
        }
    }

    /// The gc root of `target`'s part of this lockfile ([`Lockfile::for_target`]): like [`Lockfile::gc_root`] (the
    /// whole lockfile's `bytes`, stored as `blob`, stay in it), named `lockfile-<16 hex>-<target>`, so it sits
    /// beside the whole lockfile's root and neither replaces the other.
    pub fn target_gc_root(
        &self,
        target: &str,
        bytes: &[u8],
        blob: Digest,
        description: &str,
    ) -> (String, hstore_store::Root) {
        let (name, root) = self.for_target(target).gc_root(
            bytes,
            blob,
            format!("{description}, target `{target}`"),
        );
        (format!("{name}-{target}"), root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Sha256;

    fn artifact(id: &str, byte: u8) -> Artifact {
        Artifact::Url(UrlArtifact {
            id: id.into(),
            url: format!("http://127.0.0.1/{id}"),
            sha256: Sha256::new("00".repeat(32)).unwrap(),
            unpack: false,
            strip_components: 0,
            address: Digest::from_bytes([byte; 32]),
            size: 3,
        })
    }

    // See: issue 23 (each artifact kind its own struct): the repository's lockfile (git, crates, wheels, toolchains)
    // reads and writes back byte for byte, so does a lone wheel, and an unknown field is still refused.
    #[test]
    fn the_repository_lockfile_and_every_kind_round_trip_byte_for_byte() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lockfile.json");
        let bytes = std::fs::read(&path).unwrap();
        let lockfile = Lockfile::from_slice(&bytes, &path).unwrap();
        assert_eq!(
            String::from_utf8(lockfile.to_json()).unwrap(),
            String::from_utf8(bytes).unwrap()
        );
        let wheel = r#"{"kind":"wheel","id":"wheel+t#u","name":"n","version":"1","filename":"n-1-py3-none-any.whl","url":"u","sha256":"0000000000000000000000000000000000000000000000000000000000000000","tags":"py3-none-any","target":"t","address":"b3:0000000000000000000000000000000000000000000000000000000000000000","size":1}"#;
        let artifact: Artifact = serde_json::from_str(wheel).unwrap();
        assert_eq!(artifact.kind(), "wheel");
        assert_eq!(serde_json::to_string(&artifact).unwrap(), wheel);
        let unknown = wheel.replace(r#""size":1"#, r#""size":1,"extra":2"#);
        assert!(serde_json::from_str::<Artifact>(&unknown).is_err());
    }

    #[test]
    fn canonical_bytes_ignore_input_order_and_round_trip() {
        let source = |artifacts: Vec<&str>| LockedSource {
            name: "t".into(),
            spec: SourceSpec::Path {
                path: ".".into(),
                exclude: vec![],
            },
            targets: Vec::new(),
            artifacts: artifacts.into_iter().map(ArtifactId::from).collect(),
            resolution: None,
            xmake: None,
        };
        let a = Lockfile {
            version: LOCKFILE_VERSION,
            recipes: vec![LockedRecipe {
                name: "r".into(),
                sources: vec![source(vec!["url+b", "url+a"])],
            }],
            artifacts: vec![
                artifact("url+b", 2),
                artifact("url+a", 1),
                artifact("url+a", 1),
            ],
        };
        let mut b = a.clone();
        b.artifacts.reverse();
        assert_eq!(a.to_json(), b.to_json());
        let bytes = a.to_json();
        assert!(bytes.ends_with(b"}\n"));
        let parsed = Lockfile::from_slice(&bytes, Path::new("lockfile.json")).unwrap();
        assert_eq!(parsed.to_json(), bytes);
        assert_eq!(parsed.artifacts.len(), 2);
        assert_eq!(parsed.addresses().len(), 2);
    }

    // See: issue 21, item 2: the part of a lockfile one target reads follows `recipe` sources and leaves out
    // sources limited to other targets; a source without `targets` keeps the lockfile's bytes.
    #[test]
    fn a_target_reads_only_the_sources_it_uses() {
        let source =
            |name: &str, spec: SourceSpec, targets: &[&str], artifacts: &[&str]| LockedSource {
                name: name.into(),
                spec,
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                artifacts: artifacts.iter().map(|id| ArtifactId::from(*id)).collect(),
                resolution: None,
                xmake: None,
            };
        let path = || SourceSpec::Path {
            path: ".".into(),
            exclude: vec![],
        };
        let dependency = |recipe: &str, target: Option<&str>| SourceSpec::Recipe {
            recipe: recipe.into(),
            target: target.map(str::to_owned),
            runtime: false,
        };
        let lockfile = Lockfile {
            version: LOCKFILE_VERSION,
            recipes: vec![
                LockedRecipe {
                    name: "app".into(),
                    sources: vec![
                        source("code", path(), &[], &["url+code"]),
                        source("gpu-blob", path(), &["gpu"], &["url+gpu"]),
                        source("toolkit", dependency("toolkit", None), &["gpu"], &[]),
                        source("tool", dependency("tool", Some("host")), &[], &[]),
                    ],
                },
                LockedRecipe {
                    name: "tool".into(),
                    sources: vec![source("src", path(), &["host"], &["url+tool"])],
                },
                LockedRecipe {
                    name: "toolkit".into(),
                    sources: vec![source("sdk", path(), &[], &["url+sdk"])],
                },
            ],
            artifacts: vec![
                artifact("url+code", 1),
                artifact("url+gpu", 2),
                artifact("url+sdk", 3),
                artifact("url+tool", 4),
            ],
        };
        let ids = |lockfile: &Lockfile| -> Vec<String> {
            lockfile
                .artifacts
                .iter()
                .map(|a| a.id().to_owned())
                .collect()
        };
        // `toolkit` is a recipe of its own: built for `cpu` it would read `sdk`; `tool` is reached for `host`.
        assert_eq!(
            ids(&lockfile.for_target("cpu")),
            ["url+code", "url+sdk", "url+tool"]
        );
        assert_eq!(
            ids(&lockfile.for_target("gpu")),
            ["url+code", "url+gpu", "url+sdk", "url+tool"]
        );
        let cpu = lockfile.for_target("cpu");
        assert!(
            cpu.recipe("app")
                .unwrap()
                .sources
                .iter()
                .all(|s| s.name != "gpu-blob" && s.name != "toolkit")
        );
        let json = String::from_utf8(lockfile.to_json()).unwrap();
        assert!(
            json.contains("\"targets\": [\n            \"gpu\"\n          ]"),
            "{json}"
        );
        assert_eq!(json.matches("\"targets\"").count(), 3, "{json}");
        let (name, root) = lockfile.target_gc_root("cpu", b"x", Digest::from_bytes([9; 32]), "l");
        assert!(
            name.starts_with("lockfile-") && name.ends_with("-cpu"),
            "{name}"
        );
        assert_eq!(root.addresses.len(), 4);
    }

    // See: issue 21, item 2, on the whole stack's lockfile: the CUDA recipes' wheels (targets `x86_64` and
    // `aarch64`) are not part of `cpu`, and a `cuda` build that reads them for `x86_64` carries no aarch64 wheel.
    #[test]
    fn a_target_reads_only_the_wheels_of_the_targets_it_builds_them_for() {
        let python = |platform: &str| crate::python::PythonTarget {
            version: "3.11".into(),
            platform: platform.into(),
        };
        let wheel = |target: &str| -> Artifact {
            serde_json::from_str(&format!(
                r#"{{"kind":"wheel","id":"wheel+{target}#u","name":"nvcc","version":"13","filename":"nvcc-13-py3-none-any.whl","url":"u","sha256":"{}","tags":"py3-none-any","target":"{target}","address":"b3:{}","size":1}}"#,
                "00".repeat(32),
                "00".repeat(32)
            ))
            .unwrap()
        };
        let (x86, arm) = (
            "cp311-manylinux_2_28_x86_64",
            "cp311-manylinux_2_28_aarch64",
        );
        let source =
            |name: &str, spec: SourceSpec, targets: &[&str], artifacts: Vec<String>| LockedSource {
                name: name.into(),
                spec,
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                artifacts: artifacts.into_iter().map(ArtifactId::from).collect(),
                resolution: None,
                xmake: None,
            };
        let wheels = SourceSpec::Requirements {
            requirements: vec!["nvcc==13".into()],
            requirements_file: None,
            index: "https://pypi.org/simple".into(),
            exclude_newer: None,
            targets: BTreeMap::from([
                ("x86_64".to_owned(), python("manylinux_2_28_x86_64")),
                ("aarch64".to_owned(), python("manylinux_2_28_aarch64")),
            ]),
        };
        let toolkit = SourceSpec::Recipe {
            recipe: "toolkit".into(),
            target: Some("x86_64".into()),
            runtime: false,
        };
        let lockfile = Lockfile {
            version: LOCKFILE_VERSION,
            recipes: vec![
                LockedRecipe {
                    name: "core".into(),
                    sources: vec![source("cuda", toolkit, &["cuda"], vec![])],
                },
                LockedRecipe {
                    name: "toolkit".into(),
                    sources: vec![source(
                        "wheels",
                        wheels,
                        &[],
                        vec![format!("wheel+{arm}#u"), format!("wheel+{x86}#u")],
                    )],
                },
            ],
            artifacts: vec![wheel(arm), wheel(x86)],
        };
        let ids = |target: &str| -> Vec<String> {
            let part = lockfile.for_target(target);
            let listed: Vec<String> = part
                .recipes
                .iter()
                .flat_map(|recipe| &recipe.sources)
                .flat_map(|source| source.artifacts.iter().map(|id| id.as_str().to_owned()))
                .collect();
            let kept: Vec<String> = part.artifacts.iter().map(|a| a.id().to_owned()).collect();
            assert_eq!(listed, kept, "the sources list exactly the artifacts kept");
            kept
        };
        assert!(ids("cpu").is_empty());
        assert_eq!(ids("cuda"), [format!("wheel+{x86}#u")]);
        assert_eq!(ids("aarch64"), [format!("wheel+{arm}#u")]);
        assert_eq!(ids("x86_64"), [format!("wheel+{x86}#u")]);
    }

    #[test]
    fn rejects_other_versions_and_dangling_ids() {
        let error = Lockfile::from_slice(
            br#"{"version": 2, "recipes": [], "artifacts": []}"#,
            Path::new("l.json"),
        )
        .unwrap_err();
        assert!(matches!(error, Error::UnsupportedVersion { found: 2, .. }));
        let dangling = br#"{"version":1,"recipes":[{"name":"r","sources":[{"name":"s","spec":{"kind":"path","path":".","exclude":[]},"artifacts":["nope"]}]}],"artifacts":[]}"#;
        assert!(matches!(
            Lockfile::from_slice(dangling, Path::new("l.json")).unwrap_err(),
            Error::DanglingArtifact { .. }
        ));
    }

    #[test]
    fn duplicate_artifacts_and_recipes_are_refused() {
        let twice = Lockfile {
            version: LOCKFILE_VERSION,
            recipes: Vec::new(),
            artifacts: vec![artifact("url+a", 1), artifact("url+a", 2)],
        };
        let bytes = serde_json::to_vec(&twice).unwrap();
        let error = Lockfile::from_slice(&bytes, Path::new("l.json")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "lockfile `l.json` lists artifact `url+a` twice"
        );
        let recipe = LockedRecipe {
            name: "r".into(),
            sources: Vec::new(),
        };
        let twice = Lockfile {
            version: LOCKFILE_VERSION,
            recipes: vec![recipe.clone(), recipe],
            artifacts: Vec::new(),
        };
        let bytes = serde_json::to_vec(&twice).unwrap();
        let error = Lockfile::from_slice(&bytes, Path::new("l.json")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "lockfile `l.json` lists recipe `r` twice"
        );
    }
}
