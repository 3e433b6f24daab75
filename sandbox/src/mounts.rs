//! The sandbox's file system: a fresh tmpfs root assembled from binds, then `pivot_root` into it.
//!
//! Runs in the namespace's init process, as root of the new user namespace, in a private mount namespace.
//! The sequence follows bubblewrap's, which is known to work unprivileged:
//! 1. make every mount private, so nothing propagates back to the host;
//! 2. mount a small tmpfs on `/tmp` (the "base") holding `newroot/` (itself a tmpfs) and `oldroot/`, and
//!    `pivot_root` into the base: the host is then reachable under `/oldroot`, *including* the host's `/tmp`
//!    (the base tmpfs moved off it), so bind sources anywhere on the host work;
//! 3. assemble `/newroot` from `/oldroot/...` (see the tree below): first the root file system (the spec's base
//!    root, or the host base system and a minimal `/etc`), then mount `proc` while the host's `/proc` is still
//!    visible (the kernel refuses a new `proc` in a user namespace that cannot see a full one), `/dev`, `/tmp`,
//!    `HOME`, `/build` and the spec's binds;
//! 4. detach `/oldroot`, `pivot_root` into `/newroot` and detach the base, then make the root tmpfs read-only.
//!
//! The spec's own binds (base root, inputs, host paths, `/build`, the output) come from descriptors the helper
//! opened before it gave up the caller's host ids ([`open_sources`]), through `/oldroot/proc/self/fd/N`: init runs
//! as the build user, which may not traverse the directories above them (a store under `/root`, `0700`). The host
//! base system, `/etc` and `/dev` entries are world-readable host paths, bound by name.
//!
//! The tree inside, with a base root (a materialized tree of pinned Debian packages; [`SandboxSpec::base_root`]):
//! ```text
//! /usr /etc /var /lib64 …        every top-level directory (and file) of the base root, bound read-only, `etc/`
//!                                whole (the base carries passwd, group, hosts, …; the sandbox writes none);
//!                                top-level symlinks (`/bin -> usr/bin`) recreated; not bound: the names the
//!                                sandbox mounts below (`proc`, `dev`, `sys`, `tmp`, `build`, `homeless`) and an empty
//!                                directory named like the first component of a spec bind (`opt/` for
//!                                `/opt/sdk`), which the sandbox's own directory replaces. Nothing of the host.
//! ```
//! or, without one, the host's:
//! ```text
//! /usr /bin /sbin /lib /lib64 …  host base system, read-only; usrmerge symlinks (`/bin -> usr/bin`) recreated
//! /etc                           passwd, group, hosts, nsswitch.conf, hostname written here; the loader's
//!                                files, CA certificates and OpenSSL's configuration bound read-only where
//!                                present (see [`ETC_FROM_HOST`]); nothing else of the host's /etc (no
//!                                `ssl/private`, no `pki/tls/private`)
//! ```
//! and in both cases:
//! ```text
//! /proc                          fresh, for the new pid namespace; sys/ sysrq-trigger irq/ bus/ fs/ bound
//!                                read-only onto themselves; the files of [`PROC_MASKED`] (cmdline, …)
//!                                covered by /dev/null
//! (no /sys)                      nothing of sysfs is needed by a build
//! /dev                           read-only tmpfs: null zero full random urandom tty bound from the host,
//!                                fd/stdin/stdout/stderr symlinks into /proc/self/fd, shm/ a tmpfs
//! /tmp                           tmpfs, 1777, nosuid,nodev, `size=` from the build's [`Limits`]
//! /homeless                      `HOME`: an empty private tmpfs, nosuid,nodev, sized likewise
//! /build                         the spec's build directory, writable, nosuid,nodev
//! <inputs>, <host paths>         read-only, at their inside paths
//! <output>                       writable, nosuid,nodev, at its inside path
//! ```
//! A spec bind below a bound directory of the root (`/usr/local/cuda`, `/etc/OpenCL`) is mounted over what is
//! there; its mount point MUST already exist in that directory, which is read-only (the setup fails naming it).
//! Read-only binds are remounted `MS_RDONLY|MS_NOSUID|MS_NODEV`, plus `MS_NOEXEC` when the source mount has it:
//! inside a user namespace the flags of a mount inherited from the host are locked, and a remount that would
//! clear one fails with `EPERM`. Atime flags are preserved by the kernel on a bind remount that names none.
//! Binds are recursive (a non-recursive bind of a tree with locked submounts is refused); only the top mount is
//! made read-only, so a rare writable submount *under* an input keeps its own flags.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, pivot_root};

