//! Recipes: TOML files in `recipes/` naming the sources a build needs, its targets and its build script.
//!
//! The keys are a contract (docs/recipes.md): `[recipe] name`, `[sources.<name>]` with exactly one of `git`,
//! `cargo_lock`, `url`, `path`, `recipe`, `rust_toolchain`, `requirements`/`requirements_file` or `xmake_requires`,
//! `[targets.<name>]` with `host_paths`, `host_tools`, `env`, `python`, `xmake_options`, and `[build] script`.
//! Any source table may also set `targets = ["T", …]`: only those targets of the recipe use it
//! ([`Recipe::source_targets`]). It is validated against the recipe's targets (a variant's, its base's), recorded
//! beside the spec in the lockfile (so `--locked` sees it change), and restricts what a `requirements` or
//! `xmake_requires` spec carries to the listed targets; every other place asks [`Recipe::uses`].
//! An `xmake_requires` source's normalized spec carries every target's `xmake_options`, like `requirements` carries
//! the targets' Pythons, so changing a target's options makes `--locked` see a stale lockfile.
//! A `requirements` source's normalized spec carries the `python` table of every target that has one, so changing a
//! target's Python or platform makes `--locked` see a stale lockfile.
//! Unknown keys are errors, so a typo never silently drops a source. Source and recipe names are
//! `[a-z0-9_-]` so they can become environment variable suffixes (`$src_<name>`, `-` becomes `_`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::artifact::DebianSpec;
use crate::ids::{GitRef, Sha256};
pub use crate::python::PythonTarget;

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
        /// The kind the table names, when it names exactly one: the hint then lists only that kind's keys.
        kind: Option<SourceKind>,
        /// What is wrong.
        reason: String,
    },
    /// A name is not acceptable.
    #[error("invalid recipe `{}`: name `{name}` {problem}", path.display())]
    InvalidName {
        /// The recipe file.
        path: PathBuf,
        /// The name.
        name: String,
        /// What is wrong with it, in words (see [`name_problem`]).
        problem: String,
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
    /// A `recipe = "NAME"` source names a recipe that does not exist.
    #[error("invalid recipe `{}`: source `{source_name}` {reason}", path.display())]
    UnknownDependency {
        /// The recipe file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// The recipe it names.
        dependency: String,
        /// Which recipe, and the recipes there are.
        reason: String,
    },
    /// A `recipe = "NAME"` source needs a target the dependency does not declare.
    #[error("invalid recipe `{}`: source `{source_name}` {reason}", path.display())]
    MissingDependencyTarget {
        /// The recipe file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// Which recipe and target, and the targets it does declare.
        reason: String,
    },
    /// `[recipe] extends` names a recipe that does not exist, or one that extends another.
    #[error("invalid recipe `{}`: `extends = \"{base}\"`: {reason}", path.display())]
    InvalidBase {
        /// The recipe file.
        path: PathBuf,
        /// The recipe named by `extends`.
        base: String,
        /// What is wrong, and the recipes there are.
        reason: String,
    },
    /// A source's `targets` names a target the recipe does not declare, or a target's build would miss a source
    /// another source it uses needs.
    #[error("invalid recipe `{}`: source `{source_name}` {reason}", path.display())]
    SourceTargets {
        /// The recipe file.
        path: PathBuf,
        /// The source.
        source_name: String,
        /// What is wrong.
        reason: String,
        /// The recipe's targets (for the hint).
        known: Vec<String>,
    },
    /// `recipe` sources form a cycle.
    #[error("invalid recipe `{}`: `recipe` sources form a cycle: {}", path.display(), chain.join(" → "))]
    Cycle {
        /// The recipe file where the cycle was found.
        path: PathBuf,
        /// `recipe (target) [source]` steps, the first repeated at the end.
        chain: Vec<String>,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidSource { kind: Some(kind), .. } => {
                Some(format!("a `{}` source is {}", kind.name(), kind.keys()))
            }
            Error::InvalidSource { kind: None, .. } => Some(format!(
                "a source is one of: {}",
                SourceKind::ALL.map(SourceKind::keys).join(", ")
            )),
            Error::NoRecipes { .. } => Some("pass `--recipes DIR` pointing at a directory of recipe files".into()),
            // The seed's "xmake is not installed": hstore never uses a host xmake, it builds the pinned one.
            Error::UnknownDependency { dependency, .. } if dependency == "xmake" => Some(
                "hstore builds xmake from its pinned release instead of using one installed on the host: copy \
                 `recipes/xmake.toml` from the hstore repository into the recipes directory"
                    .into(),
            ),
            Error::UnknownDependency { .. } => {
                Some("fix the name, or add the recipe to the recipes directory".into())
            }
            Error::MissingDependencyTarget { .. } => Some(
                "add the target to the dependency, or pin one with `target = \"T\"` in the source table".into(),
            ),
            Error::InvalidBase { .. } => Some(
                "`extends` names a recipe of the same directory that does not itself extend another; a variant \
                 writes only `[recipe]` and the `[sources.*]` it pins differently"
                    .into(),
            ),
            Error::Cycle { .. } => Some("a recipe cannot read its own output, even through others; break the chain".into()),
            Error::SourceTargets { known, .. } => Some(format!(
                "`targets = [\"T\", …]` lists targets of this recipe (a variant's are its base's): {}",
                if known.is_empty() { "it declares none".to_owned() } else { known.join(", ") }
            )),
            Error::Read { .. } | Error::Parse { .. } | Error::InvalidName { .. } | Error::DuplicateRecipe { .. } => None,
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
    /// `[recipe] extends`: the recipe this one is a variant of (its targets and build script, with some sources
    /// pinned differently), like a Nix `overrideAttrs`. Resolved by [`Recipe::load_dir`].
    pub extends: Option<String>,
    /// `[sources.*]`, by name.
    pub sources: BTreeMap<String, SourceSpec>,
    /// `[sources.NAME] targets`: the targets that use each source limited to some, by source name (never empty); a
    /// source not listed is used by every target. Ask [`Recipe::uses`].
    pub source_targets: BTreeMap<String, BTreeSet<String>>,
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
    /// Python requirements, locked to one wheel set per target (see `crate::requirements`).
    Requirements {
        /// Inline PEP 508 lines (ranges allowed).
        requirements: Vec<String>,
        /// A requirements file inside another source's tree, as `SOURCE:PATH`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requirements_file: Option<String>,
        /// The PEP 691 index (`https://pypi.org/simple`); mirrors rewrite it.
        index: String,
        /// A fixed index snapshot time (`2026-11-01T00:00:00Z`); without it, lock records the time it resolved at.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exclude_newer: Option<String>,
        /// The Python of every recipe target that declares one, by target name.
        targets: BTreeMap<String, PythonTarget>,
    },
    /// Another recipe's build output (ARCHITECTURE.md, "The build graph"): built first, read-only at `$src_NAME`. Locks to no
    /// artifact: its identity is the dependency's build key, known at build time.
    Recipe {
        /// The recipe's name.
        recipe: String,
        /// The target to build it for; `None`: the target being built.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Whether the output is needed at run time (linked or imported: `runtime = true`), so `--install-path`
        /// installs it with the dependent (Spack's `link`/`run` dependency types); otherwise it is a build-time
        /// tool (xmake, a compiler) that is not installed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        runtime: bool,
    },
    /// A Rust toolchain installed by rustup on the locking machine (`$RUSTUP_HOME/toolchains/<version>-<host>`),
    /// stored as a tree without its HTML docs, so builds take the compiler from the store, not from the host.
    RustToolchain {
        /// A pinned release as rustup names it: `1.95.0`, `nightly-2026-01-15` (never a moving channel).
        version: String,
        /// The host triple the toolchain runs on (`x86_64-unknown-linux-gnu`).
        host: String,
    },
    /// The xmake packages a project needs, per target (docs/xmake.md): the pinned xmake (`xmake`) evaluates the
    /// project's `xmake.lua` (`project`) against the pinned xmake-repo (`repo`) at lock; each archive is locked to
    /// the URL and sha256 xmake-repo declares.
    XmakeRequires {
        /// The source whose `xmake.lua` is evaluated (a tree: `git`, `path`, or an unpacked `url`).
        project: String,
        /// The `git` source holding xmake-repo at a pinned commit.
        repo: String,
        /// The `recipe` source whose output holds `bin/xmake` (usually `recipe = "xmake"`).
        xmake: String,
        /// `[targets.T] xmake_options` of every target, by target name (empty list: none).
        targets: BTreeMap<String, Vec<String>>,
    },
    /// Binary packages from a signed Debian archive and their dependency closure, unpacked into one root file
    /// system tree (`crate::artifact::DebianSpec`).
    Debian(DebianSpec),
}

/// The kinds of [`SourceSpec`], one per variant: what a recipe's source table names (`git = …`, `url = …`). Every
/// list of kinds is derived from [`SourceKind::ALL`] and every per-kind decision is an exhaustive `match` on this
/// enum (no `_ =>`), so a new kind does not compile until each place has its arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// [`SourceSpec::Git`].
    Git,
    /// [`SourceSpec::CargoLock`].
    CargoLock,
    /// [`SourceSpec::Url`].
    Url,
    /// [`SourceSpec::Path`].
    Path,
    /// [`SourceSpec::Requirements`].
    Requirements,
    /// [`SourceSpec::Recipe`].
    Recipe,
    /// [`SourceSpec::RustToolchain`].
    RustToolchain,
    /// [`SourceSpec::XmakeRequires`].
    XmakeRequires,
    /// [`SourceSpec::Debian`].
    Debian,
}

