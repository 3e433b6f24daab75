//! The registry of source kinds on the fetchers' side: for each [`SourceKind`], what its module declares that the
//! layers above must know without naming the module — today the record kinds it writes ([`records`]), from which
//! [`record_kinds`] (the fetchers' part of the store's registry of record namespaces) is derived.
//!
//! Invariants:
//! - [`records`] is an exhaustive `match` over [`SourceKind`] (no `_ =>`): a new kind does not compile until it says
//!   which record kinds it writes (`&[]` for none), so no hand-written list of namespaces can forget it.
//! - This module sits above the kinds' modules: it names them, they never name it (`record.rs` is only the
//!   mechanism they write through), which keeps the fetchers' module graph acyclic.

use hstore_model::recipe::SourceKind;
use hstore_store::RecordKind;

/// The record kinds that sources of `kind` write, each declared beside its namespace in the kind's module.
pub const fn records(kind: SourceKind) -> &'static [RecordKind] {
    match kind {
        SourceKind::Git => &[crate::git::RECORDS],
        SourceKind::CargoLock => &[crate::crates::RECORDS],
        SourceKind::Url => &[crate::url::RECORDS],
        SourceKind::Requirements => &[crate::requirements::RECORDS],
        SourceKind::Debian => &[crate::debian::source::RECORDS],
        // `path` is re-hashed on every lock, a toolchain is found by its directory, xmake archives are found by their
        // locked address, and a `recipe` source's output is a build record (the build crate's kind).
        SourceKind::Path
        | SourceKind::Recipe
        | SourceKind::RustToolchain
        | SourceKind::XmakeRequires => &[],
    }
}

/// Every record kind the fetchers write: the union of [`records`] over [`SourceKind::ALL`].
pub fn record_kinds() -> impl Iterator<Item = RecordKind> {
    SourceKind::ALL
        .into_iter()
        .flat_map(|kind| records(kind).iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hstore_store::Digest;

    #[test]
    fn every_fetcher_record_kind_is_listed_once_and_names_its_address() {
        let address = Digest::of_bytes(b"wheel");
        let download =
            serde_json::json!({"url": "http://127.0.0.1/x", "address": address, "size": 5});
        let commit = serde_json::json!({
            "url": "file:///repo", "address": address, "size": 5, "submodules": [],
        });
        let mut namespaces: Vec<&str> = record_kinds().map(|kind| kind.namespace).collect();
        namespaces.sort_unstable();
        assert_eq!(
            namespaces,
            [
                "crate-sha256",
                "deb-sha256",
                "git-commit",
                "url-sha256",
                "wheel-sha256"
            ]
        );
        for kind in record_kinds() {
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
}
