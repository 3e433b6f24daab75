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
//! 5. [`install_seccomp`]: filters refusing, with `EPERM` (so tools fail with a clear message rather than a
//!    signal), the calls a build has no use for and that widen what it can reach: see [`DENIED`]. Calls a
//!    program is expected to probe for get the answer of a kernel that lacks them, so it falls back: `ENOSYS`
//!    for [`UNAVAILABLE`] (`clone3`, `openat2`, io_uring, `listmount`/`statmount`), `EAFNOSUPPORT` for a socket
//!    of a family outside [`SOCKET_FAMILIES`]. On x86_64 a call of the x32 ABI kills the process, as a call of
//!    the i386 ABI does.
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
///   attack surface a compiler never needs;
/// - `open_tree_attr`: `open_tree` and `mount_setattr` in one call (Linux 6.15), of the mount family above;
/// - `modify_ldt` (x86_64): a per-process segment table, used by Wine and DOS emulators (no build), and a past
///   source of kernel bugs. `EPERM` rather than `ENOSYS`: nothing in a build probes for it.
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
    ("open_tree_attr", SYS_OPEN_TREE_ATTR),
    #[cfg(target_arch = "x86_64")]
    ("modify_ldt", libc::SYS_modify_ldt),
];

// Numbers the libc crate does not define yet. Since Linux 5.1 new calls share one number on every architecture
// but alpha, so these hold for x86_64 and aarch64 alike (see the kernel's `scripts/syscall.tbl`).
/// `statmount` (Linux 6.8).
const SYS_STATMOUNT: i64 = 457;
/// `listmount` (Linux 6.8).
const SYS_LISTMOUNT: i64 = 458;
/// `open_tree_attr` (Linux 6.15).
const SYS_OPEN_TREE_ATTR: i64 = 467;

/// Calls refused with `ENOSYS`, the answer of a kernel that lacks them, because programs probe for them and fall
/// back on exactly that error:
///
/// - `clone3`, `openat2`: their flags live in a structure a filter cannot read; glibc falls back to `clone`
///   and `openat`, whose flags are checked;
/// - `io_uring_setup`, `io_uring_enter`, `io_uring_register`: io_uring performs opens, `chmod`s and socket
///   calls in the kernel without passing through this filter (a build created a 06755 file through it);
///   liburing, libuv and tokio fall back to threads or epoll on `ENOSYS`;
/// - `listmount`, `statmount`: they list the mount table outside `/proc`; libmount falls back to
///   `/proc/self/mountinfo` on `ENOSYS`, and nothing else has a use for them in a build.
const UNAVAILABLE: &[(&str, i64)] = &[
    ("clone3", libc::SYS_clone3),
    ("openat2", libc::SYS_openat2),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("listmount", SYS_LISTMOUNT),
    ("statmount", SYS_STATMOUNT),
];

/// The address families a build may open sockets of: `AF_UNIX` (local IPC, test suites), `AF_INET` and
/// `AF_INET6` (only `lo` exists, tests bind to it), `AF_NETLINK` (glibc's `getifaddrs`, `ip`). Any other family
/// (`socket` and `socketpair` alike) gets `EAFNOSUPPORT`, the kernel's answer for a family it was built without,
/// so a probing program carries on. The network namespace does not cover every family: `AF_VSOCK` shares the
/// host's port space (a build could bind or reach host and hypervisor services), and the rest (`AF_PACKET`,
/// `AF_ALG`, `AF_KEY`, `AF_BLUETOOTH`, `AF_XDP`, …) are kernel surface a compiler never needs.
const SOCKET_FAMILIES: &[libc::c_int] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

/// The bit that marks a call of the x32 ABI on x86_64 (`__X32_SYSCALL_BIT`). Such calls report the x86_64 audit
/// architecture, so seccompiler's architecture check passes them, and their numbers match none of its rules: a
/// kernel built with x32 would run `mount` called as `0x40000000 + 165` unfiltered.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

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

/// The compiled filters, one per action (seccompiler gives each filter one action for its matches): `EPERM`,
/// `ENOSYS`, `EAFNOSUPPORT` and, on x86_64, the x32 one. The kernel runs every installed filter and keeps the
/// strictest answer; their call sets are disjoint.
pub(crate) struct Seccomp {
    programs: Vec<BpfProgram>,
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
    let eperm = compile(rules, libc::EPERM, arch)?;
    let enosys = compile(
        UNAVAILABLE
            .iter()
            .map(|(_, number)| (*number, Vec::new()))
            .collect(),
        libc::ENOSYS,
        arch,
    )?;
    let other_family = SeccompRule::new(
        SOCKET_FAMILIES
            .iter()
            .map(|family| {
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Ne,
                    u64::from(family.cast_unsigned()),
                )
                .map_err(|e| failure("condition", &e))
            })
            .collect::<Result<_, _>>()?,
    )
    .map_err(|e| failure("rule", &e))?;
    let eafnosupport = compile(
        [libc::SYS_socket, libc::SYS_socketpair]
            .into_iter()
            .map(|number| (number, vec![other_family.clone()]))
            .collect(),
        libc::EAFNOSUPPORT,
        arch,
    )?;
    let programs = vec![eperm, enosys, eafnosupport];
    #[cfg(target_arch = "x86_64")]
    let programs = [programs, vec![x32_filter()]].concat();
    Ok(Seccomp { programs })
}

/// One seccompiler filter: `rules` answered with `errno`, everything else allowed (a foreign architecture's
/// call kills the process, seccompiler's default).
fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: libc::c_int,
    arch: TargetArch,
) -> Result<BpfProgram, SetupFailure> {
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno.cast_unsigned()),
        arch,
    )
    .map_err(|e| failure("filter", &e))?
    .try_into()
    .map_err(|e| failure("compile", &e))
}

/// A filter, written as BPF because seccompiler matches whole call numbers only, that kills the process on a
/// call of the x32 ABI ([`X32_SYSCALL_BIT`] set), as a call of a foreign architecture is killed. No build has a
/// use for x32 (a kernel built without it answers `ENOSYS`), and killing makes a refused call unmistakable.
/// Other architectures have no second ABI sharing their audit architecture.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    // See linux/filter.h (`BPF_LD | BPF_W | BPF_ABS`, `BPF_JMP | BPF_JEQ | BPF_K`, `BPF_JMP | BPF_JSET | BPF_K`,
    // `BPF_RET | BPF_K`) and linux/seccomp.h: `struct seccomp_data` holds the call number at offset 0 and the
    // audit architecture at offset 4.
    const LOAD_WORD: u16 = 0x20;
    const JUMP_EQUAL: u16 = 0x15;
    const JUMP_BITS: u16 = 0x45;
    const RETURN: u16 = 0x06;
    // EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (linux/audit.h).
    const AUDIT_ARCH_X86_64: u32 = 0x3e | 0x8000_0000 | 0x4000_0000;
    let op = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        op(LOAD_WORD, 0, 0, 4),
        // Another architecture: not this filter's business (the seccompiler filters kill it).
        op(JUMP_EQUAL, 0, 3, AUDIT_ARCH_X86_64),
        op(LOAD_WORD, 0, 0, 0),
        op(JUMP_BITS, 0, 1, X32_SYSCALL_BIT),
        op(RETURN, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        op(RETURN, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs the compiled filters in this process; they are inherited by everything it starts.
pub(crate) fn install_seccomp(seccomp: &Seccomp) -> Result<(), SetupFailure> {
    for program in &seccomp.programs {
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
        wanted.push((libc::RLIMIT_DATA, memory, "max-memory (RLIMIT_DATA)"));
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
