//! hstore-model: the recipe and lockfile models, plain data with their parsing, validation and canonical form.
//!
//! Every layer that reads recipes or lockfiles depends on this crate, and none of them on another for it: `fetchers`
//! resolves [`recipe::SourceSpec`]s into [`lockfile::Artifact`]s, `build` turns a recipe + lockfile + target into a
//! plan, the CLI prints them, and [`sbom`] describes them as CycloneDX or SPDX bills of materials. This crate does no
//! I/O beyond reading and atomically writing those two files, no network and no store writes; it depends on
//! `hstore-store` only for [`hstore_store::Digest`] and the `Hint` trait.
//!
//! Strings that stand for upstream identities are typed ([`ids`]): a [`ids::CommitId`], a [`ids::Sha256`] and a
//! [`ids::GitRef`] are validated once, where they are parsed, and serialize as the plain strings they always were,
//! so the lockfile's bytes do not change.

pub mod artifact;
pub mod diff;
pub mod ids;
pub mod lockfile;
pub mod python;
pub mod recipe;
pub mod sbom;
pub mod why;

pub use ids::{ArtifactId, CommitId, GitRef, Sha256};
