//! Resolves arguments, environment and defaults into validated settings, once, before any command runs.

#![expect(
    clippy::disallowed_methods,
    reason = "the one place that reads the environment (clippy.toml)"
)]

use std::path::PathBuf;

use anyhow::{Context, Result};

use hstore_build::PlanContext;

use crate::args::GlobalArgs;
use crate::env_vars;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct GlobalSettings {
    /// The store root.
    pub store: PathBuf,
    /// The cache directory (`HSTORE_CACHE`, else `$XDG_CACHE_HOME/hstore`, else `~/.cache/hstore`).
    pub cache: PathBuf,
    /// Whether download retries sleep (off with `HSTORE_TEST_NO_RETRY_DELAY=1`).
    pub retry_delay: bool,
    /// `-v` given: list each artifact as it is fetched.
    pub verbose: bool,
    /// How far ahead of the system clock hstore's clock runs (`HSTORE_TEST_CLOCK_OFFSET`, tests only).
    pub clock_offset: std::time::Duration,
    /// The `uv` that resolves `requirements` sources (`HSTORE_UV`, else `uv` on `PATH`).
    pub uv: PathBuf,
    /// `SOURCE_DATE_EPOCH`, for the one timestamp `hstore sbom` writes (unset: none).
    pub source_date_epoch: Option<String>,
}

impl GlobalSettings {
    /// `--store`/`HSTORE_STORE` (clap reads both), else `$XDG_DATA_HOME/hstore`, else `~/.local/share/hstore`.
    pub fn resolve(args: &GlobalArgs) -> Result<Self> {
        let store = match &args.store {
            Some(store) => store.clone(),
            None => default_store().context("cannot find a default store location")?,
        };
        let cache = default_cache().context("cannot find a cache location")?;
        let retry_delay =
            std::env::var_os(env_vars::HSTORE_TEST_NO_RETRY_DELAY).is_none_or(|v| v != "1");
        let clock_offset = match std::env::var(env_vars::HSTORE_TEST_CLOCK_OFFSET) {
            Ok(seconds) => std::time::Duration::from_secs(seconds.parse().with_context(|| {
                format!(
                    "{} must be a number of seconds, not `{seconds}`",
                    env_vars::HSTORE_TEST_CLOCK_OFFSET
                )
            })?),
            Err(_) => std::time::Duration::ZERO,
        };
        Ok(Self {
            store,
            cache,
            retry_delay,
            clock_offset,
            verbose: args.verbose > 0,
            uv: std::env::var_os(env_vars::HSTORE_UV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from("uv"), PathBuf::from),
            source_date_epoch: std::env::var_os(env_vars::SOURCE_DATE_EPOCH)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().into_owned()),
        })
    }
}

fn default_cache() -> Result<PathBuf> {
    if let Some(cache) = std::env::var_os(env_vars::HSTORE_CACHE).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(cache));
    }
    if let Some(cache) = std::env::var_os(env_vars::XDG_CACHE_HOME).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(cache).join("hstore"));
    }
    let home = std::env::var_os(env_vars::HOME)
        .filter(|v| !v.is_empty())
        .context("neither HSTORE_CACHE, XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/hstore"))
}

fn default_store() -> Result<PathBuf> {
    if let Some(data) = std::env::var_os(env_vars::XDG_DATA_HOME).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(data).join("hstore"));
    }
    let home = std::env::var_os(env_vars::HOME)
        .filter(|v| !v.is_empty())
        .context("neither HSTORE_STORE, XDG_DATA_HOME nor HOME is set; pass --store DIR")?;
    Ok(PathBuf::from(home).join(".local/share/hstore"))
}

/// What planning a build needs from the environment: the invoking user's home, for `~/` in host paths, host tools
/// and target env (read here, once, so `hstore-build` never reads the environment).
pub fn plan_context() -> PlanContext {
    PlanContext {
        home: std::env::var_os(env_vars::HOME).map(|home| home.to_string_lossy().into_owned()),
        overrides: std::collections::BTreeMap::new(),
        keys_from_records: false,
    }
}

/// `$RUSTUP_HOME`, else `~/.rustup` (rustup's own rule), for `rust_toolchain` sources.
pub fn rustup_home() -> Option<PathBuf> {
    use crate::env_vars::{HOME, RUSTUP_HOME};
    std::env::var_os(RUSTUP_HOME)
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os(HOME)
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".rustup"))
        })
}

/// Those of `variables` that are set and not empty, with their values (the S3 client's `AWS_*`, read when a cache
/// command opens an S3 cache).
pub fn aws_environment(variables: &[&'static str]) -> Vec<(&'static str, String)> {
    variables
        .iter()
        .filter_map(|&name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (name, value))
        })
        .collect()
}
