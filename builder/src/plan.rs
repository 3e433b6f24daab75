//! Planning: recipe + target + lockfile → [`BuildPlan`] (store addresses and input shapes, nothing left to look up).
//!
//! This is the one place that decides how each locked source kind appears in the sandbox. The `match` over
//! [`SourceSpec`] has one arm per kind and no fallback, so a new source kind is a compile error here until its shape
//! is decided. Everything that can be wrong with the inputs (unknown target, no `[build]`, a source changed since
//! the lock, an artifact the lockfile does not list) fails here, before anything is built. A source whose table
//! limits it to other targets (`targets = [...]`, [`Recipe::uses`]) is no input of the plan at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hstore_model::lockfile::{
    Artifact, CrateArtifact, Lockfile, WheelArtifact, XmakeArchiveArtifact,
};
use hstore_model::recipe::{Recipe, SourceSpec, Target};
use hstore_store::Digest;

use crate::BuildPlan;
use crate::error::{BuildError, Result};
use crate::inputs::{
    GitReplacement, Input, InputShape, VendoredCrate, XmakeArchiveInput, hashed_requirements,
};
use hstore_model::python::TargetPython;

/// The Cargo.lock `source` of crates.io packages.
const CRATES_IO_SOURCE: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// What planning needs from the invoking environment: the user's home, for `~/` in host paths, host tools and
/// target env (read once by the CLI, so this crate never reads the process environment).
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// `$HOME` of the invoking user, if set.
    pub home: Option<String>,
    /// `--override-input RECIPE.SOURCE=DIR`: local trees standing in for locked sources, by (recipe, source).
    pub overrides: BTreeMap<(String, String), SourceOverride>,
    /// The command only looks (`build --dry-run`, `log`): a node with host tools takes its key from a matching
    /// record instead of running them (see [`crate::prepare_from_records`]).
    pub keys_from_records: bool,
}

/// A local directory given on the command line in place of a locked source, already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOverride {
    /// The directory as given (for the log).
    pub dir: PathBuf,
    /// Its stored tree.
    pub tree: Digest,
}

