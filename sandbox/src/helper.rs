//! The re-exec'd helper: the only code that creates namespaces. It runs as a fresh, single-threaded process.
//!
//! Process tree (all share the status pipe described in [`protocol`](crate::protocol)):
//! ```text
//! helper   reads the Request, unshare(user|mount|pid|net|ipc|uts|cgroup), gets uid_map/gid_map written, opens
//!          the bind sources, becomes uid/gid 0 of the namespace, forks init; exits with init's status
//! ├ mapper only for a root caller, forked before unshare: writes the helper's maps, then exits
//! └ init   pid 1 of the new pid namespace: mounts (see [`mounts`](crate::mounts)), hostname, `lo` up,
//!          no_new_privs, forks the build, reaps orphans, reports the build's status. When it exits the kernel
//!          kills whatever the build left behind in the namespace.
//!   └ build  pid 2: stdin from /dev/null, a new session (no controlling terminal), default signal dispositions,
//!            descriptors above 2 closed, rlimits, no capabilities, a seccomp filter (see
//!            [`confine`](crate::confine)), `execve` with exactly the sandbox's env
//! ```
//! The build is not pid 1 itself because pid 1 ignores signals it has no handler for and must reap orphans;
//! shells and compilers are not written for that.
//!
//! **Whose uid.** uid 0 and gid 0 inside map to one host id each (`0 <host> 1`). An unprivileged caller maps its
//! own ids, from inside (the only map the kernel lets it write). A root caller's build must not be host uid 0, so
//! the request names a leased [`BuildUser`](crate::BuildUser) and the map `0 <build user> 1`; a process inside the
//! new namespace cannot write a map naming an id other than its own, so a *mapper* child forked before `unshare`
//! (still host root, in the host's namespaces) writes `setgroups` (`deny`), `uid_map` and `gid_map` of the helper
//! once it has unshared, and exits; the helper checks its exit status. Root's supplementary groups (gid 0 among
//! them) are dropped before `unshare`. The helper then opens every bind source of the spec (`O_PATH`) while it
//! still has the caller's host ids (root's owner rights on a store under a `0700` directory of root's), and only
//! then becomes uid 0 of the namespace, which is the build user outside: init, which mounts, and the build,
//! which inherits, run as the build user, and a root-owned host file is "others" to both. The fds are opened
//! after `unshare(CLONE_NEWNS)`, not before: a bind from a mount of another mount namespace is refused (`EINVAL`).
//!
//! Every step that can fail sends a [`Report::SetupFailed`] naming what it was doing, then the process exits
//! with [`SETUP_FAILED_EXIT`]. `fork` is sound here because the helper is single-threaded: it is a fresh `exec`,
//! and the caller's `main` MUST call [`helper_main`] before starting any thread (tokio runtime included).

#![expect(
    clippy::disallowed_methods,
    reason = "the helper and its forked children exit directly: they own no temp file or store lock, and a child must not run its parent's destructors"
)]

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{
    ForkResult, Gid, Pid, Uid, chdir, dup2_stdin, execve, fork, geteuid, getgid, getpid, getppid,
    getuid, pipe2, setgroups, sethostname, setresgid, setresuid,
};

use crate::confine;
use crate::limits::Limits;
use crate::mounts;
use crate::net;
use crate::protocol::{BuildIds, Report, Request, STATUS_FD, SetupFailure};
use crate::spec::{DEFAULT_PATH, HOME_DIR, HOSTNAME, SandboxSpec};

/// The first argument that makes a program act as the sandbox helper; see [`helper_main`].
pub const HELPER_ARG: &str = "__hstore-sandbox-helper";

/// Exit status of a helper process whose setup failed (the reason is on the status pipe).
const SETUP_FAILED_EXIT: i32 = 125;
/// Exit status when the helper was started by hand rather than by [`Sandbox`](crate::Sandbox).
const USAGE_EXIT: i32 = 2;

