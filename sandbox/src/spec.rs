//! [`SandboxSpec`]: everything one sandboxed build sees, and its validation.
//!
//! A spec is plain data, serialized as JSON from the caller to the helper. Its invariants (checked by
//! [`SandboxSpec::validate`] on the calling side, before anything is started):
//! - every path inside the sandbox MUST be absolute, without `..`, and MUST NOT be `/`, or at or under `/proc`,
//!   `/dev` or [`BUILD_DIR`]; it MUST NOT equal one of the sandbox's own mount points (`/tmp`, `/etc`, [`HOME_DIR`]);
//! - no two binds share an inside path;
//! - the writable binds (build and output directories) MUST NOT overlap a read-only host path (an input, a
//!   declared host path, the base root), so a store directory bound read-only can never become writable;
//! - a base root, when set, MUST be an absolute host path without `..`, and MUST NOT be the host's `/`;
//! - environment names MUST be non-empty without `=` or NUL, and MUST NOT be one the sandbox sets itself
//!   ([`RESERVED_ENV`]).
//!
//! Host-side existence checks need the file system and live in [`SandboxSpec::check_host`]; there a base root
//! MUST be a directory holding `usr/` and `etc/` directories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `SOURCE_DATE_EPOCH` when the spec does not choose one: 1980-01-01T00:00:00Z, the earliest time a ZIP file holds.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 315_532_800;
/// `PATH` inside when the spec's environment does not set it.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Where the build directory (writable scratch) appears inside; also the default working directory.
pub const BUILD_DIR: &str = "/build";
/// `HOME` inside: an empty, private tmpfs.
pub const HOME_DIR: &str = "/homeless";
/// The hostname inside.
pub const HOSTNAME: &str = "hstore-build";
/// Environment names the sandbox sets itself; a spec may not set them.
pub const RESERVED_ENV: &[&str] = &["HOME", "TMPDIR", "TERM", "SOURCE_DATE_EPOCH", "out"];

/// A host path made visible at a path inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// The path on the host.
    pub host: PathBuf,
    /// Where it appears inside the sandbox.
    pub inside: PathBuf,
}

impl Bind {
    /// A bind of `host` at `inside`.
    pub fn new(host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        Bind {
            host: host.into(),
            inside: inside.into(),
        }
    }
}

/// What one sandboxed build runs and sees. Run it with [`Sandbox::run`](crate::Sandbox::run).
///
/// Besides the fields, the sandbox always provides a fresh `/proc`, a minimal `/dev`, a tmpfs `/tmp` and an empty
/// `HOME`; and, as the rest of the root, either the [`base_root`](Self::base_root) tree read-only or, without one,
/// the host base system read-only (`/usr`, `/bin`, `/lib*`, `/sbin`) with a minimal `/etc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The command's argv; `command[0]` is an absolute path inside the sandbox (no `PATH` search).
    pub command: Vec<String>,
    /// The environment, exactly; the sandbox adds `HOME`, `TMPDIR`, `TERM`, `SOURCE_DATE_EPOCH`, `out`, and `PATH`
    /// when this does not set it.
    pub env: BTreeMap<String, String>,
    /// Read-only inputs (store objects materialized on the host), each at its declared inside path.
    pub inputs: Vec<Bind>,
    /// Host paths a target declares (`/usr/local/cuda`, `/opt/vendor-sdk`): bound read-only at the same path.
    pub host_paths: Vec<PathBuf>,
    /// Host directory bound writable at [`BUILD_DIR`].
    pub build_dir: PathBuf,
    /// The output directory, bound writable; its inside path is exported as `$out`.
    pub output: Bind,
    /// The working directory inside; [`BUILD_DIR`] by default.
    pub workdir: PathBuf,
    /// Exported as `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: u64,
    /// A host directory holding a complete root file system (a materialized store tree of pinned Debian
    /// packages: `usr/`, `bin -> usr/bin`, `lib -> usr/lib`, `etc/`, …) that becomes the sandbox's root instead of
    /// the host base system: its top-level directories are bound read-only and its top-level symlinks recreated,
    /// except the names the sandbox mounts itself or keeps out (`proc`, `dev`, `sys`, `tmp`, `build`, the home directory) and an empty
    /// directory named like the first component of an input, declared host path or output. Its `etc/` is bound
    /// whole, so it MUST carry `passwd`, `group`, `hosts`, `nsswitch.conf` (and `hostname`, `ld.so.conf.d/`,
    /// `alternatives/` as the build needs them): the sandbox writes nothing there. Nothing of the host is visible
    /// but the spec's own binds and the devices of `/dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_root: Option<PathBuf>,
}

