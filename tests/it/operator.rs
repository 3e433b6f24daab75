//! What an operator asks before and after carrying a lockfile across the air gap: `hstore diff` (what changed and
//! what it costs to carry), `hstore why` (which recipes hold an artifact), `hstore store roots` (what keeps what,
//! and removing a root so gc reclaims its closure). Real lockfiles, made by `hstore lock` against a loopback
//! registry and real git repositories.

use std::fs;
use std::process::Command;

use hstore_test_support::{GitRepo, TestEnv, TestRegistry};

use crate::common::{fails, hstore, lockfile_json, ok, project_with_crates, recipe};

fn stdout(output: &std::process::Output) -> String {
    ok(output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn git(env: &TestEnv, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(env.root())
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn diff_names_a_bumped_crate_a_moved_commit_and_what_to_carry_also_against_a_git_revision() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .crate_("alpha", "1.0.0")
        .crate_("beta", "0.2.1")
        .crate_("beta", "0.2.2")
        .start();
    project_with_crates(&env, &registry, &[("alpha", "1.0.0"), ("beta", "0.2.1")]);
    let repo = GitRepo::init(env.root().join("git/r"));
    repo.write("a", "1\n");
    let first = repo.commit("one");
    repo.git(&["branch", "-M", "main"]);
    recipe(
        &env,
        "app",
        &format!(
            "[recipe]\nname = \"app\"\n[sources.app]\npath = \"../app\"\n[sources.crates]\n\
             cargo_lock = \"app:Cargo.lock\"\n[sources.r]\ngit = \"{}\"\nref = \"main\"\n",
            repo.file_url()
        ),
    );
    ok(&hstore(&env, &["lock"]));
    ok(&hstore(&env, &["fetch"]));
    std::fs::copy(
        env.root().join("lockfile.json"),
        env.root().join("old.json"),
    )
    .unwrap();
    git(&env, &["init", "-q"]);
    git(&env, &["add", "lockfile.json"]);
    git(&env, &["commit", "-q", "-m", "lock"]);

    assert_eq!(
        stdout(&hstore(&env, &["diff", "old.json", "lockfile.json"])),
        "no changes: both lockfiles pin the same bytes\n"
    );
    project_with_crates(&env, &registry, &[("alpha", "1.0.0"), ("beta", "0.2.2")]);
    repo.write("a", "2\n");
    let second = repo.commit("two");
    ok(&hstore(&env, &["lock", "--update", "r"]));
    ok(&hstore(&env, &["fetch"]));

    let text = stdout(&hstore(&env, &["diff", "old.json"]));
    assert!(text.contains("recipe app\n"), "{text}");
    assert!(
        text.contains(&format!(
            "    ~ git {}: {} -> {}\n",
            repo.file_url(),
            &first[..12],
            &second[..12]
        )),
        "{text}"
    );
    assert!(
        text.contains("    ~ crate beta (sparse+http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("): 0.2.1 -> 0.2.2\n"), "{text}");
    // The path source `app` changed too (its Cargo.lock was rewritten); alpha did not change.
    assert!(
        text.contains("  source app\n") && !text.contains("alpha"),
        "{text}"
    );
    assert!(text.contains("to carry: 3 new artifacts"), "{text}");
    assert!(
        text.contains("the store holds both closures: an incremental export carries"),
        "{text}"
    );

    // The same against the committed lockfile, by revision.
    assert_eq!(stdout(&hstore(&env, &["diff", "HEAD"])), text);
    assert_eq!(
        stdout(&hstore(
            &env,
            &["diff", "HEAD:lockfile.json", "lockfile.json"]
        )),
        text
    );

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&hstore(&env, &["diff", "old.json", "--json"]))).unwrap();
    assert_eq!(json["new_artifacts"], 3);
    let crates = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|source| source["source"] == "crates")
        .unwrap();
    assert_eq!(crates["changes"][0]["change"], "changed");
    assert_eq!(crates["changes"][0]["from"]["version"], "0.2.1");
    assert_eq!(crates["changes"][0]["to"]["version"], "0.2.2");

    let error = fails(&hstore(&env, &["diff", "no-such-revision"]), 2);
    assert!(
        error.contains("`no-such-revision` is not a lockfile file"),
        "{error}"
    );
}

