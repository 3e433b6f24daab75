//! Command-line grammar (clap derive). Each command has one args struct; every flag has a doc line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::env_vars;

/// A hermetic, content-addressed store for air-gapped builds.
///
/// Phase 1 (connected): `hstore lock`, `hstore fetch`, `hstore export`.
/// Phase 2 (air-gapped): `hstore import`, `hstore build`.
#[derive(Debug, Parser)]
#[command(
    name = "hstore",
    version,
    propagate_version = true,
    max_term_width = 110
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The store directory [default: $XDG_DATA_HOME/hstore or ~/.local/share/hstore]
    #[arg(long, global = true, env = env_vars::HSTORE_STORE, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Print no status lines or progress bars
    ///
    /// Data on stdout, errors, warnings and their hints still print; `-qq` is the same as `-q`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Print more: -v debug, -vv trace (RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colour
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Never draw progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Work with the store directly: add, cat, materialize, dump, ls, verify, gc, inventory
    #[command(
        subcommand,
        after_help = "Examples:\n  hstore store add ./src                         # prints b3:…\n  \
                      hstore store dump b3:af13… > src.nar           # same bytes as `nix-store --dump ./src`\n  \
                      hstore store materialize b3:af13… ./checkout"
    )]
    Store(StoreCommand),
    /// Resolve every recipe source, fetch it into the store, and write lockfile.json
    #[command(
        after_help = "Examples:\n  hstore lock                              # recipes/ -> lockfile.json\n  \
hstore lock --update svc                 # re-resolve one source (its branch moved)\n  \
hstore lock --locked                     # CI: fail (exit 1) if lockfile.json is stale\n  \
hstore lock --mirror https://github.com/=file:///srv/git/"
    )]
    Lock(LockArgs),
    /// Make the store hold everything a lockfile names (downloading only what is missing)
    #[command(
        after_help = "Examples:\n  hstore fetch                             # ./lockfile.json\n  \
hstore fetch --lockfile deploy/lockfile.json --mirror https://index.crates.io/=https://mirror.lan/\n  \
hstore fetch --offline                   # check that the store already holds it all"
    )]
    Fetch(FetchArgs),
    /// Build recipes from the store in a sandbox with no network; prints the output's address
    #[command(
        after_help = "Examples:\n  hstore build --target cpu --out-link result\n  \
hstore build infinilm-svc --target cuda --install-path /usr/local\n  \
hstore build --deployment-case cache-routing-validation --install-infinilm false\n  \
hstore build infinilm --target cpu --override-input infinicore.core=../InfiniCore\n  \
hstore build infinilm --target cpu --infinicore-src ../InfiniCore               # the same"
    )]
    Build(Box<BuildArgs>),
    /// Print the log of a recorded build
    #[command(
        after_help = "Examples:\n  hstore log infinilm-svc --target cpu\n  hstore log b3:…   # a build key or output address"
    )]
    Log(LogArgs),
    /// Check a recorded build's provenance: its signature, its subject, and the build key recomputed from the inputs
    /// it names
    #[command(after_help = "Examples:
  hstore build app --target cpu --sign release.secret
  hstore verify-provenance app --target cpu --trust release.pub
  hstore verify-provenance b3:… --trusted-keys keys.txt --json   # an output address or build key")]
    VerifyProvenance(VerifyProvenanceArgs),
    /// Show what changed between two lockfiles, per recipe and source, and what the new one costs to carry
    #[command(after_help = "Examples:
  hstore diff old/lockfile.json lockfile.json
  hstore diff HEAD~1                        # lockfile.json against its last committed version
  hstore diff v1.2:deploy/lockfile.json deploy/lockfile.json --json")]
    Diff(DiffArgs),
    /// Show the chains of recipes and sources that make a lockfile hold an artifact or a store object
    #[command(after_help = "Examples:
  hstore why serde                          # every crate `serde` in lockfile.json, and who reads it
  hstore why numpy@2.2.6
  hstore why InfiniCore                     # a git repository, by name or URL
  hstore why b3:af13…                       # an artifact, or a file inside one (needs the store)")]
    Why(WhyArgs),
    /// Write a software bill of materials (CycloneDX 1.6 or SPDX 2.3 JSON) of a lockfile, a bundle or a build
    #[command(after_help = "Examples:
  hstore sbom -o sbom.cdx.json                  # ./lockfile.json, licences from the store
  hstore sbom --bundle stack.hsb --format spdx  # what a bundle carries, without importing it
  hstore sbom infinilm-svc --target cuda        # a recorded build and every output it read
  hstore sbom b3:4bf3…                          # the same, by build key or output address