use crate::limits::Limits;
use crate::protocol::SetupFailure;
use crate::spec::{BUILD_DIR, HOME_DIR, HOSTNAME, SandboxSpec};

type Setup<T = ()> = Result<T, SetupFailure>;

const BASE: &str = "/tmp";
const OLD: &str = "/oldroot";
const NEW: &str = "/newroot";

/// Host directories that make up the base system, bound read-only (or recreated as symlinks) when present.
const BASE_SYSTEM: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// Files and directories of the host's `/etc` a toolchain needs, bound read-only when present: the dynamic
/// loader's cache and configuration, Debian's `alternatives` links, the CA certificates (public, for tools that
/// verify TLS) in each layout hstore knows: Debian/Ubuntu/Alpine `ssl/certs/` (the bundle
/// `ca-certificates.crt` and the hashed links) and `ssl/cert.pem`; openSUSE `ssl/ca-bundle.pem`; Arch's
/// `ca-certificates/` (its `extracted/` bundles, which `ssl/certs/ca-certificates.crt` links to); Fedora/RHEL
/// `pki/ca-trust/`, `pki/tls/certs/`, `pki/tls/cert.pem` and `pki/java/`; and OpenSSL's configuration
/// (`ssl/openssl.cnf`, `pki/tls/openssl.cnf`), without which `openssl req`, as test suites run it to make a
/// certificate, fails. A link among them is bound as its target. Never `ssl/private/`, `pki/tls/private/` or
/// anything else of `ssl/`, `pki/`: private keys live there.
const ETC_FROM_HOST: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/cert.pem",
    "ssl/ca-bundle.pem",
    "ssl/openssl.cnf",
    "ca-certificates",
    "pki/ca-trust",
    "pki/tls/certs",
    "pki/tls/cert.pem",
    "pki/java",
    "pki/tls/openssl.cnf",
];
/// Parts of `/proc` that write to the host's kernel rather than to the build's namespaces (sysctls, SysRq,
/// interrupt affinity, bus and file system settings), bound read-only onto themselves where present, as Docker
/// does. The build user could not write most of them anyway; this holds even for one the kernel lets a
/// namespace's root write (the network namespace's own sysctls).
const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// Files of `/proc` that show the host rather than the build: its boot command line and boot config, kernel
/// memory, keys, timers and scheduler state of every task; each is covered with `/dev/null` where present (reads
/// are empty), as Docker masks them.
const PROC_MASKED: &[&str] = &[
    "cmdline",
    "bootconfig",
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
];
/// Device nodes bound from the host; no real hardware.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Descriptors (`O_PATH`) of the spec's bind sources, by host path; see the module docs and [`open_sources`].
#[derive(Debug, Default)]
pub(crate) struct Sources(BTreeMap<PathBuf, OwnedFd>);

impl Sources {
    /// The path to bind `host` from while staging: its descriptor when one was opened, else its name.
    fn path(&self, host_path: &Path) -> PathBuf {
        match self.0.get(host_path) {
            Some(fd) => PathBuf::from(format!("{OLD}/proc/self/fd/{}", fd.as_raw_fd())),
            None => host(host_path),
        }
    }
}

/// Opens every host path the spec binds (the base root, inputs, declared host paths, the build and output
/// directories), in the helper, after `unshare` and before it becomes the build user. The descriptors are
/// close-on-exec; init closes them once it has mounted.
pub(crate) fn open_sources(spec: &SandboxSpec) -> Setup<Sources> {
    let mut sources = BTreeMap::new();
    let paths = spec
        .base_root
        .iter()
        .chain(spec.inputs.iter().map(|input| &input.host))
        .chain(&spec.host_paths)
        .chain([&spec.build_dir, &spec.output.host]);
    for path in paths {
        let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
            SetupFailure::errno(format!("open the bind source `{}`", path.display()), e)
        })?;
        sources.insert(path.clone(), fd);
    }
    Ok(Sources(sources))
}

