//! The `debian` source kind: a base tree assembled from pinned Debian binary packages.
//!
//! [`deb`] reads one `.deb` (its control fields and its data member, streamed); [`base`] unpacks a set of them into
//! one deterministic tree, doing what the skipped maintainer scripts would have done for a build (merged /usr,
//! alternatives, a minimal /etc).

pub mod base;
pub mod deb;
