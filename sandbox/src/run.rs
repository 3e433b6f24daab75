//! The calling side: [`Sandbox`] validates a spec, starts the helper, feeds it the request and turns its
//! reports into a [`BuildStatus`] or an [`Error`].
//!
//! This side never creates namespaces, so it is safe to call from any thread of a multi-threaded program
//! (it blocks; from tokio, call it in `spawn_blocking`). The status pipe's write end is created close-on-exec
//! and moved to fd 3 only in the helper's `pre_exec`, so builds started concurrently from other threads never
//! inherit it (which would hold the pipe open and hang this side).

use std::fs::File;
use std::io::Read;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use tracing::{debug, instrument};

use crate::availability;
use crate::build_users::BuildUser;
use crate::disk;
use crate::error::{Error, Result};
use crate::helper::HELPER_ARG;
use crate::limits::{Limits, show_bytes};
use crate::protocol::{BuildIds, Report, Request, STATUS_FD};
use crate::spec::SandboxSpec;

/// The helper's `argv[0]`, whatever the path of the executable.
const HELPER_ARGV0: &str = "hstore";

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
    limits: Limits,
}

impl Sandbox {
    /// A sandbox whose helper is `helper_exe`, a program whose `main` dispatches [`HELPER_ARG`] to
    /// [`helper_main`](crate::helper_main); the CLI passes `std::env::current_exe()`.
    pub fn new(helper_exe: impl Into<PathBuf>) -> Self {
        Sandbox {
            helper_exe: helper_exe.into(),
            limits: Limits::default(),
        }
    }

    /// The same sandbox with these resource limits instead of [`Limits::default`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The resource limits builds run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The helper executable.
    pub fn helper_exe(&self) -> &Path {
        &self.helper_exe
    }

    /// Runs `spec` and waits for it. `Ok` carries the command's status, failing builds included; `Err` means the
    /// command did not run (invalid spec, missing host path, namespaces unavailable, setup failure). A root
    /// caller's build runs as a [`BuildUser`] leased for this run; see [`run_as`](Self::run_as).
    pub fn run(&self, spec: &SandboxSpec, output: BuildOutput) -> Result<BuildStatus> {
        self.run_as(spec, output, None)
    }

    /// [`run`](Self::run), as `user` on the host when the caller is root: a caller that keeps the output's files
    /// after the run (to store them) leases the [`BuildUser`] itself and holds it until it is done with them.
    /// With `None`, a root caller leases one for the run alone; an unprivileged caller's build runs as the caller
    /// (it cannot map another id), and `user` must then be `None`.
    ///
    /// The build directory and the output directory, and everything already in them, are handed to the build's
    /// host uid and gid (`chown`) so the build can write them; hstore, as root, reads what it leaves.
    #[instrument(skip_all, fields(command = ?spec.command.first()))]
    pub fn run_as(
        &self,
        spec: &SandboxSpec,
        output: BuildOutput,
        user: Option<&BuildUser>,
    ) -> Result<BuildStatus> {
        spec.validate()?;
        spec.check_host()?;
        if let Some(error) = availability::known_blocker(&availability::read_proc_sys) {
            return Err(error);
        }
        let leased = match user {
            Some(_) => None,
            None => BuildUser::for_caller()?,
        };
        let ids = user.or(leased.as_ref()).map(|user| BuildIds {
            uid: user.uid(),
            gid: user.gid(),
        });
        // Only the caller reaches the scratch directories from outside: whatever the build leaves there (a
        // setuid copy of a shell, a world-writable file) is behind a 0700 directory until it is stripped below.
        for dir in [&spec.build_dir, &spec.output.host] {
            if let Some(ids) = ids {
                change_owner(dir, ids)?;
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(Error::io("restrict to its owner (chmod 0700)", dir))?;
        }
        let request = Request::Run(resolve_host_links(spec)?, self.limits.clone(), ids);
        let scratch = [spec.build_dir.clone(), spec.output.host.clone()];
        let output_cap = disk::cap(self.limits.max_output, &spec.build_dir)?;
        let watch = output_cap.map(|cap| (&scratch[..], cap));
        let result = match output {
            BuildOutput::LogFile(path) => {
                let log = File::create(&path).map_err(Error::io("create the build log", &path))?;
                let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::Io {
                    action: "create the log pipe for",
                    path: path.clone(),
                    source: e.into(),
                })?;
                let second = write
                    .try_clone()
                    .map_err(Error::io("duplicate the log pipe for", &path))?;
                self.exchange(
                    &request,
                    Stdio::from(write),
                    Stdio::from(second),
                    Some(LogPump {
                        pipe: File::from(read),
                        log,
                        path,
                    }),
                    watch,
                )
            }
            other => {
                let (stdout, stderr) = output_stdio(other)?;
                self.exchange(&request, stdout, stderr, None, watch)
            }
        };
        // Failed, stopped or successful: no setuid or setgid bit survives the build, before anyone (the store,
        // a user inspecting a failed build) can run what it left; the same walk opens any directory the build left
        // unreadable and, for a build that ran, counts the trees. Over the cap is the first thing to report whatever
        // else happened: a script that failed because its disk filled, or a sparse file the store would have kept
        // dense.
        disk::finish(&scratch, output_cap.filter(|_| result.is_ok()))?;
        let status = result?;
        if let (BuildStatus::Signaled(signal), Some(seconds)) =
            (status, self.limits.max_cpu_seconds)
            && signal == libc::SIGXCPU
        {
            return Err(Error::LimitExceeded {
                limit: "CPU time limit per process",
                value: format!("{seconds}s"),
                flag: "--max-cpu-time",
            });
        }
        Ok(status)
    }

