//! The last steps before the build's `execve`: what the build process gives up for good.
//!
//! After [`mounts`](crate::mounts) has built the root, the build process (pid 2) runs, in this order:
//! 1. `setsid`: a new session without a controlling terminal, so `/dev/tty` and `TIOCSTI` cannot reach the
//!    terminal hstore was started from;
//! 2. [`close_inherited_fds`]: every descriptor above the status pipe is closed, so nothing the caller leaked
//!    (a shell's `7</`, `8>>log`) crosses; the status pipe itself is close-on-exec;
//! 3. [`set_limits`]: the rlimits of [`Limits`];
//! 4. [`drop_capabilities`]: the bounding, inheritable, ambient, permitted and effective sets are emptied and the
//!    securebits that would give root its capabilities back on `execve` are set and locked. The build stays uid 0
//!    of its user namespace (tools expect it) but holds no capability in any namespace, so it can no longer
//!    `mount`, remount a read-only bind writable, `chown` to other users or bypass file permissions;
//! 5. [`install_seccomp`]: a filter refusing, with `EPERM` (so tools fail with a clear message rather than a
//!    signal), the calls a build has no use for and that widen what it can reach: see [`DENIED`]. `clone3`
//!    gets `ENOSYS` instead, because its flags live in memory a filter cannot read and glibc falls back to
//!    `clone` (whose namespace flags are checked) on `ENOSYS`.
//!
//! `no_new_privs` is set by init before the fork, so the build cannot gain privileges through a setuid file
//! either (and none can exist: every writable mount is `nosuid`, see [`mounts`](crate::mounts)).
//!
//! Everything here runs between `fork` and `execve` of a single-threaded process; the seccomp program is
//! compiled beforehand, in init ([`compile_seccomp`]).

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

use crate::limits::Limits;
use crate::protocol::{STATUS_FD, SetupFailure};

/// Calls refused outright with `EPERM`, and why.
///
/// - mount table: `mount`, `umount2`, `pivot_root`, `move_mount`, `open_tree`, `fsopen`, `fsmount`,
///   `fsconfig`, `fspick`, `mount_setattr`: the binds must stay as set up (read-only inputs, host paths, store);
/// - namespaces: `unshare`, `setns` (and `clone` with a `CLONE_NEW*` flag, below): a nested user namespace
///   would hand the build a fresh set of capabilities;
/// - kernel keyrings: `keyctl`, `add_key`, `request_key`: not namespaced by the sandbox;
/// - `open_by_handle_at`: opens files by handle, bypassing the mount tree (the "shocker" escape);
/// - `kexec_load`, `kexec_file_load`, `bpf`, `perf_event_open`, `userfaultfd`, `init_module`,
///   `finit_module`, `delete_module`, `swapon`, `swapoff`, `reboot`, `acct`, `quotactl`, `syslog`: kernel
///   attack surface a compiler never needs.
///
/// `ptrace` stays allowed *within* the sandbox (LeakSanitizer and test suites trace their own children): the
/// build cannot trace anything outside, because it holds no `CAP_SYS_PTRACE`, init (pid 1) is not dumpable,
/// and no process of the host is visible in its pid namespace.
const DENIED: &[(&str, i64)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("fsconfig", libc::SYS_fsconfig),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("syslog", libc::SYS_syslog),
];

/// `clone` flags that create a namespace.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// `ioctl` requests refused: both push input into a terminal (keystroke injection).
const DENIED_IOCTLS: &[libc::c_ulong] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// The two compiled filters: the `EPERM` one and the `ENOSYS` one (`clone3`, `openat2`, whose arguments are
/// structures a filter cannot inspect; glibc falls back to `clone`/`openat` on `ENOSYS`).
pub(crate) struct Seccomp {
    eperm: BpfProgram,
    enosys: BpfProgram,
}

fn arch() -> Result<TargetArch, SetupFailure> {
    std::env::consts::ARCH.try_into().map_err(|_| SetupFailure {
        action: format!(
            "build a seccomp filter for this architecture (`{}` is not supported by seccompiler)",
            std::env::consts::ARCH
        ),
        errno: None,
        namespaces: false,
    })
}

fn failure(what: &str, error: &dyn std::fmt::Display) -> SetupFailure {
    SetupFailure {
        action: format!("build the seccomp filter ({what}: {error})"),
        errno: None,
        namespaces: false,
    }
}

