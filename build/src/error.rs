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
    /// An xmake package archive the lockfile names is not in the store; nothing was started.
    #[error(
        "xmake package `{package}` {version} (input `{input}` of `{recipe}`) is not in the store: its archive is \
         missing; xmake would look for it as {names}"
    )]
    MissingXmakeArchive {
        /// The recipe.
        recipe: String,
        /// The `xmake_requires` source.
        input: String,
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The file names xmake accepts, quoted and comma-separated.
        names: String,
    },
    /// An `xmake_requires` source was not locked for the target being built.
    #[error(
        "xmake packages of source `{source_name}` of `{recipe}` were not locked for target `{target}`"
    )]
    XmakeTargetNotLocked {
        /// The recipe.
        recipe: String,
        /// The source.
        source_name: String,
        /// The target.
        target: String,
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
    /// A recipe's `limits` table holds a value that is not a limit.
    #[error("recipe `{recipe}` ({}): `{table}.{key}` is invalid: {reason}", file.display())]
    InvalidLimit {
        /// The recipe.
        recipe: String,
        /// Its file.
        file: PathBuf,
        /// `[build.limits]` or `[targets.T.limits]`, as written.
        table: String,
        /// The key.
        key: &'static str,
        /// Why, with the value.
        reason: String,
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
    /// `--override-input` names a recipe or source that does not exist.
    #[error("--override-input `{given}`: {reason}")]
    UnknownOverride {
        /// The flag's value as given.
        given: String,
        /// What is not there, and what is.
        reason: String,
    },
    /// `--override-input` (`--infinicore-src`, `--infinilm-src`) names a directory that is not there.
    #[error("the source directory `{}` given for `{recipe}.{source_name}` was not found", dir.display())]
    OverrideDirMissing {
        /// The recipe.
        recipe: String,
        /// The source.
        source_name: String,
        /// The directory as given.
        dir: PathBuf,
        /// What the locked source is (`git https://…/InfiniCore.git at issue/951`), for the hint.
        locked: String,
    },
    /// `--component` (`--install-infinicore`, `--install-infinilm`) names no recipe.
    #[error("--component `{name}`: no recipe is named `{name}` or extends it; recipes: {}", known.join(", "))]
    UnknownComponent {
        /// The name given.
        name: String,
        /// The recipes there are.
        known: Vec<String>,
    },
    /// `--override-input` names a source that is not one directory.
    #[error(
        "source `{source_name}` of recipe `{recipe}` is a {kind} source: a local directory cannot stand in for it"
    )]
    NotOverridable {
        /// The recipe.
        recipe: String,
        /// The source.
        source_name: String,
        /// Its kind, in words.
        kind: &'static str,
    },
    /// A `requirements` source is an input of a target that declares no Python.
    #[error(
        "source `{source_name}` of recipe `{recipe}` is a set of Python wheels, but target `{target}` declares no \
         `python = {{ version, platform }}`"
    )]
    NoPythonTarget {
        /// The recipe.
        recipe: String,
        /// The `requirements` source.
        source_name: String,
        /// The target being built.
        target: String,
    },
    /// `recipe` sources lead back to where they started.
    #[error("`recipe` sources form a cycle: {}", chain.join(" → "))]
    Cycle {
        /// `recipe (target)` steps, the first repeated at the end.
        chain: Vec<String>,
    },
    /// A `recipe` source names a recipe that does not exist.
    #[error("recipe `{recipe}` (`{}`): source `{source_name}` names recipe `{dependency}`, which does not exist", file.display())]
    UnknownDependency {
        /// The dependent.
        recipe: String,
        /// Its file.
        file: PathBuf,
        /// The source.
        source_name: String,
        /// The missing recipe.
        dependency: String,
    },
    /// A dependency's key or output was needed before it was planned or built (a bug, or a failed dependency).
    #[error("input `{input}` needs the output of `{recipe}`, which has not been built")]
    DependencyNotBuilt {
        /// The dependency.
        recipe: String,
        /// The input reading it.
        input: String,
    },
    /// An output symlink breaks the store's rule for links in a tree (it could lead outside the output, alone or
    /// through other links); nothing was installed.
    #[error("cannot install {output}: symlink `{}` points to `{target}`, which could lead outside the output: {reason}", path.display())]
    InstallSymlinkEscapes {
        /// The output tree.
        output: Digest,
        /// The link, relative to the output.
        path: PathBuf,
        /// Its target.
        target: String,
        /// Which part of the rule it breaks.
        reason: hstore_store::SymlinkTargetError,
    },
    /// A directory of the output would go where the prefix has a symlink or a file.
    #[error("cannot install into `{}`: it exists and is not a directory (install never follows a symlink)", path.display())]
    InstallNotADirectory {
        /// The path under the prefix.
        path: PathBuf,
    },
    /// A file of the output would replace a directory in the prefix.
    #[error("cannot install `{}`: a directory is in the way", path.display())]
    InstallOccupied {
        /// The path under the prefix.
        path: PathBuf,
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
            BuildError::MissingXmakeArchive { .. } => Some(
                "run `hstore fetch` on a connected machine (it downloads and verifies the archive), or `hstore import` \
                 a bundle exported with the same lockfile"
                    .into(),
            ),
            BuildError::XmakeTargetNotLocked { target, .. } => Some(format!(
                "`hstore lock` probes a target only where its declared host paths exist: run it on a machine that \
                 has target `{target}`'s SDK, and commit the lockfile"
            )),
            BuildError::ScriptFailed { tail, .. } => Some(match missing_command(tail) {
                Some(command) => format!(
                    "`{command}` is not in the sandbox, which holds only the host base system, the recipe's sources \
                     and declared host paths: declare the tool as a source (`[sources.NAME] recipe = \"NAME\"` and \
                     `PATH = \"/src/NAME/bin:/usr/bin:/bin\"` in `[build] env`), or as a host path (`host_paths` and \
                     `env.PATH` in `[targets.T]`)"
                ),
                None => "the sandbox has no network: every input must come from the lockfile's sources".into(),
            }),
            BuildError::Store { source, .. } => source.hint(),
            BuildError::Sandbox(error) => error.hint(),
            BuildError::Recipe(error) => error.hint(),
            BuildError::StaleLockfile { .. } => Some("run `hstore lock` on a connected machine".into()),
            BuildError::UnknownOverride { .. } => Some(
                "write `--override-input RECIPE.SOURCE=DIR` with a recipe of the recipes directory and one of its \
                 `[sources.*]`"
                    .into(),
            ),
            BuildError::OverrideDirMissing { locked, .. } => Some(format!(
                "pass the path of a local checkout of {locked}, or drop the flag to build the locked source"
            )),
            BuildError::UnknownComponent { .. } => Some(
                "name a recipe of the recipes directory (a variant counts as its base: `infinilm` also selects \
                 `infinilm-issue-216`)"
                    .into(),
            ),
            BuildError::NotOverridable { .. } => Some(
                "override a `git`, `path` or unpacked `url` source (the checkout the others are read from), then \
                 run `hstore lock` if you changed what it pins"
                    .into(),
            ),
            BuildError::UnknownTarget { .. } => Some("pass `--target` with one of the recipe's targets".into()),
            BuildError::InvalidLimit { .. } => Some(
                "write durations as `90m`, `12h` and sizes as `512M`, `16G`, or `none` to lift the limit".into(),
            ),
            BuildError::NoPythonTarget { target, .. } => Some(format!(
                "add `python = {{ version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }}` to `[targets.{target}]` \
                 and run `hstore lock`"
            )),
            BuildError::Cycle { .. } => Some("a recipe cannot read its own output, even through others; break the chain".into()),
            BuildError::UnknownDependency { .. } => Some("fix the name, then run `hstore lock`".into()),
            BuildError::InstallSymlinkEscapes { .. } => Some(
                "make the recipe create relative links that climb first and then only descend, staying inside `$out` \
                 (`ln -s ../lib/x`, not `ln -s sub/../x`; see README: relocatable outputs)"
                    .into(),
            ),
            BuildError::InstallNotADirectory { .. } | BuildError::InstallOccupied { .. } => {
                Some("remove it, or install into another `--install-path`".into())
            }
            BuildError::DependencyNotBuilt { .. }
            | BuildError::InvalidInputName { .. }
            | BuildError::Io { .. }
            | BuildError::UnknownRecipe { .. }
            | BuildError::NoBuildableRecipe { .. }
            | BuildError::NoBuildSection { .. }
            | BuildError::InvalidCase { .. } => None,
        }
    }
}

/// The command a shell reported missing in a build log's tail: bash's `NAME: command not found`, dash's
/// `NAME: not found`; the last such line wins.
pub(crate) fn missing_command(tail: &str) -> Option<&str> {
    tail.lines().rev().find_map(|line| {
        let before = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))?;
        let command = before.rsplit(": ").next()?.trim();
        (!command.is_empty() && !command.contains(' ')).then_some(command)
    })
}

/// Result alias for builds.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_are_found_in_bash_and_dash_messages() {
        assert_eq!(
            missing_command("+ make\n/bin/sh: line 3: xmake: command not found\n"),
            Some("xmake")
        );
        assert_eq!(missing_command("sh: 1: cmake: not found"), Some("cmake"));
        assert_eq!(missing_command("error: linking failed"), None);
    }
}
