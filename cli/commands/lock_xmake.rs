//! `hstore lock`'s second pass: the `xmake_requires` sources that the first pass could not keep (new, changed, their
//! project or xmake-repo tree changed, or `--update`). Evaluating them needs the pinned xmake, which is a build
//! output, and the sandbox, so it happens here, where the CLI may use both `hstore-build` and `hstore-fetchers`
//! (which never depend on each other; ARCHITECTURE.md, "Crates"):
//!
//! 1. build the source's `xmake` recipe through `hstore-build`'s graph runner against the first pass's lockfile (a
//!    cache hit after the first time);
//! 2. per target, run `hstore_fetchers::xmake::PROBE_SCRIPT` under that xmake in the sandbox, network cut, against
//!    the locked xmake-repo and project trees (`hstore_build::xmake_probe_plan`; keyed and recorded like a build);
//! 3. hand the reports to `hstore_fetchers::xmake::lock_source`, which pins, downloads, verifies and stores the
//!    archives and records the host packages.
//!
//! A target whose declared host paths are absent on this machine (a `cuda` target without `/usr/local/cuda`) is not
//! probed: lock says so, the source records the targets it did lock, and `hstore build --target cuda` fails naming
//! the source and target with a hint to lock where the SDK exists. Locking the other targets on a CPU-only machine
//! stays possible that way.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hstore_build::{
    BuildOptions, PlanContext, XmakeProbe, plan_graph, run_graph, xmake_probe_plan,
};
use hstore_fetchers::Fetcher;
use hstore_fetchers::lockfile::{Artifact, Lockfile};
use hstore_fetchers::recipe::{Recipe, SourceSpec};
use hstore_fetchers::resolve::read_text_in_tree;
use hstore_fetchers::xmake::{PROBE_SCRIPT, ProbeReport};
use hstore_store::{Digest, Store};

use crate::printer::Printer;

/// One `xmake_requires` source waiting for its probe.
struct Pending<'a> {
    recipe: &'a Recipe,
    source: &'a str,
    project: Digest,
    repo: Digest,
    xmake_recipe: &'a str,
    xmake_target: Option<&'a str>,
    targets: Vec<&'a str>,
}

/// The locked tree of source `name` of `recipe` in `lockfile` (one tree artifact).
fn locked_tree(lockfile: &Lockfile, recipe: &str, name: &str) -> Option<Digest> {
    let source = lockfile
        .recipe(recipe)?
        .sources
        .iter()
        .find(|source| source.name == name)?;
    match source.artifacts.as_slice() {
        [id] => lockfile.artifact(id).map(Artifact::address),
        _ => None,
    }
}

