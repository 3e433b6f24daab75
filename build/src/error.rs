//! [`BuildError`]: what can stop a build before, during or after the sandbox runs.

use std::path::PathBuf;

use hstore_store::Digest;

/// Everything that can go wrong in [`build`](super::build).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Inputs the lockfile names are not in the store; nothing was started.
    #[error("{} input(s) of `{recipe}` are not in the store:{}", missing.len(), list_missing(missing))]
    MissingInputs {
        /// The recipe.
        recipe: String,
        /// (input, address) pairs.
        missing: Vec<(String, Digest)>,
    },
    /// An input would need a file name that is not valid.
    #[error("input `{input}` needs the file name `{name}`, which is invalid: {reason}")]
    InvalidInputName {
        /// The input.
        input: String,
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A store operation failed.
    #[error("store operation failed for {what}")]
    Store {
        /// What we were handling.
        what: String,
        /// Why.
        #[source]
        source: hstore_store::Error,
    },
    /// The sandbox could not run the build.
    #[error(transparent)]
    Sandbox(#[from] hstore_sandbox::Error),
    /// A recipe could not be loaded.
    #[error(transparent)]
    Recipe(#[from] hstore_model::recipe::Error),
    /// No recipe has this name.
    #[error("no recipe named `{name}` in `{}` (recipes: {})", dir.display(), known.join(", "))]
    UnknownRecipe {
        /// The name asked for.
        name: String,
        /// The recipes directory.
        dir: PathBuf,
        /// The recipes there.
        known: Vec<String>,
    },
    /// Nothing to build.
    #[error("no recipe in `{}` has a [build] section", dir.display())]
    NoBuildableRecipe {
        /// The recipes directory.
        dir: PathBuf,
    },
    /// The recipe builds nothing.
    #[error("recipe `{recipe}` (`{}`) has no [build] section", file.display())]
    NoBuildSection {
        /// The recipe.
        recipe: String,
        /// Its file.
        file: PathBuf,
    },
    /// `--target` names a target the recipe does not declare.
    #[error(
        "recipe `{recipe}` has no target `{target}`; its targets are: {}",
        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
    )]
    UnknownTarget {
        /// The recipe.
        recipe: String,
        /// The target asked for.
        target: String,
        /// The recipe's targets.
        known: Vec<String>,
    },
    /// The lockfile does not cover the recipe as it is now.
    #[error(
        "lockfile `{}` does not match recipe `{recipe}`{}",
        lockfile.display(),
        source_name.as_ref().map(|name| format!(": source `{name}` changed or is missing")).unwrap_or_default()
    )]
    StaleLockfile {
        /// The lockfile.
        lockfile: PathBuf,
        /// The recipe.
        recipe: String,
        /// The source that changed, when one is to blame.
        source_name: Option<String>,
    },
    /// A deployment case file is invalid.
    #[error("invalid deployment case `{}`: {message}", path.display())]
    InvalidCase {
        /// The case file.
        path: PathBuf,
        /// toml's message.
        message: String,
    },
    /// The build script failed.
    #[error("build of `{recipe}` for target `{target}` failed ({status}); log kept at `{}`\n{tail}", log.display())]
    ScriptFailed {
        /// The recipe.
        recipe: String,
        /// The target.
        target: String,
        /// The exit status, in words.
        status: String,
        /// The full log on the host.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A scratch file could not be prepared.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn list_missing(missing: &[(String, Digest)]) -> String {
    use std::fmt::Write as _;
    missing
        .iter()
        .fold(String::new(), |mut text, (input, address)| {
            let _ = write!(text, "\n  - {input}: {address}");
            text
        })
}

impl BuildError {
    pub(crate) fn store(what: impl Into<String>, source: hstore_store::Error) -> Self {
        BuildError::Store {
            what: what.into(),
            source,
        }
    }
}

impl hstore_store::Hint for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::MissingInputs { .. } => Some(
                "run `hstore fetch` on a connected machine, or `hstore import` a bundle exported with the same lockfile"
                    .into(),
            ),
            BuildError::ScriptFailed { .. } => {
                Some("the sandbox has no network: every input must come from the lockfile's sources".into())
            }
            BuildError::Store { source, .. } => source.hint(),
            BuildError::Sandbox(error) => error.hint(),
            BuildError::Recipe(error) => error.hint(),
            BuildError::StaleLockfile { .. } => Some("run `hstore lock` on a connected machine".into()),
            BuildError::UnknownTarget { .. } => Some("pass `--target` with one of the recipe's targets".into()),
            BuildError::InvalidInputName { .. }
            | BuildError::Io { .. }
            | BuildError::UnknownRecipe { .. }
            | BuildError::NoBuildableRecipe { .. }
            | BuildError::NoBuildSection { .. }
            | BuildError::InvalidCase { .. } => None,
        }
    }
}

/// Result alias for builds.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;
