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
//! The child runs with a cleared environment (issue 20, attack 3): `PATH`, the proxy and CA variables
//! ([`PASSED_VARIABLES`]), `HOME` and the working directory pointed at a fresh scratch directory, `UV_NO_CONFIG=1`
//! (and `--no-config`) so no `uv.toml` is read, and `UV_PYTHON_DOWNLOADS=never` so it fetches no interpreter. Nothing
//! else of hstore's environment (tokens, cloud keys, `UV_*`, `PIP_*`, `RUST_LOG`) reaches it, so even a reference
//! that got past [`super::input`] would expand to nothing. The index and the cache directory are on its command line;
//! its input is [`super::input::Requirements::render`].

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use hstore_model::python::{TargetPython, normalize_name};

/// The variables of hstore's environment that uv also gets (besides `PATH`): proxies and CA certificates, in both
/// cases, as curl and uv read them.
pub const PASSED_VARIABLES: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "ssl_cert_file",
    "SSL_CERT_DIR",
    "ssl_cert_dir",
];

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

    /// A command with the cleared environment, and the scratch `HOME` it runs in (removed when dropped).
    #[expect(
        clippy::disallowed_methods,
        reason = "uv gets the allowlisted variables (PATH, proxy, CA bundle) copied through, never interpreted here"
    )]
    fn command(&self) -> Result<(Command, tempfile::TempDir)> {
        let home = tempfile::Builder::new()
            .prefix("hstore-uv-home-")
            .tempdir()
            .map_err(Error::io(
                "create a scratch home for uv in",
                std::env::temp_dir(),
            ))?;
        let mut command = Command::new(self.program);
        command.env_clear();
        for name in std::iter::once("PATH").chain(PASSED_VARIABLES.iter().copied()) {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("HOME", home.path())
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .current_dir(home.path());
        Ok((command, home))
    }

    /// `uv 0.13.9`.
    pub fn version(&self) -> Result<String> {
        let (mut command, _home) = self.command()?;
        let output = command
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

    /// Resolves `requirements` (hstore's rendering of parsed requirement lines, see [`super::input`]) for `target`;
    /// returns sorted `(name, version)` pins.
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
        let (mut command, _home) = self.command()?;
        let mut child = command
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
