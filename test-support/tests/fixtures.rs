//! Tests of the git and environment fixtures.

use hstore_test_support::{GitRepo, TestEnv};

fn build(dir: &std::path::Path) -> (GitRepo, String, String) {
    let repo = GitRepo::init(dir);
    repo.write("README", "hello\n")
        .write_executable("bin/run", "#!/bin/sh\necho hi\n")
        .symlink("link", "README");
    let first = repo.commit("first");
    repo.branch("stable")
        .tag("v1.0")
        .annotated_tag("v1.0-annotated", "release 1.0");
    repo.write("README", "hello again\n");
    let second = repo.commit("second");
    (repo, first, second)
}

#[test]
fn git_commit_ids_are_reproducible() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let (repo, first, second) = build(&one.path().join("repo"));
    let (_, first_again, second_again) = build(&two.path().join("elsewhere"));
    assert_eq!((&first, &second), (&first_again, &second_again));
    assert_ne!(first, second);

    assert_eq!(repo.git(&["rev-parse", "stable"]), first);
    assert_eq!(repo.git(&["rev-parse", "v1.0"]), first);
    assert_eq!(repo.git(&["cat-file", "-t", "v1.0-annotated"]), "tag");
    assert_eq!(repo.git(&["rev-parse", "v1.0-annotated^{commit}"]), first);
    let tree = repo.git(&["ls-tree", "-r", "HEAD"]);
    assert!(
        tree.contains("100755 blob") && tree.contains("bin/run"),
        "{tree}"
    );
    assert!(
        tree.contains("120000 blob") && tree.contains("link"),
        "{tree}"
    );
    assert!(repo.file_url().starts_with("file:///"));
}

#[test]
fn git_submodules_clone_recursively() {
    let temp = tempfile::tempdir().expect("tempdir");
    let library = GitRepo::init(temp.path().join("library"));
    library.write("lib.c", "int x;\n");
    let library_commit = library.commit("library");

    let app = GitRepo::init(temp.path().join("app"));
    app.write("main.c", "int main(void) { return 0; }\n")
        .add_submodule("third_party/library", &library.file_url());
    app.commit("app with submodule");
    assert_eq!(
        app.git(&["rev-parse", "HEAD:third_party/library"]),
        library_commit
    );

    let clone = temp.path().join("clone");
    let clone_arg = clone.to_str().expect("utf-8 path");
    app.git(&[
        "clone",
        "--quiet",
        "--recurse-submodules",
        &app.file_url(),
        clone_arg,
    ]);
    assert_eq!(
        std::fs::read_to_string(clone.join("third_party/library/lib.c")).expect("submodule file"),
        "int x;\n"
    );
}

#[test]
fn test_env_sanitizes_the_environment() {
    let env = TestEnv::new();
    let output = env
        .command("env")
        .env("UNRELATED_CHECK", "kept")
        .output()
        .expect("run env");
    let vars = String::from_utf8(output.stdout).expect("utf-8");
    let value = |key: &str| {
        vars.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
    };
    assert_eq!(value("HOME"), Some(env.home().display().to_string()));
    assert_eq!(
        value("HSTORE_STORE"),
        Some(env.store().display().to_string())
    );
    assert_eq!(
        value("HSTORE_CACHE"),
        Some(env.cache().display().to_string())
    );
    assert_eq!(value("HSTORE_TEST_NO_RETRY_DELAY").as_deref(), Some("1"));
    assert_eq!(value("NO_COLOR").as_deref(), Some("1"));
    assert!(
        value("XDG_DATA_HOME")
            .is_some_and(|path| path.starts_with(&env.root().display().to_string()))
    );
    assert_eq!(value("UNRELATED_CHECK").as_deref(), Some("kept"));
    // `cargo test` sets these for us; none may leak into the binary under test.
    for leaked in [
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "CARGO_TARGET_DIR",
        "GIT_AUTHOR_NAME",
        "HTTPS_PROXY",
    ] {
        assert_eq!(value(leaked), None, "{leaked} leaked");
    }
    assert!(env.home().is_dir() && env.store().is_dir() && env.cache().is_dir());
}
