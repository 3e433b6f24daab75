//! Every environment variable hstore reads, documented once.

/// The store directory (overrides the XDG default; `--store` overrides it).
pub const HSTORE_STORE: &str = "HSTORE_STORE";
/// Where downloads and other rebuildable state go.
pub const HSTORE_CACHE: &str = "HSTORE_CACHE";
/// Base of the default store location (`$XDG_DATA_HOME/hstore`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Fallback base of the default store location (`~/.local/share/hstore`).
pub const HOME: &str = "HOME";
/// Disables colour when set to anything (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Log filter, overriding `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";
