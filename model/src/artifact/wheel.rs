//! The `wheel` artifact: a Python wheel chosen for one target, stored as a blob.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{ArtifactKind, Description, LicenceSource, Query, SourceFacts, shared_fields};
use crate::ids::{ArtifactId, Sha256};

/// A Python wheel, chosen for one target's interpreter and platform, stored as a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelArtifact {
    /// `wheel+<target>#<url>`.
    pub id: ArtifactId,
    /// Normalized project name (PEP 503).
    pub name: String,
    /// Version.
    pub version: String,
    /// The wheel's file name.
    pub filename: String,
    /// Canonical download URL (from the index).
    pub url: String,
    /// sha256 of the file, from the index (upstream integrity).
    pub sha256: Sha256,
    /// The wheel's compressed tag set (`cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64`).
    pub tags: String,
    /// The target interpreter and platform it was chosen for (`cp310-manylinux_2_28_aarch64`).
    pub target: String,
    /// Address of the blob.
    pub address: Digest,
    /// Size of the file.
    pub size: u64,
}

impl ArtifactKind for WheelArtifact {
    shared_fields!("wheel");

    fn identity(&self) -> (String, String) {
        (
            format!("{}/{}", self.target, self.name),
            self.version.clone(),
        )
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names(&self.name, &self.version)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        let mut purl = PackageUrl::new("pypi", self.name.as_str())?;
        purl.with_version(self.version.as_str())?;
        purl.add_qualifier("file_name", self.filename.as_str())?;
        Ok(purl.to_string())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(self.name.as_str());
        description.version = Some(self.version.clone());
        description.sha256 = Some(self.sha256.as_str().to_owned());
        description.download = Some(self.url.clone());
        description.properties = vec![("hstore:target".into(), self.target.clone())];
        Ok(description)
    }

    fn licence_source(&self) -> LicenceSource {
        LicenceSource::Wheel(self.address)
    }
}
