//! `hstore build` and `hstore log`: turn a recipe, a target and the lockfile into a [`BuildPlan`] and run it.
//!
//! This module only translates: recipe sources → locked artifacts → input shapes; `[targets.T]` → host paths, tools and
//! env. Keying, sandboxing and recording live in `hstore_sandbox::build`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hstore_fetchers::lockfile::{Artifact, Lockfile};
use hstore_fetchers::recipe::{Recipe, SourceSpec};
use hstore_sandbox::build::{
    BuildOptions, BuildPlan, GitReplacement, Input, InputShape, VendoredCrate, build_prepared,
    find_record, prepare,
};
use hstore_store::Store;
use serde::Deserialize;

use crate::args::{BuildArgs, LogArgs};
use crate::commands::store::{open_store, parse_address};
use crate::printer::{ExitStatus, Printer};
use crate::settings::GlobalSettings;

/// `recipes/cases/<NAME>.toml`: a deployment preset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentCase {
    case: CaseTable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseTable {
    /// Recipes to build.
    recipes: Vec<String>,
    /// The target.
    target: String,
    /// Where to install `bin/` (optional).
    install_path: Option<PathBuf>,
    /// What it is for, for people.
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for people reading the case file")]
    description: String,
}

pub fn run(mut args: BuildArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    if let Some(case_name) = &args.deployment_case {
        let case_path = args
            .inputs
            .recipes_dir
            .join("cases")
            .join(format!("{case_name}.toml"));
        let text = std::fs::read_to_string(&case_path)
            .with_context(|| format!("failed to read deployment case `{}`", case_path.display()))?;
        let case: DeploymentCase = toml::from_str(&text)
            .with_context(|| format!("invalid deployment case `{}`", case_path.display()))?;
        if args.recipe.is_empty() {
            args.recipe = case.case.recipes;
        }
        args.target.get_or_insert(case.case.target);
        if args.install_path.is_none() {
            args.install_path = case.case.install_path;
        }
    }
    let Some(target) = args.target.clone() else {
        bail!("no target given: pass `--target NAME` (or `--deployment-case NAME`)");
    };
    let store = std::sync::Arc::new(open_store(global)?);
    let caches = super::cache::build_caches(
        &args.caches,
        &args.trust,
        args.push.as_deref(),
        args.sign.as_deref(),
        global,
    )?;
    let recipes = select_recipes(&args.inputs.recipes_dir, &args.recipe)?;
    let lockfile = Lockfile::load(&args.inputs.lockfile)?;
    let helper_exe = std::env::current_exe()
        .context("cannot find the hstore executable to run the sandbox helper")?;
    // Everything that can fail before a build starts is checked for every recipe first: a command building several
    // recipes must not fail on the last one's missing input after building the others for an hour.
    let mut plans = Vec::with_capacity(recipes.len());
    for recipe in &recipes {
        let plan = plan(recipe, &target, &lockfile, &args.inputs.lockfile)?;
        let prepared = prepare(&store, &plan)
            .with_context(|| format!("cannot build `{}` for target `{target}`", recipe.name))?;
        plans.push((plan, prepared));
    }
    let mut status = ExitStatus::Success;
    for (recipe, (plan, prepared)) in recipes.iter().zip(plans) {
        printer.status("Building", format!("{} for target {}", recipe.name, target));
        let options = BuildOptions {
            helper_exe: helper_exe.clone(),
            check: args.check,
        };
        let key = prepared.key;
        if !args.check && find_record(&store, &key)?.is_none() {
            // `--cache`: a trusted record and its output make the build below a cache hit.
            super::cache::substitute_build(
                &caches.substitutes,
                &caches.trusted,
                &store,
                &key,
                printer,
            )?;
        }
        let outcome = build_prepared(&store, &plan, prepared, &options)
            .with_context(|| format!("failed to build `{}` for target `{target}`", recipe.name))?;
        if let Some((cache, signer)) = &caches.push {
            super::cache::push_build(cache, signer.clone(), &store, &key, printer)?;
        }
        let output = outcome.record.output;
        if let Some(check) = &outcome.check {
            if check.differences.is_empty() {
                printer.status(
                    "Checked",
                    format!("{} is reproducible ({output})", recipe.name),
                );
            } else {
                printer.warn(format!(
                    "{} is not reproducible: recorded {} but the rebuild gave {}; differing files:",
                    recipe.name, check.recorded, check.rebuilt
                ));
                for difference in &check.differences {
                    printer.warn(format!("  {difference}"));
                }
                status = ExitStatus::Failure;
            }
        } else if outcome.cached {
            printer.status(
                "Fresh",
                format!("{} (build key {})", recipe.name, outcome.record.key),
            );
        } else {
            printer.status("Built", format!("{} → {output}", recipe.name));
        }
        writeln!(std::io::stdout().lock(), "{output}")?;
        if let Some(link) = &args.out_link {
            let link = if recipes.len() > 1 {
                PathBuf::from(format!("{}-{}", link.display(), recipe.name))
            } else {
                link.clone()
            };
            out_link(&store, &output, &link)?;
            printer.status("Linked", format!("{} → {output}", link.display()));
        }
        if let Some(dir) = &args.install_path {
            let installed = install_bin(&store, &output, dir)?;
            printer.status(
                "Installed",
                format!("{installed} programs into {}", dir.display()),
            );
        }
    }
    Ok(status)
}

