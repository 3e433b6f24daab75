//! hstore-fetchers: what recipes ask for ([`recipe`]), what a lock pinned ([`lockfile`]), and the fetchers that
//! turn each source kind into verified store objects: [`git`], [`crates`] (`cargo_lock`), [`url`], [`path`], [`xmake`]
//! (the archives of a project's xmake packages), all
//! downloading through [`http`] with [`mirrors`] applied, orchestrated by [`resolve`].
//!
//! Fetchers never write into the store's object directory themselves: they hand a finished temp file or directory
//! to [`hstore_store::Store`], which hashes, verifies and renames it into place.

pub mod archive;
pub mod crates;
pub mod error;
pub mod git;
pub mod http;
pub mod lockfile;
pub mod mirrors;
pub mod path;
pub mod recipe;
pub mod reporter;
pub mod resolve;
pub mod url;
pub mod xmake;

pub use error::{Error, Result};
pub use reporter::{NoReporter, Reporter};
pub use resolve::{Fetcher, FetcherOptions, Update};
