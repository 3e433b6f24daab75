//! The kill and concurrency campaign, sized for CI (seconds): SIGKILL at spread moments of `store add`, `import`,
//! `fetch`, `cache pull` (from a `file://` cache) and `gc`, each followed by `store verify` (no partial object, no root
//! or record naming a missing object) and a re-run that must succeed; then 8 processes mixing those commands on one
//! store. `bench/campaign.sh` runs the
//! long version (50 trials per command, builds included) and prints the figures.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::support::{Env, noise};

/// A tree big enough that every command below is still working a few milliseconds in: 24 files of 512 KiB.
fn payload(env: &Env, name: &str) {
    let dir = env.path(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    for index in 0..24u64 {
        let path = if index % 3 == 0 {
            dir.join("sub").join(format!("f{index}"))
        } else {
            dir.join(format!("f{index}"))
        };
        fs::write(path, noise(index + 100, 512 << 10)).unwrap();
    }
}

/// Starts `command`, SIGKILLs it after `delay` (if still running), reaps it. Returns whether it was killed.
fn kill_after(command: &mut Command, delay: Duration) -> bool {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    killed
}

/// Pushes the `src` store's closure of `lockfile.json` to a `file://` cache and returns the cache's URL.
fn push_to_file_cache(env: &Env) -> String {
    let cache = format!("file://{}", env.path("cache").display());
    fs::create_dir_all(env.path("cache")).unwrap();
    env.ok(env.hstore("src").args([
        "cache",
        "push",
        cache.as_str(),
        "--lockfile",
        "lockfile.json",
    ]));
    cache
}

/// Moments to kill at: early (opening, manifest), middle (objects streaming), late (batch commit, roots).
const DELAYS_MS: [u64; 4] = [3, 15, 40, 90];

#[test]
fn kill_trials_leave_a_clean_store_and_a_rerun_succeeds() {
    let env = Env::new();
    payload(&env, "tree");
    let tree = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env.hstore("src").args(["export", "-o", "bundle.hsb"]));
    let cache = push_to_file_cache(&env);
    let mut killed = 0;
    for (trial, delay) in DELAYS_MS.iter().enumerate() {
        let delay = Duration::from_millis(*delay);
        let store = format!("add-{trial}");
        killed += usize::from(kill_after(
            env.hstore(&store)
                .args(["store", "add", "--root", "t", "tree"]),
            delay,
        ));
        env.verify_clean(&store);
        env.ok(env
            .hstore(&store)
            .args(["store", "add", "--root", "t", "tree"]));
        env.verify_clean(&store);

        let store = format!("import-{trial}");
        killed += usize::from(kill_after(
            env.hstore(&store).args(["import", "bundle.hsb"]),
            delay,
        ));
        env.verify_clean(&store);
        env.ok(env.hstore(&store).args(["import", "bundle.hsb"]));
        env.verify_clean(&store);
        assert_eq!(env.ls(&store), env.ls("src"));

        let store = format!("fetch-{trial}");
        killed += usize::from(kill_after(env.hstore(&store).args(["fetch"]), delay));
        env.verify_clean(&store);
        env.ok(env.hstore(&store).args(["fetch"]));
        env.verify_clean(&store);
        assert_eq!(env.ls(&store), env.ls("src"));

        let store = format!("pull-{trial}");
        let pull = [
            "cache",
            "pull",
            cache.as_str(),
            "--lockfile",
            "lockfile.json",
        ];
        killed += usize::from(kill_after(env.hstore(&store).args(pull), delay));
        env.verify_clean(&store);
        env.ok(env.hstore(&store).args(pull));
        env.verify_clean(&store);
        assert_eq!(env.ls(&store), env.ls("src"));

        // gc of a store holding the rooted tree and an unrooted copy of another.
        let store = format!("gc-{trial}");
        env.ok(env.hstore(&store).args(["import", "bundle.hsb"]));
        payload(&env, "loose");
        fs::write(env.path("loose/marker"), format!("trial {trial}\n")).unwrap();
        env.add(&store, &env.path("loose"));
        killed += usize::from(kill_after(env.hstore(&store).args(["store", "gc"]), delay));
        env.verify_clean(&store);
        env.ok(env.hstore(&store).args(["store", "gc"]));
        env.verify_clean(&store);
        assert_eq!(env.ls(&store), env.ls("src"), "gc kept exactly the root");
        assert!(
            fs::read_dir(env.path(&store).join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }
    // At least the early kills must have landed mid-command, or the campaign proved nothing.
    assert!(
        killed >= 4,
        "only {killed} of 20 commands were still running when killed"
    );
}

#[test]
fn eight_processes_mixing_fetch_import_add_pull_and_gc_leave_a_clean_store() {
    let env = Env::new();
    payload(&env, "tree");
    let tree = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env.hstore("src").args(["export", "-o", "bundle.hsb"]));
    let cache = push_to_file_cache(&env);
    // 8 workers at once, each running its three commands one after the other.
    thread::scope(|scope| {
        for worker in 0..8 {
            let env = &env;
            let cache = cache.as_str();
            scope.spawn(move || {
                let args: &[&str] = match worker % 5 {
                    0 => &["fetch"],
                    1 => &["import", "bundle.hsb"],
                    2 => &["store", "add", "tree"],
                    3 => &["cache", "pull", cache, "--lockfile", "lockfile.json"],
                    _ => &["store", "gc"],
                };
                for _ in 0..3 {
                    let output = env.hstore("shared").args(args).output().unwrap();
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    // Every command either succeeded or failed cleanly (an error message, exit 2), never by a
                    // signal or a panic.
                    match output.status.code() {
                        Some(0) => {}
                        Some(2) => assert!(
                            stderr.contains("error:") && !stderr.contains("panicked"),
                            "{args:?}: {stderr}"
                        ),
                        other => panic!("{args:?}: exit {other:?}:\n{stderr}"),
                    }
                }
            });
        }
    });
    env.verify_clean("shared");
    env.ok(env.hstore("shared").args(["fetch"]));
    env.ok(env.hstore("shared").args(["store", "gc"]));
    env.verify_clean("shared");
    assert_eq!(env.ls("shared"), env.ls("src"));
}
