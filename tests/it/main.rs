//! hstore's integration tests: one binary, one module per area. Each test runs the real `hstore` binary in its own
//! sandboxed directory ([`hstore_test_support::TestEnv`]), against loopback servers and `file://` git repositories.

// clippy.toml's house rules are the product's: tests read their own switches and clean up fixtures by path.
#![allow(clippy::disallowed_methods)]

mod build;
mod cache;
mod campaign;
mod common;
mod cuda;
mod debian;
mod defects;
mod escape;
mod export;
mod fetch;
mod import;
mod lock;
mod module_graph;
mod namespaces;
mod operator;
mod provenance;
mod sbom;
mod store;
mod store_common;
mod support;
mod trust;
mod wheels;
mod xmake;