impl PlanContext {
    /// Expands a leading `~/` (and `~/` after `:` in PATH-like values) to the invoking user's home.
    pub fn expand_home(&self, value: &str) -> String {
        let Some(home) = &self.home else {
            return value.to_owned();
        };
        value
            .split(':')
            .map(|part| match part.strip_prefix("~/") {
                Some(rest) => format!("{home}/{rest}"),
                None if part == "~" => home.clone(),
                None => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// The recipes to build, out of `all` (every recipe of `dir`): those named, or every one with a `[build]` section.
pub fn select_recipes(all: &[Recipe], dir: &Path, names: &[String]) -> Result<Vec<Recipe>> {
    if names.is_empty() {
        let buildable: Vec<Recipe> = all
            .iter()
            .filter(|recipe| recipe.build.is_some())
            .cloned()
            .collect();
        if buildable.is_empty() {
            return Err(BuildError::NoBuildableRecipe {
                dir: dir.to_path_buf(),
            });
        }
        return Ok(buildable);
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|recipe| &recipe.name == name)
                .cloned()
                .ok_or_else(|| BuildError::UnknownRecipe {
                    name: name.clone(),
                    dir: dir.to_path_buf(),
                    known: all.iter().map(|r| r.name.clone()).collect(),
                })
        })
        .collect()
}

/// Translates one recipe + target + lockfile into a plan. Fails before anything runs on: unknown target, recipe
/// without `[build]`, a recipe the lockfile does not cover, or a source whose table changed since the lock.
/// `dependency_keys` gives the build key of each `recipe` source (by source name), planned first by
/// [`crate::graph::plan_graph`].
pub fn plan(
    recipe: &Recipe,
    target: &str,
    lockfile: &Lockfile,
    lockfile_path: &Path,
    context: &PlanContext,
    dependency_keys: &BTreeMap<String, Digest>,
) -> Result<BuildPlan> {
    let Some(build_section) = &recipe.build else {
        return Err(BuildError::NoBuildSection {
            recipe: recipe.name.clone(),
            file: recipe.file.clone(),
        });
    };
    let Some(target_spec) = recipe.targets.get(target) else {
        return Err(BuildError::UnknownTarget {
            recipe: recipe.name.clone(),
            target: target.to_owned(),
            known: recipe.targets.keys().cloned().collect(),
        });
    };
    let stale = |source: Option<&str>| BuildError::StaleLockfile {
        lockfile: lockfile_path.to_path_buf(),
        recipe: recipe.name.clone(),
        source_name: source.map(str::to_owned),
    };
    let locked = lockfile.recipe(&recipe.name).ok_or_else(|| stale(None))?;
    let mut inputs = Vec::new();
    let mut notes = Vec::new();
    // A source limited to other targets (`targets = [...]`) is no input of this one: not bound, not keyed.
    for (name, spec) in recipe.sources_for(target) {
        if let Some(local) = context.overrides.get(&(recipe.name.clone(), name.clone())) {
            if !overridable(spec) {
                return Err(BuildError::NotOverridable {
                    recipe: recipe.name.clone(),
                    source_name: name.clone(),
                    kind: spec_kind(spec),
                });
            }
            notes.push(format!(
                "input `{name}` is the local directory `{}` (tree {}), given with --override-input in place of \
                 the locked source",
                local.dir.display(),
                local.tree
            ));
            inputs.push(Input {
                name: name.clone(),
                shape: InputShape::LocalTree(local.tree),
            });
            continue;
        }
        let limited_to: Vec<&String> = recipe
            .source_targets
            .get(name)
            .into_iter()
            .flatten()
            .collect();
        let source = locked
            .sources
            .iter()
            .find(|source| {
                &source.name == name
                    && &source.spec == spec
                    && source.targets.iter().eq(limited_to.iter().copied())
            })
            .ok_or_else(|| stale(Some(name.as_str())))?;
        let artifacts: Vec<&Artifact> = source
            .artifacts
            .iter()
            .map(|id| {
                lockfile
                    .artifact(id)
                    .ok_or_else(|| stale(Some(name.as_str())))
            })
            .collect::<Result<_>>()?;
        let single = || match artifacts.as_slice() {
            [artifact] => Ok(*artifact),
            _ => Err(stale(Some(name.as_str()))),
        };
        let shape = match spec {
            SourceSpec::CargoLock { .. } => InputShape::CargoVendor {
                crates: artifacts
                    .iter()
                    .filter_map(|artifact| vendored_crate(artifact))
                    .collect(),
            },
            SourceSpec::Url {
                unpack: false, url, ..
            } => {
                let file_name = url
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                    .unwrap_or("download");
                InputShape::File {
                    digest: single()?.address(),
                    file_name: file_name.to_owned(),
                }
            }
            SourceSpec::Url { unpack: true, .. }
            | SourceSpec::Git { .. }
            | SourceSpec::Path { .. }
            | SourceSpec::RustToolchain { .. } => InputShape::Tree(single()?.address()),
            // The unpacked root file system; its packages are in the lockfile (and the SBOM), not in the sandbox.
            SourceSpec::Debian(_) => InputShape::Tree(
                artifacts
                    .iter()
                    .find_map(|artifact| match artifact {
                        Artifact::DebianBase(base) => Some(base.address),
                        _ => None,
                    })
                    .ok_or_else(|| stale(Some(name.as_str())))?,
            ),
            SourceSpec::Recipe {
                recipe: dependency,
                target: dependency_target,
                ..
            } => InputShape::Output {
                recipe: dependency.clone(),
                target: dependency_target.as_deref().unwrap_or(target).to_owned(),
                key: *dependency_keys
                    .get(name)
                    .ok_or_else(|| BuildError::DependencyNotBuilt {
                        recipe: dependency.clone(),
                        input: name.clone(),
                    })?,
                output: None,
            },
            SourceSpec::Requirements { targets, .. } => {
                let python = targets
                    .get(target)
                    .and_then(|python| TargetPython::parse(python).ok())
                    .ok_or_else(|| BuildError::NoPythonTarget {
                        recipe: recipe.name.clone(),
                        source_name: name.clone(),
                        target: target.to_owned(),
                    })?;
                wheelhouse(&python.key(), &artifacts)
            }
            SourceSpec::XmakeRequires { xmake, targets, .. } => {
                let resolution = source
                    .xmake
                    .as_ref()
                    .filter(|resolution| resolution.targets.iter().any(|t| t == target))
                    .ok_or_else(|| BuildError::XmakeTargetNotLocked {
                        recipe: recipe.name.clone(),
                        source_name: name.clone(),
                        target: target.to_owned(),
                    })?;
                InputShape::XmakePackages {
                    repo: resolution.repo,
                    archives: artifacts
                        .iter()
                        .filter_map(|artifact| match artifact {
                            Artifact::XmakeArchive(XmakeArchiveArtifact {
                                package,
                                version,
                                target: locked_for,
                                file_name,
                                search_names,
                                address,
                                ..
                            }) if locked_for == target => Some(XmakeArchiveInput {
                                file_name: file_name.clone(),
                                package: package.clone(),
                                version: version.clone(),
                                search_names: search_names.clone(),
                                digest: *address,
                            }),
                            _ => None,
                        })
                        .collect(),
                    host_packages: resolution
                        .host_packages
                        .iter()
                        .filter(|host| host.target == target)
                        .map(|host| {
                            (
                                host.package.clone(),
                                host.version.clone(),
                                host.origin.as_str().to_owned(),
                            )
                        })
                        .collect(),
                    options: targets.get(target).cloned().unwrap_or_default(),
                    xmake_input: xmake.clone(),
                }
            }
        };
        inputs.push(Input {
            name: name.clone(),
            shape,
        });
    }
    let limits = parse_limits(recipe, "build.limits", &build_section.limits)?.then(parse_limits(
        recipe,
        &format!("targets.{target}.limits"),
        &target_spec.limits,
    )?);
    let mut env: BTreeMap<String, String> = build_section.env.clone();
    for (key, value) in &target_spec.env {
        env.insert(key.clone(), context.expand_home(value));
    }
    Ok(BuildPlan {
        recipe: recipe.name.clone(),
        target: target.to_owned(),
        script: build_section.script.clone(),
        env,
        inputs,
        base: recipe.base_for(target).map(str::to_owned),
        host_paths: host_paths(target_spec, context),
        host_tools: host_tools(target_spec, context),
        limits,
        notes,
    })
}

/// A target's `host_paths`, with `~/` expanded to the invoking user's home.
pub(crate) fn host_paths(target: &Target, context: &PlanContext) -> Vec<PathBuf> {
    target
        .host_paths
        .iter()
        .map(|path| PathBuf::from(context.expand_home(&path.to_string_lossy())))
        .collect()
}

/// A target's `host_tools` command lines, with `~/` expanded in each word.
pub(crate) fn host_tools(target: &Target, context: &PlanContext) -> Vec<String> {
    target
        .host_tools
        .iter()
        .map(|line| {
            line.split_whitespace()
                .map(|word| context.expand_home(word))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Whether a source is a tree a local directory can stand in for (`--override-input`): a checkout, a directory, an
/// unpacked download, a toolchain. Crate sets, wheelhouses and other recipes' outputs are not one directory.
pub(crate) fn overridable(spec: &SourceSpec) -> bool {
    match spec {
        SourceSpec::Git { .. }
        | SourceSpec::Path { .. }
        | SourceSpec::Url { unpack: true, .. }
        | SourceSpec::RustToolchain { .. } => true,
        SourceSpec::Url { unpack: false, .. }
        | SourceSpec::CargoLock { .. }
        | SourceSpec::Requirements { .. }
        | SourceSpec::XmakeRequires { .. }
        | SourceSpec::Recipe { .. }
        | SourceSpec::Debian(_) => false,
    }
}

/// A source's kind as a recipe writes it, for messages.
pub(crate) fn spec_kind(spec: &SourceSpec) -> &'static str {
    match spec {
        SourceSpec::Git { .. } => "git",
        SourceSpec::Path { .. } => "path",
        SourceSpec::Url { unpack: true, .. } => "unpacked url",
        SourceSpec::Url { unpack: false, .. } => "url (a single file)",
        SourceSpec::RustToolchain { .. } => "rust_toolchain",
        SourceSpec::CargoLock { .. } => "cargo_lock",
        SourceSpec::Requirements { .. } => "requirements",
        SourceSpec::XmakeRequires { .. } => "xmake_requires",
        SourceSpec::Recipe { .. } => "recipe",
        SourceSpec::Debian(_) => "debian",
    }
}

/// The wheelhouse of a `requirements` source for the target keyed `key` (`cp310-manylinux_2_28_aarch64`): the wheels
/// locked for it, by file name, plus the hashed `requirements.txt`.
fn wheelhouse(key: &str, artifacts: &[&Artifact]) -> InputShape {
    let mut wheels = Vec::new();
    let mut pins = Vec::new();
    for artifact in artifacts {
        if let Artifact::Wheel(WheelArtifact {
            name,
            version,
            filename,
            sha256,
            target,
            address,
            ..
        }) = artifact
            && target == key
        {
            wheels.push((filename.clone(), *address));
            pins.push((name.clone(), version.clone(), sha256.as_str().to_owned()));
        }
    }
    InputShape::Wheelhouse {
        wheels,
        requirements: hashed_requirements(&pins),
    }
}

/// A locked crate as one entry of a vendor directory; `None` for artifacts that are not crates.
fn vendored_crate(artifact: &Artifact) -> Option<VendoredCrate> {
    let Artifact::Crate(CrateArtifact {
        name,
        version,
        source,
        address,
        ..
    }) = artifact
    else {
        return None;
    };
    let git = source.strip_prefix("git+").map(|rest| {
        let without_fragment = source.split('#').next().unwrap_or(source).to_owned();
        let url_part = rest.split('#').next().unwrap_or(rest);
        let (url, query) = url_part.split_once('?').unwrap_or((url_part, ""));
        let reference = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(kind, _)| matches!(*kind, "branch" | "tag" | "rev"))
            .map(|(kind, value)| (kind.to_owned(), value.to_owned()));
        GitReplacement {
            source_id: without_fragment,
            url: url.to_owned(),
            reference,
        }
    });
    // Any other registry (`sparse+…`, `registry+…` but crates.io) needs its own replacement stanza.
    let registry = (git.is_none() && source != CRATES_IO_SOURCE).then(|| source.clone());
    Some(VendoredCrate {
        dir_name: format!("{name}-{version}"),
        tree: *address,
        git,
        registry,
    })
}

/// A recipe's `limits` table, parsed; `table` names it in errors.
fn parse_limits(
    recipe: &Recipe,
    table: &str,
    raw: &hstore_model::recipe::Limits,
) -> Result<hstore_sandbox::LimitOverrides> {
    use hstore_sandbox::limits::{parse_duration_limit, parse_size_limit};
    let invalid = |key: &'static str, reason: String| BuildError::InvalidLimit {
        recipe: recipe.name.clone(),
        file: recipe.file.clone(),
        table: table.to_owned(),
        key,
        reason,
    };
    let duration = |key: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| parse_duration_limit(text).map_err(|reason| invalid(key, reason)))
            .transpose()
    };
    let size = |key: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| parse_size_limit(text).map_err(|reason| invalid(key, reason)))
            .transpose()
    };
    Ok(hstore_sandbox::LimitOverrides {
        timeout: duration("timeout", &raw.timeout)?,
        max_memory: size("max_memory", &raw.max_memory)?,
        max_processes: raw.max_processes,
        max_cpu_time: duration("max_cpu_time", &raw.max_cpu_time)?,
        tmp_size: size("tmp_size", &raw.tmp_size)?,
        max_log_size: size("max_log_size", &raw.max_log_size)?,
        max_output_size: size("max_output_size", &raw.max_output_size)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_at_the_start_of_each_path_element_only() {
        let context = PlanContext {
            home: Some("/home/u".into()),
            ..PlanContext::default()
        };
        assert_eq!(
            context.expand_home("~/a:/b/~/c:~"),
            "/home/u/a:/b/~/c:/home/u"
        );
        assert_eq!(PlanContext::default().expand_home("~/a"), "~/a");
    }
}
