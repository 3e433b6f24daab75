//! Debian archives as a source of pinned `.deb` files: reading a suite's signed `InRelease` ([`release`]), its
//! `Packages` indexes ([`packages`], over the deb822 parser [`control`]), ordering versions as dpkg does
//! ([`version`]), and choosing the closure of packages a set of requests needs ([`resolve`]).
//!
//! Module graph (no cycles): [`resolve`] → [`packages`] → [`control`], [`version`]; [`release`] → [`control`]
//! (and `resolve`'s live test → [`release`], to verify the real archive it resolves from).
//! Nothing here does I/O: callers fetch the files and hand over their bytes.

pub mod control;
pub mod packages;
pub mod release;
pub mod resolve;
pub mod version;

pub use packages::{Package, Relation, parse_packages, parse_relations};
pub use release::{IndexFile, Release, Signer, verify_inrelease};
pub use resolve::{Request, Resolution, ResolveOptions, resolve};
pub use version::Version;
