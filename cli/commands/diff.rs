//! `hstore diff OLD [NEW]`: what changed between two lockfiles (`hstore_model::diff`), and what the new one costs to
//! carry across the air gap. OLD may be a git revision of NEW, read with `git show`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use hstore_fetchers::lockfile::Lockfile;
use hstore_model::diff::{Change, LockfileDiff, Summary, diff};
use hstore_store::Store;

use crate::args::DiffArgs;
use crate::error::CliError;
use crate::printer::{ExitStatus, human_bytes};
use crate::settings::GlobalSettings;

pub fn run(args: &DiffArgs, global: &GlobalSettings) -> Result<ExitStatus> {
    let new = Lockfile::load(&args.new)?;
    let old = load_old(&args.old, &args.new)?;
    let changes = diff(&old, &new);
    let carried = carried_by_store(global, &old, &new)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &to_json(&changes, carried))?;
        writeln!(out)?;
    } else {
        render(&mut out, &changes, carried)?;
    }
    out.flush().context("failed to write to stdout")?;
    Ok(ExitStatus::Success)
}

/// OLD as a file when one exists, else `REV:PATH`, else a revision of NEW's path in its git repository.
fn load_old(old: &str, new: &Path) -> Result<Lockfile> {
    let path = Path::new(old);
    if path.exists() {
        return Ok(Lockfile::load(path)?);
    }
    let (directory, object) = if let Some((revision, file)) = old.split_once(':') {
        (PathBuf::from("."), format!("{revision}:{file}"))
    } else {
        let directory = match new.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = new
            .file_name()
            .with_context(|| format!("`{}` names no file", new.display()))?;
        // `./NAME` is resolved against the working directory given with -C, not the repository's root.
        (directory, format!("{old}:./{}", name.to_string_lossy()))
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(&directory)
        .args(["show", &object])
        .output()
        .context("failed to run `git show` (is git installed?)")?;
    if !output.status.success() {
        return Err(CliError::UnknownOldLockfile {
            old: old.to_owned(),
            object,
            directory,
            git: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            new: new.to_path_buf(),
        }
        .into());
    }
    Ok(Lockfile::from_slice(&output.stdout, Path::new(&object))?)
}

/// The exact objects and file bytes an incremental export of NEW to a store holding OLD's closure would carry, when
/// this machine's store holds NEW's whole closure; `None` otherwise (the lockfile's sizes are the estimate then).
fn carried_by_store(
    global: &GlobalSettings,
    old: &Lockfile,
    new: &Lockfile,
) -> Result<Option<(usize, u64)>> {
    // Looking must not create a store where there is none.
    if !global
        .store
        .join(hstore_store::layout::VERSION_FILE)
        .exists()
    {
        return Ok(None);
    }
    let store = Store::open(&global.store)
        .with_context(|| format!("failed to open the store at `{}`", global.store.display()))?;
    // One walk of the new closure; every address it reached must be present (a missing directory node ends its
    // branch of the walk, so it is caught here too).
    let wanted = store.closure(new.addresses());
    for address in &wanted {
        if store.object_format(address)?.is_none() {
            return Ok(None);
        }
    }
    let have = store.closure(old.addresses());
    let mut objects = 0;
    let mut bytes = 0;
    for address in wanted.difference(&have) {
        objects += 1;
        bytes += store.blob_size(address)?.unwrap_or(0);
    }
    Ok(Some((objects, bytes)))
}

fn describe(summary: &Summary) -> String {
    format!("{} {} {}", summary.kind, summary.package, summary.version)
}

fn render(
    out: &mut impl Write,
    changes: &LockfileDiff,
    carried: Option<(usize, u64)>,
) -> io::Result<()> {
    if changes.is_empty() {
        writeln!(out, "no changes: both lockfiles pin the same bytes")?;
        return Ok(());
    }
    for recipe in &changes.added_recipes {
        writeln!(out, "+ recipe {recipe}")?;
    }
    for recipe in &changes.removed_recipes {
        writeln!(out, "- recipe {recipe}")?;
    }
    let mut current = None;
    for source in &changes.sources {
        if current != Some(&source.recipe) {
            writeln!(out, "recipe {}", source.recipe)?;
            current = Some(&source.recipe);
        }
        let state = match source.present {
            (false, true) => " (new source)",
            (true, false) => " (source removed)",
            _ => "",
        };
        writeln!(out, "  source {}{state}", source.source)?;
        for change in &source.changes {
            match change {
                Change::Added(summary) => writeln!(out, "    + {}", describe(summary))?,
                Change::Removed(summary) => writeln!(out, "    - {}", describe(summary))?,
                Change::Changed { from, to } if from.version == to.version => writeln!(
                    out,
                    "    ~ {}: content changed ({} -> {})",
                    describe(to),
                    from.address,
                    to.address
                )?,
                Change::Changed { from, to } => writeln!(
                    out,
                    "    ~ {} {}: {} -> {}",
                    to.kind, to.package, from.version, to.version
                )?,
            }
        }
    }
    writeln!(
        out,
        "to carry: {} new artifacts, {} of files (an upper bound: files the old closure holds are not carried again)",
        changes.new_artifacts,
        human_bytes(changes.new_bytes)
    )?;
    if let Some((objects, bytes)) = carried {
        writeln!(
            out,
            "the store holds both closures: an incremental export carries {objects} objects, {} of files",
            human_bytes(bytes)
        )?;
    }
    Ok(())
}

fn to_json(changes: &LockfileDiff, carried: Option<(usize, u64)>) -> serde_json::Value {
    let summary = |s: &Summary| {
        serde_json::json!({
            "kind": s.kind, "package": s.package, "version": s.version, "id": s.id,
            "address": s.address.to_string(), "size": s.size,
        })
    };
    let sources: Vec<serde_json::Value> = changes
        .sources
        .iter()
        .map(|source| {
            let list: Vec<serde_json::Value> = source
                .changes
                .iter()
                .map(|change| match change {
                    Change::Added(s) => serde_json::json!({"change": "added", "artifact": summary(s)}),
                    Change::Removed(s) => serde_json::json!({"change": "removed", "artifact": summary(s)}),
                    Change::Changed { from, to } => {
                        serde_json::json!({"change": "changed", "from": summary(from), "to": summary(to)})
                    }
                })
                .collect();
            serde_json::json!({
                "recipe": source.recipe,
                "source": source.source,
                "in_old": source.present.0,
                "in_new": source.present.1,
                "changes": list,
            })
        })
        .collect();
    serde_json::json!({
        "added_recipes": changes.added_recipes,
        "removed_recipes": changes.removed_recipes,
        "sources": sources,
        "new_artifacts": changes.new_artifacts,
        "new_bytes": changes.new_bytes,
        "carried": carried.map(|(objects, bytes)| serde_json::json!({"objects": objects, "bytes": bytes})),
    })
}
