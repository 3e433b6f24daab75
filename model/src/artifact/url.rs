//! The `url` artifact: a plain download, stored as a blob or unpacked as a tree.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{
    ArtifactKind, ComponentType, Description, Query, SourceFacts, generic_name, last_segment,
    shared_fields, short,
};
use crate::ids::{ArtifactId, Sha256};

/// A plain download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlArtifact {
    /// `url+<url>`, or `url+<url>#unpack-<strip_components>` when unpacked.
    pub id: ArtifactId,
    /// Canonical URL.
    pub url: String,
    /// sha256 from the recipe.
    pub sha256: Sha256,
    /// Stored unpacked as a tree (else as a blob).
    pub unpack: bool,
    /// Leading path components dropped when unpacking.
    #[serde(default)]
    pub strip_components: usize,
    /// Address of the blob or tree.
    pub address: Digest,
    /// Size of the blob, or total file bytes of the tree.
    pub size: u64,
}

/// `pkg:generic/NAME[@VERSION]?checksum=sha256:HEX&download_url=URL`: a download with no ecosystem of its own.
pub(crate) fn download_purl(
    name: &str,
    version: Option<&str>,
    url: &str,
    sha256: &Sha256,
) -> Result<String, packageurl::Error> {
    let mut purl = PackageUrl::new("generic", generic_name(name))?;
    if let Some(version) = version.filter(|version| !version.is_empty()) {
        purl.with_version(version)?;
    }
    purl.add_qualifier("download_url", url)?;
    purl.add_qualifier("checksum", format!("sha256:{}", sha256.as_str()))?;
    Ok(purl.to_string())
}

impl ArtifactKind for UrlArtifact {
    shared_fields!("url");

    fn tree(&self) -> Option<Digest> {
        self.unpack.then_some(self.address)
    }

    fn identity(&self) -> (String, String) {
        (
            self.url.clone(),
            format!("sha256:{}", short(self.sha256.as_str(), 12)),
        )
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names_url(&self.url)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        download_purl(last_segment(&self.url), None, &self.url, &self.sha256)
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(last_segment(&self.url));
        if !self.unpack {
            description.component = ComponentType::File;
        }
        description.sha256 = Some(self.sha256.as_str().to_owned());
        description.download = Some(self.url.clone());
        Ok(description)
    }
}
