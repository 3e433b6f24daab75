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
    Sandbox(#[from] crate::Error),
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
            _ => None,
        }
    }
}

/// Result alias for builds.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;
