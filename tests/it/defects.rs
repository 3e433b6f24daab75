//! Regression tests for the defects a user met (issue 20, "Defects a user meets today", and two lows of its item 8):
//! a lost blob read as an empty Cargo.lock, a submodule failure that said only git's words, `-q` swallowing errors
//! and hints, a network hint on every failed build, `--update` with an unknown name, host tools run by `--dry-run`
//! and `log`, terminal escapes printed raw by `log`.
//!
//! Everything runs the real `hstore` binary against loopback servers, `file://` git repositories and real builds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_store::Digest;
use hstore_test_support::{GitRepo, TestEnv, TestRegistry, sha256_hex};

use crate::common::{command, fails, hstore, lockfile_json, ok, project_with_crates, recipe};

const CRATES_RECIPE: &str = "[recipe]\nname = \"app\"\n[sources.app]\npath = \"../app\"\n[sources.crates]\ncargo_lock = \"app:Cargo.lock\"\n";

/// The lines of `stderr` that start with `hint:`.
fn hints(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("hint:"))
        .collect()
}

/// Damages every stored copy of `digest` (a loose file, or its bytes inside a pack), so that `store verify
/// --repair` drops it: an object lost the way a user loses one.
fn damage_object(store: &Path, digest: &Digest) {
    let hex = digest.to_hex();
    let mut damaged = 0;
    for suffix in ["raw", "zst", "dir"] {
        let loose = store
            .join("objects-v1")
            .join(&hex[..2])
            .join(format!("{hex}.{suffix}"));
        if loose.exists() {
            let mut bytes = std::fs::read(&loose).unwrap();
            bytes[0] ^= 0xff;
            std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&loose, bytes).unwrap();
            damaged += 1;
        }
    }
    let packs = store.join("packs-v1");
    for entry in std::fs::read_dir(&packs).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "pack") {
            continue;
        }
        // Trailer: count u64, index offset u64; index entries: digest [32], format u8, offset u64, length u64.
        let mut bytes = std::fs::read(&path).unwrap();
        let trailer = bytes.len() - 16;
        let count = u64::from_le_bytes(bytes[trailer..trailer + 8].try_into().unwrap()) as usize;
        let index =
            u64::from_le_bytes(bytes[trailer + 8..trailer + 16].try_into().unwrap()) as usize;
        for entry in 0..count {
            let at = index + entry * 49;
            if bytes[at..at + 32] != *digest.as_bytes() {
                continue;
            }
            let offset = u64::from_le_bytes(bytes[at + 33..at + 41].try_into().unwrap()) as usize;
            bytes[offset] ^= 0xff;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0, "{digest} is not stored in {}", store.display());
}

// See: issue 20, "a Cargo.lock read from a stored tree whose blob is missing is read as an empty file".
#[test]
fn a_lost_cargo_lock_blob_fails_the_lock_naming_its_address_and_fetch_brings_it_back() {
    let env = TestEnv::new();
    let registry = TestRegistry::new().crate_("alpha", "1.0.0").start();
    let app = project_with_crates(&env, &registry, &[("alpha", "1.0.0")]);
    recipe(&env, "app", CRATES_RECIPE);
    // The stat cache records only files older than its racy window (2 s): let them age, so the second lock takes
    // `Cargo.lock`'s address from the cache and finds its tree already stored, as a user's warm lock does.
    env.advance_clock(3);
    ok(&hstore(&env, &["lock"]));
    let before = std::fs::read(env.root().join("lockfile.json")).unwrap();
    assert!(String::from_utf8_lossy(&before).contains("alpha@1.0.0"));
    let blob = Digest::of_bytes(&std::fs::read(app.join("Cargo.lock")).unwrap());
    damage_object(&env.store(), &blob);
    let repair = hstore(&env, &["store", "verify", "--repair"]);
    assert_ne!(repair.status.code(), Some(2), "{repair:?}");

    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(stderr.contains(&blob.to_string()), "{stderr}");
    assert!(
        stderr.contains("`Cargo.lock`") && stderr.contains("source `app`"),
        "{stderr}"
    );
    assert!(stderr.contains("app.crates"), "{stderr}");
    let hint = hints(&stderr).join("\n");
    assert!(hint.contains("hstore fetch"), "{stderr}");
    // Nothing was written: the lockfile still pins the crate.
    assert_eq!(
        std::fs::read(env.root().join("lockfile.json")).unwrap(),
        before
    );

    // The hint holds: `fetch` stores the lost blob again (its file is unchanged), and the lock is the same.
    ok(&hstore(&env, &["fetch"]));
    ok(&hstore(&env, &["lock"]));
    assert_eq!(
        std::fs::read(env.root().join("lockfile.json")).unwrap(),
        before
    );
    ok(&hstore(&env, &["store", "verify"]));
}

