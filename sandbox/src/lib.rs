//! hstore-sandbox.
