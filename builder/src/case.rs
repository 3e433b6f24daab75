//! Deployment cases: `recipes/cases/<NAME>.toml`, a named preset of recipes, a target and an install prefix
//! (`hstore build --deployment-case NAME`), like the SVC repository's `deployment/cases/<NAME>/`; and what the seed's
//! installer let a user change about one: which components go in (`--component RECIPE=auto|true|false`, the seed's
//! `--install-infinicore`/`--install-infinilm`) and which sources come from a local checkout instead of the lockfile
//! (`--override-input RECIPE.SOURCE=DIR`, the seed's `--infinicore-src`/`--infinilm-src`).
//!
//! A component names a recipe *and its variants* (`[recipe] extends`): `infinilm` selects `infinilm-issue-216` in a
//! case that pins that variant. `auto` keeps the case's choice. The seed's `auto` meant "yes inside a container, no on a
//! developer machine" (where the developer had checkouts of their own); hstore never lets the machine it runs on change
//! what is built — the developer's equivalent is `--override-input`, which builds their checkout instead.

use std::path::{Path, PathBuf};

use hstore_model::recipe::Recipe;

use serde::Deserialize;

use crate::error::{BuildError, Result};

/// The directory under the recipes directory that holds deployment cases.
pub const CASES_DIR: &str = "cases";

/// `recipes/cases/<NAME>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentCase {
    /// The `[case]` table.
    pub case: CaseTable,
}

/// `[case]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseTable {
    /// Recipes to build.
    pub recipes: Vec<String>,
    /// The target.
    pub target: String,
    /// Where to install the outputs (optional).
    pub install_path: Option<PathBuf>,
    /// What it is for, for people reading the case file.
    #[serde(default)]
    pub description: String,
}

impl DeploymentCase {
    /// Reads `<recipes_dir>/cases/<name>.toml`.
    pub fn load(recipes_dir: &Path, name: &str) -> Result<Self> {
        let path = recipes_dir.join(CASES_DIR).join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Io {
            action: "read deployment case",
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| BuildError::InvalidCase {
            path,
            message: error.to_string().trim_end().to_owned(),
        })
    }
}

/// Whether `recipe` is the component `name`: the recipe itself or one of its variants.
fn is_component(recipe: &Recipe, name: &str) -> bool {
    recipe.name == name || recipe.extends.as_deref() == Some(name)
}

/// Applies `--component RECIPE=MODE` choices to the recipes selected (by name, or by a case): `true` adds the
/// component unless it (or a variant) is already there, `false` removes it and its variants, `auto` keeps the
/// selection. An empty selection means every recipe that builds, as `hstore build` alone does.
pub fn select_components(
    all: &[Recipe],
    mut selected: Vec<String>,
    components: &[String],
) -> Result<Vec<String>> {
    if components.is_empty() {
        return Ok(selected);
    }
    if selected.is_empty() {
        selected = all
            .iter()
            .filter(|recipe| recipe.build.is_some())
            .map(|recipe| recipe.name.clone())
            .collect();
    }
    for component in components {
        let (name, mode) = component.split_once('=').unwrap_or((component, ""));
        let members: Vec<&str> = all
            .iter()
            .filter(|recipe| is_component(recipe, name))
            .map(|recipe| recipe.name.as_str())
            .collect();
        if members.is_empty() {
            return Err(BuildError::UnknownComponent {
                name: name.to_owned(),
                known: all.iter().map(|recipe| recipe.name.clone()).collect(),
            });
        }
        match mode {
            "auto" => {}
            "true" => {
                if !selected.iter().any(|s| members.contains(&s.as_str())) {
                    selected.push(name.to_owned());
                }
            }
            "false" => selected.retain(|s| !members.contains(&s.as_str())),
            other => {
                return Err(BuildError::InvalidCase {
                    path: PathBuf::from("--component"),
                    message: format!(
                        "`{component}`: mode `{other}` is not one of auto, true, false"
                    ),
                });
            }
        }
    }
    Ok(selected)
}

/// One `--override-input RECIPE.SOURCE=DIR`, checked against the recipes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSource {
    /// The recipe (a component's base and each variant get their own entry).
    pub recipe: String,
    /// The source it replaces.
    pub source: String,
    /// The directory.
    pub dir: PathBuf,
}

/// Checks `--override-input` values: each names a recipe (or the base of variants, which share the flag) and a
/// source it has, and a directory that exists. The seed's "InfiniCore source directory not found" is
/// [`BuildError::OverrideDirMissing`], with the locked source in its hint.
pub fn local_sources(all: &[Recipe], given: &[String]) -> Result<Vec<LocalSource>> {
    let mut out = Vec::new();
    for value in given {
        let unknown = |reason: String| BuildError::UnknownOverride {
            given: value.clone(),
            reason,
        };
        let Some((target, dir)) = value.split_once('=') else {
            return Err(unknown("expected `RECIPE.SOURCE=DIR`".into()));
        };
        let Some((name, source)) = target.split_once('.') else {
            return Err(unknown("expected `RECIPE.SOURCE=DIR`".into()));
        };
        let members: Vec<&Recipe> = all
            .iter()
            .filter(|recipe| is_component(recipe, name))
            .collect();
        if members.is_empty() {
            return Err(unknown(format!(
                "no recipe is named `{name}`; recipes: {}",
                all.iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for recipe in members {
            let Some(spec) = recipe.sources.get(source) else {
                return Err(unknown(format!(
                    "recipe `{}` has no source `{source}`; its sources: {}",
                    recipe.name,
                    recipe
                        .sources
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if !crate::plan::overridable(spec) {
                return Err(BuildError::NotOverridable {
                    recipe: recipe.name.clone(),
                    source_name: source.to_owned(),
                    kind: crate::plan::spec_kind(spec),
                });
            }
            let dir = PathBuf::from(dir);
            if !dir.is_dir() {
                return Err(BuildError::OverrideDirMissing {
                    recipe: recipe.name.clone(),
                    source_name: source.to_owned(),
                    dir,
                    locked: spec.describe(),
                });
            }
            out.push(LocalSource {
                recipe: recipe.name.clone(),
                source: source.to_owned(),
                dir,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every deployment case of the repository names recipes that exist and a target each of them declares.
    #[test]
    fn the_repository_cases_name_existing_recipes_and_targets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
        let all = Recipe::load_dir(&dir).unwrap();
        let mut cases: Vec<String> = std::fs::read_dir(dir.join(CASES_DIR))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_suffix(".toml").map(str::to_owned)
            })
            .collect();
        cases.sort();
        assert_eq!(
            cases,
            [
                "cache-routing-validation",
                "cache-type-routing-validation",
                "infinilm-metax-deployment",
                "integration-validation",
                "integration-validation-cuda"
            ]
        );
        for name in &cases {
            let case = DeploymentCase::load(&dir, name).unwrap().case;
            for recipe in &case.recipes {
                let recipe = all
                    .iter()
                    .find(|r| &r.name == recipe)
                    .unwrap_or_else(|| panic!("case `{name}` names unknown recipe `{recipe}`"));
                assert!(
                    recipe.targets.contains_key(&case.target),
                    "case `{name}`: recipe `{}` has no target `{}`",
                    recipe.name,
                    case.target
                );
            }
            // The seed's `--install-infinilm false` leaves InfiniLM (or its variant) out of every case.
            let without =
                select_components(&all, case.recipes.clone(), &["infinilm=false".into()]).unwrap();
            assert!(
                without
                    .iter()
                    .all(|r| !r.starts_with("infinilm-issue") && r != "infinilm")
            );
        }
    }
}
