//! `debian` sources and `[build] base` end to end (issue 22): the real `hstore` against a loopback Debian archive
//! ([`DebianArchive`]: real `.deb` files made by `dpkg-deb`, `Packages` indexes, an `InRelease` clearsigned by a
//! throwaway `gpg` key). The packages carry this host's own `dash` and C library, so the base they unpack to is a
//! root a build really runs in, with no host `/usr` bound.

use std::path::PathBuf;
use std::process::{Command, Output};

use hstore_test_support::{DebSpec, DebianArchive, RunningDebianArchive, TestEnv};
use serde_json::Value;

use crate::common::{fails, ok};

/// The host's bytes of a file (links followed).
fn host_file(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

/// The C library `dash` links against on this host, found by `ldd`.
fn host_libc() -> PathBuf {
    let output = Command::new("ldd")
        .arg("/bin/dash")
        .output()
        .expect("run ldd");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find_map(|line| {
            let (name, rest) = line.trim().split_once(" => ")?;
            let path = rest.split_whitespace().next()?;
            name.starts_with("libc.so").then(|| PathBuf::from(path))
        })
        .unwrap_or_else(|| panic!("no libc in `ldd /bin/dash`:\n{text}"))
}

/// An archive with a tiny but runnable system: `dash` (essential, pre-depending on `libc6`), `libc6` with the
/// host's C library and loader, `usr-is-merged` (essential: the tree gets `bin -> usr/bin`), a `greeting` package
/// reached through a virtual package, and packages the closure must leave out.
fn archive() -> RunningDebianArchive {
    let libc = host_libc();
    let libc_dir = libc.parent().expect("libc's directory");
    let multiarch = libc_dir
        .strip_prefix("/lib")
        .or_else(|_| libc_dir.strip_prefix("/usr/lib"))
        .expect("libc under /lib or /usr/lib");
    DebianArchive::new()
        .deb(
            DebSpec::new("libc6", "2.36-9+deb12u10")
                .field("Multi-Arch", "same")
                .file(
                    &format!("usr/lib/{}/libc.so.6", multiarch.display()),
                    host_file(&libc.to_string_lossy()),
                )
                .file_with_mode(
                    "usr/lib64/ld-linux-x86-64.so.2",
                    host_file("/lib64/ld-linux-x86-64.so.2"),
                    0o755,
                ),
        )
        .deb(
            DebSpec::new("dash", "0.5.12-2")
                .essential()
                .pre_depends("libc6 (>= 2.34)")
                .file_with_mode("usr/bin/dash", host_file("/bin/dash"), 0o755)
                .file_with_mode("usr/bin/sh", host_file("/bin/dash"), 0o755),
        )
        .deb(DebSpec::new("usr-is-merged", "37~deb12u1").essential())
        .deb(
            DebSpec::new("greeter", "1.0-1")
                .depends("greeting-data, libc6 (>= 2.36) | libc-alt")
                .file("usr/share/greeter/name", "greeter\n"),
        )
        .deb(
            DebSpec::new("hello-words", "2.0-1")
                .architecture("all")
                .provides("greeting-data")
                .file("usr/share/greeting/text", "hello from the base\n"),
        )
        .deb(DebSpec::new("unrelated", "1.0").file("usr/bin/unrelated", "no\n"))
        .start()
}

const SCRIPT: &str = r#"
set -eu
test ! -e /usr/bin/git
test ! -e /usr/bin/unrelated
test -e /etc/passwd
read line < /usr/share/greeting/text
echo "$line" > "$out/greeting"
"#;

/// A project whose recipe `onbase` builds on the archive's base.
struct Project {
    env: TestEnv,
    archive: RunningDebianArchive,
}

impl Project {
    fn new() -> Self {
        let project = Project {
            env: TestEnv::new(),
            archive: archive(),
        };
        std::fs::create_dir_all(project.dir().join("recipes")).unwrap();
        std::fs::write(project.dir().join("keyring.gpg"), project.archive.keyring()).unwrap();
        let recipe = format!(
            "[recipe]\nname = \"onbase\"\n\n[sources.base]\ndebian = \"stable\"\narchive = \"{}\"\n\
             architecture = \"amd64\"\nkeyring = \"{}\"\npackages = [\"greeter\"]\n\n[targets.cpu]\n\n\
             [build]\nbase = \"base\"\nscript = '''{SCRIPT}'''\n",
            project.archive.url(),
            project.dir().join("keyring.gpg").display(),
        );
        std::fs::write(project.dir().join("recipes/onbase.toml"), recipe).unwrap();
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    fn run(&self, store: &str, args: &[&str]) -> Output {
        self.env
            .command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(self.dir())
            .arg("--store")
            .arg(self.env.root().join(store))
            .args(args)
            .output()
            .expect("run hstore")
    }

    fn lockfile(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("lockfile.json")).unwrap()).unwrap()
    }
}