/// Builds the sandbox's root and enters it. With `spec == None` (a probe) only the namespace-sensitive steps run:
/// the mounts, `pivot_root`, `/proc` and `/dev`.
pub(crate) fn enter_new_root(build: Option<(&SandboxSpec, &Limits)>, sources: &Sources) -> Setup {
    let spec = build.map(|(spec, _)| spec);
    // A mount failing with EPERM here means the user namespace gives us no privileges (e.g. AppArmor's
    // `apparmor_restrict_unprivileged_userns`), so it is a namespace problem, not a path problem.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SetupFailure::errno("make the mount namespace private", e).in_namespaces())?;
    mount_tmpfs(Path::new(BASE), "mode=0755,size=1m")?;
    make_dir(&Path::new(BASE).join("newroot"))?;
    make_dir(&Path::new(BASE).join("oldroot"))?;
    mount_tmpfs(&Path::new(BASE).join("newroot"), "mode=0755")?;
    pivot_root(BASE, &Path::new(BASE).join("oldroot"))
        .map_err(|e| SetupFailure::errno("pivot_root into the staging tmpfs", e))?;
    chdir("/").map_err(|e| SetupFailure::errno("chdir to the staging root", e))?;

    match spec {
        Some(
            spec @ SandboxSpec {
                base_root: Some(base),
                ..
            },
        ) => bind_base_root(spec, base, sources)?,
        Some(_) => {
            bind_base_system()?;
            populate_etc()?;
        }
        None => {}
    }
    let proc = inside("/proc");
    make_dir(&proc)?;
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| SetupFailure::errno(format!("mount a fresh /proc at `{}`", proc.display()), e))?;
    for name in PROC_READ_ONLY {
        let path = proc.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            bind(&path, &path, Access::ReadOnly)?;
        }
    }
    populate_dev(build.map(|(_, limits)| limits))?;
    for name in PROC_MASKED {
        let path = proc.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            bind(&inside("/dev/null"), &path, Access::Device)?;
        }
    }
    if let Some((spec, limits)) = build {
        mount_tmpfs(
            &inside("/tmp"),
            &format!("mode=1777,{}", limits.tmpfs_size(true)),
        )?;
        mount_tmpfs(
            &inside(HOME_DIR),
            &format!("mode=0700,{}", limits.tmpfs_size(false)),
        )?;
        bind_from(
            &sources.path(&spec.build_dir),
            &spec.build_dir,
            &inside(BUILD_DIR),
            Access::ReadWrite,
        )?;
        bind_spec_paths(spec, sources)?;
    }

    umount2(OLD, MntFlags::MNT_DETACH)
        .map_err(|e| SetupFailure::errno("detach the host's root", e))?;
    // The pivot_root(".", ".") idiom from pivot_root(2): the base ends up stacked on `/newroot` and is detached.
    chdir(NEW).map_err(|e| SetupFailure::errno("chdir to the new root", e))?;
    pivot_root(".", ".").map_err(|e| SetupFailure::errno("pivot_root into the new root", e))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| SetupFailure::errno("detach the staging tmpfs", e))?;
    chdir("/").map_err(|e| SetupFailure::errno("chdir to `/`", e))?;
    remount_read_only(Path::new("/"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
}

/// A host path as seen while staging.
fn host(path: &Path) -> PathBuf {
    under(OLD, path)
}

/// An inside path as seen while staging.
fn inside(path: impl AsRef<Path>) -> PathBuf {
    under(NEW, path.as_ref())
}

fn under(root: &str, path: &Path) -> PathBuf {
    // `join` with an absolute path would replace `root`, so strip the leading `/` (and `.`/`//`) first.
    let mut joined = PathBuf::from(root);
    joined.extend(
        path.components()
            .filter(|c| matches!(c, std::path::Component::Normal(_))),
    );
    joined
}

fn bind_base_system() -> Setup {
    for name in BASE_SYSTEM {
        let source = host(Path::new("/").join(name).as_path());
        let Ok(meta) = fs::symlink_metadata(&source) else {
            continue;
        };
        let target = inside(Path::new("/").join(name));
        if meta.file_type().is_symlink() {
            // usrmerge: `/bin -> usr/bin`. Recreate the link; its target is bound in its own right.
            let link = fs::read_link(&source)
                .map_err(|e| SetupFailure::io(format!("read the symlink `/{name}`"), &e))?;
            symlink(&link, &target).map_err(|e| {
                SetupFailure::io(format!("create the symlink `{}`", target.display()), &e)
            })?;
        } else if meta.is_dir() {
            bind(&source, &target, Access::ReadOnly)?;
        }
    }
    Ok(())
}

/// Top-level names of a base root that the sandbox mounts itself, or keeps out (`sys`): never taken from the base
/// (a Debian tree has empty `proc/`, `dev/`, `sys/`, `tmp/`).
fn sandbox_owned(name: &OsStr) -> bool {
    ["/proc", "/dev", "/sys", "/tmp", BUILD_DIR, HOME_DIR]
        .iter()
        .any(|owned| name == OsStr::new(owned.trim_start_matches('/')))
}

/// The root file system from the spec's base root: each top-level entry bound read-only (a directory, or a file)
/// or recreated (a symlink), except what the sandbox mounts itself and an empty directory a spec bind lands in
/// (see the module docs). Read through the descriptor [`open_sources`] opened, never by name.
fn bind_base_root(spec: &SandboxSpec, base: &Path, sources: &Sources) -> Setup {
    let staged = sources.path(base);
    let bind_tops: BTreeSet<&OsStr> = spec
        .inputs
        .iter()
        .map(|input| input.inside.as_path())
        .chain(spec.host_paths.iter().map(PathBuf::as_path))
        .chain([spec.output.inside.as_path()])
        .filter_map(|inside| {
            inside.components().find_map(|component| match component {
                Component::Normal(name) => Some(name),
                _ => None,
            })
        })
        .collect();
    let listing = fs::read_dir(&staged)
        .map_err(|e| SetupFailure::io(format!("list the base root `{}`", base.display()), &e))?;
    for entry in listing {
        let entry = entry.map_err(|e| {
            SetupFailure::io(format!("list the base root `{}`", base.display()), &e)
        })?;
        let name = entry.file_name();
        if sandbox_owned(&name) {
            continue;
        }
        let source = staged.join(&name);
        let named = base.join(&name);
        let target = inside(Path::new("/").join(&name));
        let file_type = entry
            .file_type()
            .map_err(|e| SetupFailure::io(format!("read the type of `{}`", named.display()), &e))?;
        if file_type.is_symlink() {
            let link = fs::read_link(&source).map_err(|e| {
                SetupFailure::io(format!("read the symlink `{}`", named.display()), &e)
            })?;
            symlink(&link, &target).map_err(|e| {
                SetupFailure::io(format!("create the symlink `{}`", target.display()), &e)
            })?;
        } else if file_type.is_dir() {
            if bind_tops.contains(name.as_os_str()) && is_empty_dir(&source, &named)? {
                continue;
            }
            bind_from(&source, &named, &target, Access::ReadOnly)?;
        } else if file_type.is_file() {
            bind_from(&source, &named, &target, Access::ReadOnly)?;
        }
        // Anything else (a device node, a socket, a fifo) has no place in a base tree: left out.
    }
    Ok(())
}

fn is_empty_dir(path: &Path, named: &Path) -> Setup<bool> {
    let mut listing = fs::read_dir(path)
        .map_err(|e| SetupFailure::io(format!("list `{}`", named.display()), &e))?;
    Ok(listing.next().is_none())
}

fn populate_etc() -> Setup {
    let etc = inside("/etc");
    make_dir(&etc)?;
    // The build runs as uid 0 of its user namespace (the caller's uid outside, or a build user for a root
    // caller); name it so tools that look the current user up (`whoami`, `getpwuid`) work.
    let files: [(&str, String); 5] = [
        (
            "passwd",
            format!("root:x:0:0:hstore build user:{HOME_DIR}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        ),
        ("group", "root:x:0:\nnogroup:x:65534:\n".into()),
        ("hosts", format!("127.0.0.1 localhost {HOSTNAME}\n::1 localhost\n")),
        ("nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n".into()),
        ("hostname", format!("{HOSTNAME}\n")),
    ];
    for (name, content) in files {
        let path = etc.join(name);
        fs::write(&path, content)
            .map_err(|e| SetupFailure::io(format!("write `{}`", path.display()), &e))?;
    }
    for name in ETC_FROM_HOST {
        let source = host(&Path::new("/etc").join(name));
        if fs::metadata(&source).is_ok() {
            bind(&source, &etc.join(name), Access::ReadOnly)?;
        }
    }
    Ok(())
}

fn populate_dev(limits: Option<&Limits>) -> Setup {
    let dev = inside("/dev");
    make_dir(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .map_err(|e| SetupFailure::errno(format!("mount a tmpfs at `{}`", dev.display()), e))?;
    for name in DEVICES {
        let source = host(&Path::new("/dev").join(name));
        if fs::metadata(&source).is_ok() {
            bind(&source, &dev.join(name), Access::Device)?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let link = dev.join(name);
        symlink(target, &link).map_err(|e| {
            SetupFailure::io(format!("create the symlink `{}`", link.display()), &e)
        })?;
    }
    let shm_size = limits.map_or_else(|| "size=1m".to_owned(), |l| l.tmpfs_size(false));
    mount_tmpfs(&dev.join("shm"), &format!("mode=1777,{shm_size}"))?;
    remount_read_only(&dev, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)
}

/// Inputs, declared host paths and the output, parents before children so nested binds stack correctly.
fn bind_spec_paths(spec: &SandboxSpec, sources: &Sources) -> Setup {
    let mut binds: Vec<(PathBuf, PathBuf, Access)> = Vec::new();
    for input in &spec.inputs {
        binds.push((input.host.clone(), input.inside.clone(), Access::ReadOnly));
    }
    for path in &spec.host_paths {
        binds.push((path.clone(), path.clone(), Access::ReadOnly));
    }
    binds.push((
        spec.output.host.clone(),
        spec.output.inside.clone(),
        Access::ReadWrite,
    ));
    // `Path`'s ordering is component-wise, so a parent sorts before everything below it.
    binds.sort_by(|a, b| a.1.cmp(&b.1));
    for (source, target, access) in binds {
        bind_from(&sources.path(&source), &source, &inside(&target), access)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
    /// A device node: read-write, and it must not get `MS_NODEV`.
    Device,
}

/// Bind-mounts `source` (a staging path) on `target`, creating the mount point (an empty file or a directory,
/// like the source).
fn bind(source: &Path, target: &Path, access: Access) -> Setup {
    bind_from(source, source, target, access)
}

/// [`bind`] from `source`, a staging path or a descriptor's, named `named` (a staging or host path) in errors.
fn bind_from(source: &Path, named: &Path, target: &Path, access: Access) -> Setup {
    // Staging paths (`/oldroot/…`, `/newroot/…`) mean nothing to the user: show host and inside paths.
    let shown = |path: &Path| -> String {
        if let Ok(host) = path.strip_prefix(OLD) {
            format!("host `/{}`", host.display())
        } else if let Ok(inside) = path.strip_prefix(NEW) {
            format!("`/{}` inside the sandbox", inside.display())
        } else {
            format!("host `{}`", path.display())
        }
    };
    let meta = fs::metadata(source)
        .map_err(|e| SetupFailure::io(format!("read the bind source {}", shown(named)), &e))?;
    create_mount_point(target, meta.is_dir())
        .map_err(|e| SetupFailure::io(format!("create the mount point {}", shown(target)), &e))?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| SetupFailure::errno(format!("bind {} at {}", shown(named), shown(target)), e))?;
    match access {
        Access::ReadOnly => remount(target, Writable::No, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
            .map_err(|failure| SetupFailure {
                action: format!(
                    "make {} read-only (bound from {})",
                    shown(target),
                    shown(named)
                ),
                ..failure
            }),
        // A setuid file the build leaves in `/build` or its output must not work even inside.
        Access::ReadWrite => remount(
            target,
            Writable::Yes,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        )
        .map_err(|failure| SetupFailure {
            action: format!(
                "make {} nosuid,nodev (bound from {})",
                shown(target),
                shown(named)
            ),
            ..failure
        }),
        Access::Device => Ok(()),
    }
}

fn create_mount_point(target: &Path, directory: bool) -> std::io::Result<()> {
    if fs::symlink_metadata(target).is_ok() {
        // Already there, e.g. `/usr/local/cuda` inside the `/usr` bind: mount over it as it is.
        return Ok(());
    }
    if directory {
        fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::File::create(target).map(drop)
    }
}

/// Remounts the mount at `path` read-only with `extra` flags, keeping the locked flags of the mount it came from.
fn remount_read_only(path: &Path, extra: MsFlags) -> Setup {
    remount(path, Writable::No, extra)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Writable {
    Yes,
    No,
}

/// Remounts the bind at `path` with `extra` flags (and read-only unless `writable`), keeping the locked flags of
/// the mount it came from.
fn remount(path: &Path, writable: Writable, extra: MsFlags) -> Setup {
    let stat = statvfs(path)
        .map_err(|e| SetupFailure::errno(format!("statvfs `{}`", path.display()), e))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    if writable == Writable::No {
        flags |= MsFlags::MS_RDONLY;
    }
    if stat.flags().contains(FsFlags::ST_NOEXEC) {
        flags |= MsFlags::MS_NOEXEC;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(|e| SetupFailure::errno(format!("remount `{}`", path.display()), e))
}

fn mount_tmpfs(path: &Path, options: &str) -> Setup {
    make_dir(path)?;
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|e| SetupFailure::errno(format!("mount a tmpfs at `{}`", path.display()), e))
}

fn make_dir(path: &Path) -> Setup {
    fs::create_dir_all(path)
        .map_err(|e| SetupFailure::io(format!("create the directory `{}`", path.display()), &e))
}
