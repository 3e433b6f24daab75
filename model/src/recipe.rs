//! Recipes: TOML files in `recipes/` naming the sources a build needs, its targets and its build script.
//!
//! The keys are a contract (ARCHITECTURE.md §4b): `[recipe] name`, `[sources.<name>]` with exactly one of `git`,
//! `cargo_lock`, `url` or `path`, `[targets.<name>]` with `host_paths`, `host_tools`, `env`, and `[build] script`.
//! Unknown keys are errors, so a typo never silently drops a source. Source and recipe names are
//! `[a-z0-9_-]` so they can become environment variable suffixes (`$src_<name>`, `-` becomes `_`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ids::{GitRef, Sha256};

/// Why a recipe could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read recipe `{}`", path.display())]
    Read {
        /// The recipe file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid recipe `{}`: {message}", path.display())]
    Parse {
        /// The recipe file.
        path: PathBuf,
        /// toml's message, with line and column.
        message: String,
    },
    /// A source table is not exactly one kind.
    #[error("invalid recipe `{}`: source `{source_name}` {reason}", path.display())]
    InvalidSource {
        /// The recipe file.
        path: PathBuf,
        /// The source's name.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A name is not acceptable.
    #[error("invalid recipe `{}`: name `{name}` must be lowercase letters, digits, `_` or `-`", path.display())]
    InvalidName {
        /// The recipe file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// Two recipes share a name.
    #[error("recipes `{}` and `{}` are both named `{name}`", first.display(), second.display())]
    DuplicateRecipe {
        /// The name.
        name: String,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// The recipes directory holds no recipe.
    #[error("no recipes (`*.toml`) found in `{}`", dir.display())]
    NoRecipes {
        /// The directory searched.
        dir: PathBuf,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidSource { .. } => Some(
                "a source is one of: `git = URL` (+ `ref`, `submodules`), `cargo_lock = \"SOURCE:PATH\"`, \
                 `url = URL` + `sha256`, or `path = DIR`"
                    .into(),
            ),
            Error::NoRecipes { .. } => Some("pass `--recipes DIR` pointing at a directory of recipe files".into()),
            _ => None,
        }
    }
}

/// A parsed, validated recipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    /// The file it came from.
    pub file: PathBuf,
    /// `[recipe] name`.
    pub name: String,
    /// `[sources.*]`, by name.
    pub sources: BTreeMap<String, SourceSpec>,
    /// `[targets.*]`, by name.
    pub targets: BTreeMap<String, Target>,
    /// `[build]`, if the recipe builds anything.
    pub build: Option<Build>,
}

/// One source, exactly one kind. Serialized into the lockfile verbatim so `--locked` can compare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// A git repository at a ref.
    Git {
        /// Canonical repository URL.
        url: String,
        /// Branch, tag or commit.
        #[serde(rename = "ref")]
        reference: GitRef,
        /// Check out submodules recursively (skipping `update = none`).
        submodules: bool,
    },
    /// Every package of a Cargo.lock inside another source.
    CargoLock {
        /// The source holding the Cargo.lock.
        source: String,
        /// The Cargo.lock's path inside that source.
        path: String,
    },
    /// A plain download pinned by sha256.
    Url {
        /// Canonical URL.
        url: String,
        /// Expected sha256, lowercase hex.
        sha256: Sha256,
        /// Store it unpacked as a tree.
        unpack: bool,
        /// Leading path components to drop when unpacking.
        strip_components: usize,
    },
    /// A local directory, relative to the recipe file.
    Path {
        /// The directory as written in the recipe.
        path: String,
        /// Names or relative paths left out (plus `.git` and `target`).
        exclude: Vec<String>,
    },
}

