//! clap's grammar as users meet it: the `--help` texts, and every way a command line can be wrong. A usage error
//! exits 2 (clap's code, the same as hstore's "error"), prints only to stderr, and touches no store.

use crate::Cli;

#[test]
fn top_level_help() {
    let cli = Cli::new();
    let output = cli.snapshot("help_top_level", &["--help"]);
    assert_eq!(output.status.code(), Some(0));
    // `help` and `--help` are one text; `-h` is the short form (first doc lines only).
    assert_eq!(cli.run(&["help"]).stdout, output.stdout);
    cli.snapshot("help_top_level_short", &["-h"]);
}

#[test]
fn subcommand_help() {
    let cli = Cli::new();
    for (name, args) in [
        ("help_store", &["store", "--help"][..]),
        ("help_store_add", &["store", "add", "--help"]),
        ("help_export", &["export", "--help"]),
        ("help_bundle_inspect", &["bundle", "inspect", "--help"]),
        ("help_diff", &["diff", "--help"]),
    ] {
        let output = cli.snapshot(name, args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}");
    }
    // `help SUBCOMMAND` is the same text.
    assert_eq!(
        cli.run(&["help", "store", "add"]).stdout,
        cli.run(&["store", "add", "--help"]).stdout
    );
}

#[test]
fn version() {
    let cli = Cli::new();
    let output = cli.run(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("hstore {}\n", env!("CARGO_PKG_VERSION"))
    );
    // `propagate_version`: subcommands answer too.
    assert_eq!(cli.run(&["store", "--version"]).status.code(), Some(0));
}

/// Every usage error: exit 2, nothing on stdout, and no store created.
#[test]
fn usage_errors_exit_2() {
    let cli = Cli::new();
    for (name, args) in [
        ("usage_no_subcommand", &[][..]),
        ("usage_unknown_subcommand", &["frobnicate"]),
        ("usage_misspelt_subcommand", &["stor", "ls"]),
        ("usage_unknown_flag", &["store", "ls", "--frobnicate"]),
        ("usage_missing_argument", &["store", "add"]),
        (
            "usage_missing_arguments_list",
            &["store", "roots", "remove"],
        ),
        ("usage_missing_required_flag", &["export"]),
        ("usage_missing_value", &["lock", "--mirror"]),
        (
            "usage_level_zero",
            &["export", "--level", "0", "-o", "x.hsb"],
        ),
        (
            "usage_level_too_high",
            &["export", "--level", "23", "-o", "x.hsb"],
        ),
        ("usage_not_a_number", &["build", "--jobs", "x"]),
        (
            "usage_not_a_size",
            &["lock", "--max-unpacked-size", "banana"],
        ),
        ("usage_not_a_duration", &["build", "--timeout", "soon"]),
        (
            "usage_not_a_choice",
            &["--color", "sometimes", "store", "ls"],
        ),
        (
            "usage_not_a_component_mode",
            &["build", "--install-infinilm", "maybe"],
        ),
        ("usage_unexpected_positional", &["store", "ls", "extra"]),
    ] {
        let output = cli.snapshot(name, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    assert!(
        !cli.store().join("VERSION").exists(),
        "a usage error created a store"
    );
    assert!(!cli.root().join("x.hsb").exists());
}

/// `-q` does not hide clap's own errors either: a usage error is an error.
#[test]
fn usage_errors_print_even_when_quiet() {
    let cli = Cli::new();
    let loud = cli.run(&["store", "ls", "--frobnicate"]);
    for quiet in ["-q", "-qq", "--quiet"] {
        let output = cli.run(&[quiet, "store", "ls", "--frobnicate"]);
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(output.stderr, loud.stderr, "{quiet}");
    }
}

/// Global flags go anywhere on the line, `--store` wins over `HSTORE_STORE`, and repeated counts add up.
#[test]
fn global_flags_anywhere() {
    let cli = Cli::new();
    cli.fixture_tree();
    let elsewhere = cli.root().join("elsewhere");
    let before = cli.ok(&["--store", "elsewhere", "store", "add", "--root", "r", "d"]);
    let after = cli.ok(&["store", "add", "--root", "r", "d", "--store", "elsewhere"]);
    assert_eq!(before, after);
    assert!(elsewhere.join("VERSION").exists());
    assert!(!cli.store().join("VERSION").exists(), "HSTORE_STORE won");
    // Counted flags: `-qq`, `-q -q` and `--quiet --quiet` parse alike.
    for args in [
        &["-qq", "store", "ls"][..],
        &["-q", "-q", "store", "ls"],
        &["store", "ls", "--quiet", "--quiet"],
        &["-vv", "store", "ls"],
    ] {
        assert_eq!(cli.run(args).status.code(), Some(0), "{args:?}");
    }
}
