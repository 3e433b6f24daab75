//! Commands that fail for real, and the one way a failure reads (`Printer::report`): `error: …`, a `  caused by: …`
//! line per source, a blank line, then one `hint: …` line per distinct hint of the chain. Exit 2 for an error, 1 for
//! a check that found a problem (house style rule 13).

use std::process::Output;

use crate::{Cli, hints};

#[track_caller]
fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A lockfile with one recipe `app`: a git source `core` and the crates of its Cargo.lock.
pub fn lockfile(crates: &[(&str, &str, char, u64)], commit: char, tree: char) -> String {
    let registry = "registry+https://github.com/rust-lang/crates.io-index";
    let git_url = "https://example.invalid/core.git";
    let address = |digit: char| format!("b3:{}", digit.to_string().repeat(64));
    let commit = commit.to_string().repeat(40);
    let git = serde_json::json!({
        "kind": "git", "id": format!("git+{git_url}#{commit}"), "url": git_url, "commit": commit,
        "submodules": [], "address": address(tree), "size": 4096,
    });
    let mut artifacts: Vec<serde_json::Value> = crates
        .iter()
        .map(|(name, version, digit, size)| {
            serde_json::json!({
                "kind": "crate", "id": format!("crate+{registry}#{name}@{version}"), "name": name,
                "version": version, "source": registry,
                "url": format!("https://static.crates.io/crates/{name}/{name}-{version}.crate"),
                "sha256": "ab".repeat(32), "commit": null, "address": address(*digit), "size": size,
            })
        })
        .collect();
    let mut crate_ids: Vec<String> = artifacts
        .iter()
        .map(|artifact| artifact["id"].as_str().unwrap().to_owned())
        .collect();
    crate_ids.sort();
    artifacts.push(git.clone());
    artifacts.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let lockfile = serde_json::json!({
        "version": 1,
        "recipes": [{
            "name": "app",
            "sources": [
                {"name": "core", "spec": {"kind": "git", "url": git_url, "ref": "main", "submodules": false},
                 "artifacts": [git["id"]]},
                {"name": "crates", "spec": {"kind": "cargo_lock", "source": "core", "path": "Cargo.lock"},
                 "artifacts": crate_ids},
            ],
        }],
        "artifacts": artifacts,
    });
    serde_json::to_string_pretty(&lockfile).unwrap() + "\n"
}

/// The old and new lockfiles of the `diff` tests: serde bumped, itoa removed, ryu added, the git commit moved.
pub fn two_lockfiles(cli: &Cli) {
    cli.write(
        "old.json",
        lockfile(
            &[
                ("serde", "1.0.227", '1', 1000),
                ("itoa", "1.0.14", '2', 2000),
            ],
            'a',
            '4',
        ),
    );
    cli.write(
        "lockfile.json",
        lockfile(
            &[
                ("serde", "1.0.228", '3', 1100),
                ("ryu", "1.0.20", '5', 3000),
            ],
            'b',
            '6',
        ),
    );
}

/// No `lockfile.json`: every command that reads one fails alike, with the same hint.
#[test]
fn missing_lockfile() {
    let cli = Cli::new();
    let output = cli.snapshot("missing_lockfile_fetch", &["fetch", "--offline"]);
    assert_code(&output, 2);
    for args in [
        &["why", "serde"][..],
        &["export", "-o", "x.hsb"],
        &["diff", "old.json"],
    ] {
        let other = cli.run(args);
        assert_code(&other, 2);
        assert_eq!(other.stderr, output.stderr, "{args:?}");
    }
    // A named lockfile is named in the error.
    cli.snapshot(
        "missing_lockfile_named",
        &["fetch", "--offline", "--lockfile", "deploy/lockfile.json"],
    );
}

#[test]
fn invalid_lockfile() {
    let cli = Cli::new();
    cli.write("lockfile.json", "{\"version\": 1, \"recipes\": [");
    assert_code(&cli.snapshot("invalid_lockfile", &["why", "serde"]), 2);
    cli.write(
        "lockfile.json",
        "{\"version\": 7, \"recipes\": [], \"artifacts\": []}\n",
    );
    assert_code(
        &cli.snapshot("lockfile_of_another_version", &["why", "serde"]),
        2,
    );
}

