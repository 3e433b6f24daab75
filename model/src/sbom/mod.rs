//! Software bills of materials: what a lockfile, or a build output's closure, is made of, as CycloneDX 1.6 JSON
//! ([`cyclonedx`]) or SPDX 2.3 JSON ([`spdx`]).
//!
//! This module turns plain data (a [`Lockfile`], the declared licences someone read from a store or a bundle, and
//! for a build the outputs of its closure) into one neutral [`Inventory`], which each format module writes. It does
//! no I/O: reading licences is `hstore_fetchers::license`'s, walking build records `hstore_build::sbom`'s.
//!
//! What the inventory holds:
//! - one component per artifact, its `bom-ref` the lockfile id; its package URL ([`purl`]); SHA-256 where upstream
//!   pins one (the `.crate`, the wheel, the download: the file that was fetched) and always the BLAKE3 store address
//!   (of what is stored: a crate's vendored tree, a wheel's bytes), so either can be checked; its declared licence
//!   when one was found, else none;
//! - a git artifact's submodules as components it contains;
//! - for a lockfile: the lockfile itself as the subject (BLAKE3 of its bytes, which is its store address and the
//!   address a bundle lists), each recipe as an `application` depending on its sources' artifacts and on the
//!   recipes its `recipe` sources read;
//! - for a build: the output asked for as the subject, every output of its closure as an `application` (BLAKE3 =
//!   the output tree), each depending on its inputs: locked artifacts, dependency outputs, local trees.
//!
//! Determinism (MUST): the same inputs give the same bytes. Components are sorted by `bom-ref`, dependencies by
//! `ref` and target; there is no wall-clock time: a timestamp appears only when the caller passes one (the CLI
//! passes `SOURCE_DATE_EPOCH`), and SPDX's required `created` is then that time, else the Unix epoch. CycloneDX's
//! `serialNumber` and SPDX's `documentNamespace` are derived from the document's own bytes (see [`content_uuid`]).
//! No path of the machine that wrote it appears: the lockfile is named `lockfile.json`, whatever its file name,
//! so the SBOM of a bundle equals the SBOM of the lockfile it carries.

pub mod cyclonedx;
mod inventory;
pub mod purl;
pub mod spdx;

pub use inventory::{
    BuildInput, BuildInputKind, BuiltOutput, Component, ComponentType, Download, Error, Format,
    Inventory, License, Licenses, Relation, Request, Subject, content_uuid,
};

/// Writes the SBOM of `request` in `format`: the document's bytes, pretty JSON with a trailing newline.
pub fn render(request: &Request<'_>, format: Format) -> Result<Vec<u8>, Error> {
    let inventory = Inventory::of(request)?;
    Ok(match format {
        Format::CycloneDx => cyclonedx::render(&inventory),
        Format::Spdx => spdx::render(&inventory),
    })
}
