//! xmake end to end: `recipes/xmake.toml` builds xmake from source in the sandbox, from the fixture tarball
//! (`../shared/fixtures/xmake-3.0.0-src.tar.gz`, beside the repository in CI) served by a loopback server as a `url`
//! source reached through `--mirror`; the built xmake runs, a second build is a cache hit, and `--check` reproduces it.
//!
//! The fixture is made from the same upstream sources as the release tarball but is not byte-identical to it (see
//! its README), so the test swaps the recipe's sha256 for the fixture's and keeps everything else of the real recipe.
//! A missing fixture fails the test: it is never skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_fetchers::xmake::{
    HostPackage, Origin, PROBE_SCRIPT, Phase2, ProbeReport, global_conf, lock_entries,
};
use hstore_test_support::{
    Fault, PROJECT_OUTPUT, TestEnv, TestRegistry, XmakeRepoFixture, sha256_hex,
};

/// The fixture tarball's sha256 (its README).
const FIXTURE_SHA256: &str = "e8f5e55bfef235c00de20a4f24c5c852913daf34a7a0d5c3639d8ff2d56d2192";
/// The upstream release tarball's sha256, as `recipes/xmake.toml` pins it.
const UPSTREAM_SHA256: &str = "e749c2a902a1b88e6e3b73b78962a6417c9a04f91ce3c6e174a252598f10eb28";
/// Where `recipes/xmake.toml` downloads from; the tests mirror this prefix to the loopback server.
const UPSTREAM_PREFIX: &str = "https://github.com/xmake-io/xmake/releases/download/";

/// The repository root (this package's manifest directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of `../shared/fixtures/`; panics naming the path if it is missing (CI places `shared/` beside the clone).
fn fixture(name: &str) -> PathBuf {
    let path = repo_root().join("../shared/fixtures").join(name);
    assert!(
        path.is_file(),
        "test fixture `{}` is missing: the tests expect `shared/fixtures/` beside the repository checkout",
        path.display()
    );
    path
}

/// `recipes/xmake.toml` as committed, pinned to the fixture's sha256 instead of the upstream tarball's.
fn xmake_recipe_for_fixture() -> String {
    let recipe = std::fs::read_to_string(repo_root().join("recipes/xmake.toml"))
        .expect("read recipes/xmake.toml");
    assert!(
        recipe.contains(UPSTREAM_SHA256) && recipe.contains(UPSTREAM_PREFIX),
        "recipes/xmake.toml no longer pins the upstream v3.0.0 tarball:\n{recipe}"
    );
    recipe.replace(UPSTREAM_SHA256, FIXTURE_SHA256)
}

/// A served fixture tarball and a project directory whose `recipes/` holds the xmake recipe.
struct XmakeProject {
    /// The test's environment.
    env: TestEnv,
    /// Serves the fixture tarball.
    server: hstore_test_support::RunningRegistry,
}

impl XmakeProject {
    fn new() -> Self {
        Self::with(|_, registry| registry)
    }