/// Runs the sandbox helper and exits. Call it first thing in `main` when `argv[1] == HELPER_ARG`, before any
/// thread exists: the helper calls `unshare(CLONE_NEWUSER)`, which the kernel refuses in a multi-threaded process.
///
/// ```no_run
/// // First thing in `main`:
/// if std::env::args_os().nth(1).is_some_and(|arg| arg == hstore_sandbox::HELPER_ARG) {
///     hstore_sandbox::helper_main();
/// }
/// // … the normal program, tokio and all …
/// ```
pub fn helper_main() -> ! {
    let code = run_helper();
    #[expect(
        clippy::exit,
        reason = "the helper is a process of its own; its exit status is its result"
    )]
    std::process::exit(code)
}

fn run_helper() -> i32 {
    // fd 3 must be the status pipe the caller set up; a hand-started helper has no one to report to.
    // SAFETY: F_GETFD only reads the flags of a descriptor number; an unused number yields EBADF.
    if unsafe { libc::fcntl(STATUS_FD, libc::F_GETFD) } < 0 {
        #[expect(
            clippy::print_stderr,
            reason = "started by hand, stderr is the only channel"
        )]
        {
            eprintln!("{HELPER_ARG}: this mode is started by hstore-sandbox, not by hand");
        }
        return USAGE_EXIT;
    }
    // SAFETY: fd 3 is open (checked above) and, by the protocol, is ours alone: the caller dup2'ed the status
    // pipe there for us. Wrapping it makes sure it is closed once.
    let status = unsafe { File::from_raw_fd(STATUS_FD) };
    match prepare_and_fork(&status) {
        Ok(code) => code,
        Err(failure) => {
            Report::SetupFailed(failure).send(&status);
            SETUP_FAILED_EXIT
        }
    }
}

fn prepare_and_fork(status: &File) -> Result<i32, SetupFailure> {
    // The build must not inherit the status pipe (its EOF tells the caller when we are done) nor anything the
    // caller's process leaked to us: a shell's `7</` would otherwise stay open in init (pid 1), where the build
    // could reach it through `/proc/1/fd/7`. So inherited descriptors are closed here, not just marked
    // close-on-exec, since init never execs.
    fcntl(status, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| SetupFailure::errno("mark the status pipe close-on-exec", e))?;
    // SAFETY: this is the first thing the fresh helper does: no descriptor above the status pipe is owned by
    // anything in this process, so closing them leaves no owner with a dangling number.
    if unsafe { libc::close_range(STATUS_FD.unsigned_abs() + 1, u32::MAX, 0) } != 0 {
        return Err(SetupFailure::errno(
            "close the descriptors inherited from the caller",
            Errno::last(),
        ));
    }

    let mut json = Vec::new();
    std::io::stdin()
        .read_to_end(&mut json)
        .map_err(|e| SetupFailure::io("read the request from the caller", &e))?;
    let request: Request = serde_json::from_slice(&json).map_err(|e| SetupFailure {
        action: format!("parse the request from the caller ({e})"),
        errno: None,
        namespaces: false,
    })?;
    // The build reads nothing: stdin is the host's /dev/null, opened before the host's /dev disappears.
    let null = open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupFailure::errno("open `/dev/null`", e))?;
    dup2_stdin(&null).map_err(|e| SetupFailure::errno("redirect stdin from `/dev/null`", e))?;

    let caller = getppid();
    let build_ids = request.build_ids();
    // A root caller whose namespace has the build users must have leased one (see `BuildUser::for_caller`).
    if build_ids.is_none()
        && geteuid().is_root()
        && matches!(crate::build_users::map_lacking_pool(), Ok(None))
    {
        return Err(SetupFailure {
            action: "run a build as host root: a root caller's build runs as a leased build user"
                .into(),
            errno: None,
            namespaces: false,
        });
    }
    let mapper = match build_ids {
        Some(ids) => {
            // Root's supplementary groups (gid 0 among them) would survive unshare and setresgid.
            setgroups(&[])
                .map_err(|e| SetupFailure::errno("drop the supplementary groups (setgroups)", e))?;
            Some(Mapper::start(ids, status)?)
        }
        None => None,
    };
    let (uid, gid) = (getuid(), getgid());
    if let Err(failure) = unshare_namespaces() {
        if let Some(mapper) = mapper {
            mapper.abandon();
        }
        return Err(failure);
    }
    match mapper {
        Some(mapper) => mapper.map()?,
        // Map the caller to root inside. `setgroups` must be denied before an unprivileged process may write
        // gid_map.
        None => {
            for (file, content) in [
                ("/proc/self/setgroups", "deny".to_owned()),
                ("/proc/self/uid_map", format!("0 {uid} 1")),
                ("/proc/self/gid_map", format!("0 {gid} 1")),
            ] {
                std::fs::write(file, content)
                    .map_err(|e| SetupFailure::io(format!("write `{file}`"), &e).in_namespaces())?;
            }
        }
    }
    let sources = match &request {
        Request::Run(spec, _, _) => mounts::open_sources(spec)?,
        Request::Probe(_) => mounts::Sources::default(),
    };
    if let Some(ids) = build_ids {
        become_build_user(ids)?;
        // A new euid clears the parent-death signal the caller armed before exec: arm it again, or a SIGKILLed
        // hstore would leave the helper, init and the build running. A caller that died in between has left us
        // a new parent.
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(|e| SetupFailure::errno("set the helper's parent-death signal", e))?;
        if getppid() != caller {
            return Err(SetupFailure {
                action: "run the build: hstore exited while the sandbox was being set up".into(),
                errno: None,
                namespaces: false,
            });
        }
    }

    // SAFETY: this process is single-threaded (a fresh exec whose `main` called us before spawning threads), so
    // the child may run arbitrary code, allocation included.
    match unsafe { fork() }
        .map_err(|e| SetupFailure::errno("fork the namespace's init process", e))?
    {
        ForkResult::Child => {
            let code = match run_init(&request, sources, status) {
                Ok(code) => code,
                Err(failure) => {
                    Report::SetupFailed(failure).send(status);
                    SETUP_FAILED_EXIT
                }
            };
            #[expect(
                clippy::exit,
                reason = "the init process ends here; returning would run the helper's code"
            )]
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(sources);
            Ok(wait_for(child).map_or(SETUP_FAILED_EXIT, exit_code))
        }
    }
}

