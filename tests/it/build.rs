//! `hstore build` and `hstore log` end to end: the real binary, real namespaces, real builds.
//!
//! Each test lays out a project in its own [`TestEnv`] (`project/recipes/*.toml`, `project/src/`, a lockfile whose
//! `path` artifact was stored with `hstore store add`) and runs `hstore` there. Sandbox properties are observed from
//! inside: the build script writes what it saw into `$out`, and the test reads the stored output through
//! `--out-link`. Network probes only ever aim at 127.0.0.1.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hstore_test_support::{CrateSpec, TestEnv, TestRegistry};

/// One project: recipes, a `src/` directory stored as a `path` source, and a lockfile pinning it.
struct Project {
    env: TestEnv,
}

impl Project {
    /// A project whose `src/` holds `files`; every recipe passed to [`Project::recipe`] may use it as
    /// `[sources.code] path = "../src"`.
    fn new(files: &[(&str, &str)]) -> Self {
        let project = Project {
            env: TestEnv::new(),
        };
        for dir in ["recipes", "src"] {
            std::fs::create_dir_all(project.dir().join(dir)).expect("create project dir");
        }
        for (name, contents) in files {
            std::fs::write(project.dir().join("src").join(name), contents).expect("write source");
        }
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    fn store(&self) -> PathBuf {
        self.env.store()
    }

    /// `hstore ARGS` in the project directory.
    fn hstore(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command.current_dir(self.dir()).args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Outcome {
        Outcome::of(self.hstore(args).output().expect("run hstore"))
    }

    /// [`Project::run`] against the store at `store` instead of the project's.
    fn run_in(&self, store: &Path, args: &[&str]) -> Outcome {
        Outcome::of(
            self.hstore(args)
                .env("HSTORE_STORE", store)
                .output()
                .expect("run hstore"),
        )
    }

    /// Writes `recipes/<name>.toml`: a recipe using `src/` as `code`, with `targets` (TOML) and `script`.
    fn recipe(&self, name: &str, targets: &str, script: &str) -> &Self {
        self.raw_recipe(
            name,
            &format!(
                "[recipe]\nname = \"{name}\"\n\n[sources.code]\npath = \"../src\"\n\n{targets}\n\n\
                 [build]\nscript = '''\n{script}\n'''\n"
            ),
        )
    }

    fn raw_recipe(&self, name: &str, toml: &str) -> &Self {
        std::fs::write(
            self.dir().join("recipes").join(format!("{name}.toml")),
            toml,
        )
        .expect("write recipe");
        self
    }

    /// Stores `src/` and writes a lockfile pinning it at `address` (the stored one unless given) for `recipes`.
    fn lock(&self, recipes: &[&str], address: Option<&str>) {
        let stored = self.run(&["store", "add", "src"]).success().stdout_line();
        let address = address.unwrap_or(&stored);
        let size: u64 = std::fs::read_dir(self.dir().join("src"))
            .expect("list src")
            .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
            .sum();
        let locked: Vec<String> = recipes
            .iter()
            .map(|name| {
                format!(
                    r#"{{"name":"{name}","sources":[{{"name":"code","spec":{{"kind":"path","path":"../src","exclude":[]}},"artifacts":["path+src"]}}]}}"#
                )
            })
            .collect();
        let lockfile = format!(
            r#"{{"version":1,"recipes":[{}],"artifacts":[{{"kind":"path","id":"path+src","path":"src","address":"{address}","size":{size}}}]}}"#,
            locked.join(",")
        );
        std::fs::write(self.dir().join("lockfile.json"), lockfile).expect("write lockfile");
    }

    /// Names in a store directory (`meta-v1/build`, `roots-v1`, `tmp`); empty if it does not exist.
    fn store_entries(&self, dir: &str) -> Vec<String> {
        match std::fs::read_dir(self.store().join(dir)) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .map(|entry| {
                        entry
                            .expect("entry")
                            .file_name()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                names.sort();
                names
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Vec::new(),
            Err(error) => panic!("list {dir}: {error}"),
        }
    }

    fn build_records(&self) -> Vec<String> {
        self.store_entries("meta-v1/build")
    }

    fn build_roots(&self) -> Vec<String> {
        self.store_entries("roots-v1")
            .into_iter()
            .filter(|name| name.starts_with("build-"))
            .collect()
    }

    /// Reads a file of the output linked at `link`.
    fn output_file(&self, link: &str, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(link).join(name))
            .unwrap_or_else(|error| panic!("read {link}/{name}: {error}"))
    }
}

/// A finished `hstore` run.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn of(output: Output) -> Self {
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    #[track_caller]
    fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success; stderr:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "expected exit {expected}; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn stdout_line(&self) -> String {
        self.stdout.trim().to_owned()
    }
}

/// Polls `condition` until it holds; panics naming `what` after a generous deadline (a hang, not a timing check).
#[track_caller]
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const C_PROGRAM: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from m\"); return 0; }\n";

const COMPILE_SCRIPT: &str = r#"echo "building demo now"
cc -o /build/m "$src_code/m.c"
mkdir -p "$out/bin"
cp /build/m "$out/bin/m""#;

#[test]
fn sandbox_has_only_loopback_and_cannot_reach_the_hosts_127_0_0_1() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    // The probe used inside works: from the host it does reach the listener.
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let status = Command::new("bash")
        .args(["-c", &probe])
        .status()
        .expect("run bash");
    assert!(status.success(), "the host must reach its own listener");
    wait_until("the host's probe connection arrives", || {
        listener.accept().is_ok()
    });

    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project.recipe(
        "net",
        "[targets.cpu]",
        &format!(
            r#"if bash -c '{probe}' 2> "$out/connect-error"; then echo connected > "$out/tcp"; else echo failed > "$out/tcp"; fi
tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > "$out/interfaces""#
        ),
    );
    project.lock(&["net"], None);
    project
        .run(&["build", "net", "--target", "cpu", "--out-link", "result"])
        .success();

    assert_eq!(project.output_file("result", "tcp"), "failed\n");
    assert!(
        project
            .output_file("result", "connect-error")
            .contains("Connection refused"),
        "inside, 127.0.0.1 is the sandbox's own loopback with nothing listening"
    );
    assert_eq!(project.output_file("result", "interfaces"), "lo\n");
    match listener.accept() {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the sandbox reached the host's listener: {other:?}"),
    }
}

#[test]
fn sandbox_cannot_write_the_store_or_inputs_and_sees_no_host_home() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    let host_home = project.env.home();
    std::fs::create_dir_all(host_home.join(".cargo")).expect("create ~/.cargo");
    std::fs::write(
        host_home.join(".cargo/config.toml"),
        "# host cargo config\n",
    )
    .expect("write ~/.cargo/config.toml");
    let store = project.store();
    project.recipe(
        "peek",
        "[targets.cpu]",
        &format!(
            r#"touch "$src_code/new-file" 2>> "$out/errors"
{{ echo changed >> "$src_code/m.c"; }} 2>> "$out/errors"
mkdir "$src_code/new-dir" 2>> "$out/errors"
for path in "{home}" "{home}/.cargo" "{store}" /root/.cargo "$HOME/.cargo"; do
  if [ -e "$path" ]; then echo "visible $path"; else echo "invisible $path"; fi
done > "$out/visibility"
echo "$HOME" > "$out/home"
ls -A "$HOME" > "$out/home-listing"
env | grep -c -e "{home}" -e "{store}" > "$out/host-paths-in-env" || true"#,
            home = host_home.display(),
            store = store.display(),
        ),
    );
    project.lock(&["peek"], None);
    project
        .run(&["build", "peek", "--target", "cpu", "--out-link", "result"])
        .success();

    let errors = project.output_file("result", "errors");
    // EROFS from the read-only bind, or EACCES first where the file itself is 0444: the build holds no
    // CAP_DAC_OVERRIDE (issue 8, defect 1).
    assert_eq!(
        errors.matches("Read-only file system").count()
            + errors.matches("Permission denied").count(),
        3,
        "every write into an input (the store's own copy) fails:\n{errors}"
    );
    let visibility = project.output_file("result", "visibility");
    assert!(
        visibility
            .lines()
            .all(|line| line.starts_with("invisible ")),
        "{visibility}"
    );
    let home = project.output_file("result", "home");
    assert_ne!(home.trim(), host_home.to_string_lossy());
    assert_eq!(project.output_file("result", "home-listing"), "");
    assert_eq!(project.output_file("result", "host-paths-in-env"), "0\n");
    // The stored input is untouched.
    assert_eq!(
        std::fs::read_to_string(project.dir().join("src/m.c")).expect("read m.c"),
        C_PROGRAM
    );
    project.run(&["store", "verify"]).success();
}

