//! `hstore lock`: recipes → lockfile.json in one pass (`Fetcher::lock`), fetching into the store while resolving.
//! This module is wiring: it resolves the settings, constructs the fetcher and the build crate's
//! [`XmakeEvaluator`] (which `xmake_requires` sources need: the pinned xmake runs in the sandbox), passes both to
//! the lock, prints progress, and writes or checks the lockfile. Also the pieces `fetch` shares: mirror loading, the
//! async runtime, the fetcher and the lockfile's gc root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hstore_build::{BuildOptions, GraphEvent, ProbeEvent, XmakeEvaluator};
use hstore_fetchers::archive::MaxUnpackedSize;
use hstore_fetchers::http::DownloadOptions;
use hstore_fetchers::lockfile::Lockfile;
use hstore_fetchers::mirrors::Mirrors;
use hstore_fetchers::recipe::Recipe;
use hstore_fetchers::{Fetcher, FetcherOptions, Update};
use hstore_sandbox::limits::SizeLimit;
use hstore_store::Store;

use crate::args::LockArgs;
use crate::error::CliError;
use crate::printer::{ExitStatus, Printer, Severity};
use crate::reporter::ProgressReporter;
use crate::settings::{GlobalSettings, plan_context};

/// The config file holding `[mirrors]`.
pub const CONFIG_FILE: &str = "hstore.toml";

/// `--mirror` rules, then `[mirrors]` from `hstore.toml` in the current directory, then in `extra_dir` (the
/// recipes directory's parent, or the lockfile's directory).
pub fn load_mirrors(specs: &[String], extra_dir: Option<&Path>) -> Result<Mirrors> {
    let mut mirrors = Mirrors::new();
    for spec in specs {
        mirrors.add_spec(spec)?;
    }
    mirrors.add_config_file(Path::new(CONFIG_FILE))?;
    if let Some(dir) = extra_dir {
        let candidate = dir.join(CONFIG_FILE);
        let same = candidate.canonicalize().ok() == Path::new(CONFIG_FILE).canonicalize().ok();
        if !same {
            mirrors.add_config_file(&candidate)?;
        }
    }
    Ok(mirrors)
}

/// A multi-threaded runtime for one command (main stays synchronous: only the commands that download start one).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    // The store hashes trees on rayon's pool; with many trees added at once a worker that waits in `join` steals
    // other trees' jobs and nests them on its stack, which overflows rayon's 2 MiB default. 16 MiB is plenty.
    // Failing means the pool already exists (another command set it up), which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(16 << 20)
        .build_global();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Opens the store and builds a fetcher over it.
pub fn fetcher(
    global: &GlobalSettings,
    mirrors: Mirrors,
    offline: bool,
    max_unpacked_size: Option<SizeLimit>,
    reporter: Arc<ProgressReporter>,
) -> Result<(Arc<Store>, Fetcher)> {
    let store = Arc::new(super::store::open_store(global)?);
    let options = FetcherOptions {
        cache_dir: global.cache.clone(),
        mirrors,
        offline,
        download: DownloadOptions {
            retry_delay: global.retry_delay,
            ..DownloadOptions::default()
        },
        uv: global.uv.clone(),
        rustup_home: crate::settings::rustup_home(),
        max_unpacked_size: match max_unpacked_size {
            None => MaxUnpackedSize::Default,
            Some(SizeLimit(Some(bytes))) => MaxUnpackedSize::Bytes(bytes),
            Some(SizeLimit(None)) => MaxUnpackedSize::Unlimited,
        },
    };
    let fetcher = Fetcher::new(Arc::clone(&store), options, reporter)
        .context("failed to set up downloads")?;
    Ok((store, fetcher))
}

/// Registers `lockfile` (its bytes stored as a blob too) as a gc root named after its hash; with `target`, only the
/// part that target's builds read ([`Lockfile::target_gc_root`]).
pub fn register_root(
    store: &Store,
    path: &Path,
    lockfile: &Lockfile,
    target: Option<&str>,
) -> Result<String> {
    let bytes = lockfile.to_json();
    let blob = store
        .add_bytes(&bytes)
        .context("failed to store the lockfile")?;
    let description = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let (name, root) = match target {
        Some(target) => lockfile.target_gc_root(target, &bytes, blob, &description),
        None => lockfile.gc_root(&bytes, blob, description),
    };
    store
        .set_root(&name, &root)
        .with_context(|| format!("failed to register gc root `{name}`"))?;
    store.flush().context("failed to flush the store")?;
    Ok(name)
}

