//! What changed between two lockfiles, as an operator reads it before carrying the new one across the air gap:
//! per recipe and source, the artifacts added, removed and changed (`crate serde 1.0.219 → 1.0.228`, `git … commit
//! moved`), and the bytes the new artifacts hold.
//!
//! Pairing rule: an artifact present in both with the same id and address is unchanged. One with the same id and
//! another address changed in place (a path tree edited, a URL re-pinned). The rest pair by [`identity`] (the
//! package an artifact is a version of: a crate's registry and name, a git URL, a wheel's target and project), but
//! only one-to-one: when a source holds several versions of one package on either side (a Cargo.lock with `syn`
//! 1 and 2), the unpaired ones are listed as added and removed rather than guessed into pairs.

use std::collections::{BTreeMap, BTreeSet};

use hstore_store::Digest;

use crate::lockfile::{Artifact, Lockfile};

/// The difference between two lockfiles.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LockfileDiff {
    /// Sources with at least one change, sorted by recipe, then source.
    pub sources: Vec<SourceDiff>,
    /// Recipes only in the new lockfile.
    pub added_recipes: Vec<String>,
    /// Recipes only in the old lockfile.
    pub removed_recipes: Vec<String>,
    /// Artifacts whose address only the new lockfile names (each once, however many sources read it).
    pub new_artifacts: usize,
    /// Their bytes (blob lengths and the total file bytes of trees): an upper bound on what an incremental
    /// export carries, since files shared with the old closure are not carried twice.
    pub new_bytes: u64,
}

impl LockfileDiff {
    /// Whether the two lockfiles pin the same bytes for every source.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.added_recipes.is_empty() && self.removed_recipes.is_empty()
    }
}

/// The changes of one source (`recipe.source`).
#[derive(Debug, PartialEq, Eq)]
pub struct SourceDiff {
    /// The recipe.
    pub recipe: String,
    /// The source's name in the recipe.
    pub source: String,
    /// Whether the source exists on each side: `(false, true)` is a new source.
    pub present: (bool, bool),
    /// Its changes, sorted by kind, then package.
    pub changes: Vec<Change>,
}

/// One artifact's change.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Only the new lockfile has it.
    Added(Summary),
    /// Only the old lockfile has it.
    Removed(Summary),
    /// The same package at another version or content.
    Changed {
        /// The old artifact.
        from: Summary,
        /// The new one.
        to: Summary,
    },
}

impl Change {
    fn sort_key(&self) -> (&'static str, &str, u8) {
        match self {
            Change::Changed { to, .. } => (to.kind, &to.package, 0),
            Change::Added(summary) => (summary.kind, &summary.package, 1),
            Change::Removed(summary) => (summary.kind, &summary.package, 2),
        }
    }
}

/// What a person needs to recognise an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The kind, as written in the lockfile.
    pub kind: &'static str,
    /// The package it is a version of (`serde`, a git URL, `cp311-manylinux_2_28_x86_64/numpy`).
    pub package: String,
    /// Its version: a release, a short commit, a sha256 prefix, or the address for local trees.
    pub version: String,
    /// The lockfile id.
    pub id: String,
    /// Its address.
    pub address: Digest,
    /// Its bytes.
    pub size: u64,
}

impl Summary {
    /// The summary of `artifact`.
    pub fn of(artifact: &Artifact) -> Self {
        let (package, version) = identity(artifact);
        Summary {
            kind: artifact.kind(),
            package,
            version,
            id: artifact.id().to_owned(),
            address: artifact.address(),
            size: artifact.size(),
        }
    }
}

/// The package an artifact is a version of, and that version, as shown to a person (each kind says,
/// [`ArtifactKind::identity`](crate::artifact::ArtifactKind::identity)).
pub fn identity(artifact: &Artifact) -> (String, String) {
    artifact.kind_impl().identity()
}

/// Compares `old` with `new`.
pub fn diff(old: &Lockfile, new: &Lockfile) -> LockfileDiff {
    let sources_of = |lockfile: &Lockfile| -> BTreeMap<(String, String), Vec<Summary>> {
        let mut sources = BTreeMap::new();
        for recipe in &lockfile.recipes {
            for source in &recipe.sources {
                let summaries = source
                    .artifacts
                    .iter()
                    .filter_map(|id| lockfile.artifact(id))
                    .map(Summary::of)
                    .collect();
                sources.insert((recipe.name.clone(), source.name.clone()), summaries);
            }
        }
        sources
    };
    let (old_sources, new_sources) = (sources_of(old), sources_of(new));
    let names: BTreeSet<&(String, String)> = old_sources.keys().chain(new_sources.keys()).collect();
    let mut result = LockfileDiff::default();
    for name in names {
        let before = old_sources.get(name);
        let after = new_sources.get(name);
        let changes = diff_source(
            before.map_or(&[], Vec::as_slice),
            after.map_or(&[], Vec::as_slice),
        );
        if !changes.is_empty() {
            result.sources.push(SourceDiff {
                recipe: name.0.clone(),
                source: name.1.clone(),
                present: (before.is_some(), after.is_some()),
                changes,
            });
        }
    }
    let recipes = |lockfile: &Lockfile| -> BTreeSet<String> {
        lockfile
            .recipes
            .iter()
            .map(|recipe| recipe.name.clone())
            .collect()
    };
    let (old_recipes, new_recipes) = (recipes(old), recipes(new));
    result.added_recipes = new_recipes.difference(&old_recipes).cloned().collect();
    result.removed_recipes = old_recipes.difference(&new_recipes).cloned().collect();
    let old_addresses: BTreeSet<Digest> = old.artifacts.iter().map(Artifact::address).collect();
    let mut counted = BTreeSet::new();
    for artifact in &new.artifacts {
        let address = artifact.address();
        if !old_addresses.contains(&address) && counted.insert(address) {
            result.new_artifacts += 1;
            result.new_bytes += artifact.size();
        }
    }
    result
}