#[test]
fn second_build_is_a_cache_hit_and_runs_nothing() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    // Every run of this script gives a different output, so an equal address proves nothing ran.
    project.recipe(
        "unique",
        "[targets.cpu]",
        r#"cat /proc/sys/kernel/random/uuid > "$out/run-id""#,
    );
    project.lock(&["unique"], None);
    let first = project
        .run(&["build", "unique", "--target", "cpu"])
        .success();
    assert!(first.stderr.contains("Built"), "{}", first.stderr);
    let second = project
        .run(&["build", "unique", "--target", "cpu"])
        .success();
    assert!(second.stderr.contains("Fresh"), "{}", second.stderr);
    assert_eq!(first.stdout_line(), second.stdout_line());
    assert!(first.stdout_line().starts_with("b3:"));
    assert_eq!(project.build_records().len(), 1);
    assert_eq!(project.store_entries("tmp"), Vec::<String>::new());
    // And the script really is not reproducible, so the equality above can only come from the cache.
    let check = project
        .run(&["build", "unique", "--target", "cpu", "--check"])
        .code(1);
    assert!(check.stderr.contains("run-id"), "{}", check.stderr);
}

#[test]
fn check_passes_when_reproducible_and_names_the_differing_file_otherwise() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project
        .recipe("steady", "[targets.cpu]", COMPILE_SCRIPT)
        .recipe(
            "clock",
            "[targets.cpu]",
            r#"echo same > "$out/same"
date +%s%N > "$out/stamp""#,
        );
    project.lock(&["steady", "clock"], None);
    let built = project
        .run(&["build", "steady", "--target", "cpu"])
        .success();
    let checked = project
        .run(&["build", "steady", "--target", "cpu", "--check"])
        .success();
    assert!(
        checked.stderr.contains("reproducible"),
        "{}",
        checked.stderr
    );
    assert_eq!(built.stdout_line(), checked.stdout_line());

    project
        .run(&["build", "clock", "--target", "cpu"])
        .success();
    let failed = project
        .run(&["build", "clock", "--target", "cpu", "--check"])
        .code(1);
    assert!(
        failed.stderr.contains("not reproducible"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("stamp"), "{}", failed.stderr);
    assert!(
        !failed.stderr.contains("same"),
        "only differing files are listed:\n{}",
        failed.stderr
    );
    // A failed check does not replace the recorded output.
    assert_eq!(project.build_records().len(), 2);
}

/// A script that signals it started (`/build/started`) and then waits for the test's `/build/go`.
const WAIT_SCRIPT: &str = r#"touch /build/started
while [ ! -e /build/go ]; do sleep 0.05; done
echo finished > "$out/done""#;

/// Scratch directories in the store's `tmp/` whose build signalled it started.
fn started_scratch(project: &Project) -> Vec<PathBuf> {
    project
        .store_entries("tmp")
        .into_iter()
        .map(|name| project.store().join("tmp").join(name))
        .filter(|dir| dir.join("build/started").exists())
        .collect()
}

/// Host pids of processes whose environment holds `marker` (set by the recipe, so only that build's processes).
fn processes_with(marker: &str) -> Vec<u32> {
    let needle = marker.as_bytes();
    std::fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|environ| environ.split(|&b| b == 0).any(|var| var == needle))
        })
        .collect()
}

fn spawn_build(project: &Project, recipe: &str) -> Child {
    project
        .hstore(&["build", recipe, "--target", "cpu", "--out-link", "result"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn hstore build")
}

fn killed_build_records_nothing(kill_group: bool) {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    let marker = format!(
        "HSTORE_TEST_MARKER={}-{}",
        std::process::id(),
        if kill_group { "group" } else { "pid" }
    );
    let (name, value) = marker.split_once('=').expect("marker");
    project.raw_recipe(
        "slow",
        &format!(
            "[recipe]\nname = \"slow\"\n\n[sources.code]\npath = \"../src\"\n\n[targets.cpu]\n\n\
             [build]\nenv = {{ {name} = \"{value}\" }}\nscript = '''\n{WAIT_SCRIPT}\n'''\n"
        ),
    );
    project.lock(&["slow"], None);

    let mut child = spawn_build(&project, "slow");
    wait_until("the build starts in the sandbox", || {
        !started_scratch(&project).is_empty()
    });
    assert!(
        !processes_with(&marker).is_empty(),
        "the marker finds the build's processes"
    );
    if kill_group {
        let status = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status()
            .expect("run kill");
        assert!(status.success());
    } else {
        child.kill().expect("SIGKILL hstore");
    }
    child.wait().expect("reap hstore");
    wait_until("every process of the killed build is gone", || {
        processes_with(&marker).is_empty()
    });
    assert_eq!(project.build_records(), Vec::<String>::new());
    assert_eq!(project.build_roots(), Vec::<String>::new());
    let killed = started_scratch(&project);
    assert_eq!(killed.len(), 1);

    // A later build of the same recipe runs normally and is recorded.
    let child = spawn_build(&project, "slow");
    wait_until("the second build starts in the sandbox", || {
        started_scratch(&project).len() == 2
    });
    for dir in started_scratch(&project) {
        if dir != killed[0] {
            std::fs::write(dir.join("build/go"), "").expect("signal go");
        }
    }
    let second = Outcome::of(child.wait_with_output().expect("wait for hstore")).success();
    assert!(second.stderr.contains("Built"), "{}", second.stderr);
    assert_eq!(project.output_file("result", "done"), "finished\n");
    assert_eq!(project.build_records().len(), 1);
    assert_eq!(project.build_roots().len(), 1);

    // gc removes the killed build's scratch, and keeps the recorded output.
    assert!(killed[0].exists());
    project.run(&["store", "gc"]).success();
    assert_eq!(project.store_entries("tmp"), Vec::<String>::new());
    // The hand-written lockfile roots nothing (`hstore fetch` would), so gc took the input too; store it again.
    project.run(&["store", "add", "src"]).success();
    let again = project.run(&["build", "slow", "--target", "cpu"]).success();
    assert!(again.stderr.contains("Fresh"), "{}", again.stderr);
}

#[test]
fn sigkill_of_the_process_group_mid_build_records_nothing() {
    killed_build_records_nothing(true);
}

#[test]
fn sigkill_of_hstore_alone_takes_the_sandbox_down_and_records_nothing() {
    killed_build_records_nothing(false);
}

#[test]
fn missing_host_path_is_named_before_anything_runs() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project.recipe(
        "cuda",
        "[targets.cpu]\n\n[targets.cuda]\nhost_paths = [\"/nonexistent/cuda\"]",
        r#"touch "$out/ran""#,
    );
    // `fine` sorts first and could build; the command must still fail before starting it.
    project.recipe("fine", "[targets.cuda]", r#"touch "$out/ran""#);
    project.lock(&["cuda", "fine"], None);
    let failed = project
        .run(&["build", "fine", "cuda", "--target", "cuda"])
        .code(2);
    assert!(
        failed.stderr.contains("`/nonexistent/cuda`"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("hint:"), "{}", failed.stderr);
    assert_eq!(failed.stdout, "");
    assert_eq!(project.store_entries("tmp"), Vec::<String>::new());
    assert_eq!(project.build_records(), Vec::<String>::new());
}

#[test]
fn unknown_target_lists_the_recipes_targets() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project.recipe(
        "multi",
        "[targets.cpu]\n\n[targets.cuda]\nhost_paths = [\"/nonexistent/cuda\"]",
        r#"touch "$out/ran""#,
    );
    project.lock(&["multi"], None);
    let failed = project.run(&["build", "multi", "--target", "rocm"]).code(2);
    assert!(failed.stderr.contains("`rocm`"), "{}", failed.stderr);
    assert!(failed.stderr.contains("cpu, cuda"), "{}", failed.stderr);
    assert_eq!(project.store_entries("tmp"), Vec::<String>::new());
}

#[test]
fn missing_store_input_is_named_with_its_address_and_a_hint() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project.recipe("demo", "[targets.cpu]", COMPILE_SCRIPT);
    let absent = format!("b3:{}", "5a".repeat(32));
    project.lock(&["demo"], Some(&absent));
    let failed = project.run(&["build", "demo", "--target", "cpu"]).code(2);
    assert!(failed.stderr.contains("code"), "{}", failed.stderr);
    assert!(failed.stderr.contains(&absent), "{}", failed.stderr);
    let hint = failed
        .stderr
        .lines()
        .find(|line| line.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no hint:\n{}", failed.stderr));
    assert!(
        hint.contains("hstore fetch") && hint.contains("hstore import"),
        "{hint}"
    );
    assert_eq!(project.store_entries("tmp"), Vec::<String>::new());
}

#[test]
fn out_link_install_path_deployment_case_and_log() {
    let project = Project::new(&[("m.c", C_PROGRAM)]);
    project.recipe("demo", "[targets.cpu]", COMPILE_SCRIPT);
    project.lock(&["demo"], None);

    let built = project
        .run(&["build", "demo", "--target", "cpu", "--out-link", "result"])
        .success();
    let output = built.stdout_line();
    let link = project.dir().join("result");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("result")
            .file_type()
            .is_symlink()
    );
    let program = link.join("bin/m");
    let mode = std::fs::metadata(&program)
        .expect("result/bin/m")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o222,
        0,
        "the linked output is read-only (mode {mode:o})"
    );
    let ran = Command::new(&program).output().expect("run result/bin/m");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hello from m\n");

    // `--install-path` installs the whole output under the prefix; programs get mode 0755.
    project
        .run(&[
            "build",
            "demo",
            "--target",
            "cpu",
            "--install-path",
            "installed",
        ])
        .success();
    let installed = project.dir().join("installed/bin/m");
    let mode = std::fs::metadata(&installed)
        .expect("installed/m")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert_eq!(
        std::fs::read(&installed).expect("read installed/m"),
        std::fs::read(&program).expect("read result/bin/m")
    );

    // A deployment case picks the recipe, the target and the install path.
    std::fs::create_dir_all(project.dir().join("recipes/cases")).expect("cases dir");
    std::fs::write(
        project.dir().join("recipes/cases/demo-cpu.toml"),
        "[case]\nrecipes = [\"demo\"]\ntarget = \"cpu\"\ninstall_path = \"from-case\"\n\
         description = \"the demo on any CPU\"\n",
    )
    .expect("write case");
    let cased = project
        .run(&["build", "--deployment-case", "demo-cpu"])
        .success();
    assert_eq!(cased.stdout_line(), output);
    assert!(cased.stderr.contains("Fresh"), "{}", cased.stderr);
    assert!(project.dir().join("from-case/bin/m").is_file());

    // The log, by recipe and target, and by output address.
    let by_recipe = project.run(&["log", "demo", "--target", "cpu"]).success();
    assert!(
        by_recipe.stdout.contains("building demo now"),
        "{}",
        by_recipe.stdout
    );
    let by_address = project.run(&["log", &output]).success();
    assert_eq!(by_address.stdout, by_recipe.stdout);
}