/// The directory a lockfile lives in (for `path` sources).
pub fn lockfile_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn run(args: &LockArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let recipes = Recipe::load_dir(&args.recipes)?;
    let previous = if args.lockfile.exists() {
        Some(Lockfile::load(&args.lockfile)?)
    } else {
        None
    };
    let recipes_parent = args
        .recipes
        .canonicalize()
        .ok()
        .and_then(|dir| dir.parent().map(Path::to_path_buf));
    let mirrors = load_mirrors(&args.mirror, recipes_parent.as_deref())?;
    let update = match args.update.as_deref() {
        None => Update::Nothing,
        Some("") => Update::Everything,
        Some(name) => Update::Sources(vec![name.to_owned()]),
    };
    // Before anything is fetched: a mistyped name would otherwise keep every pin and say nothing.
    update.check(&recipes)?;
    let reporter = Arc::new(ProgressReporter::new(printer, global.verbose));
    let (store, fetcher) = fetcher(
        global,
        mirrors,
        args.offline,
        args.max_unpacked_size,
        Arc::clone(&reporter),
    )?;
    let dir = lockfile_dir(&args.lockfile);
    let runtime = runtime()?;
    // `xmake_requires` sources are evaluated in the sandbox by the build crate, through the fetchers' trait.
    let context = plan_context();
    let build_options = BuildOptions {
        helper_exe: std::env::current_exe()
            .context("cannot find the hstore executable to run the sandbox helper")?,
        check: false,
        limits: hstore_sandbox::LimitOverrides::default(),
        signer: None,
    };
    let on_event = |event: ProbeEvent<'_>| report_probe_event(printer, &event);
    let evaluator =
        XmakeEvaluator::new(&store, &args.lockfile, &context, &build_options, &on_event);
    let (lockfile, errors) =
        runtime.block_on(fetcher.lock(&recipes, previous.as_ref(), &dir, &update, &evaluator));
    reporter.finish();
    if !errors.is_empty() {
        for error in &errors {
            printer.item_error(error);
        }
        bail!(
            "failed to lock {} source(s) or artifact(s); `{}` was not written",
            errors.len(),
            args.lockfile.display()
        );
    }
    let bytes = lockfile.to_json();
    let old_bytes = std::fs::read(&args.lockfile).ok();
    let changed = old_bytes.as_deref() != Some(bytes.as_slice());
    if args.locked && changed {
        let changes = match &previous {
            Some(previous) => lockfile_changes(previous, &lockfile),
            None => vec!["(the lockfile does not exist)".to_owned()],
        };
        // A failed check (exit 1), printed as an error even under `-q`: a silent exit 1 explains nothing in CI.
        printer.report(
            Severity::Error,
            &CliError::StaleLockfile {
                lockfile: args.lockfile.clone(),
                changes,
            },
        );
        return Ok(ExitStatus::Failure);
    }
    if changed {
        lockfile
            .save(&args.lockfile)
            .with_context(|| format!("failed to write `{}`", args.lockfile.display()))?;
    }
    register_root(&store, &args.lockfile, &lockfile, None)?;
    printer.status(
        if changed { "Locked" } else { "Unchanged" },
        format!(
            "{} artifacts of {} recipe(s) in `{}` ({} fetched)",
            lockfile.artifacts.len(),
            lockfile.recipes.len(),
            args.lockfile.display(),
            reporter.artifacts_added()
        ),
    );
    Ok(ExitStatus::Success)
}

/// Prints what the xmake evaluator does: the pinned xmake's build, then each probe.
fn report_probe_event(printer: &Printer, event: &ProbeEvent<'_>) {
    match event {
        ProbeEvent::Graph(GraphEvent::Started(node)) => printer.status(
            "Building",
            format!("{} for target {}", node.recipe, node.target),
        ),
        ProbeEvent::Graph(GraphEvent::Finished(node, outcome)) => {
            if !outcome.cached {
                printer.status(
                    "Built",
                    format!("{} → {}", node.recipe, outcome.record.output),
                );
            }
        }
        ProbeEvent::Probed {
            source_name,
            target,
            cached,
        } => printer.status(
            if *cached { "Fresh" } else { "Probed" },
            format!("xmake packages of `{source_name}` for target `{target}`"),
        ),
    }
}

/// A diff at the level of sources and artifacts, one line per change: `- KIND KEY VALUE` old, `+ KIND KEY VALUE` new.
fn lockfile_changes(old: &Lockfile, new: &Lockfile) -> Vec<String> {
    let specs = |lock: &Lockfile| -> BTreeMap<String, String> {
        lock.recipes
            .iter()
            .flat_map(|recipe| {
                recipe.sources.iter().map(move |source| {
                    let spec = serde_json::to_string(&source.spec)
                        .unwrap_or_else(|error| format!("(unprintable: {error})"));
                    let value = if source.targets.is_empty() {
                        spec
                    } else {
                        format!("{spec} targets={}", source.targets.join(","))
                    };
                    (format!("{}.{}", recipe.name, source.name), value)
                })
            })
            .collect()
    };
    let artifacts = |lock: &Lockfile| -> BTreeMap<String, String> {
        lock.artifacts
            .iter()
            .map(|artifact| (artifact.id().to_owned(), artifact.address().to_string()))
            .collect()
    };
    let mut changes = Vec::new();
    for (kind, old_map, new_map) in [
        ("source", specs(old), specs(new)),
        ("artifact", artifacts(old), artifacts(new)),
    ] {
        for (key, value) in &old_map {
            match new_map.get(key) {
                None => changes.push(format!("- {kind} {key} {value}")),
                Some(new_value) if new_value != value => {
                    changes.push(format!("- {kind} {key} {value}"));
                    changes.push(format!("+ {kind} {key} {new_value}"));
                }
                Some(_) => {}
            }
        }
        for (key, value) in &new_map {
            if !old_map.contains_key(key) {
                changes.push(format!("+ {kind} {key} {value}"));
            }
        }
    }
    changes
}