fn artifact_ids(lockfile: &Value) -> Vec<String> {
    lockfile["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| artifact["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_debian_base_locks_the_closure_relocks_identically_and_is_the_builds_root() {
    let project = Project::new();
    ok(&project.run("store", &["lock"]));
    let lockfile = project.lockfile();
    let ids = artifact_ids(&lockfile);
    assert_eq!(ids.len(), 6, "{ids:?}");
    for expected in [
        "deb+amd64/dash@0.5.12-2",
        "deb+amd64/greeter@1.0-1",
        "deb+amd64/libc6@2.36-9+deb12u10",
        "deb+all/hello-words@2.0-1",
        "deb+amd64/usr-is-merged@37~deb12u1",
    ] {
        assert!(ids.iter().any(|id| id == expected), "{expected} in {ids:?}");
    }
    let base = lockfile["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|artifact| artifact["kind"] == "debian_base")
        .expect("a debian_base artifact")
        .clone();
    assert_eq!(base["packages"], 5);
    let greeter = lockfile["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|artifact| artifact["id"] == "deb+amd64/greeter@1.0-1")
        .unwrap();
    assert_eq!(
        greeter["url"].as_str().unwrap(),
        format!(
            "{}/{}",
            project.archive.url(),
            project.archive.deb("greeter").filename
        )
    );

    // Re-locking, and locking into another store from the archive again, give the same bytes.
    let first = std::fs::read(project.dir().join("lockfile.json")).unwrap();
    ok(&project.run("store", &["lock"]));
    assert_eq!(
        first,
        std::fs::read(project.dir().join("lockfile.json")).unwrap()
    );
    ok(&project.run("other", &["lock", "--update"]));
    assert_eq!(
        first,
        std::fs::read(project.dir().join("lockfile.json")).unwrap()
    );

    // A fresh store fetches the same base.
    ok(&project.run("fresh", &["fetch"]));
    ok(&project.run("fresh", &["store", "verify"]));

    ok(&project.run(
        "store",
        &["build", "--target", "cpu", "--out-link", "result"],
    ));
    assert_eq!(
        std::fs::read_to_string(project.dir().join("result/greeting")).unwrap(),
        "hello from the base\n"
    );
    let here = project.run("store", &["build", "--target", "cpu", "--dry-run"]);
    ok(&here);
    let here = String::from_utf8_lossy(&here.stdout).into_owned();
    assert!(here.ends_with(" cached\n"), "{here}");

    // The key holds the base, not the host: under a host `/usr` with a file added and one removed (an overlay in a
    // mount namespace of its own), the same build is the cached one, with the same output.
    let overlay = project.env.root().join("overlay");
    for dir in ["upper", "work"] {
        std::fs::create_dir_all(overlay.join(dir)).unwrap();
    }
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir=/usr,upperdir={0}/upper,workdir={0}/work /usr; \
         touch /usr/bin/hstore-added-tool; rm /usr/bin/xz; exec \"$@\"",
        overlay.display()
    );
    let changed = project
        .env
        .command("unshare")
        .current_dir(project.dir())
        .args(["-rm", "sh", "-c", &script, "sh"])
        .arg(env!("CARGO_BIN_EXE_hstore"))
        .arg("--store")
        .arg(project.env.root().join("store"))
        .args(["build", "--target", "cpu", "--dry-run"])
        .output()
        .expect("run unshare");
    let stderr = ok(&changed);
    let there = String::from_utf8_lossy(&changed.stdout).into_owned();
    assert_eq!(
        there, here,
        "the build under a changed /usr has another key:\n{stderr}"
    );
}

#[test]
fn a_tampered_deb_or_a_foreign_signature_is_refused_naming_it() {
    let project = Project::new();
    project.archive.tamper_deb("greeter");
    let stderr = fails(&project.run("store", &["lock"]), 2);
    assert!(stderr.contains("greeter"), "{stderr}");
    assert!(stderr.contains("sha256"), "{stderr}");
    assert!(!project.dir().join("lockfile.json").exists());

    let project = Project::new();
    let other = project.archive.resign_with_other_key();
    let stderr = fails(&project.run("store", &["lock"]), 2);
    assert!(stderr.contains("InRelease"), "{stderr}");
    assert!(
        stderr
            .to_lowercase()
            .contains(&other.to_lowercase()[other.len() - 16..]),
        "the signer `{other}` is named:\n{stderr}"
    );
    assert!(
        stderr.contains("hint:") || stderr.contains("help:"),
        "{stderr}"
    );
}

#[test]
fn a_base_naming_no_debian_source_is_refused_with_the_file() {
    let env = TestEnv::new();
    let dir = env.root().join("recipes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("app.toml"),
        "[recipe]\nname = \"app\"\n[sources.code]\npath = \".\"\n[targets.cpu]\n[build]\nbase = \"code\"\nscript = \"true\"\n",
    )
    .unwrap();
    let output = env
        .command(env!("CARGO_BIN_EXE_hstore"))
        .args(["lock", "--recipes"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = fails(&output, 2);
    assert!(stderr.contains("app.toml"), "{stderr}");
    assert!(stderr.contains("names no `debian` source"), "{stderr}");
}

/// Live (talks to deb.debian.org, the archive this machine's apt uses; run with `--ignored`): a base of real
/// bookworm packages, locked from the signed archive with the Debian keyring, compiles and runs a C program in the
/// sandbox through Debian's `cc` alternative, with no host `/usr`.
#[test]
#[ignore = "live: locks from deb.debian.org"]
fn live_bookworm_base_compiles_and_runs_c_without_the_host() {
    let env = TestEnv::new();
    let project = env.root().join("project");
    std::fs::create_dir_all(project.join("recipes")).unwrap();
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("src/hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello from bookworm\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        project.join("recipes/hello.toml"),
        r#"[recipe]
name = "hello"
[sources.code]
path = "../src"
[sources.base]
debian = "bookworm"
packages = ["libc6", "bash", "coreutils", "gcc", "libc6-dev"]
[targets.cpu]
[build]
base = "base"
script = '''
set -eu
test ! -e /usr/bin/git
test ! -e /usr/local/bin/uv
cc -O2 -o "$out/hello" "$src_code/hello.c"
"$out/hello" > "$out/said"
'''
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        env.command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(&project)
            .args(args)
            .output()
            .expect("run hstore")
    };
    ok(&run(&["lock"]));
    ok(&run(&["build", "--target", "cpu", "--out-link", "result"]));
    assert_eq!(
        std::fs::read_to_string(project.join("result/said")).unwrap(),
        "hello from bookworm\n"
    );
    ok(&run(&["build", "--target", "cpu", "--check"]));
}
