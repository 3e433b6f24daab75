//! The store's trust boundary (issue 8, defects 6, 9 and 10): imported records are validated and never replace a
//! different record without trust; verify checks records, roots and the sizes directories claim; `fetch` completes
//! closures that `verify --repair` broke; a read-only store serves reads; a full disk says so; `--store` never turns a
//! foreign directory into a store; `store add` warns that gc will take what no root keeps.
//!
//! Read-only and full-disk conditions are real: a read-only bind mount and a small tmpfs, each made inside
//! `unshare -rm` (a user and mount namespace of the test's own), never on the host.

use std::fs;
use std::path::Path;
use std::process::Command;

use hstore_store::tree::{Directory, Node};
use hstore_store::{Digest, PathComponent};
use serde_json::json;

use crate::support::{Env, noise, write_tree};

/// A build record as `hstore build` writes it (the fields of `BuildRecord`).
fn build_record(key: &Digest, output: &Digest, log: &Digest) -> serde_json::Value {
    json!({
        "key": key,
        "recipe": "app",
        "target": "cpu",
        "output": output,
        "log": log,
        "inputs": {},
        "fingerprints": {},
    })
}

/// Writes the record `build/<key hex>` and its gc root into `store`, as a finished build would.
fn plant_build(env: &Env, store: &str, key: &Digest, record: &serde_json::Value, keep: &[Digest]) {
    let root = env.path(store);
    fs::create_dir_all(root.join("meta-v1/build")).unwrap();
    fs::write(
        root.join(format!("meta-v1/build/{}.json", key.to_hex())),
        serde_json::to_vec_pretty(record).unwrap(),
    )
    .unwrap();
    fs::write(
        root.join(format!("roots-v1/build-{}.json", key.to_hex())),
        serde_json::to_vec_pretty(&json!({"description": "build", "addresses": keep})).unwrap(),
    )
    .unwrap();
}