/// `top` with a submodule at `sub` (by the relative URL `../sub`); returns (top, sub).
fn submodule_fixture(env: &TestEnv) -> (GitRepo, GitRepo) {
    let sub = GitRepo::init(env.root().join("git/sub"));
    sub.write("sub.txt", "sub\n");
    sub.commit("sub");
    let top = GitRepo::init(env.root().join("git/top"));
    top.write("README", "top\n");
    top.add_submodule("sub", "../sub");
    top.commit("top with sub");
    recipe(
        env,
        "g",
        &format!(
            "[recipe]\nname = \"g\"\n[sources.top]\ngit = \"{}\"\n",
            top.file_url()
        ),
    );
    (top, sub)
}

/// Asserts a submodule failure names the recipe and source, the submodule's path and pinned commit, the URL
/// tried, and hints at `--mirror` and `submodules = false`.
#[track_caller]
fn assert_names_the_submodule(stderr: &str, commit: &str, tried: &str) {
    assert!(stderr.contains("`g.top`"), "{stderr}");
    assert!(stderr.contains("submodule at `sub`"), "{stderr}");
    assert!(stderr.contains(commit), "{stderr}");
    assert!(stderr.contains(tried), "{stderr}");
    let hint = hints(stderr).join("\n");
    assert!(
        hint.contains("--mirror") && hint.contains("submodules = false"),
        "{stderr}"
    );
}

// See: issue 20, "a git source whose submodule cannot be fetched fails with git's text only".
#[test]
fn a_submodule_commit_missing_from_its_mirror_names_path_commit_and_mirror() {
    let env = TestEnv::new();
    let (_top, sub) = submodule_fixture(&env);
    // A mirror of `sub` that never had the pinned commit.
    let mirror = GitRepo::init(env.root().join("git/mirror"));
    mirror.write("other.txt", "another history\n");
    mirror.commit("unrelated");
    let rule = format!("{}={}", sub.file_url(), mirror.file_url());
    let stderr = fails(&hstore(&env, &["lock", "--mirror", &rule]), 2);
    assert_names_the_submodule(&stderr, &sub.head(), &mirror.file_url());
    assert!(!env.root().join("lockfile.json").exists());
}

// See: issue 20, the same defect with a corrupt mirror (git says `fatal: …` and nothing else).
#[test]
fn a_corrupt_submodule_mirror_names_path_commit_and_mirror_beside_gits_words() {
    let env = TestEnv::new();
    let (_top, sub) = submodule_fixture(&env);
    // A copy of `sub` whose object of `sub.txt` is gone: upload-pack dies mid-fetch.
    let broken = env.root().join("git/broken");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(sub.path())
        .arg(&broken)
        .status()
        .unwrap();
    assert!(copied.success());
    let blob = sub.git(&["rev-parse", "HEAD:sub.txt"]);
    let blob = blob.trim();
    std::fs::remove_file(
        broken
            .join(".git/objects")
            .join(&blob[..2])
            .join(&blob[2..]),
    )
    .unwrap();
    let broken_url = format!("file://{}", broken.canonicalize().unwrap().display());
    let rule = format!("{}={broken_url}", sub.file_url());
    let stderr = fails(&hstore(&env, &["lock", "--mirror", &rule]), 2);
    assert_names_the_submodule(&stderr, &sub.head(), &broken_url);
    // git's own words stay, as the cause.
    assert!(stderr.contains("caused by: git fetch failed"), "{stderr}");
}

