//! The locked artifacts: the [`Artifact`] enum the lockfile lists, and one module per kind holding that kind's
//! struct and everything the layers above show of it ([`ArtifactKind`]): its identity in `diff`, the names `why`
//! answers to, its package URL and SBOM description, and where its licence is read.
//!
//! A kind is one unit: its struct and its [`ArtifactKind`] impl live in its own file, and [`Artifact::kind_impl`]
//! is the only `match` over the variants that the presentation goes through, so `diff`, `why`, `sbom` and the
//! licence reader name no kind. The fields every kind carries once (`id`, `address`, `size`) are read through the
//! same trait. Adding a kind is a new file here, a variant and its arm in `kind_impl` (both found by the compiler).

mod crates;
mod debian;
mod git;
mod path;
mod rust_toolchain;
mod url;
mod wheel;
mod xmake_archive;

pub use crates::CrateArtifact;
pub use debian::{DebArtifact, DebianBaseArtifact, DebianSpec, default_architecture};
pub use git::{GitArtifact, LockedSubmodule};
pub use path::PathArtifact;
pub use rust_toolchain::{RustToolchainArtifact, rust_toolchain_purl};
pub use url::UrlArtifact;
pub use wheel::WheelArtifact;
pub use xmake_archive::XmakeArchiveArtifact;

use hstore_store::Digest;
use serde::{Deserialize, Serialize};

use crate::ids::ArtifactId;

/// One artifact: identity, origin, upstream integrity, and content address. Each kind is its own struct (its
/// fields in lockfile order after `kind`), so a kind's code takes exactly its artifact (`&GitArtifact`), never an
/// [`Artifact`] it must match again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Artifact {
    /// A git commit's tree (no `.git`), submodules in place.
    Git(GitArtifact),
    /// A crate from a Cargo.lock, stored as its vendored directory (with `.cargo-checksum.json`).
    Crate(CrateArtifact),
    /// A plain download.
    Url(UrlArtifact),
    /// A Python wheel, chosen for one target's interpreter and platform, stored as a blob.
    Wheel(WheelArtifact),
    /// A Rust toolchain from the locking machine's rustup, stored without its HTML docs (`share/doc`).
    RustToolchain(RustToolchainArtifact),
    /// An archive of an xmake package, locked for one target of an `xmake_requires` source, stored as a blob.
    XmakeArchive(XmakeArchiveArtifact),
    /// A local directory.
    Path(PathArtifact),
    /// A Debian binary package (`.deb`) from a signed archive, stored as a blob.
    Deb(DebArtifact),
    /// The root file system tree a `debian` source's packages unpack to.
    DebianBase(DebianBaseArtifact),
}

impl Artifact {
    /// This artifact's kind, behind the one interface every kind implements.
    pub fn kind_impl(&self) -> &dyn ArtifactKind {
        match self {
            Artifact::Git(artifact) => artifact,
            Artifact::Crate(artifact) => artifact,
            Artifact::Url(artifact) => artifact,
            Artifact::Wheel(artifact) => artifact,
            Artifact::RustToolchain(artifact) => artifact,
            Artifact::XmakeArchive(artifact) => artifact,
            Artifact::Path(artifact) => artifact,
            Artifact::Deb(artifact) => artifact,
            Artifact::DebianBase(artifact) => artifact,
        }
    }

    /// The unique id entries are sorted and referred to by.
    pub fn id(&self) -> &str {
        self.kind_impl().id().as_str()
    }

    /// The content address.
    pub fn address(&self) -> Digest {
        self.kind_impl().address()
    }

    /// Size in bytes (blob length or total file bytes of a tree).
    pub fn size(&self) -> u64 {
        self.kind_impl().size()
    }

    /// The tree address this artifact gives its source, if it is one a later source can read at lock time (a `git`
    /// checkout, a `path` directory, an unpacked `url`); `lock` hands it to the sources that [read
    /// it](crate::recipe::SourceSpec::reads).
    pub fn tree(&self) -> Option<Digest> {
        self.kind_impl().tree()
    }

    /// The kind, as written in the lockfile.
    pub fn kind(&self) -> &'static str {
        self.kind_impl().kind()
    }
}