/// A cargo command isolated from the developer's cargo setup and from the outer `cargo test`.
fn cargo(project: &Path, cargo_home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_") || name.starts_with("RUSTC") || name == "RUSTFLAGS" {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .current_dir(project)
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_NET_RETRY", "0")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY");
    command
}

/// `1.95.0` from the `rustc --version` of the toolchain at `sysroot`.
fn rustc_version(sysroot: &Path) -> String {
    let output = Command::new(sysroot.join("bin/rustc"))
        .arg("--version")
        .output()
        .expect("run rustc --version");
    String::from_utf8(output.stdout)
        .expect("utf-8 version")
        .split_whitespace()
        .nth(1)
        .expect("a version word")
        .to_owned()
}

/// The sysroot of the toolchain running these tests (`~/.rustup/toolchains/<name>` under rustup).
fn rust_sysroot() -> PathBuf {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    assert!(output.status.success(), "rustc --print sysroot failed");
    PathBuf::from(
        String::from_utf8(output.stdout)
            .expect("utf-8 sysroot")
            .trim(),
    )
}

/// Builds a small Rust program depending on `bar` (which depends on `foo`) from the loopback registry, offline in the
/// sandbox, and runs it. With `alternative_registry`, the project names the registry itself (`registry = "loopback"`,
/// a `[registries]` table in its own `.cargo/config.toml`), so Cargo.lock's sources are the loopback URL; otherwise the
/// registry stands in for crates.io and is reached through `--mirror`.
fn rust_program_builds_offline_and_runs(alternative_registry: bool) {
    let registry = TestRegistry::new()
        .crate_("foo", "1.0.0")
        .crate_with(
            "bar",
            "0.2.0",
            CrateSpec {
                deps: vec![("foo", "1.0.0")],
                files: vec![(
                    "src/lib.rs",
                    "pub fn greet() -> String {\n    format!(\"bar and {}\", foo::name())\n}\n",
                )],
                ..CrateSpec::default()
            },
        )
        .start();
    let project = Project::new(&[]);
    let app = project.dir().join("app");
    std::fs::create_dir_all(app.join("src")).expect("create app/src");
    // The fixture registry's `bar` names `foo` without the `registry-index` that `cargo publish` writes for crates
    // of other registries, so from an alternative registry the app uses `foo` alone.
    let (dependency, use_it, expected) = if alternative_registry {
        (
            "foo = { version = \"1.0.0\", registry = \"loopback\" }",
            "foo::name()",
            "app uses foo\n",
        )
    } else {
        ("bar = \"0.2.0\"", "bar::greet()", "app uses bar and foo\n")
    };
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{dependency}\n"
        ),
    )
    .expect("write Cargo.toml");
    if alternative_registry {
        std::fs::create_dir_all(app.join(".cargo")).expect("create app/.cargo");
        std::fs::write(
            app.join(".cargo/config.toml"),
            format!(
                "[registries.loopback]\nindex = \"{}\"\n",
                registry.crates_index_url()
            ),
        )
        .expect("write app/.cargo/config.toml");
    }
    std::fs::write(
        app.join("src/main.rs"),
        format!("fn main() {{\n    println!(\"app uses {{}}\", {use_it});\n}}\n"),
    )
    .expect("write main.rs");
    // Real cargo resolves against the loopback registry standing in for crates.io, so Cargo.lock names crates.io
    // as every crate's source, as a real project's does. The replacement lives in a throw-away CARGO_HOME, not in the
    // project (whose `.cargo/config.toml` the sandboxed build would read).
    let cargo_home = project.env.root().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).expect("create cargo home");
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"loopback\"\n\n[source.loopback]\nregistry = \"{}\"\n",
            registry.crates_index_url()
        ),
    )
    .expect("write cargo config");
    let generated = cargo(&app, &cargo_home, &["generate-lockfile"])
        .output()
        .expect("run cargo generate-lockfile");
    assert!(
        generated.status.success(),
        "cargo generate-lockfile: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let cargo_lock = std::fs::read_to_string(app.join("Cargo.lock")).expect("read Cargo.lock");
    let expected_source = if alternative_registry {
        registry.crates_index_url()
    } else {
        "registry+https://github.com/rust-lang/crates.io-index".to_owned()
    };
    assert!(cargo_lock.contains(&expected_source), "{cargo_lock}");

    // The toolchain: with the default registry, from the store (a `rust_toolchain` source locked from a rustup home
    // whose toolchain is the one running these tests); with the alternative registry, as a declared host path, which
    // stays possible for vendor SDKs.
    let sysroot = rust_sysroot();
    let rustup_home = project.env.root().join("rustup");
    let (toolchain_source, toolchain_target) = if alternative_registry {
        (
            String::new(),
            format!(
                "host_paths = [\"{sysroot}\"]\nenv = {{ PATH = \"{sysroot}/bin:/usr/bin:/bin\" }}",
                sysroot = sysroot.display()
            ),
        )
    } else {
        let version = rustc_version(&sysroot);
        let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        std::fs::create_dir_all(rustup_home.join("toolchains")).expect("create rustup home");
        // Like `rustup toolchain link`: the toolchain directory may be a symlink.
        std::os::unix::fs::symlink(
            &sysroot,
            rustup_home.join(format!("toolchains/{version}-{host}")),
        )
        .expect("link toolchain");
        (
            format!("[sources.rust]\nrust_toolchain = \"{version}\"\n"),
            "env = { PATH = \"/src/rust/bin:/usr/bin:/bin\" }".to_owned(),
        )
    };
    project.raw_recipe(
        "app",
        &format!(
            r#"[recipe]
name = "app"

[sources.app]
path = "../app"

[sources.crates]
cargo_lock = "app:Cargo.lock"

{toolchain_source}
[targets.cpu]
{toolchain_target}

[build]
script = '''
set -eu
export CARGO_TARGET_DIR=/build/target
cd "$src_app"
cargo build --release --offline --frozen
install -Dm755 "$CARGO_TARGET_DIR/release/app" "$out/bin/app"
'''
"#
        ),
    );
    let mirror = format!("https://index.crates.io/={}", registry.index_url());
    let mirror_args: &[&str] = if alternative_registry {
        &[]
    } else {
        &["--mirror", &mirror]
    };
    let locked = project
        .hstore(&[&["lock"], mirror_args].concat())
        .env("RUSTUP_HOME", &rustup_home)
        .output()
        .expect("run hstore lock");
    Outcome::of(locked).success();
    project.run(&[&["fetch"], mirror_args].concat()).success();
    let served = registry.requests().len();

    let built = if alternative_registry {
        project
            .run(&["build", "app", "--target", "cpu", "--out-link", "result"])
            .success()
    } else {
        // The air-gapped case: no network at all (a fresh network namespace), an empty HOME, no rustup: the
        // compiler comes from the store.
        let empty_home = project.env.root().join("empty-home");
        std::fs::create_dir_all(&empty_home).expect("create empty home");
        let mut command = project.env.command("unshare");
        command
            .current_dir(project.dir())
            .args(["--map-root-user", "--net", env!("CARGO_BIN_EXE_hstore")])
            .args(["build", "app", "--target", "cpu", "--out-link", "result"])
            .env("HOME", &empty_home)
            .env_remove("RUSTUP_HOME")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env("PATH", "/usr/bin:/bin");
        let built = Outcome::of(command.output().expect("run unshare hstore build")).success();
        let plan = project
            .run(&["build", "app", "--target", "cpu", "--dry-run"])
            .success();
        assert!(plan.stdout.ends_with("cached\n"), "{}", plan.stdout);
        built
    };
    assert!(built.stderr.contains("Built"), "{}", built.stderr);
    assert_eq!(
        registry.requests().len(),
        served,
        "the build must not touch the registry"
    );
    let ran = Command::new(project.dir().join("result/bin/app"))
        .output()
        .expect("run result/bin/app");
    assert!(ran.status.success());
    assert_eq!(String::from_utf8_lossy(&ran.stdout), expected);
    let log = project.run(&["log", "app", "--target", "cpu"]).success();
    assert!(
        log.stdout.contains("Compiling foo v1.0.0"),
        "{}",
        log.stdout
    );
}