/// The build's namespaces, with a cgroup namespace where the kernel has them (Linux ≥ 4.6 with cgroups): it
/// shows the helper's cgroup as `/`, hiding the host's cgroup path from `/proc/self/cgroup`.
fn unshare_namespaces() -> Result<(), SetupFailure> {
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    match unshare(flags | CloneFlags::CLONE_NEWCGROUP) {
        Err(Errno::EINVAL) => unshare(flags),
        other => other,
    }
    .map_err(|e| {
        SetupFailure::errno(
            "unshare the user, mount, pid, network, ipc, uts and cgroup namespaces",
            e,
        )
        .in_namespaces()
    })
}

/// After the map is written: uid 0 and gid 0 of the namespace, i.e. the build user on the host. The helper keeps
/// its capabilities in the namespace (going from an unmapped uid to the namespace's root drops none).
fn become_build_user(ids: BuildIds) -> Result<(), SetupFailure> {
    let root_group = Gid::from_raw(0);
    setresgid(root_group, root_group, root_group).map_err(|e| {
        SetupFailure::errno(
            format!("become gid 0 of the namespace (host gid {})", ids.gid),
            e,
        )
    })?;
    let root = Uid::from_raw(0);
    setresuid(root, root, root).map_err(|e| {
        SetupFailure::errno(
            format!("become uid 0 of the namespace (host uid {})", ids.uid),
            e,
        )
    })
}

/// The child that writes a root caller's id maps from outside the new user namespace; see the module docs.
struct Mapper {
    pid: Pid,
    /// Written once the helper has unshared; closed unwritten, it tells the mapper to exit without mapping.
    go: OwnedFd,
}

