//! `requirements` sources end to end: the real `hstore` and a pinned `uv` against a loopback PEP 691 index
//! ([`TestIndex`]) serving real wheels for several tags; real `pip` installing the locked set in the sandbox.
//!
//! The fixture index has a dependency chain that needs backtracking (`top` → `mid`, newest `mid` wants a `leaf`
//! that `top` forbids), platform wheels for cp310/cp311 × manylinux_2_17/2_28 × x86_64/aarch64, an abi3 wheel, a
//! version only Python ≥ 3.11 may use, a yanked file and an sdist-only package. `uv` must be installed (`.ci/run`
//! installs the pinned 0.13.9); these tests fail, not skip, without it.

use std::path::PathBuf;
use std::process::{Command, Output};

use hstore_fetchers::requirements::format_utc;
use hstore_test_support::{TestEnv, TestIndex, WheelSpec};
use serde_json::Value;

use crate::common::{fails, ok};

const CPU: &str = "cp311-manylinux_2_28_x86_64";
const METAX: &str = "cp310-manylinux_2_28_aarch64";

/// The real `uv` executable (a pyenv shim is resolved, because tests move `HOME`).
pub(crate) fn uv_program() -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", "command -v uv"])
        .output()
        .expect("run sh");
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "uv is not installed: the requirements tests need it (`pip install uv==0.13.9`, as .ci/run does)"
    );
    if path.contains("/shims/") {
        let real = Command::new("pyenv")
            .args(["which", "uv"])
            .output()
            .expect("run pyenv which uv");
        return PathBuf::from(String::from_utf8_lossy(&real.stdout).trim());
    }
    PathBuf::from(path)
}

/// Publishes the fixture projects.
fn fixture_index() -> TestIndex {
    let index = TestIndex::start();
    let any = "py3-none-any";
    index.wheel(&WheelSpec::new("top", "1.0", any).requires(&["mid>=1.0", "leaf<2"]));
    index.wheel(&WheelSpec::new("mid", "1.5", any).requires(&["leaf>=1,<2"]));
    index.wheel(&WheelSpec::new("mid", "2.0", any).requires(&["leaf>=2"]));
    index.wheel(&WheelSpec::new("leaf", "1.0", any));
    index.wheel(&WheelSpec::new("leaf", "2.0", any));
    for tags in [
        "cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp310-cp310-manylinux_2_28_aarch64",
        "cp310-cp310-manylinux_2_34_aarch64",
        "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    ] {
        index.wheel(&WheelSpec::new("native", "1.0", tags));
    }
    for tags in [
        "cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp38-abi3-manylinux_2_28_aarch64",
    ] {
        index.wheel(&WheelSpec::new("stable", "3.0", tags));
    }
    index.wheel(&WheelSpec::new("modern", "1.0", any));
    let mut newer = WheelSpec::new("modern", "2.0", any);
    newer.requires_python = Some(">=3.11".into());
    index.wheel(&newer);
    index.wheel(&WheelSpec::new("yanky", "1.0", any));
    index.wheel(&WheelSpec::new("yanky", "1.1", any).yanked());
    index.sdist("sdistonly", "1.0");
    index
}

/// A project directory with one recipe `pyapp` whose `py` source is `requirements` (TOML array text).
struct Project {
    env: TestEnv,
    uv: PathBuf,
}

impl Project {
    fn new(index: &TestIndex, requirements: &str, extra: &str) -> Self {
        let project = Project {
            env: TestEnv::new(),
            uv: uv_program(),
        };
        project.recipe(index, requirements, extra);
        project
    }

