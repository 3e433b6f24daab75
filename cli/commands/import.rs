//! `hstore import`: verify a bundle while streaming it into the store; register its roots and records only if
//! every byte checked out. With `--trust`/`--trusted-keys`, an unsigned or foreign bundle is refused before any
//! object is read. Build records are registered only from a bundle signed by a trusted key (`--trust`,
//! `--trusted-keys`, or `[caches] trusted-keys` in `hstore.toml`); any other bundle's records are dropped with a
//! warning naming each build key, and its objects imported as usual.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hstore_store::bundle::{self, ImportOptions, PublicKey, read_trusted_keys};

use crate::args::ImportArgs;
use crate::commands::cache;
use crate::commands::store::open_store;
use crate::error::CliError;
use crate::printer::{ExitStatus, Printer, Severity, human_bytes};
use crate::settings::GlobalSettings;

pub fn run(args: &ImportArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let trusted_keys = trusted_keys(&args.trust, &args.trusted_keys)?;
    let record_signers = cache::trusted_keys(&[], &cache::load_config()?)?;
    let store = open_store(global)?;
    let (name, mut input) = open_bundle(&args.input)?;
    let options = ImportOptions {
        trusted_keys,
        record_signers,
        records: Some(Arc::new(hstore_build::record_kinds().travelling())),
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
    if !report.records_dropped.is_empty() {
        let why = report.signer.map_or_else(
            || "the bundle is not signed".to_owned(),
            |key| format!("the bundle is signed by `{key}`, which is not a trusted key"),
        );
        printer.report(
            Severity::Warning,
            &CliError::BundleRecordsDropped {
                records: report.records_dropped.clone(),
                why,
            },
        );
    }
    Ok(ExitStatus::Success)
}

/// A bundle named on the command line, `-` for stdin: its name for messages, and its bytes.
pub(crate) fn open_bundle(path: &Path) -> Result<(String, Box<dyn Read>)> {
    if path == Path::new("-") {
        return Ok(("<stdin>".to_owned(), Box::new(io::stdin().lock())));
    }
    let file =
        File::open(path).with_context(|| format!("failed to open bundle `{}`", path.display()))?;
    Ok((path.display().to_string(), Box::new(file)))
}

/// `None` when no trust flag was given; otherwise every key named, which must be at least one.
pub(crate) fn trusted_keys(trust: &[String], files: &[PathBuf]) -> Result<Option<Vec<PublicKey>>> {
    if trust.is_empty() && files.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for trust in trust {
        let key = if trust.starts_with(bundle::PUBLIC_KEY_PREFIX) {
            trust.parse::<PublicKey>()?
        } else {
            PublicKey::read(Path::new(trust))
                .with_context(|| format!("failed to load the trusted key `{trust}`"))?
        };
        keys.push(key);
    }
    for path in files {
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