#[test]
fn a_rust_program_with_registry_crates_builds_offline_in_the_sandbox_and_runs() {
    rust_program_builds_offline_and_runs(false);
}

#[test]
fn crates_from_an_alternative_registry_are_vendored_too() {
    rust_program_builds_offline_and_runs(true);
}

// ---------------------------------------------------------------------------------------------------------------------
// The build graph (issue 9): recipes whose sources are other recipes' outputs.

const GREET_C: &str = "const char *greet(void) { return \"v1\"; }\n";
const MAIN_C: &str = "#include <stdio.h>\nconst char *greet(void);\n\
                      int main(void) { printf(\"prog says %s\\n\", greet()); return 0; }\n";

/// Runs an installed program with no `LD_LIBRARY_PATH`, so its libraries must be found through the prefix (its
/// `$ORIGIN` rpath); asserts it succeeded and returns its stdout.
fn run_from_prefix(program: &Path) -> String {
    let ran = Command::new(program)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", program.display()));
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    String::from_utf8_lossy(&ran.stdout).into_owned()
}

/// A chain of three recipes, locked with `hstore lock`: `lib` (a C shared library), `prog` (a program linking it,
/// with an `$ORIGIN`-relative rpath) and `pkg` (both, packaged as one prefix: `bin/prog`, `lib/libgreet.so`).
/// `lib-src/greet.c`, `prog-src/main.c` and the recipe `lib` building `lib/libgreet.so` from the first.
fn write_library_and_program_sources(project: &Project) {
    for (dir, file, text) in [
        ("lib-src", "greet.c", GREET_C),
        ("prog-src", "main.c", MAIN_C),
    ] {
        std::fs::create_dir_all(project.dir().join(dir)).expect("create source dir");
        std::fs::write(project.dir().join(dir).join(file), text).expect("write source");
    }
    project.raw_recipe(
        "lib",
        "[recipe]\nname = \"lib\"\n[sources.code]\npath = \"../lib-src\"\n[targets.cpu]\n[build]\nscript = '''\n\
         set -eu\nmkdir -p \"$out/lib\"\ncc -shared -fPIC -o \"$out/lib/libgreet.so\" \"$src_code/greet.c\"\n'''\n",
    );
}

fn chain_project() -> Project {
    let project = Project::new(&[]);
    write_library_and_program_sources(&project);
    project.raw_recipe(
        "prog",
        "[recipe]\nname = \"prog\"\n[sources.code]\npath = \"../prog-src\"\n[sources.lib]\nrecipe = \"lib\"\n\
         [targets.cpu]\n[build]\nscript = '''\nset -eu\nmkdir -p \"$out/bin\"\n\
         cc -o \"$out/bin/prog\" \"$src_code/main.c\" -L\"$src_lib/lib\" -lgreet -Wl,-rpath,'$ORIGIN/../lib'\n'''\n",
    );
    project.raw_recipe(
        "pkg",
        "[recipe]\nname = \"pkg\"\n[sources.lib]\nrecipe = \"lib\"\n[sources.prog]\nrecipe = \"prog\"\n\
         [targets.cpu]\n[build]\nscript = '''\nset -eu\nmkdir -p \"$out/bin\" \"$out/lib\"\n\
         cp \"$src_prog/bin/prog\" \"$out/bin/\"\ncp \"$src_lib/lib/libgreet.so\" \"$out/lib/\"\n'''\n",
    );
    project.run(&["lock"]).success();
    project
}

