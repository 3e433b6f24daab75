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

    /// Print less (repeat for even less)
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
    /// Work with the store directly: add, cat, materialize, dump, ls, verify, gc
    #[command(
        subcommand,
        after_help = "Examples:\n  hstore store add ./src                         # prints b3:…\n  \
                      hstore store dump b3:af13… > src.nar           # same bytes as `nix-store --dump ./src`\n  \
                      hstore store materialize b3:af13… ./checkout"
    )]
    Store(StoreCommand),
}

/// `hstore store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Add a file (as a blob) or a directory (as a tree); prints its address
    #[command(after_help = "Example:\n  hstore store add ./src      # prints b3:…")]
    Add {
        /// The file or directory to add
        path: PathBuf,
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
    /// Delete objects no root reaches (roots: fetched lockfiles, recorded builds)
    #[command(after_help = "Example:\n  hstore store gc --dry-run")]
    Gc {
        /// Only report what would be removed
        #[arg(long)]
        dry_run: bool,
    },
}
