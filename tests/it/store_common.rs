//! The store tests' view of [`hstore_test_support::TestEnv`]: one isolated directory (HOME, XDG dirs, the store,
//! a sanitized environment) with shorthands for running `hstore` on its store.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::os::unix::fs::FileExt;

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

    /// Lets `seconds` pass for the commands made from now on (see [`hstore_test_support::TestEnv::advance_clock`]).
    pub fn advance_clock(&self, seconds: u64) {
        self.inner.advance_clock(seconds);
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

    /// Every object in the store once, loose or packed: (hex, suffix), sorted.
    pub fn object_files(&self) -> Vec<(String, String)> {
        let mut objects: Vec<(String, String)> = self
            .object_copies()
            .into_iter()
            .map(|(hex, suffix, _)| (hex, suffix))
            .collect();
        objects.dedup();
        objects
    }

    /// Every stored copy of every object: (hex, suffix, where), sorted; empty when there is no store.
    pub fn object_copies(&self) -> Vec<(String, String, hstore_store::Location)> {
        if !self.store().join("VERSION").exists() {
            return Vec::new();
        }
        let store = hstore_store::Store::open(self.store()).unwrap();
        store
            .object_copies()
            .unwrap()
            .into_iter()
            .map(|copy| {
                (
                    copy.digest.to_hex(),
                    copy.format.suffix().to_owned(),
                    copy.location,
                )
            })
            .collect()
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

/// Flips one bit in the middle of one stored copy of an object, loose or packed.
pub fn flip_stored_byte(location: &hstore_store::Location) {
    use std::os::unix::fs::PermissionsExt;
    let (path, offset, len) = match location {
        hstore_store::Location::Loose(path) => (path, 0, fs::metadata(path).unwrap().len()),
        hstore_store::Location::Packed { pack, offset, len } => (pack, *offset, *len),
    };
    let mut permissions = fs::metadata(path).unwrap().permissions();
    permissions.set_mode(0o644);
    fs::set_permissions(path, permissions).unwrap();
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let at = offset + len / 2;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0x01;
    file.write_all_at(&byte, at).unwrap();
}