    /// Probes, in a few milliseconds, whether sandboxes can be created here: namespaces, mounts, `/proc`, `lo`.
    pub fn check_available(&self) -> Result<()> {
        if let Some(error) = availability::known_blocker(&availability::read_proc_sys) {
            return Err(error);
        }
        // A root caller's probe maps a build user, as its builds will.
        let leased = BuildUser::for_caller()?;
        let ids = leased.as_ref().map(|user| BuildIds {
            uid: user.uid(),
            gid: user.gid(),
        });
        match self.exchange(
            &Request::Probe(ids),
            Stdio::null(),
            Stdio::null(),
            None,
            None,
        )? {
            BuildStatus::Exited(0) => Ok(()),
            status => Err(Error::HelperSilent {
                helper: self.helper_exe.clone(),
                status: status.to_string(),
            }),
        }
    }

    fn exchange(
        &self,
        request: &Request,
        stdout: Stdio,
        stderr: Stdio,
        log: Option<LogPump>,
        watch: Option<(&[PathBuf], u64)>,
    ) -> Result<BuildStatus> {
        let helper = &self.helper_exe;
        let (status_read, status_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::Io {
            action: "create the status pipe for",
            path: helper.clone(),
            source: e.into(),
        })?;
        let status_raw = status_write.as_raw_fd();
        let caller_pid = std::process::id();
        let mut command = Command::new(helper);
        // A fixed argv[0]: the helper's and init's command line is readable inside (`/proc/1/cmdline`), and the
        // path of the hstore binary is the host's business.
        command
            .arg0(HELPER_ARGV0)
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
        // The command holds our copies of the build's stdout/stderr; the log pipe reaches EOF only once they
        // are closed.
        drop(command);
        drop(status_write);
        debug!(pid = child.id(), helper = %helper.display(), "started sandbox helper");
        let helper_pid = child.id();
        let stopped: Arc<Mutex<Option<Error>>> = Arc::default();
        let log_thread = log.map(|pump| {
            let stopped = Arc::clone(&stopped);
            let max = self.limits.max_log_bytes;
            std::thread::spawn(move || pump.run(max, helper_pid, &stopped))
        });
        let (done, finished) = mpsc::channel::<()>();
        let watchdog = self.limits.timeout.map(|timeout| {
            let stopped = Arc::clone(&stopped);
            std::thread::spawn(move || {
                if finished.recv_timeout(timeout) == Err(RecvTimeoutError::Timeout) {
                    stop(
                        helper_pid,
                        &stopped,
                        Error::LimitExceeded {
                            limit: "wall-clock time limit",
                            value: show_duration(timeout),
                            flag: "--timeout",
                        },
                    );
                }
            })
        });
        let (disk_done, disk_finished) = mpsc::channel::<()>();
        let disk_watchdog = watch.map(|(dirs, cap)| {
            let stopped = Arc::clone(&stopped);
            let dirs = dirs.to_vec();
            std::thread::spawn(move || {
                disk::watch(
                    &dirs,
                    cap,
                    &disk_finished,
                    &|reason| stop(helper_pid, &stopped, reason),
                    &stopped,
                );
            })
        });

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
        // Every thread may signal the helper, so all are done before it is reaped (and its pid can be reused).
        drop(done);
        drop(disk_done);
        for watchdog in [watchdog, disk_watchdog].into_iter().flatten() {
            let _ = watchdog.join();
        }
        if let Some(thread) = log_thread {
            // The thread only copies bytes; a panic there would be a bug, and the build's status still stands.
            let _ = thread.join();
        }
        let exit = child
            .wait()
            .map_err(Error::io("wait for the sandbox helper", helper))?;
        debug!(%exit, "sandbox helper exited");
        if let Some(error) = stopped.lock().ok().and_then(|mut stopped| stopped.take()) {
            return Err(error);
        }

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

/// Copies the build's stdout and stderr (one pipe) into the log file, up to the log size limit.
struct LogPump {
    pipe: File,
    log: File,
    path: PathBuf,
}

impl LogPump {
    /// Runs until the pipe's EOF (every process of the sandbox has exited). Past `max` bytes it keeps the first
    /// `max`, notes the cut in the log and stops the build; if the log cannot be written (a full disk) it stops
    /// the build too, rather than leave it blocked on a pipe nobody reads.
    fn run(mut self, max: u64, helper_pid: u32, stopped: &Mutex<Option<Error>>) {
        let mut buffer = vec![0; 64 << 10];
        if let Err(reason) = self.copy(max, &mut buffer) {
            stop(helper_pid, stopped, reason);
            // Drain until every writer is gone so the build cannot block on a full pipe before it dies.
            while !matches!(self.pipe.read(&mut buffer), Ok(0) | Err(_)) {}
        }
    }

    fn copy(&mut self, max: u64, buffer: &mut [u8]) -> Result<()> {
        let mut written: u64 = 0;
        loop {
            let read = match self.pipe.read(buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(Error::io("read the build output for", &self.path)(error));
                }
            };
            let room = usize::try_from(max.saturating_sub(written)).unwrap_or(usize::MAX);
            let kept = &buffer[..read.min(room)];
            self.log
                .write_all(kept)
                .map_err(Error::io("write the build log", &self.path))?;
            written += kept.len() as u64;
            if read > room {
                let _ = writeln!(
                    self.log,
                    "\nhstore: the log reached its limit of {} here; the build was stopped",
                    show_bytes(max)
                );
                return Err(Error::LimitExceeded {
                    limit: "log size limit",
                    value: show_bytes(max),
                    flag: "--max-log-size",
                });
            }
        }
    }
}

/// Records why the build is being stopped (the first reason wins) and kills the helper. Its init dies with it
/// (`PR_SET_PDEATHSIG`), and with init the kernel kills every process of the build's pid namespace.
fn stop(helper_pid: u32, stopped: &Mutex<Option<Error>>, reason: Error) {
    if let Ok(mut stopped) = stopped.lock() {
        stopped.get_or_insert(reason);
    }
    // The helper is not reaped until both threads that call this have finished, so the pid is still ours.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper_pid.cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn show_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Hands `root` and everything under it (not following symlinks) to the build's host ids, iteratively. Runs before
/// the build, on what hstore itself put there (or, for a rerun in the same directory, what an ended build left).
fn change_owner(root: &Path, ids: BuildIds) -> Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(ids.uid), Some(ids.gid))
            .map_err(Error::io("hand to the build user (chown)", &path))?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(Error::io("inspect the build's file", &path))?;
        if meta.is_dir() {
            for entry in
                std::fs::read_dir(&path).map_err(Error::io("list the build's directory", &path))?
            {
                let entry = entry.map_err(Error::io("list the build's directory", &path))?;
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}