/// `(recipe, status)` for each line of `--dry-run` output, checking each names target `cpu` and a key.
fn dry_run(project: &Project, recipe: &str) -> Vec<(String, String)> {
    let planned = project
        .run(&["build", recipe, "--target", "cpu", "--dry-run"])
        .success();
    planned
        .stdout
        .lines()
        .map(|line| {
            let mut words = line.splitn(4, ' ');
            let (name, target, key, status) = (
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            assert_eq!(target, "cpu", "{line}");
            assert!(key.starts_with("b3:") && key.len() == 67, "{line}");
            (name.to_owned(), status.to_owned())
        })
        .collect()
}

/// Which recipes a build's status lines say were built and which were fresh.
fn built_and_fresh(outcome: &Outcome) -> (Vec<String>, Vec<String>) {
    let named = |verb: &str| -> Vec<String> {
        outcome
            .stderr
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix(verb))
            .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let (mut built, mut fresh) = (named("Built "), named("Fresh "));
    built.sort();
    fresh.sort();
    (built, fresh)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn a_chain_of_three_recipes_rebuilds_exactly_what_changed_and_runs_from_the_installed_prefix() {
    let project = chain_project();
    let will_build = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|name| ((*name).to_owned(), "will build".to_owned()))
            .collect()
    };
    // The plan lists dependencies first, each with its key, before anything runs.
    assert_eq!(
        dry_run(&project, "pkg"),
        will_build(&["lib", "prog", "pkg"])
    );

    let first = project
        .run(&["build", "pkg", "--target", "cpu", "-j", "2"])
        .success();
    assert_eq!(
        built_and_fresh(&first),
        (strings(&["lib", "pkg", "prog"]), vec![])
    );
    let noop = project.run(&["build", "pkg", "--target", "cpu"]).success();
    assert_eq!(
        built_and_fresh(&noop),
        (vec![], strings(&["lib", "pkg", "prog"]))
    );
    assert_eq!(noop.stdout, first.stdout, "same output address");
    assert!(
        dry_run(&project, "pkg")
            .iter()
            .all(|(_, status)| status == "cached")
    );

    // gc keeps whole chains; `export --with-builds` carries them: a fresh store that imports the bundle has all
    // three builds cached.
    project.run(&["store", "gc"]).success();
    let after_gc = project.run(&["build", "pkg", "--target", "cpu"]).success();
    assert_eq!(
        built_and_fresh(&after_gc),
        (vec![], strings(&["lib", "pkg", "prog"]))
    );
    // Build records travel only on a trusted signature (issue 20).
    project
        .run(&["key", "generate", "--out", "release"])
        .success();
    project
        .run(&[
            "export",
            "--with-builds",
            "--sign",
            "release.secret",
            "-o",
            "chain.hsb",
        ])
        .success();
    let other_store = project.env.root().join("other-store");
    let in_other = |args: &[&str]| project.run_in(&other_store, args);
    in_other(&["import", "--trust", "release.pub", "chain.hsb"]).success();
    let imported = in_other(&["build", "pkg", "--target", "cpu"]).success();
    assert_eq!(
        built_and_fresh(&imported),
        (vec![], strings(&["lib", "pkg", "prog"]))
    );
    assert_eq!(imported.stdout, first.stdout);

    // The installed prefix runs its program, the library found through the prefix ($ORIGIN/../lib).
    project
        .run(&[
            "build",
            "pkg",
            "--target",
            "cpu",
            "--install-path",
            "prefix",
        ])
        .success();
    let run_installed = || run_from_prefix(&project.dir().join("prefix/bin/prog"));
    assert_eq!(run_installed(), "prog says v1\n");

    // Change the library: all three rebuild; the dry run said so first.
    std::fs::write(
        project.dir().join("lib-src/greet.c"),
        GREET_C.replace("v1", "v2"),
    )
    .expect("edit greet.c");
    project.run(&["lock"]).success();
    assert_eq!(
        dry_run(&project, "pkg"),
        will_build(&["lib", "prog", "pkg"])
    );
    let rebuilt = project
        .run(&[
            "build",
            "pkg",
            "--target",
            "cpu",
            "--install-path",
            "prefix",
        ])
        .success();
    assert_eq!(
        built_and_fresh(&rebuilt),
        (strings(&["lib", "pkg", "prog"]), vec![])
    );
    assert_eq!(run_installed(), "prog says v2\n");

    // Change only the program: the library is a cache hit.
    std::fs::write(
        project.dir().join("prog-src/main.c"),
        MAIN_C.replace("prog says", "prog now says"),
    )
    .expect("edit main.c");
    project.run(&["lock"]).success();
    let planned = dry_run(&project, "pkg");
    assert_eq!(
        planned,
        vec![
            ("lib".to_owned(), "cached".to_owned()),
            ("prog".to_owned(), "will build".to_owned()),
            ("pkg".to_owned(), "will build".to_owned()),
        ]
    );
    let partial = project
        .run(&[
            "build",
            "pkg",
            "--target",
            "cpu",
            "--install-path",
            "prefix",
        ])
        .success();
    assert_eq!(
        built_and_fresh(&partial),
        (strings(&["pkg", "prog"]), strings(&["lib"]))
    );
    assert_eq!(run_installed(), "prog now says v2\n");
}

#[test]
fn lock_refuses_a_cycle_an_unknown_recipe_and_a_missing_target_naming_file_and_source() {
    let project = Project::new(&[]);
    let recipe = |name: &str, sources: &str| {
        project.raw_recipe(
            name,
            &format!(
                "[recipe]\nname = \"{name}\"\n{sources}\n[targets.cpu]\n[build]\nscript = \"true\"\n"
            ),
        );
    };
    recipe("a", "[sources.uses-b]\nrecipe = \"b\"");
    recipe("b", "[sources.uses-c]\nrecipe = \"c\"");
    recipe("c", "[sources.uses-a]\nrecipe = \"a\"");
    let cycle = project.run(&["lock"]).code(2);
    assert!(
        cycle.stderr.contains(
            "a (cpu) [source `uses-b`] → b (cpu) [source `uses-c`] → c (cpu) [source `uses-a`] → a (cpu)"
        ),
        "{}",
        cycle.stderr
    );
    assert!(cycle.stderr.contains("a.toml"), "{}", cycle.stderr);
    assert!(!project.dir().join("lockfile.json").exists());

    recipe("c", "[sources.uses-d]\nrecipe = \"nope\"");
    let unknown = project.run(&["lock"]).code(2);
    for expected in ["c.toml", "`uses-d`", "`nope`", "hint:"] {
        assert!(
            unknown.stderr.contains(expected),
            "{expected}: {}",
            unknown.stderr
        );
    }

    recipe("c", "[sources.uses-a]\nrecipe = \"a\"\ntarget = \"gpu\"");
    let missing = project.run(&["lock"]).code(2);
    for expected in ["c.toml", "`uses-a`", "target `gpu`", "a.toml"] {
        assert!(
            missing.stderr.contains(expected),
            "{expected}: {}",
            missing.stderr
        );
    }
    assert!(!project.dir().join("lockfile.json").exists());
}

/// An output built to attack `--install-path`: a setuid program, a symlink to `/etc/passwd`, or `bin` itself a
/// symlink to `/etc`.
fn hostile_output(project: &Project, name: &str, script: &str) {
    project.raw_recipe(
        name,
        &format!(
            "[recipe]\nname = \"{name}\"\n[targets.cpu]\n[build]\nscript = '''\nset -eu\n{script}\n'''\n"
        ),
    );
}