Same inputs, same bytes: no wall-clock time unless SOURCE_DATE_EPOCH is set.")]
    Sbom(SbomArgs),
    /// Write one bundle file holding a lockfile's closure (and recorded builds) for an air-gapped store
    #[command(after_help = "Examples:
  hstore export -o infer.hsb                                  # the closure of ./lockfile.json
  hstore export --lockfile a.json --lockfile b.json --with-builds -o all.hsb
  hstore export --exclude have.json --sign release.secret -o - | ssh gpu01 hstore import -
  hstore export --all -o - | split -b 4G - store.hsb.        # split media; then:
  cat store.hsb.* | hstore import -")]
    Export(ExportArgs),
    /// Look inside a bundle without importing it: roots, records, objects by kind, and who signed it
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Verify a bundle and take in its objects; roots and records are registered only if all of it checked out
    #[command(after_help = "Examples:
  hstore import infer.hsb && hstore fetch --offline --lockfile lockfile.json
  hstore import --trust release.pub infer.hsb                 # refuse unsigned or foreign bundles
  cat store.hsb.* | hstore import --trusted-keys /etc/hstore/trusted-keys -")]
    Import(ImportArgs),
    /// Bundle signing keys (ed25519)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Shared caches (S3, HTTP, shared file system): push closures and signed build records, pull them back
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// `hstore lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Directory of recipe files (`*.toml`)
    #[arg(long, value_name = "DIR", default_value = "recipes")]
    pub recipes: PathBuf,

    /// The lockfile to write
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        default_value = "lockfile.json"
    )]
    pub lockfile: PathBuf,

    /// Rewrite a URL prefix (like git's insteadOf); repeatable; adds to `[mirrors]` in hstore.toml
    #[arg(long, value_name = "FROM=TO")]
    pub mirror: Vec<String>,

    /// Re-resolve sources even if their recipe is unchanged: all, or the one named (`source` or `recipe.source`)
    #[arg(long, value_name = "SOURCE", num_args = 0..=1, default_missing_value = "")]
    pub update: Option<String>,

    /// Fail (exit 1) instead of writing if the lockfile would change
    #[arg(long)]
    pub locked: bool,

    /// Never touch the network; fail naming what is missing from the store
    #[arg(long)]
    pub offline: bool,

    /// Most bytes one downloaded archive may unpack to, counted at apparent size (`64G`; `none`) [default: 64 × the
    /// archive's size or 16G, whichever is larger]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub max_unpacked_size: Option<hstore_sandbox::limits::SizeLimit>,
}

/// `hstore fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The lockfile to fetch
    #[arg(long, value_name = "FILE", default_value = "lockfile.json")]
    pub lockfile: PathBuf,

    /// Only what builds for this target read: leave out the sources limited to other targets (`targets = [...]` in
    /// their recipe tables) and what only they name [default: every target]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// Rewrite a URL prefix (like git's insteadOf); repeatable; adds to `[mirrors]` in hstore.toml
    #[arg(long, value_name = "FROM=TO")]
    pub mirror: Vec<String>,

    /// Never touch the network; fail naming what is missing from the store
    #[arg(long)]
    pub offline: bool,

    /// Take missing objects from this cache (`s3://…`, `https://…`, `file:///…`) before upstream; repeatable, tried
    /// in order [default: `[caches] substitute` in hstore.toml]
    #[arg(long = "cache", value_name = "CACHE")]
    pub caches: Vec<String>,

    /// Most bytes one downloaded archive may unpack to, counted at apparent size (`64G`; `none`) [default: 64 × the
    /// archive's size or 16G, whichever is larger]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub max_unpacked_size: Option<hstore_sandbox::limits::SizeLimit>,
}

/// `hstore diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old lockfile: a file, a git revision of NEW (`HEAD~1`, `v1.2`), or `REV:PATH`
    #[arg(value_name = "OLD")]
    pub old: String,

    /// The new lockfile
    #[arg(value_name = "NEW", default_value = "lockfile.json")]
    pub new: PathBuf,

    /// Print the changes as JSON
    #[arg(long)]
    pub json: bool,
}

/// `hstore why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// A name (`serde`, `serde@1.0.228`, a wheel, an xmake package, a repository name or URL), a lockfile id, or an
    /// address `b3:…` (of an artifact, or of a file or directory inside one: needs the store to hold it)
    #[arg(value_name = "NAME|ADDRESS")]
    pub query: String,

    /// The lockfile
    #[arg(long, value_name = "FILE", default_value = "lockfile.json")]
    pub lockfile: PathBuf,
}

