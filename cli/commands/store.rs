//! `hstore store …`: direct access to the object store. The registry of record kinds it verifies against is
//! [`hstore_build::record_kinds`] (the store itself knows nothing of builds or fetchers).

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use hstore_store::{Digest, LockMode, Permissions, Root, Store};

use crate::args::{RootsCommand, StoreCommand};
use crate::printer::{ExitStatus, Printer};
use crate::settings::GlobalSettings;

/// Opens the store at the configured location for normal (shared) work.
pub fn open_store(global: &GlobalSettings) -> Result<Store> {
    Store::open(&global.store)
        .with_context(|| format!("failed to open the store at `{}`", global.store.display()))
}

/// Parses an address given on the command line.
pub fn parse_address(text: &str) -> Result<Digest> {
    text.parse::<Digest>().with_context(|| {
        format!("`{text}` is not an hstore address (expected `b3:` and 64 lowercase hex digits)")
    })
}

pub fn run(
    command: StoreCommand,
    global: &GlobalSettings,
    printer: &Printer,
) -> Result<ExitStatus> {
    match command {
        StoreCommand::Add { path, root } => add(global, printer, &path, root.as_deref()),
        StoreCommand::Cat { address } => cat(global, &address),
        StoreCommand::Materialize { address, dest } => {
            let store = open_store(global)?;
            let digest = parse_address(&address)?;
            store
                .materialize(&digest, &dest, Permissions::Writable)
                .with_context(|| {
                    format!("failed to materialize {digest} at `{}`", dest.display())
                })?;
            printer.status("Materialized", format!("{digest} at {}", dest.display()));
            Ok(ExitStatus::Success)
        }
        StoreCommand::Dump { address } => {
            let store = open_store(global)?;
            let digest = parse_address(&address)?;
            let stdout = io::stdout().lock();
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout);
            store
                .dump_nar(&digest, &mut out)
                .with_context(|| format!("failed to dump {digest} as a NAR"))?;
            out.flush().context("failed to write to stdout")?;
            Ok(ExitStatus::Success)
        }
        StoreCommand::Ls => {
            let store = open_store(global)?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            for object in store.list_objects()? {
                writeln!(
                    out,
                    "{} {} {}",
                    object.digest,
                    object.format.kind_name(),
                    object.size
                )?;
            }
            out.flush()?;
            Ok(ExitStatus::Success)
        }
        StoreCommand::Verify { repair } => {
            let store = open_store(global)?;
            let report = store.verify_with(repair, Some(&hstore_build::record_kinds()))?;
            for problem in &report.problems {
                printer.warn(problem);
            }
            if report.problems.is_empty() {
                printer.status(
                    "Verified",
                    format!("{} objects, no problems", report.checked),
                );
                Ok(ExitStatus::Success)
            } else if repair {
                printer.status(
                    "Repaired",
                    format!(
                        "removed {} corrupt entries of {} objects; run `hstore fetch` or `hstore import` to restore them",
                        report.repaired, report.checked
                    ),
                );
                Ok(ExitStatus::Failure)
            } else {
                printer.status(
                    "Failed",
                    format!(
                        "{} problems in {} objects",
                        report.problems.len(),
                        report.checked
                    ),
                );
                Ok(ExitStatus::Failure)
            }
        }
        StoreCommand::Inventory => {
            let store = open_store(global)?;
            let inventory = hstore_store::bundle::Inventory::of_store(&store)?;
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(inventory.to_json().as_bytes())
                .and_then(|()| stdout.flush())
                .context("failed to write to stdout")?;
            Ok(ExitStatus::Success)
        }
        StoreCommand::Roots { action, json } => match action {
            None => list_roots(global, json),
            Some(RootsCommand::Remove { names }) => remove_roots(global, printer, &names),
        },
        StoreCommand::Gc { dry_run } => {
            let store =
                Store::open_with(&global.store, LockMode::Exclusive).with_context(|| {
                    format!(
                        "failed to lock the store at `{}` for gc",
                        global.store.display()
                    )
                })?;
            let report = store.gc(dry_run)?;
            let verb = if dry_run { "Would remove" } else { "Removed" };
            printer.status(
                verb,
                format!(
                    "{} objects ({} bytes), {} cached trees, {} temp entries; kept {} objects",
                    report.removed.len(),
                    report.removed_bytes,
                    report.removed_trees,
                    report.removed_temp,
                    report.kept
                ),
            );
            Ok(ExitStatus::Success)
        }
    }
}

/// `hstore store roots`: one line per root (name, registered, objects kept, description), or a JSON array.
fn list_roots(global: &GlobalSettings, json: bool) -> Result<ExitStatus> {
    let store = open_store(global)?;
    let mut rows = Vec::new();
    for (name, root) in store.roots()? {
        let registered = store
            .root_registered(&name)?
            .map(|time| humantime::format_rfc3339_seconds(time).to_string());
        rows.push((name, registered, root));
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, registered, root)| {
                serde_json::json!({
                    "name": name,
                    "registered": registered,
                    "description": root.description,
                    "addresses": root.addresses,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else {
        for (name, registered, root) in &rows {
            writeln!(
                out,
                "{name}  {}  {} objects  {}",
                registered.as_deref().unwrap_or("-"),
                root.addresses.len(),
                root.description
            )?;
        }
    }
    out.flush().context("failed to write to stdout")?;
    Ok(ExitStatus::Success)
}

/// `hstore store roots remove NAME…`: every name must be a root, checked before any is removed.
fn remove_roots(
    global: &GlobalSettings,
    printer: &Printer,
    names: &[String],
) -> Result<ExitStatus> {
    let store = open_store(global)?;
    store
        .remove_named_roots(names)
        .context("failed to remove gc roots")?;
    for name in names {
        printer.status(
            "Removed",
            format!("gc root `{name}`; `hstore store gc` reclaims what only it kept"),
        );
    }
    Ok(ExitStatus::Success)
}

fn add(
    global: &GlobalSettings,
    printer: &Printer,
    path: &Path,
    root: Option<&str>,
) -> Result<ExitStatus> {
    let store = open_store(global)?;
    let added = store
        .add_path(path)
        .with_context(|| format!("failed to add `{}`", path.display()))?;
    store.flush()?;
    let digest = added.digest();
    match root {
        Some(name) => {
            // Keep what the root kept before: adding to a root never unprotects anything.
            let mut root = store.get_root(name)?.unwrap_or_else(|| Root {
                description: format!("hstore store add --root {name}"),
                addresses: Vec::new(),
            });
            if !root.addresses.contains(&digest) {
                root.addresses.push(digest);
                root.addresses.sort();
            }
            store
                .set_root(name, &root)
                .with_context(|| format!("failed to register the gc root `{name}`"))?;
            store.flush()?;
        }
        None => printer.warn(format_args!(
            "no gc root keeps {digest}: `hstore store gc` will remove it (pass `--root NAME` to keep it)"
        )),
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{digest}")?;
    Ok(ExitStatus::Success)
}

fn cat(global: &GlobalSettings, address: &str) -> Result<ExitStatus> {
    let store = open_store(global)?;
    let digest = parse_address(address)?;
    let Some(mut blob) = store.open_blob(&digest)? else {
        bail!(hstore_store::Error::MissingObject { digest });
    };
    let mut stdout = io::stdout().lock();
    io::copy(&mut blob.reader, &mut stdout)
        .with_context(|| format!("failed to write {digest} to stdout"))?;
    Ok(ExitStatus::Success)
}
