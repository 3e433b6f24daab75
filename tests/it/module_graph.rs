//! The module graph of every crate has no cycle beyond the shrinking list in `scripts/module-cycles.known`
//! (`scripts/module-graph.sh`; issue 23: "no module circle anywhere, tests included"), and the script does see a
//! cycle when there is one.
// See: issue 23

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/module-graph.sh")
}

#[test]
fn no_crate_has_a_module_cycle_beyond_the_known_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(script())
        .args(["--quiet", "--known"])
        .arg(root.join("scripts/module-cycles.known"))
        .output()
        .expect("run scripts/module-graph.sh");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_script_finds_a_cycle_through_use_groups_super_and_code_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("demo/src");
    std::fs::create_dir_all(src.join("b")).expect("mkdir");
    std::fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\nmod c;\npub use a::A;\n",
    )
    .expect("write");
    // a -> b (a use group), b -> b::inner (a child), b::inner -> c (`super::super::`), c -> a (a path in code, after
    // a string and a comment that must not count).
    std::fs::write(
        src.join("a.rs"),
        "use crate::{b::{self, B}};\npub struct A;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("b/mod.rs"),
        "mod inner;\npub struct B;\nfn f() { inner::g() }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("b/inner.rs"),
        "pub fn g() { super::super::c::h() }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("c.rs"),
        "// crate::b::B\npub fn h() { let _ = \"crate::b::B\"; let _ = crate::a::A; }\n",
    )
    .expect("write");
    let output = Command::new(script())
        .arg("--root")
        .arg(dir.path())
        .output()
        .expect("run scripts/module-graph.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("cycle: a <-> b <-> b::inner <-> c"),
        "{stdout}"
    );
    assert!(stdout.contains("  c -> a\n"), "{stdout}");
}
