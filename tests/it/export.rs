//! `hstore export`: round trips into a store with no network, determinism, incremental bundles, build roots.

use std::fs;
use std::process::Stdio;

use hstore_store::Digest;

use crate::support::{Env, parse, write_tree};

/// The root `hstore fetch` registers for a lockfile: `lockfile-` + 16 hex of the BLAKE3 of its bytes.
fn lockfile_root(bytes: &[u8]) -> String {
    format!("lockfile-{}", &blake3::hash(bytes).to_hex()[..16])
}

#[test]
fn round_trip_into_a_store_without_network() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    fs::create_dir_all(env.path("other")).unwrap();
    fs::write(env.path("other/x"), "shared text\n".repeat(10)).unwrap();
    let tree = env.add("src", &env.path("tree"));
    let other = env.add("src", &env.path("other"));
    let lockfile = env.lockfile("lockfile.json", &[("tree", tree), ("other", other)]);
    // Something in the source store that the lockfile does not name must not travel.
    fs::write(env.path("unrelated"), "not in the closure").unwrap();
    env.add("src", &env.path("unrelated"));

    env.ok(env.hstore("src").args(["export", "-o", "bundle.hsb"]));
    let bundle = fs::read(env.path("bundle.hsb")).unwrap();
    // The import runs where there is no network at all.
    let stderr = {
        let output = env
            .hstore_offline("dest")
            .args(["import", "bundle.hsb"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stderr).unwrap()
    };
    assert!(stderr.contains("Imported"), "{stderr}");
    env.verify_clean("dest");

    let lockfile_bytes = fs::read(&lockfile).unwrap();
    let root_name = lockfile_root(&lockfile_bytes);
    assert_eq!(env.roots("dest"), vec![format!("{root_name}.json")]);
    let root: serde_json::Value = serde_json::from_slice(
        &fs::read(env.path("dest/roots-v1").join(format!("{root_name}.json"))).unwrap(),
    )
    .unwrap();
    let lockfile_blob = Digest::of_bytes(&lockfile_bytes).to_string();
    let mut expected = vec![tree.to_string(), other.to_string(), lockfile_blob.clone()];
    expected.sort();
    assert_eq!(root["addresses"], serde_json::json!(expected));

    // The destination holds exactly the closure: the source minus the unrelated blob.
    let dest = env.ls("dest");
    let unrelated = Digest::of_bytes(b"not in the closure").to_string();
    let source: Vec<String> = env
        .ls("src")
        .into_iter()
        .filter(|line| !line.starts_with(&unrelated))
        .collect();
    assert_eq!(dest, source);
    assert_eq!(parse(&bundle).records.len(), dest.len());

    // The lockfile is there as a blob, and the tree materializes identically.
    let cat = env.ok(env.hstore("dest").args(["store", "cat", &lockfile_blob]));
    assert_eq!(cat.as_bytes(), lockfile_bytes.as_slice());
    env.ok(env
        .hstore("dest")
        .args(["store", "materialize", &tree.to_string()])
        .arg(env.path("out")));
    assert_eq!(env.add("dest", &env.path("out")), tree);
}

#[test]
fn export_is_deterministic_and_pipes_to_import() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    let tree = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env.hstore("src").args(["export", "-o", "a.hsb"]));
    env.ok(env.hstore("src").args(["export", "-o", "b.hsb"]));
    assert_eq!(
        fs::read(env.path("a.hsb")).unwrap(),
        fs::read(env.path("b.hsb")).unwrap()
    );

    // `export -o - | import -`, as over ssh.
    let mut export = env
        .hstore("src")
        .args(["export", "-o", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = env
        .hstore("dest")
        .args(["import", "-"])
        .stdin(export.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(export.wait().unwrap().success());
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    env.verify_clean("dest");
    assert_eq!(env.ls("dest"), env.ls("src"));
}

#[test]
fn incremental_export_ships_only_the_changed_file_and_its_directories() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    let v1 = env.add("src", &env.path("tree"));
    env.lockfile("v1.json", &[("tree", v1)]);
    env.ok(env
        .hstore("src")
        .args(["export", "--lockfile", "v1.json", "-o", "v1.hsb"]));
    env.ok(env.hstore("dest").args(["import", "v1.hsb"]));

    // Air-gapped side: what do we have?
    let inventory = env.ok(env.hstore("dest").args(["store", "inventory"]));
    fs::write(env.path("have.json"), &inventory).unwrap();

    // Connected side: a new commit changes one file, two levels down.
    write_tree(&env.path("tree"), "2");
    let v2 = env.add("src", &env.path("tree"));
    assert_ne!(v1, v2);
    env.lockfile("v2.json", &[("tree", v2)]);
    env.ok(env.hstore("src").args([
        "export",
        "--lockfile",
        "v2.json",
        "--exclude",
        "have.json",
        "-o",
        "v2.hsb",
    ]));
    let parsed = parse(&fs::read(env.path("v2.hsb")).unwrap());
    let kinds: Vec<&str> = parsed.manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| object[1].as_str().unwrap())
        .collect();
    // version.txt, src/deep, src, the tree root, and the new lockfile blob; none of the unchanged files.
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "blob").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "dir").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(parsed.records.len(), 5);

    env.ok(env.hstore("dest").args(["import", "v2.hsb"]));
    env.verify_clean("dest");
    env.ok(env
        .hstore("dest")
        .args(["store", "materialize", &v2.to_string()])
        .arg(env.path("out")));
    assert_eq!(
        fs::read(env.path("out/src/deep/version.txt")).unwrap(),
        "version 2\n".repeat(30).into_bytes()
    );
    assert_eq!(env.roots("dest").len(), 2);

    // Against an inventory that lacks the closure, nothing may be skipped: the bundle is self-contained.
    env.ok(env
        .hstore("src")
        .args(["export", "--lockfile", "v2.json", "-o", "full.hsb"]));
    assert_eq!(
        parse(&fs::read(env.path("full.hsb")).unwrap())
            .records
            .len(),
        9
    );
}

