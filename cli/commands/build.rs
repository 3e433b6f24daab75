//! `hstore build` and `hstore log`: arguments in, status lines out. Planning (recipe + target + lockfile → plan),
//! keying, running and recording are `hstore_build`'s; this module only orders the calls and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hstore_build::{
    BUILD_NAMESPACE, BuildOptions, BuildRecord, DeploymentCase, PlanContext, build_prepared,
    find_record, plan, prepare, select_recipes,
};
use hstore_fetchers::lockfile::Lockfile;
use hstore_store::Store;

use crate::args::{BuildArgs, LogArgs};
use crate::commands::store::{open_store, parse_address};
use crate::printer::{ExitStatus, Printer};
use crate::settings::GlobalSettings;

/// The invoking user's home, for `~/` in recipes' host paths.
fn plan_context() -> PlanContext {
    PlanContext {
        home: std::env::var_os("HOME").map(|home| home.to_string_lossy().into_owned()),
    }
}

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
    let recipes = select_recipes(&args.inputs.recipes_dir, &args.recipe)?;
    let lockfile = Lockfile::load(&args.inputs.lockfile)?;
    let helper_exe = std::env::current_exe()
        .context("cannot find the hstore executable to run the sandbox helper")?;
    // Everything that can fail before a build starts is checked for every recipe first: a command building several
    // recipes must not fail on the last one's missing input after building the others for an hour.
    let context = plan_context();
    let mut plans = Vec::with_capacity(recipes.len());
    for recipe in &recipes {
        let plan = plan(recipe, &target, &lockfile, &args.inputs.lockfile, &context)?;
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
        for key in store.list_meta(BUILD_NAMESPACE)? {
            let Some(record) = store.get_meta::<BuildRecord>(BUILD_NAMESPACE, &key)? else {
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
        let plan = plan(
            recipe,
            target,
            &lockfile,
            &args.inputs.lockfile,
            &plan_context(),
        )?;
        let fingerprints = hstore_build::fingerprints(&plan.host_paths, &plan.host_tools)?;
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