/// `hstore sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// A recorded build: a recipe name (with --target), or a build key / output address (`b3:…`) [default: the
    /// whole lockfile]
    #[arg(value_name = "RECIPE|ADDRESS", conflicts_with = "bundle")]
    pub build: Option<String>,

    /// The target the recipe was built for
    #[arg(long, short, requires = "build")]
    pub target: Option<String>,

    /// Describe the lockfile a bundle carries, read from the bundle (a file: it is read up to three times) without
    /// importing it
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,

    /// The output format
    #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    pub format: SbomFormat,

    /// Write the SBOM here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub inputs: BuildInputs,
}

/// `hstore sbom --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `hstore build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Recipes to build [default: every recipe with a [build] section]
    #[arg(value_name = "RECIPE")]
    pub recipe: Vec<String>,

    /// The target to build for (one of the recipe's `[targets.*]`)
    #[arg(long, short)]
    pub target: Option<String>,

    #[command(flatten)]
    pub inputs: BuildInputs,

    /// Leave a symlink to the materialized output here (like Nix's `result`)
    #[arg(long, value_name = "PATH")]
    pub out_link: Option<PathBuf>,

    /// Rebuild even if cached and compare with the recorded output; exits 1 listing differing files
    #[arg(long)]
    pub check: bool,

    /// Install the whole output (bin/, lib/, include/, share/, …) under this prefix; never follows a symlink
    #[arg(long, value_name = "DIR")]
    pub install_path: Option<PathBuf>,

    /// Use the preset `RECIPES/cases/NAME.toml` (recipes, target, install path)
    #[arg(long, value_name = "NAME")]
    pub deployment_case: Option<String>,

    /// Print the plan (recipe, target, build key, cached or will build) on stdout and build nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Run up to N independent builds at once, each in its own sandbox
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1)]
    pub jobs: usize,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Take finished builds (signed records, by build key) from this cache before building; repeatable, tried in
    /// order [default: `[caches] substitute` in hstore.toml]
    #[arg(long = "cache", value_name = "CACHE")]
    pub caches: Vec<String>,

    /// Accept build records from caches signed by this public key (`.pub` file or `hstore-ed25519:…`); repeatable;
    /// adds to `[caches] trusted-keys`
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,

    /// After each successful build, upload its output and its signed record to this cache
    #[arg(long, value_name = "CACHE")]
    pub push: Option<String>,

    /// Sign each new build record's provenance (an in-toto statement) and the records pushed to a cache with this
    /// secret key [default: `[caches] sign-key` in hstore.toml]
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,

    #[command(flatten)]
    pub local: LocalSourceArgs,
}

/// Building from local checkouts and choosing a deployment case's components: what the seed's
/// `scripts/install.sh` did with `--infinicore-src`, `--infinilm-src`, `--install-infinicore` and `--install-infinilm`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Local sources and components")]
pub struct LocalSourceArgs {
    /// Build RECIPE's source SOURCE from this local directory instead of the locked one (stored through the stat
    /// cache; the build key says `local-tree` and the build log names the directory); repeatable
    #[arg(long, value_name = "RECIPE.SOURCE=DIR")]
    pub override_input: Vec<String>,

    /// Build InfiniCore from this checkout: `--override-input infinicore.core=DIR`
    #[arg(long, value_name = "DIR")]
    pub infinicore_src: Option<PathBuf>,

    /// Build InfiniLM from this checkout: `--override-input infinilm.lm=DIR` (also for its variants)
    #[arg(long, value_name = "DIR")]
    pub infinilm_src: Option<PathBuf>,

    /// Build and install RECIPE (or its variants) with the others (`true`), leave it out (`false`), or do what the
    /// deployment case lists (`auto`); repeatable
    #[arg(long, value_name = "RECIPE=MODE")]
    pub component: Vec<String>,

    /// `--component infinicore=MODE`
    #[arg(long, value_name = "MODE", value_parser = ["auto", "true", "false"])]
    pub install_infinicore: Option<String>,

    /// `--component infinilm=MODE`
    #[arg(long, value_name = "MODE", value_parser = ["auto", "true", "false"])]
    pub install_infinilm: Option<String>,
}