/// Probes and locks every `xmake_requires` source of `lockfile` that has no resolution yet; see the module docs.
/// `lockfile` is the first pass's result and is completed in place.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site: the lock command's state"
)]
pub fn lock_pending(
    recipes: &[Recipe],
    lockfile: &mut Lockfile,
    lockfile_path: &Path,
    store: &Arc<Store>,
    fetcher: &Fetcher,
    runtime: &tokio::runtime::Runtime,
    printer: &Printer,
    errors: &mut Vec<hstore_fetchers::Error>,
) -> Result<()> {
    let mut pending = Vec::new();
    for recipe in recipes {
        for (name, spec) in &recipe.sources {
            let SourceSpec::XmakeRequires {
                project,
                repo,
                xmake,
                targets,
            } = spec
            else {
                continue;
            };
            let resolved = lockfile
                .recipe(&recipe.name)
                .and_then(|locked| locked.sources.iter().find(|source| &source.name == name))
                .is_some_and(|source| source.xmake.is_some());
            if resolved {
                continue;
            }
            let tree = |source: &str| {
                locked_tree(lockfile, &recipe.name, source).with_context(|| {
                    format!(
                        "cannot probe `{}.{name}`: source `{source}` was not locked to a tree",
                        recipe.name
                    )
                })
            };
            let Some(SourceSpec::Recipe {
                recipe: xmake_recipe,
                target: xmake_target,
            }) = recipe.sources.get(xmake)
            else {
                bail!(
                    "cannot probe `{}.{name}`: source `{xmake}` is not a `recipe` source",
                    recipe.name
                );
            };
            pending.push(Pending {
                recipe,
                source: name,
                project: tree(project)?,
                repo: tree(repo)?,
                xmake_recipe,
                xmake_target: xmake_target.as_deref(),
                targets: targets.keys().map(String::as_str).collect(),
            });
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let context = super::build::plan_context();
    let options = BuildOptions {
        helper_exe: std::env::current_exe()
            .context("cannot find the hstore executable to run the sandbox helper")?,
        check: false,
        limits: hstore_sandbox::LimitOverrides::default(),
        signer: None,
    };
    let script = store
        .add_bytes(PROBE_SCRIPT.as_bytes())
        .context("failed to store the xmake probe script")?;
    // (xmake recipe, target) → (key, output): one build per xmake, whatever the number of sources and targets.
    let mut built: BTreeMap<(String, String), (Digest, Digest)> = BTreeMap::new();
    for source in pending {
        let label = format!("{}.{}", source.recipe.name, source.source);
        let mut reports = Vec::new();
        for target in &source.targets {
            let spec = &source.recipe.targets[*target];
            let missing = spec
                .host_paths
                .iter()
                .map(|path| context.expand_home(&path.to_string_lossy()))
                .find(|path| !Path::new(path).exists());
            if let Some(path) = missing {
                printer.warn(format!(
                    "not probing target `{target}` of `{label}`: its host path `{path}` is absent on this machine, so \
                     its xmake packages are not locked (lock on a machine that has it to build `{target}`)"
                ));
                continue;
            }
            let xmake_target = source.xmake_target.unwrap_or(target);
            let slot = (source.xmake_recipe.to_owned(), xmake_target.to_owned());
            let (xmake_key, xmake_output) = if let Some(found) = built.get(&slot) {
                *found
            } else {
                let found = build_xmake(
                    recipes,
                    source.xmake_recipe,
                    xmake_target,
                    lockfile,
                    lockfile_path,
                    store,
                    &options,
                    &context,
                    printer,
                )
                .with_context(|| format!("cannot build the xmake that evaluates `{label}`"))?;
                built.insert(slot, found);
                found
            };
            let plan = xmake_probe_plan(
                &XmakeProbe {
                    recipe: source.recipe,
                    source: source.source,
                    target,
                    project: source.project,
                    repo: source.repo,
                    xmake: (source.xmake_recipe, xmake_target, xmake_key, xmake_output),
                    script,
                },
                &context,
            )?;
            let outcome = hstore_build::build(store, &plan, &options).with_context(|| {
                format!("the xmake probe of `{label}` for target `{target}` failed")
            })?;
            printer.status(
                if outcome.cached { "Fresh" } else { "Probed" },
                format!("xmake packages of `{label}` for target `{target}`"),
            );
            let text = read_text_in_tree(
                store,
                &outcome.record.output,
                "report.json",
                &format!("the output of the xmake probe of `{label}`"),
            )?
            .with_context(|| {
                format!("the xmake probe of `{label}` for target `{target}` wrote no report.json")
            })?;
            let report = ProbeReport::parse(&text, Path::new("report.json"))
                .with_context(|| format!("the xmake probe of `{label}` for target `{target}`"))?;
            reports.push(((*target).to_owned(), report));
        }
        let (artifacts, resolution, mut source_errors) =
            runtime.block_on(hstore_fetchers::xmake::lock_source(
                fetcher,
                &reports,
                source.project,
                source.repo,
                &[],
            ));
        for error in source_errors.drain(..) {
            errors.push(error.context(format!("failed to lock source `{label}`")));
        }
        if let Some(locked) = lockfile
            .recipes
            .iter_mut()
            .find(|locked| locked.name == source.recipe.name)
            .and_then(|locked| locked.sources.iter_mut().find(|s| s.name == source.source))
        {
            locked.artifacts = artifacts.iter().map(|a| a.id().to_owned()).collect();
            locked.xmake = resolution;
        }
        lockfile.artifacts.extend(artifacts);
    }
    lockfile.normalize();
    Ok(())
}

/// Builds (or finds built) the `xmake` recipe for `target` against the first pass's lockfile; returns its key and
/// output.
#[expect(
    clippy::too_many_arguments,
    reason = "the lock command's state, passed through"
)]
fn build_xmake(
    recipes: &[Recipe],
    name: &str,
    target: &str,
    lockfile: &Lockfile,
    lockfile_path: &Path,
    store: &Store,
    options: &BuildOptions,
    context: &PlanContext,
    printer: &Printer,
) -> Result<(Digest, Digest)> {
    let Some(recipe) = recipes.iter().find(|recipe| recipe.name == name) else {
        bail!("no recipe named `{name}`");
    };
    let graph = plan_graph(
        store,
        recipes,
        std::slice::from_ref(recipe),
        target,
        lockfile,
        lockfile_path,
        context,
    )?;
    let outcomes = run_graph(store, &graph, options, 1, |event| match event {
        hstore_build::GraphEvent::Started(node) => {
            printer.status(
                "Building",
                format!("{} for target {}", node.recipe, node.target),
            );
        }
        hstore_build::GraphEvent::Finished(node, outcome) => {
            if !outcome.cached {
                printer.status(
                    "Built",
                    format!("{} → {}", node.recipe, outcome.record.output),
                );
            }
        }
    })?;
    graph
        .nodes
        .iter()
        .zip(&outcomes)
        .find(|(node, _)| node.requested)
        .map(|(_, outcome)| (outcome.record.key, outcome.record.output))
        .context("the xmake recipe was not planned")
}