#[test]
fn why_follows_a_three_recipe_chain_to_an_artifact_and_to_a_file_inside_it() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.root().join("core-src/kernels")).unwrap();
    std::fs::write(env.root().join("core-src/kernels/gemm.c"), "int gemm;\n").unwrap();
    std::fs::write(env.root().join("core-src/README"), "core\n").unwrap();
    let build = "[targets.cpu]\n[build]\nscript = \"true\"\n";
    recipe(
        &env,
        "core",
        &format!("[recipe]\nname = \"core\"\n[sources.code]\npath = \"../core-src\"\n{build}"),
    );
    recipe(
        &env,
        "lm",
        &format!("[recipe]\nname = \"lm\"\n[sources.engine]\nrecipe = \"core\"\n{build}"),
    );
    recipe(
        &env,
        "svc",
        &format!(
            "[recipe]\nname = \"svc\"\n[sources.model]\nrecipe = \"lm\"\n[sources.kernels]\nrecipe = \"core\"\n{build}"
        ),
    );
    ok(&hstore(&env, &["lock"]));
    let expected = "svc --kernels--> core --code--> path core-src";
    let by_name = stdout(&hstore(&env, &["why", "core-src"]));
    let lines: Vec<&str> = by_name.lines().collect();
    assert_eq!(lines.len(), 2, "{by_name}");
    assert!(lines[0].starts_with(expected), "{by_name}");
    assert!(
        lines[1].starts_with("svc --model--> lm --engine--> core --code--> path core-src"),
        "{by_name}"
    );

    // A file inside the tree, by its address: the chains end at the path inside.
    let lockfile = lockfile_json(&env.root().join("lockfile.json"));
    let file = hstore(&env, &["store", "add", "core-src/kernels/gemm.c"]);
    let address = String::from_utf8_lossy(&file.stdout).trim().to_owned();
    let inside = stdout(&hstore(&env, &["why", &address]));
    assert!(
        inside
            .lines()
            .all(|line| line.ends_with(" at /kernels/gemm.c")),
        "{inside}"
    );
    assert_eq!(inside.lines().count(), 2, "{inside}");
    // The artifact's own address answers without looking inside.
    let tree = lockfile["artifacts"][0]["address"].as_str().unwrap();
    assert_eq!(stdout(&hstore(&env, &["why", tree])), by_name);

    let error = fails(&hstore(&env, &["why", "nothing-like-it"]), 2);
    assert!(
        error.contains("`nothing-like-it` is neither an artifact of `lockfile.json`"),
        "{error}"
    );
}

#[test]
fn removing_a_root_lets_gc_reclaim_exactly_its_closure() {
    let env = TestEnv::new();
    for name in ["one", "two"] {
        let dir = env.root().join(name);
        std::fs::create_dir_all(dir.join(format!("{name}-sub"))).unwrap();
        std::fs::write(dir.join(format!("{name}-file")), format!("{name}\n")).unwrap();
        std::fs::write(
            dir.join(format!("{name}-sub/deep")),
            format!("deep {name}\n"),
        )
        .unwrap();
        recipe(
            &env,
            name,
            &format!("[recipe]\nname = \"{name}\"\n[sources.code]\npath = \"../{name}\"\n"),
        );
    }
    // Two lockfiles, each locking one recipe directory, each fetched: two gc roots.
    std::fs::create_dir_all(env.root().join("a/recipes")).unwrap();
    std::fs::create_dir_all(env.root().join("b/recipes")).unwrap();
    std::fs::rename(
        env.root().join("recipes/one.toml"),
        env.root().join("a/recipes/one.toml"),
    )
    .unwrap();
    std::fs::rename(
        env.root().join("recipes/two.toml"),
        env.root().join("b/recipes/two.toml"),
    )
    .unwrap();
    for (dir, name) in [("a", "one"), ("b", "two")] {
        // Recipes name `../NAME`, relative to their directory: put the trees where they look.
        std::fs::rename(env.root().join(name), env.root().join(dir).join(name)).unwrap();
        let recipes = format!("{dir}/recipes");
        let lockfile = format!("{dir}/lockfile.json");
        ok(&hstore(
            &env,
            &["lock", "--recipes", &recipes, "--lockfile", &lockfile],
        ));
        ok(&hstore(&env, &["fetch", "--lockfile", &lockfile]));
    }
    let listing = stdout(&hstore(&env, &["store", "roots"]));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    let root_of = |dir: &str| -> String {
        let line = lines
            .iter()
            .find(|line| line.ends_with(&format!("/{dir}/lockfile.json")))
            .unwrap_or_else(|| panic!("no root for {dir}: {listing}"));
        line.split_whitespace().next().unwrap().to_owned()
    };
    let (keep, drop) = (root_of("a"), root_of("b"));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&hstore(&env, &["store", "roots", "--json"]))).unwrap();
    assert!(
        json[0]["registered"].as_str().unwrap().ends_with('Z'),
        "{json}"
    );

    let objects = |env: &TestEnv| -> Vec<String> {
        let mut list: Vec<String> = stdout(&hstore(env, &["store", "ls"]))
            .lines()
            .map(|line| line.split_whitespace().next().unwrap().to_owned())
            .collect();
        list.sort();
        list
    };
    let before = objects(&env);
    let two_tree = lockfile_json(&env.root().join("b/lockfile.json"))["artifacts"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let closure_of_two = {
        let dest = env.root().join("two-out");
        ok(&hstore(
            &env,
            &["store", "materialize", &two_tree, dest.to_str().unwrap()],
        ));
        let mut addresses = vec![two_tree.clone()];
        for file in ["two-file", "two-sub/deep"] {
            let added = hstore(&env, &["store", "add", dest.join(file).to_str().unwrap()]);
            addresses.push(String::from_utf8_lossy(&added.stdout).trim().to_owned());
        }
        addresses
    };

    let missing = fails(
        &hstore(&env, &["store", "roots", "remove", "lockfile-nope"]),
        2,
    );
    assert!(
        missing.contains("no gc root named `lockfile-nope`"),
        "{missing}"
    );
    assert!(
        missing.contains(&keep) && missing.contains(&drop),
        "{missing}"
    );

    ok(&hstore(&env, &["store", "roots", "remove", &drop]));
    assert!(!stdout(&hstore(&env, &["store", "roots"])).contains(&drop));
    ok(&hstore(&env, &["store", "gc"]));
    let after = objects(&env);
    let removed: Vec<&String> = before
        .iter()
        .filter(|address| !after.contains(address))
        .collect();
    // Exactly the dropped lockfile's closure went: its tree, its `two-sub` node and its two files, plus the
    // lockfile blob the root kept (the tree of `one` and its files all stay).
    for address in &closure_of_two {
        assert!(
            removed.contains(&address),
            "{address} survived gc: {removed:?}"
        );
    }
    assert_eq!(removed.len(), closure_of_two.len() + 2, "{removed:?}");
    ok(&hstore(
        &env,
        &["fetch", "--offline", "--lockfile", "a/lockfile.json"],
    ));
}

