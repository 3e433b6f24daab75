//! Build provenance (issue 24, item 2): every build record carries an in-toto statement (SLSA provenance v1), a DSSE
//! envelope signed with the store's key under `build --sign`; it travels with the record through bundles and caches,
//! and `hstore verify-provenance` checks the signature, the subject and the build key recomputed from the inputs it
//! names. Real binary, real sandboxed builds of a one-line script.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hstore_build::provenance::Envelope;
use hstore_store::Digest;
use hstore_store::bundle::SecretKey;
use hstore_test_support::TestEnv;
use serde_json::Value;

const RECIPE: &str = r#"[recipe]
name = "app"

[sources.code]
path = "../src"

[targets.cpu]

[build]
script = '''
cp "$src_code/hello.txt" "$out/hello.txt"
echo built > "$out/stamp"
'''
"#;

/// A project (`project/recipes/app.toml`, `project/src/hello.txt`, a lockfile pinning `src/`) with a key pair
/// `project/signer.{secret,pub}`.
struct Project {
    env: TestEnv,
}

impl Project {
    fn new() -> Self {
        let project = Project {
            env: TestEnv::new(),
        };
        for dir in ["recipes", "src"] {
            std::fs::create_dir_all(project.dir().join(dir)).unwrap();
        }
        std::fs::write(project.dir().join("recipes/app.toml"), RECIPE).unwrap();
        std::fs::write(project.dir().join("src/hello.txt"), "hello\n").unwrap();
        let source = project.ok(&["store", "add", "src"]).trim().to_owned();
        let lockfile = format!(
            r#"{{"version":1,"recipes":[{{"name":"app","sources":[{{"name":"code","spec":{{"kind":"path","path":"../src","exclude":[]}},"artifacts":["path+src"]}}]}}],"artifacts":[{{"kind":"path","id":"path+src","path":"src","address":"{source}","size":6}}]}}"#
        );
        std::fs::write(project.dir().join("lockfile.json"), lockfile).unwrap();
        project.ok(&["key", "generate", "--out", "signer"]);
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    /// The locked address of `src/`.
    fn source(&self) -> Digest {
        let lockfile: Value =
            serde_json::from_slice(&std::fs::read(self.dir().join("lockfile.json")).unwrap())
                .unwrap();
        lockfile["artifacts"][0]["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `hstore ARGS` in the project directory, on the default store.
    fn hstore(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command.current_dir(self.dir()).args(args);
        command
    }

    /// `hstore --store <root>/NAME ARGS` in the project directory.
    fn on(&self, store: &str, args: &[&str]) -> Command {
        let mut command = self.hstore(&["--store"]);
        command.arg(self.env.root().join(store)).args(args);
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&mut self.hstore(args)).0
    }

    /// `build app --target cpu --sign signer.secret` → (output, build key).
    fn build_signed(&self) -> (Digest, Digest) {
        let output: Digest = self
            .ok(&["build", "app", "--target", "cpu", "--sign", "signer.secret"])
            .trim()
            .parse()
            .unwrap();
        (output, only_key(&self.env.store()))
    }
}

fn ok(command: &mut Command) -> (String, String) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs and asserts the exit code; returns stderr.
#[track_caller]
fn exits(command: &mut Command, code: i32) -> String {
    let Output { status, stderr, .. } = command.output().unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{command:?}:\n{stderr}");
    stderr
}

/// The one build key recorded in `store`.
fn only_key(store: &Path) -> Digest {
    let keys: Vec<String> = std::fs::read_dir(store.join("meta-v1/build"))
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
    let [key] = keys.as_slice() else {
        panic!("expected one build record, found {keys:?}");
    };
    Digest::from_hex(key).unwrap()
}

fn record_path(store: &Path, key: &Digest) -> PathBuf {
    store.join(format!("meta-v1/build/{}.json", key.to_hex()))
}

fn read_record(store: &Path, key: &Digest) -> Value {
    serde_json::from_slice(&std::fs::read(record_path(store, key)).unwrap()).unwrap()
}

/// The statement inside a record's DSSE envelope.
fn signed_statement(record: &Value) -> Value {
    let envelope = &record["provenance"]["envelope"];
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    serde_json::from_slice(
        &STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn a_signed_build_verifies_with_its_key_only_and_its_statement_names_output_key_and_every_input() {
    let project = Project::new();
    let (output, key) = project.build_signed();
    let record = read_record(&project.env.store(), &key);
    let statement = signed_statement(&record);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["name"], "app");
    assert_eq!(
        statement["subject"][0]["digest"]["blake3"],
        output.to_hex().as_str()
    );
    let predicate = &statement["predicate"];
    assert_eq!(
        predicate["runDetails"]["metadata"]["invocationId"],
        key.to_string().as_str()
    );
    for time in ["startedOn", "finishedOn"] {
        let text = predicate["runDetails"]["metadata"][time].as_str().unwrap();
        assert!(humantime::parse_rfc3339(text).is_ok(), "{time}: {text}");
    }
    let definition = &predicate["buildDefinition"];
    assert_eq!(definition["externalParameters"]["recipe"], "app");
    assert_eq!(definition["externalParameters"]["target"], "cpu");
    assert_eq!(
        definition["internalParameters"]["builder"],
        hstore_build::BUILDER_VERSION
    );
    assert!(
        definition["internalParameters"]["fingerprints"]["base-system"].is_string(),
        "{definition}"
    );
    // Every input, by its name in the recipe and its address: here the one `path` source.
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    let named: Vec<(&str, &str)> = dependencies
        .iter()
        .map(|dependency| {
            (
                dependency["name"].as_str().unwrap(),
                dependency["digest"]["blake3"].as_str().unwrap(),
            )
        })
        .collect();
    let source = project.source();
    assert_eq!(named, [("code", source.to_hex().as_str())]);
    assert_eq!(
        record["inputs"]["code"],
        format!("tree {source}").as_str(),
        "the record's inputs are what the key hashed"
    );

    // Trusted: verified, by recipe, by output address and by build key.
    let (_, stderr) = ok(&mut project.hstore(&[
        "verify-provenance",
        "app",
        "--target",
        "cpu",
        "--trust",
        "signer.pub",
    ]));
    assert!(stderr.contains("Verified"), "{stderr}");
    assert!(stderr.contains(&output.to_string()), "{stderr}");
    let (json, _) = ok(&mut project.hstore(&[
        "verify-provenance",
        &output.to_string(),
        "--trusted-keys",
        "signer.pub",
        "--json",
    ]));
    let verified: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(verified[0]["statement"], statement);
    ok(&mut project.hstore(&[
        "verify-provenance",
        &key.to_string(),
        "--trust",
        "signer.pub",
    ]));

    // Not trusted: a failed check (exit 1) naming the signer, with the hint to trust it.
    let stderr = exits(
        &mut project.hstore(&["verify-provenance", &output.to_string()]),
        1,
    );
    assert!(stderr.contains("none of them trusted"), "{stderr}");
    assert!(
        stderr.contains("hint: pass the signer's public key"),
        "{stderr}"
    );
    project.ok(&["key", "generate", "--out", "other"]);
    let stderr = exits(
        &mut project.hstore(&[
            "verify-provenance",
            &output.to_string(),
            "--trust",
            "other.pub",
        ]),
        1,
    );
    assert!(stderr.contains("none of them trusted"), "{stderr}");

    // Without `--sign`: same key, same output (provenance is in neither), an unsigned statement that is refused.
    ok(&mut project.on("plain", &["store", "add", "src"]));
    let unsigned: Digest = ok(&mut project.on("plain", &["build", "app", "--target", "cpu"]))
        .0
        .trim()
        .parse()
        .unwrap();
    assert_eq!(unsigned, output);
    let plain = project.env.root().join("plain");
    assert_eq!(only_key(&plain), key);
    let record = read_record(&plain, &key);
    assert_eq!(
        record["provenance"]["statement"]["subject"][0]["digest"]["blake3"],
        output.to_hex().as_str()
    );
    let stderr = exits(
        &mut project.on(
            "plain",
            &[
                "verify-provenance",
                &output.to_string(),
                "--trust",
                "signer.pub",
            ],
        ),
        1,
    );
    assert!(stderr.contains("is not signed"), "{stderr}");
    assert!(stderr.contains("--sign"), "{stderr}");
}

#[test]
fn a_statement_naming_another_input_is_refused_naming_it_whether_re_signed_or_not() {
    let project = Project::new();
    let (output, key) = project.build_signed();
    let store = project.env.store();
    let original = read_record(&store, &key);
    let source = project.source();
    let evil = Digest::of_bytes(b"another tree");
    // The attacker names another tree for `code`, consistently (descriptor and shape), so only the key can tell.
    let mut statement = signed_statement(&original);
    let code = &mut statement["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(code["name"], "code");
    code["digest"]["blake3"] = Value::from(evil.to_hex());
    code["annotations"]["shape"]["tree"] = Value::from(evil.to_string());
    let payload = serde_json::to_vec(&statement).unwrap();

    // Re-signed with the store's own key: the signature holds, the recomputed key does not.
    let signer = SecretKey::read(&project.dir().join("signer.secret")).unwrap();
    let mut re_signed = original.clone();
    re_signed["provenance"]["envelope"] =
        serde_json::to_value(Envelope::sign(&payload, &signer)).unwrap();
    std::fs::write(
        record_path(&store, &key),
        serde_json::to_vec(&re_signed).unwrap(),
    )
    .unwrap();
    let verify = [
        "verify-provenance",
        "app",
        "--target",
        "cpu",
        "--trust",
        "signer.pub",
    ];
    let stderr = exits(&mut project.hstore(&verify), 1);
    assert!(
        stderr.contains(&format!("provenance of output {output}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("input `code` is not the one the build key was computed from"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("expected: tree {source}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("found:    tree {evil}")),
        "{stderr}"
    );
    assert!(!stderr.contains("altered after signing"), "{stderr}");
    assert!(stderr.contains("hint: the record was altered"), "{stderr}");

    // The same change without re-signing: the signature check refuses it, and the input is still named.
    let mut altered = original.clone();
    altered["provenance"]["envelope"]["payload"] = Value::from(STANDARD.encode(&payload));
    std::fs::write(
        record_path(&store, &key),
        serde_json::to_vec(&altered).unwrap(),
    )
    .unwrap();
    let stderr = exits(&mut project.hstore(&verify), 1);
    assert!(stderr.contains("altered after signing"), "{stderr}");
    assert!(stderr.contains("input `code`"), "{stderr}");

    // Only the descriptor changed (its shape left alone): the dependency that disagrees is named.
    let mut statement = signed_statement(&original);
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["blake3"] =
        Value::from(evil.to_hex());
    let mut half = original.clone();
    half["provenance"]["envelope"] = serde_json::to_value(Envelope::sign(
        &serde_json::to_vec(&statement).unwrap(),
        &signer,
    ))
    .unwrap();
    std::fs::write(
        record_path(&store, &key),
        serde_json::to_vec(&half).unwrap(),
    )
    .unwrap();
    let stderr = exits(&mut project.hstore(&verify), 1);
    assert!(
        stderr.contains(&format!(
            "resolved dependency `code` names `{evil}`, but its input's shape names `{source}`"
        )),
        "{stderr}"
    );

    // A record without provenance (written before it existed): the check cannot pass, and says why.
    let mut bare = original.clone();
    bare.as_object_mut().unwrap().remove("provenance");
    std::fs::write(
        record_path(&store, &key),
        serde_json::to_vec(&bare).unwrap(),
    )
    .unwrap();
    let stderr = exits(&mut project.hstore(&verify), 1);
    assert!(stderr.contains("carries no provenance"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    // Restored, it verifies again.
    std::fs::write(
        record_path(&store, &key),
        serde_json::to_vec(&original).unwrap(),
    )
    .unwrap();
    ok(&mut project.hstore(&verify));
}

#[test]
fn provenance_travels_whole_through_a_bundle_and_a_cache() {
    let project = Project::new();
    let (output, key) = project.build_signed();
    let record = read_record(&project.env.store(), &key);
    assert!(record["provenance"]["envelope"].is_object(), "{record}");
    let verify = [
        "verify-provenance",
        &output.to_string(),
        "--trust",
        "signer.pub",
    ];

    // export → import into a fresh store.
    project.ok(&[
        "export",
        "--with-builds",
        "--sign",
        "signer.secret",
        "-o",
        "app.hsb",
    ]);
    ok(&mut project.on("imported", &["import", "--trust", "signer.pub", "app.hsb"]));
    let imported = project.env.root().join("imported");
    assert_eq!(read_record(&imported, &key), record);
    ok(&mut project.on("imported", &verify));

    // cache push → pull into a fresh store.
    let cache = project.env.root().join("cache-dir");
    let url = format!("file://{}", cache.display());
    project.ok(&[
        "cache",
        "push",
        &url,
        "--with-builds",
        "--sign",
        "signer.secret",
    ]);
    ok(&mut project.on("pulled", &["cache", "pull", &url, "--trust", "signer.pub"]));
    let pulled = project.env.root().join("pulled");
    assert_eq!(read_record(&pulled, &key), record);
    ok(&mut project.on("pulled", &verify));
}

#[test]
fn the_sign_key_of_the_settings_signs_provenance_and_a_missing_one_only_warns() {
    let project = Project::new();
    let config = project.dir().join("hstore.toml");
    std::fs::write(&config, "[caches]\nsign-key = \"missing.secret\"\n").unwrap();
    let (_, stderr) = ok(&mut project.hstore(&["build", "app", "--target", "cpu"]));
    assert!(
        stderr.contains("warning: the provenance of new build records will be unsigned"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.secret"), "{stderr}");
    let key = only_key(&project.env.store());
    assert!(
        read_record(&project.env.store(), &key)["provenance"]["statement"].is_object(),
        "unsigned"
    );

    std::fs::write(
        &config,
        "[caches]\nsign-key = \"signer.secret\"\ntrusted-keys = [\"signer.pub\"]\n",
    )
    .unwrap();
    ok(&mut project.on("configured", &["store", "add", "src"]));
    ok(&mut project.on("configured", &["build", "app", "--target", "cpu"]));
    let configured = project.env.root().join("configured");
    signed_statement(&read_record(&configured, &key));
    // `[caches] trusted-keys` is trusted as `import` trusts it.
    ok(&mut project.on(
        "configured",
        &["verify-provenance", "app", "--target", "cpu"],
    ));
}
