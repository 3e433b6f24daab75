//! `rust_toolchain` sources: a pinned Rust release taken from the locking machine's rustup installation
//! (`$RUSTUP_HOME/toolchains/<version>-<host>`, `$RUSTUP_HOME` defaulting to `~/.rustup`) and stored as a tree, so
//! `hstore build` on an air-gapped node runs the compiler from the store, with no rustup and no host path.
//!
//! Why this and not a `path` source or the release channel manifest:
//! - A `path` source would write the toolchain's location relative to the lockfile (`../../root/.rustup/…`) into
//!   the lockfile, a machine path; this kind records only `rust-toolchain+<version>-<host>` and the content address.
//! - The channel-manifest route (download component tarballs from static.rust-lang.org, check their sha256, merge
//!   the components) needs the dist server, which these machines cannot reach, and a fixture channel of hundreds of
//!   MB to test; rustup has already done that verification on the machine that locks.
//!
//! The tree leaves out `share/doc` (the HTML docs: 53,372 of a toolchain's 53,531 files, ~0.8 of its 1.4 GB), so the
//! input is ~160 files: ingesting it is cheap, and a build binds it from the materialized-tree cache in one mount.
//! Nothing else is changed: rustc finds its sysroot from its own location, so `$src_NAME/bin/cargo` works wherever
//! the tree is bound. The address is the pin: a machine whose rustup holds a different build of the same version
//! (other components installed, say) locks a different address, and `fetch` there fails with an address drift
//! instead of building with a different compiler.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hstore_store::Digest;

use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::{Artifact, RustToolchainArtifact};

/// Directories of a toolchain left out of the stored tree (relative to the toolchain root).
pub const EXCLUDED: [&str; 1] = ["share/doc"];

/// The lockfile id of toolchain `name` (`<version>-<host>`).
pub fn id(name: &str) -> String {
    format!("rust-toolchain+{name}")
}

/// Stores the toolchain `name` (`<version>-<host>`) from `rustup_home`, or returns the locked artifact when the
/// store holds it already (no rustup needed then).
pub async fn ensure(fetcher: &Fetcher, name: &str, locked: Option<&Artifact>) -> Result<Artifact> {
    let store = Arc::clone(fetcher.store());
    if let Some(locked) = locked
        && store.object_format(&locked.address())?.is_some()
    {
        return Ok(locked.clone());
    }
    let Some(rustup_home) = fetcher.rustup_home() else {
        return Err(Error::ToolchainMissing {
            toolchain: name.to_owned(),
            dir: PathBuf::from("$RUSTUP_HOME/toolchains").join(name),
        });
    };
    let dir = rustup_home.join("toolchains").join(name);
    if !dir.join("bin").is_dir() {
        return Err(Error::ToolchainMissing {
            toolchain: name.to_owned(),
            dir,
        });
    }
    let root = dir.clone();
    let (address, size): (Digest, u64) = crate::error::blocking(move || {
        store
            .add_tree(&root, &|relative: &Path| {
                EXCLUDED
                    .iter()
                    .any(|excluded| relative == Path::new(excluded))
            })
            .map_err(Error::from)
    })
    .await?;
    crate::error::check_drift(|| id(name), locked, address)?;
    fetcher.reporter().on_artifact("rust_toolchain", name);
    Ok(Artifact::RustToolchain(RustToolchainArtifact {
        id: id(name).into(),
        toolchain: name.to_owned(),
        address,
        size,
    }))
}
