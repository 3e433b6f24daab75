//! hstore-test-support: fixtures shared by hstore's tests (a dev-dependency only, never published).
//!
//! - [`TestRegistry`]: a loopback HTTP registry serving a cargo sparse index, PyPI simple pages and plain files,
//!   with fault injection.
//! - [`GitRepo`]: real git repositories with reproducible commit ids.
//! - [`TestEnv`]: a sandboxed home and environment for running the `hstore` binary.
//! - [`GarageCluster`]: a real three-node Garage (S3) cluster; [`Nginx`]: a real nginx with WebDAV PUT.
//!
//! Everything here talks only to `127.0.0.1` and the local file system.

mod env;
mod garage;
mod git;
mod nginx;
mod registry;
mod server;

pub use env::TestEnv;
pub use garage::{GARAGE_BUCKET, GARAGE_KEY_ID, GARAGE_REGION, GARAGE_SECRET, GarageCluster};
pub use git::GitRepo;
pub use nginx::Nginx;
pub use registry::{
    CrateSpec, Fault, Request, RunningRegistry, TestRegistry, deterministic_tar_gz, index_path,
    normalize_project, sha256_hex, wheel_bytes,
};
pub use server::PYPI_JSON;