/// `[targets.<name>]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Host paths bound read-only into the sandbox and fingerprinted.
    #[serde(default)]
    pub host_paths: Vec<PathBuf>,
    /// Commands whose output goes into the build key (`nvcc --version`).
    #[serde(default)]
    pub host_tools: Vec<String>,
    /// Extra environment for the build.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[build]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The shell script run in the sandbox.
    pub script: String,
    /// Extra environment for every target.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    recipe: RawHeader,
    #[serde(default)]
    sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    targets: BTreeMap<String, Target>,
    build: Option<Build>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    git: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    submodules: Option<bool>,
    cargo_lock: Option<String>,
    url: Option<String>,
    sha256: Option<String>,
    unpack: Option<bool>,
    strip_components: Option<usize>,
    path: Option<String>,
    exclude: Option<Vec<String>>,
}

/// Whether `name` is a valid recipe, source or target name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Recipe {
    /// Reads and validates one recipe file.
    pub fn load(file: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text, file)
    }

    /// Parses recipe text; `file` is used for messages and to resolve `path` sources.
    pub fn parse(text: &str, file: &Path) -> Result<Self, Error> {
        let raw: RawRecipe = toml::from_str(text).map_err(|error| Error::Parse {
            path: file.to_path_buf(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let invalid_name = |name: &str| Error::InvalidName {
            path: file.to_path_buf(),
            name: name.to_owned(),
        };
        if !is_valid_name(&raw.recipe.name) {
            return Err(invalid_name(&raw.recipe.name));
        }
        if let Some(bad) = raw.targets.keys().find(|name| !is_valid_name(name)) {
            return Err(invalid_name(bad));
        }
        let mut sources = BTreeMap::new();
        for (name, source) in raw.sources {
            if !is_valid_name(&name) {
                return Err(invalid_name(&name));
            }
            let spec = classify(file, &name, source)?;
            sources.insert(name, spec);
        }
        for (name, spec) in &sources {
            if let SourceSpec::CargoLock { source, .. } = spec
                && !sources.contains_key(source)
            {
                return Err(Error::InvalidSource {
                    path: file.to_path_buf(),
                    source_name: name.clone(),
                    reason: format!(
                        "refers to source `{source}`, which this recipe does not define"
                    ),
                });
            }
        }
        Ok(Self {
            file: file.to_path_buf(),
            name: raw.recipe.name,
            sources,
            targets: raw.targets,
            build: raw.build,
        })
    }

    /// The directory the recipe file is in (`path` sources are relative to it).
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// Loads every `*.toml` directly in `dir` (not `cases/`), sorted by recipe name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Recipe>, Error> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut recipes: Vec<Recipe> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                let recipe = Recipe::load(&path)?;
                if let Some(other) = recipes.iter().find(|r| r.name == recipe.name) {
                    return Err(Error::DuplicateRecipe {
                        name: recipe.name,
                        first: other.file.clone(),
                        second: path,
                    });
                }
                recipes.push(recipe);
            }
        }
        if recipes.is_empty() {
            return Err(Error::NoRecipes {
                dir: dir.to_path_buf(),
            });
        }
        recipes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(recipes)
    }
}

