//! Resolution by a pinned `uv`: `uv pip compile --python-version V --python-platform P --only-binary :all:
//! --exclude-newer T --index-url I` for one target, read back as `name==version` pins.
//!
//! Why uv and not a native resolver: the lock must pick exactly what `uv pip compile` picks for the same inputs and
//! cutoff (issue 10), and the only maintained implementation of uv's PEP 440/508 semantics, marker evaluation for a
//! foreign target and its resolver's preferences is uv itself (`pep440_rs`/`pep508_rs` are stale; the `uv-*` crates
//! need rustc ≥ 1.97). A native pubgrub resolver would be a second implementation to keep in step forever. uv only
//! chooses versions: hstore reads every file's URL, size and sha256 from the PEP 691 index itself, chooses the wheel
//! by the target's tags, and downloads and verifies it. The uv version goes into the lockfile.
//!
//! The child gets no `UV_*`/`PIP_*` variables and `--no-config`, so a developer's uv settings cannot change a lock;
//! `UV_PYTHON_DOWNLOADS=never` keeps it from fetching interpreters.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::requirements::tags::{TargetPython, normalize_name};

/// A `uv` executable.
#[derive(Clone, Debug)]
pub struct Uv<'a> {
    program: &'a Path,
}

impl<'a> Uv<'a> {
    /// Wraps `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: &'a Path) -> Self {
        Self { program }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.program);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("UV_") || key_text.starts_with("PIP_") {
                command.env_remove(&key);
            }
        }
        command.env("UV_PYTHON_DOWNLOADS", "never");
        command
    }

    /// `uv 0.13.9`.
    pub fn version(&self) -> Result<String> {
        let output =
            self.command()
                .arg("--version")
                .output()
                .map_err(|source| Error::UvMissing {
                    program: self.program.to_path_buf(),
                    source,
                })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version: Vec<&str> = text.split_whitespace().take(2).collect();
        if !output.status.success() || version.len() != 2 || version[0] != "uv" {
            return Err(Error::Uv {
                target: String::new(),
                program: self.program.to_path_buf(),
                stderr: format!(
                    "`uv --version` printed `{}`{}",
                    text.trim(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(version.join(" "))
    }

    /// Resolves `requirements` (requirements-file text) for `target`; returns sorted `(name, version)` pins.
    pub fn compile(
        &self,
        requirements: &str,
        target: &TargetPython,
        index_url: &str,
        exclude_newer: &str,
        cache_dir: &Path,
    ) -> Result<Vec<(String, String)>> {
        let fail = |stderr: String| Error::Uv {
            target: target.key(),
            program: self.program.to_path_buf(),
            stderr,
        };
        let mut child = self
            .command()
            .args([
                "pip",
                "compile",
                "-",
                "--quiet",
                "--no-config",
                "--color",
                "never",
            ])
            .args(["--no-header", "--no-annotate", "--only-binary", ":all:"])
            .arg("--python-version")
            .arg(target.version())
            .arg("--python-platform")
            .arg(target.uv_platform())
            .args(["--exclude-newer", exclude_newer])
            .args(["--index-url", index_url])
            .arg("--cache-dir")
            .arg(cache_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::UvMissing {
                program: self.program.to_path_buf(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(requirements.as_bytes())
                .map_err(|error| fail(format!("writing the requirements to uv failed: {error}")))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|error| fail(format!("waiting for uv failed: {error}")))?;
        if !output.status.success() {
            return Err(fail(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        parse_pins(&String::from_utf8_lossy(&output.stdout)).map_err(fail)
    }
}

/// Reads `name==version` lines (comments and blank lines ignored; extras dropped).
pub fn parse_pins(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pins = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, version)) = line.split_once("==") else {
            return Err(format!("unexpected line in uv's output: `{line}`"));
        };
        let name = name.split('[').next().unwrap_or(name).trim();
        let version = version.split([';', ' ']).next().unwrap_or(version).trim();
        pins.push((normalize_name(name), version.to_owned()));
    }
    pins.sort();
    pins.dedup();
    Ok(pins)
}
