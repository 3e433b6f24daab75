//! `hstore sbom`: a software bill of materials of a lockfile, of the lockfile a bundle carries (read without
//! importing it), or of a recorded build's closure. Only wiring: the document is `hstore_model::sbom`'s, the
//! licences `hstore_fetchers::license`'s, the closure `hstore_build::sbom`'s.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use hstore_fetchers::lockfile::{self, Lockfile};
use hstore_model::sbom::{self, Format, Licenses, Request, Subject};
use hstore_store::{Digest, Store};

use crate::args::{SbomArgs, SbomFormat};
use crate::commands::build::find_build;
use crate::commands::store::open_store;
use crate::error::CliError;
use crate::printer::ExitStatus;
use crate::settings::GlobalSettings;

pub fn run(args: &SbomArgs, global: &GlobalSettings) -> Result<ExitStatus> {
    let created = created(global.source_date_epoch.as_deref())?;
    let format = match args.format {
        SbomFormat::Cyclonedx => Format::CycloneDx,
        SbomFormat::Spdx => Format::Spdx,
    };
    let tool_version = env!("CARGO_PKG_VERSION");
    let document = if let Some(bundle) = &args.bundle {
        if bundle == Path::new("-") {
            return Err(CliError::SbomOfStdin.into());
        }
        let store = existing_store(global)?;
        let contents = hstore_fetchers::license::from_bundle(
            bundle,
            || std::fs::File::open(bundle).map(|file| Box::new(file) as Box<dyn Read>),
            store.as_ref(),
        )
        .with_context(|| format!("failed to read the SBOM of bundle `{}`", bundle.display()))?;
        sbom::render(
            &Request {
                lockfile: &contents.lockfile,
                licenses: &contents.licenses,
                subject: Subject::Lockfile(Digest::of_bytes(&contents.bytes)),
                created,
                tool_version,
            },
            format,
        )?
    } else if let Some(build) = &args.build {
        let store = open_store(global)?;
        let record = find_build(
            &store,
            Some(build.as_str()),
            args.target.as_deref(),
            &args.inputs,
        )?;
        let lockfile = Lockfile::load(&args.inputs.lockfile)?;
        let closure = hstore_build::sbom::closure(&store, &record)
            .with_context(|| format!("failed to read the closure of build {}", record.key))?;
        let licenses = hstore_fetchers::license::from_store(&store, &lockfile)?;
        sbom::render(
            &Request {
                lockfile: &lockfile,
                licenses: &licenses,
                subject: Subject::Build(&closure),
                created,
                tool_version,
            },
            format,
        )?
    } else {
        let path = &args.inputs.lockfile;
        let bytes = std::fs::read(path).map_err(|source| lockfile::Error::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let lockfile = Lockfile::from_slice(&bytes, path)?;
        // Licences are read where the store holds the objects; without a store (a lockfile-only machine) they
        // are unknown, which is no error.
        let licenses = match existing_store(global)? {
            Some(store) => hstore_fetchers::license::from_store(&store, &lockfile)?,
            None => Licenses::new(),
        };
        sbom::render(
            &Request {
                lockfile: &lockfile,
                licenses: &licenses,
                subject: Subject::Lockfile(Digest::of_bytes(&bytes)),
                created,
                tool_version,
            },
            format,
        )?
    };
    if let Some(path) = &args.output {
        std::fs::write(path, &document)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    } else {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(&document)
            .and_then(|()| stdout.flush())
            .context("failed to write to stdout")?;
    }
    Ok(ExitStatus::Success)
}

/// The store, if one exists there (read, never created: an SBOM needs none).
fn existing_store(global: &GlobalSettings) -> Result<Option<Store>> {
    if !global
        .store
        .join(hstore_store::layout::VERSION_FILE)
        .exists()
    {
        return Ok(None);
    }
    open_store(global).map(Some)
}

/// `SOURCE_DATE_EPOCH` as RFC 3339 UTC.
fn created(epoch: Option<&str>) -> Result<Option<String>> {
    let Some(epoch) = epoch else {
        return Ok(None);
    };
    let seconds: u64 = epoch
        .trim()
        .parse()
        .map_err(|_| CliError::BadSourceDateEpoch {
            value: epoch.to_owned(),
        })?;
    let time = UNIX_EPOCH + Duration::from_secs(seconds);
    Ok(Some(humantime::format_rfc3339_seconds(time).to_string()))
}
