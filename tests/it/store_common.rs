//! The store tests' view of [`hstore_test_support::TestEnv`]: one isolated directory (HOME, XDG dirs, the store,
//! a sanitized environment) with shorthands for running `hstore` on its store.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One isolated directory with its own HOME and store.
pub struct TestEnv {
    inner: hstore_test_support::TestEnv,
}

impl TestEnv {
    pub fn new() -> Self {
        Self {
            inner: hstore_test_support::TestEnv::new(),
        }
    }

    /// The test's private directory (put source trees here).
    pub fn root(&self) -> &Path {
        self.inner.root()
    }

    /// The store every command of this env uses.
    pub fn store(&self) -> PathBuf {
        self.inner.store()
    }

    /// `hstore ARGS` with the isolated environment, not yet run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.inner.command(env!("CARGO_BIN_EXE_hstore"));
        command.args(args);
        command
    }

    /// Runs `hstore ARGS` to completion.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().unwrap()
    }

    /// Runs `hstore ARGS`, asserting exit 0; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> Vec<u8>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self.run(args);
        assert_success(&output);
        output.stdout
    }

    /// `hstore store add PATH`; returns the printed address.
    pub fn add(&self, path: &Path) -> String {
        let stdout = self.ok([OsStr::new("store"), OsStr::new("add"), path.as_os_str()]);
        let address = String::from_utf8(stdout).unwrap().trim().to_owned();
        assert!(
            address.starts_with("b3:") && address.len() == 67,
            "not an address: {address:?}"
        );
        address
    }

    /// Every object file in the store: (hex, suffix, path), sorted.
    pub fn object_files(&self) -> Vec<(String, String, PathBuf)> {
        let mut found = Vec::new();
        let objects = self.store().join("objects-v1");
        let Ok(shards) = fs::read_dir(&objects) else {
            return found;
        };
        for shard in shards {
            for entry in fs::read_dir(shard.unwrap().path()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                let (hex, suffix) = name.split_once('.').unwrap();
                found.push((hex.to_owned(), suffix.to_owned(), path.clone()));
            }
        }
        found.sort();
        found
    }
}

/// Panics with both output streams unless the command exited 0.
#[track_caller]
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The exit code, panicking on death by signal.
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("killed by a signal")
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
