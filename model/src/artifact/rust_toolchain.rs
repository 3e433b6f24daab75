//! The `rust_toolchain` artifact: a Rust toolchain from the locking machine's rustup.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{ArtifactKind, ComponentType, Description, Query, SourceFacts, shared_fields};
use crate::ids::ArtifactId;

/// A Rust toolchain from the locking machine's rustup, stored without its HTML docs (`share/doc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustToolchainArtifact {
    /// `rust-toolchain+<version>-<host>`.
    pub id: ArtifactId,
    /// The rustup toolchain name, `<version>-<host>`.
    pub toolchain: String,
    /// Address of the tree.
    pub address: Digest,
    /// Total file bytes of the tree.
    pub size: u64,
}

/// The purl of a Rust toolchain `VERSION-HOST`, the version and host as the recipe gave them.
pub fn rust_toolchain_purl(version: &str, host: &str) -> Result<String, packageurl::Error> {
    let mut purl = PackageUrl::new("generic", "rust")?;
    purl.with_version(version)?;
    if !host.is_empty() {
        purl.add_qualifier("arch", host)?;
    }
    Ok(purl.to_string())
}

impl ArtifactKind for RustToolchainArtifact {
    shared_fields!("rust_toolchain");

    fn identity(&self) -> (String, String) {
        // `1.95.0-x86_64-unknown-linux-gnu`: the package is the host, the version the release.
        match self.toolchain.split_once('-') {
            Some((version, host)) => (format!("rust ({host})"), version.to_owned()),
            None => ("rust".to_owned(), self.toolchain.clone()),
        }
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        self.toolchain == query.text
            || self
                .toolchain
                .split('-')
                .next()
                .is_some_and(|release| format!("rust@{release}") == query.text)
    }

    fn purl(&self, facts: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        match facts.toolchain {
            Some((version, host)) => rust_toolchain_purl(version, host),
            None => rust_toolchain_purl(&self.toolchain, ""),
        }
    }

    fn describe(&self, facts: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named("rust");
        description.component = ComponentType::Application;
        description.version = Some(
            facts
                .toolchain
                .map_or_else(|| self.toolchain.clone(), |(version, _)| version.to_owned()),
        );
        description.properties = vec![("hstore:toolchain".into(), self.toolchain.clone())];
        Ok(description)
    }
}
