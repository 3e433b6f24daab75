//! The output of successful commands on a tiny fixture: data on stdout (addresses, tables, JSON), status lines on
//! stderr. Digests and sizes are literal: the same input gives the same bytes on every machine.

use crate::Cli;
use crate::failures::two_lockfiles;

/// The fixture tree's address: `d/` with `a.txt` and `sub/b`.
const TREE: &str = "b3:d3e2cb7483998fbe84ab50f06e9f5456a70106d9f50ff446b16f60e9b73b52e4";

#[test]
fn store_add_ls_roots_inventory_gc() {
    let cli = Cli::new();
    cli.fixture_tree();
    let output = cli.snapshot("store_add", &["store", "add", "--root", "fixture", "d"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{TREE}\n"));
    cli.write("loose.txt", "nobody keeps me\n");
    cli.ok(&["-q", "store", "add", "loose.txt"]);
    cli.snapshot("store_ls", &["store", "ls"]);
    cli.snapshot("store_roots", &["store", "roots"]);
    cli.snapshot("store_roots_json", &["store", "roots", "--json"]);
    cli.snapshot("store_inventory", &["store", "inventory"]);
    cli.snapshot(
        "store_cat",
        &[
            "store",
            "cat",
            "b3:8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99",
        ],
    );
    cli.snapshot("store_gc_dry_run", &["store", "gc", "--dry-run"]);
    cli.snapshot("store_gc", &["store", "gc"]);
    cli.snapshot(
        "store_roots_remove",
        &["store", "roots", "remove", "fixture"],
    );
    cli.snapshot("store_roots_empty", &["store", "roots"]);
    // Materializing gives the tree back.
    cli.snapshot("store_materialize", &["store", "materialize", TREE, "out"]);
    assert_eq!(
        std::fs::read_to_string(cli.root().join("out/a.txt")).unwrap(),
        "hello\n"
    );
}

#[test]
fn diff_of_two_lockfiles() {
    let cli = Cli::new();
    two_lockfiles(&cli);
    cli.snapshot("diff", &["diff", "old.json", "lockfile.json"]);
    cli.snapshot("diff_json", &["diff", "old.json", "--json"]);
    cli.snapshot("diff_none", &["diff", "lockfile.json", "lockfile.json"]);
    // The reverse diff swaps the signs.
    cli.snapshot("diff_reverse", &["diff", "lockfile.json", "old.json"]);
}

#[test]
fn why_of_a_crate_and_a_repository() {
    let cli = Cli::new();
    two_lockfiles(&cli);
    cli.snapshot("why_crate", &["why", "serde"]);
    cli.snapshot(
        "why_crate_old",
        &["why", "serde@1.0.227", "--lockfile", "old.json"],
    );
    cli.snapshot("why_repository", &["why", "core"]);
}

/// `export` of a rooted tree, and `bundle inspect` of the bundle: plain, `--json`, compressed, signed.
#[test]
fn export_and_bundle_inspect() {
    let mut cli = Cli::new();
    cli.fixture_tree();
    cli.ok(&["-q", "store", "add", "--root", "fixture", "d"]);
    cli.snapshot("export_all", &["export", "--all", "-o", "fixture.hsb"]);
    cli.snapshot("inspect", &["bundle", "inspect", "fixture.hsb"]);
    cli.snapshot(
        "inspect_json",
        &["bundle", "inspect", "fixture.hsb", "--json"],
    );
    let stdin = cli
        .command(&["bundle", "inspect", "-"])
        .stdin(std::fs::File::open(cli.root().join("fixture.hsb")).unwrap())
        .output()
        .unwrap();
    cli.assert_snapshot(
        "inspect_stdin",
        "hstore bundle inspect - < fixture.hsb",
        &stdin,
    );
    cli.snapshot(
        "export_level",
        &["export", "--all", "--level", "3", "-o", "small.hsb"],
    );
    cli.snapshot("inspect_compressed", &["bundle", "inspect", "small.hsb"]);

    // Keys are random: each shows as what it is.
    let release = cli.ok(&["key", "generate", "--out", "release"]);
    cli.replace(release.trim(), "[RELEASE-PUBKEY]");
    let other = cli.ok(&["key", "generate", "--out", "other"]);
    cli.replace(other.trim(), "[OTHER-PUBKEY]");
    let third = cli.run(&["key", "generate", "--out", "third"]);
    cli.replace(
        String::from_utf8_lossy(&third.stdout).trim(),
        "[THIRD-PUBKEY]",
    );
    cli.assert_snapshot("key_generate", "hstore key generate --out third", &third);
    cli.snapshot(
        "export_signed",
        &[
            "export",
            "--all",
            "--sign",
            "release.secret",
            "-o",
            "signed.hsb",
        ],
    );
    cli.snapshot("inspect_signed", &["bundle", "inspect", "signed.hsb"]);
    cli.snapshot(
        "inspect_signed_trusted",
        &["bundle", "inspect", "signed.hsb", "--trust", "release.pub"],
    );
    // A check that fails: signed, but not by the key given (exit 1), and unsigned with a key given (exit 1).
    let output = cli.snapshot(
        "inspect_signed_by_another",
        &["bundle", "inspect", "signed.hsb", "--trust", "other.pub"],
    );
    assert_eq!(output.status.code(), Some(1));
    let output = cli.snapshot(
        "inspect_unsigned_with_trust",
        &[
            "bundle",
            "inspect",
            "fixture.hsb",
            "--trust",
            "release.pub",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
}
