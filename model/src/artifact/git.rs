//! The `git` artifact: a commit's tree, submodules in place.

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{
    ArtifactKind, Description, Part, Query, SourceFacts, generic_name, last_segment, shared_fields,
    short, vcs_location,
};
use crate::ids::{ArtifactId, CommitId};

/// A git commit's tree (no `.git`), submodules in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitArtifact {
    /// `git+<url>#<commit>`.
    pub id: ArtifactId,
    /// Canonical repository URL.
    pub url: String,
    /// The full commit id (upstream integrity).
    pub commit: CommitId,
    /// Submodules, recursively, sorted by path.
    pub submodules: Vec<LockedSubmodule>,
    /// Address of the tree.
    pub address: Digest,
    /// Total file bytes of the tree.
    pub size: u64,
}

/// A git submodule pinned inside a git artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSubmodule {
    /// Its path in the parent tree.
    pub path: String,
    /// Its canonical URL (resolved against the parent's URL when relative).
    pub url: String,
    /// The commit the parent pins.
    pub commit: CommitId,
}

/// The GitHub owner and repository of a `https://github.com/OWNER/REPO[.git]` URL.
fn github(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git://github.com/"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (owner, repository) = rest.split_once('/')?;
    (!owner.is_empty() && !repository.is_empty() && !repository.contains('/'))
        .then_some((owner, repository))
}

/// `pkg:github/OWNER/REPO@COMMIT` on github.com, else `pkg:generic/REPO@COMMIT?vcs_url=git+URL@COMMIT`.
pub(crate) fn commit_purl(url: &str, commit: &str) -> Result<String, packageurl::Error> {
    if let Some((owner, repository)) = github(url) {
        let mut purl = PackageUrl::new("github", repository)?;
        purl.with_namespace(owner)?.with_version(commit)?;
        return Ok(purl.to_string());
    }
    let mut purl = PackageUrl::new("generic", generic_name(last_segment(url)))?;
    purl.with_version(commit)?;
    purl.add_qualifier("vcs_url", vcs_location(url, commit))?;
    Ok(purl.to_string())
}

impl ArtifactKind for GitArtifact {
    shared_fields!("git");

    fn tree(&self) -> Option<Digest> {
        Some(self.address)
    }

    fn identity(&self) -> (String, String) {
        let version = short(self.commit.as_str(), 12);
        if self.submodules.is_empty() {
            (self.url.clone(), version)
        } else {
            (
                self.url.clone(),
                format!("{version} (+{} submodules)", self.submodules.len()),
            )
        }
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names_url(&self.url)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        commit_purl(&self.url, self.commit.as_str())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let location = vcs_location(&self.url, self.commit.as_str());
        let mut description = Description::named(last_segment(&self.url));
        description.version = Some(self.commit.as_str().to_owned());
        description.download = Some(location.clone());
        description.vcs = Some(location);
        for submodule in &self.submodules {
            let location = vcs_location(&submodule.url, submodule.commit.as_str());
            let mut part = Description::named(last_segment(&submodule.url));
            part.version = Some(submodule.commit.as_str().to_owned());
            part.download = Some(location.clone());
            part.vcs = Some(location);
            part.properties = vec![
                ("hstore:kind".into(), "git-submodule".into()),
                ("hstore:path".into(), submodule.path.clone()),
            ];
            description.parts.push(Part {
                reference: format!("submodule/{}", submodule.path),
                description: part,
                purl: commit_purl(&submodule.url, submodule.commit.as_str())?,
            });
        }
        Ok(description)
    }
}