impl SourceKind {
    /// Every kind, in the order recipes and hints list them.
    pub const ALL: [SourceKind; 9] = [
        SourceKind::Git,
        SourceKind::CargoLock,
        SourceKind::Url,
        SourceKind::Path,
        SourceKind::Recipe,
        SourceKind::RustToolchain,
        SourceKind::Requirements,
        SourceKind::XmakeRequires,
        SourceKind::Debian,
    ];

    /// The kind's name, as `kind` in the lockfile and as its key in a recipe (`requirements` also has
    /// `requirements_file`).
    pub const fn name(self) -> &'static str {
        match self {
            SourceKind::Git => "git",
            SourceKind::CargoLock => "cargo_lock",
            SourceKind::Url => "url",
            SourceKind::Path => "path",
            SourceKind::Requirements => "requirements",
            SourceKind::Recipe => "recipe",
            SourceKind::RustToolchain => "rust_toolchain",
            SourceKind::XmakeRequires => "xmake_requires",
            SourceKind::Debian => "debian",
        }
    }

    /// The keys a source table of this kind takes, in words (for hints).
    pub const fn keys(self) -> &'static str {
        match self {
            SourceKind::Git => "`git = URL` (+ `ref`, `submodules`)",
            SourceKind::CargoLock => "`cargo_lock = \"SOURCE:PATH\"`",
            SourceKind::Url => "`url = URL` + `sha256` (+ `unpack`, `strip_components`)",
            SourceKind::Path => "`path = DIR` (+ `exclude`)",
            SourceKind::Requirements => {
                "`requirements = [\"pkg>=1\"]` / `requirements_file = \"SOURCE:PATH\"` (+ `index`, `exclude_newer`)"
            }
            SourceKind::Recipe => "`recipe = NAME` (+ `target`, `runtime`)",
            SourceKind::RustToolchain => "`rust_toolchain = VERSION` (+ `host`)",
            SourceKind::XmakeRequires => {
                "`xmake_requires = PROJECT_SOURCE` + `repo = GIT_SOURCE` + `xmake = RECIPE_SOURCE`"
            }
            SourceKind::Debian => {
                "`debian = SUITE` + `packages = [\"gcc\"]` (+ `archive`, `architecture`, `components`, `keyring`)"
            }
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl SourceSpec {
    /// The spec's kind.
    pub const fn kind(&self) -> SourceKind {
        match self {
            SourceSpec::Git { .. } => SourceKind::Git,
            SourceSpec::CargoLock { .. } => SourceKind::CargoLock,
            SourceSpec::Url { .. } => SourceKind::Url,
            SourceSpec::Path { .. } => SourceKind::Path,
            SourceSpec::Requirements { .. } => SourceKind::Requirements,
            SourceSpec::Recipe { .. } => SourceKind::Recipe,
            SourceSpec::RustToolchain { .. } => SourceKind::RustToolchain,
            SourceSpec::XmakeRequires { .. } => SourceKind::XmakeRequires,
            SourceSpec::Debian(_) => SourceKind::Debian,
        }
    }

    /// The sources of the same recipe whose locked trees this one reads at lock time (a `cargo_lock`'s tree, a
    /// `requirements_file`'s, an `xmake_requires` project and xmake-repo). `lock` orders a recipe's sources by it
    /// (a topological sort), so a source is locked after every tree it reads. A `recipe` source is no lock-time
    /// read: its output is built, not locked.
    pub fn reads(&self) -> Vec<&str> {
        match self {
            SourceSpec::CargoLock { source, .. } => vec![source.as_str()],
            SourceSpec::Requirements {
                requirements_file, ..
            } => requirements_file
                .as_deref()
                .and_then(|file| file.split_once(':'))
                .map(|(source, _)| source)
                .into_iter()
                .collect(),
            SourceSpec::XmakeRequires { project, repo, .. } => {
                vec![project.as_str(), repo.as_str()]
            }
            SourceSpec::Git { .. }
            | SourceSpec::Url { .. }
            | SourceSpec::Path { .. }
            | SourceSpec::Recipe { .. }
            | SourceSpec::RustToolchain { .. }
            | SourceSpec::Debian(_) => Vec::new(),
        }
    }

    /// What a locked source is, for people: `` `https://…/InfiniCore.git` at `issue/951` ``.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Git { url, reference, .. } => format!("`{url}` at `{reference}`"),
            SourceSpec::Path { path, .. } => format!("the directory `{path}`"),
            SourceSpec::Url { url, .. } => format!("the contents of `{url}`"),
            SourceSpec::RustToolchain { version, host } => {
                format!("the Rust toolchain {version}-{host}")
            }
            SourceSpec::CargoLock { source, path } => format!("the crates of `{source}:{path}`"),
            SourceSpec::Requirements { .. } => "the locked Python requirements".to_owned(),
            SourceSpec::XmakeRequires { project, .. } => {
                format!("the locked xmake packages of source `{project}`")
            }
            SourceSpec::Recipe { recipe, .. } => format!("the output of recipe `{recipe}`"),
            SourceSpec::Debian(debian) => format!(
                "the Debian {} ({}) base of {}",
                debian.suite,
                debian.architecture,
                debian.packages.join(", ")
            ),
        }
    }

    /// The rustup toolchain directory name (`<version>-<host>`) of a `rust_toolchain` source.
    pub fn rust_toolchain_name(version: &str, host: &str) -> String {
        format!("{version}-{host}")
    }
}

