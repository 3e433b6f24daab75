//! Dispatch: one module per command, each `run(&settings, printer) -> Result<ExitStatus>`.

mod build;
mod bundle;
pub mod cache;
mod diff;
mod export;
mod fetch;
pub(crate) mod import;
mod key;
mod lock;
mod provenance;
mod sbom;
pub mod store;
mod why;

use anyhow::Result;

use crate::args::{Cli, Commands};
use crate::printer::{ExitStatus, Printer};
use crate::settings::GlobalSettings;

/// Runs the parsed command line.
pub fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus> {
    let global = GlobalSettings::resolve(&cli.global)?;
    hstore_store::clock::set_offset(global.clock_offset);
    match cli.command {
        Commands::Store(command) => store::run(command, &global, printer),
        Commands::Lock(args) => lock::run(&args, &global, printer),
        Commands::Fetch(args) => fetch::run(&args, &global, printer),
        Commands::Build(args) => build::run(*args, &global, printer),
        Commands::Log(args) => build::log(&args, &global),
        Commands::VerifyProvenance(args) => provenance::run(&args, &global, printer),
        Commands::Diff(args) => diff::run(&args, &global),
        Commands::Why(args) => why::run(&args, &global),
        Commands::Sbom(args) => sbom::run(&args, &global),
        Commands::Export(args) => export::run(&args, &global, printer),
        Commands::Bundle(command) => bundle::run(command, printer),
        Commands::Import(args) => import::run(&args, &global, printer),
        Commands::Key(command) => key::run(command, printer),
        Commands::Cache(command) => cache::run(command, &global, printer),
    }
}
