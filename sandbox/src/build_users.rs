//! Build users: the unprivileged host ids that builds of a root-run hstore run as, so that no build ever runs as
//! host uid 0 (Nix's build users, allocated like its `auto-allocate-uids`).
//!
//! Run as root, hstore used to map the build's uid 0 to host uid 0: a build holding no capability was still the
//! host's root for every check that looks at the uid alone (`/proc/sys` writes, `RLIMIT_NPROC`, which the kernel
//! waives for host root). Now each build gets an id of its own from a pool reserved for hstore, and its user
//! namespace maps uid 0 and gid 0 inside to that id outside (see the helper). Unprivileged, nothing changes: the
//! build is the caller's uid outside, as before, since an unprivileged process cannot map any other id; nor for a
//! root whose user namespace lacks the pool (see [`BuildUser::for_caller`]).
//!
//! The pool: uids and gids [`FIRST_BUILD_ID`]` + 0 … `[`BUILD_ID_COUNT`]` - 1` (the gid equals the uid). The range
//! starts at 1879048192 (`0x70000000`), the first id past the container ranges of systemd's UIDS-GIDS document
//! (`0x00080000…0x6FFFFFFF`, where systemd-nspawn and Nix's `auto-allocate-uids` at 872415232 allocate) in the span it
//! lists as unused, below 2³¹ (ids above it trip tools that store uids signed). No entry in `/etc/passwd` is
//! needed: nothing on the host resolves these ids to names, and inside the build is `root` of its own namespace.
//!
//! One id per concurrent build: [`BuildUser::acquire`] takes an exclusive `flock` on `LEASE_DIR/<id>` (a file
//! created on first use) and holds it as long as the [`BuildUser`] lives; the first id whose lock is free is taken.
//! The lock is the kernel's, so a killed hstore frees its id at once and there is never a stale lease. Two builds
//! therefore never share an id, and a build's processes (which all die with its pid namespace before
//! [`Sandbox::run`](crate::Sandbox::run) returns) never outlive its lease. `LEASE_DIR` and its parent are created
//! owned by root and writable by root only (`0755`, `0700`); hstore refuses to lease from a directory anyone else
//! could write, where another user could hold every id or swap a lock file for a link.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The first id of the build users' pool (uid and gid): `0x70000000`.
pub const FIRST_BUILD_ID: u32 = 0x7000_0000;
/// How many ids the pool holds, so how many builds of root-run hstore processes can run at once on one host.
pub const BUILD_ID_COUNT: u32 = 0x1_0000;
// Below 2³¹, past every 16-bit id.
const _: () =
    assert!(FIRST_BUILD_ID as u64 + BUILD_ID_COUNT as u64 <= 1 << 31 && FIRST_BUILD_ID > 0xFFFF);
/// Where the leases (one lock file per id) live: host-global, so every hstore process on the host shares the pool.
pub const LEASE_DIR: &str = "/run/hstore/build-users";

/// One id of the pool, leased for as long as this value lives. Builds run with uid and gid [`uid`](Self::uid) and
/// [`gid`](Self::gid) on the host (uid 0 and gid 0 inside their namespace).
#[derive(Debug)]
pub struct BuildUser {
    id: u32,
    /// The locked lease file; closing it (dropping `self`) frees the id.
    _lease: File,
}

impl BuildUser {
    /// The build user a build of the calling process needs: one leased from the pool when the process runs as
    /// root (euid 0), `None` otherwise (an unprivileged build runs as its caller's uid).
    ///
    /// Also `None`, with a warning (once per process), for a root whose user namespace lacks the pool's ids
    /// (`unshare --map-root-user`, a rootless container): no other id exists there, so its builds run as its own
    /// uid, as an unprivileged caller's do. Where that uid is the host's root (root ran `unshare -r`), the kernel
    /// still exempts them from `RLIMIT_NPROC`; the read-only `/proc/sys` holds either way.
    pub fn for_caller() -> Result<Option<BuildUser>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        if let Some((map, content)) = map_lacking_pool()? {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "the build users' ids {FIRST_BUILD_ID}…{} are not mapped in this user namespace (`{map}`: \
                     {content}), so builds run as its uid 0, not as build users; run hstore as a non-root user, or \
                     in a namespace that maps those ids",
                    FIRST_BUILD_ID + (BUILD_ID_COUNT - 1)
                );
            });
            return Ok(None);
        }
        Self::acquire().map(Some)
    }

    /// Leases the first free id of the pool in [`LEASE_DIR`]. Needs root: the directory is root's.
    pub fn acquire() -> Result<BuildUser> {
        check_pool_is_mapped()?;
        Self::acquire_in(Path::new(LEASE_DIR))
    }

    /// [`acquire`](Self::acquire) with the leases in `dir`, which must belong to the calling user.
    fn acquire_in(dir: &Path) -> Result<BuildUser> {
        prepare_lease_dir(dir)?;
        for id in FIRST_BUILD_ID..FIRST_BUILD_ID + BUILD_ID_COUNT {
            let path = dir.join(id.to_string());
            let lease = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(Error::io("open the build user lease", &path))?;
            match lease.try_lock() {
                Ok(()) => return Ok(BuildUser { id, _lease: lease }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => {
                    return Err(Error::io("lock the build user lease", &path)(source));
                }
            }
        }
        Err(Error::BuildUsersExhausted {
            first: FIRST_BUILD_ID,
            count: BUILD_ID_COUNT,
            dir: dir.to_path_buf(),
        })
    }

    /// The build's uid on the host.
    pub fn uid(&self) -> u32 {
        self.id
    }

    /// The build's gid on the host.
    pub fn gid(&self) -> u32 {
        self.id
    }
}