/// A rule matching when argument `index` has all of `bits` set.
fn bits_set(index: u8, bits: u64) -> Result<SeccompRule, SetupFailure> {
    let condition = SeccompCondition::new(
        index,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(bits),
        bits,
    )
    .map_err(|e| failure("condition", &e))?;
    SeccompRule::new(vec![condition]).map_err(|e| failure("rule", &e))
}

/// A rule matching when argument `flags_index` has all of `flags` set and argument `mode_index` all of `mode`.
fn flags_and_mode(
    flags_index: u8,
    flags: u64,
    mode_index: u8,
    mode: u64,
) -> Result<SeccompRule, SetupFailure> {
    let conditions = vec![
        SeccompCondition::new(
            flags_index,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(flags),
            flags,
        )
        .map_err(|e| failure("condition", &e))?,
        SeccompCondition::new(
            mode_index,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mode),
            mode,
        )
        .map_err(|e| failure("condition", &e))?,
    ];
    SeccompRule::new(conditions).map_err(|e| failure("rule", &e))
}

/// Rules refusing a setuid or setgid bit in the mode argument `index`.
fn special_mode(index: u8) -> Result<Vec<SeccompRule>, SetupFailure> {
    [libc::S_ISUID, libc::S_ISGID]
        .into_iter()
        .map(|bit| bits_set(index, u64::from(bit)))
        .collect()
}

/// Compiles the filters; runs in init, before the build is forked.
pub(crate) fn compile_seccomp() -> Result<Seccomp, SetupFailure> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|(_, number)| (*number, Vec::new()))
        .collect();
    // clone(flags, …) on every architecture we support takes the flags first.
    rules.insert(
        libc::SYS_clone,
        NAMESPACE_FLAGS
            .iter()
            .map(|flag| bits_set(0, u64::from(flag.cast_unsigned())))
            .collect::<Result<_, _>>()?,
    );
    rules.insert(
        libc::SYS_ioctl,
        DENIED_IOCTLS
            .iter()
            .map(|request| {
                let condition =
                    SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request)
                        .map_err(|e| failure("condition", &e))?;
                SeccompRule::new(vec![condition]).map_err(|e| failure("rule", &e))
            })
            .collect::<Result<_, _>>()?,
    );
    // Setuid/setgid bits: every call that sets a mode. A bit that slips through (a future syscall) is still
    // harmless: the writable mounts are nosuid, and the caller strips the bits before anything can run them.
    rules.insert(libc::SYS_fchmod, special_mode(1)?);
    rules.insert(libc::SYS_fchmodat, special_mode(2)?);
    rules.insert(libc::SYS_fchmodat2, special_mode(2)?);
    rules.insert(libc::SYS_mknodat, special_mode(2)?);
    let created = u64::from(libc::O_CREAT.cast_unsigned());
    let tmpfile = u64::from(libc::O_TMPFILE.cast_unsigned());
    let mut openat = Vec::new();
    for bit in [libc::S_ISUID, libc::S_ISGID] {
        openat.push(flags_and_mode(2, created, 3, u64::from(bit))?);
        openat.push(flags_and_mode(2, tmpfile, 3, u64::from(bit))?);
    }
    rules.insert(libc::SYS_openat, openat);
    #[cfg(target_arch = "x86_64")]
    {
        rules.insert(libc::SYS_chmod, special_mode(1)?);
        rules.insert(libc::SYS_creat, special_mode(1)?);
        rules.insert(libc::SYS_mknod, special_mode(1)?);
        let mut open = Vec::new();
        for bit in [libc::S_ISUID, libc::S_ISGID] {
            open.push(flags_and_mode(1, created, 2, u64::from(bit))?);
            open.push(flags_and_mode(1, tmpfile, 2, u64::from(bit))?);
        }
        rules.insert(libc::SYS_open, open);
    }
    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM.cast_unsigned()),
        arch,
    )
    .map_err(|e| failure("filter", &e))?
    .try_into()
    .map_err(|e| failure("compile", &e))?;
    let enosys = SeccompFilter::new(
        [
            (libc::SYS_clone3, Vec::new()),
            (libc::SYS_openat2, Vec::new()),
        ]
        .into_iter()
        .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS.cast_unsigned()),
        arch,
    )
    .map_err(|e| failure("filter", &e))?
    .try_into()
    .map_err(|e| failure("compile", &e))?;
    Ok(Seccomp { eperm, enosys })
}

/// Installs the compiled filters in this process; they are inherited by everything it starts.
pub(crate) fn install_seccomp(seccomp: &Seccomp) -> Result<(), SetupFailure> {
    for program in [&seccomp.enosys, &seccomp.eperm] {
        seccompiler::apply_filter(program).map_err(|e| SetupFailure {
            action: format!("install the seccomp filter ({e})"),
            errno: None,
            namespaces: false,
        })?;
    }
    Ok(())
}