impl LocalSourceArgs {
    /// Every `--override-input`, the seed's `--infinicore-src`/`--infinilm-src` spelled out.
    pub fn overrides(&self) -> Vec<String> {
        let mut all = self.override_input.clone();
        for (flag, dir) in [
            ("infinicore.core", &self.infinicore_src),
            ("infinilm.lm", &self.infinilm_src),
        ] {
            if let Some(dir) = dir {
                all.push(format!("{flag}={}", dir.display()));
            }
        }
        all
    }

    /// Every `--component`, the seed's `--install-infinicore`/`--install-infinilm` spelled out.
    pub fn components(&self) -> Vec<String> {
        let mut all = self.component.clone();
        for (name, mode) in [
            ("infinicore", &self.install_infinicore),
            ("infinilm", &self.install_infinilm),
        ] {
            if let Some(mode) = mode {
                all.push(format!("{name}={mode}"));
            }
        }
        all
    }
}

/// Resource limits of each build (see `hstore_sandbox::limits`), over the recipe's `[build.limits]` and
/// `[targets.T.limits]`; a build over one fails naming it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Build limits")]
pub struct LimitArgs {
    /// Wall-clock time per build (`90s`, `30m`, `6h`; `none`) [default: the recipe's, else 6h]
    #[arg(long, value_name = "DURATION", value_parser = hstore_sandbox::limits::parse_duration_limit)]
    pub timeout: Option<hstore_sandbox::limits::DurationLimit>,

    /// Memory per process, RLIMIT_DATA (`8G`; `none`) [default: the recipe's, else half of RAM]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub max_memory: Option<hstore_sandbox::limits::SizeLimit>,

    /// Processes and threads of one build at a time, RLIMIT_NPROC [default: the recipe's, else 4096]
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,

    /// CPU time per process, RLIMIT_CPU (`30m`; `none`) [default: the recipe's, else none]
    #[arg(long, value_name = "DURATION", value_parser = hstore_sandbox::limits::parse_duration_limit)]
    pub max_cpu_time: Option<hstore_sandbox::limits::DurationLimit>,

    /// Size of each of /tmp, HOME and /dev/shm (`4G`) [default: the recipe's, else 25%/10%/10% of RAM]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub tmp_size: Option<hstore_sandbox::limits::SizeLimit>,

    /// Build log size (stdout and stderr together) [default: the recipe's, else 256M]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub max_log_size: Option<hstore_sandbox::limits::SizeLimit>,

    /// What /build and $out may hold together, sparse files at their apparent size (`20G`; `none`)
    /// [default: the recipe's, else half the free space of the store's filesystem]
    #[arg(long, value_name = "SIZE", value_parser = hstore_sandbox::limits::parse_size_limit)]
    pub max_output_size: Option<hstore_sandbox::limits::SizeLimit>,
}

impl LimitArgs {
    /// The limits given on the command line; they override the recipe's and the defaults.
    pub fn overrides(&self) -> hstore_sandbox::LimitOverrides {
        hstore_sandbox::LimitOverrides {
            timeout: self.timeout,
            max_memory: self.max_memory,
            max_processes: self.max_processes,
            max_cpu_time: self.max_cpu_time,
            tmp_size: self.tmp_size,
            max_log_size: self.max_log_size,
            max_output_size: self.max_output_size,
        }
    }
}

/// Where `build` and `log` find recipes and the lockfile that pins their inputs.
#[derive(Debug, Args)]
pub struct BuildInputs {
    /// Directory of recipe files
    #[arg(long = "recipes", value_name = "DIR", default_value = "recipes")]
    pub recipes_dir: PathBuf,

    /// The lockfile naming the inputs
    #[arg(long, value_name = "FILE", default_value = "lockfile.json")]
    pub lockfile: PathBuf,
}

/// `hstore log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// A recipe name (with --target), or a build key / output address (`b3:…`)
    pub what: Option<String>,

    /// The target the recipe was built for
    #[arg(long, short)]
    pub target: Option<String>,

    #[command(flatten)]
    pub inputs: BuildInputs,
}

/// `hstore verify-provenance`.
#[derive(Debug, Args)]
pub struct VerifyProvenanceArgs {
    /// An output address or build key (`b3:…`: every record naming it), or a recipe name (with --target)
    #[arg(value_name = "OUTPUT")]
    pub what: String,

    /// The target the recipe was built for
    #[arg(long, short)]
    pub target: Option<String>,

    #[command(flatten)]
    pub inputs: BuildInputs,

    /// Trust provenance signed by this public key (a `.pub` file or `hstore-ed25519:…` text); repeatable; adds to
    /// `[caches] trusted-keys`
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,

