//! The `crate` artifact: a crate from a Cargo.lock, stored as its vendored directory.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{
    ArtifactKind, Description, LicenceSource, Query, SourceFacts, shared_fields, vcs_location,
};
use crate::ids::{ArtifactId, CommitId, Sha256};

/// The crates.io index as Cargo.lock names it.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// A crate from a Cargo.lock, stored as its vendored directory (with `.cargo-checksum.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrateArtifact {
    /// `crate+<source>#<name>@<version>`.
    pub id: ArtifactId,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The Cargo.lock `source` (e.g. `registry+https://github.com/rust-lang/crates.io-index`).
    pub source: String,
    /// Where the `.crate` was downloaded from (registry crates).
    pub url: Option<String>,
    /// Cargo.lock checksum: sha256 of the `.crate` (registry crates).
    pub sha256: Option<Sha256>,
    /// The commit (git crates).
    pub commit: Option<CommitId>,
    /// Address of the vendored directory tree.
    pub address: Digest,
    /// Total file bytes of the tree.
    pub size: u64,
}

impl CrateArtifact {
    /// The repository URL of a git crate's `source` (`git+URL?rev=…#commit` → `URL`).
    fn repository(&self) -> &str {
        let url = self.source.strip_prefix("git+").unwrap_or(&self.source);
        url.split(['?', '#']).next().unwrap_or(url)
    }
}

impl ArtifactKind for CrateArtifact {
    shared_fields!("crate");

    fn identity(&self) -> (String, String) {
        let package =
            if self.source == CRATES_IO || self.source == "sparse+https://index.crates.io/" {
                self.name.clone()
            } else {
                format!("{} ({})", self.name, self.source)
            };
        (package, self.version.clone())
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names(&self.name, &self.version)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        let mut purl = PackageUrl::new("cargo", self.name.as_str())?;
        purl.with_version(self.version.as_str())?;
        if let Some(commit) = &self.commit {
            purl.add_qualifier("vcs_url", vcs_location(self.repository(), commit.as_str()))?;
        } else if self.source != CRATES_IO {
            // Cargo.lock's `registry+URL` or `sparse+URL`; a sparse index keeps its prefix, as cargo names it.
            let index = self
                .source
                .strip_prefix("registry+")
                .unwrap_or(&self.source);
            purl.add_qualifier("repository_url", index)?;
        }
        Ok(purl.to_string())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(self.name.as_str());
        description.version = Some(self.version.clone());
        description.sha256 = self.sha256.as_ref().map(|sha| sha.as_str().to_owned());
        if let Some(commit) = &self.commit {
            let repository = self.url.as_deref().unwrap_or(&self.source);
            let repository = repository.strip_prefix("git+").unwrap_or(repository);
            let repository = repository.split(['?', '#']).next().unwrap_or(repository);
            let location = vcs_location(repository, commit.as_str());
            description.download = Some(location.clone());
            description.vcs = Some(location);
        } else {
            description.download.clone_from(&self.url);
        }
        Ok(description)
    }

    fn licence_source(&self) -> LicenceSource {
        LicenceSource::CrateTree(self.address)
    }
}
