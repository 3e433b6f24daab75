//! Helpers shared by the lock and fetch tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_test_support::{RunningRegistry, TestEnv};

/// Runs `hstore` with `args` in `env`.
pub fn hstore(env: &TestEnv, args: &[&str]) -> Output {
    command(env, args).output().expect("run hstore")
}

/// A `hstore` command in `env`, not yet run.
pub fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = env.command(env!("CARGO_BIN_EXE_hstore"));
    command.args(args).env("NO_PROXY", "*");
    command
}

/// Asserts success, printing stderr otherwise; returns stderr.
#[track_caller]
pub fn ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "hstore failed ({:?}):\n{stderr}",
        output.status.code()
    );
    stderr
}

/// Asserts exit code `code`; returns stderr.
#[track_caller]
pub fn fails(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status; stderr:\n{stderr}"
    );
    stderr
}

/// Writes `recipes/<name>.toml`.
pub fn recipe(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    let dir = env.root().join("recipes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A local project directory `app/` whose Cargo.lock pins `crates` from the loopback registry.
pub fn project_with_crates(
    env: &TestEnv,
    registry: &RunningRegistry,
    crates: &[(&str, &str)],
) -> PathBuf {
    let dir = env.root().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let mut lock =
        String::from("version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n");
    for (name, version) in crates {
        lock.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"{}\"\nchecksum = \"{}\"\n",
            registry.crates_index_url(),
            registry.checksum(name, version)
        ));
    }
    std::fs::write(dir.join("Cargo.lock"), lock).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    dir
}

/// The lockfile as JSON.
pub fn lockfile_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The address of the artifact whose id contains `needle`.
pub fn address_of(lockfile: &serde_json::Value, needle: &str) -> String {
    lockfile["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no artifact matching {needle}"))["address"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Number of objects in the store.
pub fn object_count(env: &TestEnv) -> usize {
    let output = hstore(env, &["store", "ls"]);
    String::from_utf8_lossy(&output.stdout).lines().count()
}
