//! hstore-cache: shared caches of store objects and signed build records, on engines clusters already run.
//!
//! A cache is named by a URL ([`CacheUrl`]): `s3://BUCKET[/PREFIX]` (Garage, MinIO, Ceph RGW, AWS; configured the
//! AWS way), `http(s)://…` (GET to read, PUT where the server allows it, e.g. nginx WebDAV) or `file:///DIR` (NFS,
//! Lustre). The network client is `object_store` (Apache Arrow's; request signing, retries with backoff), never a
//! hand-written one. The store crate stays free of network and tokio; this crate sits between it and the CLI.
//!
//! # Layout (normative; `docs/cache-format.md` is the user-facing description)
//! ```text
//! <cache>/hstore-cache-v2/
//! ├── packs/<id>.pack        object payloads back to back, in their stored encoding (see [`index`])
//! ├── packs/<id>.idx         the pack's index; <id> = BLAKE3 of these bytes; written after the pack (publishes it)
//! └── builds/<key hex>.json  a build record (build key → output tree, log) with ed25519 signatures (see [`record`])
//! ```
//! Invariants every writer keeps and every reader relies on:
//! - An object is verifiable alone: its address is the BLAKE3 of its canonical bytes. Readers re-hash every object
//!   before it reaches a store; a wrong byte is refused, named by address, and never stored.
//! - A pack is visible only through its index, and the index is uploaded after the pack, so a pusher killed midway
//!   leaves at most an unreferenced pack (harmless; a later push writes the same pack under the same name).
//! - A directory node is only ever in a published pack whose other objects, or earlier published packs, hold its
//!   whole subtree. So "the cache has this directory" means "the cache has this tree", and a push skips it.
//! - Names are content-derived (pack ids from the index bytes, records from the build key), so two machines pushing
//!   overlapping closures at once write either different names or identical bytes: the cache stays consistent.
//! - Build records count only when signed by a trusted key; objects need no signature (their address is the proof).

pub mod error;
pub mod index;
pub mod location;
pub mod pull;
pub mod push;
pub mod record;

pub use error::{Error, Result};
pub use index::{CacheIndex, IndexEntry, PackIndex};
pub use location::{Cache, CacheUrl, OpenOptions, S3Settings};
pub use pull::{PullReport, pull_objects};
pub use push::{PushReport, PushSpec, push_closure};
pub use record::{SignedRecord, TrustedRecord};

/// Logs how long one phase of a push or pull took, as a debug event (`RUST_LOG=hstore_cache=debug`, or `-v`):
/// `bench/cache.sh` (`HSTORE_CACHE_PROFILE=1`) reads its profile from these lines.
pub(crate) fn phase(name: &str, started: std::time::Instant, detail: std::fmt::Arguments<'_>) {
    tracing::debug!(
        "phase {name}: {:.3} s; {detail}",
        started.elapsed().as_secs_f64()
    );
}

/// The versioned top-level directory inside a cache; a format change adds a new name beside it (v2: packs hold
/// their directory nodes before their blobs; a v1 cache is left as it is, unread).
pub const CACHE_DIR: &str = "hstore-cache-v2";
/// Pack files and their indexes, under [`CACHE_DIR`].
pub const PACKS_DIR: &str = "packs";
/// Signed build records, under [`CACHE_DIR`].
pub const BUILDS_DIR: &str = "builds";
