//! hstore-fetchers: getting sources onto disk so the store can hash them.
//!
//! Fetchers never write into the store: they hand over a finished file or directory (see ARCHITECTURE.md §5).

pub mod archive;
