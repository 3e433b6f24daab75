//! What `-q` silences (status lines, progress, log events below `error`) and what it never does: data on stdout,
//! errors, warnings, and their hints (issue 20). `-qq` is `-q`. `-v` shows debug events, `RUST_LOG` overrides both;
//! colour only decorates the leading word.

use std::process::Output;

use crate::Cli;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Status lines go; the data on stdout stays, byte for byte.
#[test]
fn quiet_silences_status_lines_but_not_data() {
    let cli = Cli::new();
    cli.fixture_tree();
    let loud = cli.snapshot("add_with_root", &["store", "add", "--root", "fixture", "d"]);
    for quiet in ["-q", "-qq"] {
        let output = cli.run(&[quiet, "store", "add", "--root", "fixture", "d"]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(output.stdout, loud.stdout, "{quiet}");
        assert_eq!(stderr(&output), "", "{quiet}");
    }
    cli.snapshot("export_status", &["export", "--all", "-o", "all.hsb"]);
    for quiet in ["-q", "-qq"] {
        let output = cli.run(&[quiet, "export", "--all", "-o", "all.hsb"]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(stderr(&output), "", "{quiet}");
        let output = cli.run(&[quiet, "store", "verify"]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(stderr(&output), "", "{quiet}");
    }
}

/// A warning the user should act on is shown at every verbosity, and does not change the exit code.
#[test]
fn quiet_keeps_warnings() {
    let cli = Cli::new();
    cli.fixture_tree();
    let loud = cli.snapshot("add_without_root", &["store", "add", "d"]);
    for quiet in ["-q", "-qq"] {
        let output = cli.run(&[quiet, "store", "add", "d"]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(output.stdout, loud.stdout);
        assert_eq!(stderr(&output), stderr(&loud), "{quiet}");
    }
}

/// An error and its hint read the same at every verbosity.
#[test]
fn quiet_keeps_errors_and_hints() {
    let cli = Cli::new();
    let loud = cli.run(&["fetch", "--offline"]);
    assert_eq!(loud.status.code(), Some(2));
    assert!(stderr(&loud).contains("\nhint: "), "{}", stderr(&loud));
    for args in [
        &["-q", "fetch", "--offline"][..],
        &["-qq", "fetch", "--offline"],
        &["fetch", "--offline", "--quiet"],
        &["-v", "fetch", "--offline"],
    ] {
        let output = cli.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&output), stderr(&loud), "{args:?}");
    }
}

/// `-v` shows debug events (here the stat cache's count), `-q` wins over `-v`, and `RUST_LOG` wins over both.
#[test]
fn verbose_and_rust_log() {
    let cli = Cli::new();
    cli.fixture_tree();
    cli.snapshot(
        "add_verbose",
        &["-v", "store", "add", "--root", "fixture", "d"],
    );
    cli.write("d/c.txt", "more\n");
    let output = cli.run(&["-q", "-v", "store", "add", "--root", "fixture", "d"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "", "-q wins over -v");
    cli.write("d/e.txt", "even more\n");
    let output = cli
        .command(&["-q", "store", "add", "--root", "fixture", "d"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).starts_with("DEBUG add_path{path=d}: d: "),
        "RUST_LOG wins over -q: {}",
        stderr(&output)
    );
}

/// `--color always` colours the leading word of errors and status lines, never the message or the hint; the
/// default, off a terminal and with `NO_COLOR`, has no escapes at all.
#[test]
fn colour_decorates_only_the_leading_word() {
    let cli = Cli::new();
    let plain = stderr(&cli.run(&["fetch", "--offline"]));
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let coloured = cli
        .command(&["--color", "always", "fetch", "--offline"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(coloured.status.code(), Some(2));
    assert_eq!(
        stderr(&coloured),
        plain.replacen("error", "\x1b[1;31merror\x1b[0m", 1)
    );
    cli.fixture_tree();
    let status = cli.run(&["--color", "always", "store", "add", "--root", "r", "d"]);
    assert_eq!(stderr(&status), "");
    let status = cli.run(&["--color", "always", "store", "verify"]);
    assert_eq!(
        stderr(&status),
        "\x1b[1;32m    Verified\x1b[0m 4 objects, no problems\n"
    );
    let never = cli
        .command(&["--color", "never", "store", "verify"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(stderr(&never), "    Verified 4 objects, no problems\n");
}
