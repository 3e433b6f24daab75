//! `hstore lock`: determinism, pins, checksums, mirrors, git submodules, archives, `--locked`, `--offline`.

use hstore_test_support::{
    Fault, GitRepo, TestEnv, TestRegistry, deterministic_tar_gz, sha256_hex,
};

use crate::common::{
    address_of, fails, hstore, lockfile_json, object_count, ok, project_with_crates, recipe,
};

const CRATES_RECIPE: &str = "[recipe]\nname = \"app\"\n[sources.app]\npath = \"../app\"\n[sources.crates]\ncargo_lock = \"app:Cargo.lock\"\n";

#[test]
fn lock_twice_gives_identical_bytes_and_cargo_vendor_layout() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .crate_("alpha", "1.0.0")
        .crate_("beta", "0.2.1")
        .start();
    project_with_crates(&env, &registry, &[("alpha", "1.0.0"), ("beta", "0.2.1")]);
    recipe(&env, "app", CRATES_RECIPE);
    ok(&hstore(&env, &["lock"]));
    let first = std::fs::read(env.root().join("lockfile.json")).unwrap();
    ok(&hstore(&env, &["lock"]));
    let second = std::fs::read(env.root().join("lockfile.json")).unwrap();
    assert_eq!(first, second);
    assert!(first.ends_with(b"}\n"));
    let lock = lockfile_json(&env.root().join("lockfile.json"));
    let alpha = address_of(&lock, "alpha@1.0.0");
    // The vendored tree has cargo's checksum file with the .crate's sha256.
    let dest = env.root().join("alpha");
    ok(&hstore(
        &env,
        &["store", "materialize", &alpha, dest.to_str().unwrap()],
    ));
    let checksum: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join(".cargo-checksum.json")).unwrap()).unwrap();
    assert_eq!(
        checksum["package"],
        registry.checksum("alpha", "1.0.0").as_str()
    );
    assert!(checksum["files"]["Cargo.toml"].is_string());
    assert!(dest.join("src/lib.rs").is_file());
    // A fresh store with the same inputs gives the same bytes.
    let other = TestEnv::new();
    std::fs::create_dir_all(other.root().join("recipes")).unwrap();
    project_with_crates(&other, &registry, &[("alpha", "1.0.0"), ("beta", "0.2.1")]);
    recipe(&other, "app", CRATES_RECIPE);
    ok(&hstore(&other, &["lock"]));
    assert_eq!(
        std::fs::read(other.root().join("lockfile.json")).unwrap(),
        first
    );
}

#[test]
fn tampered_checksum_fails_naming_the_crate_and_stores_nothing() {
    let env = TestEnv::new();
    let registry = TestRegistry::new().crate_("alpha", "1.0.0").start();
    let app = project_with_crates(&env, &registry, &[("alpha", "1.0.0")]);
    let text = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    let good = registry.checksum("alpha", "1.0.0");
    let bad = format!(
        "{}{}",
        &good[..63],
        if good.ends_with('0') { "1" } else { "0" }
    );
    std::fs::write(app.join("Cargo.lock"), text.replace(&good, &bad)).unwrap();
    recipe(&env, "app", CRATES_RECIPE);
    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(stderr.contains("alpha@1.0.0"), "{stderr}");
    assert!(stderr.contains(&bad) && stderr.contains(&good), "{stderr}");
    assert!(
        stderr.contains(&registry.crate_url("alpha", "1.0.0")),
        "{stderr}"
    );
    assert!(!env.root().join("lockfile.json").exists());
    // Only the path source's tree got in: no crate file.
    let objects = object_count(&env);
    let listing = String::from_utf8_lossy(&hstore(&env, &["store", "ls"]).stdout).into_owned();
    assert!(!listing.contains(&registry.checksum("alpha", "1.0.0")));
    assert!(objects <= 4, "{listing}");
}