impl Mapper {
    /// Forks the mapper, which waits for [`map`](Self::map) or [`abandon`](Self::abandon).
    fn start(ids: BuildIds, status: &File) -> Result<Mapper, SetupFailure> {
        let helper = getpid();
        let (wait, go) = pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| SetupFailure::errno("create the id mapper's pipe", e))?;
        // SAFETY: single-threaded, as for every fork here.
        match unsafe { fork() }.map_err(|e| SetupFailure::errno("fork the id mapper", e))? {
            ForkResult::Child => {
                drop(go);
                let code = match write_maps(helper, ids, &wait) {
                    Ok(()) => 0,
                    Err(failure) => {
                        Report::SetupFailed(failure).send(status);
                        SETUP_FAILED_EXIT
                    }
                };
                // The mapper ends here; returning would run the helper's code.
                std::process::exit(code)
            }
            ForkResult::Parent { child } => Ok(Mapper { pid: child, go }),
        }
    }

    /// Has the maps written and waits for the mapper.
    fn map(self) -> Result<(), SetupFailure> {
        let Mapper { pid, go } = self;
        let sent = nix::unistd::write(&go, b"m");
        drop(go);
        let ended = wait_for(pid);
        if let Err(e) = sent {
            return Err(SetupFailure::errno("signal the id mapper", e));
        }
        match ended {
            Some(WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(SetupFailure {
                action: format!(
                    "map the build user into the namespace (the mapper ended: {other:?})"
                ),
                errno: None,
                namespaces: false,
            }),
        }
    }

    /// Tells the mapper to exit without mapping, and reaps it.
    fn abandon(self) {
        drop(self.go);
        let _ = wait_for(self.pid);
    }
}

/// In the mapper: waits for the helper's word, then writes its `setgroups`, `uid_map` and `gid_map`. Root in the
/// parent namespace (and owner of the new one) may map any id; `setgroups` is denied as for an unprivileged
/// caller, so nothing inside can ever call setgroups(2).
fn write_maps(helper: Pid, ids: BuildIds, wait: &OwnedFd) -> Result<(), SetupFailure> {
    let mut byte = [0_u8; 1];
    loop {
        match nix::unistd::read(wait, &mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(SetupFailure::errno("wait for the helper to unshare", e)),
        }
    }
    for (file, content) in [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("0 {} 1", ids.uid)),
        ("gid_map", format!("0 {} 1", ids.gid)),
    ] {
        let path = format!("/proc/{helper}/{file}");
        std::fs::write(&path, content).map_err(|e| {
            SetupFailure::io(format!("write `{path}` for the build user {}", ids.uid), &e)
        })?;
    }
    Ok(())
}

