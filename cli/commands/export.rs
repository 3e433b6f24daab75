//! `hstore export`: write one bundle holding the closure of lockfiles (and recorded builds) for another store.
//!
//! Selection: each `--lockfile` (default `./lockfile.json` unless `--all`) contributes its artifacts plus the
//! lockfile itself, stored as a blob, under the root `lockfile-<16 hex of the lockfile's BLAKE3>` — the same root
//! `hstore fetch` registers, so gc on the receiving side keeps what was imported. `--with-builds` adds the roots named
//! `build-*` and the records in namespace `build`; `--all` adds every root. `--exclude INVENTORY` drops what the
//! receiving store already holds. `--target T` ships only the part of each lockfile T's builds read
//! ([`Lockfile::for_target`]), under the root `lockfile-<16 hex>-T`. The bundle goes to a temp file beside `-o FILE` and is renamed into place only
//! when complete, so a failed export never leaves a plausible-looking partial bundle.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hstore_build::{BUILD_NAMESPACE, BUILD_ROOT_PREFIX};
use hstore_fetchers::lockfile::Lockfile;
use hstore_store::Store;
use hstore_store::bundle::{self, Compression, ExportSpec, Inventory, Record, SecretKey};

use crate::args::ExportArgs;
use crate::commands::store::open_store;
use crate::printer::{ExitStatus, Printer, human_bytes};
use crate::settings::GlobalSettings;

pub fn run(args: &ExportArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let to_stdout = args.output == Path::new("-");
    if to_stdout && io::stdout().is_terminal() {
        bail!("refusing to write a binary bundle to a terminal; redirect stdout or pass `-o FILE`");
    }
    let signer = args
        .sign
        .as_deref()
        .map(|path| {
            SecretKey::read(path)
                .with_context(|| format!("failed to load the signing key `{}`", path.display()))
        })
        .transpose()?;
    let store = open_store(global)?;
    let spec = select(&store, args)?;
    if signer.is_none() && !spec.records.is_empty() {
        // Import takes build records only on a trusted signature: unsigned, they would arrive as objects alone.
        printer.warn(format_args!(
            "the bundle carries {} build records but is not signed: `hstore import` drops them (it takes records only from a bundle signed by a trusted key); sign it with `--sign KEY`",
            spec.records.len()
        ));
    }
    let manifest =
        bundle::plan(&store, &spec).context("failed to collect the objects to export")?;
    printer.status(
        "Exporting",
        format!(
            "{} roots, {} objects{}",
            manifest.roots.len(),
            manifest.objects.len(),
            if spec.exclude.is_empty() {
                String::new()
            } else {
                format!(
                    " (left out what the inventory holds: {} addresses)",
                    spec.exclude.len()
                )
            }
        ),
    );
    let compression = args.level.map(|level| Compression { level });
    let report = if to_stdout {
        let mut stdout = io::stdout().lock();
        let report = bundle::export(&store, &manifest, signer.as_ref(), compression, &mut stdout)?;
        stdout
            .flush()
            .context("failed to write the bundle to stdout")?;
        report
    } else {
        write_file(
            &store,
            &manifest,
            signer.as_ref(),
            compression,
            &args.output,
        )?
    };
    printer.status(
        "Exported",
        format!(
            "{} objects ({} of content) as a {} bundle{} to {}{}",
            report.objects,
            human_bytes(report.content_bytes),
            human_bytes(report.bundle_bytes),
            compression.map_or_else(String::new, |Compression { level }| format!(
                " (zstd level {level}, long window)"
            )),
            if to_stdout {
                "stdout".to_owned()
            } else {
                format!("`{}`", args.output.display())
            },
            signer.map_or_else(String::new, |key| format!(
                ", signed by {}",
                key.public_key()
            )),
        ),
    );
    Ok(ExitStatus::Success)
}

fn write_file(
    store: &Store,
    manifest: &bundle::Manifest,
    signer: Option<&SecretKey>,
    compression: Option<Compression>,
    output: &Path,
) -> Result<bundle::ExportReport> {
    let dir = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".hstore-export-")
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in `{}`", dir.display()))?;
    let report = bundle::export(store, manifest, signer, compression, temp.as_file_mut())
        .with_context(|| format!("failed to write the bundle `{}`", output.display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("failed to fsync the bundle `{}`", output.display()))?;
    // tempfile creates 0600; a bundle holds no secrets and is meant to be copied around.
    fs::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("failed to set permissions of `{}`", temp.path().display()))?;
    temp.persist(output).with_context(|| {
        format!(
            "failed to move the bundle into place at `{}`",
            output.display()
        )
    })?;
    Ok(report)
}

/// Turns the selection flags into what to ship.
fn select(store: &Store, args: &ExportArgs) -> Result<ExportSpec> {
    let mut spec = ExportSpec::default();
    let lockfiles: Vec<PathBuf> = if args.lockfile.is_empty() && !args.all {
        vec![PathBuf::from("lockfile.json")]
    } else {
        args.lockfile.clone()
    };
    for path in &lockfiles {
        let bytes = fs::read(path).map_err(|source| hstore_fetchers::lockfile::Error::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let lockfile = Lockfile::from_slice(&bytes, path)?;
        let blob = store
            .add_bytes(&bytes)
            .with_context(|| format!("failed to store lockfile `{}` as a blob", path.display()))?;
        let description = format!("lockfile `{}`", path.display());
        let (name, root) = match &args.target {
            Some(target) => lockfile.target_gc_root(target, &bytes, blob, &description),
            None => lockfile.gc_root(&bytes, blob, description),
        };
        spec.roots.insert(name, root);
        spec.lockfiles.push(blob);
    }
    if args.all || args.with_builds {
        for (name, root) in store.roots()? {
            if args.all || name.starts_with(BUILD_ROOT_PREFIX) {
                spec.roots.entry(name).or_insert(root);
            }
        }
        for key in store.list_meta(BUILD_NAMESPACE)? {
            if let Some(value) = store.get_meta::<serde_json::Value>(BUILD_NAMESPACE, &key)? {
                spec.records.push(Record {
                    namespace: BUILD_NAMESPACE.into(),
                    key,
                    value,
                });
            }
        }
    }
    for path in &args.exclude {
        let bytes = fs::read(path)
            .with_context(|| format!("failed to read inventory `{}`", path.display()))?;
        spec.exclude
            .extend(Inventory::from_slice(&bytes, path)?.into_set());
    }
    Ok(spec)
}