/// `hstore log`: print a recorded build's log, by recipe + target or by key/output address.
pub fn log(args: &LogArgs, global: &GlobalSettings) -> Result<ExitStatus> {
    let store = open_store(global)?;
    let record = if let Some(address) = args.what.as_deref().filter(|w| w.starts_with("b3:")) {
        let wanted = parse_address(address)?;
        let mut found = None;
        for key in store.list_meta(hstore_sandbox::build::BUILD_NAMESPACE)? {
            let Some(record) = store.get_meta::<hstore_sandbox::build::BuildRecord>(
                hstore_sandbox::build::BUILD_NAMESPACE,
                &key,
            )?
            else {
                continue;
            };
            if record.key == wanted || record.output == wanted {
                found = Some(record);
                break;
            }
        }
        found.with_context(|| format!("no recorded build has key or output {wanted}"))?
    } else {
        let Some(target) = &args.target else {
            bail!("pass `--target NAME` with a recipe name, or a build key / output address");
        };
        let names: Vec<String> = args.what.iter().cloned().collect();
        let recipes = select_recipes(&args.inputs.recipes_dir, &names)?;
        let [recipe] = recipes.as_slice() else {
            bail!("several recipes build; name one");
        };
        let lockfile = Lockfile::load(&args.inputs.lockfile)?;
        let plan = plan(recipe, target, &lockfile, &args.inputs.lockfile)?;
        let fingerprints = hstore_sandbox::build::fingerprints(&plan.host_paths, &plan.host_tools)?;
        let key = plan.key(&fingerprints);
        find_record(&store, &key)?.with_context(|| {
            format!(
                "`{}` has not been built for target `{target}` with these inputs",
                recipe.name
            )
        })?
    };
    let mut blob = store.blob(&record.log)?;
    std::io::copy(&mut blob.reader, &mut std::io::stdout().lock())?;
    Ok(ExitStatus::Success)
}

