//! hstore-fetchers: the fetchers that turn each source kind of a recipe ([`recipe`]) into verified store objects
//! pinned in a lockfile ([`lockfile`]): [`git`], [`crates`] (`cargo_lock`), [`url`], [`path`], [`rust_toolchain`],
//! [`xmake`] (the archives of a project's xmake packages), downloading through [`http`] with [`mirrors`] applied,
//! orchestrated by [`resolve`]; [`requirements`] locks Python wheels per target. (`recipe` sources, another recipe's
//! output, lock to no artifact: their identity is a build key.)
//!
//! Module graph (no cycles): [`resolve`] (the orchestrator: `lock`, `fetch`, one `match` arm per kind) and
//! [`kinds`] (the per-kind registry: record kinds) → each kind's module → `pinned` (the one pinned-download
//! skeleton), [`context`] (the shared [`Fetcher`] state: store, downloader, git, mirrors, reporter) and [`record`]
//! (download records shared by the kinds that download) → [`http`], [`archive`], [`error`]. The recipe and
//! lockfile models are the `hstore-model` crate, re-exported here as [`recipe`] and [`lockfile`] for callers'
//! convenience.
//!
//! Fetchers never write into the store's object directory themselves: they hand a finished temp file or directory
//! to [`hstore_store::Store`], which hashes, verifies and renames it into place.

pub mod archive;
pub mod context;
pub mod crates;
pub mod debian;
pub mod error;
pub mod evaluator;
pub mod git;
pub mod http;
pub mod kinds;
pub mod license;
pub mod mirrors;
pub mod path;
mod pinned;
pub mod record;
pub mod reporter;
pub mod requirements;
pub mod resolve;
pub mod rust_toolchain;
pub mod url;
pub mod xmake;

pub use context::{Fetcher, FetcherOptions};
pub use error::{Error, Result};
pub use evaluator::{
    EvaluatorError, LockEvaluator, NoEvaluator, XmakeProbeOutcome, XmakeProbeRequest,
};
pub use hstore_model::{lockfile, recipe};
pub use reporter::{NoReporter, Reporter};
pub use resolve::Update;