/// Creates `dir` and its parent if missing, then checks that both are directories (not links) owned by the
/// calling user (root, in use) that nobody else can write.
fn prepare_lease_dir(dir: &Path) -> Result<()> {
    let owner = nix::unistd::geteuid().as_raw();
    let parent = dir.parent().unwrap_or(dir);
    for (path, mode) in [(parent, 0o755), (dir, 0o700)] {
        match std::fs::DirBuilder::new().mode(mode).create(path) {
            Ok(()) => {
                // The umask may have cleared bits we want; set them exactly.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(Error::io("set the mode of", path))?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(Error::io("create the build user directory", path)(error)),
        }
        let meta = std::fs::symlink_metadata(path)
            .map_err(Error::io("inspect the build user directory", path))?;
        let unsafe_because = if !meta.is_dir() {
            Some("it is not a directory".to_owned())
        } else if meta.uid() != owner {
            Some(format!(
                "it is owned by uid {}, not uid {owner}",
                meta.uid()
            ))
        } else if meta.mode() & 0o022 != 0 {
            Some(format!(
                "its mode {:o} lets others than its owner write it",
                meta.mode() & 0o7777
            ))
        } else {
            None
        };
        if let Some(reason) = unsafe_because {
            return Err(Error::UnsafeLeaseDir {
                path: path.to_path_buf(),
                reason,
            });
        }
    }
    Ok(())
}

/// A root running inside a user namespace that maps only part of the id space (`unshare --map-root-user` maps one
/// id, rootless podman 65536) cannot give a build an id the namespace lacks: say so before anything runs.
fn check_pool_is_mapped() -> Result<()> {
    match map_lacking_pool()? {
        None => Ok(()),
        Some((map, content)) => Err(Error::BuildUsersUnmapped {
            first: FIRST_BUILD_ID,
            last: FIRST_BUILD_ID + (BUILD_ID_COUNT - 1),
            map: PathBuf::from(map),
            content,
        }),
    }
}

/// The id map of this process's user namespace (`/proc/self/uid_map` or `gid_map`) that lacks the pool, with its
/// content on one line, if one does.
pub(crate) fn map_lacking_pool() -> Result<Option<(&'static str, String)>> {
    for map in ["/proc/self/uid_map", "/proc/self/gid_map"] {
        let text = std::fs::read_to_string(map).map_err(Error::io("read", map))?;
        if !covers(&text, FIRST_BUILD_ID, BUILD_ID_COUNT) {
            return Ok(Some((
                map,
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )));
        }
    }
    Ok(None)
}

/// Whether one line `inside outside count` of an id map covers the ids `first … first + count - 1` (inside).
fn covers(map: &str, first: u32, count: u32) -> bool {
    map.lines().any(|line| {
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|field| field.parse().ok())
            .collect();
        match fields[..] {
            [inside, _, length] => {
                inside <= u64::from(first) && u64::from(first) + u64::from(count) <= inside + length
            }
            _ => false,
        }
    })
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "a test's scratch directory, removed by path"
)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_must_lie_inside_one_extent_of_the_map() {
        let (first, count) = (FIRST_BUILD_ID, BUILD_ID_COUNT);
        assert!(covers("         0          0 4294967295\n", first, count));
        assert!(!covers("0 1000 1\n1 100000 65536\n", first, count));
        assert!(covers(
            "0 1000 1\n1879048192 1879048192 65536\n",
            first,
            count
        ));
        assert!(!covers("1879048192 1879048192 65535\n", first, count));
        assert!(!covers("", first, count));
    }

    #[test]
    fn a_leased_id_is_never_leased_twice_and_is_freed_on_drop() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("hstore/build-users");
        let first = BuildUser::acquire_in(&dir).expect("first lease");
        let second = BuildUser::acquire_in(&dir).expect("second lease");
        assert_eq!(first.uid(), FIRST_BUILD_ID);
        assert_eq!(second.uid(), FIRST_BUILD_ID + 1);
        assert_eq!(second.gid(), second.uid());
        drop(first);
        let again = BuildUser::acquire_in(&dir).expect("lease after the drop");
        assert_eq!(again.uid(), FIRST_BUILD_ID);
        let mode = |path: &Path| std::fs::metadata(path).expect("stat").mode() & 0o7777;
        assert_eq!(
            (mode(dir.parent().expect("parent")), mode(&dir)),
            (0o755, 0o700)
        );
    }

    #[test]
    fn a_lease_directory_others_could_write_is_refused() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("hstore/build-users");
        BuildUser::acquire_in(&dir).expect("lease");
        let parent = dir.parent().expect("parent");
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        match BuildUser::acquire_in(&dir) {
            Err(Error::UnsafeLeaseDir { path, reason }) => {
                assert_eq!(path, parent);
                assert!(reason.contains("777"), "{reason}");
            }
            other => panic!("expected UnsafeLeaseDir, got {other:?}"),
        }
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::remove_dir_all(&dir).expect("remove");
        std::os::unix::fs::symlink(root.path(), &dir).expect("symlink");
        assert!(matches!(
            BuildUser::acquire_in(&dir),
            Err(Error::UnsafeLeaseDir { .. })
        ));
    }
}
