//! [`DownloadRecord`]: what the store remembers about a pinned download (a `.crate`, a `url` source, a wheel), under
//! a metadata key derived from its upstream integrity, so a warm `lock` or `fetch` finds the address without network
//! or hashing. Shared by the kinds that download, owned by none of them.
//!
//! Also the mechanism of record namespaces, not their registry: each kind declares its [`RecordKind`] beside its
//! namespace and writes through [`put`]; [`crate::kinds::records`] (above the kinds, an exhaustive `match` over
//! source kinds) lists them, and `store verify` and `import` check records against that registry. This module
//! names no kind, so the kinds can use it without a cycle.

use hstore_store::{Digest, RecordKind, Store};
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

/// The record kind of a namespace holding [`DownloadRecord`]s. Download records never travel: `fetch` rebuilds
/// them from the upstream hash, and a bundle has no business planting them.
pub const fn download_kind(namespace: &'static str) -> RecordKind {
    RecordKind {
        namespace,
        travels: false,
        check: |_key, value| {
            let record: DownloadRecord = RecordKind::parse(value)?;
            Ok(vec![record.address])
        },
    }
}

/// Writes the record `kind/key`: the one way fetchers write records, always through a declared [`RecordKind`] (which
/// the kind's arm in [`crate::kinds::records`] lists), never a bare namespace string.
pub(crate) fn put<T: Serialize>(
    store: &Store,
    kind: &RecordKind,
    key: &str,
    value: &T,
) -> hstore_store::Result<()> {
    store.put_meta(kind.namespace, key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_kind_names_its_address_and_rejects_other_values() {
        let address = Digest::of_bytes(b"blob");
        let kind = download_kind("example-sha256");
        let value = serde_json::json!({"url": "http://127.0.0.1/x", "address": address, "size": 4});
        assert_eq!((kind.check)("k", &value), Ok(vec![address]));
        assert!((kind.check)("k", &serde_json::json!({"url": "x"})).is_err());
        assert!(!kind.travels);
    }

    #[test]
    fn put_writes_under_the_kinds_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = DownloadRecord {
            url: "http://127.0.0.1/x".into(),
            address: Digest::of_bytes(b"blob"),
            size: 4,
        };
        put(&store, &download_kind("example-sha256"), "k", &record).unwrap();
        let read: Option<DownloadRecord> = store.get_meta("example-sha256", "k").unwrap();
        assert_eq!(read, Some(record));
    }
}
