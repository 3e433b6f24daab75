//! xmake end to end: `recipes/xmake.toml` builds xmake from source in the sandbox from its six git sources (xmake
//! and its bundled libraries), reached through `--mirror`; the built xmake runs, a second build is a cache hit, and
//! `--check` reproduces it.
//!
//! The git repositories are made by the test from the fixture tarball (`../shared/fixtures/xmake-3.0.0-src.tar.gz`,
//! beside the repository in CI), which holds exactly those trees at the commits the recipe pins (its README): one
//! repository per tree, so the commit ids are the test's own and the test swaps each `ref` of the real recipe for
//! them, keeping everything else. A missing fixture fails the test: it is never skipped.
//!
//! The `xmake_requires` source kind end to end: a fixture xmake-repo (a real git repository, three packages and a
//! host one, `test-support/src/xmake_repo.rs`) and a C++ project requiring them; `hstore lock` builds the pinned xmake,
//! probes the project in the sandbox and locks the archives; fetch, export, import into a fresh store, `fetch
//! --offline`, and the build runs offline from the store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_test_support::{
    GitRepo, PROJECT_OUTPUT, TestEnv, TestRegistry, XmakeRepoFixture, sha256_hex,
};

/// The fixture tarball's sha256 (its README).
const FIXTURE_SHA256: &str = "e8f5e55bfef235c00de20a4f24c5c852913daf34a7a0d5c3639d8ff2d56d2192";

/// The git sources of `recipes/xmake.toml`: (source name, canonical URL, where the tree sits in the fixture under
/// `xmake-3.0.0/`, or `None` for xmake's own tree, which holds the others).
const XMAKE_GIT_SOURCES: [(&str, &str, Option<&str>); 6] = [
    ("xmake", "https://github.com/xmake-io/xmake.git", None),
    (
        "tbox",
        "https://github.com/tboox/tbox.git",
        Some("core/src/tbox/tbox"),
    ),
    (
        "lua",
        "https://github.com/xmake-io/xmake-core-lua.git",
        Some("core/src/lua/lua"),
    ),
    (
        "lz4",
        "https://github.com/xmake-io/xmake-core-lz4.git",
        Some("core/src/lz4/lz4"),
    ),
    (
        "sv",
        "https://github.com/xmake-io/xmake-core-sv.git",
        Some("core/src/sv/sv"),
    ),
    (
        "cjson",
        "https://github.com/xmake-io/xmake-core-lua-cjson.git",
        Some("core/src/lua-cjson/lua-cjson"),
    ),
];

/// The repository root (this package's manifest directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of `../shared/fixtures/`; panics naming the path if it is missing (CI places `shared/` beside the clone).
pub(crate) fn fixture(name: &str) -> PathBuf {
    let path = repo_root().join("../shared/fixtures").join(name);
    assert!(
        path.is_file(),
        "test fixture `{}` is missing: the tests expect `shared/fixtures/` beside the repository checkout",
        path.display()
    );
    path
}

/// The repositories `recipes/xmake.toml` names, made from the fixture tarball, and the recipe pinned to them.
pub(crate) struct XmakeGitFixture {
    /// `recipes/xmake.toml` as committed, each `ref` swapped for the test repository's commit.
    pub(crate) recipe: String,
    /// `--mirror CANONICAL=file://…` for each repository, ready to append to `hstore lock`.
    pub(crate) mirror_args: Vec<String>,
}