/// pid 1 of the new pid namespace: set up, run the build as its child, report how it ended.
fn run_init(
    request: &Request,
    sources: mounts::Sources,
    status: &File,
) -> Result<i32, SetupFailure> {
    // If the helper dies (killed by the caller, Ctrl-C), take the namespace down with it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| SetupFailure::errno("set the parent-death signal", e))?;
    // Not dumpable: the build (same uid, no capabilities) can then neither ptrace init nor open its
    // `/proc/1/fd/*` (the status pipe among them) or `/proc/1/mem`.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| SetupFailure::errno("make init non-dumpable", e))?;
    let (spec, limits) = match request {
        Request::Probe(_) => (None, None),
        Request::Run(spec, limits, _) => (Some(spec), Some(limits)),
    };
    mounts::enter_new_root(spec.zip(limits), &sources)?;
    // The bind sources were the host's; nothing may keep them open past the mounts.
    drop(sources);
    sethostname(HOSTNAME).map_err(|e| SetupFailure::errno("set the hostname", e))?;
    net::bring_loopback_up()
        .map_err(|e| SetupFailure::errno("bring the loopback interface `lo` up", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| SetupFailure::errno("set no_new_privs", e))?;
    let (Some(spec), Some(limits)) = (spec, limits) else {
        Report::Exited(0).send(status);
        return Ok(0);
    };
    let seccomp = confine::compile_seccomp()?;

    let program = c_string(&spec.command[0])?;
    let argv = spec
        .command
        .iter()
        .map(|a| c_string(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = environment(spec)
        .iter()
        .map(|(name, value)| c_string(&format!("{name}={value}")))
        .collect::<Result<Vec<_>, _>>()?;

    // SAFETY: still single-threaded (init never starts threads).
    match unsafe { fork() }.map_err(|e| SetupFailure::errno("fork the build process", e))? {
        ForkResult::Child => {
            let failure = exec_build(spec, limits, &seccomp, &program, &argv, &envp);
            Report::SetupFailed(failure).send(status);
            #[expect(
                clippy::exit,
                reason = "the build process failed before execve; nothing else may run here"
            )]
            std::process::exit(SETUP_FAILED_EXIT)
        }
        ForkResult::Parent { child } => {
            let report = match reap_until(child) {
                Some(WaitStatus::Signaled(_, signal, _)) => Report::Signaled(signal as i32),
                Some(WaitStatus::Exited(_, code)) => Report::Exited(code),
                _ => {
                    return Err(SetupFailure {
                        action: "wait for the build process".into(),
                        errno: Some(Errno::ECHILD as i32),
                        namespaces: false,
                    });
                }
            };
            let code = match report {
                Report::Exited(code) => code,
                Report::Signaled(signal) => 128 + signal,
                Report::SetupFailed(_) => SETUP_FAILED_EXIT,
            };
            report.send(status);
            Ok(code)
        }
    }
}

/// In the build process: the last steps, then `execve`. Returns only on failure.
fn exec_build(
    spec: &SandboxSpec,
    limits: &Limits,
    seccomp: &confine::Seccomp,
    program: &CString,
    argv: &[CString],
    envp: &[CString],
) -> SetupFailure {
    if let Err(failure) = confine::new_session() {
        return failure;
    }
    if let Err(e) = chdir(&spec.workdir) {
        return SetupFailure::errno(
            format!(
                "chdir to the working directory `{}`",
                spec.workdir.display()
            ),
            e,
        );
    }
    // The helper is a Rust program: its runtime ignores SIGPIPE, and an ignored signal stays ignored across
    // execve. Shell pipelines (`yes | head`) rely on the default action, so restore it, and unblock everything.
    // SAFETY: installing SIG_DFL does not run any handler code and no other thread exists.
    if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) } {
        return SetupFailure::errno("restore the default SIGPIPE action", e);
    }
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None) {
        return SetupFailure::errno("unblock signals", e);
    }
    // What the build gives up for good; see `confine` for the order.
    if let Err(failure) = confine::close_inherited_fds()
        .and_then(|()| confine::set_limits(limits))
        .and_then(|()| confine::drop_capabilities())
        .and_then(|()| confine::install_seccomp(seccomp))
    {
        return failure;
    }
    let error = match execve(program, argv, envp) {
        Err(e) => e,
        Ok(infallible) => match infallible {},
    };
    SetupFailure::errno(format!("execute `{}`", spec.command[0]), error)
}

/// The build's environment: exactly the spec's, plus what the sandbox defines.
pub(crate) fn environment(spec: &SandboxSpec) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !spec.env.contains_key("PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env.push(("HOME".into(), HOME_DIR.into()));
    env.push(("TMPDIR".into(), "/tmp".into()));
    env.push(("TERM".into(), "dumb".into()));
    env.push((
        "SOURCE_DATE_EPOCH".into(),
        spec.source_date_epoch.to_string(),
    ));
    env.push(("out".into(), spec.output.inside.display().to_string()));
    env.sort();
    env
}

fn c_string(text: &str) -> Result<CString, SetupFailure> {
    CString::new(text).map_err(|_| SetupFailure {
        action: format!("pass {text:?} to execve: it contains NUL"),
        errno: None,
        namespaces: false,
    })
}

/// As pid 1, reaps every child (orphans get reparented to us) until `build` has ended; returns its status.
fn reap_until(build: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)))
                if pid == build =>
            {
                return Some(status);
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}

fn wait_for(child: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                return Some(status);
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => SETUP_FAILED_EXIT,
    }
}
