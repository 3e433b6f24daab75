//! The registry of record namespaces (issue 20, defect "`store verify` fails on every store holding wheels"): verify
//! checks each record against the kind that declares its namespace where it is written, so a store holding the
//! records of every kind verifies clean and `--repair` keeps them; a namespace no kind declares is reported and kept.

use hstore_test_support::{TestEnv, TestIndex, WheelSpec};

use crate::common::{command, fails, ok, recipe};
use crate::wheels::uv_program;

/// The record files of `namespace` in `env`'s store, sorted, with their bytes.
fn records(env: &TestEnv, namespace: &str) -> Vec<(String, Vec<u8>)> {
    let dir = env.store().join("meta-v1").join(namespace);
    let mut records: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("list {}: {error}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    records.sort();
    records
}

#[test]
fn store_verify_passes_on_a_store_holding_wheel_records_and_repair_keeps_them() {
    let index = TestIndex::start();
    index.wheel(&WheelSpec::new("leaf", "1.0", "py3-none-any"));
    index.wheel(&WheelSpec::new("twig", "2.0", "py3-none-any"));
    let env = TestEnv::new();
    recipe(
        &env,
        "pyapp",
        &format!(
            "[recipe]\nname = \"pyapp\"\n\n[sources.py]\nrequirements = [\"leaf\", \"twig\"]\nindex = \"{}\"\n\n\
             [targets.cpu]\npython = {{ version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }}\n",
            index.index_url()
        ),
    );
    let hstore = |args: &[&str]| {
        command(&env, args)
            .env("HSTORE_UV", uv_program())
            .output()
            .expect("run hstore")
    };
    ok(&hstore(&["lock"]));
    ok(&hstore(&["fetch"]));
    let wheels = records(&env, "wheel-sha256");
    assert_eq!(wheels.len(), 2, "one download record per wheel");

    let stderr = ok(&hstore(&["store", "verify"]));
    assert!(stderr.contains("no problems"), "{stderr}");
    assert!(!stderr.contains("wheel-sha256"), "{stderr}");
    let stderr = ok(&hstore(&["store", "verify", "--repair"]));
    assert!(stderr.contains("no problems"), "{stderr}");
    assert_eq!(records(&env, "wheel-sha256"), wheels, "repair kept them");
    // The records still serve: a warm offline fetch finds every wheel from them.
    ok(&hstore(&["fetch", "--offline"]));

    // A namespace no kind declares (a newer hstore's, say): reported, and kept by repair, as the wheels are.
    let future = env.store().join("meta-v1/future-kind");
    std::fs::create_dir_all(&future).unwrap();
    std::fs::write(future.join("x.json"), "{\"a\": 1}\n").unwrap();
    let stderr = fails(&hstore(&["store", "verify"]), 1);
    assert!(
        stderr.contains("1 records in namespace `future-kind`, which this hstore does not write"),
        "{stderr}"
    );
    fails(&hstore(&["store", "verify", "--repair"]), 1);
    assert!(
        future.join("x.json").exists(),
        "repair deleted an unknown namespace"
    );
    assert_eq!(records(&env, "wheel-sha256"), wheels);
}