impl XmakeGitFixture {
    /// Unpacks the fixture under `root` and commits each of its trees as a repository of its own.
    pub(crate) fn new(root: &Path) -> Self {
        let tarball = fixture("xmake-3.0.0-src.tar.gz");
        assert_eq!(
            sha256_hex(&std::fs::read(&tarball).expect("read fixture")),
            FIXTURE_SHA256,
            "fixture tarball changed"
        );
        let unpacked = root.join("xmake-src");
        std::fs::create_dir_all(&unpacked).expect("create unpack dir");
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("run tar");
        assert!(status.success(), "tar -xzf {} failed", tarball.display());
        let top = unpacked.join("xmake-3.0.0");
        let mut recipe = std::fs::read_to_string(repo_root().join("recipes/xmake.toml"))
            .expect("read recipes/xmake.toml");
        let mut mirror_args = Vec::new();
        // The bundled libraries first: they leave xmake's tree before it is committed.
        for (name, url, inside) in XMAKE_GIT_SOURCES.iter().rev() {
            let tree = match inside {
                Some(inside) => {
                    let tree = root.join("xmake-git").join(name);
                    std::fs::create_dir_all(tree.parent().expect("parent")).expect("create dir");
                    std::fs::rename(top.join(inside), &tree).expect("move a bundled library out");
                    tree
                }
                None => top.clone(),
            };
            let repo = GitRepo::init(&tree);
            // Upstream tracks every file of these trees, some despite a `.gitignore`.
            repo.git(&["add", "--all", "--force"]);
            let commit = repo.commit(name);
            recipe = pin_git_source(&recipe, url, &commit);
            mirror_args.extend(["--mirror".to_owned(), format!("{url}={}", repo.file_url())]);
        }
        XmakeGitFixture {
            recipe,
            mirror_args,
        }
    }

    /// `args` followed by the `--mirror`s.
    pub(crate) fn with_mirrors<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(self.mirror_args.iter().map(String::as_str));
        all
    }
}

/// `recipe` with the `ref` of the source `git = "URL"` set to `commit`; panics if the recipe has no such source.
fn pin_git_source(recipe: &str, url: &str, commit: &str) -> String {
    let git_line = format!("git = \"{url}\"\nref = \"");
    let start = recipe.find(&git_line).unwrap_or_else(|| {
        panic!("recipes/xmake.toml has no git source `{url}` with a ref:\n{recipe}")
    }) + git_line.len();
    let end = start + recipe[start..].find('"').expect("end of ref");
    format!("{}{commit}{}", &recipe[..start], &recipe[end..])
}

/// A project directory whose `recipes/` holds the xmake recipe, the repositories it pins, and a loopback server.
struct XmakeProject {
    /// The test's environment.
    env: TestEnv,
    /// The repositories of `recipes/xmake.toml`.
    xmake_git: XmakeGitFixture,
    /// Serves what a test adds to it (the fixture xmake-repo's archives).
    server: hstore_test_support::RunningRegistry,
}

impl XmakeProject {
    fn new() -> Self {
        Self::with(|_, registry| registry)
    }

