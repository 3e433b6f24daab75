//! `hstore bundle inspect FILE`: what a bundle holds and who signed it, printed from one streamed read
//! (`hstore_store::bundle::inspect`), before anything is imported.

use std::io::{self, Write};

use anyhow::{Context, Result};
use hstore_store::bundle::{Inspection, inspect};

use crate::args::{BundleCommand, BundleInspectArgs};
use crate::commands::import::{open_bundle, trusted_keys};
use crate::printer::{ExitStatus, Printer, human_bytes};

pub fn run(command: BundleCommand, printer: &Printer) -> Result<ExitStatus> {
    match command {
        BundleCommand::Inspect(args) => run_inspect(&args, printer),
    }
}

fn run_inspect(args: &BundleInspectArgs, printer: &Printer) -> Result<ExitStatus> {
    let keys = trusted_keys(&args.trust, &args.trusted_keys)?;
    let (name, mut input) = open_bundle(&args.input)?;
    let inspection =
        inspect(&mut input, &name).with_context(|| format!("failed to inspect `{name}`"))?;
    let trusted = keys
        .as_deref()
        .map(|keys| inspection.signed_by_one_of(keys));
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &to_json(&inspection, trusted))?;
        writeln!(out)?;
    } else {
        render(&mut out, &name, &inspection, trusted)?;
    }
    out.flush().context("failed to write to stdout")?;
    if trusted == Some(false) {
        printer.warn(format_args!(
            "`{name}` is not signed by any of the keys given; `hstore import --trust` with them would refuse it"
        ));
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}

fn signature_line(inspection: &Inspection, trusted: Option<bool>) -> String {
    match (inspection.signer, trusted) {
        (None, _) => "not signed".to_owned(),
        (Some(key), None) => format!("signed by {key} (verified)"),
        (Some(key), Some(true)) => format!("signed by {key} (verified; one of the keys given)"),
        (Some(key), Some(false)) => {
            format!("signed by {key} (verified; NOT one of the keys given)")
        }
    }
}

fn render(
    out: &mut impl Write,
    name: &str,
    inspection: &Inspection,
    trusted: Option<bool>,
) -> io::Result<()> {
    let manifest = &inspection.manifest;
    writeln!(
        out,
        "bundle {name}: {}{}, {} objects",
        human_bytes(inspection.bundle_bytes),
        if inspection.compressed {
            " (compressed as a whole)"
        } else {
            ""
        },
        manifest.objects.len()
    )?;
    writeln!(out, "signature: {}", signature_line(inspection, trusted))?;
    writeln!(out, "roots: {}", manifest.roots.len())?;
    for (root_name, root) in &manifest.roots {
        writeln!(
            out,
            "  {root_name}  {} addresses  {}",
            root.addresses.len(),
            root.description
        )?;
    }
    writeln!(out, "lockfiles: {}", manifest.lockfiles.len())?;
    for lockfile in &manifest.lockfiles {
        writeln!(out, "  {lockfile}")?;
    }
    writeln!(out, "records: {}", manifest.records.len())?;
    for record in &manifest.records {
        // A build record names what it built; other namespaces are shown by key.
        let what = match (record.value.get("recipe"), record.value.get("target")) {
            (Some(recipe), Some(target)) => format!(
                "  ({} for {})",
                recipe.as_str().unwrap_or("?"),
                target.as_str().unwrap_or("?")
            ),
            _ => String::new(),
        };
        writeln!(out, "  {}/{}{what}", record.namespace, record.key)?;
    }
    writeln!(out, "objects by kind:")?;
    for (kind, totals) in &inspection.by_encoding {
        writeln!(
            out,
            "  {kind:<10} {:>8} objects  {:>10} in the bundle  {:>10} decoded",
            totals.objects,
            human_bytes(totals.payload_bytes),
            human_bytes(totals.content_bytes)
        )?;
    }
    Ok(())
}

fn to_json(inspection: &Inspection, trusted: Option<bool>) -> serde_json::Value {
    let manifest = &inspection.manifest;
    let kinds: serde_json::Map<String, serde_json::Value> = inspection
        .by_encoding
        .iter()
        .map(|(kind, totals)| {
            (
                (*kind).to_owned(),
                serde_json::json!({
                    "objects": totals.objects,
                    "payload_bytes": totals.payload_bytes,
                    "content_bytes": totals.content_bytes,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "bundle_bytes": inspection.bundle_bytes,
        "compressed": inspection.compressed,
        "objects": manifest.objects.len(),
        "signer": inspection.signer.map(|key| key.to_string()),
        "signed_by_a_given_key": trusted,
        "roots": manifest.roots,
        "lockfiles": manifest.lockfiles,
        "records": manifest.records,
        "by_kind": kinds,
    })
}