/// The recipes to build: those named, or every recipe with a `[build]` section.
fn select_recipes(dir: &Path, names: &[String]) -> Result<Vec<Recipe>> {
    let all = Recipe::load_dir(dir)?;
    if names.is_empty() {
        let buildable: Vec<Recipe> = all
            .into_iter()
            .filter(|recipe| recipe.build.is_some())
            .collect();
        if buildable.is_empty() {
            bail!("no recipe in `{}` has a [build] section", dir.display());
        }
        return Ok(buildable);
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|recipe| &recipe.name == name)
                .cloned()
                .with_context(|| {
                    let known: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                    format!(
                        "no recipe named `{name}` in `{}` (recipes: {})",
                        dir.display(),
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Expands a leading `~/` (and `~/` after `:` in PATH-like values) to the invoking user's home.
fn expand_home(value: &str) -> String {
    let Some(home) = std::env::var_os("HOME").map(|h| h.to_string_lossy().into_owned()) else {
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

/// Translates one recipe + target + lockfile into a plan. Fails before anything runs on: unknown target, recipe
/// without `[build]`, a recipe the lockfile does not cover, or a source whose table changed since the lock.
fn plan(
    recipe: &Recipe,
    target: &str,
    lockfile: &Lockfile,
    lockfile_path: &Path,
) -> Result<BuildPlan> {
    let Some(build_section) = &recipe.build else {
        bail!(
            "recipe `{}` (`{}`) has no [build] section",
            recipe.name,
            recipe.file.display()
        );
    };
    let Some(target_spec) = recipe.targets.get(target) else {
        let known: Vec<&str> = recipe.targets.keys().map(String::as_str).collect();
        bail!(
            "recipe `{}` has no target `{target}`; its targets are: {}",
            recipe.name,
            if known.is_empty() {
                "(none)".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let stale = || {
        format!(
            "lockfile `{}` does not match recipe `{}`; run `hstore lock` on a connected machine",
            lockfile_path.display(),
            recipe.name
        )
    };
    let locked = lockfile.recipe(&recipe.name).with_context(stale)?;
    let mut inputs = Vec::new();
    for (name, spec) in &recipe.sources {
        let source = locked
            .sources
            .iter()
            .find(|source| &source.name == name && &source.spec == spec)
            .with_context(|| format!("{}: source `{name}` changed or is missing", stale()))?;
        let artifacts: Vec<&Artifact> = source
            .artifacts
            .iter()
            .map(|id| lockfile.artifact(id).with_context(stale))
            .collect::<Result<_>>()?;
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
                let [artifact] = artifacts.as_slice() else {
                    bail!(stale())
                };
                let file_name = url
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                    .unwrap_or("download");
                InputShape::File {
                    digest: artifact.address(),
                    file_name: file_name.to_owned(),
                }
            }
            _ => {
                let [artifact] = artifacts.as_slice() else {
                    bail!(stale())
                };
                InputShape::Tree(artifact.address())
            }
        };
        inputs.push(Input {
            name: name.clone(),
            shape,
        });
    }
    let mut env: BTreeMap<String, String> = build_section.env.clone();
    for (key, value) in &target_spec.env {
        env.insert(key.clone(), expand_home(value));
    }
    Ok(BuildPlan {
        recipe: recipe.name.clone(),
        target: target.to_owned(),
        script: build_section.script.clone(),
        env,
        inputs,
        host_paths: target_spec
            .host_paths
            .iter()
            .map(|path| PathBuf::from(expand_home(&path.to_string_lossy())))
            .collect(),
        host_tools: target_spec
            .host_tools
            .iter()
            .map(|line| {
                line.split_whitespace()
                    .map(expand_home)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
    })
}

/// The Cargo.lock `source` of crates.io packages.
const CRATES_IO_SOURCE: &str = "registry+https://github.com/rust-lang/crates.io-index";

fn vendored_crate(artifact: &Artifact) -> Option<VendoredCrate> {
    let Artifact::Crate {
        name,
        version,
        source,
        address,
        ..
    } = artifact
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

/// Points `link` at the output's read-only materialized copy (like Nix's `result`); replaces an old symlink only.
fn out_link(store: &Store, output: &hstore_store::Digest, link: &Path) -> Result<()> {
    let target = store.materialized_tree(output)?;
    if let Ok(metadata) = std::fs::symlink_metadata(link) {
        if !metadata.file_type().is_symlink() {
            bail!(
                "`{}` exists and is not a symlink; refusing to replace it",
                link.display()
            );
        }
        std::fs::remove_file(link)
            .with_context(|| format!("failed to replace `{}`", link.display()))?;
    }
    std::os::unix::fs::symlink(&target, link)
        .with_context(|| format!("failed to create `{}`", link.display()))
}

/// Copies the output's `bin/*` into `dir` (mode 0755); returns how many files were installed.
fn install_bin(store: &Store, output: &hstore_store::Digest, dir: &Path) -> Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let tree = store.materialized_tree(output)?;
    let bin = tree.join("bin");
    if !bin.is_dir() {
        bail!("the build output {output} has no `bin/` directory to install");
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut count = 0;
    for entry in
        std::fs::read_dir(&bin).with_context(|| format!("failed to list `{}`", bin.display()))?
    {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let dest = dir.join(entry.file_name());
        let temp = dir.join(format!(
            ".{}.hstore-tmp",
            entry.file_name().to_string_lossy()
        ));
        std::fs::copy(entry.path(), &temp)
            .with_context(|| format!("failed to write `{}`", temp.display()))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&temp, &dest)
            .with_context(|| format!("failed to install `{}`", dest.display()))?;
        count += 1;
    }
    Ok(count)
}
