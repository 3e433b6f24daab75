//! hstore's integration tests: one binary, one module per area, each test running the real `hstore` binary in its
//! own temp directory.

mod common;
mod store;
