//! [`DownloadRecord`]: what the store remembers about a pinned download (a `.crate`, a `url` source), under a
//! metadata key derived from its upstream integrity, so a warm `lock` or `fetch` finds the address without network
//! or hashing. Shared by the kinds that download (`crates`, `url`), owned by neither.

use hstore_store::Digest;
use serde::{Deserialize, Serialize};

/// Upstream integrity → content address, as stored in a kind's metadata namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRecord {
    /// Canonical download URL.
    pub url: String,
    /// The stored blob's or tree's address.
    pub address: Digest,
    /// Its size (blob bytes, or total file bytes of the tree).
    pub size: u64,
}
