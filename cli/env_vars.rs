//! Every environment variable hstore reads, documented once.

/// The store directory (overrides the XDG default; `--store` overrides it).
pub const HSTORE_STORE: &str = "HSTORE_STORE";
/// Where rebuildable state goes (git repository cache); default `$XDG_CACHE_HOME/hstore` or `~/.cache/hstore`.
pub const HSTORE_CACHE: &str = "HSTORE_CACHE";
/// Base of the default store location (`$XDG_DATA_HOME/hstore`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Fallback base of the default store location (`~/.local/share/hstore`).
pub const HOME: &str = "HOME";
/// Disables colour when set to anything (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Log filter, overriding `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Base of the default cache location (`$XDG_CACHE_HOME/hstore`, else `~/.cache/hstore`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Tests only: when `1`, download retries happen without sleeping.
pub const HSTORE_TEST_NO_RETRY_DELAY: &str = "HSTORE_TEST_NO_RETRY_DELAY";
/// rustup's home (default `~/.rustup`): where `rust_toolchain` sources are found at lock time.
pub const RUSTUP_HOME: &str = "RUSTUP_HOME";
