//! hstore-store: the content-addressed object store at the bottom of hstore.
//!
//! The store knows nothing of recipes, fetchers or builds: it stores bytes and trees by their BLAKE3 address,
//! serializes them as NAR, keeps gc roots and small JSON records, and carries objects across the air gap in bundles.
//!
//! # Glossary
//! - **store object**: a blob or a directory node, stored under its address: in its own file in `objects-v1/`, or
//!   among a tree add's small objects in a pack in `packs-v1/`.
//! - **digest** / **address**: `b3:` + 64 lowercase hex of BLAKE3 over an object's canonical bytes ([`Digest`]).
//! - **blob**: a file's bytes. **tree**: a Merkle directory; its address is its root directory node's address.
//! - **NAR**: the Nix ARchive serialization, byte-identical to `nix-store --dump` ([`nar`]).
//! - **root**: a named record of addresses that gc keeps, with everything below them ([`Root`]).
//! - **bundle**: one streamed file carrying objects and records from one store to another.
//! - **recipe** / **lockfile**: defined by the layers above; the store only sees the lockfile as a blob.
#![deny(missing_docs)]

pub mod bundle;
pub mod clock;
pub mod digest;
pub mod error;
mod frames;
pub mod gc;
pub mod ingest;
pub mod layout;
pub mod materialize;
pub mod meta;
pub mod nar;
mod pack;
pub mod path_component;
pub mod remove;
pub mod stat_cache;
pub mod store;
pub mod symlink_target;
pub mod transfer;
pub mod tree;
pub mod verify;
pub mod walk;

pub use digest::Digest;
pub use error::{Error, Hint, Result};
pub use gc::GcReport;
pub use ingest::{Access, Added, hash_file, hash_tree};
pub use layout::{Layout, ObjectFormat};
pub use materialize::Permissions;
pub use meta::{RecordKind, RecordKinds, RecordSchema, Root};
pub use pack::Location;
pub use path_component::PathComponent;
pub use remove::{TempTree, remove_tree};
pub use store::{BlobReader, LockMode, ObjectCopy, ObjectInfo, Store, StoredObject};
pub use symlink_target::{SymlinkTargetError, check_symlink_target};
pub use transfer::{BlobEncoding, copy_verified};
pub use tree::{Directory, Node};
pub use verify::{Problem, VerifyReport};
