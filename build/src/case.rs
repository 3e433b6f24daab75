//! Deployment cases: `recipes/cases/<NAME>.toml`, a named preset of recipes, a target and an install prefix
//! (`hstore build --deployment-case NAME`), like the SVC repository's `deployment/cases/<NAME>/`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{BuildError, Result};

/// The directory under the recipes directory that holds deployment cases.
pub const CASES_DIR: &str = "cases";

/// `recipes/cases/<NAME>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentCase {
    /// The `[case]` table.
    pub case: CaseTable,
}

/// `[case]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseTable {
    /// Recipes to build.
    pub recipes: Vec<String>,
    /// The target.
    pub target: String,
    /// Where to install the outputs (optional).
    pub install_path: Option<PathBuf>,
    /// What it is for, for people reading the case file.
    #[serde(default)]
    pub description: String,
}

impl DeploymentCase {
    /// Reads `<recipes_dir>/cases/<name>.toml`.
    pub fn load(recipes_dir: &Path, name: &str) -> Result<Self> {
        let path = recipes_dir.join(CASES_DIR).join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Io {
            action: "read deployment case",
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| BuildError::InvalidCase {
            path,
            message: error.to_string().trim_end().to_owned(),
        })
    }
}
