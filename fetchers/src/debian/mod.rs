//! The `debian` source kind: binary packages from a signed Debian archive, pinned by the archive's own index, and
//! unpacked into one base tree that a recipe's sandbox can use as its root (`[build] base`, docs/recipes.md "A
//! Debian base").
//!
//! - [`source`]: the kind's lock and fetch, what `resolve` calls; the only module here that does I/O on the network
//!   and the store;
//! - reading an archive: a suite's signed `InRelease` ([`release`]), its `Packages` indexes ([`packages`], over the
//!   deb822 parser [`control`]), versions ordered as dpkg orders them ([`version`]), and the closure of packages a
//!   set of requests needs ([`resolve`]);
//! - unpacking: one `.deb`'s members ([`deb`]) and a package set into one deterministic root tree ([`base`]).
//!
//! Module graph (no cycles): `source` → everything below; [`resolve`] → [`packages`] → [`control`], [`version`];
//! [`release`] → [`control`] (and `resolve`'s live
//! test → [`release`]); [`base`] → [`deb`].

pub mod base;
pub mod control;
pub mod deb;
pub mod packages;
pub mod release;
pub mod resolve;
pub mod source;
pub mod version;

pub use packages::{Package, Relation, parse_packages, parse_relations};
pub use release::{IndexFile, Release, Signer, verify_inrelease};
pub use resolve::{Request, Resolution, ResolveOptions, resolve};
pub use version::Version;

/// Why a Debian archive, package set or base could not be used: each step's own error, one type for the callers
/// (`crate::Error::Debian*` name the source, file or base around it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signed release was refused.
    #[error(transparent)]
    Release(#[from] release::Error),
    /// An index or control paragraph did not parse.
    #[error(transparent)]
    Control(#[from] control::Error),
    /// A requested `name=VERSION` has no valid version.
    #[error(transparent)]
    Version(#[from] version::VersionError),
    /// No closure could be chosen.
    #[error(transparent)]
    Resolve(#[from] resolve::Error),
    /// A `.deb` could not be read.
    #[error(transparent)]
    Deb(#[from] deb::Error),
    /// The packages could not be unpacked into one tree.
    #[error(transparent)]
    Base(#[from] base::Error),
    /// The signed release lists no `Packages` index for a component and architecture.
    #[error(
        "the release lists no `{index}` index: the archive has no component `{component}` for architecture \
         `{architecture}`"
    )]
    MissingIndex {
        /// `main/binary-amd64/Packages`.
        index: String,
        /// The component.
        component: String,
        /// The architecture.
        architecture: String,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Release(error) => error.hint(),
            Error::Control(error) => error.hint(),
            Error::Resolve(error) => error.hint(),
            Error::Deb(error) => error.hint(),
            Error::Base(error) => error.hint(),
            Error::Version(_) => Some(
                "write a pinned package as `name=VERSION` with a Debian version, e.g. `gcc-12=12.2.0-14`".into(),
            ),
            Error::MissingIndex { .. } => Some(
                "check `components` and `architecture` of the source against the archive's `dists/SUITE/` \
                 (Debian's are main, contrib, non-free, non-free-firmware)"
                    .into(),
            ),
        }
    }
}
