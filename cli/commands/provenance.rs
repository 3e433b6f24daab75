//! `hstore verify-provenance`: find the records naming an output and check each one's provenance
//! ([`hstore_build::provenance::verify`]) against the trusted keys (`--trust`, `--trusted-keys`, `[caches]
//! trusted-keys`, as `import` takes them). A refused provenance is a failed check: reported with what mismatched,
//! exit 1.

use std::io::Write;

use anyhow::{Context, Result};
use hstore_build::provenance;

use crate::args::VerifyProvenanceArgs;
use crate::commands::{build, cache, import, store::open_store};
use crate::printer::{ExitStatus, Printer, Severity};
use crate::settings::GlobalSettings;

pub fn run(
    args: &VerifyProvenanceArgs,
    global: &GlobalSettings,
    printer: &Printer,
) -> Result<ExitStatus> {
    let mut trusted = import::trusted_keys(&args.trust, &args.trusted_keys)?.unwrap_or_default();
    trusted.extend(cache::trusted_keys(&[], &cache::load_config()?)?);
    let store = open_store(global)?;
    let records = build::recorded_builds(
        &store,
        Some(&args.what),
        args.target.as_deref(),
        &args.inputs,
    )?;
    let mut status = ExitStatus::Success;
    let mut verified = Vec::new();
    for record in &records {
        match provenance::verify(record, &trusted) {
            Ok(proof) => {
                printer.status(
                    "Verified",
                    format!(
                        "{} for target {}: output {} of build key {} from {} input(s), signed by {}",
                        record.recipe,
                        record.target,
                        record.output,
                        record.key,
                        record.inputs.len(),
                        proof.signer
                    ),
                );
                verified.push(serde_json::json!({
                    "key": record.key,
                    "output": record.output,
                    "signer": proof.signer.to_string(),
                    "statement": proof.statement,
                }));
            }
            Err(error) => {
                printer.report(Severity::Error, &error);
                status = ExitStatus::Failure;
            }
        }
    }
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &verified)
            .context("failed to write to stdout")?;
        writeln!(stdout).context("failed to write to stdout")?;
    }
    Ok(status)
}
