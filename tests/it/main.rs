//! hstore's integration tests: one binary, one module per area. Each test runs the real `hstore` binary in its own
//! temp directory.

mod build;
mod export;
mod import;
mod support;