fn diff_source(old: &[Summary], new: &[Summary]) -> Vec<Change> {
    let old_ids: BTreeMap<&str, &Summary> = old.iter().map(|s| (s.id.as_str(), s)).collect();
    let new_ids: BTreeMap<&str, &Summary> = new.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut changes = Vec::new();
    // Unpaired artifacts by (kind, package), to pair one-to-one below.
    let mut removed: BTreeMap<(&str, &str), Vec<&Summary>> = BTreeMap::new();
    let mut added: BTreeMap<(&str, &str), Vec<&Summary>> = BTreeMap::new();
    for summary in old {
        match new_ids.get(summary.id.as_str()) {
            Some(now) if now.address == summary.address => {}
            Some(now) => changes.push(Change::Changed {
                from: summary.clone(),
                to: (*now).clone(),
            }),
            None => removed
                .entry((summary.kind, summary.package.as_str()))
                .or_default()
                .push(summary),
        }
    }
    for summary in new {
        if !old_ids.contains_key(summary.id.as_str()) {
            added
                .entry((summary.kind, summary.package.as_str()))
                .or_default()
                .push(summary);
        }
    }
    for (package, gone) in &removed {
        match (gone.as_slice(), added.get(package).map(Vec::as_slice)) {
            ([from], Some([to])) => changes.push(Change::Changed {
                from: (*from).clone(),
                to: (*to).clone(),
            }),
            _ => changes.extend(
                gone.iter()
                    .map(|summary| Change::Removed((*summary).clone())),
            ),
        }
    }
    for (package, new_ones) in &added {
        let paired = matches!(
            (removed.get(package).map(Vec::as_slice), new_ones.as_slice()),
            (Some([_]), [_])
        );
        if !paired {
            changes.extend(
                new_ones
                    .iter()
                    .map(|summary| Change::Added((*summary).clone())),
            );
        }
    }
    changes.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::{CrateArtifact, LockedRecipe, LockedSource, PathArtifact};
    use crate::recipe::SourceSpec;

    fn crate_artifact(name: &str, version: &str, seed: u8) -> Artifact {
        Artifact::Crate(CrateArtifact {
            id: format!(
                "crate+registry+https://github.com/rust-lang/crates.io-index#{name}@{version}"
            )
            .into(),
            name: name.to_owned(),
            version: version.to_owned(),
            source: "registry+https://github.com/rust-lang/crates.io-index".to_owned(),
            url: None,
            sha256: None,
            commit: None,
            address: Digest::of_bytes(&[seed]),
            size: u64::from(seed) * 100,
        })
    }

    fn path_artifact(seed: u8) -> Artifact {
        Artifact::Path(PathArtifact {
            id: "path+src".into(),
            path: "src".to_owned(),
            address: Digest::of_bytes(&[seed, seed]),
            size: 7,
        })
    }

    fn lockfile(artifacts: Vec<Artifact>) -> Lockfile {
        let mut lockfile = Lockfile {
            recipes: vec![LockedRecipe {
                name: "app".to_owned(),
                sources: vec![LockedSource {
                    name: "deps".to_owned(),
                    spec: SourceSpec::Path {
                        path: "src".to_owned(),
                        exclude: Vec::new(),
                    },
                    targets: Vec::new(),
                    artifacts: artifacts.iter().map(|a| a.id().into()).collect(),
                    resolution: None,
                    xmake: None,
                }],
            }],
            artifacts,
            ..Lockfile::default()
        };
        lockfile.normalize();
        lockfile
    }

    #[test]
    fn a_version_bump_is_one_change_and_counts_its_bytes() {
        let old = lockfile(vec![
            crate_artifact("serde", "1.0.1", 1),
            crate_artifact("libc", "0.2.0", 2),
        ]);
        let new = lockfile(vec![
            crate_artifact("serde", "1.0.2", 3),
            crate_artifact("libc", "0.2.0", 2),
        ]);
        let result = diff(&old, &new);
        assert_eq!(result.sources.len(), 1);
        let [Change::Changed { from, to }] = result.sources[0].changes.as_slice() else {
            panic!("{:?}", result.sources[0].changes);
        };
        assert_eq!(
            (from.version.as_str(), to.version.as_str()),
            ("1.0.1", "1.0.2")
        );
        assert_eq!((result.new_artifacts, result.new_bytes), (1, 300));
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn two_versions_of_one_package_are_not_guessed_into_pairs() {
        let old = lockfile(vec![
            crate_artifact("syn", "1.0.0", 1),
            crate_artifact("syn", "2.0.0", 2),
        ]);
        let new = lockfile(vec![crate_artifact("syn", "2.0.1", 3)]);
        let changes = &diff(&old, &new).sources[0].changes;
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(matches!(&changes[0], Change::Added(s) if s.version == "2.0.1"));
        assert!(
            changes[1..]
                .iter()
                .all(|change| matches!(change, Change::Removed(_)))
        );
    }

    #[test]
    fn the_same_id_at_another_address_changed_in_place() {
        let changes = &diff(
            &lockfile(vec![path_artifact(1)]),
            &lockfile(vec![path_artifact(2)]),
        )
        .sources[0]
            .changes;
        assert!(matches!(changes.as_slice(), [Change::Changed { from, to }] if from.id == to.id));
    }
}