#[test]
fn bundle_inspect_lists_what_a_signed_and_an_unsigned_bundle_hold_without_a_store() {
    use crate::support::{Env, noise, write_tree};
    let env = Env::new();
    write_tree(&env.path("tree"), "inspect");
    fs::write(env.path("tree/big.bin"), noise(7, 3 << 20)).unwrap();
    let tree = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "release"]));
    env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "other"]));
    env.ok(env.hstore("src").args(["export", "-o", "plain.hsb"]));
    env.ok(env
        .hstore("src")
        .args(["export", "--sign", "release.secret", "-o", "signed.hsb"]));
    let objects = env.ls("src").len();

    let plain = env.ok(env.hstore("none").args(["bundle", "inspect", "plain.hsb"]));
    assert!(plain.starts_with("bundle plain.hsb: "), "{plain}");
    assert!(plain.contains(&format!(", {objects} objects\n")), "{plain}");
    assert!(plain.contains("signature: not signed\n"), "{plain}");
    assert!(plain.contains("roots: 1\n  lockfile-"), "{plain}");
    assert!(plain.contains("lockfiles: 1\n"), "{plain}");
    assert!(plain.contains("  directory "), "{plain}");
    // Inspecting needs no store and writes none.
    assert!(!env.path("none").exists());

    let json: serde_json::Value = serde_json::from_str(&env.ok(env.hstore("none").args([
        "bundle",
        "inspect",
        "signed.hsb",
        "--json",
        "--trust",
        "release.pub",
    ])))
    .unwrap();
    assert_eq!(json["objects"], objects);
    assert_eq!(json["signed_by_a_given_key"], true);
    assert!(
        json["signer"]
            .as_str()
            .unwrap()
            .starts_with("hstore-ed25519:")
    );
    let by_kind = json["by_kind"].as_object().unwrap();
    let counted: u64 = by_kind
        .values()
        .map(|kind| kind["objects"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, objects as u64);
    assert_eq!(
        json["bundle_bytes"].as_u64().unwrap(),
        fs::metadata(env.path("signed.hsb")).unwrap().len()
    );

    // Signed, but not by the key given: exit 1, saying so.
    let foreign = env
        .hstore("none")
        .args(["bundle", "inspect", "signed.hsb", "--trust", "other.pub"])
        .output()
        .unwrap();
    assert_eq!(foreign.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&foreign.stdout).contains("NOT one of the keys given"));
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("is not signed by any of the keys given")
    );

    // A truncated copy is named as import would name it.
    let bytes = fs::read(env.path("signed.hsb")).unwrap();
    fs::write(env.path("cut.hsb"), &bytes[..bytes.len() - 100]).unwrap();
    let cut = env
        .hstore("none")
        .args(["bundle", "inspect", "cut.hsb"])
        .output()
        .unwrap();
    assert_eq!(cut.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(
        stderr.contains("failed to inspect `cut.hsb`") && stderr.contains("ends"),
        "{stderr}"
    );
}
