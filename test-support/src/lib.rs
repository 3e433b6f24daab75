//! hstore-test-support.
