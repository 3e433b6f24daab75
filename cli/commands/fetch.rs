//! `hstore fetch`: make the store hold a lockfile's whole closure, then register the lockfile as a gc root. With
//! `--target T`, only the part T's builds read ([`Lockfile::for_target`]: sources limited to other targets left
//! out), under its own root `lockfile-<16 hex>-T`.
//! Per-artifact failures are reported and the run goes on; the exit code is set at the end (1 when any artifact failed).
//! With `--cache CACHE` (or `[caches] substitute`), missing objects come from the caches first, in order.

use std::sync::Arc;

use anyhow::{Result, bail};
use hstore_fetchers::lockfile::Lockfile;

use super::lock::{fetcher, load_mirrors, lockfile_dir, register_root, runtime};
use crate::args::FetchArgs;
use crate::printer::{ExitStatus, Printer};
use crate::reporter::ProgressReporter;
use crate::settings::GlobalSettings;

pub fn run(args: &FetchArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let whole = Lockfile::load(&args.lockfile)?;
    let lockfile = match &args.target {
        Some(target) => whole.for_target(target),
        None => whole.clone(),
    };
    let dir = lockfile_dir(&args.lockfile);
    let mirrors = load_mirrors(&args.mirror, Some(&dir))?;
    let reporter = Arc::new(ProgressReporter::new(printer, global.verbose));
    let caches = super::cache::substitutes(&args.caches, global)?;
    let (store, fetcher) = fetcher(
        global,
        mirrors,
        args.offline,
        args.max_unpacked_size,
        Arc::clone(&reporter),
    )?;
    // Closures, not roots: a tree whose blob `verify --repair` dropped is incomplete, and fetching it again (from the
    // network, or from git's or the fetchers' local state offline) restores the blob.
    let errors = if lockfile
        .artifacts
        .iter()
        .all(|a| store.closure_complete(&a.address()).unwrap_or(false))
    {
        // Warm path: everything is there; no runtime, no network, no hashing.
        Vec::new()
    } else {
        let runtime = runtime()?;
        if !caches.is_empty() {
            // Caches first (`--cache`, in order), upstream for the rest.
            let wanted: Vec<_> = lockfile
                .artifacts
                .iter()
                .map(hstore_fetchers::lockfile::Artifact::address)
                .collect();
            super::cache::substitute_objects(&caches, &store, &wanted, &runtime, printer);
        }
        runtime.block_on(fetcher.fetch(&lockfile, &dir))
    };
    reporter.finish();
    if !errors.is_empty() {
        for error in &errors {
            printer.item_error(error);
        }
        bail!(
            "{} of {} artifacts of `{}` could not be fetched",
            errors.len(),
            lockfile.artifacts.len(),
            args.lockfile.display()
        );
    }
    let root = register_root(&store, &args.lockfile, &whole, args.target.as_deref())?;
    printer.status(
        "Fetched",
        format!(
            "{} artifacts of `{}`{} ({} new, {} bytes downloaded); gc root `{root}`",
            lockfile.artifacts.len(),
            args.lockfile.display(),
            args.target
                .as_deref()
                .map_or_else(String::new, |target| format!(" for target `{target}`")),
            reporter.artifacts_added(),
            reporter.bytes_downloaded()
        ),
    );
    Ok(ExitStatus::Success)
}