/// A recipe with one `url` source served by `registry` at `file`.
fn url_recipe(
    env: &TestEnv,
    registry: &hstore_test_support::RunningRegistry,
    file: &str,
    bytes: &[u8],
) {
    recipe(
        env,
        "t",
        &format!(
            "[recipe]\nname = \"t\"\n[sources.f]\nurl = \"{}\"\nsha256 = \"{}\"\n",
            registry.file_url(file),
            sha256_hex(bytes)
        ),
    );
}

// See: issue 20, "`hstore lock --locked -q` on a stale lockfile exits 1 with no message".
#[test]
fn quiet_still_prints_errors_the_stale_lockfile_and_their_hints() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .file("/a.bin", b"aaa")
        .file("/b.bin", b"bbb")
        .start();
    url_recipe(&env, &registry, "/a.bin", b"aaa");
    ok(&hstore(&env, &["lock"]));
    url_recipe(&env, &registry, "/b.bin", b"bbb");
    for quiet in ["-q", "-qq"] {
        let stderr = fails(&hstore(&env, &[quiet, "lock", "--locked"]), 1);
        assert!(
            stderr.starts_with("error: `lockfile.json` is not up to date"),
            "{stderr}"
        );
        assert!(
            stderr.contains("- artifact url+") && stderr.contains("+ artifact url+"),
            "{stderr}"
        );
        assert_eq!(
            hints(&stderr),
            ["hint: run `hstore lock` without `--locked` and commit the result"],
            "{stderr}"
        );
        // A failed item and the command's error print too, each with its hint.
        std::fs::write(
            env.root().join("recipes/t.toml"),
            "[recipe]\nname = \"t\"\n[sources.f]\ngit = 3\n",
        )
        .unwrap();
        let stderr = fails(&hstore(&env, &[quiet, "lock"]), 2);
        assert!(stderr.starts_with("error: "), "{stderr}");
        url_recipe(&env, &registry, "/b.bin", b"bbb");
    }
}

