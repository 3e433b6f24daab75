//! `hstore fetch`: warm and cold, concurrent processes, SIGKILL recovery, no network, offline errors.

use std::process::Stdio;

use hstore_test_support::{Fault, TestEnv, TestRegistry};

use crate::common::{command, fails, hstore, ok, project_with_crates, recipe};

const CRATES_RECIPE: &str = "[recipe]\nname = \"app\"\n[sources.app]\npath = \"../app\"\n[sources.crates]\ncargo_lock = \"app:Cargo.lock\"\n";

/// Locks `n` crates into `env` and returns the registry serving them.
fn locked(env: &TestEnv, n: usize) -> hstore_test_support::RunningRegistry {
    let names: Vec<String> = (0..n).map(|i| format!("crate{i}")).collect();
    let mut builder = TestRegistry::new();
    for name in &names {
        builder = builder.crate_(name, "1.0.0");
    }
    let registry = builder.start();
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1.0.0")).collect();
    project_with_crates(env, &registry, &pairs);
    recipe(env, "app", CRATES_RECIPE);
    ok(&hstore(env, &["lock"]));
    registry
}

fn empty_store(env: &TestEnv) {
    std::fs::remove_dir_all(env.store()).unwrap();
    std::fs::create_dir_all(env.store()).unwrap();
}

#[test]
fn cold_fetch_restores_everything_and_registers_a_root() {
    let env = TestEnv::new();
    let registry = locked(&env, 3);
    empty_store(&env);
    ok(&hstore(&env, &["fetch"]));
    let roots: Vec<_> = std::fs::read_dir(env.store().join("roots-v1"))
        .unwrap()
        .collect();
    assert_eq!(roots.len(), 1);
    ok(&hstore(&env, &["store", "verify"]));
    // Warm: no request reaches the registry.
    let before = registry.requests().len();
    ok(&hstore(&env, &["fetch"]));
    assert_eq!(registry.requests().len(), before);
}

#[test]
fn warm_fetch_works_without_a_network() {
    let env = TestEnv::new();
    let _registry = locked(&env, 2);
    ok(&hstore(&env, &["fetch"]));
    let mut unshared = env.command("unshare");
    unshared.args(["-rn", env!("CARGO_BIN_EXE_hstore"), "fetch"]);
    let output = unshared.output().unwrap();
    ok(&output);
}

#[test]
fn offline_fetch_names_the_missing_artifact() {
    let env = TestEnv::new();
    let _registry = locked(&env, 1);
    empty_store(&env);
    let stderr = fails(&hstore(&env, &["fetch", "--offline"]), 2);
    assert!(
        stderr.contains("crate0@1.0.0") && stderr.contains("--offline"),
        "{stderr}"
    );
}

#[test]
fn two_fetches_at_once_both_succeed() {
    let env = TestEnv::new();
    let _registry = locked(&env, 6);
    empty_store(&env);
    let a = command(&env, &["fetch"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = command(&env, &["fetch"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ok(&a.wait_with_output().unwrap());
    ok(&b.wait_with_output().unwrap());
    ok(&hstore(&env, &["store", "verify"]));
}

#[test]
fn sigkill_mid_fetch_then_rerun_succeeds() {
    let env = TestEnv::new();
    let registry = locked(&env, 4);
    empty_store(&env);
    // Slow every download so the kill lands mid-fetch.
    for i in 0..4 {
        registry.fault(
            &format!("/dl/crate{i}/1.0.0/download"),
            Fault::Slow { delay_ms: 3000 },
            1,
        );
    }
    let mut child = command(&env, &["fetch"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let _ = child.wait();
    ok(&hstore(&env, &["fetch"]));
    let verify = hstore(&env, &["store", "verify"]);
    ok(&verify);
}

#[test]
fn refetch_detects_drift() {
    let env = TestEnv::new();
    let _registry = locked(&env, 1);
    // Claim a different address for the crate: the bytes verify (sha256) but the tree differs.
    let path = env.root().join("lockfile.json");
    let mut lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let fake = format!("b3:{}", "ab".repeat(32));
    for artifact in lock["artifacts"].as_array_mut().unwrap() {
        if artifact["kind"] == "crate" {
            artifact["address"] = serde_json::Value::String(fake.clone());
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    let stderr = fails(&hstore(&env, &["fetch"]), 2);
    assert!(
        stderr.contains("drifted") && stderr.contains("crate0@1.0.0") && stderr.contains(&fake),
        "{stderr}"
    );
}