// See: issue 8, defect 5 (`--install-path` follows symlinks out of the output).
#[test]
fn install_never_follows_a_symlink_nor_copies_setuid_bits() {
    let project = Project::new(&[]);
    hostile_output(
        &project,
        "setuid",
        "mkdir -p \"$out/bin\" \"$out/lib\"\nprintf '#!/bin/sh\\necho tool\\n' > \"$out/bin/tool\"\n\
         chmod 0755 \"$out/bin/tool\"\n(chmod 4755 \"$out/bin/tool\" 2>/dev/null || true)\necho data > \"$out/lib/data\"\nln -s ../lib/data \"$out/bin/data-link\"",
    );
    hostile_output(
        &project,
        "passwd",
        "mkdir -p \"$out/etc\"\nln -s /etc/passwd \"$out/etc/passwd\"",
    );
    hostile_output(&project, "etc-bin", "ln -s /etc \"$out/bin\"");
    project.run(&["lock"]).success();

    // The sandbox refuses the setuid bit (seccomp, issue 8 defect 4), and install takes modes from the store's tree,
    // which keeps only the executable bit: either way no setuid bit is installed. A relative link inside the output is. A planted temp-name symlink in the
    // prefix is neither followed nor removed, and its victim is untouched.
    let prefix = project.dir().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).expect("create prefix/bin");
    let victim = project.dir().join("victim");
    std::fs::write(&victim, "precious\n").expect("write victim");
    std::os::unix::fs::symlink(&victim, prefix.join("bin/.tool.hstore-tmp")).expect("plant link");
    project
        .run(&[
            "build",
            "setuid",
            "--target",
            "cpu",
            "--install-path",
            "prefix",
        ])
        .success();
    let mode = std::fs::metadata(prefix.join("bin/tool"))
        .expect("installed tool")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "mode {mode:o}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert!(
        std::fs::symlink_metadata(prefix.join("bin/.tool.hstore-tmp"))
            .expect("planted link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(prefix.join("bin/data-link")).expect("installed relative link"),
        "data\n"
    );

    // A link out of the output is refused before anything is written.
    let refused = project
        .run(&[
            "build",
            "passwd",
            "--target",
            "cpu",
            "--install-path",
            "prefix2",
        ])
        .code(2);
    assert!(
        refused.stderr.contains("`etc/passwd`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("/etc/passwd"), "{}", refused.stderr);
    assert!(!project.dir().join("prefix2/etc").exists());

    // `ln -s /etc $out/bin` copies nothing of /etc.
    let refused = project
        .run(&[
            "build",
            "etc-bin",
            "--target",
            "cpu",
            "--install-path",
            "prefix3",
        ])
        .code(2);
    assert!(refused.stderr.contains("`bin`"), "{}", refused.stderr);
    assert!(!project.dir().join("prefix3/bin").exists());

    // A symlink the prefix already holds where the output has a directory is refused, not entered.
    let elsewhere = project.dir().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("create elsewhere");
    let prefix4 = project.dir().join("prefix4");
    std::fs::create_dir_all(&prefix4).expect("create prefix4");
    std::os::unix::fs::symlink(&elsewhere, prefix4.join("bin")).expect("plant bin link");
    let refused = project
        .run(&[
            "build",
            "setuid",
            "--target",
            "cpu",
            "--install-path",
            "prefix4",
        ])
        .code(2);
    assert!(
        refused.stderr.contains("not a directory"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere)
            .expect("list elsewhere")
            .count(),
        0
    );
}

#[test]
fn a_missing_command_gets_a_hint_about_declaring_the_tool() {
    let project = Project::new(&[]);
    hostile_output(&project, "needs-tool", "frobnicate --version");
    project.run(&["lock"]).success();
    let failed = project
        .run(&["build", "needs-tool", "--target", "cpu"])
        .code(2);
    let hint = failed
        .stderr
        .lines()
        .find(|line| line.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no hint:\n{}", failed.stderr));
    assert!(
        hint.contains("`frobnicate` is not in the sandbox"),
        "{hint}"
    );
    assert!(hint.contains("host_paths"), "{hint}");
    assert!(!hint.contains("no network"), "{hint}");
}

/// The seed's installer options, hstore's way: a recipe variant (`extends`) pinning another source, a local
/// checkout standing in for a locked source (`--override-input`, the seed's `--infinicore-src`: a new key, named in
/// the log), and a case's components switched on and off (`--component`, the seed's `--install-infinicore`).
#[test]
fn variants_local_checkouts_and_components_of_a_deployment_case() {
    let project = chain_project();
    let alt_src = project.dir().join("lib-alt-src");
    std::fs::create_dir_all(&alt_src).expect("create lib-alt-src");
    std::fs::write(alt_src.join("greet.c"), GREET_C.replace("v1", "alt"))
        .expect("write alt greet.c");
    project.raw_recipe(
        "lib-alt",
        "[recipe]\nname = \"lib-alt\"\nextends = \"lib\"\n[sources.code]\npath = \"../lib-alt-src\"\n",
    );
    project.run(&["lock"]).success();
    let variant = project
        .run(&["build", "lib-alt", "--target", "cpu", "--out-link", "alt"])
        .success();
    assert!(
        variant.stderr.contains("Built lib-alt"),
        "{}",
        variant.stderr
    );
    assert!(project.dir().join("alt/lib/libgreet.so").is_file());

    // A local checkout of `lib`'s source: `lib` and everything reading it get new keys; the log names the directory.
    let before = dry_run(&project, "pkg");
    project.run(&["build", "pkg", "--target", "cpu"]).success();
    let checkout = project.dir().join("my-lib-checkout");
    std::fs::create_dir_all(&checkout).expect("create checkout");
    std::fs::write(checkout.join("greet.c"), GREET_C.replace("v1", "local"))
        .expect("write local greet.c");
    let flag = format!("lib.code={}", checkout.display());
    let keys = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["build", "pkg", "--target", "cpu", "--dry-run"];
        args.extend_from_slice(extra);
        project
            .run(&args)
            .success()
            .stdout
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let pinned = keys(&[]);
    let local = keys(&["--override-input", &flag]);
    assert_eq!(before.len(), 3);
    assert!(
        pinned.iter().all(|line| line.ends_with("cached")),
        "{pinned:?}"
    );
    assert!(
        local.iter().all(|line| line.ends_with("will build")),
        "{local:?}"
    );
    let overridden = project
        .run(&[
            "build",
            "pkg",
            "--target",
            "cpu",
            "--override-input",
            &flag,
            "--install-path",
            "local-prefix",
        ])
        .success();
    assert!(
        overridden.stderr.contains("Overriding lib.code with"),
        "{}",
        overridden.stderr
    );
    let ran = Command::new(project.dir().join("local-prefix/bin/prog"))
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run local-prefix/bin/prog");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "prog says local\n");
    let lib_key = local[0].split(' ').nth(2).expect("lib's key").to_owned();
    let log = project.run(&["log", &lib_key]).success();
    assert!(
        log.stdout
            .starts_with("hstore: input `code` is the local directory `")
            && log.stdout.contains("my-lib-checkout"),
        "{}",
        log.stdout
    );
    // The pinned build is still the cached one.
    assert_eq!(keys(&[]), pinned);

    // Bad overrides name what is wrong, with a hint that fits.
    let missing = project
        .run(&[
            "build",
            "prog",
            "--target",
            "cpu",
            "--override-input",
            "lib.code=/nonexistent/lib",
        ])
        .code(2);
    assert!(
        missing
            .stderr
            .contains("the source directory `/nonexistent/lib` given for `lib.code` was not found")
            && missing
                .stderr
                .contains("hint: pass the path of a local checkout of the directory `../lib-src`"),
        "{}",
        missing.stderr
    );
    let unknown = project
        .run(&[
            "build",
            "prog",
            "--target",
            "cpu",
            "--override-input",
            "lib.nope=.",
        ])
        .code(2);
    assert!(
        unknown
            .stderr
            .contains("recipe `lib` has no source `nope`; its sources: code"),
        "{}",
        unknown.stderr
    );
    let not_a_tree = project
        .run(&[
            "build",
            "prog",
            "--target",
            "cpu",
            "--override-input",
            "prog.lib=.",
        ])
        .code(2);
    assert!(
        not_a_tree
            .stderr
            .contains("is a recipe source: a local directory cannot stand in for it"),
        "{}",
        not_a_tree.stderr
    );
    // The seed's flag names the recipe it was made for.
    let seed_flag = project
        .run(&[
            "build",
            "prog",
            "--target",
            "cpu",
            "--infinicore-src",
            "../InfiniCore",
        ])
        .code(2);
    assert!(
        seed_flag.stderr.contains("no recipe is named `infinicore`"),
        "{}",
        seed_flag.stderr
    );

    // Components of a case: `false` leaves one out of the prefix (still built as a dependency), `true` adds one.
    std::fs::create_dir_all(project.dir().join("recipes/cases")).expect("cases dir");
    std::fs::write(
        project.dir().join("recipes/cases/both.toml"),
        "[case]\nrecipes = [\"prog\", \"lib-alt\"]\ntarget = \"cpu\"\ninstall_path = \"case-prefix\"\n",
    )
    .expect("write case");
    project
        .run(&[
            "build",
            "--deployment-case",
            "both",
            "--component",
            "lib=false",
        ])
        .success();
    assert!(project.dir().join("case-prefix/bin/prog").is_file());
    assert!(
        !project.dir().join("case-prefix/lib").exists(),
        "`lib=false` leaves out `lib` and its variant `lib-alt`"
    );
    let added = project
        .run(&[
            "build",
            "--deployment-case",
            "both",
            "--component",
            "pkg=true",
            "--component",
            "lib=auto",
        ])
        .success();
    assert!(added.stderr.contains("Installed pkg"), "{}", added.stderr);
    assert!(
        added.stderr.contains("Installed lib-alt"),
        "{}",
        added.stderr
    );
    let wrong = project
        .run(&[
            "build",
            "--deployment-case",
            "both",
            "--install-infinilm",
            "false",
        ])
        .code(2);
    assert!(
        wrong
            .stderr
            .contains("no recipe is named `infinilm` or extends it"),
        "{}",
        wrong.stderr
    );
}

// See: issue 20, attack 5 (`--install-path` with a chain of relative links resolving to /etc/passwd).
#[test]
fn install_refuses_a_chain_of_relative_links_that_leaves_the_prefix() {
    let project = Project::new(&[]);
    // Each link's text stays inside the output, but `s/..` climbs above wherever `s` points: `t1` is the prefix's
    // parent, `t6` six levels higher, and `pw` the host's /etc/passwd.
    hostile_output(
        &project,
        "chain",
        "mkdir -p \"$out/a/b\"\ncd \"$out/a/b\"\nln -s ../.. s\nln -s s/.. t1\n\
         for i in 2 3 4 5 6; do ln -s \"t$((i - 1))/..\" \"t$i\"; done\nln -s t6/etc/passwd pw",
    );
    // The shapes real outputs have: versioned libraries, `lib64 -> lib`, links across the output.
    hostile_output(
        &project,
        "links",
        "mkdir -p \"$out/bin\" \"$out/lib\" \"$out/share/doc\"\necho lib > \"$out/lib/libx.so.1\"\n\
         ln -s libx.so.1 \"$out/lib/libx.so\"\nln -s lib \"$out/lib64\"\nln -s ../lib/libx.so \"$out/bin/x\"\n\
         ln -s ../../lib64/libx.so.1 \"$out/share/doc/x\"\nln -s ./lib/./libx.so \"$out/top\"",
    );
    project.run(&["lock"]).success();

    let refused = project
        .run(&[
            "build",
            "chain",
            "--target",
            "cpu",
            "--install-path",
            "prefix/a/b",
        ])
        .code(2);
    assert!(refused.stderr.contains("`a/b/t1`"), "{}", refused.stderr);
    assert!(refused.stderr.contains("`s/..`"), "{}", refused.stderr);
    assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    // Refused before anything was written.
    assert!(!project.dir().join("prefix/a/b/a").exists());

    project
        .run(&[
            "build",
            "links",
            "--target",
            "cpu",
            "--install-path",
            "prefix2",
        ])
        .success();
    for link in [
        "lib/libx.so",
        "lib64/libx.so.1",
        "bin/x",
        "share/doc/x",
        "top",
    ] {
        assert_eq!(
            std::fs::read_to_string(project.dir().join("prefix2").join(link)).expect(link),
            "lib\n",
            "{link}"
        );
    }
}

/// A project whose `app` has a `path` source `code` for every target, and, for target `gpu` only, a `recipe = "dep"`
/// source and a `path` source `blob` (issue 21, item 2). `dep` declares `gpu` only: `cpu` never needs it.
fn targets_project() -> Project {
    let project = Project::new(&[("code.txt", "shared code\n")]);
    for (dir, file, text) in [
        ("gpu-src", "kernel.txt", "gpu kernel v1\n"),
        ("dep-src", "dep.txt", "the dependency\n"),
    ] {
        std::fs::create_dir_all(project.dir().join(dir)).expect("create source dir");
        std::fs::write(project.dir().join(dir).join(file), text).expect("write source");
    }
    project.raw_recipe(
        "dep",
        "[recipe]\nname = \"dep\"\n[sources.code]\npath = \"../dep-src\"\n[targets.gpu]\n[build]\nscript = '''\n\
         set -eu\nmkdir -p \"$out\"\ncp \"$src_code/dep.txt\" \"$out/\"\n'''\n",
    );
    project.raw_recipe("app", &app_recipe("[\"gpu\"]"));
    project
}

/// `app` of [`targets_project`], with `targets` of its `blob` source as given (TOML).
fn app_recipe(blob_targets: &str) -> String {
    format!(
        "[recipe]\nname = \"app\"\n[sources.code]\npath = \"../src\"\n\
         [sources.dep]\nrecipe = \"dep\"\ntargets = [\"gpu\"]\n\
         [sources.blob]\npath = \"../gpu-src\"\ntargets = {blob_targets}\n\
         [targets.cpu]\n[targets.gpu]\n[build]\nscript = '''\nset -eu\nmkdir -p \"$out\"\n\
         echo \"code=$(cat \"$src_code/code.txt\") dep=${{src_dep:-unset}} blob=${{src_blob:-unset}}\" > \"$out/seen\"\n\
         if [ -n \"${{src_dep:-}}\" ]; then cat \"$src_dep/dep.txt\" \"$src_blob/kernel.txt\" >> \"$out/seen\"; fi\n'''\n"
    )
}

/// `(recipe, key)` of each node `build app --target TARGET --dry-run` lists.
fn planned(project: &Project, target: &str) -> Vec<(String, String)> {
    project
        .run(&["build", "app", "--target", target, "--dry-run"])
        .success()
        .stdout
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(words[1], target, "{line}");
            (words[0].to_owned(), words[2].to_owned())
        })
        .collect()
}

