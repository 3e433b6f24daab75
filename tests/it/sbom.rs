//! `hstore sbom`: the bill of materials of a lockfile (every kind the fixtures produce), of a bundle read without
//! importing it, and of a recorded build's closure, validated against the official CycloneDX 1.6 and SPDX 2.3
//! JSON schemas (`tests/data/schemas/`, see its README) with purls and licences checked field by field.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use hstore_fetchers::lockfile::Lockfile;
use hstore_test_support::{
    CrateSpec, GitRepo, RunningRegistry, TestEnv, TestIndex, TestRegistry, WheelSpec,
    deterministic_tar_gz, sha256_hex,
};
use serde_json::Value;

use crate::common::{command, fails, lockfile_json, ok, project_with_crates, recipe};

/// The official schemas, `$ref`s resolved from the local copies only (no network).
struct LocalSchemas(HashMap<String, Value>);

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("schema `{uri}` is not among the local copies").into())
    }
}

fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/schemas")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("read schema")).expect("schema JSON")
}

fn validator(name: &str) -> jsonschema::Validator {
    let mut local = HashMap::new();
    for (id, file) in [
        (
            "http://cyclonedx.org/schema/spdx.schema.json",
            "spdx.schema.json",
        ),
        (
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            "jsf-0.82.schema.json",
        ),
    ] {
        local.insert(id.to_owned(), schema_file(file));
    }
    jsonschema::options()
        .with_retriever(LocalSchemas(local))
        .should_validate_formats(true)
        .build(&schema_file(name))
        .expect("compile schema")
}

/// Asserts `document` is valid, and that the validator is not toothless: a document broken on purpose is not.
#[track_caller]
fn assert_valid(name: &str, document: &Value, break_it: impl FnOnce(&mut Value)) {
    let validator = validator(name);
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|error| error.to_string())
        .collect();
    assert!(errors.is_empty(), "not valid against {name}: {errors:#?}");
    let mut broken = document.clone();
    break_it(&mut broken);
    assert!(
        !validator.is_valid(&broken),
        "{name} accepted a broken document"
    );
}

/// Runs `hstore` with `args` and returns stdout, asserting success.
#[track_caller]
fn run(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut hstore = command(env, args);
    hstore.env_remove("SOURCE_DATE_EPOCH");
    for (name, value) in extra {
        hstore.env(name, value);
    }
    let output = hstore.output().expect("run hstore");
    ok(&output);
    output.stdout
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("SBOM JSON")
}

/// A project locking one artifact of every kind the fixtures produce, fetched into the store.
struct Fixture {
    env: TestEnv,
    registry: RunningRegistry,
    _index: TestIndex,
    wheels: [(String, String); 3],
    host: String,
}

const GITHUB: &str = "https://github.com/Example/Svc.git";