    /// Trust the keys in this file (one public key per line, `#` comments); repeatable
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,

    /// Print each verified statement as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hstore export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A lockfile whose artifacts to export, repeatable [default: ./lockfile.json, unless --all]
    #[arg(long, value_name = "FILE")]
    pub lockfile: Vec<PathBuf>,

    /// Only what builds for this target read: leave out the sources limited to other targets (`targets = [...]` in
    /// their recipe tables) and what only they name [default: every target]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// Also export recorded build outputs (roots named `build-*` and the `build` records)
    #[arg(long)]
    pub with_builds: bool,

    /// Export every root in the store, and every build record
    #[arg(long)]
    pub all: bool,

    /// Leave out objects (and whole subtrees) the receiving store already holds, as listed by its
    /// `hstore store inventory`; repeatable
    #[arg(long, value_name = "INVENTORY")]
    pub exclude: Vec<PathBuf>,

    /// Sign the bundle with this secret key (from `hstore key generate`)
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,

    /// Compress the whole bundle with zstd at this level (1-22, long-distance matching over 128 MiB), for a slow
    /// link: smaller, slower to write; import reads it as it is. Without it, objects are copied as stored (fastest)
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(1..=22))]
    pub level: Option<i32>,

    /// Where to write the bundle; `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `hstore import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle to read; `-` for stdin
    #[arg(value_name = "FILE")]
    pub input: PathBuf,

    /// Require a signature by this public key (a `.pub` file or `hstore-ed25519:…` text), and take the bundle's
    /// build records (without a trusted signature they are dropped); repeatable
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,

    /// Require a signature by one of the keys in this file (one public key per line, `#` comments), and take the
    /// bundle's build records; repeatable
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// `hstore bundle …`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// List a bundle's roots, lockfiles, records, objects by kind and sizes, and its signature, reading it once in
    /// bounded memory; with `--trust`, exits 1 unless one of those keys signed it
    #[command(after_help = "Examples:
  hstore bundle inspect stack.hsb
  hstore bundle inspect stack.hsb --trust release.pub      # exit 1 unless release.pub signed it
  hstore bundle inspect - --json < stack.hsb")]
    Inspect(BundleInspectArgs),
}

/// `hstore bundle inspect`.
#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    /// The bundle to read; `-` for stdin
    #[arg(value_name = "FILE")]
    pub input: PathBuf,

    /// Say whether this public key (a `.pub` file or `hstore-ed25519:…` text) signed it; repeatable
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,

    /// Say whether one of the keys in this file signed it; repeatable
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,

    /// Print the whole table as JSON (the manifest's roots, lockfiles and records, totals by kind, the signer)
    #[arg(long)]
    pub json: bool,
}

/// `hstore key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key pair: NAME.secret (mode 0600, for `export --sign`) and NAME.pub (for `import --trust`)
    #[command(
        after_help = "Example:\n  hstore key generate --out release   # writes release.secret, release.pub; prints the public key"
    )]
    Generate {
        /// Base name of the two files (neither may exist)
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
    },
}

/// `hstore store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Add a file (as a blob) or a directory (as a tree); prints its address
    #[command(after_help = "Example:\n  hstore store add ./src      # prints b3:…")]
    Add {
        /// The file or directory to add
        path: PathBuf,
        /// Keep it from `hstore store gc` with the gc root NAME (`roots-v1/NAME.json`; created, or extended)
        #[arg(long, value_name = "NAME")]
        root: Option<String>,
    },
    /// Write a blob's bytes to stdout
    #[command(after_help = "Example:\n  hstore store cat b3:af13… > file")]
    Cat {
        /// The blob's address
        address: String,
    },
    /// Write a blob or tree out to a new path
    #[command(after_help = "Example:\n  hstore store materialize b3:af13… ./checkout")]
    Materialize {
        /// The object's address
        address: String,
        /// Where to write it (must not exist, or be an empty directory)
        dest: PathBuf,
    },
    /// Stream an object as a NAR, byte-identical to `nix-store --dump`
    #[command(after_help = "Example:\n  hstore store dump b3:af13… | nix-store --restore ./out")]
    Dump {
        /// The object's address
        address: String,
    },
    /// List every object: address, kind (blob|tree), size in bytes
    #[command(after_help = "Example:\n  hstore store ls | sort -k3 -n | tail")]
    Ls,
    /// Re-hash every object; exits 1 naming each corrupt one
    #[command(after_help = "Example:\n  hstore store verify --repair && hstore fetch")]
    Verify {
        /// Remove corrupt objects (fetch or import brings them back)
        #[arg(long)]
        repair: bool,
    },
    /// Print the addresses this store holds (JSON), for `hstore export --exclude` on the connected side
    #[command(
        after_help = "Example:\n  hstore store inventory > have.json   # carry it to the connected machine"
    )]
    Inventory,
    /// List the gc roots (what registered each, and when), or remove one so gc can reclaim its closure
    #[command(after_help = "Examples:
  hstore store roots                          # name, registered (UTC), objects kept, what holds it
  hstore store roots remove lockfile-3f2a…    # then `hstore store gc` reclaims what only it kept")]
    Roots {
        /// Remove a root instead of listing
        #[command(subcommand)]
        action: Option<RootsCommand>,
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete objects no root reaches (roots: fetched lockfiles, recorded builds)
    #[command(after_help = "Example:\n  hstore store gc --dry-run")]
    Gc {
        /// Only report what would be removed
        #[arg(long)]
        dry_run: bool,
    },
}