// See: issue 20, "the same in `import`": the warning about a record the bundle could not replace, and its hint.
#[test]
fn quiet_import_still_prints_warnings_and_their_hints() {
    use crate::support::{Env, write_tree};
    let env = Env::new();
    let key = Digest::of_bytes(b"the build key");
    let plant = |store: &str, variant: &str| {
        let dir = env.path(&format!("out-{store}"));
        write_tree(&dir, variant);
        let output = env.add(store, &dir);
        let log_path = env.path(&format!("log-{store}"));
        std::fs::write(&log_path, format!("log {variant}\n")).unwrap();
        let log = env.add(store, &log_path);
        let record = serde_json::json!({
            "key": key, "recipe": "app", "target": "cpu", "output": output, "log": log,
            "inputs": {}, "fingerprints": {},
        });
        let root = env.path(store);
        std::fs::create_dir_all(root.join("meta-v1/build")).unwrap();
        std::fs::write(
            root.join(format!("meta-v1/build/{}.json", key.to_hex())),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        std::fs::write(
            root.join(format!("roots-v1/build-{}.json", key.to_hex())),
            serde_json::to_vec(
                &serde_json::json!({"description": "build", "addresses": [output, log]}),
            )
            .unwrap(),
        )
        .unwrap();
        output
    };
    plant("dest", "honest");
    let other = plant("src", "other");
    env.lockfile("lockfile.json", &[("other", other)]);
    env.ok(env
        .hstore("src")
        .args(["export", "--with-builds", "-o", "unsigned.hsb"]));
    let output = env
        .hstore("dest")
        .args(["-q", "import", "unsigned.hsb"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.starts_with("warning: "), "{stderr}");
    assert!(stderr.contains(&key.to_hex()), "{stderr}");
    let hint = hints(&stderr).join("\n");
    assert!(hint.contains("--trust"), "{stderr}");
    // Quiet: no status line.
    assert!(!stderr.contains("Imported"), "{stderr}");
}

/// A recipe `name` with no sources and a `cpu` target running `script`; `target_extra` is TOML for the target.
fn build_recipe(env: &TestEnv, name: &str, target_extra: &str, script: &str) {
    recipe(
        env,
        name,
        &format!(
            "[recipe]\nname = \"{name}\"\n[sources.code]\npath = \"../src\"\n[targets.cpu]\n{target_extra}\n\
             [build]\nscript = '''\nset -eu\n{script}\n'''\n"
        ),
    );
}

/// `src/` with one file, for [`build_recipe`]'s `code` source.
fn source_dir(env: &TestEnv) {
    std::fs::create_dir_all(env.root().join("src/sub")).unwrap();
    std::fs::write(
        env.root().join("src/sub/main.c"),
        "int main(void) { return 0; }\n",
    )
    .unwrap();
}

// See: issue 20, "a failed build always gets the hint `the sandbox has no network`".
#[test]
fn a_write_into_a_copied_input_gets_the_read_only_copy_hint_not_the_network_one() {
    let env = TestEnv::new();
    source_dir(&env);
    build_recipe(
        &env,
        "copy",
        "",
        "cp -r \"$src_code\" /build/code\necho generated > /build/code/sub/generated.h",
    );
    ok(&hstore(&env, &["lock"]));
    let stderr = fails(&hstore(&env, &["build", "copy", "--target", "cpu"]), 2);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let hint = hints(&stderr).join("\n");
    assert!(
        hint.contains("read-only")
            && hint.contains("chmod -R u+w")
            && hint.contains("CARGO_TARGET_DIR"),
        "{stderr}"
    );
    assert!(!hint.contains("network"), "{stderr}");
    // The advice works: the same script with the copy made writable builds.
    build_recipe(
        &env,
        "copy",
        "",
        "cp -r \"$src_code\" /build/code\nchmod -R u+w /build/code\necho generated > /build/code/sub/generated.h\n\
         cp /build/code/sub/generated.h \"$out/\"",
    );
    ok(&hstore(&env, &["lock"]));
    ok(&hstore(&env, &["build", "copy", "--target", "cpu"]));
}

#[test]
fn the_network_hint_comes_only_with_a_network_failure_in_the_log() {
    let env = TestEnv::new();
    source_dir(&env);
    // Nothing listens on the sandbox's own loopback: the connection is refused there, and nothing leaves it.
    build_recipe(
        &env,
        "net",
        "",
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 9))'",
    );
    build_recipe(&env, "fails", "", "echo 'compiling'\nexit 3");
    ok(&hstore(&env, &["lock"]));
    let stderr = fails(&hstore(&env, &["build", "net", "--target", "cpu"]), 2);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert_eq!(
        hints(&stderr),
        ["hint: the sandbox has no network: every input must come from the lockfile's sources"],
        "{stderr}"
    );
    let stderr = fails(&hstore(&env, &["build", "fails", "--target", "cpu"]), 2);
    assert!(stderr.contains("compiling"), "{stderr}");
    assert!(hints(&stderr).is_empty(), "{stderr}");
}

// See: issue 20, "`lock --update NAME` with an unknown NAME silently does nothing".
#[test]
fn update_with_an_unknown_name_fails_naming_the_sources_and_the_closest_one() {
    let env = TestEnv::new();
    let registry = TestRegistry::new().file("/a.bin", b"aaa").start();
    url_recipe(&env, &registry, "/a.bin", b"aaa");
    ok(&hstore(&env, &["lock"]));
    let before = std::fs::read(env.root().join("lockfile.json")).unwrap();
    let requests = registry.requests().len();
    let stderr = fails(&hstore(&env, &["lock", "--update", "ff"]), 2);
    assert!(
        stderr.contains("`--update ff` names no source; the sources are: t.f"),
        "{stderr}"
    );
    assert_eq!(
        hints(&stderr),
        ["hint: did you mean `--update f`?"],
        "{stderr}"
    );
    let stderr = fails(&hstore(&env, &["lock", "--update", "nothing-like-it"]), 2);
    assert!(stderr.contains("t.f"), "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");
    // Nothing was fetched or written.
    assert_eq!(registry.requests().len(), requests);
    assert_eq!(
        std::fs::read(env.root().join("lockfile.json")).unwrap(),
        before
    );
    // Both spellings of a real source still work.
    ok(&hstore(&env, &["lock", "--update", "f"]));
    ok(&hstore(&env, &["lock", "--update", "t.f"]));
    assert_eq!(
        lockfile_json(&env.root().join("lockfile.json")),
        serde_json::from_slice::<serde_json::Value>(&before).unwrap()
    );
}