fn classify(file: &Path, name: &str, raw: RawSource) -> Result<SourceSpec, Error> {
    let invalid = |reason: String| Error::InvalidSource {
        path: file.to_path_buf(),
        source_name: name.to_owned(),
        reason,
    };
    let kinds: Vec<&str> = [
        raw.git.as_ref().map(|_| "git"),
        raw.cargo_lock.as_ref().map(|_| "cargo_lock"),
        raw.url.as_ref().map(|_| "url"),
        raw.path.as_ref().map(|_| "path"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kinds.len() != 1 {
        return Err(invalid(if kinds.is_empty() {
            "names no kind (expected one of `git`, `cargo_lock`, `url`, `path`)".into()
        } else {
            format!(
                "names several kinds ({}); use one per source",
                kinds.join(", ")
            )
        }));
    }
    let only = |allowed: &[&str]| -> Result<(), Error> {
        let present = [
            ("ref", raw.reference.is_some()),
            ("submodules", raw.submodules.is_some()),
            ("sha256", raw.sha256.is_some()),
            ("unpack", raw.unpack.is_some()),
            ("strip_components", raw.strip_components.is_some()),
            ("exclude", raw.exclude.is_some()),
        ];
        match present
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((key, _)) => Err(invalid(format!(
                "sets `{key}`, which a `{}` source does not take",
                kinds[0]
            ))),
            None => Ok(()),
        }
    };
    if let Some(url) = raw.git {
        only(&["ref", "submodules"])?;
        let reference = GitRef::new(raw.reference.unwrap_or_else(|| "HEAD".into()))
            .map_err(|error| invalid(format!("has {error}")))?;
        return Ok(SourceSpec::Git {
            url,
            reference,
            submodules: raw.submodules.unwrap_or(true),
        });
    }
    if let Some(spec) = raw.cargo_lock {
        only(&[])?;
        let Some((source, path)) = spec.split_once(':') else {
            return Err(invalid(format!(
                "has `cargo_lock = \"{spec}\"`; expected \"SOURCE:PATH\", e.g. \"svc:rust/Cargo.lock\""
            )));
        };
        return Ok(SourceSpec::CargoLock {
            source: source.to_owned(),
            path: path.to_owned(),
        });
    }
    if let Some(url) = raw.url {
        only(&["sha256", "unpack", "strip_components"])?;
        let Some(sha256) = raw.sha256 else {
            return Err(invalid(
                "is a `url` without `sha256`; every download must be pinned".into(),
            ));
        };
        let sha256 = Sha256::new(sha256).map_err(|error| {
            invalid(format!(
                "has sha256 `{}`; expected {}",
                error.value, error.expected
            ))
        })?;
        return Ok(SourceSpec::Url {
            url,
            sha256,
            unpack: raw.unpack.unwrap_or(false),
            strip_components: raw.strip_components.unwrap_or(0),
        });
    }
    only(&["exclude"])?;
    Ok(SourceSpec::Path {
        path: raw.path.unwrap_or_default(),
        exclude: raw.exclude.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[recipe]
name = "infinilm-svc"

[sources.svc]
git = "https://github.com/Ceng23333/InfiniLM-SVC.git"
ref = "main"

[sources.crates]
cargo_lock = "svc:rust/Cargo.lock"

[sources.tool]
url = "https://example.org/tool-1.0.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
unpack = true

[sources.self]
path = ".."

[targets.cpu]
[targets.cuda]
host_paths = ["/usr/local/cuda"]
host_tools = ["nvcc --version"]
env = { CUDA_HOME = "/usr/local/cuda" }

[build]
script = "echo hi"
"#;

    #[test]
    fn parses_the_documented_example() {
        let recipe = Recipe::parse(EXAMPLE, Path::new("recipes/x.toml")).unwrap();
        assert_eq!(recipe.name, "infinilm-svc");
        assert_eq!(recipe.sources.len(), 4);
        assert!(
            matches!(&recipe.sources["svc"], SourceSpec::Git { submodules: true, reference, .. } if reference == "main")
        );
        assert!(
            matches!(&recipe.sources["crates"], SourceSpec::CargoLock { source, path } if source == "svc" && path == "rust/Cargo.lock")
        );
        assert_eq!(
            recipe.targets["cuda"].host_paths,
            vec![PathBuf::from("/usr/local/cuda")]
        );
        assert_eq!(recipe.build.unwrap().script, "echo hi");
    }

    #[test]
    fn rejects_mistakes_with_named_errors() {
        let typo = EXAMPLE.replace("ref = \"main\"", "rev = \"main\"");
        let error = Recipe::parse(&typo, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("r.toml") && error.contains("rev"), "{error}");

        let unpinned = "[recipe]\nname='a'\n[sources.t]\nurl='http://x/y'\n";
        let error = Recipe::parse(unpinned, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("without `sha256`"), "{error}");

        let two = "[recipe]\nname='a'\n[sources.t]\nurl='http://x/y'\npath='.'\n";
        assert!(
            Recipe::parse(two, Path::new("r.toml"))
                .unwrap_err()
                .to_string()
                .contains("several kinds")
        );

        let dangling = "[recipe]\nname='a'\n[sources.c]\ncargo_lock='nope:Cargo.lock'\n";
        assert!(
            Recipe::parse(dangling, Path::new("r.toml"))
                .unwrap_err()
                .to_string()
                .contains("`nope`")
        );
    }
}