/// `hstore store roots …`.
#[derive(Debug, Subcommand)]
pub enum RootsCommand {
    /// Remove gc roots by name (`hstore store roots` lists them); the objects stay until `hstore store gc`
    Remove {
        /// The roots' names
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `hstore cache …`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Upload what the cache lacks of lockfiles' closures (and recorded builds), in packs
    #[command(after_help = "Examples:
  hstore cache push s3://hstore-cache --lockfile lockfile.json
  hstore cache push s3://hstore-cache --with-builds --sign cluster.secret
  hstore cache push file:///nfs/hstore-cache --all")]
    Push(CachePushArgs),
    /// Bring lockfiles' closures (and trusted build records) from a cache into the store
    #[command(after_help = "Examples:
  hstore cache pull s3://hstore-cache --lockfile lockfile.json
  hstore cache pull https://cache.example/hstore --trust cluster.pub   # also signed build records")]
    Pull(CachePullArgs),
}

/// `hstore cache push`.
#[derive(Debug, Args)]
pub struct CachePushArgs {
    /// The cache: `s3://BUCKET[/PREFIX]`, `http(s)://…` (PUT must be allowed) or `file:///DIR`
    #[arg(value_name = "CACHE")]
    pub cache: String,

    /// A lockfile whose closure to upload, repeatable [default: ./lockfile.json, unless --all]
    #[arg(long, value_name = "FILE")]
    pub lockfile: Vec<PathBuf>,

    /// Only what builds for this target read: leave out the sources limited to other targets (`targets = [...]` in
    /// their recipe tables) and what only they name [default: every target]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// Also upload recorded builds (outputs, logs and signed records)
    #[arg(long)]
    pub with_builds: bool,

    /// Upload every root in the store, and every build record
    #[arg(long)]
    pub all: bool,

    /// Sign build records with this secret key (records without a trusted signature are ignored by pullers)
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

/// `hstore cache pull`.
#[derive(Debug, Args)]
pub struct CachePullArgs {
    /// The cache: `s3://BUCKET[/PREFIX]`, `http(s)://…` or `file:///DIR`
    #[arg(value_name = "CACHE")]
    pub cache: String,

    /// A lockfile whose closure to bring, repeatable [default: ./lockfile.json]
    #[arg(long, value_name = "FILE")]
    pub lockfile: Vec<PathBuf>,

    /// Only what builds for this target read: leave out the sources limited to other targets (`targets = [...]` in
    /// their recipe tables) and what only they name [default: every target]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,

    /// Also bring the build records signed by this public key, with their outputs; repeatable
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own consistency checks (duplicate flags, bad defaults, conflicts naming unknown arguments), which it
    /// otherwise runs only when a command is used.
    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every example in a `--help` fits in 100 columns, the width help is wrapped to off a terminal, so no command
    /// line is broken in two.
    #[test]
    fn examples_fit_in_100_columns() {
        fn check(command: &clap::Command, path: &str, long: &mut Vec<String>) {
            if let Some(text) = command.get_after_help() {
                for line in text.to_string().lines() {
                    if line.chars().count() > 100 {
                        long.push(format!("{path}: {line}"));
                    }
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), long);
            }
        }
        let mut long = Vec::new();
        check(&Cli::command(), "hstore", &mut long);
        assert!(
            long.is_empty(),
            "examples wider than 100 columns:\n{}",
            long.join("\n")
        );
    }
}