    /// Like [`XmakeProject::new`], letting `setup` add files to the loopback server before it starts.
    fn with(setup: impl FnOnce(&TestEnv, TestRegistry) -> TestRegistry) -> Self {
        let tarball = std::fs::read(fixture("xmake-3.0.0-src.tar.gz")).expect("read fixture");
        assert_eq!(
            sha256_hex(&tarball),
            FIXTURE_SHA256,
            "fixture tarball changed"
        );
        let env = TestEnv::new();
        let registry = TestRegistry::new().file("/xmake/v3.0.0/xmake-v3.0.0.tar.gz", tarball);
        let server = setup(&env, registry).start();
        let project = XmakeProject { env, server };
        std::fs::create_dir_all(project.dir().join("recipes")).expect("create recipes dir");
        std::fs::write(
            project.dir().join("recipes/xmake.toml"),
            xmake_recipe_for_fixture(),
        )
        .expect("write xmake recipe");
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    /// `--mirror` sending the recipe's upstream URL to the loopback server.
    fn mirror(&self) -> String {
        format!("{UPSTREAM_PREFIX}={}/xmake/", self.server.url())
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
fn exited(output: &Output, code: i32) -> (String, String) {
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
    let mirror = project.mirror();
    exited(&project.hstore(&["lock", "--mirror", &mirror]), 0);
    // The lockfile keeps the canonical URL and the recipe's pin; the mirror only changed where the bytes came from.
    let lockfile =
        std::fs::read_to_string(project.dir().join("lockfile.json")).expect("read lockfile");
    assert!(
        lockfile.contains(&format!("{UPSTREAM_PREFIX}v3.0.0/xmake-v3.0.0.tar.gz")),
        "{lockfile}"
    );
    assert!(lockfile.contains(FIXTURE_SHA256), "{lockfile}");
    assert!(!lockfile.contains("127.0.0.1"), "{lockfile}");
    let served = project.server.requests().len();

    let build = ["build", "xmake", "--target", "cpu", "--out-link", "result"];
    let (first, stderr) = exited(&project.hstore(&build), 0);
    assert!(stderr.contains("Built"), "{stderr}");
    assert_eq!(
        project.server.requests().len(),
        served,
        "the build must not download"
    );

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

/// Builds xmake from the fixture with `recipes/xmake.toml` and serves its output as a tarball, which the other
/// recipes of these tests read as an unpacked `url` source: the stand-in for a `recipe = "xmake"` source until the
/// xmake-packages kind is wired into lock and build. Returns the recipe table of that source.
fn build_xmake_tool(project: &XmakeProject) -> String {
    let mirror = project.mirror();
    exited(&project.hstore(&["lock", "--mirror", &mirror]), 0);
    exited(
        &project.hstore(&[
            "build",
            "xmake",
            "--target",
            "cpu",
            "--out-link",
            "xmake-out",
        ]),
        0,
    );
    let tarball = project.server.root().join("tools/xmake-tool.tar.gz");
    std::fs::create_dir_all(tarball.parent().expect("parent")).expect("create tools dir");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(project.dir().join("xmake-out/"))
        .arg("-czf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(packed.success(), "tar the built xmake");
    let sha256 = sha256_hex(&std::fs::read(&tarball).expect("read xmake tarball"));
    format!(
        "[sources.xmake]\nurl = \"{}/tools/xmake-tool.tar.gz\"\nsha256 = \"{sha256}\"\nunpack = true\n\n",
        project.server.url()
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

/// A recipe script in the phase-2 shape of an xmake build ([`Phase2`]): the pinned xmake on `PATH`, the locked
/// xmake-repo as `XMAKE_MAIN_REPO`, a writable global dir whose `xmake.conf` cuts xmake's network and points
/// `pkg_searchdirs` at `/build/archives` (which `links` fills from the stored archives), then `body` in a writable
/// copy of the project.
fn phase2_script(links: &str, body: &str) -> String {
    let phase2 = Phase2 {
        repo: "${src_repo}".into(),
        archives: "/build/archives".into(),
        scratch: "/build".into(),
        xmake_bin: "${src_xmake}/bin".into(),
    };
    let mut script = String::from("set -eu\n");
    for (key, value) in phase2.env() {
        writeln!(script, "export {key}=\"{value}\"").expect("write to String");
    }
    write!(
        script,
        "mkdir -p \"$XMAKE_GLOBALDIR/.xmake\" \"$XMAKE_PKG_INSTALLDIR\" \"$XMAKE_PKG_CACHEDIR\" \"$XMAKE_TMPDIR\" \
         /build/archives\ncat > \"$XMAKE_GLOBALDIR/.xmake/xmake.conf\" <<'CONF'\n{}CONF\n{links}\
         cp -R \"$src_proj\" /build/proj\nchmod -R u+w /build/proj\ncd /build/proj\n{body}\n",
        global_conf("/build/archives")
    ).expect("write to String");
    script
}

/// The sources every xmake-package recipe of these tests reads: the built xmake (`xmake_source`), the fixture
/// xmake-repo, the project.
fn common_sources(xmake_source: &str, repo_url: &str) -> String {
    format!(
        "{xmake_source}[sources.repo]\ngit = \"{repo_url}\"\nref = \"main\"\n\n[sources.proj]\npath = \"../proj\"\n"
    )
}

/// The fixture xmake-repo's packages, evaluated by the pinned xmake in the sandbox with the network cut (the probe
/// an xmake-packages source runs at lock), locked to the archives the repo pins; the archives stored as `url`
/// sources, a bundle carried to a fresh store, and the C++ project built there in the phase-2 shape: the program
/// runs, the host package is reported as such, and no build downloaded anything.
#[test]
fn xmake_packages_are_probed_locked_carried_and_built_offline_from_the_store() {
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
    let xmake_source = build_xmake_tool(&project);
    let mirror = project.mirror();
    write_dir(&project, "proj", &fixture.project);
    write_dir(&project, "probe", &[("probe.lua", PROBE_SCRIPT.to_owned())]);
    let sources = common_sources(&xmake_source, &fixture.repo.file_url());

    // Lock: the pinned xmake evaluates the project against the pinned repo, in the sandbox, with no archive present.
    let probe = phase2_script(
        "",
        "xmake f --require=n -y\nxmake lua \"$src_probe/probe.lua\" \"$out/report.json\"",
    );
    std::fs::write(
        project.dir().join("recipes/xmake-probe.toml"),
        format!(
            "[recipe]\nname = \"xmake-probe\"\n\n{sources}\n[sources.probe]\npath = \"../probe\"\n\n\
             [targets.cpu]\n\n[build]\nscript = '''\n{probe}'''\n"
        ),
    )
    .expect("write probe recipe");
    exited(&project.hstore(&["lock", "--mirror", &mirror]), 0);
    let served = project.server.requests().len();
    exited(
        &project.hstore(&[
            "build",
            "xmake-probe",
            "--target",
            "cpu",
            "--out-link",
            "probe-out",
        ]),
        0,
    );
    let report = ProbeReport::load(&project.dir().join("probe-out/report.json")).expect("report");
    let locked = lock_entries(&report, "cpu").expect("lock entries");
    let mut expected: Vec<_> = fixture
        .archives
        .iter()
        .map(|archive| {
            (
                archive.package.to_owned(),
                archive.version.to_owned(),
                format!("{}{}", project.server.url(), archive.url_path),
                archive.sha256.clone(),
                format!("{}-{}.tar.gz", archive.package, archive.version),
            )
        })
        .collect();
    expected.sort();
    let got: Vec<_> = locked
        .archives
        .iter()
        .map(|archive| {
            (
                archive.package.clone(),
                archive.version.clone(),
                archive.url.clone(),
                archive.sha256.clone(),
                archive.file_name.clone(),
            )
        })
        .collect();
    assert_eq!(got, expected, "the transitive `hdronly` is locked too");
    assert_eq!(
        locked.host_packages,
        [HostPackage {
            package: "libm".into(),
            version: "latest".into(),
            target: "cpu".into(),
            origin: Origin::System,
        }]
    );

    // The archives are stored as `url` blobs pinned to the sha256 the repo declares; the build links them under the
    // file names xmake looks for.
    let mut archive_sources = String::new();
    let mut links = String::new();
    for archive in &locked.archives {
        let name = format!("pkg-{}", archive.package);
        write!(
            archive_sources,
            "[sources.{name}]\nurl = \"{}\"\nsha256 = \"{}\"\n\n",
            archive.url, archive.sha256
        )
        .expect("write to String");
        write!(
            links,
            "ln -s \"$src_{}_file\" \"/build/archives/{}\"\necho \"xmake package {} {} from the store\"\n",
            name.replace('-', "_"),
            archive.file_name,
            archive.package,
            archive.version
        ).expect("write to String");
    }
    for host in &locked.host_packages {
        writeln!(
            links,
            "echo \"xmake package {} {} from the host system\"",
            host.package, host.version
        )
        .expect("write to String");
    }
    let build = phase2_script(&links, "xmake f -y\nxmake -y\nxmake install -o \"$out\"");
    std::fs::write(
        project.dir().join("recipes/app.toml"),
        format!(
            "[recipe]\nname = \"app\"\n\n{sources}\n{archive_sources}[targets.cpu]\n\n[build]\nscript = '''\n{build}'''\n"
        ),
    )
    .expect("write app recipe");
    exited(&project.hstore(&["lock", "--mirror", &mirror]), 0);
    exited(&project.hstore(&["fetch", "--mirror", &mirror]), 0);
    exited(&project.hstore(&["export", "-o", "stack.hsb"]), 0);

    // The air-gapped side: a fresh store, only the bundle.
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
    let (_, stderr) = exited(
        &on_cluster(&["build", "app", "--target", "cpu", "--out-link", "app-out"]),
        0,
    );
    assert!(stderr.contains("Built"), "{stderr}");
    let archive_requests = project
        .server
        .requests()
        .iter()
        .skip(served)
        .filter(|request| request.path.starts_with("/xmake-archives/"))
        .count();
    assert_eq!(
        archive_requests, 3,
        "only `hstore lock` downloads the three archives, once each; no fetch or build does"
    );
    let ran = Command::new(project.dir().join("app-out/bin/app"))
        .output()
        .expect("run app-out/bin/app");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), PROJECT_OUTPUT);
    let (log, _) = exited(&on_cluster(&["log", "app", "--target", "cpu"]), 0);
    for line in [
        "xmake package greet 2.1.0 from the store",
        "xmake package hdronly 1.0.0 from the store",
        "xmake package libm latest from the host system",
        "install greet 2.1.0",
    ] {
        assert!(log.contains(line), "`{line}` not in the build log:\n{log}");
    }
}

/// An archive whose bytes do not match the sha256 the xmake-repo pins is refused at lock, naming it.
#[test]
fn a_tampered_xmake_archive_is_refused_naming_its_url_and_hash() {
    let env = TestEnv::new();
    let mut registry = TestRegistry::new();
    let fixture = XmakeRepoFixture::new(&env.root().join("xmake-repo"), registry.url());
    for archive in &fixture.archives {
        registry = registry.file(&archive.url_path, &archive.bytes);
    }
    let greet = fixture.archives[1].clone();
    let server = registry
        .fault(&greet.url_path, Fault::WrongBytes, 10)
        .start();
    let recipes = env.root().join("recipes");
    std::fs::create_dir_all(&recipes).expect("create recipes");
    std::fs::write(
        recipes.join("pkgs.toml"),
        format!(
            "[recipe]\nname = \"pkgs\"\n\n[sources.pkg-greet]\nurl = \"{}{}\"\nsha256 = \"{}\"\n",
            server.url(),
            greet.url_path,
            greet.sha256
        ),
    )
    .expect("write recipe");
    let output = env
        .command(env!("CARGO_BIN_EXE_hstore"))
        .args(["lock"])
        .output()
        .expect("run hstore lock");
    let (_, stderr) = exited(&output, 2);
    assert!(stderr.contains(&greet.url_path), "{stderr}");
    assert!(stderr.contains(&greet.sha256), "{stderr}");
}