/// A host tool that counts its runs in `runs` and prints a version.
fn counting_tool(env: &TestEnv) -> (PathBuf, PathBuf) {
    let runs = env.root().join("tool-runs");
    let tool = env.root().join("tool.sh");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho 'tool 1.0'\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    (tool, runs)
}

fn runs(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

// See: issue 20, item 8: "no `host_tools` on `--dry-run` of a cached build (the key comes from the record)".
#[test]
fn dry_run_and_log_of_a_cached_build_run_no_host_tool() {
    let env = TestEnv::new();
    source_dir(&env);
    let (tool, counter) = counting_tool(&env);
    let target = format!("host_tools = [\"{} --version\"]", tool.display());
    build_recipe(&env, "tooled", &target, "echo built > \"$out/built\"");
    ok(&hstore(&env, &["lock"]));
    let built = hstore(&env, &["build", "tooled", "--target", "cpu"]);
    ok(&built);
    let output = String::from_utf8(built.stdout).unwrap();
    assert_eq!(runs(&counter), 1);

    let planned = hstore(&env, &["build", "tooled", "--target", "cpu", "--dry-run"]);
    ok(&planned);
    let planned = String::from_utf8(planned.stdout).unwrap();
    assert!(planned.trim_end().ends_with(" cached"), "{planned}");
    ok(&hstore(&env, &["log", "tooled", "--target", "cpu"]));
    assert_eq!(runs(&counter), 1, "a host tool ran for --dry-run or log");
    // The key the dry run printed is the build's: the build is still a cache hit with the same output.
    let key = planned.split_whitespace().nth(2).unwrap().to_owned();
    let again = hstore(&env, &["build", "tooled", "--target", "cpu"]);
    let stderr = ok(&again);
    assert!(stderr.contains(&format!("(build key {key})")), "{stderr}");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), output);

    // Not cached (the script changed): the dry run needs the key, so the tool runs, and says it will build.
    build_recipe(&env, "tooled", &target, "echo changed > \"$out/built\"");
    ok(&hstore(&env, &["lock"]));
    let before = runs(&counter);
    let planned = hstore(&env, &["build", "tooled", "--target", "cpu", "--dry-run"]);
    ok(&planned);
    let planned = String::from_utf8(planned.stdout).unwrap();
    assert!(planned.trim_end().ends_with(" will build"), "{planned}");
    assert_eq!(runs(&counter), before + 1);
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

