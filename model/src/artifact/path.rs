//! The `path` artifact: a local directory, hashed at every lock.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{
    ArtifactKind, Description, Query, SourceFacts, generic_name, last_segment, shared_fields, short,
};
use crate::ids::ArtifactId;

/// A local directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathArtifact {
    /// `path+<path relative to the lockfile's directory>`, plus `#exclude=<a>,<b>` when the recipe excludes more.
    pub id: ArtifactId,
    /// Path relative to the lockfile's directory.
    pub path: String,
    /// Address of the tree.
    pub address: Digest,
    /// Total file bytes of the tree.
    pub size: u64,
}

impl ArtifactKind for PathArtifact {
    shared_fields!("path");

    fn tree(&self) -> Option<Digest> {
        Some(self.address)
    }

    fn identity(&self) -> (String, String) {
        (self.path.clone(), short(&self.address.to_string(), 15))
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        self.path == query.text
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        let name = last_segment(&self.path);
        let name = if name.is_empty() || name == "." || name == ".." {
            self.path.as_str()
        } else {
            name
        };
        Ok(PackageUrl::new("generic", generic_name(name))?.to_string())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        Ok(Description::named(self.path.as_str()))
    }
}