fn fixture() -> Fixture {
    let env = TestEnv::new();
    let tool = deterministic_tar_gz(&[("tool-1.0/README".to_owned(), b"tool\n".to_vec())]);
    let registry = TestRegistry::new()
        .crate_with(
            "licensed",
            "1.0.0",
            CrateSpec {
                license: Some("MIT OR Apache-2.0"),
                ..CrateSpec::default()
            },
        )
        .crate_("plain", "0.1.0")
        .file("/files/tool-1.0.tar.gz", &tool)
        .file("/files/data.bin", b"data\n")
        .start();
    project_with_crates(
        &env,
        &registry,
        &[("licensed", "1.0.0"), ("plain", "0.1.0")],
    );

    let index = TestIndex::start();
    let any = "py3-none-any";
    let modern =
        index.wheel(&WheelSpec::new("modern", "1.0", any).license_expression("Apache-2.0"));
    let legacy = index.wheel(&WheelSpec::new("legacy", "2.0", any).license("BSD"));
    let bare = index.wheel(&WheelSpec::new("bare", "3.0", any));

    let sub = GitRepo::init(env.root().join("git/sub"));
    sub.write("s", "sub\n");
    sub.commit("sub");
    let svc = GitRepo::init(env.root().join("git/svc"));
    svc.write("a", "svc\n");
    svc.add_submodule("vendor/sub", &sub.file_url());
    svc.commit("svc");
    svc.git(&["branch", "-M", "main"]);

    // A rustup home whose toolchain is a stand-in: `rust_toolchain` stores whatever the directory holds.
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let toolchain = env
        .root()
        .join(format!("rustup/toolchains/1.95.0-{host}/bin"));
    std::fs::create_dir_all(&toolchain).unwrap();
    std::fs::write(toolchain.join("rustc"), "#!/bin/sh\n").unwrap();

    recipe(
        &env,
        "app",
        &format!(
            "[recipe]\nname = \"app\"\n\
             [sources.app]\npath = \"../app\"\n\
             [sources.crates]\ncargo_lock = \"app:Cargo.lock\"\n\
             [sources.svc]\ngit = \"{GITHUB}\"\nref = \"main\"\n\
             [sources.tool]\nurl = \"{}\"\nsha256 = \"{}\"\nunpack = true\nstrip_components = 1\n\
             [sources.data]\nurl = \"{}\"\nsha256 = \"{}\"\n\
             [sources.py]\nrequirements = [\"modern==1.0 --hash=sha256:{}\", \"legacy==2.0 --hash=sha256:{}\", \
             \"bare==3.0 --hash=sha256:{}\"]\nindex = \"{}\"\n\
             [sources.rust]\nrust_toolchain = \"1.95.0\"\n\
             [targets.cpu]\npython = {{ version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }}\n",
            registry.file_url("/files/tool-1.0.tar.gz"),
            sha256_hex(&tool),
            registry.file_url("/files/data.bin"),
            sha256_hex(b"data\n"),
            modern.sha256,
            legacy.sha256,
            bare.sha256,
            index.index_url(),
        ),
    );
    let mirror = format!("{GITHUB}={}", svc.file_url());
    let rustup = env.root().join("rustup");
    for step in ["lock", "fetch"] {
        let mut hstore = command(&env, &[step, "--mirror", &mirror]);
        hstore
            .env("RUSTUP_HOME", &rustup)
            .env("HSTORE_UV", crate::wheels::uv_program());
        ok(&hstore.output().expect("run hstore"));
    }

    // xmake archives come from an xmake probe (minutes of building xmake): one is added as lock would write it,
    // its bytes stored as fetch would store them.
    let archive = b"zlib archive\n";
    let archive_path = env.root().join("zlib-1.3.tar.gz");
    std::fs::write(&archive_path, archive).unwrap();
    let added = command(&env, &["store", "add", archive_path.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&added);
    let address = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    let path = env.root().join("lockfile.json");
    let mut lockfile = lockfile_json(&path);
    lockfile["artifacts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "xmake_archive",
            "id": "xmake+cpu/zlib@1.3",
            "package": "zlib",
            "version": "1.3",
            "target": "cpu",
            "url": "https://github.com/madler/zlib/releases/download/v1.3/zlib-1.3.tar.gz",
            "sha256": sha256_hex(archive),
            "file_name": "zlib-1.3.tar.gz",
            "search_names": ["zlib-1.3.tar.gz"],
            "address": address,
            "size": archive.len(),
        }));
    let parsed =
        Lockfile::from_slice(&serde_json::to_vec(&lockfile).unwrap(), &path).expect("lockfile");
    parsed.save(&path).unwrap();
    Fixture {
        env,
        registry,
        _index: index,
        wheels: [
            (modern.filename, modern.sha256),
            (legacy.filename, legacy.sha256),
            (bare.filename, bare.sha256),
        ],
        host,
    }
}

/// The component named `name`.
fn named<'a>(sbom: &'a Value, name: &str) -> &'a Value {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| component["name"] == name)
        .unwrap_or_else(|| panic!("no component named `{name}`"))
}

/// The component whose `bom-ref` is, or starts with, `reference`.
fn component<'a>(sbom: &'a Value, reference: &str) -> &'a Value {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| {
            component["bom-ref"]
                .as_str()
                .is_some_and(|r| r == reference || r.starts_with(reference))
        })
        .unwrap_or_else(|| panic!("no component `{reference}`"))
}

fn hash(component: &Value, alg: &str) -> Option<String> {
    component["hashes"]
        .as_array()?
        .iter()
        .find(|hash| hash["alg"] == alg)
        .map(|hash| hash["content"].as_str().unwrap().to_owned())
}