/// The host triple `rust_toolchain` sources default to: this machine's architecture, Linux, glibc.
pub fn default_rust_host() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The default index of `requirements` sources.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

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
    /// The Python that `requirements` sources lock wheels for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonTarget>,
    /// `[targets.T.limits]`: resource limits for this target, over `[build.limits]`.
    #[serde(default)]
    pub limits: Limits,
    /// What `xmake f` gets for this target (`["--nv-gpu=y"]`): `xmake_requires` sources lock with them and builds
    /// see them as `$xmake_options` (joined by spaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xmake_options: Vec<String>,
    /// This target's base (a `debian` source), over `[build] base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// `[build.limits]` / `[targets.T.limits]`: a build's resource limits as written (`timeout = "12h"`,
/// `max_memory = "16G"`, `none` to lift one). The build layer parses and applies them; they are not part of the
/// build key. See ARCHITECTURE.md, "Sandbox security model".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time per build (`90m`, `12h`, `none`).
    pub timeout: Option<String>,
    /// Memory per process (`16G`, `none`).
    pub max_memory: Option<String>,
    /// Processes and threads at a time.
    pub max_processes: Option<u64>,
    /// CPU time per process (`2h`, `none`).
    pub max_cpu_time: Option<String>,
    /// Size of each of `/tmp`, `HOME`, `/dev/shm` (`8G`).
    pub tmp_size: Option<String>,
    /// Size of the build log (`1G`, `none`).
    pub max_log_size: Option<String>,
    /// What `/build` and `$out` may hold together (`20G`, `none`).
    pub max_output_size: Option<String>,
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
    /// Resource limits for every target.
    #[serde(default)]
    pub limits: Limits,
    /// The `debian` source whose tree is the sandbox's root (read-only): the build sees no host file system
    /// (docs/recipes.md, "A Debian base"). Without one, the host's base system is bound read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
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
    extends: Option<String>,
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
    requirements: Option<Vec<String>>,
    requirements_file: Option<String>,
    index: Option<String>,
    exclude_newer: Option<String>,
    recipe: Option<String>,
    target: Option<String>,
    rust_toolchain: Option<String>,
    host: Option<String>,
    xmake_requires: Option<String>,
    repo: Option<String>,
    xmake: Option<String>,
    debian: Option<String>,
    archive: Option<String>,
    architecture: Option<String>,
    components: Option<Vec<String>>,
    packages: Option<Vec<String>>,
    keyring: Option<String>,
    runtime: Option<bool>,
    /// Any kind: the targets that use the source (taken out before [`classify`]).
    targets: Option<Vec<String>>,
}