/// `--store` (or `HSTORE_STORE`) naming a file: exit 2 naming the path, and the file is left alone.
#[test]
fn store_path_is_a_file() {
    let cli = Cli::new();
    cli.write("not-a-store", "a file\n");
    let output = cli.snapshot(
        "store_is_a_file",
        &["--store", "not-a-store", "store", "ls"],
    );
    assert_code(&output, 2);
    let by_env = cli
        .command(&["store", "ls"])
        .env("HSTORE_STORE", "not-a-store")
        .output()
        .unwrap();
    assert_code(&by_env, 2);
    assert_eq!(by_env.stderr, output.stderr);
    assert_eq!(
        std::fs::read_to_string(cli.root().join("not-a-store")).unwrap(),
        "a file\n"
    );
}

/// Turns the blob `hello\n` into `helln\n` wherever the store keeps a copy of it (loose, or inside a pack).
fn corrupt_hello(cli: &Cli, address: &str) {
    use std::os::unix::fs::{FileExt, PermissionsExt};
    let digest: hstore_store::Digest = address.parse().unwrap();
    let copies = hstore_store::Store::open(cli.store())
        .unwrap()
        .object_copies()
        .unwrap();
    let mut corrupted = 0;
    for copy in copies.iter().filter(|copy| copy.digest == digest) {
        let (path, at) = match &copy.location {
            hstore_store::Location::Loose(path) => (path.clone(), 4),
            hstore_store::Location::Packed { pack, offset, .. } => (pack.clone(), offset + 4),
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        assert_eq!(byte[0], b'o', "the blob is stored raw");
        file.write_all_at(b"n", at).unwrap();
        corrupted += 1;
    }
    assert!(corrupted > 0, "the blob is not stored");
}

/// A corrupt object is a failed check: exit 1, each problem a warning, and a status line that `-q` drops.
#[test]
fn verify_corrupted_object_exits_1() {
    let cli = Cli::new();
    cli.fixture_tree();
    cli.ok(&["store", "add", "--root", "fixture", "d"]);
    let hello = "b3:8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99";
    assert_eq!(
        cli.ok(&["store", "add", "--root", "hello", "d/a.txt"]),
        format!("{hello}\n")
    );
    assert_code(&cli.snapshot("verify_clean", &["store", "verify"]), 0);
    corrupt_hello(&cli, hello);
    assert_code(&cli.snapshot("verify_corrupt", &["store", "verify"]), 1);
    assert_code(
        &cli.snapshot("verify_corrupt_quiet", &["-q", "store", "verify"]),
        1,
    );
    // Repair removes it, and still exits 1: the store is not whole until fetch or import brings it back.
    assert_code(
        &cli.snapshot("verify_repair", &["store", "verify", "--repair"]),
        1,
    );
    assert_code(
        &cli.snapshot("verify_after_repair", &["store", "verify"]),
        1,
    );
    // And reading it is an error (2) with the hint to bring it back.
    assert_code(
        &cli.snapshot("cat_missing_object", &["store", "cat", hello]),
        2,
    );
}

#[test]
fn bad_address() {
    let cli = Cli::new();
    assert_code(
        &cli.snapshot("cat_not_an_address", &["store", "cat", "b3:AB"]),
        2,
    );
}

#[test]
fn bundle_inspect_of_what_is_not_a_bundle() {
    let cli = Cli::new();
    cli.write("notes.txt", "not a bundle\n");
    cli.write("empty.hsb", "");
    assert_code(
        &cli.snapshot("inspect_not_a_bundle", &["bundle", "inspect", "notes.txt"]),
        2,
    );
    assert_code(
        &cli.snapshot("inspect_empty_file", &["bundle", "inspect", "empty.hsb"]),
        2,
    );
    assert_code(
        &cli.snapshot(
            "inspect_missing_file",
            &["bundle", "inspect", "missing.hsb"],
        ),
        2,
    );
    // Standard input: the same check.
    let output = cli
        .command(&["bundle", "inspect", "-"])
        .stdin(std::fs::File::open(cli.root().join("notes.txt")).unwrap())
        .output()
        .unwrap();
    cli.assert_snapshot(
        "inspect_not_a_bundle_stdin",
        "hstore bundle inspect - < notes.txt",
        &output,
    );
    assert_code(&output, 2);
}

/// `why` of a name the lockfile does not hold: exit 2 with a hint listing what it takes; of an address, without a
/// store, a different hint.
#[test]
fn why_unknown_name() {
    let cli = Cli::new();
    two_lockfiles(&cli);
    assert_code(&cli.snapshot("why_unknown_name", &["why", "tokio"]), 2);
    assert_code(
        &cli.snapshot("why_unknown_version", &["why", "serde@1.0.227"]),
        2,
    );
    let address = format!("b3:{}", "9".repeat(64));
    let output = cli.snapshot("why_unknown_address_no_store", &["why", &address]);
    assert_code(&output, 2);
    assert!(!cli.store().join("VERSION").exists(), "why created a store");
}

/// `diff` with an OLD that is neither a file nor a revision: the hint says what OLD may be. What git said varies
/// with its version, so only its first word stays.
#[test]
fn diff_unknown_old_lockfile() {
    let mut cli = Cli::new();
    two_lockfiles(&cli);
    let output = cli.run(&["diff", "no-such-revision"]);
    assert_code(&output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Git's own words vary with where the temp dir is (one line, or two at a mount point such as a tmpfs `/tmp`).
    let git_said = stderr
        .split_once("failed: fatal: ")
        .and_then(|(_, rest)| rest.split_once("\n\nhint:"))
        .map(|(said, _)| said.to_owned())
        .expect("git's message");
    cli.replace(git_said, "[GIT]");
    cli.assert_snapshot("diff_unknown_old", "hstore diff no-such-revision", &output);
}

/// Several distinct failures, each with exactly one hint, and no hint twice.
#[test]
fn each_error_shows_its_hint_once() {
    let cli = Cli::new();
    two_lockfiles(&cli);
    for (args, hint) in [
        (
            &["fetch", "--lockfile", "nowhere.json"][..],
            "hint: run `hstore lock` to create it, or pass `--lockfile FILE`",
        ),
        (
            &[
                "store",
                "cat",
                "b3:0000000000000000000000000000000000000000000000000000000000000000",
            ],
            "hint: run `hstore fetch` on a connected machine, or `hstore import` a bundle that holds it",
        ),
        (
            &["why", "tokio"],
            "hint: give a crate, wheel or xmake package name, `name@version`, a repository name or URL, a \
             lockfile id, or a `b3:` address; `--lockfile` names another lockfile",
        ),
    ] {
        for quiet in [&[][..], &["-q"], &["-qq"]] {
            let line: Vec<&str> = quiet.iter().chain(args).copied().collect();
            let output = cli.run(&line);
            assert_code(&output, 2);
            assert_eq!(hints(&output.stderr), [hint], "{line:?}");
        }
    }
}

/// A reader of stdout that went away (`hstore store ls | head -0`) ends the command normally: exit 0, no error
/// (house style rule 13, as ripgrep and uv). The pipe's read end is closed before hstore starts, so every write
/// fails.
#[test]
fn broken_pipe_exits_0() {
    let cli = Cli::new();
    cli.fixture_tree();
    cli.ok(&["-q", "store", "add", "--root", "fixture", "d"]);
    cli.ok(&["-q", "export", "--all", "-o", "fixture.hsb"]);
    two_lockfiles(&cli);
    let tree = "b3:d3e2cb7483998fbe84ab50f06e9f5456a70106d9f50ff446b16f60e9b73b52e4";
    for args in [
        &["store", "ls"][..],
        &[
            "store",
            "cat",
            "b3:8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99",
        ],
        &["store", "dump", tree],
        &["store", "add", "d"],
        &["store", "roots", "--json"],
        &["store", "inventory"],
        &["diff", "old.json"],
        &["why", "serde"],
        &["bundle", "inspect", "fixture.hsb"],
        &["key", "generate", "--out", "piped"],
        &["--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = cli.command(args).stdout(writer).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}