/// The SPDX package whose purl is `purl`.
fn package<'a>(sbom: &'a Value, purl: &str) -> &'a Value {
    sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| {
            package["externalRefs"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["referenceLocator"] == purl))
        })
        .unwrap_or_else(|| panic!("no package with purl `{purl}`"))
}

#[test]
fn sbom_of_a_lockfile_with_every_kind_is_valid_with_purls_hashes_and_licences() {
    let fixture = fixture();
    let env = &fixture.env;
    let lockfile = lockfile_json(&env.root().join("lockfile.json"));
    let bytes = run(env, &["sbom"], &[]);
    let sbom = json(&bytes);
    assert_valid("bom-1.6.schema.json", &sbom, |broken| {
        broken["components"][0]["hashes"][0]["alg"] = "BLAKE4".into();
    });
    assert_eq!(sbom["specVersion"], "1.6");
    assert!(sbom["metadata"].get("timestamp").is_none());

    // Every kind the fixtures produce, and every artifact, is a component with a purl.
    let kinds: BTreeSet<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|component| component["properties"].as_array().unwrap())
        .filter(|property| property["name"] == "hstore:kind")
        .map(|property| property["value"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "crate",
        "wheel",
        "git",
        "git-submodule",
        "url",
        "path",
        "rust_toolchain",
        "xmake_archive",
        "recipe",
    ] {
        assert!(kinds.contains(kind), "no {kind} component: {kinds:?}");
    }
    for artifact in lockfile["artifacts"].as_array().unwrap() {
        let component = component(&sbom, artifact["id"].as_str().unwrap());
        assert!(component["purl"].as_str().unwrap().starts_with("pkg:"));
        assert_eq!(
            hash(component, "BLAKE3").unwrap(),
            artifact["address"]
                .as_str()
                .unwrap()
                .trim_start_matches("b3:")
        );
    }

    // Crates: the registry's sha256 of the `.crate`, the manifest's licence; none when it declares none.
    let licensed = named(&sbom, "licensed");
    let index = fixture
        .registry
        .crates_index_url()
        .replace('/', "%2F")
        .replace('+', "%2B");
    assert_eq!(
        licensed["purl"],
        format!("pkg:cargo/licensed@1.0.0?repository_url={index}")
    );
    assert_eq!(
        hash(licensed, "SHA-256").unwrap(),
        fixture.registry.checksum("licensed", "1.0.0")
    );
    assert_eq!(
        licensed["licenses"],
        serde_json::json!([{ "expression": "MIT OR Apache-2.0" }])
    );
    let plain = named(&sbom, "plain");
    assert!(plain.get("licenses").is_none(), "{plain}");

    // Wheels: License-Expression as an expression, a legacy `License` that is no expression as a name, none.
    let wheel = |name: &str| named(&sbom, name).clone();
    let [(modern_file, modern_sha), (legacy_file, _), (bare_file, _)] = &fixture.wheels;
    let modern = wheel("modern");
    assert_eq!(
        modern["purl"],
        format!("pkg:pypi/modern@1.0?file_name={modern_file}")
    );
    assert_eq!(hash(&modern, "SHA-256").as_ref(), Some(modern_sha));
    assert_eq!(
        modern["licenses"],
        serde_json::json!([{ "expression": "Apache-2.0" }])
    );
    let legacy = wheel("legacy");
    assert_eq!(
        legacy["purl"],
        format!("pkg:pypi/legacy@2.0?file_name={legacy_file}")
    );
    assert_eq!(
        legacy["licenses"],
        serde_json::json!([{ "license": { "name": "BSD" } }])
    );
    let bare = wheel("bare");
    assert_eq!(
        bare["purl"],
        format!("pkg:pypi/bare@3.0?file_name={bare_file}")
    );
    assert!(bare.get("licenses").is_none());

    // Git: github.com by owner/repo@commit; a submodule elsewhere as generic with its vcs_url.
    let svc = component(&sbom, &format!("git+{GITHUB}#"));
    let commit = svc["version"].as_str().unwrap();
    assert_eq!(svc["purl"], format!("pkg:github/example/svc@{commit}"));
    let submodule = component(
        &sbom,
        &format!("git+{GITHUB}#{commit}#submodule/vendor/sub"),
    );
    let sub_commit = submodule["version"].as_str().unwrap();
    assert!(
        submodule["purl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pkg:generic/sub@{sub_commit}?vcs_url=git%2Bfile:")),
        "{submodule}"
    );

    // Downloads: the URL and sha256 in the purl; a plain file is a `file`.
    let tool = named(&sbom, "tool-1.0.tar.gz");
    assert!(
        tool["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:generic/tool-1.0.tar.gz?checksum=sha256:")
    );
    assert!(
        tool["purl"]
            .as_str()
            .unwrap()
            .contains("&download_url=http:")
    );
    let data = component(
        &sbom,
        &format!("url+{}", fixture.registry.file_url("/files/data.bin")),
    );
    assert_eq!(data["type"], "file");
    assert_eq!(hash(data, "SHA-256").unwrap(), sha256_hex(b"data\n"));

    // xmake archive, toolchain, local path.
    let zlib = component(&sbom, "xmake+cpu/zlib@1.3");
    assert_eq!(
        zlib["purl"],
        format!(
            "pkg:generic/zlib@1.3?checksum=sha256:{}&download_url=https:%2F%2Fgithub.com%2Fmadler%2Fzlib%2Freleases%2Fdownload%2Fv1.3%2Fzlib-1.3.tar.gz",
            sha256_hex(b"zlib archive\n")
        )
    );
    let rust = component(&sbom, "rust-toolchain+");
    assert_eq!(
        rust["purl"],
        format!("pkg:generic/rust@1.95.0?arch={}", fixture.host)
    );
    let app = component(&sbom, "path+");
    assert_eq!(app["purl"], "pkg:generic/app");
    assert!(app.get("externalReferences").is_none());

    // The recipe depends on every artifact its sources locked; the lockfile contains the recipe.
    let depends = |reference: &str| depends_on(&sbom, reference);
    let locked: BTreeSet<String> = lockfile["recipes"][0]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|source| source["artifacts"].as_array().unwrap())
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(depends("recipe:app"), locked);
    assert_eq!(
        depends("lockfile"),
        BTreeSet::from(["recipe:app".to_owned()])
    );
    assert!(
        depends(svc["bom-ref"].as_str().unwrap()).contains(submodule["bom-ref"].as_str().unwrap())
    );

    // SPDX: valid, same purls, licences as expressions, LicenseRef or NOASSERTION.
    let spdx = json(&run(env, &["sbom", "--format", "spdx"], &[]));
    assert_valid("spdx-2.3.schema.json", &spdx, |broken| {
        broken["packages"][0]["checksums"] =
            serde_json::json!([{ "algorithm": "BLAKE4", "checksumValue": "00" }]);
    });
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(
        package(&spdx, licensed["purl"].as_str().unwrap())["licenseDeclared"],
        "MIT OR Apache-2.0"
    );
    assert_eq!(
        package(&spdx, modern["purl"].as_str().unwrap())["licenseDeclared"],
        "Apache-2.0"
    );
    let legacy_ref = package(&spdx, legacy["purl"].as_str().unwrap())["licenseDeclared"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(legacy_ref.starts_with("LicenseRef-"), "{legacy_ref}");
    assert!(
        spdx["hasExtractedLicensingInfos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|info| info["licenseId"] == legacy_ref.as_str() && info["extractedText"] == "BSD")
    );
    assert_eq!(
        package(&spdx, bare["purl"].as_str().unwrap())["licenseDeclared"],
        "NOASSERTION"
    );
    assert_eq!(
        package(&spdx, plain["purl"].as_str().unwrap())["licenseDeclared"],
        "NOASSERTION"
    );
    let checksums = &package(&spdx, modern["purl"].as_str().unwrap())["checksums"];
    assert_eq!(checksums[0]["algorithm"], "SHA256");
    assert_eq!(checksums[1]["algorithm"], "BLAKE3");

    // Deterministic: the same bytes again; SOURCE_DATE_EPOCH is the only time written; `-o` writes the same bytes.
    assert_eq!(run(env, &["sbom"], &[]), bytes);
    let out = env.root().join("sbom.cdx.json");
    run(env, &["sbom", "-o", out.to_str().unwrap()], &[]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let stamped = json(&run(env, &["sbom"], &[("SOURCE_DATE_EPOCH", "1700000000")]));
    assert_eq!(stamped["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    assert_ne!(stamped["serialNumber"], sbom["serialNumber"]);
    let stamped = json(&run(
        env,
        &["sbom", "--format", "spdx"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    ));
    assert_eq!(stamped["creationInfo"]["created"], "2023-11-14T22:13:20Z");

    // Without a store (a machine that never fetched): the same components, no licences, no error.
    let none = env.root().join("no-store");
    let bare_sbom = json(&run(env, &["--store", none.to_str().unwrap(), "sbom"], &[]));
    assert!(!none.exists(), "sbom created a store");
    assert_eq!(
        bare_sbom["components"].as_array().unwrap().len(),
        sbom["components"].as_array().unwrap().len()
    );
    assert!(
        bare_sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|component| component.get("licenses").is_none())
    );
}

#[test]
fn sbom_of_a_bundle_equals_the_sbom_of_its_lockfile_byte_for_byte() {
    let fixture = fixture();
    let env = &fixture.env;
    let bundle = env.root().join("stack.hsb");
    ok(&command(env, &["export", "-o", bundle.to_str().unwrap()])
        .output()
        .unwrap());
    // The same closure compressed as a whole (`--level`): read through the decoder, the same SBOM.
    let compressed = env.root().join("stack-l9.hsb");
    ok(&command(
        env,
        &["export", "--level", "9", "-o", compressed.to_str().unwrap()],
    )
    .output()
    .unwrap());
    let empty = env.root().join("gateway-store");
    for (format, bundle) in [
        ("cyclonedx", &bundle),
        ("spdx", &bundle),
        ("cyclonedx", &compressed),
    ] {
        let of_lockfile = run(env, &["sbom", "--format", format], &[]);
        let of_bundle = run(
            env,
            &[
                "--store",
                empty.to_str().unwrap(),
                "sbom",
                "--bundle",
                bundle.to_str().unwrap(),
                "--format",
                format,
            ],
            &[],
        );
        assert!(
            of_bundle == of_lockfile,
            "{format}: the bundle's SBOM differs from the lockfile's:\n{}\n---\n{}",
            String::from_utf8_lossy(&of_bundle),
            String::from_utf8_lossy(&of_lockfile)
        );
        // Licences came out of the bundle (no store was there to read them from).
        assert!(String::from_utf8_lossy(&of_bundle).contains("MIT OR Apache-2.0"));
    }
    assert!(!empty.exists(), "reading a bundle's SBOM created a store");
}

#[test]
fn sbom_of_a_build_lists_its_inputs_and_the_outputs_it_read_as_dependencies() {
    let env = TestEnv::new();
    let registry = TestRegistry::new()
        .crate_with(
            "licensed",
            "1.0.0",
            CrateSpec {
                license: Some("MIT"),
                ..CrateSpec::default()
            },
        )
        .start();
    project_with_crates(&env, &registry, &[("licensed", "1.0.0")]);
    std::fs::create_dir_all(env.root().join("core-src")).unwrap();
    std::fs::write(env.root().join("core-src/core.c"), "int core;\n").unwrap();
    let build = "[targets.cpu]\n[build]\nscript = 'mkdir -p \"$out/lib\" && ls \"$src_code\" > \"$out/lib/list\"'\n";
    recipe(
        &env,
        "core",
        &format!("[recipe]\nname = \"core\"\n[sources.code]\npath = \"../core-src\"\n{build}"),
    );
    recipe(
        &env,
        "app",
        &format!(
            "[recipe]\nname = \"app\"\n[sources.code]\npath = \"../app\"\n[sources.crates]\n\
             cargo_lock = \"code:Cargo.lock\"\n[sources.core]\nrecipe = \"core\"\n{build}"
        ),
    );
    ok(&command(&env, &["lock"]).output().unwrap());
    ok(&command(&env, &["fetch"]).output().unwrap());
    let built = command(&env, &["build", "app", "--target", "cpu"])
        .output()
        .unwrap();
    ok(&built);
    let output = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    let core_output = String::from_utf8_lossy(
        &command(&env, &["build", "core", "--target", "cpu"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let lockfile = lockfile_json(&env.root().join("lockfile.json"));
    let id_of = |part: &str| -> String {
        lockfile["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .find(|id| id.contains(part))
            .unwrap_or_else(|| panic!("no artifact {part}"))
    };

    let bytes = run(&env, &["sbom", "app", "--target", "cpu"], &[]);
    let sbom = json(&bytes);
    assert_valid("bom-1.6.schema.json", &sbom, |broken| {
        broken["metadata"]["component"]["type"] = "recipe".into();
    });
    let subject = &sbom["metadata"]["component"];
    assert_eq!(subject["bom-ref"], format!("build:{output}"));
    assert_eq!(subject["name"], "app");
    assert_eq!(
        hash(subject, "BLAKE3").unwrap(),
        output.trim_start_matches("b3:")
    );
    let depends = |reference: &str| depends_on(&sbom, reference);
    let crate_id = id_of("crate+");
    assert_eq!(
        depends(&format!("build:{output}")),
        BTreeSet::from([
            format!("build:{core_output}"),
            id_of("path+app"),
            crate_id.clone(),
        ])
    );
    assert_eq!(
        depends(&format!("build:{core_output}")),
        BTreeSet::from([id_of("path+core-src")])
    );
    let core = component(&sbom, &format!("build:{core_output}"));
    assert_eq!(core["type"], "application");
    assert_eq!(
        component(&sbom, &crate_id)["licenses"],
        serde_json::json!([{ "expression": "MIT" }])
    );
    // Only the closure's artifacts: nothing else of the lockfile.
    assert_eq!(sbom["components"].as_array().unwrap().len(), 4);

    // By output address, the same document; SPDX says DEPENDS_ON.
    assert_eq!(run(&env, &["sbom", &output], &[]), bytes);
    let spdx = json(&run(&env, &["sbom", &output, "--format", "spdx"], &[]));
    assert_valid("spdx-2.3.schema.json", &spdx, |broken| {
        broken["relationships"][0]["relationshipType"] = "USES".into();
    });
    let depends_on = spdx["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "DEPENDS_ON")
        .count();
    assert_eq!(depends_on, 4);
}

#[test]
fn bad_inputs_are_named_with_a_hint() {
    let env = TestEnv::new();
    let missing = fails(
        &command(&env, &["sbom", "--lockfile", "nope.json"])
            .output()
            .unwrap(),
        2,
    );
    assert!(
        missing.contains("error: failed to read lockfile `nope.json`"),
        "{missing}"
    );
    assert!(
        missing.contains("hint: run `hstore lock` to create it"),
        "{missing}"
    );

    let not_bundle = env.root().join("lockfile.hsb");
    std::fs::write(&not_bundle, "{\"version\": 1}\n").unwrap();
    let stderr = fails(
        &command(&env, &["sbom", "--bundle", not_bundle.to_str().unwrap()])
            .output()
            .unwrap(),
        2,
    );
    assert!(
        stderr.contains("failed to read the SBOM of bundle")
            && stderr.contains("is not an hstore bundle"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: `hstore export -o FILE` writes bundles"),
        "{stderr}"
    );

    let stdin = fails(
        &command(&env, &["sbom", "--bundle", "-"]).output().unwrap(),
        2,
    );
    assert!(stdin.contains("cannot read a bundle from stdin"), "{stdin}");
    assert!(
        stdin.contains("hint: save the bundle to a file first"),
        "{stdin}"
    );

    std::fs::write(
        env.root().join("lockfile.json"),
        "{\"version\": 1, \"recipes\": [], \"artifacts\": []}\n",
    )
    .unwrap();
    let mut stamped = command(&env, &["sbom"]);
    stamped.env("SOURCE_DATE_EPOCH", "yesterday");
    let epoch = fails(&stamped.output().unwrap(), 2);
    assert!(
        epoch.contains("`SOURCE_DATE_EPOCH` is `yesterday`"),
        "{epoch}"
    );
    assert!(epoch.contains("hint: set it to"), "{epoch}");
}

/// The refs a CycloneDX document says `reference` depends on.
fn depends_on(sbom: &Value, reference: &str) -> BTreeSet<String> {
    sbom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == reference)
        .unwrap_or_else(|| panic!("no dependencies of {reference}: {sbom}"))["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}
