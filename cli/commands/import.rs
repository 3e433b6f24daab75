//! `hstore import`: verify a bundle while streaming it into the store; register its roots and records only if
//! every byte checked out. With `--trust`/`--trusted-keys`, an unsigned or foreign bundle is refused before any
//! object is read.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hstore_store::bundle::{self, ImportOptions, PublicKey, read_trusted_keys};

use crate::args::ImportArgs;
use crate::commands::store::{RecordSchemas, open_store};
use crate::error::CliError;
use crate::printer::{ExitStatus, Printer, Severity, human_bytes};
use crate::settings::GlobalSettings;

pub fn run(args: &ImportArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let trusted_keys = trusted_keys(args)?;
    let store = open_store(global)?;
    let from_stdin = args.input == Path::new("-");
    let name = if from_stdin {
        "<stdin>".to_owned()
    } else {
        args.input.display().to_string()
    };
    let mut input: Box<dyn Read> = if from_stdin {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.input)
                .with_context(|| format!("failed to open bundle `{}`", args.input.display()))?,
        )
    };
    let options = ImportOptions {
        trusted_keys,
        records: Some(Arc::new(RecordSchemas::importable())),
    };
    let report = bundle::import(&store, &mut input, &name, &options)
        .with_context(|| format!("failed to import `{name}`; no root or record was registered"))?;
    printer.status(
        "Verified",
        format!(
            "{} objects ({} of content, {} bundle), {}",
            report.objects,
            human_bytes(report.content_bytes),
            human_bytes(report.bundle_bytes),
            report
                .signer
                .map_or_else(|| "unsigned".to_owned(), |key| format!("signed by {key}")),
        ),
    );
    printer.status(
        "Imported",
        format!(
            "{} new objects, {} already present",
            report.added,
            report.objects - report.added
        ),
    );
    for root in &report.roots {
        printer.status("Registered", format!("root `{root}`"));
    }
    if report.records > 0 {
        printer.status("Registered", format!("{} records", report.records));
    }
    for record in &report.records_kept {
        printer.report(
            Severity::Warning,
            &CliError::RecordKept {
                record: record.clone(),
            },
        );
    }
    Ok(ExitStatus::Success)
}

/// `None` when no trust flag was given; otherwise every key named, which must be at least one.
fn trusted_keys(args: &ImportArgs) -> Result<Option<Vec<PublicKey>>> {
    if args.trust.is_empty() && args.trusted_keys.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for trust in &args.trust {
        let key = if trust.starts_with(bundle::PUBLIC_KEY_PREFIX) {
            trust.parse::<PublicKey>()?
        } else {
            PublicKey::read(Path::new(trust))
                .with_context(|| format!("failed to load the trusted key `{trust}`"))?
        };
        keys.push(key);
    }
    for path in &args.trusted_keys {
        keys.extend(
            read_trusted_keys(path).with_context(|| {
                format!("failed to load trusted keys from `{}`", path.display())
            })?,
        );
    }
    if keys.is_empty() {
        bail!("the trusted-keys files hold no key, so no bundle could be accepted");
    }
    Ok(Some(keys))
}
