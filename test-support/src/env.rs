//! [`TestEnv`]: a sandbox directory for running the real `hstore` binary (house style rule 19, after cargo's
//! `test_env`).
//!
//! ```text
//! {root}/home/         HOME
//! {root}/xdg/data/     XDG_DATA_HOME
//! {root}/xdg/cache/    XDG_CACHE_HOME
//! {root}/xdg/config/   XDG_CONFIG_HOME
//! {root}/store/        HSTORE_STORE
//! {root}/cache/        HSTORE_CACHE
//! ```
//!
//! [`TestEnv::command`] removes everything from the inherited environment that could make a test depend on the
//! machine it runs on: proxies, CI markers, cargo's and git's variables, colour forcing and `HSTORE_*`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Inherited variables removed by exact name.
const REMOVED: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "CI",
    "CONTINUOUS_INTEGRATION",
    "BUILD_NUMBER",
    "RUN_ID",
    "TF_BUILD",
    "EMAIL",
    "RUST_LOG",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "TERM",
    "COLUMNS",
];

/// Inherited variables removed by prefix.
const REMOVED_PREFIXES: &[&str] = &[
    "CARGO_",
    "GIT_",
    "GITHUB_",
    "GITLAB_",
    "BUILDKITE",
    "HSTORE_",
    "PIP_",
    "UV_",
    "XDG_",
    "AWS_",
];

/// A throw-away home for one integration test.
#[derive(Debug)]
pub struct TestEnv {
    root: tempfile::TempDir,
    /// Seconds hstore's clock runs ahead in the commands made from now on ([`TestEnv::advance_clock`]).
    clock_offset: std::sync::atomic::AtomicU64,
}

impl TestEnv {
    /// Creates the directory layout in a fresh temp dir.
    #[expect(
        clippy::new_without_default,
        reason = "creating directories is not a default value"
    )]
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("test env temp dir");
        for dir in [
            "home",
            "xdg/data",
            "xdg/cache",
            "xdg/config",
            "store",
            "cache",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).expect("create test env dir");
        }
        TestEnv {
            root,
            clock_offset: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The sandbox root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `HOME`.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// `HSTORE_STORE`.
    pub fn store(&self) -> PathBuf {
        self.root().join("store")
    }

    /// `HSTORE_CACHE`.
    pub fn cache(&self) -> PathBuf {
        self.root().join("cache")
    }

    /// Lets `seconds` pass for the hstore commands made from now on (`HSTORE_TEST_CLOCK_OFFSET`), instead of
    /// sleeping: files written before are that much older to them (the stat cache's racy window), and a snapshot
    /// time they take is that much later.
    pub fn advance_clock(&self, seconds: u64) {
        self.clock_offset
            .fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// A command for `bin` running in [`TestEnv::root`] with the sanitized environment.
    pub fn command(&self, bin: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(bin);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if REMOVED.contains(&name.as_ref())
                || REMOVED_PREFIXES
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(&key);
            }
        }
        // `HOME` moves, so keep rustup (if any) pointed at the real toolchains.
        if std::env::var_os("RUSTUP_HOME").is_none()
            && let Some(home) = std::env::var_os("HOME")
        {
            command.env("RUSTUP_HOME", Path::new(&home).join(".rustup"));
        }
        command
            .current_dir(self.root())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.root().join("xdg/data"))
            .env("XDG_CACHE_HOME", self.root().join("xdg/cache"))
            .env("XDG_CONFIG_HOME", self.root().join("xdg/config"))
            .env("HSTORE_STORE", self.store())
            .env("HSTORE_CACHE", self.cache())
            .env("HSTORE_TEST_NO_RETRY_DELAY", "1")
            .env(
                "HSTORE_TEST_CLOCK_OFFSET",
                self.clock_offset
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .to_string(),
            )
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("NO_COLOR", "1");
        command
    }
}