impl RawSource {
    /// Whether this table sets the key that names `kind`.
    fn names(&self, kind: SourceKind) -> bool {
        match kind {
            SourceKind::Git => self.git.is_some(),
            SourceKind::CargoLock => self.cargo_lock.is_some(),
            SourceKind::Url => self.url.is_some(),
            SourceKind::Path => self.path.is_some(),
            SourceKind::Requirements => {
                self.requirements.is_some() || self.requirements_file.is_some()
            }
            SourceKind::Recipe => self.recipe.is_some(),
            SourceKind::RustToolchain => self.rust_toolchain.is_some(),
            SourceKind::XmakeRequires => self.xmake_requires.is_some(),
            SourceKind::Debian => self.debian.is_some(),
        }
    }
}

/// Longest recipe, source or target name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a valid recipe, source or target name.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// What is wrong with a recipe, source or target name, in words that fit after "name `…`"; `None` if it is valid.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".into())
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("must be lowercase letters, digits, `_` or `-`".into())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        ))
    } else {
        None
    }
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
            problem: name_problem(name).unwrap_or_default(),
        };
        if !is_valid_name(&raw.recipe.name) {
            return Err(invalid_name(&raw.recipe.name));
        }
        if let Some(base) = &raw.recipe.extends
            && (!raw.targets.is_empty() || raw.build.is_some())
        {
            return Err(Error::InvalidBase {
                path: file.to_path_buf(),
                base: base.clone(),
                reason: "a variant takes its `[targets.*]` and `[build]` from the recipe it extends; remove them \
                         here (or drop `extends` and write the whole recipe)"
                    .into(),
            });
        }
        if let Some(bad) = raw.targets.keys().find(|name| !is_valid_name(name)) {
            return Err(invalid_name(bad));
        }
        for (name, target) in &raw.targets {
            if let Some(python) = &target.python
                && let Err(reason) = crate::python::TargetPython::parse(python)
            {
                return Err(Error::Parse {
                    path: file.to_path_buf(),
                    message: format!("target `{name}`: {reason}"),
                });
            }
        }
        let mut sources = BTreeMap::new();
        let mut source_targets = BTreeMap::new();
        for (name, mut source) in raw.sources {
            if !is_valid_name(&name) {
                return Err(invalid_name(&name));
            }
            let targets = source.targets.take();
            let spec = classify(file, &name, source)?;
            if let Some(targets) = targets {
                if targets.is_empty() {
                    return Err(Error::InvalidSource {
                        path: file.to_path_buf(),
                        source_name: name,
                        kind: Some(spec.kind()),
                        reason: "has `targets = []`, which leaves it to no target; list the targets that use it, \
                                 or drop the key to give it to every target"
                            .into(),
                    });
                }
                source_targets.insert(name.clone(), targets.into_iter().collect());
            }
            sources.insert(name, spec);
        }
        // A variant's targets are its base's: checked once `resolve_variants` has them.
        if raw.recipe.extends.is_none() {
            check_source_targets(
                file,
                &sources,
                &source_targets,
                &raw.targets,
                raw.build.as_ref(),
            )?;
        }
        fill_target_details(&mut sources, &raw.targets, &source_targets);
        for (name, spec) in &sources {
            if let SourceSpec::CargoLock { source, .. } = spec
                && matches!(sources.get(source), Some(SourceSpec::Recipe { .. }))
            {
                return Err(Error::InvalidSource {
                    path: file.to_path_buf(),
                    source_name: name.clone(),
                    kind: Some(SourceKind::CargoLock),
                    reason: format!(
                        "reads a Cargo.lock from source `{source}`, a recipe output, which is not known at lock time"
                    ),
                });
            }
            if let SourceSpec::XmakeRequires {
                project,
                repo,
                xmake,
                ..
            } = spec
            {
                check_xmake_requires(file, name, &sources, project, repo, xmake)?;
            }
            if let Some(source) = spec
                .reads()
                .into_iter()
                .find(|source| !sources.contains_key(*source))
            {
                return Err(Error::InvalidSource {
                    path: file.to_path_buf(),
                    source_name: name.clone(),
                    kind: Some(spec.kind()),
                    reason: format!(
                        "refers to source `{source}`, which this recipe does not define"
                    ),
                });
            }
        }
        let bases = raw
            .build
            .iter()
            .filter_map(|build| Some(("[build] base", build.base.as_deref()?)))
            .chain(
                raw.targets
                    .iter()
                    .filter_map(|(target, spec)| Some((target.as_str(), spec.base.as_deref()?))),
            );
        for (place, base) in bases {
            if !matches!(sources.get(base), Some(SourceSpec::Debian(_))) {
                let place = if place == "[build] base" {
                    place.to_owned()
                } else {
                    format!("[targets.{place}] base")
                };
                return Err(Error::Parse {
                    path: file.to_path_buf(),
                    message: format!(
                        "`{place} = \"{base}\"` names no `debian` source of this recipe; a base is a \
                         `[sources.{base}] debian = \"bookworm\"` source (see docs/recipes.md, \"A Debian base\")"
                    ),
                });
            }
        }
        Ok(Self {
            file: file.to_path_buf(),
            name: raw.recipe.name,
            extends: raw.recipe.extends,
            sources,
            source_targets,
            targets: raw.targets,
            build: raw.build,
        })
    }

    /// The `debian` source whose tree is `target`'s sandbox root: the target's `base`, else `[build] base`.
    pub fn base_for(&self, target: &str) -> Option<&str> {
        self.targets
            .get(target)
            .and_then(|spec| spec.base.as_deref())
            .or_else(|| self.build.as_ref()?.base.as_deref())
    }

    /// Whether `target`'s build uses source `source`: every target does, unless the source's table limits it with
    /// `targets = [...]`.
    pub fn uses(&self, source: &str, target: &str) -> bool {
        self.source_targets
            .get(source)
            .is_none_or(|targets| targets.contains(target))
    }

    /// The sources `target`'s build uses (see [`Recipe::uses`]), by name.
    pub fn sources_for<'a>(
        &'a self,
        target: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a SourceSpec)> + 'a {
        self.sources
            .iter()
            .filter(move |(name, _)| self.uses(name, target))
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
        resolve_variants(&mut recipes)?;
        check_graph(&recipes, dir)?;
        Ok(recipes)
    }
}