impl SandboxSpec {
    /// A spec running `command` with an empty environment, no inputs, the working directory [`BUILD_DIR`] and
    /// [`DEFAULT_SOURCE_DATE_EPOCH`].
    pub fn new(command: Vec<String>, build_dir: impl Into<PathBuf>, output: Bind) -> Self {
        SandboxSpec {
            command,
            env: BTreeMap::new(),
            inputs: Vec::new(),
            host_paths: Vec::new(),
            build_dir: build_dir.into(),
            output,
            workdir: PathBuf::from(BUILD_DIR),
            source_date_epoch: DEFAULT_SOURCE_DATE_EPOCH,
            base_root: None,
        }
    }

    /// A spec running `script` with `/bin/sh -c`; `set -e` and the like are the script's business.
    pub fn shell(script: &str, build_dir: impl Into<PathBuf>, output: Bind) -> Self {
        Self::new(
            vec!["/bin/sh".into(), "-c".into(), script.into()],
            build_dir,
            output,
        )
    }

    /// Checks the invariants listed in the [module docs](self) without touching the file system.
    pub fn validate(&self) -> Result<()> {
        let Some(program) = self.command.first() else {
            return Err(Error::invalid("command", "it is empty"));
        };
        if !program.starts_with('/') {
            return Err(Error::invalid(
                format!("command `{program}`"),
                "the program must be an absolute path inside the sandbox",
            ));
        }
        for argument in &self.command {
            if argument.contains('\0') {
                return Err(Error::invalid(
                    format!("command argument {argument:?}"),
                    "it contains NUL",
                ));
            }
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(Error::invalid(
                    format!("environment variable {name:?}"),
                    "names must be non-empty without `=` or NUL",
                ));
            }
            if RESERVED_ENV.contains(&name.as_str()) {
                return Err(Error::invalid(
                    format!("environment variable `{name}`"),
                    "the sandbox sets it itself",
                ));
            }
            if value.contains('\0') {
                return Err(Error::invalid(
                    format!("environment variable `{name}`"),
                    "its value contains NUL",
                ));
            }
        }

        check_host_path_syntax("build directory", &self.build_dir)?;
        check_host_path_syntax("output directory", &self.output.host)?;
        let mut read_only_hosts = Vec::new();
        let mut seen_inside = BTreeSet::new();
        for input in &self.inputs {
            check_host_path_syntax("input", &input.host)?;
            check_inside_path("input", &input.inside, &mut seen_inside)?;
            read_only_hosts.push(("input", &input.host));
        }
        for path in &self.host_paths {
            check_host_path_syntax("declared host path", path)?;
            check_inside_path("declared host path", path, &mut seen_inside)?;
            read_only_hosts.push(("declared host path", path));
        }
        check_inside_path("output directory", &self.output.inside, &mut seen_inside)?;
        check_absolute_inside("working directory", &self.workdir)?;
        if let Some(base) = &self.base_root {
            check_host_path_syntax("base root", base)?;
            if base.parent().is_none() {
                return Err(Error::invalid(
                    "base root `/`",
                    "the host's root is not a base tree; leave the base root unset to use the host base system",
                ));
            }
            read_only_hosts.push(("base root", base));
        }

