//! The integration tests: one binary, one module per area, each test running the real `hstore` binary.

mod build;