    fn recipe(&self, index: &TestIndex, requirements: &str, extra: &str) {
        let dir = self.env.root().join("recipes");
        std::fs::create_dir_all(&dir).expect("recipes dir");
        std::fs::write(
            dir.join("pyapp.toml"),
            format!(
                "[recipe]\nname = \"pyapp\"\n\n[sources.py]\nrequirements = {requirements}\nindex = \"{}\"\n{extra}\n\
                 [targets.cpu]\npython = {{ version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }}\n\
                 env = {{ MODE = \"native\" }}\n\n\
                 [targets.metax]\npython = {{ version = \"3.10\", platform = \"manylinux_2_28_aarch64\" }}\n\
                 env = {{ MODE = \"cross\" }}\n",
                index.index_url()
            ),
        )
        .expect("write recipe");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command
            .args(args)
            .env("NO_PROXY", "*")
            .env("HSTORE_UV", &self.uv);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run hstore")
    }

    fn lockfile_bytes(&self) -> Vec<u8> {
        std::fs::read(self.env.root().join("lockfile.json")).expect("lockfile.json")
    }

    fn lockfile(&self) -> Value {
        serde_json::from_slice(&self.lockfile_bytes()).expect("lockfile JSON")
    }

    /// `(name, version, filename)` of the wheels locked for `target`, sorted.
    fn wheels(&self, target: &str) -> Vec<(String, String, String)> {
        let lock = self.lockfile();
        let mut wheels: Vec<(String, String, String)> = lock["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .filter(|a| a["kind"] == "wheel" && a["target"] == target)
            .map(|a| {
                (
                    a["name"].as_str().expect("name").to_owned(),
                    a["version"].as_str().expect("version").to_owned(),
                    a["filename"].as_str().expect("filename").to_owned(),
                )
            })
            .collect();
        wheels.sort();
        wheels
    }

    fn version_of(&self, target: &str, name: &str) -> String {
        self.wheels(target)
            .into_iter()
            .find(|(wheel, _, _)| wheel == name)
            .unwrap_or_else(|| panic!("no `{name}` wheel for {target}"))
            .1
    }

    fn snapshot(&self) -> String {
        self.lockfile()["recipes"][0]["sources"][0]["resolution"]["exclude_newer"]
            .as_str()
            .expect("a recorded snapshot")
            .to_owned()
    }
}

const ALL: &str = r#"["top", "native", "stable", "yanky", "modern"]"#;

#[test]
fn two_targets_lock_to_different_wheel_sets_chosen_by_tag_priority() {
    let index = fixture_index();
    let project = Project::new(&index, ALL, "");
    ok(&project.run(&["lock"]));
    let file = |target: &str, name: &str| {
        project
            .wheels(target)
            .into_iter()
            .find(|(wheel, _, _)| wheel == name)
            .unwrap_or_else(|| panic!("no `{name}` wheel for {target}"))
            .2
    };
    // Backtracking: the newest `mid` needs `leaf>=2`, which `top` forbids.
    for target in [CPU, METAX] {
        assert_eq!(project.version_of(target, "mid"), "1.5");
        assert_eq!(project.version_of(target, "leaf"), "1.0");
        // The yanked 1.1 is skipped.
        assert_eq!(project.version_of(target, "yanky"), "1.0");
    }
    // The best tag for each target: manylinux_2_28 beats 2_17 on aarch64; 2_34 is too new for glibc 2.28.
    assert_eq!(
        file(METAX, "native"),
        "native-1.0-cp310-cp310-manylinux_2_28_aarch64.whl"
    );
    assert_eq!(
        file(CPU, "native"),
        "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    assert_eq!(
        file(CPU, "stable"),
        "stable-3.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    assert_eq!(
        file(METAX, "stable"),
        "stable-3.0-cp38-abi3-manylinux_2_28_aarch64.whl"
    );
    // `modern` 2.0 requires Python >= 3.11.
    assert_eq!(project.version_of(CPU, "modern"), "2.0");
    assert_eq!(project.version_of(METAX, "modern"), "1.0");
    assert_eq!(project.wheels(CPU).len(), 7);
    assert_eq!(project.wheels(METAX).len(), 7);

    // Each entry carries what the issue asks for, with the index's sha256 and the files host's URL.
    let lock = project.lockfile();
    let entry = lock["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["filename"] == "native-1.0-cp310-cp310-manylinux_2_28_aarch64.whl")
        .expect("the aarch64 wheel")
        .clone();
    let published = index.wheel(&WheelSpec::new(
        "native",
        "1.0",
        "cp310-cp310-manylinux_2_28_aarch64",
    ));
    assert_eq!(entry["sha256"], published.sha256.as_str());
    assert_eq!(entry["url"], published.url.as_str());
    assert_eq!(entry["size"], published.size);
    assert_eq!(entry["tags"], "cp310-cp310-manylinux_2_28_aarch64");
    assert!(
        entry["address"]
            .as_str()
            .expect("address")
            .starts_with("b3:")
    );
    let resolution = &lock["recipes"][0]["sources"][0]["resolution"];
    assert!(
        resolution["resolver"]
            .as_str()
            .expect("resolver")
            .starts_with("uv 0."),
        "{resolution}"
    );

    // Re-lock: byte-identical, and no request reaches the index.
    let first = project.lockfile_bytes();
    let requests = index.requests().len();
    ok(&project.run(&["lock"]));
    assert_eq!(project.lockfile_bytes(), first);
    assert_eq!(
        index.requests().len(),
        requests,
        "a warm re-lock went to the index"
    );

    // Same inputs (a fixed snapshot) in another checkout and store: the same bytes.
    let snapshot = project.snapshot();
    let fixed = format!("exclude_newer = \"{snapshot}\"\n");
    let one = Project::new(&index, ALL, &fixed);
    let two = Project::new(&index, ALL, &fixed);
    ok(&one.run(&["lock"]));
    ok(&two.run(&["lock"]));
    assert_eq!(one.lockfile_bytes(), two.lockfile_bytes());
}

#[test]
fn an_upload_after_the_snapshot_is_invisible_until_update() {
    let index = fixture_index();
    let project = Project::new(&index, r#"["leaf"]"#, "");
    ok(&project.run(&["lock"]));
    assert_eq!(project.version_of(CPU, "leaf"), "2.0");
    let snapshot = project.snapshot();
    // Uploaded "later" (the index's clock is the test's), and hstore's clock moved past it for the locks below, so
    // nothing sleeps: only `--update` takes a new snapshot, which then covers the upload.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 5;
    index.wheel(&WheelSpec::new("leaf", "2.1", "py3-none-any").uploaded(&format_utc(later)));
    assert!(format_utc(later) > snapshot);
    project.env.advance_clock(10);

    // Unchanged recipe: nothing changes.
    let before = project.lockfile_bytes();
    ok(&project.run(&["lock"]));
    assert_eq!(project.lockfile_bytes(), before);
    // A changed recipe re-resolves, but against the recorded snapshot: still 2.0.
    project.recipe(&index, r#"["leaf", "yanky"]"#, "");
    ok(&project.run(&["lock"]));
    assert_eq!(project.version_of(CPU, "leaf"), "2.0");
    assert_eq!(project.snapshot(), snapshot);
    // `--update` moves the snapshot and takes the new upload.
    ok(&project.run(&["lock", "--update"]));
    assert_eq!(project.version_of(CPU, "leaf"), "2.1");
    assert_eq!(project.version_of(METAX, "leaf"), "2.1");
    assert!(project.snapshot() > snapshot);
}

#[test]
fn a_tampered_wheel_is_named_with_both_sha256_values_and_nothing_is_stored() {
    let index = fixture_index();
    let project = Project::new(&index, r#"["leaf==1.0"]"#, "");
    ok(&project.run(&["lock"]));
    let address = project.lockfile()["artifacts"][0]["address"]
        .as_str()
        .expect("address")
        .to_owned();
    // The mirror now serves other bytes for the same file; a fresh store fetches the lockfile.
    let good = index.wheel(&WheelSpec::new("leaf", "1.0", "py3-none-any"));
    index.tamper(&good.filename);
    let tampered = std::fs::read(index.root().join("files").join(&good.filename)).expect("file");
    let computed = hstore_test_support::sha256_hex(&tampered);
    let other_store = project.env.root().join("other-store");
    let other = other_store.to_str().expect("utf-8 path");
    let stderr = fails(&project.run(&["--store", other, "fetch"]), 2);
    assert!(stderr.contains(&good.filename), "{stderr}");
    assert!(
        stderr.contains(&format!("expected: {}", good.sha256)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("computed: {computed}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    let listing = project.run(&["--store", other, "store", "ls"]);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        !listing.contains(&address),
        "the tampered wheel was stored:\n{listing}"
    );
}

#[test]
fn an_sdist_only_package_is_a_clear_error_naming_it_and_the_target() {
    let index = fixture_index();
    let project = Project::new(&index, r#"["leaf", "sdistonly"]"#, "");
    let stderr = fails(&project.run(&["lock"]), 2);
    assert!(stderr.contains("sdistonly"), "{stderr}");
    assert!(stderr.contains("1.0"), "{stderr}");
    assert!(stderr.contains(METAX) && stderr.contains(CPU), "{stderr}");
    assert!(
        stderr.contains("hint: every package must have a wheel"),
        "{stderr}"
    );
    assert!(!project.env.root().join("lockfile.json").exists());
}

#[test]
fn a_pre_pinned_hashed_input_is_locked_as_it_is_and_must_agree_with_the_index() {
    let index = fixture_index();
    let leaf = index.wheel(&WheelSpec::new("leaf", "1.0", "py3-none-any"));
    let native_x86 = index.wheel(&WheelSpec::new(
        "native",
        "1.0",
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    ));
    let native_arm = index.wheel(&WheelSpec::new(
        "native",
        "1.0",
        "cp310-cp310-manylinux_2_28_aarch64",
    ));
    let pinned = format!(
        r#"["leaf==1.0 --hash=sha256:{}", "native==1.0 --hash=sha256:{} --hash=sha256:{}"]"#,
        leaf.sha256, native_x86.sha256, native_arm.sha256
    );
    let project = Project::new(&index, &pinned, "");
    ok(&project.run(&["lock"]));
    assert_eq!(
        project.lockfile()["recipes"][0]["sources"][0]["resolution"]["resolver"],
        "pinned"
    );
    assert_eq!(project.wheels(CPU).len(), 2);
    assert_eq!(project.wheels(METAX)[1].2, native_arm.filename);

    // A hash the index does not have: the error names the package, version and target.
    let wrong = format!(r#"["leaf==1.0 --hash=sha256:{}"]"#, "0".repeat(64));
    let other = Project::new(&index, &wrong, "");
    let stderr = fails(&other.run(&["lock"]), 2);
    assert!(
        stderr.contains("`leaf==1.0`") && stderr.contains(CPU),
        "{stderr}"
    );
    assert!(stderr.contains("--hash"), "{stderr}");
}

#[test]
fn locked_offline_and_warm_fetch_behave_as_for_crates() {
    let index = fixture_index();
    let project = Project::new(&index, r#"["top", "native"]"#, "");
    ok(&project.run(&["lock"]));
    ok(&project.run(&["lock", "--locked"]));
    ok(&project.run(&["lock", "--offline"]));

    // A fresh store: `--offline` names a missing wheel; a plain fetch downloads; a warm fetch needs no network.
    let other_store = project.env.root().join("other-store");
    let other = other_store.to_str().expect("utf-8 path");
    let stderr = fails(&project.run(&["--store", other, "fetch", "--offline"]), 2);
    assert!(stderr.contains(".whl"), "{stderr}");
    ok(&project.run(&["--store", other, "fetch"]));
    let requests = index.requests().len();
    ok(&project.run(&["--store", other, "fetch", "--offline"]));
    ok(&project.run(&["--store", other, "fetch"]));
    assert_eq!(
        index.requests().len(),
        requests,
        "a warm fetch went to the index"
    );

    // A recipe change makes `--locked` fail (exit 1) and leaves the lockfile alone.
    let before = project.lockfile_bytes();
    project.recipe(&index, r#"["top", "native", "leaf"]"#, "");
    let stderr = fails(&project.run(&["lock", "--locked"]), 1);
    assert!(stderr.contains("pyapp.py"), "{stderr}");
    assert_eq!(project.lockfile_bytes(), before);
}

#[test]
fn pip_installs_the_locked_wheelhouse_in_the_sandbox_natively_and_cross_target() {
    let index = fixture_index();
    let project = Project::new(&index, r#"["top", "native", "stable", "modern"]"#, "");
    let recipe = project.env.root().join("recipes/pyapp.toml");
    let mut text = std::fs::read_to_string(&recipe).expect("recipe");
    text.push_str(
        r#"
[build]
script = '''
set -eu
env | grep -E '^(PIP|UV)_' | sort > "$out/env"
common="--no-cache-dir --no-index --find-links $src_py --require-hashes -r $src_py/requirements.txt --target $out/site"
if [ "$MODE" = native ]; then
    python3 -m pip install $common
    PYTHONPATH="$out/site" python3 -c 'import top, mid, leaf, native, stable, modern; print(native.TAG, modern.__version__)' > "$out/imported"
else
    python3 -m pip install $common --only-binary :all: --implementation cp --python-version 3.10 \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64
    PYTHONPATH="$out/site" python3 -c 'import native; print(native.TAG)' > "$out/imported"
fi
'''
"#,
    );
    std::fs::write(&recipe, text).expect("write recipe");
    ok(&project.run(&["lock"]));

    for (target, expected) in [
        (
            "cpu",
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64 2.0\n",
        ),
        ("metax", "cp310-cp310-manylinux_2_28_aarch64\n"),
    ] {
        let link = format!("result-{target}");
        // The host's pip settings must not reach the sandbox; the whole build runs with no network at all.
        let output = project
            .command(&["build", "pyapp", "--target", target, "--out-link", &link])
            .env("PIP_FIND_LINKS", "/nonexistent")
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("UV_INDEX_URL", "http://127.0.0.1:9/simple")
            .output()
            .expect("run hstore build");
        ok(&output);
        let out = project.env.root().join(&link);
        assert_eq!(
            std::fs::read_to_string(out.join("imported")).expect("imported"),
            expected
        );
        let env = std::fs::read_to_string(out.join("env")).expect("env");
        assert!(env.contains("PIP_NO_INDEX=1"), "{env}");
        assert!(
            !env.contains("PIP_FIND_LINKS") && !env.contains("PIP_INDEX_URL"),
            "{env}"
        );
        assert!(!env.contains("UV_INDEX_URL"), "{env}");
    }
}

/// The SVC metax case's Python requirement sets (`requirements-infinicore-infinilm.txt` and
/// `requirements-embeddings.txt` of InfiniLM-SVC 2a3f570), plus the build tools the seed installed.
const SVC_CASE_REQUIREMENTS: &[&str] = &[
    "ml_dtypes>=0.5.0",
    "fastapi>=0.100.0",
    "uvicorn>=0.20.0",
    "janus>=2.0.0",
    "flask>=2.0.0",
    "blinker",
    "werkzeug",
    "itsdangerous",
    "setuptools",
    "wheel",
];

/// Live (`HSTORE_LIVE_TESTS=1`): locks the SVC case requirements against the real index for cp310-aarch64 and
/// cp311-x86_64 and compares the pins with `uv pip compile` run directly with the same inputs and snapshot.
#[test]
fn live_pypi_lock_matches_uv_pip_compile() {
    if std::env::var_os("HSTORE_LIVE_TESTS").is_none_or(|v| v != "1") {
        return;
    }
    let snapshot = "2026-11-20T00:00:00Z";
    let env = TestEnv::new();
    let uv = uv_program();
    let lines: Vec<String> = SVC_CASE_REQUIREMENTS
        .iter()
        .map(|line| format!("\"{line}\""))
        .collect();
    let dir = env.root().join("recipes");
    std::fs::create_dir_all(&dir).expect("recipes dir");
    std::fs::write(
        dir.join("svc-python.toml"),
        format!(
            "[recipe]\nname = \"svc-python\"\n\n[sources.py]\nrequirements = [{}]\nexclude_newer = \"{snapshot}\"\n\n\
             [targets.cpu]\npython = {{ version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }}\n\n\
             [targets.metax]\npython = {{ version = \"3.10\", platform = \"manylinux_2_28_aarch64\" }}\n",
            lines.join(", ")
        ),
    )
    .expect("write recipe");
    let mut command = env.command(env!("CARGO_BIN_EXE_hstore"));
    command.arg("lock").env("HSTORE_UV", &uv);
    ok(&command.output().expect("run hstore"));
    let lock: Value =
        serde_json::from_slice(&std::fs::read(env.root().join("lockfile.json")).expect("lockfile"))
            .expect("lockfile JSON");
    for (key, version, platform) in [
        (CPU, "3.11", "x86_64-manylinux_2_28"),
        (METAX, "3.10", "aarch64-manylinux_2_28"),
    ] {
        let mut locked: Vec<String> = lock["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .filter(|a| a["target"] == key)
            .map(|a| {
                format!(
                    "{}=={}",
                    a["name"].as_str().expect("name"),
                    a["version"].as_str().expect("version")
                )
            })
            .collect();
        locked.sort();
        let mut child = Command::new(&uv)
            .args([
                "pip",
                "compile",
                "-",
                "--quiet",
                "--no-config",
                "--no-header",
                "--no-annotate",
            ])
            .args([
                "--only-binary",
                ":all:",
                "--python-version",
                version,
                "--python-platform",
                platform,
            ])
            .args([
                "--exclude-newer",
                snapshot,
                "--index-url",
                "https://pypi.org/simple",
            ])
            .env("UV_PYTHON_DOWNLOADS", "never")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run uv");
        std::io::Write::write_all(
            child.stdin.as_mut().expect("stdin"),
            SVC_CASE_REQUIREMENTS.join("\n").as_bytes(),
        )
        .expect("write requirements");
        let output = child.wait_with_output().expect("uv output");
        assert!(output.status.success(), "uv pip compile failed");
        let mut expected: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.contains("=="))
            .map(|line| line.trim().to_owned())
            .collect();
        expected.sort();
        assert_eq!(locked, expected, "pins for {key} differ from uv's");
    }
}

/// An upstream repository's `requirements.txt` as a `path` source `up`, read by the `py` source through
/// `requirements_file = "up:requirements.txt"` (issue 20, attack 3). `uv` is a wrapper that records each run's
/// environment in `uv-env/` and then runs the real uv, so a test can tell whether uv ran and what it was given.
struct UpstreamProject {
    project: Project,
    env_dir: PathBuf,
}

impl UpstreamProject {
    fn new(index: &TestIndex, requirements_txt: &str) -> Self {
        let mut project = Project::new(
            index,
            "[]",
            "requirements_file = \"up:requirements.txt\"\n\n[sources.up]\npath = \"../upstream\"\n",
        );
        let root = project.env.root().to_path_buf();
        std::fs::create_dir_all(root.join("upstream")).expect("upstream dir");
        std::fs::write(root.join("upstream/requirements.txt"), requirements_txt)
            .expect("write requirements.txt");
        let env_dir = root.join("uv-env");
        std::fs::create_dir_all(&env_dir).expect("uv-env dir");
        let wrapper = root.join("uv-wrapper.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nenv > '{}/run.'$$\nexec '{}' \"$@\"\n",
                env_dir.display(),
                project.uv.display()
            ),
        )
        .expect("write uv wrapper");
        let mut permissions = std::fs::metadata(&wrapper).expect("wrapper").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&wrapper, permissions).expect("chmod uv wrapper");
        project.uv = wrapper;
        UpstreamProject { project, env_dir }
    }

    /// The environment of every uv run so far, as `NAME=value` lines.
    fn uv_runs(&self) -> Vec<String> {
        let mut runs: Vec<String> = std::fs::read_dir(&self.env_dir)
            .expect("uv-env dir")
            .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("env dump"))
            .collect();
        runs.sort();
        runs
    }
}

const SECRET: &str = "hstore-test-secret-4f1c9d";

/// See: issue 20, attack 3 (`--extra-index-url http://127.0.0.1:P/${SECRET}/simple` in an upstream file).
#[test]
fn a_requirements_file_naming_an_index_with_a_secret_is_refused_by_file_and_line_before_uv_runs() {
    let index = fixture_index();
    let leak = index
        .index_url()
        .replace("/simple", "/${AWS_SECRET_ACCESS_KEY}/simple");
    let upstream = UpstreamProject::new(
        &index,
        &format!("# pinned upstream\ntop\n--extra-index-url {leak}\nleaf\n"),
    );
    let output = upstream
        .project
        .command(&["lock"])
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("run hstore");
    let stderr = fails(&output, 2);
    assert!(
        stderr.contains("line 3 of requirements file `up:requirements.txt`"),
        "{stderr}"
    );
    assert!(stderr.contains("`${AWS_SECRET_ACCESS_KEY}`"), "{stderr}");
    assert!(stderr.contains("hint: write the value itself"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(
        upstream.uv_runs().is_empty(),
        "uv ran: {:?}",
        upstream.uv_runs()
    );
    assert!(
        index
            .requests()
            .iter()
            .all(|request| !request.path.contains(SECRET)),
        "the secret reached the index: {:?}",
        index.requests()
    );
    assert!(!upstream.project.env.root().join("lockfile.json").exists());

    // The same option without a reference is refused as an option, with the index hint.
    std::fs::write(
        upstream
            .project
            .env
            .root()
            .join("upstream/requirements.txt"),
        format!("top\n\n--extra-index-url={}\n", index.index_url()),
    )
    .expect("rewrite requirements.txt");
    let stderr = fails(&upstream.project.run(&["lock"]), 2);
    assert!(
        stderr.contains("line 3 of requirements file `up:requirements.txt`: found the option `--extra-index-url`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the index is the recipe's `index"),
        "{stderr}"
    );
    assert!(upstream.uv_runs().is_empty());
}

/// See: issue 20, attack 3 (`-r /etc/shadow` in an upstream file, or inline).
#[test]
fn a_requirements_file_including_etc_shadow_is_refused_by_file_and_line_before_uv_runs() {
    let index = fixture_index();
    let upstream = UpstreamProject::new(&index, "top\n-r /etc/shadow\n");
    let stderr = fails(&upstream.project.run(&["lock"]), 2);
    assert!(
        stderr.contains("line 2 of requirements file `up:requirements.txt`: found the option `-r`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: a source reads one `requirements_file`"),
        "{stderr}"
    );
    // Nothing ran that could open it: uv never started.
    assert!(upstream.uv_runs().is_empty(), "uv ran");

    // Inline lines are located by recipe and source; a path requirement is refused too.
    let project = Project::new(&index, r#"["top", "-r/etc/shadow"]"#, "");
    let stderr = fails(&project.run(&["lock"]), 2);
    assert!(
        stderr.contains(
            "line 2 of the inline `requirements` of recipe `pyapp`, source `py`: found the option `-r/etc/shadow`"
        ),
        "{stderr}"
    );
    let project = Project::new(&index, r#"["top", "/etc/shadow"]"#, "");
    let stderr = fails(&project.run(&["lock"]), 2);
    assert!(
        stderr.contains("found the path or URL `/etc/shadow`"),
        "{stderr}"
    );
    let project = Project::new(&index, r#"["x @ file:///etc/shadow"]"#, "");
    let stderr = fails(&project.run(&["lock"]), 2);
    assert!(
        stderr.contains("found the direct URL requirement"),
        "{stderr}"
    );
}

/// See: issue 20, attack 3 (uv took `${VAR}` from hstore's environment, where only `UV_*`/`PIP_*` were removed).
#[test]
fn uv_gets_a_cleared_environment_so_hstore_secrets_never_reach_it_or_the_index() {
    let index = fixture_index();
    let upstream = UpstreamProject::new(&index, "top\n");
    let leak = index
        .index_url()
        .replace("/simple", &format!("/{SECRET}/simple"));
    let output = upstream
        .project
        .command(&["lock"])
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("GITHUB_TOKEN", SECRET)
        .env("UV_EXTRA_INDEX_URL", &leak)
        .env("UV_INDEX_URL", &leak)
        .env("PIP_EXTRA_INDEX_URL", &leak)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("SSL_CERT_DIR", "/etc/ssl/certs")
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .output()
        .expect("run hstore");
    ok(&output);
    assert_eq!(upstream.project.version_of(CPU, "top"), "1.0");
    let runs = upstream.uv_runs();
    // `uv --version`, then one `uv pip compile` per target.
    assert_eq!(runs.len(), 3, "{runs:?}");
    let test_home = upstream.project.env.home();
    for run in &runs {
        assert!(!run.contains(SECRET), "a secret reached uv:\n{run}");
        let mut names: Vec<&str> = run
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            // What `sh` itself adds before `exec`.
            .filter(|name| !matches!(*name, "PWD" | "OLDPWD" | "SHLVL" | "_"))
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "HOME",
                "HTTPS_PROXY",
                "NO_PROXY",
                "PATH",
                "SSL_CERT_DIR",
                "SSL_CERT_FILE",
                "UV_NO_CONFIG",
                "UV_PYTHON_DOWNLOADS"
            ],
            "{run}"
        );
        let home = run
            .lines()
            .find_map(|line| line.strip_prefix("HOME="))
            .expect("HOME");
        assert_ne!(PathBuf::from(home), test_home, "uv got hstore's HOME");
        assert!(
            !PathBuf::from(home).exists(),
            "the scratch home {home} was left behind"
        );
        assert!(run.contains("SSL_CERT_DIR=/etc/ssl/certs\n"), "{run}");
        assert!(
            run.contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"),
            "{run}"
        );
    }
    assert!(
        index
            .requests()
            .iter()
            .all(|request| !request.path.contains(SECRET)),
        "the secret reached the index: {:?}",
        index.requests()
    );
}

/// Markers, extras, comments and continuations in a requirements file reach uv as hstore's rendering and mean what
/// they meant: the marker still selects per target.
#[test]
fn a_requirements_file_with_markers_extras_and_continuations_locks_through_the_canonical_rendering()
{
    let index = fixture_index();
    let upstream = UpstreamProject::new(
        &index,
        "# upstream requirements\nTop>=1.0 \\\n    ; python_version >= '3.8'   # needed everywhere\n\
         Native[Speed]==1.0\n\nModern ; python_version < \"3.11\"\n",
    );
    ok(&upstream.project.run(&["lock"]));
    let cpu: Vec<String> = upstream
        .project
        .wheels(CPU)
        .into_iter()
        .map(|w| w.0)
        .collect();
    let metax: Vec<String> = upstream
        .project
        .wheels(METAX)
        .into_iter()
        .map(|w| w.0)
        .collect();
    assert!(
        cpu.contains(&"top".to_owned()) && cpu.contains(&"native".to_owned()),
        "{cpu:?}"
    );
    assert!(!cpu.contains(&"modern".to_owned()), "{cpu:?}");
    assert!(metax.contains(&"modern".to_owned()), "{metax:?}");
    assert_eq!(upstream.uv_runs().len(), 3);
}
