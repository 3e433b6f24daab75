//! The `xmake_archive` artifact: one xmake package's archive, locked for one target, stored as a blob.

use hstore_store::Digest;
use serde::{Deserialize, Serialize};

use super::url::download_purl;
use super::{ArtifactKind, Description, Query, SourceFacts, shared_fields};
use crate::ids::{ArtifactId, Sha256};

/// An archive of an xmake package, locked for one target of an `xmake_requires` source, stored as a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmakeArchiveArtifact {
    /// `xmake+<target>/<package>@<version>`.
    pub id: ArtifactId,
    /// The package name.
    pub package: String,
    /// Its version, as xmake chose it.
    pub version: String,
    /// The recipe target it was locked for.
    pub target: String,
    /// The canonical URL xmake-repo declares (the first one pinned by a sha256, which xmake tries first).
    pub url: String,
    /// The `add_versions` sha256 (upstream integrity).
    pub sha256: Sha256,
    /// The name it appears under in xmake's `pkg_searchdirs` (the first name xmake looks for).
    pub file_name: String,
    /// Every file name xmake accepts for it, in xmake's order.
    pub search_names: Vec<String>,
    /// Address of the blob.
    pub address: Digest,
    /// Size of the file.
    pub size: u64,
}

impl ArtifactKind for XmakeArchiveArtifact {
    shared_fields!("xmake_archive");

    fn identity(&self) -> (String, String) {
        (
            format!("{}/{}", self.target, self.package),
            self.version.clone(),
        )
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names(&self.package, &self.version)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        download_purl(&self.package, Some(&self.version), &self.url, &self.sha256)
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(self.package.as_str());
        description.version = (!self.version.is_empty()).then(|| self.version.clone());
        description.sha256 = Some(self.sha256.as_str().to_owned());
        description.download = Some(self.url.clone());
        description.properties = vec![("hstore:target".into(), self.target.clone())];
        Ok(description)
    }
}