// See: issue 20, item 8: "`hstore log` escapes control characters on a terminal".
#[test]
fn log_escapes_terminal_controls_on_a_terminal_and_keeps_raw_bytes_in_a_pipe() {
    let env = TestEnv::new();
    source_dir(&env);
    build_recipe(
        &env,
        "noisy",
        "",
        "printf 'before\\033]0;pwned\\007\\033[2Jafter\\233\\n'\ntouch \"$out/done\"",
    );
    ok(&hstore(&env, &["lock"]));
    ok(&hstore(&env, &["build", "noisy", "--target", "cpu"]));

    let piped: Output = hstore(&env, &["log", "noisy", "--target", "cpu"]);
    ok(&piped);
    let raw = b"before\x1b]0;pwned\x07\x1b[2Jafter\x9b\n";
    assert!(
        piped.stdout.windows(raw.len()).any(|window| window == raw),
        "{:?}",
        String::from_utf8_lossy(&piped.stdout)
    );

    // `script` gives `hstore log` a pseudo-terminal as its stdout, as an interactive shell would.
    let log = command(&env, &["log", "noisy", "--target", "cpu"]);
    let line = std::iter::once(log.get_program())
        .chain(log.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut under_pty = env.command("script");
    under_pty.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
    let shown = under_pty.output().expect("run hstore log under script(1)");
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(r"before\x1b]0;pwned\x07\x1b[2Jafter\x9b"),
        "{text:?}"
    );
    assert!(
        !shown.stdout.contains(&0x1b)
            && !shown.stdout.contains(&0x07)
            && !shown.stdout.contains(&0x9b),
        "{text:?}"
    );

    // A failed build's error carries its log's tail: on a terminal it is escaped too.
    build_recipe(
        &env,
        "noisy-fail",
        "",
        "printf 'oops\\033]0;pwned\\007\\n'\nexit 4",
    );
    ok(&hstore(&env, &["lock"]));
    let build = command(&env, &["build", "noisy-fail", "--target", "cpu"]);
    let line = std::iter::once(build.get_program())
        .chain(build.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut under_pty = env.command("script");
    under_pty.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
    let failed = under_pty
        .output()
        .expect("run hstore build under script(1)");
    assert_eq!(failed.status.code(), Some(2), "{failed:?}");
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(text.contains(r"oops\x1b]0;pwned\x07"), "{text:?}");
    assert!(!failed.stdout.contains(&0x1b), "{text:?}");
}

// See: issue 20, "grep for other `unwrap_or_default` on reads": a `.gitmodules` git cannot read was taken as "no
// submodules" and locked a tree with an empty submodule directory.
#[test]
fn a_gitmodules_git_cannot_read_fails_the_lock_instead_of_emptying_the_submodule() {
    let env = TestEnv::new();
    let (top, _sub) = submodule_fixture(&env);
    top.write(
        ".gitmodules",
        "[submodule \"sub\"\n\tpath = sub\n\turl = ../sub\n",
    );
    top.git(&["add", ".gitmodules"]);
    top.commit("break .gitmodules");
    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(
        stderr.contains("invalid `.gitmodules`") && stderr.contains(&top.head()),
        "{stderr}"
    );
    assert!(!env.root().join("lockfile.json").exists());
}

// See: issue 23 ("`fetch` looks back at recipe specs for what the artifact should carry"): a cold `fetch` rebuilds a
// git tree with or without its submodules, and a `path` tree with its excludes, from the lockfile's artifacts alone
// (it no longer reads the sources' specs for them).
#[test]
fn a_cold_fetch_rebuilds_submodule_choices_and_path_excludes_from_the_artifacts_alone() {
    let env = TestEnv::new();
    let (top, _sub) = submodule_fixture(&env);
    let dir = env.root().join("local");
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("keep.txt"), "kept\n").unwrap();
    std::fs::write(dir.join("docs/skip.txt"), "skipped\n").unwrap();
    recipe(
        &env,
        "g",
        &format!(
            "[recipe]\nname = \"g\"\n[sources.with]\ngit = \"{url}\"\n[sources.without]\ngit = \"{url}\"\n\
             submodules = false\n[sources.local]\npath = \"../local\"\nexclude = [\"docs\", \"none\"]\n",
            url = top.file_url()
        ),
    );
    ok(&hstore(&env, &["lock"]));
    let before = std::fs::read(env.root().join("lockfile.json")).unwrap();
    std::fs::remove_dir_all(env.store()).unwrap();
    std::fs::create_dir_all(env.store()).unwrap();
    // An address drift (a tree rebuilt with the wrong choice) would fail the fetch.
    ok(&hstore(&env, &["fetch"]));
    ok(&hstore(&env, &["store", "verify"]));
    assert_eq!(
        std::fs::read(env.root().join("lockfile.json")).unwrap(),
        before
    );
}