/// The lockfile's address of the artifact of source `source` of recipe `recipe`.
fn locked_address(project: &Project, recipe: &str, source: &str) -> String {
    let lockfile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.dir().join("lockfile.json")).expect("read lockfile"),
    )
    .expect("parse lockfile");
    let id = lockfile["recipes"]
        .as_array()
        .expect("recipes")
        .iter()
        .find(|r| r["name"] == recipe)
        .and_then(|r| r["sources"].as_array())
        .and_then(|sources| sources.iter().find(|s| s["name"] == source))
        .map(|s| s["artifacts"][0].clone())
        .expect("source");
    lockfile["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["address"].as_str().expect("address").to_owned())
        .expect("artifact")
}

// See: issue 21, item 2 (sources that belong to some targets only).
#[test]
fn a_source_limited_to_gpu_is_not_built_bound_or_keyed_for_cpu() {
    let project = targets_project();
    project.run(&["lock"]).success();
    let lockfile = std::fs::read_to_string(project.dir().join("lockfile.json")).expect("lockfile");
    assert_eq!(
        lockfile.matches("\"targets\": [\n").count(),
        2,
        "{lockfile}"
    );

    // cpu: one node, no dependency built, nothing of the gpu sources bound.
    let cpu = planned(&project, "cpu");
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(cpu[0].0, "app");
    let built = project
        .run(&["build", "app", "--target", "cpu", "--out-link", "out-cpu"])
        .success();
    assert_eq!(
        built_and_fresh(&built).0,
        strings(&["app"]),
        "{}",
        built.stderr
    );
    assert_eq!(
        project.output_file("out-cpu", "seen"),
        "code=shared code dep=unset blob=unset\n"
    );

    // gpu: the dependency first, then `app` with both inputs.
    let gpu = planned(&project, "gpu");
    assert_eq!(
        gpu.iter()
            .map(|(recipe, _)| recipe.as_str())
            .collect::<Vec<_>>(),
        ["dep", "app"]
    );
    let built = project
        .run(&["build", "app", "--target", "gpu", "--out-link", "out-gpu"])
        .success();
    assert_eq!(
        built_and_fresh(&built).0,
        strings(&["app", "dep"]),
        "{}",
        built.stderr
    );
    let seen = project.output_file("out-gpu", "seen");
    assert!(
        seen.contains("the dependency\ngpu kernel v1\n") && !seen.contains("unset"),
        "{seen}"
    );

    // A new gpu kernel changes gpu's key, never cpu's: cpu stays built.
    std::fs::write(project.dir().join("gpu-src/kernel.txt"), "gpu kernel v2\n").expect("write");
    project.run(&["lock"]).success();
    assert_eq!(planned(&project, "cpu"), cpu);
    assert_ne!(planned(&project, "gpu")[1], gpu[1]);
    let fresh = project.run(&["build", "app", "--target", "cpu"]).success();
    assert_eq!(
        built_and_fresh(&fresh),
        (vec![], strings(&["app"])),
        "{}",
        fresh.stderr
    );

    // Changing `targets` is a recipe change `--locked` sees.
    project.raw_recipe("app", &app_recipe("[\"cpu\", \"gpu\"]"));
    let stale = project.run(&["lock", "--locked"]).code(1);
    assert!(
        stale.stderr.contains("app.blob") && stale.stderr.contains("targets=cpu,gpu"),
        "{}",
        stale.stderr
    );

    // A target the recipe does not declare is refused, naming the file, the source and the target.
    project.raw_recipe("app", &app_recipe("[\"tpu\"]"));
    let unknown = project.run(&["lock"]).code(2);
    assert!(
        unknown.stderr.contains("app.toml")
            && unknown
                .stderr
                .contains("source `blob` has `targets` naming target `tpu`, which this recipe does not declare")
            && unknown.stderr.contains("hint:")
            && unknown.stderr.contains("cpu, gpu"),
        "{}",
        unknown.stderr
    );
}