    /// Like [`XmakeProject::new`], letting `setup` add files to the loopback server before it starts.
    fn with(setup: impl FnOnce(&TestEnv, TestRegistry) -> TestRegistry) -> Self {
        let env = TestEnv::new();
        let xmake_git = XmakeGitFixture::new(env.root());
        let server = setup(&env, TestRegistry::new()).start();
        let project = XmakeProject {
            env,
            xmake_git,
            server,
        };
        std::fs::create_dir_all(project.dir().join("recipes")).expect("create recipes dir");
        std::fs::write(
            project.dir().join("recipes/xmake.toml"),
            &project.xmake_git.recipe,
        )
        .expect("write xmake recipe");
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    /// `hstore ARGS` with xmake's repositories reached through their `--mirror`s (for `lock` and `fetch`).
    fn mirrored(&self, args: &[&str]) -> Output {
        self.hstore(&self.xmake_git.with_mirrors(args))
    }

    /// Runs `hstore ARGS` in the project directory.
    fn hstore(&self, args: &[&str]) -> Output {
        self.env
            .command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(self.dir())
            .args(args)
            .output()
            .expect("run hstore")
    }
}

/// Asserts `output` exited with `code`; returns (stdout, stderr).
#[track_caller]
pub(crate) fn exited(output: &Output, code: i32) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// Runs a built xmake as xmake wants to be run in a test: a private home, allowed as root, no stats upload.
fn xmake_command(xmake: &Path, home: &Path) -> Command {
    let mut command = Command::new(xmake);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("XMAKE_ROOT", "y")
        .env("XMAKE_STATS", "false")
        .env("XMAKE_GLOBALDIR", home)
        .env("NO_COLOR", "1");
    command
}

#[test]
fn xmake_builds_from_source_in_the_sandbox_runs_is_a_cache_hit_and_reproduces() {
    let project = XmakeProject::new();
    exited(&project.mirrored(&["lock"]), 0);
    // The lockfile keeps the canonical URLs; the mirrors only changed where the trees came from.
    let lockfile =
        std::fs::read_to_string(project.dir().join("lockfile.json")).expect("read lockfile");
    for (_, url, _) in XMAKE_GIT_SOURCES {
        assert!(
            lockfile.contains(&format!("git+{url}#")),
            "{url} in:\n{lockfile}"
        );
    }
    assert!(!lockfile.contains("file://"), "{lockfile}");

    let build = ["build", "xmake", "--target", "cpu", "--out-link", "result"];
    let (first, stderr) = exited(&project.hstore(&build), 0);
    assert!(stderr.contains("Built"), "{stderr}");

    let home = project.env.root().join("xmake-home");
    std::fs::create_dir_all(&home).expect("create xmake home");
    let version = xmake_command(&project.dir().join("result/bin/xmake"), &home)
        .arg("--version")
        .output()
        .expect("run result/bin/xmake --version");
    let (stdout, _) = exited(&version, 0);
    // The build date in the version comes from SOURCE_DATE_EPOCH (1980-01-01 in the sandbox), not the clock.
    assert!(stdout.contains("xmake v3.0.0+19800101"), "{stdout}");

    let (second, stderr) = exited(&project.hstore(&build), 0);
    assert!(stderr.contains("Fresh"), "{stderr}");
    assert_eq!(first, second, "a cache hit gives the same output address");

    let (_, stderr) = exited(
        &project.hstore(&["build", "xmake", "--target", "cpu", "--check"]),
        0,
    );
    assert!(stderr.contains("Checked"), "{stderr}");
}

/// The sources of a project built with xmake packages: the pinned xmake (a `recipe` source), the fixture xmake-repo
/// at `repo_url`, the project at `../<project_dir>` and its `xmake_requires` source.
fn xmake_sources(repo_url: &str, project_dir: &str) -> String {
    format!(
        "[sources.xmake]\nrecipe = \"xmake\"\ntarget = \"cpu\"\n\n[sources.repo]\ngit = \"{repo_url}\"\nref = \"main\"\n\n\
         [sources.proj]\npath = \"../{project_dir}\"\n\n[sources.xpkgs]\nxmake_requires = \"proj\"\nrepo = \"repo\"\nxmake = \"xmake\""
    )
}

/// The recipe of the fixture project: the pinned xmake (a `recipe` source), the fixture xmake-repo, the project and
/// its xmake packages; a `cpu` target, and a `cuda` target whose SDK path does not exist here.
fn app_recipe(repo_url: &str) -> String {
    format!(
        r#"[recipe]
name = "app"

{}

[targets.cpu]
xmake_options = ["--mode=release"]

[targets.cuda]
xmake_options = ["--mode=release"]
host_paths = ["/nonexistent/hstore-test/cuda"]

[build]
script = '''
set -eu
cp -R "$src_proj" /build/proj
chmod -R u+w /build/proj
cd /build/proj
xmake f $xmake_options -y
xmake -y
xmake install -o "$out"
'''
"#,
        xmake_sources(repo_url, "proj")
    )
}

/// Writes `files` under `project/<dir>/`.
fn write_dir(project: &XmakeProject, dir: &str, files: &[(&str, String)]) {
    for (name, contents) in files {
        let path = project.dir().join(dir).join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        std::fs::write(&path, contents).expect("write file");
    }
}

/// The lockfile's `xmake_archive` entries as (package, version, url, sha256, file_name, target), sorted.
fn locked_archives(lockfile: &serde_json::Value) -> Vec<[String; 6]> {
    let text =
        |value: &serde_json::Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();
    let mut archives: Vec<[String; 6]> = lockfile["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|artifact| artifact["kind"] == "xmake_archive")
        .map(|artifact| {
            ["package", "version", "url", "sha256", "file_name", "target"]
                .map(|key| text(artifact, key))
        })
        .collect();
    archives.sort();
    archives
}

/// The locked `app.xpkgs` source.
fn xpkgs_source(lockfile: &serde_json::Value) -> serde_json::Value {
    lockfile["recipes"]
        .as_array()
        .expect("recipes")
        .iter()
        .find(|recipe| recipe["name"] == "app")
        .and_then(|recipe| {
            recipe["sources"]
                .as_array()?
                .iter()
                .find(|source| source["name"] == "xpkgs")
                .cloned()
        })
        .expect("app.xpkgs is locked")
}

/// The whole path of an `xmake_requires` source: `hstore lock` builds the pinned xmake, probes the project in the
/// sandbox against the fixture xmake-repo and locks the three archives (the transitive `hdronly` too) and the host
/// package; a second lock is unchanged without probing; fetch → export → import into a fresh store → `fetch
/// --offline` → the build runs with no network and reports where each package came from; the program runs. Then the
/// failures: a target whose SDK was absent at lock, an archive missing from the store, and an archive whose served
/// bytes do not match the sha256 xmake-repo pins.
#[test]
fn xmake_requires_locks_in_the_sandbox_carries_and_builds_offline_from_the_store() {
    let mut made = None;
    let project = XmakeProject::with(|env, mut registry| {
        let fixture = XmakeRepoFixture::new(&env.root().join("xmake-repo"), registry.url());
        for archive in &fixture.archives {
            registry = registry.file(&archive.url_path, &archive.bytes);
        }
        made = Some(fixture);
        registry
    });
    let fixture = made.expect("fixture made");
    write_dir(&project, "proj", &fixture.project);
    std::fs::write(
        project.dir().join("recipes/app.toml"),
        app_recipe(&fixture.repo.file_url()),
    )
    .expect("write app recipe");

    // Lock, one pass: the trees and xmake's repositories first, then the evaluator builds xmake and probes `cpu`.
    let (_, stderr) = exited(&project.mirrored(&["lock"]), 0);
    assert!(
        stderr.contains("xmake packages of `app.xpkgs` for target `cpu`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not probing target `cuda` of `app.xpkgs`")
            && stderr.contains("/nonexistent/hstore-test/cuda"),
        "{stderr}"
    );
    let lockfile_path = project.dir().join("lockfile.json");
    let bytes = std::fs::read(&lockfile_path).expect("read lockfile");
    let lockfile: serde_json::Value = serde_json::from_slice(&bytes).expect("lockfile JSON");
    let mut expected: Vec<[String; 6]> = fixture
        .archives
        .iter()
        .map(|archive| {
            [
                archive.package.to_owned(),
                archive.version.to_owned(),
                format!("{}{}", project.server.url(), archive.url_path),
                archive.sha256.clone(),
                format!("{}-{}.tar.gz", archive.package, archive.version),
                "cpu".to_owned(),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(
        locked_archives(&lockfile),
        expected,
        "the transitive `hdronly` is locked too"
    );
    let source = xpkgs_source(&lockfile);
    assert_eq!(source["xmake"]["targets"], serde_json::json!(["cpu"]));
    assert_eq!(
        source["xmake"]["host_packages"],
        serde_json::json!([{"target": "cpu", "package": "libm", "version": "latest", "origin": "system"}])
    );
    assert_eq!(
        source["spec"],
        serde_json::json!({"kind": "xmake_requires", "project": "proj", "repo": "repo", "xmake": "xmake",
            "targets": {"cpu": ["--mode=release"], "cuda": ["--mode=release"]}})
    );

    // A second lock keeps every pin without probing (or downloading) again: byte-identical.
    let served = project.server.requests().len();
    let (_, stderr) = exited(&project.mirrored(&["lock"]), 0);
    assert!(stderr.contains("Unchanged"), "{stderr}");
    assert!(
        !stderr.contains("xmake packages of"),
        "re-probed:\n{stderr}"
    );
    assert_eq!(std::fs::read(&lockfile_path).expect("read lockfile"), bytes);
    assert_eq!(
        project.server.requests().len(),
        served,
        "a kept lock downloads nothing"
    );

    // A target's options are part of the source's spec: changing them makes `--locked` fail, naming the source.
    let recipe_path = project.dir().join("recipes/app.toml");
    let recipe = std::fs::read_to_string(&recipe_path).expect("read app recipe");
    std::fs::write(
        &recipe_path,
        recipe.replacen("[\"--mode=release\"]", "[\"--mode=debug\"]", 1),
    )
    .expect("write app recipe");
    let (_, stderr) = exited(&project.mirrored(&["lock", "--locked"]), 1);
    assert!(stderr.contains("source app.xpkgs"), "{stderr}");
    assert_eq!(std::fs::read(&lockfile_path).expect("read lockfile"), bytes);
    std::fs::write(&recipe_path, recipe).expect("restore app recipe");

    exited(&project.mirrored(&["fetch"]), 0);
    exited(&project.hstore(&["export", "-o", "stack.hsb"]), 0);

    // The air-gapped side: a fresh store, only the bundle; every build runs in the sandbox with no network and an
    // empty HOME.
    let cluster = TestEnv::new();
    let on_cluster = |args: &[&str]| {
        cluster
            .command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(project.dir())
            .args(args)
            .output()
            .expect("run hstore on the cluster store")
    };
    exited(&on_cluster(&["import", "stack.hsb"]), 0);
    exited(&on_cluster(&["fetch", "--offline"]), 0);
    // The imported store holds the archives but no download records: an offline `--locked` lock there keeps every
    // pin from the store alone.
    let (_, stderr) = exited(&on_cluster(&["lock", "--offline", "--locked"]), 0);
    assert!(stderr.contains("Unchanged"), "{stderr}");
    let (_, stderr) = exited(
        &on_cluster(&["build", "app", "--target", "cpu", "--out-link", "app-out"]),
        0,
    );
    assert!(stderr.contains("Built"), "{stderr}");
    assert_eq!(
        project.server.requests().len(),
        served,
        "only `hstore lock` downloads; no fetch, import or build does"
    );
    let ran = Command::new(project.dir().join("app-out/bin/app"))
        .output()
        .expect("run app-out/bin/app");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), PROJECT_OUTPUT);
    let (log, _) = exited(&on_cluster(&["log", "app", "--target", "cpu"]), 0);
    for line in [
        "hstore: xmake package fancy 0.3.0 from the store (fancy-0.3.0.tar.gz)",
        "hstore: xmake package greet 2.1.0 from the store (greet-2.1.0.tar.gz)",
        "hstore: xmake package hdronly 1.0.0 from the store (hdronly-1.0.0.tar.gz)",
        "hstore: xmake package libm latest from the host system (system)",
        "install greet 2.1.0",
    ] {
        assert!(log.contains(line), "`{line}` not in the build log:\n{log}");
    }

    // `cuda` was not probed (its SDK path is absent): its build fails before anything runs, saying why.
    let (_, stderr) = exited(&on_cluster(&["build", "app", "--target", "cuda"]), 2);
    assert!(
        stderr.contains(
            "xmake packages of source `xpkgs` of `app` were not locked for target `cuda`"
        ) && stderr.contains("hint:"),
        "{stderr}"
    );

    // An archive gone from the store: the build fails before it starts, naming the package, version and the file
    // names xmake accepts (even though the output is recorded: inputs are checked first).
    let greet = lockfile["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|artifact| artifact["kind"] == "xmake_archive" && artifact["package"] == "greet")
        .expect("greet is locked");
    let hex = greet["address"]
        .as_str()
        .expect("address")
        .trim_start_matches("b3:")
        .to_owned();
    // Damaged, then dropped by repair (it may be packed with other objects, so it has no file of its own).
    let copies = hstore_store::Store::open(cluster.store())
        .expect("open the cluster store")
        .object_copies()
        .expect("list objects");
    let copy = copies
        .iter()
        .find(|copy| copy.digest.to_hex() == hex)
        .expect("greet's archive blob is in the cluster store");
    crate::store_common::flip_stored_byte(&copy.location);
    exited(&on_cluster(&["store", "verify", "--repair"]), 1);
    let (_, stderr) = exited(&on_cluster(&["build", "app", "--target", "cpu"]), 2);
    assert!(
        stderr.contains("xmake package `greet` 2.1.0 (input `xpkgs` of `app`) is not in the store")
            && stderr.contains("`greet-2.1.0.tar.gz`")
            && stderr.contains("hint: run `hstore fetch`"),
        "{stderr}"
    );

    // xmake-repo now pins greet to a sha256 the served bytes do not have: the new commit is probed and the download
    // refused, naming the URL and both hashes; the lockfile is left as it was.
    let wrong = "ab".repeat(32);
    let definition =
        std::fs::read_to_string(fixture.repo.path().join("packages/g/greet/xmake.lua"))
            .expect("read greet's definition");
    fixture.repo.write(
        "packages/g/greet/xmake.lua",
        definition.replace(&fixture.archives[1].sha256, &wrong),
    );
    fixture
        .repo
        .commit("greet: a sha256 its archive does not have");
    let (_, stderr) = exited(&project.mirrored(&["lock", "--update"]), 2);
    assert!(
        stderr.contains(&fixture.archives[1].url_path) && stderr.contains(&wrong),
        "{stderr}"
    );
    assert!(
        stderr.contains(&fixture.archives[1].sha256),
        "the computed hash is shown:\n{stderr}"
    );
    assert_eq!(std::fs::read(&lockfile_path).expect("read lockfile"), bytes);
}

/// A Debian-packaged upstream wheel (`/usr/share/python-wheels/`, from `python3-setuptools-whl` and
/// `python3-wheel-whl`, which `.ci/run` installs): (file name, bytes). Panics naming the package when it is missing.
fn debian_wheel(prefix: &str, package: &str) -> (String, Vec<u8>) {
    let dir = Path::new("/usr/share/python-wheels");
    let found = std::fs::read_dir(dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| {
            name.starts_with(prefix) && Path::new(name).extension().is_some_and(|ext| ext == "whl")
        });
    let Some(name) = found else {
        panic!(
            "no `{prefix}*.whl` in `{}`: install `{package}` (as .ci/run does)",
            dir.display()
        );
    };
    let bytes = std::fs::read(dir.join(&name)).expect("read the wheel");
    (name, bytes)
}

/// The InfiniCore-shaped pair, built as a chain: `core`, a C++ shared library built with the pinned xmake and an
/// xmake package from the store (`fancy`, which pulls in `hdronly`), and `ext`, a Python extension module that links
/// `core`'s output (a `recipe` source) and is installed by pip with `--no-build-isolation` from a wheelhouse holding
/// the real setuptools and wheel wheels, served by a loopback PEP 691 index and locked by a `requirements` source.
/// `hstore build ext` builds xmake, core and ext in order, in the sandbox; the installed module imports and calls
/// into the library.
#[test]
fn an_xmake_library_and_a_python_extension_linking_it_build_as_a_chain() {
    let mut made = None;
    let project = XmakeProject::with(|env, mut registry| {
        let fixture = XmakeRepoFixture::new(&env.root().join("xmake-repo"), registry.url());
        for archive in &fixture.archives {
            registry = registry.file(&archive.url_path, &archive.bytes);
        }
        made = Some(fixture);
        registry
    });
    let fixture = made.expect("fixture made");
    let index = hstore_test_support::TestIndex::start();
    for (prefix, package, project_name) in [
        ("setuptools-", "python3-setuptools-whl", "setuptools"),
        ("wheel-", "python3-wheel-whl", "wheel"),
    ] {
        let (name, bytes) = debian_wheel(prefix, package);
        index.wheel_file(project_name, &name, &bytes);
    }
    write_dir(
        &project,
        "core",
        &[
            (
                "xmake.lua",
                "add_requires(\"fancy\")\ntarget(\"core\")\n    set_kind(\"shared\")\n    add_files(\"core.cpp\")\n    \
                 add_headerfiles(\"core.h\")\n    add_packages(\"fancy\")\n"
                    .to_owned(),
            ),
            ("core.h", "#pragma once\nint core_answer();\n".to_owned()),
            (
                "core.cpp",
                "#include <fancy.h>\n#include \"core.h\"\nint core_answer() { return fancy_answer(); }\n".to_owned(),
            ),
        ],
    );
    write_dir(
        &project,
        "ext",
        &[
            (
                "setup.py",
                "import os\nfrom setuptools import Extension, setup\ncore = os.environ[\"CORE\"]\n\
                 setup(name=\"ext\", version=\"1.0\", ext_modules=[Extension(\"ext\", [\"ext.cpp\"], \
                 include_dirs=[core + \"/include\"], library_dirs=[core + \"/lib\"], libraries=[\"core\"], \
                 extra_link_args=[\"-Wl,-rpath,$ORIGIN/../lib\"])])\n"
                    .to_owned(),
            ),
            (
                "ext.cpp",
                "#include <Python.h>\n#include <core.h>\n\
                 static PyObject *answer(PyObject *, PyObject *) { return PyLong_FromLong(core_answer()); }\n\
                 static PyMethodDef methods[] = {{\"answer\", answer, METH_NOARGS, \"core's answer\"}, \
                 {nullptr, nullptr, 0, nullptr}};\n\
                 static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, \"ext\", nullptr, -1, methods};\n\
                 PyMODINIT_FUNC PyInit_ext(void) { return PyModule_Create(&module); }\n"
                    .to_owned(),
            ),
        ],
    );
    std::fs::write(
        project.dir().join("recipes/core.toml"),
        format!(
            r#"[recipe]
name = "core"

{}

[targets.cpu]
xmake_options = ["--mode=release"]

[build]
script = '''
set -eu
cp -R "$src_proj" /build/core
chmod -R u+w /build/core
cd /build/core
xmake f $xmake_options -y
xmake -y
xmake install -o "$out"
'''
"#,
            xmake_sources(&fixture.repo.file_url(), "core")
        ),
    )
    .expect("write core recipe");
    std::fs::write(
        project.dir().join("recipes/ext.toml"),
        format!(
            r#"[recipe]
name = "ext"

[sources.core]
recipe = "core"

[sources.src]
path = "../ext"

[sources.pydeps]
requirements = ["setuptools", "wheel"]
index = "{}"

[targets.cpu]
python = {{ version = "3.11", platform = "manylinux_2_28_x86_64" }}

[build]
script = '''
set -eu
python3 -m pip install --no-cache-dir --no-index --find-links "$src_pydeps" --require-hashes \
    -r "$src_pydeps/requirements.txt" --target /build/tools
export PYTHONPATH=/build/tools
python3 -c 'import setuptools; print(setuptools.__file__)' > "$out/setuptools-from"
cp -R "$src_src" /build/ext
chmod -R u+w /build/ext
cd /build/ext
CORE="$src_core" python3 -m pip install --no-cache-dir --no-index --no-build-isolation --no-deps \
    --target "$out/site" .
mkdir -p "$out/lib"
cp "$src_core"/lib/libcore.so "$out/lib/"
'''
"#,
            index.index_url()
        ),
    )
    .expect("write ext recipe");
    let hstore = |args: &[&str]| {
        project
            .env
            .command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(project.dir())
            .env("NO_PROXY", "*")
            .env("HSTORE_UV", crate::wheels::uv_program())
            .args(args)
            .output()
            .expect("run hstore")
    };
    exited(&hstore(&project.xmake_git.with_mirrors(&["lock"])), 0);
    let (_, stderr) = exited(
        &hstore(&["build", "ext", "--target", "cpu", "--out-link", "ext-out"]),
        0,
    );
    for built in ["Built", "core for target cpu", "ext for target cpu"] {
        assert!(stderr.contains(built), "`{built}` not in:\n{stderr}");
    }
    let out = project.dir().join("ext-out");
    let from = std::fs::read_to_string(out.join("setuptools-from")).expect("setuptools-from");
    assert!(
        from.starts_with("/build/tools/"),
        "setuptools came from {from}"
    );
    let ran = Command::new("/usr/bin/python3")
        .env_clear()
        .env("PYTHONPATH", out.join("site"))
        .args(["-c", "import ext; print(ext.answer())"])
        .output()
        .expect("run python3");
    let (stdout, _) = exited(&ran, 0);
    assert_eq!(
        stdout, "43\n",
        "ext calls core, which calls the xmake package `fancy`"
    );
}
