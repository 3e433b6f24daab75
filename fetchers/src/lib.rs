//! hstore-fetchers.
