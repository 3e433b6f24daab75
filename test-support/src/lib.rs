//! hstore-test-support: fixtures shared by hstore's tests (a dev-dependency only, never published).
//!
//! - [`TestRegistry`]: a loopback HTTP registry serving a cargo sparse index, PyPI simple pages and plain files,
//!   with fault injection.
//! - [`TestIndex`]: a loopback PEP 691 index with real, importable wheels for any tags, sdists, yanked files and
//!   upload times.
//! - [`GitRepo`]: real git repositories with reproducible commit ids.
//! - [`TestEnv`]: a sandboxed home and environment for running the `hstore` binary.
//! - [`XmakeRepoFixture`]: an xmake-repo with three packages, their archives, and a C++ project requiring them.
//! - [`GarageCluster`]: a real three-node Garage (S3) cluster; [`Nginx`]: a real nginx with WebDAV PUT.
//! - [`DebianArchive`]: a loopback Debian archive: real `.deb` files, `Packages` indexes and an `InRelease`
//!   clearsigned by a throwaway gpg key, with tampering hooks.
//!
//! Everything here talks only to `127.0.0.1` and the local file system.

// The house rules of clippy.toml are the product's: a test harness reads its own switches and where the tools it
// starts live, and cleans up fixtures by path.
#![allow(clippy::disallowed_methods)]

mod debian_archive;
mod env;
mod files;
mod garage;
mod git;
mod nginx;
mod pypi;
mod registry;
mod server;
mod xmake_repo;

pub use debian_archive::{
    DEBIAN_ARCHIVE_DATE, DebSpec, DebianArchive, PublishedDeb, RunningDebianArchive,
};
pub use env::TestEnv;
pub use files::{deterministic_tar_gz, normalize_project, sha256_hex};
pub use garage::{GARAGE_BUCKET, GARAGE_KEY_ID, GARAGE_REGION, GARAGE_SECRET, GarageCluster};
pub use git::GitRepo;
pub use nginx::Nginx;
pub use pypi::{DEFAULT_UPLOAD_TIME, IndexedFile, TestIndex, WheelSpec, build_wheel};
pub use registry::{
    CrateSpec, Fault, Request, RunningRegistry, TestRegistry, index_path, wheel_bytes,
};
pub use server::PYPI_JSON;
pub use xmake_repo::{FixtureArchive, PROJECT_OUTPUT, XmakeRepoFixture};
