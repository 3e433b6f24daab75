//! The calling side: [`Sandbox`] validates a spec, starts the helper, feeds it the request and turns its
//! reports into a [`BuildStatus`] or an [`Error`].
//!
//! This side never creates namespaces, so it is safe to call from any thread of a multi-threaded program
//! (it blocks; from tokio, call it in `spawn_blocking`). The status pipe's write end is created close-on-exec
//! and moved to fd 3 only in the helper's `pre_exec`, so builds started concurrently from other threads never
//! inherit it (which would hold the pipe open and hang this side).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tracing::{debug, instrument};

use crate::availability;
use crate::error::{Error, Result};
use crate::helper::HELPER_ARG;
use crate::protocol::{Report, Request, STATUS_FD};
use crate::spec::SandboxSpec;

/// Where the build's stdout and stderr go.
#[derive(Debug)]
pub enum BuildOutput {
    /// Both into one log file, created or truncated.
    LogFile(PathBuf),
    /// The caller's own stdout and stderr.
    Inherit,
    /// Descriptors the caller opened (a pipe it reads, a file).
    Fds {
        /// The build's stdout.
        stdout: OwnedFd,
        /// The build's stderr.
        stderr: OwnedFd,
    },
    /// Discarded.
    Null,
}

/// How the build's command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl BuildStatus {
    /// Whether the command exited with code 0.
    pub fn success(self) -> bool {
        self == BuildStatus::Exited(0)
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildStatus::Exited(code) => write!(f, "exit code {code}"),
            BuildStatus::Signaled(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// Runs [`SandboxSpec`]s through a helper executable (see [`helper_main`](crate::helper_main)).
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper_exe: PathBuf,
}

impl Sandbox {
    /// A sandbox whose helper is `helper_exe`, a program whose `main` dispatches [`HELPER_ARG`] to
    /// [`helper_main`](crate::helper_main); the CLI passes `std::env::current_exe()`.
    pub fn new(helper_exe: impl Into<PathBuf>) -> Self {
        Sandbox {
            helper_exe: helper_exe.into(),
        }
    }

    /// The helper executable.
    pub fn helper_exe(&self) -> &Path {
        &self.helper_exe
    }

    /// Runs `spec` and waits for it. `Ok` carries the command's status, failing builds included; `Err` means the
    /// command did not run (invalid spec, missing host path, namespaces unavailable, setup failure).
    #[instrument(skip_all, fields(command = ?spec.command.first()))]
    pub fn run(&self, spec: &SandboxSpec, output: BuildOutput) -> Result<BuildStatus> {
        spec.validate()?;
        spec.check_host()?;
        if let Some(error) = availability::known_blocker(&availability::read_proc_sys) {
            return Err(error);
        }
        let (stdout, stderr) = output_stdio(output)?;
        self.exchange(&Request::Run(resolve_host_links(spec)?), stdout, stderr)
    }

    /// Probes, in a few milliseconds, whether sandboxes can be created here: namespaces, mounts, `/proc`, `lo`.
    pub fn check_available(&self) -> Result<()> {
        if let Some(error) = availability::known_blocker(&availability::read_proc_sys) {
            return Err(error);
        }
        match self.exchange(&Request::Probe, Stdio::null(), Stdio::null())? {
            BuildStatus::Exited(0) => Ok(()),
            status => Err(Error::HelperSilent {
                helper: self.helper_exe.clone(),
                status: status.to_string(),
            }),
        }
    }

    fn exchange(&self, request: &Request, stdout: Stdio, stderr: Stdio) -> Result<BuildStatus> {
        let helper = &self.helper_exe;
        let (status_read, status_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::Io {
            action: "create the status pipe for",
            path: helper.clone(),
            source: e.into(),
        })?;
        let status_raw = status_write.as_raw_fd();
        let caller_pid = std::process::id();
        let mut command = Command::new(helper);
        command
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: the closure runs between fork and exec and calls only `prctl`/`getppid`/`dup2`/`fcntl`, which
        // are async-signal-safe; it allocates nothing and touches no lock.
        unsafe {
            command.pre_exec(move || {
                // If the caller dies (SIGKILL, OOM killer), the helper must die too: its init process already
                // follows it down (`PR_SET_PDEATHSIG` in the helper), taking the whole pid namespace with it, so
                // no orphaned build keeps running. The signal is tied to the spawning thread, which blocks in
                // `wait` below for the helper's whole life. A caller that died before `prctl` ran is caught by
                // the parent-pid check.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid().cast_unsigned() != caller_pid {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                // dup2 onto the same number would keep FD_CLOEXEC, so clear it explicitly in that case.
                let result = if status_raw == STATUS_FD {
                    libc::fcntl(STATUS_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(status_raw, STATUS_FD)
                };
                if result < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
        }
        let mut child = command.spawn().map_err(|source| Error::SpawnHelper {
            helper: helper.clone(),
            source,
        })?;
        drop(status_write);
        debug!(pid = child.id(), helper = %helper.display(), "started sandbox helper");

        if let Some(mut stdin) = child.stdin.take() {
            let json = serde_json::to_vec(request).map_err(|source| Error::BadReport {
                helper: helper.clone(),
                source,
            })?;
            // A helper that does not speak the protocol may exit without reading: EPIPE here is reported below
            // as `HelperSilent`, with its exit status, which says more.
            let _ = stdin.write_all(&json);
        }

        let mut first_failure = None;
        let mut final_status = None;
        for line in BufReader::new(File::from(status_read)).lines() {
            let line = line.map_err(Error::io("read the status pipe of", helper))?;
            let report: Report =
                serde_json::from_str(&line).map_err(|source| Error::BadReport {
                    helper: helper.clone(),
                    source,
                })?;
            match report {
                Report::SetupFailed(failure) => {
                    first_failure.get_or_insert(failure);
                }
                Report::Exited(code) => final_status = Some(BuildStatus::Exited(code)),
                Report::Signaled(signal) => final_status = Some(BuildStatus::Signaled(signal)),
            }
        }
        let exit = child
            .wait()
            .map_err(Error::io("wait for the sandbox helper", helper))?;
        debug!(%exit, "sandbox helper exited");

        if let Some(failure) = first_failure {
            return Err(if failure.namespaces {
                availability::from_failure(&failure, &availability::read_proc_sys)
            } else {
                Error::Setup {
                    action: failure.action,
                    source: failure.errno.map(std::io::Error::from_raw_os_error),
                }
            });
        }
        final_status.ok_or_else(|| Error::HelperSilent {
            helper: helper.clone(),
            status: exit.to_string(),
        })
    }
}

/// Probes whether sandboxed builds can run here; see [`Sandbox::check_available`].
pub fn check_available(helper_exe: &Path) -> Result<()> {
    Sandbox::new(helper_exe).check_available()
}

fn output_stdio(output: BuildOutput) -> Result<(Stdio, Stdio)> {
    Ok(match output {
        BuildOutput::LogFile(path) => {
            let log = File::create(&path).map_err(Error::io("create the build log", &path))?;
            let second = log
                .try_clone()
                .map_err(Error::io("duplicate the descriptor of", &path))?;
            (Stdio::from(log), Stdio::from(second))
        }
        BuildOutput::Inherit => (Stdio::inherit(), Stdio::inherit()),
        BuildOutput::Fds { stdout, stderr } => (Stdio::from(stdout), Stdio::from(stderr)),
        BuildOutput::Null => (Stdio::null(), Stdio::null()),
    })
}

/// Declared host paths that are symlinks (rustup's `1.95.0-… -> /root/.rustup/toolchains/stable-…` is one) are bound
/// from their real location at the declared path. The helper resolves bind sources after `pivot_root`, where an
/// absolute link target would point into the new root, so the links are resolved here, on the host.
fn resolve_host_links(spec: &SandboxSpec) -> Result<SandboxSpec> {
    let mut resolved = spec.clone();
    resolved.host_paths.clear();
    for path in &spec.host_paths {
        let real = std::fs::canonicalize(path).map_err(|source| Error::Io {
            action: "resolve the declared host path",
            path: path.clone(),
            source,
        })?;
        if &real == path {
            resolved.host_paths.push(path.clone());
        } else {
            resolved
                .inputs
                .push(crate::spec::Bind::new(real, path.clone()));
        }
    }
    Ok(resolved)
}