#[test]
fn download_faults_are_retried_and_resumed_with_range() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .crate_("alpha", "1.0.0")
        .crate_("beta", "0.2.1")
        .start();
    project_with_crates(&env, &registry, &[("alpha", "1.0.0"), ("beta", "0.2.1")]);
    recipe(&env, "app", CRATES_RECIPE);
    registry.fault("/dl/alpha/1.0.0/download", Fault::Status(500), 2);
    registry.fault(
        "/dl/beta/0.2.1/download",
        Fault::DropMidBody { after: 100 },
        1,
    );
    ok(&hstore(&env, &["lock"]));
    let requests = registry.requests();
    let alpha: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/dl/alpha/1.0.0/download")
        .collect();
    assert_eq!(
        alpha.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let beta: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/dl/beta/0.2.1/download")
        .collect();
    assert_eq!(beta.len(), 2, "{beta:?}");
    assert_eq!(beta[1].range.as_deref(), Some("bytes=100-"), "{beta:?}");
    assert_eq!(beta[1].status, 206);
    ok(&hstore(&env, &["store", "verify"]));
}

#[test]
fn wrong_bytes_and_404_fail_loudly() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .crate_("alpha", "1.0.0")
        .file("/files/tool.bin", b"tool bytes")
        .start();
    project_with_crates(&env, &registry, &[("alpha", "1.0.0")]);
    recipe(&env, "app", CRATES_RECIPE);
    registry.fault("/dl/alpha/1.0.0/download", Fault::WrongBytes, 1);
    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(
        stderr.contains("sha256 mismatch") && stderr.contains("alpha@1.0.0"),
        "{stderr}"
    );
    let env2 = TestEnv::new();
    recipe(
        &env2,
        "tool",
        &format!(
            "[recipe]\nname = \"tool\"\n[sources.tool]\nurl = \"{}\"\nsha256 = \"{}\"\n",
            registry.file_url("/files/missing.bin"),
            sha256_hex(b"tool bytes")
        ),
    );
    let stderr = fails(&hstore(&env2, &["lock"]), 2);
    assert!(
        stderr.contains("404") && stderr.contains("/files/missing.bin"),
        "{stderr}"
    );
}

