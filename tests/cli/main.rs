//! The CLI's own tests: what `hstore` says and how it exits, pinned as insta snapshots of the real binary's exit
//! code, stdout and stderr (uv's `uv_snapshot!`, cargo's `snapbox` tests). Each test runs the binary in its own
//! [`TestEnv`] (private `HOME`, `XDG_*`, `HSTORE_STORE`, `HSTORE_CACHE`; `NO_COLOR`; 100 columns), on a tiny
//! fixture made by the test itself.
//!
//! - [`args`]: clap's grammar: `--help` texts, unknown and missing arguments, values out of range (exit 2);
//! - [`failures`]: commands that fail for real (exit 2, or 1 for a failed check), and how their errors and hints read;
//! - [`quiet`]: what `-q`/`-qq` silence and what they never do, `-v`, `RUST_LOG` and `--color`;
//! - [`output`]: the output of successful commands (`store`, `diff`, `why`, `export`, `bundle inspect`, `--json`).
//!
//! Snapshots are files in `tests/cli/snapshots/` (reviewable as documents, and updatable without `cargo-insta`):
//! after a deliberate change, `INSTA_UPDATE=always cargo test --test cli` rewrites them, or `cargo insta test
//! --test cli --review` shows each change. Filters replace only what differs between runs (the temp dir as
//! `[TEMP]`, times as `[TIME]`, generated keys as `[PUBKEY]`); digests stay literal (house style rule 21).

mod args;
mod failures;
mod output;
mod quiet;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hstore_test_support::TestEnv;

/// One test's sandbox and the `hstore` binary run in it.
pub struct Cli {
    env: TestEnv,
    /// Literal text that differs between runs (generated keys), with what it is shown as.
    replacements: Vec<(String, String)>,
}

impl Cli {
    #[expect(
        clippy::new_without_default,
        reason = "creating a sandbox is not a default value"
    )]
    pub fn new() -> Self {
        Self {
            env: TestEnv::new(),
            replacements: Vec::new(),
        }
    }

    /// The sandbox, also the working directory of every command.
    pub fn root(&self) -> &Path {
        self.env.root()
    }

    /// `HSTORE_STORE`.
    pub fn store(&self) -> PathBuf {
        self.env.store()
    }

    /// Writes `contents` to `relative` (under [`Cli::root`]), creating its directories.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The fixture tree `d/`: `a.txt` (`hello\n`) and `sub/b` (`x`), 7 bytes in 2 files, none executable.
    pub fn fixture_tree(&self) {
        self.write("d/a.txt", "hello\n");
        self.write("d/sub/b", "x");
    }

    /// Shows every later occurrence of `text` as `shown` (for values made at random, such as keys).
    pub fn replace(&mut self, text: impl Into<String>, shown: &str) {
        self.replacements.push((text.into(), shown.to_owned()));
    }

    /// `hstore ARGS` in the sandbox, stdin empty, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command
            .args(args)
            .env("COLUMNS", "100")
            .stdin(Stdio::null());
        command
    }

    /// Runs `hstore ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run hstore")
    }

    /// Runs `hstore ARGS`, asserting exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "hstore {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `hstore ARGS` and compares its exit code, stdout and stderr with the snapshot `name`; returns the
    /// output. The snapshot's description is the command line.
    pub fn snapshot(&self, name: &str, args: &[&str]) -> Output {
        let output = self.run(args);
        self.assert_snapshot(name, &format!("hstore {}", args.join(" ")), &output);
        output
    }

    /// Compares `output` with the snapshot `name`, described as `command`.
    pub fn assert_snapshot(&self, name: &str, command: &str, output: &Output) {
        let text = self.render(output);
        let mut settings = insta::Settings::clone_current();
        settings.set_description(command);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, text));
    }

    /// `output` as a snapshot shows it, filtered: exit code, then both streams.
    pub fn render(&self, output: &Output) -> String {
        let code = output.status.code().map_or_else(
            || format!("killed ({})", output.status),
            |code| code.to_string(),
        );
        let text = format!(
            "exit: {code}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.filter(&text)
    }

    /// Replaces what differs between runs: the sandbox path (as given and resolved), RFC 3339 times, and the
    /// values given to [`Cli::replace`]. Nothing else: digests, sizes and messages stay literal.
    pub fn filter(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (from, to) in &self.replacements {
            text = text.replace(from, to);
        }
        let root = self.root().to_string_lossy().into_owned();
        let resolved = self.root().canonicalize().unwrap();
        text = text.replace(&*resolved.to_string_lossy(), "[TEMP]");
        text = text.replace(&root, "[TEMP]");
        replace_times(&text)
    }
}

/// `2026-12-07T06:22:57Z` (what `humantime::format_rfc3339_seconds` writes) as `[TIME]`.
fn replace_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let is_time = bytes.len() - index >= SHAPE.len()
            && SHAPE
                .iter()
                .zip(&bytes[index..])
                .all(|(shape, byte)| match shape {
                    b'd' => byte.is_ascii_digit(),
                    _ => shape == byte,
                });
        if is_time {
            out.push_str("[TIME]");
            index += SHAPE.len();
        } else {
            // Times are ASCII, so a match never starts inside a multi-byte character.
            let character = text[index..].chars().next().unwrap();
            out.push(character);
            index += character.len_utf8();
        }
    }
    out
}

/// The `hint:` lines of `stderr`.
pub fn hints(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|line| line.starts_with("hint:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn filters_replace_the_sandbox_and_times_and_nothing_else() {
    let mut cli = Cli::new();
    cli.replace("hstore-ed25519:abc", "[PUBKEY]");
    let root = cli.root().display().to_string();
    assert_eq!(
        cli.filter(&format!(
            "`{root}/store` at 2026-12-07T06:22:57Z by hstore-ed25519:abc: b3:0123 2026-12-07 größe"
        )),
        "`[TEMP]/store` at [TIME] by [PUBKEY]: b3:0123 2026-12-07 größe"
    );
}
