//! [`Error`]: everything a fetcher can fail with. One enum for the crate; the archive, recipe and
//! lockfile modules keep their own and are forwarded here.
//!
//! Every variant names the artifact or URL involved, so a per-item failure in a run of hundreds reads on its own.

use std::path::PathBuf;

/// Why fetching or locking a source failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client failed (connection refused, TLS, timeout after every retry).
    #[error("failed to download `{url}`")]
    Http {
        /// The URL actually requested (after mirror rewriting).
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status (after every retry, for retryable ones).
    #[error("failed to download `{url}`: server answered {status}")]
    HttpStatus {
        /// The URL actually requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body ended early or the connection dropped, and every retry failed too.
    #[error("failed to download `{url}`: {message}")]
    Transfer {
        /// The URL actually requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The downloaded bytes do not hash to the pinned sha256; nothing was stored.
    #[error(
        "sha256 mismatch for {what} downloaded from `{url}`\n    expected: {expected}\n    computed: {actual}"
    )]
    Sha256Mismatch {
        /// The artifact (`serde@1.0.0`, a URL source's name…).
        what: String,
        /// The URL actually requested.
        url: String,
        /// The pinned sha256.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// Re-fetching an artifact gave a different tree than the lockfile records.
    #[error(
        "artifact `{id}` drifted: its upstream bytes verified, but they now give a different tree\n    expected: {expected}\n    computed: {actual}"
    )]
    AddressDrift {
        /// The artifact id.
        id: String,
        /// The locked address.
        expected: hstore_store::Digest,
        /// The address the fresh bytes give.
        actual: hstore_store::Digest,
    },
    /// A `rust_toolchain` source names a toolchain that rustup has not installed here.
    #[error("Rust toolchain `{toolchain}` is not installed at `{}` and the store does not hold it", dir.display())]
    ToolchainMissing {
        /// `<version>-<host>`.
        toolchain: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// `--offline` and the artifact is not in the store.
    #[error("`{what}` is not in the store and `--offline` forbids downloading it")]
    Offline {
        /// The artifact, URL or repository.
        what: String,
    },
    /// A file system operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `git` command failed.
    #[error("git {action} failed for `{url}`: {stderr}")]
    Git {
        /// What we asked git to do.
        action: String,
        /// The repository (canonical URL).
        url: String,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// `git` could not be run at all.
    #[error("failed to run `git`")]
    GitMissing {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A ref names nothing in the repository.
    #[error("ref `{reference}` not found in `{url}`")]
    RefNotFound {
        /// The repository.
        url: String,
        /// The ref.
        reference: String,
    },
    /// A commit is missing from the repository (or its mirror).
    #[error("commit `{commit}` not found in `{url}`{}", submodule_note(submodule.as_deref()))]
    CommitNotFound {
        /// The repository (canonical URL).
        url: String,
        /// Where bytes were fetched from, if a mirror.
        fetched_from: Option<String>,
        /// The commit.
        commit: String,
        /// For a submodule: its path in the parent.
        submodule: Option<String>,
    },
    /// A submodule's pinned commit could not be fetched (absent from the repository or its mirror, or the fetch
    /// failed: an unreachable server, a corrupt repository).
    #[error(
        "cannot fetch submodule at `{path}`: commit `{commit}` of `{url}`{}",
        tried_note(url, tried)
    )]
    SubmoduleUnavailable {
        /// The submodule's path in the top-level tree.
        path: String,
        /// The commit the parent's gitlink pins.
        commit: String,
        /// The submodule's canonical URL (resolved against the parent's).
        url: String,
        /// The URL actually fetched (after mirror rewriting).
        tried: String,
        /// What git or the check said.
        #[source]
        source: Box<Error>,
    },
    /// A file inside a stored tree cannot be read because an object on its way is not in the store (removed by
    /// `store verify --repair`, or the store was damaged): never read as an empty file.
    #[error("cannot read `{path}` in {tree} ({what}): object {missing} is not in the store")]
    MissingInTree {
        /// Whose tree it is (``source `app` ``).
        what: String,
        /// The tree's address.
        tree: hstore_store::Digest,
        /// The file inside the tree, `/`-separated.
        path: String,
        /// The address that is missing (the file's blob, or a directory on the way).
        missing: hstore_store::Digest,
    },
    /// A file inside a stored tree is not UTF-8 text.
    #[error("`{path}` in {tree} ({what}) is not UTF-8 text (byte {offset} is invalid)")]
    NotText {
        /// Whose tree it is.
        what: String,
        /// The tree's address.
        tree: hstore_store::Digest,
        /// The file inside the tree.
        path: String,
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// `lock --update NAME` names no source of the recipes.
    #[error(
        "`--update {name}` names no source; the sources are: {}",
        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
    )]
    UnknownUpdate {
        /// The name given.
        name: String,
        /// Every source, as `recipe.source`.
        known: Vec<String>,
        /// The known name closest to the one given, if one is close.
        closest: Option<String>,
    },
    /// `.gitmodules` is malformed.
    #[error("invalid `.gitmodules` in `{url}` at `{commit}`: {reason}")]
    Gitmodules {
        /// The repository.
        url: String,
        /// The commit.
        commit: String,
        /// What is wrong.
        reason: String,
    },
    /// A Cargo.lock could not be read or parsed.
    #[error("invalid Cargo.lock `{path}` in source `{source_name}`: {message}")]
    CargoLock {
        /// The source holding it.
        source_name: String,
        /// Its path inside that source.
        path: String,
        /// Why.
        message: String,
    },
    /// A registry's `config.json` is unusable.
    #[error("invalid registry index config `{url}`: {message}")]
    IndexConfig {
        /// The config URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A Cargo.lock package has a source kind hstore cannot vendor.
    #[error("package `{name}@{version}` has unsupported source `{source_id}`")]
    UnsupportedCrateSource {
        /// Package name.
        name: String,
        /// Package version.
        version: String,
        /// The Cargo.lock `source`.
        source_id: String,
    },
    /// A registry package has no checksum in Cargo.lock.
    #[error("package `{name}@{version}` from `{source_id}` has no checksum in Cargo.lock")]
    MissingChecksum {
        /// Package name.
        name: String,
        /// Package version.
        version: String,
        /// The Cargo.lock `source`.
        source_id: String,
    },
    /// A git dependency's package was not found in its repository.
    #[error(
        "package `{name}` not found in `{url}` at `{commit}` (no Cargo.toml with that package name)"
    )]
    GitPackageNotFound {
        /// Package name.
        name: String,
        /// The repository.
        url: String,
        /// The commit.
        commit: String,
    },
    /// A source refers to another that produced no tree.
    #[error("source `{source_name}` needs `{needed}` to be a tree (git or path source)")]
    NotATree {
        /// The referring source.
        source_name: String,
        /// The source it refers to.
        needed: String,
    },
    /// A URL artifact cannot be unpacked: unknown archive type.
    #[error(
        "cannot unpack `{url}`: its name does not end in .tar.gz, .tgz, .tar.xz, .tar.zst, .tar or .zip"
    )]
    UnknownArchive {
        /// The URL.
        url: String,
    },
    /// A `requirements` source cannot be resolved as written.
    #[error("invalid requirements source `{source_name}`: {message}")]
    Requirements {
        /// The source.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// `uv` could not be run.
    #[error("failed to run `{}`", program.display())]
    UvMissing {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `uv pip compile` failed (unsatisfiable ranges, a package without a usable wheel, an unreachable index).
    #[error("`{}` could not resolve the requirements for target `{target}`:\n{stderr}", program.display())]
    Uv {
        /// The target key (`cp310-manylinux_2_28_aarch64`).
        target: String,
        /// The program.
        program: PathBuf,
        /// uv's stderr.
        stderr: String,
    },
    /// A PEP 691 index page is unusable.
    #[error("invalid index page `{url}`: {message}")]
    IndexPage {
        /// The page (or file) URL.
        url: String,
        /// Why.
        message: String,
    },
    /// No file of a pinned version is a wheel the target can install.
    #[error(
        "no wheel of `{name}=={version}` fits target `{target}`{}",
        wheel_note(available, *hash_mismatch)
    )]
    NoCompatibleWheel {
        /// Normalized name.
        name: String,
        /// The pinned version.
        version: String,
        /// The target key.
        target: String,
        /// The tag sets of the version's wheels (not yanked, not newer than the snapshot).
        available: Vec<String>,
        /// A compatible wheel exists, but its sha256 is not one the input allows.
        hash_mismatch: bool,
    },
    /// Something failed while resolving or fetching one artifact; wraps the cause with the artifact's name.
    #[error("{context}")]
    Context {
        /// What we were doing (``fetching `serde@1.0.0` ``).
        context: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// The lockfile contradicts itself: a source lists an artifact of another kind than the source locks. Only a
    /// hand-edited or corrupted lockfile gets here (`lock` never writes one).
    #[error("lockfile is inconsistent: artifact `{artifact}` {problem}")]
    InconsistentLockfile {
        /// The artifact's id.
        artifact: String,
        /// What is wrong with it, after its id (``is listed by `app.xmake`, which locks only xmake archives``).
        problem: String,
    },
    /// A recipe's source contradicts what `Recipe::load` checked (a source named by another is of the wrong kind).
    #[error("source `{source_name}` {problem}")]
    InconsistentSource {
        /// `recipe.source`.
        source_name: String,
        /// What is wrong.
        problem: String,
    },
    /// A `debian` source's packages could not be resolved from the archive's indexes.
    #[error("failed to resolve the packages of `debian` source `{source_name}`")]
    Debian {
        /// The source's name.
        source_name: String,
        /// What the resolver found.
        #[source]
        source: Box<super::debian::Error>,
    },
    /// A Debian archive's release or index could not be read, or its signature did not verify.
    #[error("Debian archive file `{url}` was refused")]
    DebianArchive {
        /// The file's canonical URL.
        url: String,
        /// Why.
        #[source]
        source: Box<super::debian::Error>,
    },
    /// A `debian` source's packages could not be unpacked into its base tree.
    #[error("failed to unpack the base tree `{id}`")]
    DebianBase {
        /// The base artifact's id.
        id: String,
        /// Why.
        #[source]
        source: Box<super::debian::Error>,
    },
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {message}")]
    Task {
        /// The join error.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hstore_store::Error),
    /// Unpacking failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::Error),
    /// A recipe failed to load.
    #[error(transparent)]
    Recipe(#[from] crate::recipe::Error),
    /// A lockfile failed to load or save.
    #[error(transparent)]
    Lockfile(#[from] crate::lockfile::Error),
    /// An upstream identity (commit, sha256, ref) is malformed.
    #[error(transparent)]
    InvalidId(#[from] hstore_model::ids::IdError),
    /// Mirror rules are invalid.
    #[error(transparent)]
    Mirror(#[from] crate::mirrors::Error),
    /// The packages an xmake probe reported could not be pinned.
    #[error(transparent)]
    Xmake(#[from] crate::xmake::pin::Error),
    /// The [`LockEvaluator`](crate::LockEvaluator) failed to probe an `xmake_requires` source (building the pinned
    /// xmake, running the probe, or reading its report); the evaluator's own error is the cause, with its hint.
    #[error("the xmake probe of `{source_name}` for target `{target}` failed")]
    Probe {
        /// `recipe.source`.
        source_name: String,
        /// The target probed.
        target: String,
        /// The evaluator's error.
        #[source]
        source: crate::evaluator::EvaluatorError,
    },
    /// A requirement line is not data hstore takes (an option, `${…}`, a URL or path requirement, bad syntax).
    #[error(transparent)]
    RequirementsInput(#[from] crate::requirements::input::Error),
}

fn wheel_note(available: &[String], hash_mismatch: bool) -> String {
    let mut note = if available.is_empty() {
        " (it has no wheels at all: only an sdist, or every file is yanked or newer than the snapshot)".to_owned()
    } else {
        format!(" (its wheels have tags: {})", available.join(", "))
    };
    if hash_mismatch {
        note.push_str("; the compatible wheel's sha256 is not among the input's `--hash` values");
    }
    note
}

fn tried_note(url: &str, tried: &str) -> String {
    if url == tried {
        String::new()
    } else {
        format!(" (fetched from the mirror `{tried}`)")
    }
}

fn submodule_note(path: Option<&str>) -> String {
    path.map_or_else(String::new, |path| format!(" (submodule at `{path}`)"))
}

impl Error {
    /// Wraps `self` with what we were doing.
    #[must_use]
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// An [`Error::Io`] builder for `map_err`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// Whether this error (or its innermost cause) is [`Error::Offline`].
    pub fn is_offline(&self) -> bool {
        match self {
            Error::Offline { .. } => true,
            Error::Context { source, .. } => source.is_offline(),
            _ => false,
        }
    }
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Offline { .. } => Some("run `hstore fetch` on a connected machine first, or drop `--offline`".into()),
            Error::Sha256Mismatch { .. } => Some(
                "the upstream bytes changed or were tampered with; check the URL, the mirror and the pinned checksum"
                    .into(),
            ),
            Error::AddressDrift { .. } => Some(
                "the unpacking rules or upstream content changed; re-run `hstore lock --update` if this is expected"
                    .into(),
            ),
            Error::CommitNotFound { fetched_from: Some(mirror), .. } => {
                Some(format!("the mirror `{mirror}` may lag behind upstream; update it or drop the mirror"))
            }
            Error::CommitNotFound { .. } => {
                Some("the commit may have been force-pushed away; run `hstore lock --update` to re-resolve".into())
            }
            Error::SubmoduleUnavailable { url, .. } => Some(format!(
                "point `{url}` at a repository that has the commit (`--mirror {url}=URL`, or `[mirrors]` in \
                 hstore.toml), or set `submodules = false` on the source if the build does not need its submodules"
            )),
            Error::MissingInTree { .. } => Some(
                "run `hstore store verify --repair` to drop what else is damaged, then `hstore fetch` (or `hstore \
                 import` a bundle that holds it) and lock again"
                    .into(),
            ),
            Error::UnknownUpdate { closest: Some(closest), .. } => Some(format!("did you mean `--update {closest}`?")),
            Error::UnknownUpdate { .. } => {
                Some("name a source as `SOURCE` or `RECIPE.SOURCE`, or pass `--update` alone to re-resolve every source".into())
            }
            Error::RefNotFound { .. } => Some("check `ref` in the recipe: a branch, a tag or a commit id".into()),
            Error::GitMissing { .. } => Some("install git (apt-get install git)".into()),
            Error::ToolchainMissing { toolchain, .. } => Some(format!(
                "install it with `rustup toolchain install {toolchain}` (set `RUSTUP_HOME` if rustup lives elsewhere), \
                 or import a bundle exported with this lockfile"
            )),
            Error::HttpStatus { status: 404, .. } => Some("check the URL, or pass `--mirror FROM=TO`".into()),
            Error::UvMissing { .. } => {
                Some("install the pinned uv (`pip install uv==0.13.9`) or point `HSTORE_UV` at it".into())
            }
            Error::Uv { .. } => Some(
                "every package must have a wheel for the target (`--only-binary :all:`); loosen the range, pick a \
                 version that ships one, or build the package in a recipe"
                    .into(),
            ),
            Error::NoCompatibleWheel { hash_mismatch: true, .. } => {
                Some("the pre-pinned input and the index disagree: re-pin the input (e.g. `uv pip compile --generate-hashes`)".into())
            }
            Error::NoCompatibleWheel { .. } => Some(
                "pin a version with a wheel for this platform, or check the target's `python = { version, platform }`"
                    .into(),
            ),
            Error::IndexPage { .. } => Some("the index must serve PEP 691 JSON (`Accept: application/vnd.pypi.simple.v1+json`)".into()),
            // The cause is boxed, so the printer's downcast of the source chain cannot see its hint: forward it.
            Error::Context { source, .. } => source.hint(),
            Error::Archive(error) => error.hint(),
            Error::Recipe(error) => error.hint(),
            Error::Lockfile(error) => error.hint(),
            Error::Store(error) => error.hint(),
            Error::Xmake(error) => error.hint(),
            Error::RequirementsInput(error) => error.hint(),
            Error::InconsistentLockfile { .. } => Some(
                "the lockfile was edited by hand or is damaged: restore it from version control, or run `hstore \
                 lock --update` to write it afresh"
                    .into(),
            ),
            Error::InconsistentSource { .. } => {
                Some("this is a bug in hstore (`Recipe::load` checks it); please report it".into())
            }
            Error::Debian { source, .. }
            | Error::DebianArchive { source, .. }
            | Error::DebianBase { source, .. } => source.hint(),
            // Listed one by one (no `_ =>`): a new variant must decide whether it has a hint.
            Error::Http { .. }
            | Error::HttpStatus { .. }
            | Error::Transfer { .. }
            | Error::Io { .. }
            | Error::Git { .. }
            | Error::NotText { .. }
            | Error::Gitmodules { .. }
            | Error::CargoLock { .. }
            | Error::IndexConfig { .. }
            | Error::UnsupportedCrateSource { .. }
            | Error::MissingChecksum { .. }
            | Error::GitPackageNotFound { .. }
            | Error::NotATree { .. }
            | Error::UnknownArchive { .. }
            | Error::Requirements { .. }
            | Error::Task { .. }
            | Error::InvalidId(_)
            | Error::Mirror(_)
            | Error::Probe { .. } => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs store work (hashing, unpacking, writing) on tokio's blocking pool, where it cannot stall downloads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Task {
            message: error.to_string(),
        })?
}

/// Fails with [`Error::AddressDrift`] when fresh upstream bytes no longer give the address the lockfile pinned.
pub(crate) fn check_drift(
    id: impl FnOnce() -> String,
    locked: Option<&crate::lockfile::Artifact>,
    actual: hstore_store::Digest,
) -> Result<()> {
    match locked {
        Some(locked) if locked.address() != actual => Err(Error::AddressDrift {
            id: id(),
            expected: locked.address(),
            actual,
        }),
        _ => Ok(()),
    }
}