        for (role, writable) in [
            ("build directory", &self.build_dir),
            ("output directory", &self.output.host),
        ] {
            if writable == Path::new("/") {
                return Err(Error::invalid(
                    format!("{role} `/`"),
                    "the host root cannot be bound writable",
                ));
            }
            for (other_role, read_only) in &read_only_hosts {
                if writable.starts_with(read_only) || read_only.starts_with(writable) {
                    return Err(Error::invalid(
                        format!("{role} `{}`", writable.display()),
                        format!(
                            "it overlaps the read-only {other_role} `{}`; a read-only path must never be writable",
                            read_only.display()
                        ),
                    ));
                }
            }
        }
        if self.build_dir.starts_with(&self.output.host)
            || self.output.host.starts_with(&self.build_dir)
        {
            return Err(Error::invalid(
                format!("output directory `{}`", self.output.host.display()),
                format!(
                    "it overlaps the build directory `{}`",
                    self.build_dir.display()
                ),
            ));
        }
        Ok(())
    }

    /// Checks, on the host, that every path the spec names exists and has the right kind, so that a missing
    /// declared host path is reported by name before anything runs.
    pub fn check_host(&self) -> Result<()> {
        if let Some(base) = &self.base_root {
            check_base_root(base)?;
        }
        for path in &self.host_paths {
            std::fs::metadata(path).map_err(|source| Error::MissingHostPath {
                path: path.clone(),
                source,
            })?;
        }
        for input in &self.inputs {
            if let Err(source) = std::fs::metadata(&input.host) {
                return Err(Error::BadHostPath {
                    role: "input",
                    path: input.host.clone(),
                    reason: source.to_string(),
                });
            }
        }
        for (role, dir) in [
            ("build directory", &self.build_dir),
            ("output directory", &self.output.host),
        ] {
            match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::BadHostPath {
                        role,
                        path: dir.clone(),
                        reason: "it is not a directory".into(),
                    });
                }
                Err(source) => {
                    return Err(Error::BadHostPath {
                        role,
                        path: dir.clone(),
                        reason: source.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A base root must be a directory holding `usr/` and `etc/` (symlinks to directories count): without them it
/// cannot be a root file system, and the sandbox would fail later with a less telling error.
fn check_base_root(base: &Path) -> Result<()> {
    let bad = |reason: String| Error::BadBaseRoot {
        path: base.to_path_buf(),
        reason,
    };
    match std::fs::metadata(base) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(bad("it is not a directory".into())),
        Err(source) => return Err(bad(source.to_string())),
    }
    for name in ["usr", "etc"] {
        match std::fs::metadata(base.join(name)) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(bad(format!("its `{name}` is not a directory"))),
            Err(source) => return Err(bad(format!("it has no `{name}/` directory ({source})"))),
        }
    }
    Ok(())
}

/// Host paths must be absolute and free of `..`, because the helper resolves them under the old root.
fn check_host_path_syntax(role: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid(
            format!("{role} `{}`", path.display()),
            "host paths must be absolute",
        ));
    }
    if has_nul_or_parent(path) {
        return Err(Error::invalid(
            format!("{role} `{}`", path.display()),
            "it contains `..` or NUL",
        ));
    }
    Ok(())
}

fn check_absolute_inside(role: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid(
            format!("{role} `{}`", path.display()),
            "paths inside the sandbox must be absolute",
        ));
    }
    if has_nul_or_parent(path) {
        return Err(Error::invalid(
            format!("{role} `{}`", path.display()),
            "it contains `..` or NUL",
        ));
    }
    Ok(())
}

/// Checks an inside mount target: absolute, clean, not one of the sandbox's own mounts, not seen before.
fn check_inside_path(role: &str, path: &Path, seen: &mut BTreeSet<PathBuf>) -> Result<()> {
    check_absolute_inside(role, path)?;
    let what = || format!("{role} `{}`", path.display());
    if path.parent().is_none() {
        return Err(Error::invalid(
            what(),
            "nothing can be bound over the sandbox's root",
        ));
    }
    for reserved in ["/proc", "/dev", BUILD_DIR] {
        if path.starts_with(reserved) {
            return Err(Error::invalid(
                what(),
                format!("`{reserved}` belongs to the sandbox"),
            ));
        }
    }
    for reserved in ["/tmp", "/etc", HOME_DIR] {
        if path == Path::new(reserved) {
            return Err(Error::invalid(
                what(),
                format!("`{reserved}` belongs to the sandbox"),
            ));
        }
    }
    // `components()` drops `.` and doubled slashes, so `/a/./b` and `/a//b` count as duplicates of `/a/b`.
    let normalized: PathBuf = path.components().collect();
    if !seen.insert(normalized) {
        return Err(Error::invalid(
            what(),
            "another bind already uses this inside path",
        ));
    }
    Ok(())
}

