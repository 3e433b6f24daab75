//! [`DownloadRecord`]: what the store remembers about a pinned download (a `.crate`, a `url` source, a wheel), under
//! a metadata key derived from its upstream integrity, so a warm `lock` or `fetch` finds the address without network
//! or hashing. Shared by the kinds that download, owned by none of them.
//!
//! Also the fetchers' part of the registry of record namespaces: each kind declares its [`RecordKind`] beside its
//! namespace, [`KINDS`] lists them all, and every record a fetcher writes goes through [`put`], which (in debug
//! builds, so in every test) refuses a kind missing from [`KINDS`]. `store verify` and `import` check records
//! against that registry, so a kind that forgot it would fail verify on every store holding its records.

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

/// Every record kind the fetchers write.
pub const KINDS: [RecordKind; 4] = [
    crate::git::RECORDS,
    crate::crates::RECORDS,
    crate::url::RECORDS,
    crate::requirements::RECORDS,
];

/// Writes the record `kind/key`. The one way fetchers write records, so that none is written under a namespace
/// the registry does not list.
pub(crate) fn put<T: Serialize>(
    store: &Store,
    kind: &RecordKind,
    key: &str,
    value: &T,
) -> hstore_store::Result<()> {
    debug_assert!(
        KINDS
            .iter()
            .any(|listed| listed.namespace == kind.namespace),
        "record namespace `{}` is not listed in hstore_fetchers::record::KINDS",
        kind.namespace
    );
    store.put_meta(kind.namespace, key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fetcher_kind_is_listed_once_and_names_its_address() {
        let address = Digest::of_bytes(b"wheel");
        let download =
            serde_json::json!({"url": "http://127.0.0.1/x", "address": address, "size": 5});
        let commit = serde_json::json!({
            "url": "file:///repo", "address": address, "size": 5, "submodules": [],
        });
        let mut namespaces: Vec<&str> = KINDS.iter().map(|kind| kind.namespace).collect();
        namespaces.sort_unstable();
        assert_eq!(
            namespaces,
            ["crate-sha256", "git-commit", "url-sha256", "wheel-sha256"]
        );
        for kind in KINDS {
            assert!(!kind.travels, "`{}` must not travel", kind.namespace);
            let value = if kind.namespace == crate::git::META_NAMESPACE {
                &commit
            } else {
                &download
            };
            assert_eq!(
                (kind.check)("k", value),
                Ok(vec![address]),
                "{}",
                kind.namespace
            );
            assert!((kind.check)("k", &serde_json::json!({"url": "x"})).is_err());
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is not listed in hstore_fetchers::record::KINDS")]
    fn a_kind_missing_from_the_registry_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let unlisted = download_kind("forgotten-sha256");
        let _ = put(&store, &unlisted, "k", &serde_json::json!({}));
    }
}
