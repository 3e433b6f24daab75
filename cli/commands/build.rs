//! `hstore build` and `hstore log`: arguments in, status lines out. Planning (recipe + target + lockfile → plan),
//! keying, running and recording are `hstore_build`'s; this module only orders the calls and prints.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hstore_build::{
    BUILD_NAMESPACE, BuildOptions, BuildRecord, DeploymentCase, GraphEvent, GraphNode, PlanContext,
    SourceOverride, find_record, install, local_sources, plan_graph, run_graph, select_components,
    select_recipes,
};
use hstore_fetchers::lockfile::Lockfile;
use hstore_fetchers::recipe::Recipe;
use hstore_store::Store;

use crate::args::{BuildArgs, BuildInputs, LogArgs};
use crate::commands::store::{open_store, parse_address};
use crate::printer::{ExitStatus, Printer};
use crate::settings::{GlobalSettings, plan_context};

pub fn run(mut args: BuildArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    if let Some(case_name) = &args.deployment_case {
        let case = DeploymentCase::load(&args.inputs.recipes_dir, case_name)?;
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
    let all = Recipe::load_dir(&args.inputs.recipes_dir)?;
    let selected = select_components(&all, args.recipe.clone(), &args.local.components())?;
    let recipes = select_recipes(&all, &args.inputs.recipes_dir, &selected)?;
    let lockfile = Lockfile::load(&args.inputs.lockfile)?;
    let mut context = plan_context();
    // `--dry-run` only looks: a cached node's key comes from its record, so no host tool runs.
    context.keys_from_records = args.dry_run;
    for local in local_sources(&all, &args.local.overrides())? {
        let (tree, size) = hstore_fetchers::path::add_override_tree(&store, &local.dir)
            .with_context(|| format!("failed to store `{}`", local.dir.display()))?;
        printer.status(
            "Overriding",
            format!(
                "{}.{} with `{}` ({tree}, {})",
                local.recipe,
                local.source,
                local.dir.display(),
                crate::printer::human_bytes(size)
            ),
        );
        context.overrides.insert(
            (local.recipe, local.source),
            SourceOverride {
                dir: local.dir,
                tree,
            },
        );
    }
    // Everything that can fail before a build starts is checked for every node of the graph first: a command
    // building several recipes must not fail on the last one's missing input after building the others for an hour.
    let graph = plan_graph(
        &store,
        &all,
        &recipes,
        &target,
        &lockfile,
        &args.inputs.lockfile,
        &context,
    )
    .with_context(|| format!("cannot build for target `{target}`"))?;
    if args.dry_run {
        let mut stdout = std::io::stdout().lock();
        for (index, node) in graph.nodes.iter().enumerate() {
            let state = if graph.is_cached(&store, index)? {
                "cached"
            } else {
                "will build"
            };
            writeln!(
                stdout,
                "{} {} {} {state}",
                node.recipe, node.target, node.prepared.key
            )?;
        }
        return Ok(ExitStatus::Success);
    }
    let options = BuildOptions {
        helper_exe: std::env::current_exe()
            .context("cannot find the hstore executable to run the sandbox helper")?,
        check: args.check,
        limits: args.limits.overrides(),
        // `--sign` (or `[caches] sign-key`) signs each new record's provenance, as it signs pushed records.
        signer: super::cache::build_signer(args.sign.as_deref(), printer)?,
    };
    if !args.check {
        // `--cache`: every key is known before anything runs, so a trusted record and its output make that node a
        // cache hit below (its dependencies are then not needed, but substituting them too costs only what they lack).
        for node in &graph.nodes {
            let key = node.prepared.key;
            if find_record(&store, &key)?.is_none() {
                super::cache::substitute_build(
                    &caches.substitutes,
                    &caches.trusted,
                    &store,
                    &key,
                    printer,
                )?;
            }
        }
    }
    let mut status = ExitStatus::Success;
    let mut push_error = None;
    let outcomes = run_graph(&store, &graph, &options, args.jobs, |event| match event {
        GraphEvent::Started(node) => {
            printer.status("Building", format!("{} for target {}", node.recipe, node.target));
        }
        GraphEvent::Finished(node, outcome) => {
            let output = outcome.record.output;
            // `--push`: each output and its record go up as soon as that build succeeded, so a later failure in the
            // graph does not lose what was already built.
            if push_error.is_none()
                && let Some((cache, signer)) = &caches.push
                && let Err(error) =
                    super::cache::push_build(cache, signer.clone(), &store, &outcome.record.key, printer)
            {
                push_error = Some(error);
            }
            if let Some(check) = &outcome.check {
                if check.differences.is_empty() {
                    printer.status("Checked", format!("{} is reproducible ({output})", node.recipe));
                } else {
                    printer.warn(format!(
                        "{} is not reproducible: recorded {} but the rebuild gave {}; differing files:",
                        node.recipe, check.recorded, check.rebuilt
                    ));
                    for difference in &check.differences {
                        printer.warn(format!("  {difference}"));
                    }
                    status = ExitStatus::Failure;
                }
            } else if outcome.cached {
                printer.status("Fresh", format!("{} (build key {})", node.recipe, outcome.record.key));
            } else {
                printer.status("Built", format!("{} → {output}", node.recipe));
            }
        }
    })
    .context("build failed")?;
    if let Some(error) = push_error {
        return Err(error.context("failed to push a build to the cache"));
    }
    let requested: Vec<(usize, &GraphNode, &hstore_build::BuildOutcome)> = graph
        .nodes
        .iter()
        .zip(&outcomes)
        .enumerate()
        .filter(|(_, (node, _))| node.requested)
        .map(|(index, (node, outcome))| (index, node, outcome))
        .collect();
    // A requested recipe that is also in another's run-time closure (a deployment case names InfiniCore, and
    // InfiniLM needs it at run time) is installed once.
    let mut installed = std::collections::BTreeSet::new();
    for recipe in &recipes {
        let Some(&(index, node, outcome)) = requested
            .iter()
            .find(|(_, node, _)| node.recipe == recipe.name)
        else {
            continue;
        };
        let output = outcome.record.output;
        writeln!(std::io::stdout().lock(), "{output}")?;
        if let Some(link) = &args.out_link {
            let link = if recipes.len() > 1 {
                PathBuf::from(format!("{}-{}", link.display(), node.recipe))
            } else {
                link.clone()
            };
            out_link(&store, &output, &link)?;
            printer.status("Linked", format!("{} → {output}", link.display()));
        }
        if let Some(dir) = &args.install_path {
            // The run-time closure: what the output links or imports (`runtime = true` sources), dependencies
            // first, then the output itself; build-time tools stay out.
            for member in graph.runtime_closure(index) {
                if !installed.insert(member) {
                    continue;
                }
                let (member_node, member_outcome) = (&graph.nodes[member], &outcomes[member]);
                let report =
                    install(&store, &member_outcome.record.output, dir).with_context(|| {
                        format!(
                            "failed to install `{}` into `{}`",
                            member_node.recipe,
                            dir.display()
                        )
                    })?;
                printer.status(
                    "Installed",
                    format!(
                        "{} ({} files, {} symlinks) into {}",
                        member_node.recipe,
                        report.files,
                        report.symlinks,
                        dir.display()
                    ),
                );
            }
        }
    }
    Ok(status)
}

/// `hstore log`: print a recorded build's log, by recipe + target or by key/output address.
pub fn log(args: &LogArgs, global: &GlobalSettings) -> Result<ExitStatus> {
    let store = open_store(global)?;
    let record = find_build(
        &store,
        args.what.as_deref(),
        args.target.as_deref(),
        &args.inputs,
    )?;
    let mut blob = store.blob(&record.log)?;
    let stdout = std::io::stdout();
    // A log is the build's own bytes: on a terminal its escape sequences would drive the terminal (retitle it,
    // rewrite what is on screen, answer back), so they are shown escaped; piped, the bytes go out as they are.
    if stdout.is_terminal() {
        crate::printer::copy_escaped(&mut blob.reader, &mut stdout.lock())?;
    } else {
        std::io::copy(&mut blob.reader, &mut stdout.lock())?;
    }
    Ok(ExitStatus::Success)
}

/// The recorded builds `what` names (never empty): a `b3:` build key or output address (every record with that key
/// or output), or a recipe name built for `target` with the inputs of `inputs` (its one record).
/// The first recorded build [`recorded_builds`] names (`hstore log`, `hstore sbom`).
pub(crate) fn find_build(
    store: &Store,
    what: Option<&str>,
    target: Option<&str>,
    inputs: &BuildInputs,
) -> Result<BuildRecord> {
    recorded_builds(store, what, target, inputs)?
        .into_iter()
        .next()
        .context("no recorded build")
}

pub(crate) fn recorded_builds(
    store: &Store,
    what: Option<&str>,
    target: Option<&str>,
    inputs: &BuildInputs,
) -> Result<Vec<BuildRecord>> {
    if let Some(address) = what.filter(|what| what.starts_with("b3:")) {
        let wanted = parse_address(address)?;
        let mut found = Vec::new();
        for key in store.list_meta(BUILD_NAMESPACE)? {
            let Some(record) = store.get_meta::<BuildRecord>(BUILD_NAMESPACE, &key)? else {
                continue;
            };
            if record.key == wanted || record.output == wanted {
                found.push(record);
            }
        }
        if found.is_empty() {
            bail!("no recorded build has key or output {wanted}");
        }
        return Ok(found);
    }
    let Some(target) = target else {
        bail!("pass `--target NAME` with a recipe name, or a build key / output address");
    };
    let names: Vec<String> = what.iter().map(|name| (*name).to_owned()).collect();
    let all = Recipe::load_dir(&inputs.recipes_dir)?;
    let recipes = select_recipes(&all, &inputs.recipes_dir, &names)?;
    let [recipe] = recipes.as_slice() else {
        bail!("several recipes build; name one");
    };
    let lockfile = Lockfile::load(&inputs.lockfile)?;
    let graph = plan_graph(
        store,
        &all,
        std::slice::from_ref(recipe),
        target,
        &lockfile,
        &inputs.lockfile,
        &PlanContext {
            keys_from_records: true,
            ..plan_context()
        },
    )?;
    let key = graph
        .nodes
        .iter()
        .find(|node| node.requested)
        .map(|node| node.prepared.key)
        .context("the recipe was not planned")?;
    let record = find_record(store, &key)?.with_context(|| {
        format!(
            "`{}` has not been built for target `{target}` with these inputs",
            recipe.name
        )
    })?;
    Ok(vec![record])
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