/// Copies what sources need to know of the recipe's targets into them (a `requirements` source locks wheels for
/// each target's Python, an `xmake_requires` source probes each target's `xmake_options`), so that a source's spec,
/// the lockfile's record of it, says everything it was locked for. A source limited to some targets
/// (`source_targets`) carries only theirs, so it locks nothing for the others.
fn fill_target_details(
    sources: &mut BTreeMap<String, SourceSpec>,
    targets: &BTreeMap<String, Target>,
    source_targets: &BTreeMap<String, BTreeSet<String>>,
) {
    for (name, spec) in sources.iter_mut() {
        let using = targets.iter().filter(|(target, _)| {
            source_targets
                .get(name)
                .is_none_or(|only| only.contains(*target))
        });
        match spec {
            SourceSpec::Requirements {
                targets: wheels, ..
            } => {
                *wheels = using
                    .filter_map(|(name, target)| Some((name.clone(), target.python.clone()?)))
                    .collect();
            }
            SourceSpec::XmakeRequires {
                targets: options, ..
            } => {
                *options = using
                    .map(|(name, target)| (name.clone(), target.xmake_options.clone()))
                    .collect();
            }
            SourceSpec::Git { .. }
            | SourceSpec::CargoLock { .. }
            | SourceSpec::Url { .. }
            | SourceSpec::Path { .. }
            | SourceSpec::Recipe { .. }
            | SourceSpec::RustToolchain { .. }
            | SourceSpec::Debian(_) => {}
        }
    }
}