/// What every artifact kind provides to the layers above it. Object safe: callers hold `&dyn ArtifactKind` from
/// [`Artifact::kind_impl`].
pub trait ArtifactKind {
    /// The `kind` tag in the lockfile (`git`, `crate`, …).
    fn kind(&self) -> &'static str;
    /// Its lockfile id.
    fn id(&self) -> &ArtifactId;
    /// Its content address in the store.
    fn address(&self) -> Digest;
    /// Its size in bytes (blob length or total file bytes of a tree).
    fn size(&self) -> u64;
    /// The tree address it gives its source when later sources can read it at lock time ([`Artifact::tree`]).
    fn tree(&self) -> Option<Digest> {
        None
    }
    /// The package it is a version of, and that version, as a person reads them in `hstore diff` (the package is
    /// also what pairs an old artifact with a new one).
    fn identity(&self) -> (String, String);
    /// Whether `hstore why QUERY` names it (besides its id, which every kind answers to).
    fn answers_to(&self, query: &Query<'_>) -> bool;
    /// Its package URL.
    fn purl(&self, facts: &SourceFacts<'_>) -> Result<String, packageurl::Error>;
    /// What its SBOM component says beyond the shared fields (an error when a part has no valid package URL).
    fn describe(&self, facts: &SourceFacts<'_>) -> Result<Description, packageurl::Error>;
    /// Where its declared licence is read from.
    fn licence_source(&self) -> LicenceSource {
        LicenceSource::None
    }
}

/// What the source that locked an artifact adds to its description: today the `rust_toolchain` spec's version and
/// host (the artifact holds only the joined toolchain name).
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceFacts<'a> {
    /// `(version, host)` as the recipe gave them, for a `rust_toolchain` artifact.
    pub toolchain: Option<(&'a str, &'a str)>,
}

/// A `hstore why` query, split once: `NAME` or `NAME@VERSION`, and the whole text.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// As typed.
    pub text: &'a str,
    /// Before `@`.
    pub name: &'a str,
    /// After `@`, when given.
    pub version: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Splits `text` at its first `@`.
    pub fn parse(text: &'a str) -> Self {
        let (name, version) = text
            .split_once('@')
            .map_or((text, None), |(name, version)| (name, Some(version)));
        Query {
            text,
            name,
            version,
        }
    }

    /// Whether it names a package `name` (ASCII case-insensitively) at `version` (any version when it gives none).
    pub fn names(&self, name: &str, version: &str) -> bool {
        name.eq_ignore_ascii_case(self.name) && self.version.is_none_or(|wanted| wanted == version)
    }

    /// Whether it names the repository or download at `url`: the URL itself or its last path segment, with or
    /// without `.git` (`InfiniCore`, `InfiniCore.git`).
    pub fn names_url(&self, url: &str) -> bool {
        let trimmed = url.trim_end_matches('/');
        let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
        url == self.text
            || trimmed == self.text
            || last == self.text
            || last.strip_suffix(".git") == Some(self.text)
    }
}

/// What a component is, in CycloneDX's words (SPDX's `primaryPackagePurpose` follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentType {
    /// A recipe or a build output; a toolchain; an operating system tree.
    Application,
    /// A package: a crate, a wheel, a repository or archive of source.
    Library,
    /// A single downloaded file.
    File,
}

/// The kind-specific part of an artifact's SBOM component; the inventory adds the id, purl, blake3 and licence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// Its name (the id when empty).
    pub name: String,
    /// Its version, where it has one.
    pub version: Option<String>,
    /// What it is.
    pub component: ComponentType,
    /// SHA-256 hex of the upstream file, where upstream pins one.
    pub sha256: Option<String>,
    /// Where its bytes came from (a URL, or `git+URL@COMMIT`).
    pub download: Option<String>,
    /// Its version-control location, `git+URL@COMMIT`.
    pub vcs: Option<String>,
    /// `hstore:` properties beyond `hstore:kind`.
    pub properties: Vec<(String, String)>,
    /// Pieces its tree contains that are packages of their own (a git artifact's submodules).
    pub parts: Vec<Part>,
}

impl Description {
    /// A library named `name` with nothing else known.
    pub fn named(name: impl Into<String>) -> Self {
        Description {
            name: name.into(),
            version: None,
            component: ComponentType::Library,
            sha256: None,
            download: None,
            vcs: None,
            properties: Vec::new(),
            parts: Vec::new(),
        }
    }
}

/// A package inside an artifact's tree ([`Description::parts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Appended to the artifact's id, after `#`, to make the part's reference (`submodule/third_party/spdlog`).
    pub reference: String,
    /// The part's own description.
    pub description: Description,
    /// Its package URL.
    pub purl: String,
}

/// What an artifact's declared licence is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenceSource {
    /// The `Cargo.toml` at the top of a vendored crate tree.
    CrateTree(Digest),
    /// The core metadata inside a wheel blob.
    Wheel(Digest),
    /// Nothing a licence can be read from.
    None,
}

/// `git+URL@COMMIT`: the purl `vcs_url` form and SPDX's `downloadLocation` form of a commit.
pub fn vcs_location(url: &str, commit: &str) -> String {
    if url.starts_with("git+") {
        format!("{url}@{commit}")
    } else {
        format!("git+{url}@{commit}")
    }
}

/// The last path segment of a URL or path, without a `.git` suffix (`InfiniCore` for `…/InfiniCore.git`).
pub fn last_segment(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    last.strip_suffix(".git").unwrap_or(last)
}

/// A `pkg:generic/…` name: never empty.
fn generic_name(candidate: &str) -> &str {
    if candidate.is_empty() {
        "unnamed"
    } else {
        candidate
    }
}

/// The first `length` characters of `text` (all of it when shorter).
fn short(text: &str, length: usize) -> String {
    text.get(..length).unwrap_or(text).to_owned()
}

/// Implements [`ArtifactKind`]'s shared accessors for a struct with `id`, `address` and `size` fields.
macro_rules! shared_fields {
    ($kind:literal) => {
        fn kind(&self) -> &'static str {
            $kind
        }
        fn id(&self) -> &crate::ids::ArtifactId {
            &self.id
        }
        fn address(&self) -> hstore_store::Digest {
            self.address
        }
        fn size(&self) -> u64 {
            self.size
        }
    };
}
use shared_fields;
