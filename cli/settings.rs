//! Resolves arguments, environment and defaults into validated settings, once, before any command runs.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::GlobalArgs;
use crate::env_vars;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct GlobalSettings {
    /// The store root.
    pub store: PathBuf,
}

impl GlobalSettings {
    /// `--store`/`HSTORE_STORE` (clap reads both), else `$XDG_DATA_HOME/hstore`, else `~/.local/share/hstore`.
    pub fn resolve(args: &GlobalArgs) -> Result<Self> {
        let store = match &args.store {
            Some(store) => store.clone(),
            None => default_store().context("cannot find a default store location")?,
        };
        Ok(Self { store })
    }
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
