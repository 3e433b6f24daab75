//! Why a lockfile holds an artifact: the chains of recipes and sources that lead to it, like `nix why-depends` or
//! `cargo tree -i`.
//!
//! A chain starts at a recipe no other recipe reads (what someone builds), follows `recipe = "…"` sources down the
//! build graph, and ends at the source whose artifacts include the one asked about. Every such chain is listed,
//! so an artifact read through two paths shows both. The graph is acyclic (`hstore lock` refuses cycles); a
//! hand-edited lockfile with a cycle still ends, because a chain never visits a recipe twice.

use std::collections::BTreeSet;

use crate::diff::Summary;
use crate::lockfile::{Artifact, Lockfile};
use crate::recipe::SourceSpec;

/// One way down the build graph to an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// `(recipe, source)` pairs from the top recipe down; each source but the last is a `recipe` source reading
    /// the next step's recipe, and the last holds the artifact.
    pub steps: Vec<(String, String)>,
    /// The artifact reached.
    pub artifact: Summary,
}

/// Every chain from a top recipe to an artifact for which `wanted` is true, sorted.
pub fn why(lockfile: &Lockfile, wanted: impl Fn(&Artifact) -> bool) -> Vec<Chain> {
    let mut chains = Vec::new();
    for recipe in &lockfile.recipes {
        for source in &recipe.sources {
            for artifact in source
                .artifacts
                .iter()
                .filter_map(|id| lockfile.artifact(id))
                .filter(|artifact| wanted(artifact))
            {
                let mut visited = BTreeSet::from([recipe.name.clone()]);
                let mut upward = Vec::new();
                extend_upward(
                    lockfile,
                    vec![(recipe.name.clone(), source.name.clone())],
                    &mut visited,
                    &mut upward,
                );
                chains.extend(upward.into_iter().map(|steps| Chain {
                    steps,
                    artifact: Summary::of(artifact),
                }));
            }
        }
    }
    chains.sort_by(|a, b| (&a.artifact.id, &a.steps).cmp(&(&b.artifact.id, &b.steps)));
    chains.dedup();
    chains
}

/// Prepends every `(recipe, source)` reading `chain[0]`'s recipe, recursively; a chain nothing reads is complete.
fn extend_upward(
    lockfile: &Lockfile,
    chain: Vec<(String, String)>,
    visited: &mut BTreeSet<String>,
    complete: &mut Vec<Vec<(String, String)>>,
) {
    let top = chain[0].0.clone();
    let readers: Vec<(String, String)> = lockfile
        .recipes
        .iter()
        .filter(|recipe| !visited.contains(&recipe.name))
        .flat_map(|recipe| {
            recipe
                .sources
                .iter()
                .filter_map(|source| match &source.spec {
                    SourceSpec::Recipe { recipe: read, .. } if *read == top => {
                        Some((recipe.name.clone(), source.name.clone()))
                    }
                    _ => None,
                })
        })
        .collect();
    if readers.is_empty() {
        complete.push(chain);
        return;
    }
    for reader in readers {
        visited.insert(reader.0.clone());
        let mut longer = vec![reader.clone()];
        longer.extend(chain.iter().cloned());
        extend_upward(lockfile, longer, visited, complete);
        visited.remove(&reader.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::{LockedRecipe, LockedSource, PathArtifact};
    use hstore_store::Digest;

    fn recipe_source(name: &str, reads: &str) -> LockedSource {
        LockedSource {
            name: name.to_owned(),
            spec: SourceSpec::Recipe {
                recipe: reads.to_owned(),
                target: None,
                runtime: false,
            },
            targets: Vec::new(),
            artifacts: Vec::new(),
            resolution: None,
            xmake: None,
        }
    }

    #[test]
    fn chains_climb_through_recipe_sources_to_every_top_recipe() {
        let tree = Artifact::Path(PathArtifact {
            id: "path+core".into(),
            path: "core".to_owned(),
            address: Digest::of_bytes(b"core"),
            size: 4,
        });
        let lockfile = Lockfile {
            recipes: vec![
                LockedRecipe {
                    name: "core".to_owned(),
                    sources: vec![LockedSource {
                        name: "code".to_owned(),
                        spec: SourceSpec::Path {
                            path: "core".to_owned(),
                            exclude: Vec::new(),
                        },
                        targets: Vec::new(),
                        artifacts: vec!["path+core".into()],
                        resolution: None,
                        xmake: None,
                    }],
                },
                LockedRecipe {
                    name: "lm".to_owned(),
                    sources: vec![recipe_source("core", "core")],
                },
                LockedRecipe {
                    name: "svc".to_owned(),
                    sources: vec![
                        recipe_source("engine", "lm"),
                        recipe_source("kernels", "core"),
                    ],
                },
            ],
            artifacts: vec![tree],
            ..Lockfile::default()
        };
        let chains = why(&lockfile, |artifact| artifact.id() == "path+core");
        let steps: Vec<Vec<(&str, &str)>> = chains
            .iter()
            .map(|chain| {
                chain
                    .steps
                    .iter()
                    .map(|(r, s)| (r.as_str(), s.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            steps,
            [
                vec![("svc", "engine"), ("lm", "core"), ("core", "code")],
                vec![("svc", "kernels"), ("core", "code")],
            ]
        );
        assert!(why(&lockfile, |_| false).is_empty());
    }
}