/// Completes each variant (`[recipe] extends = "BASE"`) from its base: the base's targets and build, and its sources
/// overlaid with the variant's own. One level only: a base that is itself a variant is refused, so a variant always
/// reads as "BASE, except these sources".
fn resolve_variants(recipes: &mut [Recipe]) -> Result<(), Error> {
    let bases: BTreeMap<String, Recipe> = recipes
        .iter()
        .filter(|recipe| recipe.extends.is_none())
        .map(|recipe| (recipe.name.clone(), recipe.clone()))
        .collect();
    let variants: Vec<String> = recipes
        .iter()
        .filter(|recipe| recipe.extends.is_some())
        .map(|recipe| recipe.name.clone())
        .collect();
    for recipe in recipes.iter_mut() {
        let Some(base_name) = recipe.extends.clone() else {
            continue;
        };
        let Some(base) = bases.get(&base_name) else {
            let reason = if base_name == recipe.name {
                "a recipe cannot extend itself".to_owned()
            } else if variants.contains(&base_name) {
                format!("`{base_name}` is itself a variant (`extends`); extend its base instead")
            } else {
                format!(
                    "no recipe is named `{base_name}`; recipes: {}",
                    bases.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            return Err(Error::InvalidBase {
                path: recipe.file.clone(),
                base: base_name,
                reason,
            });
        };
        // A variant's source replaces the base's whole table, `targets` included.
        let mut source_targets = base.source_targets.clone();
        source_targets.retain(|name, _| !recipe.sources.contains_key(name));
        source_targets.append(&mut recipe.source_targets);
        let mut sources = base.sources.clone();
        sources.append(&mut recipe.sources);
        check_source_targets(
            &recipe.file,
            &sources,
            &source_targets,
            &base.targets,
            base.build.as_ref(),
        )?;
        fill_target_details(&mut sources, &base.targets, &source_targets);
        recipe.sources = sources;
        recipe.source_targets = source_targets;
        recipe.targets.clone_from(&base.targets);
        recipe.build.clone_from(&base.build);
    }
    Ok(())
}

/// A recipe's `targets` limits, checked against its targets (for a variant, its base's): every target listed is
/// declared, a target's base (`[targets.T] base`, else `[build] base`) is a source that target uses, and a target
/// that uses an `xmake_requires` source uses its `xmake` source too (the build puts its `bin/` on `PATH`).
fn check_source_targets(
    file: &Path,
    sources: &BTreeMap<String, SourceSpec>,
    source_targets: &BTreeMap<String, BTreeSet<String>>,
    targets: &BTreeMap<String, Target>,
    build: Option<&Build>,
) -> Result<(), Error> {
    let error = |source: &str, reason: String| Error::SourceTargets {
        path: file.to_path_buf(),
        source_name: source.to_owned(),
        reason,
        known: targets.keys().cloned().collect(),
    };
    let uses = |source: &str, target: &str| {
        source_targets
            .get(source)
            .is_none_or(|only| only.contains(target))
    };
    for (source, only) in source_targets {
        if let Some(unknown) = only.iter().find(|target| !targets.contains_key(*target)) {
            return Err(error(
                source,
                format!(
                    "has `targets` naming target `{unknown}`, which this recipe does not declare"
                ),
            ));
        }
    }
    for (target, spec) in targets {
        let (base, place) = match (&spec.base, build.and_then(|build| build.base.as_ref())) {
            (Some(base), _) => (base, format!("[targets.{target}] base")),
            (None, Some(base)) => (base, "[build] base".to_owned()),
            (None, None) => continue,
        };
        if !uses(base, target) {
            return Err(error(
                base,
                format!("is `{place}`, but its `targets` leave out target `{target}`"),
            ));
        }
    }
    for (source, spec) in sources {
        if let SourceSpec::XmakeRequires { xmake, .. } = spec
            && let Some(target) = targets
                .keys()
                .find(|target| uses(source, target) && !uses(xmake, target))
        {
            return Err(error(
                source,
                format!(
                    "is used by target `{target}`, whose build needs its `xmake = \"{xmake}\"` source, but the \
                     `targets` of `{xmake}` leave `{target}` out"
                ),
            ));
        }
    }
    Ok(())
}

fn classify(file: &Path, name: &str, raw: RawSource) -> Result<SourceSpec, Error> {
    let kinds: Vec<SourceKind> = SourceKind::ALL
        .into_iter()
        .filter(|kind| raw.names(*kind))
        .collect();
    let kind = match kinds.as_slice() {
        [kind] => *kind,
        [] => {
            return Err(Error::InvalidSource {
                path: file.to_path_buf(),
                source_name: name.to_owned(),
                kind: None,
                reason: format!(
                    "names no kind (expected one of {})",
                    SourceKind::ALL.map(|kind| format!("`{kind}`")).join(", ")
                ),
            });
        }
        several => {
            return Err(Error::InvalidSource {
                path: file.to_path_buf(),
                source_name: name.to_owned(),
                kind: None,
                reason: format!(
                    "names several kinds ({}); use one per source",
                    several
                        .iter()
                        .map(|kind| kind.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    };
    let invalid = |reason: String| Error::InvalidSource {
        path: file.to_path_buf(),
        source_name: name.to_owned(),
        kind: Some(kind),
        reason,
    };
    // `names` said the kind's key is set; a missing one is a bug in `RawSource::names`, reported, never a default.
    let unnamed = || invalid(format!("does not set `{kind}`"));
    let only = |allowed: &[&str]| -> Result<(), Error> {
        let present = [
            ("ref", raw.reference.is_some()),
            ("submodules", raw.submodules.is_some()),
            ("sha256", raw.sha256.is_some()),
            ("unpack", raw.unpack.is_some()),
            ("strip_components", raw.strip_components.is_some()),
            ("exclude", raw.exclude.is_some()),
            ("index", raw.index.is_some()),
            ("exclude_newer", raw.exclude_newer.is_some()),
            ("target", raw.target.is_some()),
            ("host", raw.host.is_some()),
            ("repo", raw.repo.is_some()),
            ("xmake", raw.xmake.is_some()),
            ("archive", raw.archive.is_some()),
            ("architecture", raw.architecture.is_some()),
            ("components", raw.components.is_some()),
            ("packages", raw.packages.is_some()),
            ("keyring", raw.keyring.is_some()),
            ("runtime", raw.runtime.is_some()),
        ];
        match present
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((key, _)) => Err(invalid(format!(
                "sets `{key}`, which a `{kind}` source does not take{}",
                if *key == "target" {
                    " (`targets = [\"T\", …]` limits a source to some targets of this recipe)"
                } else {
                    ""
                }
            ))),
            None => Ok(()),
        }
    };
    match kind {
        SourceKind::Git => {
            let Some(url) = raw.git else {
                return Err(unnamed());
            };
            only(&["ref", "submodules"])?;
            let reference = GitRef::new(raw.reference.unwrap_or_else(|| "HEAD".into()))
                .map_err(|error| invalid(format!("has {error}")))?;
            Ok(SourceSpec::Git {
                url,
                reference,
                submodules: raw.submodules.unwrap_or(true),
            })
        }
        SourceKind::CargoLock => {
            let Some(spec) = raw.cargo_lock else {
                return Err(unnamed());
            };
            only(&[])?;
            let Some((source, path)) = spec.split_once(':') else {
                return Err(invalid(format!(
                    "has `cargo_lock = \"{spec}\"`; expected \"SOURCE:PATH\", e.g. \"svc:rust/Cargo.lock\""
                )));
            };
            Ok(SourceSpec::CargoLock {
                source: source.to_owned(),
                path: path.to_owned(),
            })
        }
        SourceKind::Url => {
            let Some(url) = raw.url else {
                return Err(unnamed());
            };
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
            Ok(SourceSpec::Url {
                url,
                sha256,
                unpack: raw.unpack.unwrap_or(false),
                strip_components: raw.strip_components.unwrap_or(0),
            })
        }
        SourceKind::Requirements => {
            only(&["index", "exclude_newer"])?;
            if let Some(file) = &raw.requirements_file
                && !file
                    .split_once(':')
                    .is_some_and(|(source, path)| !source.is_empty() && !path.is_empty())
            {
                return Err(invalid(format!(
                    "has `requirements_file = \"{file}\"`; expected \"SOURCE:PATH\", e.g. \"svc:requirements.txt\""
                )));
            }
            if let Some(time) = &raw.exclude_newer
                && !crate::python::is_rfc3339_utc(time)
            {
                return Err(invalid(format!(
                    "has `exclude_newer = \"{time}\"`; expected a UTC time like \"2026-11-01T00:00:00Z\""
                )));
            }
            Ok(SourceSpec::Requirements {
                requirements: raw.requirements.unwrap_or_default(),
                requirements_file: raw.requirements_file,
                index: raw.index.map_or_else(
                    || DEFAULT_INDEX.to_owned(),
                    |index| index.trim_end_matches('/').to_owned(),
                ),
                exclude_newer: raw.exclude_newer,
                targets: BTreeMap::new(),
            })
        }
        SourceKind::Recipe => {
            let Some(recipe) = raw.recipe else {
                return Err(unnamed());
            };
            only(&["target", "runtime"])?;
            if !is_valid_name(&recipe) {
                return Err(invalid(format!(
                    "names recipe `{recipe}`, which is not a valid recipe name"
                )));
            }
            if let Some(target) = raw
                .target
                .as_deref()
                .filter(|target| !is_valid_name(target))
            {
                return Err(invalid(format!(
                    "names target `{target}`, which is not a valid target name"
                )));
            }
            Ok(SourceSpec::Recipe {
                recipe,
                target: raw.target,
                runtime: raw.runtime.unwrap_or(false),
            })
        }
        SourceKind::RustToolchain => {
            let Some(version) = raw.rust_toolchain else {
                return Err(unnamed());
            };
            only(&["host"])?;
            let plain = |text: &str| {
                !text.is_empty()
                    && !text.starts_with(['.', '-'])
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            };
            if !plain(&version) || matches!(version.as_str(), "stable" | "beta" | "nightly") {
                return Err(invalid(format!(
                    "has `rust_toolchain = \"{version}\"`; expected a pinned release such as \"1.95.0\" or \
                 \"nightly-2026-01-15\" (a moving channel would lock a different compiler on every machine)"
                )));
            }
            let host = raw.host.unwrap_or_else(default_rust_host);
            if !plain(&host) {
                return Err(invalid(format!(
                    "has `host = \"{host}\"`; expected a target triple"
                )));
            }
            Ok(SourceSpec::RustToolchain { version, host })
        }
        SourceKind::XmakeRequires => {
            let Some(project) = raw.xmake_requires else {
                return Err(unnamed());
            };
            only(&["repo", "xmake"])?;
            let named = |key: &str, value: Option<String>| -> Result<String, Error> {
                let example = if key == "repo" { "xrepo" } else { "xmake" };
                match value {
                    Some(value) if is_valid_name(&value) => Ok(value),
                    Some(value) => Err(invalid(format!(
                        "has `{key} = \"{value}\"`, which is not a source name"
                    ))),
                    None => Err(invalid(format!(
                        "is an `xmake_requires` source without `{key}`; name the source, e.g. `{key} = \"{example}\"`"
                    ))),
                }
            };
            let repo = named("repo", raw.repo)?;
            let xmake = named("xmake", raw.xmake)?;
            if !is_valid_name(&project) {
                return Err(invalid(format!(
                    "has `xmake_requires = \"{project}\"`, which is not a source name"
                )));
            }
            Ok(SourceSpec::XmakeRequires {
                project,
                repo,
                xmake,
                targets: BTreeMap::new(),
            })
        }
        SourceKind::Debian => {
            let Some(suite) = raw.debian else {
                return Err(unnamed());
            };
            only(&[
                "archive",
                "architecture",
                "components",
                "packages",
                "keyring",
            ])?;
            DebianSpec::new(
                suite,
                raw.archive,
                raw.architecture,
                raw.components,
                raw.packages.unwrap_or_default(),
                raw.keyring,
            )
            .map(SourceSpec::Debian)
            .map_err(invalid)
        }
        SourceKind::Path => {
            let Some(path) = raw.path else {
                return Err(unnamed());
            };
            only(&["exclude"])?;
            let exclude = raw.exclude.unwrap_or_default();
            // The lockfile id lists excludes joined by `,` (and `fetch` reads them back from it): an entry with a
            // `,` would make two different exclude lists one id.
            if let Some(entry) = exclude.iter().find(|entry| entry.contains(',')) {
                return Err(invalid(format!(
                    "has exclude entry `{entry}`; an entry may not contain `,` (list names separately)"
                )));
            }
            Ok(SourceSpec::Path { path, exclude })
        }
    }
}

/// An `xmake_requires` source's references: `project` a tree source (`git`, `path`, unpacked `url`), `repo` a
/// `git` source (xmake-repo), `xmake` a `recipe` source (the pinned xmake's build output).
fn check_xmake_requires(
    file: &Path,
    name: &str,
    sources: &BTreeMap<String, SourceSpec>,
    project: &str,
    repo: &str,
    xmake: &str,
) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidSource {
        path: file.to_path_buf(),
        source_name: name.to_owned(),
        kind: Some(SourceKind::XmakeRequires),
        reason,
    };
    let kind_of = |key: &str, source: &str| -> Result<&SourceSpec, Error> {
        sources.get(source).ok_or_else(|| {
            invalid(format!(
                "has `{key} = \"{source}\"`, a source this recipe does not define"
            ))
        })
    };
    match kind_of("xmake_requires", project)? {
        SourceSpec::Git { .. } | SourceSpec::Path { .. } | SourceSpec::Url { unpack: true, .. } => {
        }
        SourceSpec::Url { unpack: false, .. }
        | SourceSpec::CargoLock { .. }
        | SourceSpec::Requirements { .. }
        | SourceSpec::Recipe { .. }
        | SourceSpec::RustToolchain { .. }
        | SourceSpec::XmakeRequires { .. }
        | SourceSpec::Debian(_) => {
            return Err(invalid(format!(
                "has `xmake_requires = \"{project}\"`, which is not a source tree known at lock time; name a \
                 `git`, `path` or unpacked `url` source holding the project's `xmake.lua`"
            )));
        }
    }
    if !matches!(kind_of("repo", repo)?, SourceSpec::Git { .. }) {
        return Err(invalid(format!(
            "has `repo = \"{repo}\"`, which is not a `git` source; xmake-repo must be pinned by commit"
        )));
    }
    if !matches!(kind_of("xmake", xmake)?, SourceSpec::Recipe { .. }) {
        return Err(invalid(format!(
            "has `xmake = \"{xmake}\"`, which is not a `recipe` source; name the source reading the xmake \
             recipe's output (`[sources.{xmake}] recipe = \"xmake\"`)"
        )));
    }
    Ok(())
}

/// Checks the graph that `recipe` sources make over `recipes` (all of one directory, `dir`): every named recipe
/// exists, declares the target it is needed for (the pinned `target`, else each target of the dependent that uses
/// the source: a source limited by `targets` needs nothing for the others), and no chain of (recipe, target) leads
/// back to itself. `hstore lock` runs this, so a broken graph never gets a lockfile.
pub fn check_graph(recipes: &[Recipe], dir: &Path) -> Result<(), Error> {
    let by_name: BTreeMap<&str, &Recipe> = recipes.iter().map(|r| (r.name.as_str(), r)).collect();
    // (recipe, target) → [(source, dependency, target)]
    let mut edges: Edges = BTreeMap::new();
    for recipe in recipes {
        for (source, spec) in &recipe.sources {
            let SourceSpec::Recipe {
                recipe: dependency,
                target,
                ..
            } = spec
            else {
                continue;
            };
            let Some(dependency_recipe) = by_name.get(dependency.as_str()) else {
                let known: Vec<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
                return Err(Error::UnknownDependency {
                    path: recipe.file.clone(),
                    source_name: source.clone(),
                    dependency: dependency.clone(),
                    reason: format!(
                        "names recipe `{dependency}`, which is not in `{}` (recipes: {})",
                        dir.display(),
                        known.join(", ")
                    ),
                });
            };
            let needed: Vec<(&str, &str)> = match target {
                Some(pinned) => {
                    let pinned = pinned.as_str();
                    let from: Vec<&str> = recipe
                        .targets
                        .keys()
                        .map(String::as_str)
                        .filter(|target| recipe.uses(source, target))
                        .collect();
                    if recipe.targets.is_empty() {
                        // Only checkable for existence; the dependent has no target that could reach it.
                        if !dependency_recipe.targets.contains_key(pinned) {
                            return Err(missing_target(recipe, source, dependency_recipe, pinned));
                        }
                    }
                    from.into_iter().map(|t| (t, pinned)).collect()
                }
                None => recipe
                    .targets
                    .keys()
                    .filter(|target| recipe.uses(source, target))
                    .map(|t| (t.as_str(), t.as_str()))
                    .collect(),
            };
            for (from, to) in needed {
                if !dependency_recipe.targets.contains_key(to) {
                    return Err(missing_target(recipe, source, dependency_recipe, to));
                }
                edges
                    .entry((recipe.name.as_str(), from))
                    .or_default()
                    .push((source.as_str(), dependency.as_str(), to));
            }
        }
    }
    let mut done = BTreeSet::new();
    for &start in edges.keys() {
        let mut path = Vec::new();
        if let Some(chain) = find_cycle(start, &edges, &mut done, &mut path) {
            let file = by_name
                .get(start.0)
                .map(|r| r.file.clone())
                .unwrap_or_default();
            return Err(Error::Cycle { path: file, chain });
        }
    }
    Ok(())
}

type GraphNode<'a> = (&'a str, &'a str);
type Edges<'a> = BTreeMap<GraphNode<'a>, Vec<(&'a str, &'a str, &'a str)>>;

/// Depth-first search from `node`; `path` holds the (node, source taken) steps from the start. Returns the cycle's
/// chain, printable, when a node on the path is met again.
fn find_cycle<'a>(
    node: GraphNode<'a>,
    edges: &Edges<'a>,
    done: &mut BTreeSet<GraphNode<'a>>,
    path: &mut Vec<(GraphNode<'a>, &'a str)>,
) -> Option<Vec<String>> {
    if done.contains(&node) {
        return None;
    }
    if let Some(position) = path.iter().position(|(on_path, _)| *on_path == node) {
        let mut chain: Vec<String> = path[position..]
            .iter()
            .map(|((recipe, target), source)| format!("{recipe} ({target}) [source `{source}`]"))
            .collect();
        chain.push(format!("{} ({})", node.0, node.1));
        return Some(chain);
    }
    for &(source, dependency, target) in edges.get(&node).map_or(&[][..], Vec::as_slice) {
        path.push((node, source));
        if let Some(chain) = find_cycle((dependency, target), edges, done, path) {
            return Some(chain);
        }
        path.pop();
    }
    done.insert(node);
    None
}

fn missing_target(recipe: &Recipe, source: &str, dependency: &Recipe, target: &str) -> Error {
    let known: Vec<&str> = dependency.targets.keys().map(String::as_str).collect();
    Error::MissingDependencyTarget {
        path: recipe.file.clone(),
        source_name: source.to_owned(),
        reason: format!(
            "needs recipe `{}` for target `{target}`, which `{}` does not declare (its targets: {})",
            dependency.name,
            dependency.file.display(),
            if known.is_empty() {
                "(none)".to_owned()
            } else {
                known.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests;