fn has_nul_or_parent(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().contains(&0) || path.components().any(|c| c == Component::ParentDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        let mut spec = SandboxSpec::shell("true", "/tmp/b", Bind::new("/tmp/o", "/out"));
        spec.inputs.push(Bind::new("/store/abc", "/inputs/abc"));
        spec
    }

    fn invalid_reason(spec: &SandboxSpec) -> String {
        match spec.validate() {
            Err(Error::InvalidSpec { what, reason }) => format!("{what}: {reason}"),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_spec_is_valid() {
        spec().validate().expect("valid");
    }

    #[test]
    fn the_command_must_be_absolute_and_present() {
        let mut s = spec();
        s.command = vec!["sh".into()];
        assert!(invalid_reason(&s).contains("absolute"));
        s.command.clear();
        assert!(invalid_reason(&s).contains("empty"));
    }

    #[test]
    fn reserved_and_malformed_env_is_rejected() {
        let mut s = spec();
        s.env.insert("HOME".into(), "/root".into());
        assert!(invalid_reason(&s).contains("sets it itself"));
        let mut s = spec();
        s.env.insert("A=B".into(), "x".into());
        assert!(invalid_reason(&s).contains("without `=`"));
        let mut s = spec();
        s.env.insert("PATH".into(), "/opt/bin".into());
        s.validate().expect("PATH may be set");
    }

    #[test]
    fn inside_paths_must_be_clean_and_unique() {
        for bad in [
            "relative", "/", "/a/../b", "/proc/x", "/dev", "/build/x", "/tmp", "/etc",
        ] {
            let mut s = spec();
            s.inputs.push(Bind::new("/store/x", bad));
            s.validate().expect_err(bad);
        }
        let mut s = spec();
        s.inputs.push(Bind::new("/store/other", "/inputs//abc"));
        assert!(invalid_reason(&s).contains("already uses"));
        let mut s = spec();
        s.inputs.push(Bind::new("/store/x", "/etc/OpenCL"));
        s.validate().expect("binds below /etc are allowed");
    }

    #[test]
    fn a_read_only_path_can_never_be_bound_writable() {
        let mut s = spec();
        s.output.host = PathBuf::from("/store/abc/sub");
        assert!(invalid_reason(&s).contains("read-only input"));
        let mut s = spec();
        s.build_dir = PathBuf::from("/store");
        assert!(invalid_reason(&s).contains("read-only input"));
        let mut s = spec();
        s.host_paths.push(PathBuf::from("/opt/sdk"));
        s.output.host = PathBuf::from("/opt/sdk/out");
        assert!(invalid_reason(&s).contains("read-only declared host path `/opt/sdk`"));
        let mut s = spec();
        s.output.host = PathBuf::from("/");
        s.inputs.clear();
        assert!(invalid_reason(&s).contains("host root"));
    }

    #[test]
    fn a_base_root_is_absolute_not_the_host_root_and_never_writable() {
        let mut s = spec();
        s.base_root = Some(PathBuf::from("/store/trees/base"));
        s.validate().expect("valid");
        s.base_root = Some(PathBuf::from("trees/base"));
        assert!(invalid_reason(&s).contains("absolute"));
        s.base_root = Some(PathBuf::from("/"));
        assert!(invalid_reason(&s).contains("not a base tree"));
        s.base_root = Some(PathBuf::from("/store/trees/base"));
        s.output.host = PathBuf::from("/store/trees/base/out");
        assert!(invalid_reason(&s).contains("read-only base root `/store/trees/base`"));
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut s = spec();
        let json = serde_json::to_string(&s).expect("serialize");
        let back: SandboxSpec = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        s.base_root = Some(PathBuf::from("/store/trees/base"));
        let json = serde_json::to_string(&s).expect("serialize");
        let back: SandboxSpec = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
    }

    #[test]
    fn missing_declared_host_path_is_named() {
        let mut s = spec();
        s.host_paths
            .push(PathBuf::from("/nonexistent/hstore-test-sdk"));
        match s.check_host() {
            Err(Error::MissingHostPath { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent/hstore-test-sdk"));
            }
            other => panic!("expected MissingHostPath, got {other:?}"),
        }
    }
}