// See: issue 21, item 2: `fetch`, `export` and `cache push|pull` with `--target` leave out what only other targets
// read.
#[test]
fn fetch_export_and_cache_for_a_target_leave_out_the_sources_of_other_targets() {
    let project = targets_project();
    project.run(&["lock"]).success();
    let (code, blob) = (
        locked_address(&project, "app", "code"),
        locked_address(&project, "app", "blob"),
    );
    let ls = |store: &Path| -> String { project.run_in(store, &["store", "ls"]).success().stdout };

    // A fresh store fetched for cpu holds `code` (and dep's source: `dep` is a recipe of its own), not `blob`.
    let fresh = project.env.root().join("fresh-store");
    let fetched = project
        .run_in(&fresh, &["fetch", "--target", "cpu"])
        .success();
    assert!(
        fetched.stderr.contains("for target `cpu`"),
        "{}",
        fetched.stderr
    );
    let held = ls(&fresh);
    assert!(held.contains(&code) && !held.contains(&blob), "{held}");
    let roots = std::fs::read_dir(fresh.join("roots-v1"))
        .expect("roots")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    assert!(
        roots.len() == 1 && roots[0].starts_with("lockfile-") && roots[0].ends_with("-cpu.json"),
        "{roots:?}"
    );
    project.run_in(&fresh, &["store", "verify"]).success();
    // Without a target, everything, as before.
    let whole = project.env.root().join("whole-store");
    project.run_in(&whole, &["fetch"]).success();
    assert!(ls(&whole).contains(&blob));

    // A bundle exported for cpu carries neither the blob nor a root naming it; imported, the store lacks it.
    project
        .run(&["export", "--target", "cpu", "-o", "cpu.hsb"])
        .success();
    let inspected: serde_json::Value = serde_json::from_str(
        &project
            .run(&["bundle", "inspect", "cpu.hsb", "--json"])
            .success()
            .stdout,
    )
    .expect("inspect json");
    let roots = inspected["roots"].as_object().expect("roots");
    assert_eq!(roots.len(), 1, "{inspected}");
    let (name, root) = roots.iter().next().expect("a root");
    assert!(name.ends_with("-cpu"), "{name}");
    let addresses = root["addresses"].to_string();
    assert!(
        addresses.contains(&code) && !addresses.contains(&blob),
        "{addresses}"
    );
    let imported = project.env.root().join("imported-store");
    project.run_in(&imported, &["import", "cpu.hsb"]).success();
    let held = ls(&imported);
    assert!(held.contains(&code) && !held.contains(&blob), "{held}");

    // A cache pushed for cpu, and pulled for cpu into a fresh store, holds no blob either.
    let cache = format!("file://{}", project.env.root().join("cache").display());
    project
        .run(&["cache", "push", &cache, "--target", "cpu"])
        .success();
    let pulled = project.env.root().join("pulled-store");
    let pull = project
        .run_in(&pulled, &["cache", "pull", &cache, "--target", "cpu"])
        .success();
    assert!(pull.stderr.contains("-cpu`"), "{}", pull.stderr);
    let held = ls(&pulled);
    assert!(held.contains(&code) && !held.contains(&blob), "{held}");
}

/// Issue 21: `--install-path` installs the run-time closure. `prog` links `lib` (`runtime = true`) and was compiled
/// with `tool`'s output (a build-time dependency, as xmake or a CUDA compiler is): the prefix gets `prog` and `lib`,
/// `prog` finds `libgreet.so` there at run time, and nothing of `tool` is installed.
#[test]
fn install_path_installs_the_runtime_closure_and_leaves_build_tools_out() {
    let project = Project::new(&[]);
    write_library_and_program_sources(&project);
    project.raw_recipe(
        "tool",
        "[recipe]\nname = \"tool\"\n[targets.cpu]\n[build]\nscript = '''\nset -eu\nmkdir -p \"$out/bin\"\n\
         printf '%s\\n' '-O2' > \"$out/bin/tool-flags\"\n'''\n",
    );
    project.raw_recipe(
        "prog",
        "[recipe]\nname = \"prog\"\n[sources.code]\npath = \"../prog-src\"\n[sources.lib]\nrecipe = \"lib\"\n\
         runtime = true\n[sources.tool]\nrecipe = \"tool\"\n[targets.cpu]\n[build]\nscript = '''\nset -eu\n\
         mkdir -p \"$out/bin\"\ncc $(cat \"$src_tool/bin/tool-flags\") -o \"$out/bin/prog\" \"$src_code/main.c\" \
         -L\"$src_lib/lib\" -lgreet -Wl,-rpath,'$ORIGIN/../lib'\n'''\n",
    );
    project.run(&["lock"]).success();
    let lockfile =
        std::fs::read_to_string(project.dir().join("lockfile.json")).expect("read lockfile");
    assert!(lockfile.contains("\"runtime\": true"), "{lockfile}");

    let installed = project.run(&[
        "build",
        "prog",
        "--target",
        "cpu",
        "--install-path",
        "prefix",
    ]);
    let installed = installed.success();
    assert!(
        installed.stderr.contains("Installed lib"),
        "{}",
        installed.stderr
    );
    assert!(
        installed.stderr.contains("Installed prog"),
        "{}",
        installed.stderr
    );
    assert!(
        !installed.stderr.contains("Installed tool"),
        "{}",
        installed.stderr
    );
    assert!(project.dir().join("prefix/lib/libgreet.so").is_file());
    assert!(!project.dir().join("prefix/bin/tool-flags").exists());
    assert!(!run_from_prefix(&project.dir().join("prefix/bin/prog")).is_empty());

    // Both requested, as a deployment case names them: `lib` is in `prog`'s closure too, and is installed once.
    let both = project
        .run(&[
            "build",
            "lib",
            "prog",
            "--target",
            "cpu",
            "--install-path",
            "prefix-both",
        ])
        .success();
    assert_eq!(
        both.stderr.matches("Installed lib").count(),
        1,
        "{}",
        both.stderr
    );
    assert!(both.stderr.contains("Installed prog"), "{}", both.stderr);
}