/// Closes every descriptor above the status pipe (which is close-on-exec), whatever the caller leaked to us.
pub(crate) fn close_inherited_fds() -> Result<(), SetupFailure> {
    // SAFETY: close_range closes descriptor numbers; in the single-threaded build process nothing else owns
    // the descriptors above the status pipe (init opened its own close-on-exec, and the helper closed the
    // caller's on start), so no owner is left holding a dangling number.
    if unsafe { libc::close_range(STATUS_FD.unsigned_abs() + 1, u32::MAX, 0) } != 0 {
        return Err(SetupFailure::errno(
            "close the descriptors inherited from the caller",
            Errno::last(),
        ));
    }
    Ok(())
}

/// Starts a new session: no controlling terminal.
pub(crate) fn new_session() -> Result<(), SetupFailure> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(|e| SetupFailure::errno("start a new session (setsid)", e))
}

/// Applies the rlimits of `limits` to this process (and so to everything it starts).
pub(crate) fn set_limits(limits: &Limits) -> Result<(), SetupFailure> {
    // No core dumps: a `core_pattern` that pipes to a program would run that program on the host for a
    // process of the build, and cores are no part of any output.
    let mut wanted = vec![
        (libc::RLIMIT_CORE, 0, "core size (RLIMIT_CORE)"),
        (
            libc::RLIMIT_NPROC,
            limits.max_processes,
            "max-processes (RLIMIT_NPROC)",
        ),
    ];
    if let Some(memory) = limits.max_memory {
        wanted.push((libc::RLIMIT_AS, memory, "max-memory (RLIMIT_AS)"));
    }
    if let Some(cpu) = limits.max_cpu_seconds {
        // The soft limit sends SIGXCPU, which init reports as the CPU limit; the hard one is a backstop.
        wanted.push((libc::RLIMIT_CPU, cpu, "max-cpu-time (RLIMIT_CPU)"));
    }
    for (resource, value, name) in wanted {
        let hard = if resource == libc::RLIMIT_CPU {
            value.saturating_add(5)
        } else {
            value
        };
        let limit = libc::rlimit {
            rlim_cur: value,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one `rlimit` owned by this frame.
        if unsafe { libc::setrlimit(resource, &raw const limit) } != 0 {
            return Err(SetupFailure::errno(
                format!("set the {name} limit to {value}"),
                Errno::last(),
            ));
        }
    }
    Ok(())
}

/// Empties every capability set and locks the securebits so that `execve` as uid 0 grants nothing back.
pub(crate) fn drop_capabilities() -> Result<(), SetupFailure> {
    // prctl is variadic: every argument is passed as the `unsigned long` the kernel reads.
    const NONE: libc::c_ulong = 0;
    // The bounding set: drop until the kernel says the number is past its last capability.
    let mut cap: libc::c_ulong = 0;
    loop {
        // SAFETY: PR_CAPBSET_DROP takes an integer and changes only this process's bounding set.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, NONE, NONE, NONE) } != 0 {
            match Errno::last() {
                Errno::EINVAL if cap > 0 => break,
                errno => {
                    return Err(SetupFailure::errno(
                        format!("drop capability {cap} from the bounding set"),
                        errno,
                    ));
                }
            }
        }
        cap += 1;
    }
    let clear_all = libc::c_ulong::from(libc::PR_CAP_AMBIENT_CLEAR_ALL.cast_unsigned());
    // SAFETY: as above, integer arguments only.
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear_all, NONE, NONE, NONE) } != 0 {
        return Err(SetupFailure::errno(
            "clear the ambient capabilities",
            Errno::last(),
        ));
    }
    // SECBIT_NOROOT: uid 0 gains no capabilities on execve; NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE;
    // each with its lock bit so the build cannot undo it. Needs CAP_SETPCAP, so it comes before capset.
    const SECBITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, SECBITS, NONE, NONE, NONE) } != 0 {
        return Err(SetupFailure::errno("lock the securebits", Errno::last()));
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads one header and two data structures (version 3 is 64-bit capabilities in two halves),
    // both laid out as the kernel's `__user_cap_header_struct`/`__user_cap_data_struct` and owned by this frame.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(SetupFailure::errno(
            "drop all capabilities (capset)",
            Errno::last(),
        ));
    }
    Ok(())
}