#[test]
fn with_builds_carries_build_roots_and_records() {
    let env = Env::new();
    write_tree(&env.path("tree"), "1");
    let source = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", source)]);
    fs::create_dir_all(env.path("outdir/bin")).unwrap();
    fs::write(env.path("outdir/bin/tool"), "#!/bin/sh\necho built\n").unwrap();
    let output = env.add("src", &env.path("outdir"));
    // A recorded build, in the store's documented layout (roots-v1/, meta-v1/build/), with every field of a build
    // record: import checks records against their schema.
    let key = Digest::of_bytes(b"demo-cpu");
    let log = Digest::of_bytes(b"#!/bin/sh\necho built\n");
    let record = serde_json::json!({
        "key": key, "recipe": "demo", "target": "cpu", "output": output, "log": log,
        "inputs": {}, "fingerprints": {},
    });
    fs::write(
        env.path(&format!("src/roots-v1/build-{}.json", key.to_hex())),
        serde_json::to_vec(
            &serde_json::json!({"description": "build demo", "addresses": [output.to_string()]}),
        )
        .unwrap(),
    )
    .unwrap();
    fs::create_dir_all(env.path("src/meta-v1/build")).unwrap();
    fs::write(
        env.path(&format!("src/meta-v1/build/{}.json", key.to_hex())),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();

    env.ok(env.hstore("src").args(["export", "-o", "plain.hsb"]));
    env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "release"]));
    env.ok(env.hstore("src").args([
        "export",
        "--with-builds",
        "--sign",
        "release.secret",
        "-o",
        "builds.hsb",
    ]));
    let plain = parse(&fs::read(env.path("plain.hsb")).unwrap());
    let builds = parse(&fs::read(env.path("builds.hsb")).unwrap());
    let root_name = format!("build-{}", key.to_hex());
    assert!(plain.manifest["roots"].get(&root_name).is_none());
    assert!(builds.manifest["roots"].get(&root_name).is_some());
    assert_eq!(builds.records.len(), plain.records.len() + 3); // tool blob, bin/, outdir/

    // Records come in on a trusted signature only (issue 20).
    env.ok(env
        .hstore("dest")
        .args(["import", "--trust", "release.pub", "builds.hsb"]));
    env.verify_clean("dest");
    assert!(env.roots("dest").contains(&format!("{root_name}.json")));
    let copied: serde_json::Value = serde_json::from_slice(
        &fs::read(env.path(&format!("dest/meta-v1/build/{}.json", key.to_hex()))).unwrap(),
    )
    .unwrap();
    assert_eq!(copied, record);

    // --all takes every root without a lockfile.
    fs::remove_file(env.path("lockfile.json")).unwrap();
    env.ok(env.hstore("src").args(["export", "--all", "-o", "all.hsb"]));
    let all = parse(&fs::read(env.path("all.hsb")).unwrap());
    assert!(all.manifest["roots"].get(&root_name).is_some());
}

#[test]
fn export_names_what_is_missing() {
    let env = Env::new();
    let absent = Digest::of_bytes(b"never fetched");
    env.lockfile("lockfile.json", &[("tree", absent)]);
    let stderr = env.fails(env.hstore("src").args(["export", "-o", "b.hsb"]));
    assert!(stderr.contains(&absent.to_string()), "{stderr}");
    assert!(stderr.contains("hstore fetch"), "{stderr}");
    assert!(
        !env.path("b.hsb").exists(),
        "a failed export must not leave a bundle behind"
    );

    let stderr =
        env.fails(
            env.hstore("src")
                .args(["export", "--lockfile", "nope.json", "-o", "b.hsb"]),
        );
    assert!(stderr.contains("nope.json"), "{stderr}");
}
