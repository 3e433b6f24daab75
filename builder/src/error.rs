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
    /// A plan's base names no input holding a tree (the recipe checks that it names a `debian` source, so this is
    /// a plan made by hand or a lockfile edited by hand).
    #[error(
        "the base `{base}` of `{recipe}` for target `{target}` is not a tree input of the plan"
    )]
    InvalidBase {
        /// The recipe.
        recipe: String,
        /// The target.
        target: String,
        /// The base's source name.
        base: String,
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
    /// The pinned xmake that evaluates an `xmake_requires` source at lock could not be built.
    #[error("cannot build the xmake that evaluates `{source_name}`")]
    XmakeForProbe {
        /// `recipe.source` being probed.
        source_name: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
    /// The xmake probe ran but its output holds no report.
    #[error("the xmake probe of `{source_name}` for target `{target}` wrote no {file}")]
    NoProbeReport {
        /// `recipe.source` probed.
        source_name: String,
        /// The target probed.
        target: String,
        /// The report's file name.
        file: &'static str,
    },
    /// The xmake probe's report is not the JSON its script writes.
    #[error("invalid xmake package report ({file}) of `{source_name}` for target `{target}`")]
    ProbeReport {
        /// `recipe.source` probed.
        source_name: String,
        /// The target probed.
        target: String,
        /// The report's file name.
        file: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
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
    /// A build record names a dependency's build key whose record the store no longer holds.
    #[error(
        "the build of `{recipe}` read input `{input}`, the output of build key {key}, whose record is not in the store"
    )]
    DependencyRecordMissing {
        /// The dependent recipe.
        recipe: String,
        /// Its input.
        input: String,
        /// The dependency's build key.
        key: Digest,
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
    /// The plan cannot be written as the build key's document.
    #[error("cannot compute the build key of `{recipe}` for target `{target}`")]
    KeyEncoding {
        /// The recipe.
        recipe: String,
        /// The target.
        target: String,
        /// serde_json's reason.
        #[source]
        source: serde_json::Error,
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
            BuildError::InvalidBase { base, .. } => Some(format!(
                "`base` must name a `debian` source of the recipe; check `[sources.{base}]`, then run `hstore lock`"
            )),
            BuildError::XmakeTargetNotLocked { target, .. } => Some(format!(
                "`hstore lock` probes a target only where its declared host paths exist: run it on a machine that \
                 has target `{target}`'s SDK, and commit the lockfile"
            )),
            BuildError::ScriptFailed { tail, .. } => script_failure(tail).map(|failure| failure.hint()),
            BuildError::XmakeForProbe { source, .. } => source.hint(),
            BuildError::NoProbeReport { .. } | BuildError::ProbeReport { .. } => Some(
                "the probe ran under an xmake other than the pinned one, or failed; see the probe's log".into(),
            ),
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
            BuildError::KeyEncoding { .. } => {
                Some("the key holds the script, env and host paths as text: write host paths in UTF-8".into())
            }
            BuildError::DependencyRecordMissing { .. } => Some(
                "the dependency's record was removed (`hstore store roots remove` and `gc`) or not imported (a \
                 bundle without `--with-builds`): run `hstore build` for the recipe again"
                    .into(),
            ),
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

/// What a failed build's log shows went wrong, when it is something hstore can advise on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScriptFailure<'a> {
    /// A shell could not find a command.
    MissingCommand(&'a str),
    /// A write was refused under `/build` (or a relative path, which is under `/build`): typically a copy of a
    /// read-only input, since `cp -r` keeps its modes.
    DeniedInBuild,
    /// A write was refused somewhere the build may not write (the base system, an input, a host path).
    DeniedElsewhere(&'a str),
    /// Name resolution or a connection failed: the sandbox has no network.
    Network,
}

impl ScriptFailure<'_> {
    fn hint(&self) -> String {
        match self {
            ScriptFailure::MissingCommand(command) => format!(
                "`{command}` is not in the sandbox, which holds only the host base system, the recipe's sources and \
                 declared host paths: declare the tool as a source (`[sources.NAME] recipe = \"NAME\"` and \
                 `PATH = \"/src/NAME/bin:/usr/bin:/bin\"` in `[build] env`), or as a host path (`host_paths` and \
                 `env.PATH` in `[targets.T]`)"
            ),
            ScriptFailure::DeniedInBuild => "inputs under `/src` are read-only and a copy keeps their modes (`cp -r` \
                 makes read-only files and directories): make the copy writable (`chmod -R u+w /build/COPY`), or \
                 build out of tree and leave the sources where they are (e.g. `CARGO_TARGET_DIR=/build/target`, \
                 `cmake -B /build/out`)"
                .into(),
            ScriptFailure::DeniedElsewhere(path) => format!(
                "`{path}` is read-only to the build: it may write only `/build`, `$out`, `/tmp` and `$HOME`; the base \
                 system, the inputs under `/src` and host paths are read-only"
            ),
            ScriptFailure::Network => {
                "the sandbox has no network: every input must come from the lockfile's sources".into()
            }
        }
    }
}

/// Classifies a failed build by the last line of its log's tail that says why: a missing command, a refused
/// write, a network failure. `None` when no line does (no hint is better than a wrong one).
pub(crate) fn script_failure(tail: &str) -> Option<ScriptFailure<'_>> {
    tail.lines().rev().find_map(|line| {
        if let Some(command) = missing_command(line) {
            return Some(ScriptFailure::MissingCommand(command));
        }
        if line.contains("Permission denied") || line.contains("Read-only file system") {
            return Some(match denied_path(line) {
                Some(path) if path.starts_with('/') && !under(path, "/build") => {
                    ScriptFailure::DeniedElsewhere(path)
                }
                _ => ScriptFailure::DeniedInBuild,
            });
        }
        is_network_failure(line).then_some(ScriptFailure::Network)
    })
}

/// Whether `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The path a `Permission denied` line is about: the word just before the message (`cp: cannot create regular
/// file 'x/y': Permission denied`, `sh: 1: cannot create x: Permission denied`) or just after it (Python's
/// `PermissionError: [Errno 13] Permission denied: 'x'`), if either looks like a path.
fn denied_path(line: &str) -> Option<&str> {
    let message = if line.contains("Permission denied") {
        "Permission denied"
    } else {
        "Read-only file system"
    };
    let (before, after) = line.split_once(message)?;
    before
        .split_whitespace()
        .last()
        .and_then(path_word)
        .or_else(|| after.split_whitespace().take(2).find_map(path_word))
}

/// `word` without the quotes and punctuation around it, if it looks like a path (has a `/` or a `.`).
fn path_word(word: &str) -> Option<&str> {
    let word = word.trim_matches(|c: char| {
        matches!(
            c,
            '\'' | '"' | '`' | ':' | ',' | '(' | ')' | '‘' | '’' | '“' | '”'
        )
    });
    (word.contains('/') || word.contains('.')).then_some(word)
}

/// Whether a log line reports a failed name lookup or connection, as curl, wget, git, pip, cargo and the C
/// library word it.
fn is_network_failure(line: &str) -> bool {
    const SIGNS: &[&str] = &[
        "could not resolve host",
        "couldn't resolve host",
        "temporary failure in name resolution",
        "name or service not known",
        "nodename nor servname",
        "failed to lookup address",
        "no address associated with hostname",
        "name resolution",
        "getaddrinfo",
        "dns error",
        "connection refused",
        "network is unreachable",
        "no route to host",
        "failed to establish a new connection",
        "failed to connect to",
        "could not connect to",
        "unable to connect to",
        "connection timed out",
    ];
    let lower = line.to_ascii_lowercase();
    SIGNS.iter().any(|sign| lower.contains(sign))
}

/// The command a shell reported missing in a log line: bash's `NAME: command not found`, dash's `NAME: not found`.
pub(crate) fn missing_command(line: &str) -> Option<&str> {
    let before = line
        .strip_suffix(": command not found")
        .or_else(|| line.strip_suffix(": not found"))?;
    let command = before.rsplit(": ").next()?.trim();
    (!command.is_empty() && !command.contains(' ')).then_some(command)
}

/// Result alias for builds.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_are_found_in_bash_and_dash_messages() {
        assert_eq!(
            script_failure("+ make\n/bin/sh: line 3: xmake: command not found\n"),
            Some(ScriptFailure::MissingCommand("xmake"))
        );
        assert_eq!(
            script_failure("sh: 1: cmake: not found"),
            Some(ScriptFailure::MissingCommand("cmake"))
        );
        assert_eq!(script_failure("error: linking failed"), None);
    }

    #[test]
    fn refused_writes_are_told_apart_by_where_they_were() {
        for line in [
            "cp: cannot create regular file '/build/code/gen.h': Permission denied",
            "/bin/sh: 1: cannot create code/gen.h: Permission denied",
            "bash: line 3: code/out.txt: Permission denied",
            "touch: cannot touch 'code/stamp': Permission denied",
            "PermissionError: [Errno 13] Permission denied: 'code/x.py'",
            "mkdir: cannot create directory ‘code/target’: Permission denied",
        ] {
            assert_eq!(
                script_failure(line),
                Some(ScriptFailure::DeniedInBuild),
                "{line}"
            );
        }
        assert_eq!(
            script_failure("touch: cannot touch '/usr/lib/x': Permission denied"),
            Some(ScriptFailure::DeniedElsewhere("/usr/lib/x"))
        );
        assert_eq!(
            script_failure("touch: cannot touch '/src/code/x': Read-only file system"),
            Some(ScriptFailure::DeniedElsewhere("/src/code/x"))
        );
        assert_eq!(
            script_failure("cp: cannot create regular file '/buildx/y': Permission denied"),
            Some(ScriptFailure::DeniedElsewhere("/buildx/y"))
        );
    }

    #[test]
    fn the_network_hint_needs_a_network_failure_in_the_log() {
        for line in [
            "curl: (6) Could not resolve host: example.com",
            "fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com",
            "wget: unable to resolve host address 'example.com' (Temporary failure in name resolution)",
            "curl: (7) Failed to connect to 127.0.0.1 port 8080 after 0 ms: Connection refused",
            "ERROR: Could not find a version that satisfies the requirement x (from versions: none) \
             [Errno -3] Temporary failure in name resolution",
            "error: failed to get `serde` as a dependency: [6] Couldn't resolve host name",
            "connect: Network is unreachable",
        ] {
            assert_eq!(script_failure(line), Some(ScriptFailure::Network), "{line}");
        }
        assert_eq!(script_failure("make: *** [all] Error 2"), None);
        // The last telling line wins: a refused write after a network warning is what failed the build.
        assert_eq!(
            script_failure(
                "warning: could not resolve host: x\ncp: cannot create regular file 'a/b': Permission denied"
            ),
            Some(ScriptFailure::DeniedInBuild)
        );
    }
}