#[test]
fn mirror_rewrites_downloads_but_the_lockfile_keeps_canonical_urls() {
    let env = TestEnv::new();
    let tarball =
        deterministic_tar_gz(&[("pkg-1.0/bin/run".into(), b"#!/bin/sh\necho hi\n".to_vec())]);
    let registry = TestRegistry::new()
        .file("/mirror/dist/pkg-1.0.tar.gz", &tarball)
        .start();
    let canonical = "https://example.invalid/dist/pkg-1.0.tar.gz";
    recipe(
        &env,
        "tool",
        &format!(
            "[recipe]\nname = \"tool\"\n[sources.pkg]\nurl = \"{canonical}\"\nsha256 = \"{}\"\nunpack = true\nstrip_components = 1\n",
            sha256_hex(&tarball)
        ),
    );
    let mirror = format!("https://example.invalid/={}/mirror/", registry.url());
    ok(&hstore(&env, &["lock", "--mirror", &mirror]));
    let text = std::fs::read_to_string(env.root().join("lockfile.json")).unwrap();
    assert!(text.contains(canonical), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    // The same rule from hstore.toml, in a fresh store.
    let env2 = TestEnv::new();
    std::fs::copy(env.root().join("recipes/tool.toml"), {
        std::fs::create_dir_all(env2.root().join("recipes")).unwrap();
        env2.root().join("recipes/tool.toml")
    })
    .unwrap();
    std::fs::write(
        env2.root().join("hstore.toml"),
        format!(
            "[mirrors]\n\"https://example.invalid/\" = \"{}/mirror/\"\n",
            registry.url()
        ),
    )
    .unwrap();
    ok(&hstore(&env2, &["lock"]));
    assert_eq!(
        std::fs::read_to_string(env2.root().join("lockfile.json")).unwrap(),
        text
    );
}

#[test]
fn hostile_archives_are_refused_naming_the_entry() {
    let env = TestEnv::new();
    let evil = hostile_tar_gz("../escape.txt", b"x");
    let registry = TestRegistry::new().file("/evil.tar.gz", &evil).start();
    recipe(
        &env,
        "evil",
        &format!(
            "[recipe]\nname = \"evil\"\n[sources.e]\nurl = \"{}\"\nsha256 = \"{}\"\nunpack = true\n",
            registry.file_url("/evil.tar.gz"),
            sha256_hex(&evil)
        ),
    );
    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(stderr.contains("escape.txt"), "{stderr}");
    assert!(!env.root().parent().unwrap().join("escape.txt").exists());
}

/// A .tar.gz with one entry whose raw name is `name` (tar's builder refuses `..`, so the header is written by hand).
fn hostile_tar_gz(name: &str, body: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    builder.append(&header, body).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn git_fixture(env: &TestEnv) -> (GitRepo, GitRepo, GitRepo) {
    let leaf = GitRepo::init(env.root().join("git/leaf"));
    leaf.write("leaf.txt", "leaf\n");
    leaf.commit("leaf");
    let skipped = GitRepo::init(env.root().join("git/skipped"));
    skipped.write("skipped.txt", "nope\n");
    skipped.commit("skipped");
    let sub = GitRepo::init(env.root().join("git/sub"));
    sub.write("sub.txt", "sub\n");
    sub.add_submodule("nested", &leaf.file_url());
    sub.commit("sub with nested leaf");
    let top = GitRepo::init(env.root().join("git/top"));
    top.write("README", "top\n")
        .write(".gitattributes", "* text eol=crlf\nREADME export-ignore\n");
    top.write_executable("run.sh", "#!/bin/sh\necho run\n");
    top.symlink("link", "README");
    top.add_submodule("sub", "../sub");
    top.add_submodule("skip", &skipped.file_url());
    top.git(&[
        "config",
        "-f",
        ".gitmodules",
        "submodule.skip.update",
        "none",
    ]);
    top.git(&["add", ".gitmodules"]);
    top.commit("top");
    (top, sub, leaf)
}

#[test]
fn git_with_nested_submodules_exact_modes_and_symlinks() {
    let env = TestEnv::new();
    let (top, _sub, _leaf) = git_fixture(&env);
    recipe(
        &env,
        "g",
        &format!(
            "[recipe]\nname = \"g\"\n[sources.top]\ngit = \"{}\"\nref = \"HEAD\"\n",
            top.file_url()
        ),
    );
    ok(&hstore(&env, &["lock"]));
    let lock = lockfile_json(&env.root().join("lockfile.json"));
    let artifact = &lock["artifacts"][0];
    assert_eq!(artifact["commit"], top.head().as_str());
    let submodules: Vec<&str> = artifact["submodules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(submodules, vec!["sub", "sub/nested"]);
    let dest = env.root().join("out");
    ok(&hstore(
        &env,
        &[
            "store",
            "materialize",
            artifact["address"].as_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    ));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::read(dest.join("README")).unwrap(),
        b"top\n",
        "no eol conversion, no export-ignore"
    );
    assert!(
        std::fs::metadata(dest.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o100
            != 0
    );
    assert_eq!(
        std::fs::read_link(dest.join("link")).unwrap().to_str(),
        Some("README")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/nested/leaf.txt")).unwrap(),
        "leaf\n"
    );
    assert!(
        dest.join("skip").is_dir()
            && std::fs::read_dir(dest.join("skip"))
                .unwrap()
                .next()
                .is_none()
    );
    assert!(!dest.join(".git").exists() && !dest.join("sub/.git").exists());
}

#[test]
fn a_moved_branch_keeps_the_pin_until_update() {
    let env = TestEnv::new();
    let repo = GitRepo::init(env.root().join("git/r"));
    repo.write("a", "1\n");
    let first = repo.commit("one");
    recipe(
        &env,
        "g",
        &format!(
            "[recipe]\nname = \"g\"\n[sources.r]\ngit = \"{}\"\nref = \"main\"\n",
            repo.file_url()
        ),
    );
    repo.git(&["branch", "-M", "main"]);
    ok(&hstore(&env, &["lock"]));
    let before = std::fs::read(env.root().join("lockfile.json")).unwrap();
    repo.write("a", "2\n");
    let second = repo.commit("two");
    ok(&hstore(&env, &["lock"]));
    assert_eq!(
        std::fs::read(env.root().join("lockfile.json")).unwrap(),
        before
    );
    ok(&hstore(&env, &["fetch"]));
    assert!(String::from_utf8_lossy(&before).contains(&first));
    ok(&hstore(&env, &["lock", "--update", "r"]));
    let after = std::fs::read_to_string(env.root().join("lockfile.json")).unwrap();
    assert!(after.contains(&second) && !after.contains(&first));
}

#[test]
fn a_short_commit_resolves_after_a_shallow_fetch() {
    let env = TestEnv::new();
    let repo = GitRepo::init(env.root().join("git/r"));
    repo.write("a", "1\n");
    let old = repo.commit("one");
    repo.write("a", "2\n");
    repo.commit("two");
    repo.git(&["branch", "-M", "main"]);
    let source = |reference: &str| {
        format!(
            "[recipe]\nname = \"g\"\n[sources.r]\ngit = \"{}\"\nref = \"{reference}\"\n",
            repo.file_url()
        )
    };
    // Locking the branch fills the git cache with a shallow fetch of its tip only.
    recipe(&env, "g", &source("main"));
    ok(&hstore(&env, &["lock"]));
    // An older commit, named by a short prefix, must still be found (the cache is unshallowed).
    recipe(&env, "g", &source(&old[..7]));
    ok(&hstore(&env, &["lock"]));
    let lockfile = std::fs::read_to_string(env.root().join("lockfile.json")).unwrap();
    assert!(
        lockfile.contains(&format!("\"commit\": \"{old}\"")),
        "{lockfile}"
    );
}

#[test]
fn missing_submodule_commit_names_repository_commit_and_path() {
    let env = TestEnv::new();
    let (top, sub, _leaf) = git_fixture(&env);
    // Make the pinned `sub` commit vanish upstream.
    let pinned = sub.head();
    sub.write("sub.txt", "rewritten\n");
    sub.git(&["commit", "--amend", "-q", "-m", "rewritten"]);
    sub.git(&["reflog", "expire", "--expire=now", "--all"]);
    sub.git(&["gc", "-q", "--prune=now"]);
    recipe(
        &env,
        "g",
        &format!(
            "[recipe]\nname = \"g\"\n[sources.top]\ngit = \"{}\"\n",
            top.file_url()
        ),
    );
    let stderr = fails(&hstore(&env, &["lock"]), 2);
    assert!(stderr.contains(&pinned), "{stderr}");
    assert!(stderr.contains("submodule at `sub`"), "{stderr}");
    assert!(
        stderr.contains(&sub.file_url().trim_end_matches('/').to_string())
            || stderr.contains("/git/sub"),
        "{stderr}"
    );
}

#[test]
fn locked_fails_with_exit_1_when_recipes_changed() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .file("/a.bin", b"aaa")
        .file("/b.bin", b"bbb")
        .start();
    let text = |file: &str, bytes: &[u8]| {
        format!(
            "[recipe]\nname = \"t\"\n[sources.f]\nurl = \"{}\"\nsha256 = \"{}\"\n",
            registry.file_url(file),
            sha256_hex(bytes)
        )
    };
    recipe(&env, "t", &text("/a.bin", b"aaa"));
    ok(&hstore(&env, &["lock"]));
    ok(&hstore(&env, &["lock", "--locked"]));
    recipe(&env, "t", &text("/b.bin", b"bbb"));
    let stderr = fails(&hstore(&env, &["lock", "--locked"]), 1);
    assert!(
        stderr.contains("- artifact url+") && stderr.contains("+ artifact url+"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/a.bin") && stderr.contains("/b.bin"),
        "{stderr}"
    );
}

#[test]
fn offline_lock_names_what_is_missing() {
    let env = TestEnv::new();
    recipe(
        &env,
        "t",
        &format!(
            "[recipe]\nname = \"t\"\n[sources.f]\nurl = \"https://example.invalid/x.bin\"\nsha256 = \"{}\"\n",
            sha256_hex(b"x")
        ),
    );
    let stderr = fails(&hstore(&env, &["lock", "--offline"]), 2);
    assert!(
        stderr.contains("https://example.invalid/x.bin") && stderr.contains("--offline"),
        "{stderr}"
    );
}

/// Live (`HSTORE_LIVE_TESTS=1`): locks a real 2-crate Cargo.lock from crates.io (or the mirror its index names).
#[test]
fn live_crates_io_lock() {
    if std::env::var_os("HSTORE_LIVE_TESTS").is_none_or(|v| v != "1") {
        return;
    }
    let env = TestEnv::new();
    let app = env.root().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let source = "registry+https://github.com/rust-lang/crates.io-index";
    std::fs::write(
        app.join("Cargo.lock"),
        format!(
            "version = 4\n\n[[package]]\nname = \"cfg-if\"\nversion = \"1.0.5\"\nsource = \"{source}\"\nchecksum = \"4e7648175b45a9a48536d676f68d918270699102aa8dab5496df06904c914600\"\n\n\
             [[package]]\nname = \"itoa\"\nversion = \"1.0.19\"\nsource = \"{source}\"\nchecksum = \"3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4\"\n"
        ),
    )
    .unwrap();
    recipe(&env, "app", CRATES_RECIPE);
    let mut command = crate::common::command(&env, &["lock"]);
    command.env_remove("NO_PROXY");
    ok(&command.output().unwrap());
    let lock = lockfile_json(&env.root().join("lockfile.json"));
    assert_eq!(lock["artifacts"].as_array().unwrap().len(), 3);
}

/// A .tar.gz of one GNU sparse entry `name` of `apparent` bytes, all a hole but its last 512: the shape of a
/// 119-byte archive that unpacks to gigabytes.
fn sparse_tar_gz(name: &str, apparent: u64) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let width = field.len() - 1;
        field[..width].copy_from_slice(format!("{value:0width$o}").as_bytes());
        field[width] = 0;
    }
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_size(512);
    let gnu = header.as_gnu_mut().unwrap();
    octal(&mut gnu.sparse[0].offset, apparent - 512);
    octal(&mut gnu.sparse[0].numbytes, 512);
    octal(&mut gnu.realsize, apparent);
    header.set_cksum();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    builder.append(&header, &[1_u8; 512][..]).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn store_tmp_is_empty(env: &TestEnv) -> bool {
    std::fs::read_dir(env.store().join("tmp"))
        .unwrap()
        .next()
        .is_none()
}

// See: issue 20, attack 9 (a 119-byte `.tar.gz` that unpacks to 2 GiB at lock).
#[test]
fn an_archive_bomb_stops_at_max_unpacked_size_at_lock_and_fetch() {
    let env = TestEnv::new();
    let sparse = sparse_tar_gz("pkg/holes", 2 << 30);
    assert!(sparse.len() < 256, "{} bytes", sparse.len());
    let dense = deterministic_tar_gz(&[("pkg/zeros".to_owned(), vec![0; 8 << 20])]);
    assert!(dense.len() < 64 << 10, "{} bytes", dense.len());
    let registry = TestRegistry::new()
        .file("/sparse.tar.gz", &sparse)
        .file("/dense.tar.gz", &dense)
        .start();
    let url_recipe = |file: &str, bytes: &[u8]| {
        format!(
            "[recipe]\nname = \"bomb\"\n[sources.b]\nurl = \"{}\"\nsha256 = \"{}\"\nunpack = true\n",
            registry.file_url(file),
            sha256_hex(bytes)
        )
    };

    // 2 GiB at apparent size from 150 bytes: stopped at the cap, before the entry is written, naming the URL.
    recipe(&env, "bomb", &url_recipe("/sparse.tar.gz", &sparse));
    let stderr = fails(&hstore(&env, &["lock", "--max-unpacked-size", "4M"]), 2);
    assert!(
        stderr.contains(&registry.file_url("/sparse.tar.gz")),
        "{stderr}"
    );
    assert!(stderr.contains("4 MiB"), "{stderr}");
    assert!(stderr.contains("--max-unpacked-size"), "{stderr}");
    assert!(store_tmp_is_empty(&env));
    assert!(!env.root().join("lockfile.json").exists());

    // 8 MiB of zeros in a few KB: the default cap (16 GiB here) lets it through; a lower one does not.
    recipe(&env, "bomb", &url_recipe("/dense.tar.gz", &dense));
    let stderr = fails(&hstore(&env, &["lock", "--max-unpacked-size", "4M"]), 2);
    assert!(
        stderr.contains(&registry.file_url("/dense.tar.gz")),
        "{stderr}"
    );
    ok(&hstore(&env, &["lock"]));

    // `fetch` into a fresh store holds to the cap too, and `none` lifts it.
    let fresh = TestEnv::new();
    std::fs::copy(
        env.root().join("lockfile.json"),
        fresh.root().join("lockfile.json"),
    )
    .unwrap();
    let stderr = fails(&hstore(&fresh, &["fetch", "--max-unpacked-size", "4M"]), 2);
    assert!(
        stderr.contains(&registry.file_url("/dense.tar.gz")),
        "{stderr}"
    );
    assert!(stderr.contains("--max-unpacked-size"), "{stderr}");
    assert!(store_tmp_is_empty(&fresh));
    ok(&hstore(&fresh, &["fetch", "--max-unpacked-size", "none"]));
}