fn read_record(env: &Env, store: &str, key: &Digest) -> serde_json::Value {
    serde_json::from_slice(
        &fs::read(
            env.path(store)
                .join(format!("meta-v1/build/{}.json", key.to_hex())),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Stores a tree and a log in `store`; returns (tree, log).
fn output_and_log(env: &Env, store: &str, variant: &str) -> (Digest, Digest) {
    let dir = env.path(&format!("out-{store}-{variant}"));
    write_tree(&dir, variant);
    let tree = env.add(store, &dir);
    let log_path = env.path(&format!("log-{store}-{variant}"));
    fs::write(&log_path, format!("build log {variant}\n")).unwrap();
    let log = env.add(store, &log_path);
    (tree, log)
}

fn stderr_of(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unsigned_import_never_replaces_a_build_record_and_a_trusted_one_may() {
    let env = Env::new();
    let key = Digest::of_bytes(b"the build key");
    // The victim built `app` honestly.
    let (honest, honest_log) = output_and_log(&env, "dest", "honest");
    let honest_record = build_record(&key, &honest, &honest_log);
    plant_build(&env, "dest", &key, &honest_record, &[honest, honest_log]);
    // The attacker's store claims another output for the same key, and exports it unsigned and signed.
    let (evil, evil_log) = output_and_log(&env, "src", "evil");
    let evil_record = build_record(&key, &evil, &evil_log);
    plant_build(&env, "src", &key, &evil_record, &[evil, evil_log]);
    env.lockfile("lockfile.json", &[("evil", evil)]);
    env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "release"]));
    env.ok(env
        .hstore("src")
        .args(["export", "--with-builds", "-o", "unsigned.hsb"]));
    env.ok(env.hstore("src").args([
        "export",
        "--with-builds",
        "--sign",
        "release.secret",
        "-o",
        "signed.hsb",
    ]));

    let (code, stderr) = stderr_of(env.hstore("dest").args(["import", "unsigned.hsb"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "dropped the build record of key `{}`",
            key.to_hex()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(read_record(&env, "dest", &key), honest_record);
    env.verify_clean("dest");

    // Importing the same bundle again changes nothing either.
    env.ok(env.hstore("dest").args(["import", "unsigned.hsb"]));
    assert_eq!(read_record(&env, "dest", &key), honest_record);

    // A bundle signed by a key the user trusts may replace it.
    let (code, stderr) =
        stderr_of(
            env.hstore("dest")
                .args(["import", "--trust", "release.pub", "signed.hsb"]),
        );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("dropped"), "{stderr}");
    assert_eq!(read_record(&env, "dest", &key), evil_record);

    // The same record again: unchanged, no warning, even unsigned.
    let (code, stderr) = stderr_of(env.hstore("dest").args(["import", "unsigned.hsb"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("dropped"), "{stderr}");
    env.verify_clean("dest");
}

#[test]
fn malformed_and_foreign_records_are_refused_on_import() {
    let env = Env::new();
    let key = Digest::of_bytes(b"k");
    let (tree, log) = output_and_log(&env, "src", "a");
    env.lockfile("lockfile.json", &[("tree", tree)]);

    // A record without its `key` field (the reproduction broke the next build with "missing field `key`").
    let mut missing_key = build_record(&key, &tree, &log);
    missing_key.as_object_mut().unwrap().remove("key");
    plant_build(&env, "src", &key, &missing_key, &[tree, log]);
    env.ok(env
        .hstore("src")
        .args(["export", "--with-builds", "-o", "b1.hsb"]));
    let stderr = env.fails(env.hstore("dest").args(["import", "b1.hsb"]));
    assert!(
        stderr.contains(&format!("record `build/{}` is not valid", key.to_hex()))
            && stderr.contains("missing field `key`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(env.ls("dest").is_empty(), "refused before any object");
    assert!(!env.path("dest/meta-v1/build").exists());

    // A record filed under another key than the one it records.
    let other = Digest::of_bytes(b"other");
    plant_build(
        &env,
        "src",
        &key,
        &build_record(&other, &tree, &log),
        &[tree, log],
    );
    env.ok(env
        .hstore("src")
        .args(["export", "--with-builds", "-o", "b2.hsb"]));
    let stderr = env.fails(env.hstore("dest").args(["import", "b2.hsb"]));
    assert!(stderr.contains("records the build of key"), "{stderr}");

    // A record naming an output that is neither in the bundle nor in the store.
    let absent = Digest::of_bytes(b"absent output");
    plant_build(
        &env,
        "src",
        &key,
        &build_record(&key, &absent, &log),
        &[tree, log],
    );
    env.ok(env
        .hstore("src")
        .args(["export", "--with-builds", "-o", "b3.hsb"]));
    let stderr = env.fails(env.hstore("dest").args(["import", "b3.hsb"]));
    assert!(
        stderr.contains(&absent.to_string())
            && stderr.contains("neither in the bundle nor in the store"),
        "{stderr}"
    );
    assert!(!env.path("dest/meta-v1/build").exists());
    env.verify_clean("dest");
}

#[test]
fn verify_reports_bad_records_and_dangling_roots_and_repair_removes_the_bad_files() {
    let env = Env::new();
    let (tree, log) = output_and_log(&env, "s", "a");
    let key = Digest::of_bytes(b"k");
    let mut record = build_record(&key, &tree, &log);
    record.as_object_mut().unwrap().remove("output");
    plant_build(&env, "s", &key, &record, &[tree, log]);
    let missing = Digest::of_bytes(b"gone");
    fs::write(
        env.path("s/roots-v1/dangling.json"),
        serde_json::to_vec(&json!({"description": "d", "addresses": [missing]})).unwrap(),
    )
    .unwrap();
    fs::write(env.path("s/roots-v1/garbled.json"), "{ not json").unwrap();

    let output = env.hstore("s").args(["store", "verify"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("record `build/{}` is not valid", key.to_hex()))
            && stderr.contains("missing field `output`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "gc root `dangling` names missing object {missing}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("gc root `garbled` is not valid"),
        "{stderr}"
    );

    let output = env
        .hstore("s")
        .args(["store", "verify", "--repair"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!env.path("s/roots-v1/garbled.json").exists());
    assert!(
        !env.path(&format!("s/meta-v1/build/{}.json", key.to_hex()))
            .exists()
    );
    // A dangling root is kept: its objects can still be fetched or imported.
    assert!(env.path("s/roots-v1/dangling.json").exists());
    fs::remove_file(env.path("s/roots-v1/dangling.json")).unwrap();
    env.verify_clean("s");
}

#[test]
fn directory_sizes_are_checked_against_their_blobs() {
    let env = Env::new();
    let file = env.path("six");
    fs::write(&file, "sixsix").unwrap();
    let blob = env.add("src", &file);
    // A directory node that hashes to its name but claims 10^15 bytes for a 6-byte blob.
    let mut directory = Directory::new();
    directory.insert(
        PathComponent::new("six").unwrap(),
        Node::File {
            digest: blob,
            size: 1_000_000_000_000_000,
            executable: false,
        },
    );
    let bytes = directory.encode();
    let liar = Digest::of_bytes(&bytes);
    let shard = env.path("src/objects-v1").join(&liar.to_hex()[..2]);
    fs::create_dir_all(&shard).unwrap();
    fs::write(shard.join(format!("{}.dir", liar.to_hex())), &bytes).unwrap();
    env.lockfile("lockfile.json", &[("liar", liar)]);

    let output = env
        .hstore("src")
        .args(["store", "verify"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("corrupt tree {liar}"))
            && stderr.contains("claims 1000000000000000 bytes, but")
            && stderr.contains("holds 6"),
        "{stderr}"
    );

    env.ok(env.hstore("src").args(["export", "-o", "liar.hsb"]));
    let stderr = env.fails(env.hstore("dest").args(["import", "liar.hsb"]));
    assert!(
        stderr.contains("entry `six` claims 1000000000000000 bytes") && stderr.contains("holds 6"),
        "{stderr}"
    );
    assert!(env.roots("dest").is_empty());
    env.verify_clean("dest");
}

#[test]
fn fetch_completes_a_closure_that_repair_broke() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    let tree = env.add("s", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env.hstore("s").args(["fetch"]));
    env.verify_clean("s");

    // Damage one blob of the tree; repair drops it and leaves its parent naming a missing child.
    let blob = Digest::of_bytes("pub fn f() -> u32 { 42 }\n".repeat(50).as_bytes());
    let copy = hstore_store::Store::open(env.path("s"))
        .unwrap()
        .object_copies()
        .unwrap()
        .into_iter()
        .find(|copy| copy.digest == blob)
        .expect("the blob is stored");
    crate::store_common::flip_stored_byte(&copy.location);
    let output = env
        .hstore("s")
        .args(["store", "verify", "--repair"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let output = env.hstore("s").args(["store", "verify"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("names missing object {blob}")),
        "{stderr}"
    );

    // fetch sees the broken closure (offline: the path source is local) and restores the blob.
    let (code, stderr) = stderr_of(env.hstore_offline("s").args(["fetch", "--offline"]));
    assert_eq!(code, Some(0), "{stderr}");
    env.verify_clean("s");
    let restored = env.ok(env.hstore("s").args(["store", "cat"]).arg(blob.to_string()));
    assert_eq!(restored, "pub fn f() -> u32 { 42 }\n".repeat(50));
}

/// Runs `script` under `sh -c` in a new user and mount namespace, with `$STORE` and `$HSTORE` set.
fn in_namespace(env: &Env, store: &str, script: &str) -> (Option<i32>, String, String) {
    let output = Command::new("unshare")
        .args(["-r", "-m", "--", "sh", "-euc", script])
        .env("STORE", env.path(store))
        .env("HSTORE", env!("CARGO_BIN_EXE_hstore"))
        .env("WORK", env.path(""))
        .current_dir(env.path(""))
        .output()
        .expect("`unshare` from util-linux runs (CI installs it)");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_read_only_store_serves_every_read_command() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    let tree = env.add("ro", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env.hstore("ro").args(["fetch"]));
    let readme = Digest::of_bytes("a tree for bundle tests\n".repeat(20).as_bytes());
    fs::write(env.path("fresh.txt"), "not in the store yet\n").unwrap();

    for with_lock_file in [true, false] {
        if !with_lock_file {
            // A store copied onto read-only media without its `locks/`: reads go on without a lock.
            fs::remove_dir_all(env.path("ro/locks")).unwrap();
        }
        let _ = fs::remove_dir_all(env.path("out"));
        let _ = fs::remove_file(env.path("ro.hsb"));
        let script = format!(
            r#"mount --bind "$STORE" "$STORE"; mount -o remount,bind,ro "$STORE"
            if touch "$STORE/probe" 2>/dev/null; then echo "the bind mount is writable"; exit 99; fi
            h() {{ "$HSTORE" --store "$STORE" "$@"; }}
            h store cat {readme} > cat.out
            h store ls > ls.out
            h store verify
            h store dump {tree} > dump.nar
            h store materialize {tree} "$WORK/out"
            h export -o "$WORK/ro.hsb"
            if h store add "$WORK/fresh.txt" 2> add.err; then echo "add wrote a read-only store"; exit 98; fi
            if h store gc 2> gc.err; then echo "gc ran on a read-only store"; exit 97; fi
            echo done"#
        );
        let (code, stdout, stderr) = in_namespace(&env, "ro", &script);
        assert_eq!(
            code,
            Some(0),
            "lock file: {with_lock_file}\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(stdout.ends_with("done\n"), "{stdout}");
        assert_eq!(
            fs::read_to_string(env.path("cat.out")).unwrap(),
            "a tree for bundle tests\n".repeat(20)
        );
        assert!(
            fs::read_to_string(env.path("ls.out"))
                .unwrap()
                .contains(&tree.to_string())
        );
        assert_eq!(
            fs::read_to_string(env.path("out/README")).unwrap(),
            "a tree for bundle tests\n".repeat(20)
        );
        let add_error = fs::read_to_string(env.path("add.err")).unwrap();
        assert!(
            add_error.contains("Read-only file system") && add_error.contains("ro/tmp"),
            "{add_error}"
        );
        assert!(
            fs::read_to_string(env.path("gc.err"))
                .unwrap()
                .contains("Read-only file system")
        );
        env.ok(env.hstore("copy").args(["import", "ro.hsb"]));
        env.verify_clean("copy");
    }
}

#[test]
fn a_full_disk_during_import_says_the_disk_is_full() {
    let env = Env::new();
    fs::create_dir_all(env.path("big")).unwrap();
    for index in 0..4u64 {
        fs::write(env.path(&format!("big/part{index}")), noise(index, 2 << 20)).unwrap();
    }
    let tree = env.add("src", &env.path("big"));
    env.lockfile("lockfile.json", &[("big", tree)]);
    env.ok(env.hstore("src").args(["export", "-o", "big.hsb"]));
    fs::create_dir_all(env.path("small")).unwrap();
    let script = r#"mount -t tmpfs -o size=3m tmpfs "$STORE"
        "$HSTORE" --store "$STORE" import "$WORK/big.hsb" && exit 99
        "$HSTORE" --store "$STORE" store verify
        echo done"#;
    let (code, stdout, stderr) = in_namespace(&env, "small", script);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("the file system is full"), "{stderr}");
    assert!(!stderr.contains("damaged in transit"), "{stderr}");
    assert!(!stderr.contains("failed verification"), "{stderr}");
}

#[test]
fn store_refuses_a_directory_of_other_files() {
    let env = Env::new();
    let dir = env.path("home-dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("thesis.tex"), "precious\n").unwrap();
    let stderr = env.fails(env.hstore("home-dir").args(["store", "ls"]));
    assert!(
        stderr.contains("is not an hstore store") && stderr.contains("thesis.tex"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["thesis.tex"], "nothing was created there");

    // An empty directory, or a missing one, becomes a store.
    fs::create_dir_all(env.path("empty")).unwrap();
    env.ok(env.hstore("empty").args(["store", "ls"]));
    assert!(env.path("empty/VERSION").exists());
    // So does one a killed first open left with only the layout's own directories.
    fs::create_dir_all(env.path("half/objects-v1")).unwrap();
    fs::create_dir_all(env.path("half/tmp")).unwrap();
    env.ok(env.hstore("half").args(["store", "ls"]));
    assert!(env.path("half/VERSION").exists());
}

#[test]
fn store_add_warns_that_gc_takes_it_unless_rooted() {
    let env = Env::new();
    let file = env.path("f");
    fs::write(&file, "keep me\n").unwrap();
    let (code, stderr) = stderr_of(env.hstore("s").args(["store", "add"]).arg(&file));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("no gc root keeps") && stderr.contains("--root"),
        "{stderr}"
    );
    let (code, stderr) = stderr_of(
        env.hstore("s")
            .args(["store", "add", "--root", "mine"])
            .arg(&file),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("no gc root keeps"), "{stderr}");
    env.ok(env.hstore("s").args(["store", "gc"]));
    assert_eq!(env.ls("s").len(), 1, "the rooted blob survives gc");
    assert!(Path::new(&env.path("s/roots-v1/mine.json")).exists());
}
