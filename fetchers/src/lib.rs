//! hstore-fetchers: what recipes ask for ([`recipe`]), what a lock pinned ([`lockfile`]), and the fetchers that
//! turn each source kind into verified store objects, with safe unpacking of downloaded archives ([`archive`]).
//!
//! Fetchers never write into the store's object directory themselves: they hand a finished temp file or directory
//! to [`hstore_store::Store`], which hashes, verifies and renames it into place.

pub mod archive;
pub mod lockfile;
pub mod recipe;
