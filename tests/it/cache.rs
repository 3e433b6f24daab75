//! Shared caches end to end: the real `hstore` binary against a `file://` directory, a real nginx (WebDAV PUT, and
//! read-only) and a real three-node Garage cluster, all on 127.0.0.1.
//!
//! A "producer" project locks a `path` source (`src/`, many small files and, where it matters, one large one) and
//! pushes its closure; "consumers" get only `lockfile.json` and the recipes (no `src/`, so upstream cannot serve
//! them) and must take everything from the cache. Damage is done with the cache crate's raw access, exactly as a
//! faulty disk or a malicious writer would leave it.
//!
//! Build records from outside (issue 20, attack #2) are taken only on a trusted signature: through a cache (file://,
//! HTTP, S3 on Garage; `cache pull` and `build --cache`) and through a `--with-builds` bundle, whose tests live here
//! because they share the build-and-rebuild projects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use hstore_cache::{Cache, CacheUrl, OpenOptions, S3Settings};
use hstore_test_support::{GARAGE_KEY_ID, GARAGE_SECRET, GarageCluster, Nginx, TestEnv};

/// One machine: a test environment with a `project/` directory.
struct Side {
    env: TestEnv,
    vars: Vec<(&'static str, String)>,
}

impl Side {
    fn new() -> Self {
        let side = Side {
            env: TestEnv::new(),
            vars: Vec::new(),
        };
        std::fs::create_dir_all(side.dir().join("recipes")).unwrap();
        side
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command.current_dir(self.dir()).args(args);
        for (key, value) in &self.vars {
            command.env(key, value);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run hstore")
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hstore")
    }

    /// `store ls`, sorted.
    fn objects(&self) -> Vec<String> {
        let output = ok(&self.run(&["store", "ls"]));
        let mut lines: Vec<String> = output.0.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }

    fn verify_clean(&self) {
        ok(&self.run(&["store", "verify"]));
    }

    /// The closure's objects in this store (`store ls` lines of `other`'s objects that are here too).
    fn has_all_of(&self, other: &Side) {
        let mine = self.objects();
        for line in other.objects() {
            assert!(mine.contains(&line), "missing after pull: {line}");
        }
    }
}

/// (stdout, stderr) of a successful run.
#[track_caller]
fn ok(output: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "hstore failed ({:?}):\n{stderr}",
        output.status.code()
    );
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

/// stderr of a run that exited with `code`.
#[track_caller]
fn fails(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status; stderr:\n{stderr}"
    );
    stderr
}

/// Deterministic incompressible bytes (xorshift), so a large file stays large in the store.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// A producer: `src/` with `files` small files in nested directories (content varies with `variant`, so two
/// variants share most files), optionally a large file, locked into `lockfile.json`.
fn producer(files: usize, variant: u32, large: Option<usize>) -> Side {
    producer_with(files, variant, large, "")
}

/// [`producer`], with `extra` appended to the recipe (targets, a build section).
fn producer_with(files: usize, variant: u32, large: Option<usize>, extra: &str) -> Side {
    let side = Side::new();
    let src = side.dir().join("src");
    for index in 0..files {
        let dir = src.join(format!("d{}/e{}", index % 7, index % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let text = if index == 0 {
            format!("variant {variant}\n")
        } else {
            format!("file {index}\n").repeat(1 + index % 40)
        };
        std::fs::write(dir.join(format!("f{index}.txt")), text).unwrap();
    }
    if let Some(length) = large {
        std::fs::write(src.join("large.bin"), noise(u64::from(variant) + 7, length)).unwrap();
    }
    std::fs::write(
        side.dir().join("recipes/demo.toml"),
        format!("[recipe]\nname = \"demo\"\n\n[sources.code]\npath = \"../src\"\n{extra}"),
    )
    .unwrap();
    ok(&side.run(&["lock"]));
    side
}

/// A fresh consumer that trusts `producer`'s `signer.pub`, fetches the inputs from `url` and builds with it as a
/// substitute; its (stdout, stderr).
fn build_on_trusting_node(producer: &Side, url: &str) -> (String, String) {
    let node = consumer(producer);
    std::fs::copy(
        producer.dir().join("signer.pub"),
        node.dir().join("signer.pub"),
    )
    .unwrap();
    ok(&node.run(&["fetch", "--cache", url]));
    ok(&node.run(&[
        "build",
        "--target",
        "cpu",
        "--cache",
        url,
        "--trust",
        "signer.pub",
    ]))
}

/// A consumer of `producer`'s lockfile and recipes, without `src/`.
fn consumer(producer: &Side) -> Side {
    let side = Side::new();
    for name in ["lockfile.json", "recipes/demo.toml"] {
        std::fs::copy(producer.dir().join(name), side.dir().join(name)).unwrap();
    }
    side
}

/// The pack files of a `file://` cache, largest first.
fn packs(dir: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = std::fs::read_dir(dir.join("hstore-cache-v2/packs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pack"))
        .collect();
    packs.sort_by_key(|path| std::cmp::Reverse(std::fs::metadata(path).unwrap().len()));
    packs
}

/// Flips one byte in the middle of `bytes` (inside an object payload: packs have no gaps after their header).
fn damage(bytes: &mut [u8]) {
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn file_cache_push_pull_noop_and_damaged_pack() {
    let producer = producer(300, 1, Some(20 << 20));
    let caches = tempfile::tempdir().unwrap();
    let good = caches.path().join("good");
    let url = format!("file://{}", good.display());
    let (_, stderr) = ok(&producer.run(&["cache", "push", &url]));
    assert!(stderr.contains("Pushed"), "{stderr}");
    assert!(!packs(&good).is_empty());
    // Everything is there: a second push uploads nothing.
    let (_, stderr) = ok(&producer.run(&["cache", "push", &url]));
    assert!(
        stderr.contains("already holds the whole closure"),
        "{stderr}"
    );

    let consumer_b = consumer(&producer);
    // Without the cache, upstream (the absent `src/`) cannot serve it.
    fails(&consumer_b.run(&["fetch", "--offline"]), 2);
    let (_, stderr) = ok(&consumer_b.run(&["cache", "pull", &url]));
    assert!(stderr.contains("Registered"), "{stderr}");
    consumer_b.has_all_of(&producer);
    consumer_b.verify_clean();
    ok(&consumer_b.run(&["fetch", "--offline"]));

    // A damaged copy of the cache: the bad object is named, not stored, and the pull fails.
    let damaged = caches.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    copy_dir(&good, &damaged);
    for pack in packs(&damaged) {
        let mut bytes = std::fs::read(&pack).unwrap();
        damage(&mut bytes);
        std::fs::write(&pack, bytes).unwrap();
    }
    let damaged_url = format!("file://{}", damaged.display());
    let consumer_c = consumer(&producer);
    let stderr = fails(&consumer_c.run(&["cache", "pull", &damaged_url]), 2);
    assert!(stderr.contains("failed verification"), "{stderr}");
    assert!(stderr.contains("object b3:"), "{stderr}");
    consumer_c.verify_clean();
    // The next cache provides what the damaged one could not.
    let (_, stderr) = ok(&consumer_c.run(&["fetch", "--cache", &damaged_url, "--cache", &url]));
    assert!(stderr.contains("failed verification"), "{stderr}");
    assert!(stderr.contains("Substituted"), "{stderr}");
    consumer_c.has_all_of(&producer);
    consumer_c.verify_clean();
}

#[test]
fn http_cache_on_nginx_push_pull_and_read_only() {
    let served = tempfile::tempdir().unwrap();
    let writable = Nginx::start(served.path(), true);
    let read_only = Nginx::start(served.path(), false);
    let producer = producer(200, 1, None);
    let url = format!("{}/cache", writable.url());
    let (_, stderr) = ok(&producer.run(&["cache", "push", &url]));
    assert!(stderr.contains("Pushed"), "{stderr}");

    let consumer_b = consumer(&producer);
    ok(&consumer_b.run(&["cache", "pull", &url]));
    consumer_b.has_all_of(&producer);
    consumer_b.verify_clean();

    // The read-only server serves the same directory: pulls work, pushes are refused with a fitting hint.
    let read_only_url = format!("{}/cache", read_only.url());
    let consumer_c = consumer(&producer);
    ok(&consumer_c.run(&["cache", "pull", &read_only_url]));
    consumer_c.has_all_of(&producer);
    let other = producer_variant(2);
    let stderr = fails(&other.run(&["cache", "push", &read_only_url]), 2);
    assert!(stderr.contains("refuses writes"), "{stderr}");
}

fn producer_variant(variant: u32) -> Side {
    producer(50, variant, None)
}

/// Opens the Garage-backed cache at `prefix` from the test itself (to damage it).
fn garage_cache(cluster: &GarageCluster, prefix: &str) -> Cache {
    let mut s3 = S3Settings::default();
    for (key, value) in cluster.env(0) {
        s3.set_default(&key.to_lowercase(), &value);
    }
    Cache::open(
        &CacheUrl::parse(&cluster.url(prefix)).unwrap(),
        &OpenOptions {
            s3,
            index_cache: None,
            fast_retries: true,
        },
    )
    .unwrap()
}

#[test]
fn garage_cluster_push_pull_substitute_faults() {
    let mut cluster = GarageCluster::start();
    let url = cluster.url("t1");
    let vars = cluster.env(0);
    let with_cluster = |mut side: Side| {
        side.vars.clone_from(&vars);
        side
    };

    // Push from store A, pull into an empty store B.
    let source = with_cluster(producer(300, 1, Some(18 << 20)));
    let (_, stderr) = ok(&source.run(&["cache", "push", &url]));
    assert!(stderr.contains("Pushed"), "{stderr}");
    assert!(!stderr.contains(GARAGE_SECRET));
    let consumer_b = with_cluster(consumer(&source));
    ok(&consumer_b.run(&["cache", "pull", &url]));
    consumer_b.has_all_of(&source);
    consumer_b.verify_clean();

    // `fetch --cache`: every artifact comes from the cache (there is no `src/` upstream here).
    let consumer_c = with_cluster(consumer(&source));
    let (_, stderr) = ok(&consumer_c.run(&["fetch", "--cache", &url]));
    assert!(stderr.contains("Substituted"), "{stderr}");
    consumer_c.has_all_of(&source);

    // Two machines pushing overlapping closures at once leave a consistent cache.
    let left = with_cluster(producer(200, 10, None));
    let right = with_cluster(producer(200, 11, None));
    let concurrent = cluster.url("t2");
    let pushes: Vec<Child> = [&left, &right]
        .iter()
        .map(|side| side.spawn(&["cache", "push", &concurrent]))
        .collect();
    for push in pushes {
        let output = push.wait_with_output().unwrap();
        ok(&output);
    }
    for side in [&left, &right] {
        let pulled = with_cluster(consumer(side));
        ok(&pulled.run(&["cache", "pull", &concurrent]));
        pulled.has_all_of(side);
        pulled.verify_clean();
    }

    // A node dies while a pull runs: the other two still make a quorum, and the pull completes.
    let consumer_d = with_cluster(consumer(&source));
    let pull = consumer_d.spawn(&["cache", "pull", &url]);
    cluster.kill_node(1);
    ok(&pull.wait_with_output().unwrap());
    consumer_d.has_all_of(&source);
    consumer_d.verify_clean();

    // Wrong credentials: refused, and neither the secret nor the key id is printed.
    let mut intruder = with_cluster(consumer(&source));
    intruder
        .vars
        .retain(|(key, _)| *key != "AWS_SECRET_ACCESS_KEY");
    intruder.vars.push((
        "AWS_SECRET_ACCESS_KEY",
        "not-the-secret-0123456789".to_owned(),
    ));
    let stderr = fails(&intruder.run(&["cache", "pull", &url]), 2);
    assert!(!stderr.contains("not-the-secret-0123456789"), "{stderr}");
    assert!(!stderr.contains(GARAGE_KEY_ID), "{stderr}");

    // A pack overwritten with wrong bytes: detected, reported by address, nothing bad stored.
    let cache = garage_cache(&cluster, "t1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let index = runtime.block_on(cache.load_index()).unwrap();
    for id in &index.packs {
        let name = format!("packs/{id}.pack");
        let mut bytes = runtime
            .block_on(cache.get_raw(&name))
            .unwrap()
            .unwrap()
            .to_vec();
        damage(&mut bytes);
        runtime.block_on(cache.put_raw(&name, bytes)).unwrap();
    }
    let consumer_e = with_cluster(consumer(&source));
    let stderr = fails(&consumer_e.run(&["cache", "pull", &url]), 2);
    assert!(stderr.contains("failed verification"), "{stderr}");
    assert!(stderr.contains("object b3:"), "{stderr}");
    consumer_e.verify_clean();
}

const BUILD_RECIPE: &str = r#"
[targets.cpu]

[build]
script = """
mkdir -p "$out"
cp -r "$src_code/d0" "$out/d0"
echo built > "$out/stamp"
"""
"#;

/// The one build key (hex) recorded in a `file://` cache.
fn recorded_key(cache: &Path) -> String {
    let entries: Vec<String> = std::fs::read_dir(cache.join("hstore-cache-v2/builds"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// Rewrites the record of `key` in a `file://` cache with `edit`.
fn edit_record(cache: &Path, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = cache.join(format!("hstore-cache-v2/builds/{key}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
fn build_push_substitute_and_record_trust() {
    let caches = tempfile::tempdir().unwrap();
    let cache = caches.path().join("c");
    let url = format!("file://{}", cache.display());
    let producer = producer_with(30, 1, None, BUILD_RECIPE);
    ok(&producer.run(&["key", "generate", "--out", "signer"]));
    // `--push` without a key is refused before anything is built.
    let stderr = fails(
        &producer.run(&["build", "--target", "cpu", "--push", &url]),
        2,
    );
    assert!(stderr.contains("--sign"), "{stderr}");
    let (built, stderr) = ok(&producer.run(&[
        "build",
        "--target",
        "cpu",
        "--push",
        &url,
        "--sign",
        "signer.secret",
    ]));
    assert!(stderr.contains("Built"), "{stderr}");
    assert!(stderr.contains("Pushed"), "{stderr}");
    let key = recorded_key(&cache);
    // The inputs travel too (the cluster workflow pushes the lockfile's closure once).
    ok(&producer.run(&["cache", "push", &url]));

    // A node with the inputs from the cache takes the finished build too: nothing runs.
    let (output, stderr) = build_on_trusting_node(&producer, &url);
    assert!(stderr.contains("Substituted build"), "{stderr}");
    assert!(stderr.contains("Fresh"), "{stderr}");
    assert!(!stderr.contains("Built"), "{stderr}");
    assert_eq!(output, built);

    // A record signed by a key this node does not trust is refused, and the node builds for itself.
    let stranger = consumer(&producer);
    ok(&stranger.run(&["key", "generate", "--out", "other"]));
    ok(&stranger.run(&["fetch", "--cache", &url]));
    let (_, stderr) = ok(&stranger.run(&[
        "build",
        "--target",
        "cpu",
        "--cache",
        &url,
        "--trust",
        "other.pub",
    ]));
    assert!(stderr.contains("none of them trusted"), "{stderr}");
    assert!(stderr.contains("Built"), "{stderr}");

    // Unsigned, and altered after signing: both refused.
    for (edit, expected) in [
        (
            Box::new(|record: &mut serde_json::Value| {
                record["signatures"] = serde_json::json!([]);
            }) as Box<dyn FnOnce(&mut serde_json::Value)>,
            "not signed",
        ),
        (
            Box::new(|record: &mut serde_json::Value| {
                record["record"]["log"] = record["record"]["output"].clone();
            }),
            "altered",
        ),
    ] {
        let copy = caches.path().join(format!("copy-{expected}"));
        std::fs::create_dir_all(&copy).unwrap();
        copy_dir(&cache, &copy);
        edit_record(&copy, &key, edit);
        let copy_url = format!("file://{}", copy.display());
        let (_, stderr) = build_on_trusting_node(&producer, &copy_url);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("Built"), "{stderr}");
    }
}

/// The build record file `K.json` of `side`'s store, if any.
fn store_record(side: &Side, key: &str) -> Option<serde_json::Value> {
    let path = side.env.store().join(format!("meta-v1/build/{key}.json"));
    std::fs::read(&path)
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

/// A fresh consumer of `producer` with `[caches] trusted-keys = ["signer.pub"]` in its `hstore.toml` (and the key).
fn consumer_trusting_in_config(producer: &Side) -> Side {
    let node = consumer(producer);
    std::fs::copy(
        producer.dir().join("signer.pub"),
        node.dir().join("signer.pub"),
    )
    .unwrap();
    std::fs::write(
        node.dir().join("hstore.toml"),
        "[caches]\ntrusted-keys = [\"signer.pub\"]\n",
    )
    .unwrap();
    node
}

/// Issue 20, attack #2: an unsigned `--with-builds` bundle carrying a record for a key the store lacks was
/// registered by `import`, and the next `build` returned the attacker's output as `Fresh`. Now a record comes in only
/// on a trusted signature over the bundle's manifest; otherwise it is dropped with a warning naming the key, the
/// objects still come in, and `build` runs the script.
#[test]
fn an_unsigned_bundle_cannot_plant_a_build_record_and_a_trusted_signed_one_is_reused() {
    let producer = producer_with(30, 1, None, BUILD_RECIPE);
    ok(&producer.run(&["key", "generate", "--out", "signer"]));
    ok(&producer.run(&["key", "generate", "--out", "attacker"]));
    let (honest, stderr) = ok(&producer.run(&["build", "--target", "cpu"]));
    assert!(stderr.contains("Built"), "{stderr}");
    let key = {
        let names: Vec<String> = std::fs::read_dir(producer.env.store().join("meta-v1/build"))
            .unwrap()
            .map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                name.trim_end_matches(".json").to_owned()
            })
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        names[0].clone()
    };
    ok(&producer.run(&[
        "export",
        "--with-builds",
        "--sign",
        "signer.secret",
        "-o",
        "good.hsb",
    ]));

    // The attacker: another output filed under the same build key, in the same kind of bundle.
    let evil_dir = producer.dir().join("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    std::fs::write(evil_dir.join("stamp"), "owned\n").unwrap();
    let (evil, _) = ok(&producer.run(&["store", "add", "--root", "evil", "evil"]));
    let evil = evil.trim().to_owned();
    let record_path = producer
        .env
        .store()
        .join(format!("meta-v1/build/{key}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["output"] = serde_json::Value::String(evil.clone());
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    // Its gc root carries the forged output into the bundle, as `build` would have rooted it.
    std::fs::write(
        producer
            .env
            .store()
            .join(format!("roots-v1/build-{key}.json")),
        serde_json::to_vec(&serde_json::json!({
            "description": "build",
            "addresses": [evil, record["log"]],
        }))
        .unwrap(),
    )
    .unwrap();
    let (_, stderr) = ok(&producer.run(&["export", "--with-builds", "-o", "evil.hsb"]));
    assert!(
        stderr.contains("carries 1 build records but is not signed"),
        "{stderr}"
    );
    ok(&producer.run(&[
        "export",
        "--with-builds",
        "--sign",
        "attacker.secret",
        "-o",
        "evil-signed.hsb",
    ]));
    for name in ["good.hsb", "evil.hsb", "evil-signed.hsb"] {
        let target = producer.dir().join("bundles").join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::rename(producer.dir().join(name), target).unwrap();
    }
    let bundle = |name: &str| {
        producer
            .dir()
            .join("bundles")
            .join(name)
            .display()
            .to_string()
    };

    // Unsigned, and signed by a key the store does not trust (`[caches] trusted-keys` names another): the objects
    // come in, the record is dropped with a warning naming its key and the hint, and the build runs the script.
    for (victim, name, why) in [
        (consumer(&producer), "evil.hsb", "the bundle is not signed"),
        (
            consumer_trusting_in_config(&producer),
            "evil-signed.hsb",
            "which is not a trusted key",
        ),
    ] {
        let (_, stderr) = ok(&victim.run(&["import", &bundle(name)]));
        assert!(
            stderr.contains(&format!("dropped the build record of key `{key}`"))
                && stderr.contains(why),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint:") && stderr.contains("--trust"),
            "{stderr}"
        );
        assert!(!stderr.contains("Registered 1 records"), "{stderr}");
        assert_eq!(store_record(&victim, &key), None);
        victim.verify_clean();
        let (output, stderr) = ok(&victim.run(&["build", "--target", "cpu"]));
        assert!(stderr.contains("Built"), "{stderr}");
        assert!(!stderr.contains("Fresh"), "{stderr}");
        assert_eq!(output, honest);
        assert_ne!(output.trim(), evil);
    }

    // Signed by a trusted key (`--trust`, or `[caches] trusted-keys`): registered, and reused without running.
    let by_flag = consumer(&producer);
    std::fs::copy(
        producer.dir().join("signer.pub"),
        by_flag.dir().join("signer.pub"),
    )
    .unwrap();
    for (victim, args) in [
        (by_flag, vec!["import", "--trust", "signer.pub"]),
        (consumer_trusting_in_config(&producer), vec!["import"]),
    ] {
        let good = bundle("good.hsb");
        let mut args = args;
        args.push(&good);
        let (_, stderr) = ok(&victim.run(&args));
        assert!(stderr.contains("Registered 1 records"), "{stderr}");
        assert!(!stderr.contains("dropped"), "{stderr}");
        assert!(store_record(&victim, &key).is_some());
        victim.verify_clean();
        let (output, stderr) = ok(&victim.run(&["build", "--target", "cpu"]));
        assert!(stderr.contains("Fresh"), "{stderr}");
        assert!(!stderr.contains("Built"), "{stderr}");
        assert_eq!(output, honest);
    }
}

/// Issue 20, attack #2 through a cache. `url` holds `producer`'s build of key `key` (stdout `built`), signed by
/// its `signer.secret`, and the build's inputs; `strip_signatures` rewrites that record unsigned in place; `node`
/// prepares a fresh consumer (cache credentials). `cache pull` registers the record only when signed by a trusted
/// key (`--trust` or `[caches] trusted-keys`); an unsigned or foreign-signed one is dropped with a warning naming
/// its key, and the next build runs the script.
fn pull_takes_only_trusted_records(
    producer: &Side,
    url: &str,
    key: &str,
    built: &str,
    strip_signatures: impl FnOnce(),
    node: impl Fn(Side) -> Side,
) {
    let builds_for_itself = |node: &Side| {
        assert_eq!(store_record(node, key), None);
        node.verify_clean();
        let (output, stderr) = ok(&node.run(&["build", "--target", "cpu"]));
        assert!(stderr.contains("Built"), "{stderr}");
        assert_eq!(output, built);
    };

    // No key trusted at all: the records are left, named.
    let plain = node(consumer(producer));
    let (_, stderr) = ok(&plain.run(&["cache", "pull", url]));
    assert!(
        stderr.contains(&format!("`{key}`")) && stderr.contains("no key is trusted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--trust"),
        "{stderr}"
    );
    builds_for_itself(&plain);

    // Signed, by a key this node does not trust.
    let stranger = node(consumer(producer));
    ok(&stranger.run(&["key", "generate", "--out", "other"]));
    let (_, stderr) = ok(&stranger.run(&["cache", "pull", url, "--trust", "other.pub"]));
    assert!(
        stderr.contains(&format!("build record `{key}` refused"))
            && stderr.contains("none of them trusted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--trust"),
        "{stderr}"
    );
    builds_for_itself(&stranger);

    // Trusted through `[caches] trusted-keys`: registered; the build is fresh.
    let trusting = node(consumer_trusting_in_config(producer));
    let (_, stderr) = ok(&trusting.run(&["cache", "pull", url]));
    assert!(stderr.contains("1 build records"), "{stderr}");
    assert!(!stderr.contains("dropped"), "{stderr}");
    assert!(store_record(&trusting, key).is_some());
    let (output, stderr) = ok(&trusting.run(&["build", "--target", "cpu"]));
    assert!(
        stderr.contains("Fresh") && !stderr.contains("Built"),
        "{stderr}"
    );
    assert_eq!(output, built);

    // The same record unsigned, to a node that trusts the signer: dropped, named.
    strip_signatures();
    let trusting = node(consumer_trusting_in_config(producer));
    let (_, stderr) = ok(&trusting.run(&["cache", "pull", url]));
    assert!(
        stderr.contains(&format!("build record `{key}` refused: it is not signed")),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--trust"),
        "{stderr}"
    );
    builds_for_itself(&trusting);
}

/// A producer of [`BUILD_RECIPE`] with a `signer` key that built and pushed its build (signed) and its inputs to
/// `url`; and the build's stdout.
fn pushed_signed_build(url: &str, node: impl Fn(Side) -> Side) -> (Side, String) {
    let producer = node(producer_with(30, 1, None, BUILD_RECIPE));
    ok(&producer.run(&["key", "generate", "--out", "signer"]));
    let (built, _) = ok(&producer.run(&[
        "build",
        "--target",
        "cpu",
        "--push",
        url,
        "--sign",
        "signer.secret",
    ]));
    ok(&producer.run(&["cache", "push", url]));
    (producer, built)
}

#[test]
fn cache_pull_takes_only_records_signed_by_a_trusted_key() {
    let caches = tempfile::tempdir().unwrap();
    let cache = caches.path().join("c");
    let url = format!("file://{}", cache.display());
    let (producer, built) = pushed_signed_build(&url, |side| side);
    let key = recorded_key(&cache);
    pull_takes_only_trusted_records(
        &producer,
        &url,
        &key,
        &built,
        || {
            edit_record(&cache, &key, |record| {
                record["signatures"] = serde_json::json!([]);
            });
        },
        |side| side,
    );
}

#[test]
fn s3_cache_pull_takes_only_records_signed_by_a_trusted_key() {
    let cluster = GarageCluster::start();
    let url = cluster.url("records");
    let vars = cluster.env(0);
    let with_cluster = |mut side: Side| {
        side.vars.clone_from(&vars);
        side
    };
    let (producer, built) = pushed_signed_build(&url, with_cluster);
    let cache = garage_cache(&cluster, "records");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = runtime.block_on(cache.record_keys()).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys[0].clone();
    pull_takes_only_trusted_records(
        &producer,
        &url,
        &key,
        &built,
        || {
            let name = format!("builds/{key}.json");
            let bytes = runtime.block_on(cache.get_raw(&name)).unwrap().unwrap();
            let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            record["signatures"] = serde_json::json!([]);
            runtime
                .block_on(cache.put_raw(&name, serde_json::to_vec(&record).unwrap()))
                .unwrap();
        },
        with_cluster,
    );
}

/// Issue 20, attack #2 on an HTTP cache, where records cannot be listed and `build --cache` is the path that takes
/// them: only a record signed by a trusted key is used; a foreign-signed or unsigned one is dropped with a warning
/// naming its key, and the build runs the script.
#[test]
fn http_cache_build_takes_only_records_signed_by_a_trusted_key() {
    let served = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(served.path(), true);
    let url = format!("{}/cache", nginx.url());
    let (producer, built) = pushed_signed_build(&url, |side| side);
    let key = recorded_key(&served.path().join("cache"));
    let build = |node: &Side, trust: &[&str]| {
        ok(&node.run(&["fetch", "--cache", &url]));
        let mut args = vec!["build", "--target", "cpu", "--cache", &url];
        args.extend_from_slice(trust);
        ok(&node.run(&args))
    };

    let stranger = consumer(&producer);
    ok(&stranger.run(&["key", "generate", "--out", "other"]));
    let (output, stderr) = build(&stranger, &["--trust", "other.pub"]);
    assert!(
        stderr.contains(&format!(
            "warning: cache `{url}`: build record `{key}` refused"
        )) && stderr.contains("none of them trusted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--trust"),
        "{stderr}"
    );
    assert!(stderr.contains("Built"), "{stderr}");
    assert_eq!(output, built);

    let trusting = consumer_trusting_in_config(&producer);
    let (output, stderr) = build(&trusting, &[]);
    assert!(stderr.contains("Substituted build"), "{stderr}");
    assert!(
        stderr.contains("Fresh") && !stderr.contains("Built"),
        "{stderr}"
    );
    assert_eq!(output, built);

    edit_record(&served.path().join("cache"), &key, |record| {
        record["signatures"] = serde_json::json!([]);
    });
    let trusting = consumer_trusting_in_config(&producer);
    let (output, stderr) = build(&trusting, &[]);
    assert!(
        stderr.contains(&format!("build record `{key}` refused: it is not signed")),
        "{stderr}"
    );
    assert!(stderr.contains("Built"), "{stderr}");
    assert_eq!(output, built);
}
