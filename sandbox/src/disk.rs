//! The output-size cap ([`OutputLimit`]): what a build may leave in `/build` and `$out` together, both of which
//! live on the store's filesystem, so a build could otherwise fill that disk unnoticed.
//!
//! Two checks enforce it, both on the calling side:
//! - during the build, [`watch`]: every [`POLL`] it reads the filesystem's used space (one `statvfs`, nothing
//!   walked) and only when the space used since its last count, added to that count, could pass the cap does it
//!   count the two trees ([`measure`]), stopping the build if they are over. A build far below its cap is never
//!   walked; a walk is followed by a rest nine times its length, so counting takes at most a tenth of the time;
//! - after the build, whatever its status, one exact count ([`check_after`]) before anything (the store) reads the
//!   trees. This is the check that sees a sparse file (`truncate -s 1G`), which costs the disk nothing until the
//!   store would keep it dense.
//!
//! A file counts at the larger of its apparent size and its allocated blocks (so a sparse file at its apparent
//! size, a small one at its block); a directory at its blocks; a symlink at its target's length; hard links once.
//! Not `RLIMIT_FSIZE`: it would bound each file (in `/tmp` too) rather than the total, and the tool it stops dies
//! of `SIGXFSZ` inside the script, whose exit status cannot say that a limit, rather than the script, failed.
//!
//! A directory the build made unreadable (`chmod 000`) cannot be counted while the build runs: the watchdog then
//! counts the filesystem's growth since the build started instead (an over-count if other writers share the
//! disk, never an under-count). After the build such a directory is made readable to its owner and counted.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::limits::{OutputLimit, show_bytes};

/// How often the watchdog reads the filesystem's used space.
const POLL: Duration = Duration::from_millis(50);

/// The cap in bytes for a build whose trees live on `dir`'s filesystem; `None` for no cap.
pub(crate) fn cap(limit: OutputLimit, dir: &Path) -> Result<Option<u64>> {
    match limit {
        OutputLimit::Unlimited => Ok(None),
        OutputLimit::Bytes(bytes) => Ok(Some(bytes)),
        OutputLimit::HalfOfFreeSpace => {
            let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| Error::Io {
                action: "read the free space of the filesystem of",
                path: dir.to_path_buf(),
                source: e.into(),
            })?;
            Ok(Some(
                stat.blocks_available().saturating_mul(stat.fragment_size()) / 2,
            ))
        }
    }
}

/// The error of a build over `cap`.
pub(crate) fn exceeded(cap: u64) -> Error {
    Error::LimitExceeded {
        limit: "max-output-size",
        value: show_bytes(cap),
        flag: "--max-output-size",
    }
}

/// The exact count after the build (nothing runs in the trees any more): [`exceeded`] if they hold more than
/// `cap`. A directory the build left unreadable is made readable to its owner first.
pub(crate) fn check_after(dirs: &[PathBuf], cap: u64) -> Result<()> {
    let counted = measure(dirs, true)?;
    if counted.bytes > cap {
        return Err(exceeded(cap));
    }
    Ok(())
}

/// Bytes the trees hold, and whether some of them could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    pub(crate) bytes: u64,
    pub(crate) unreadable: bool,
}

/// Counts what `dirs` hold (see the module docs), iteratively: a build can nest directories thousands deep. With
/// `after`, the build is gone: an unreadable directory is made readable (`u+rwx`) and any error is returned; without
/// it (the build is running and changing the trees), entries that vanish are skipped and unreadable ones noted.
pub(crate) fn measure(dirs: &[PathBuf], after: bool) -> Result<Counted> {
    let mut counted = Counted {
        bytes: 0,
        unreadable: false,
    };
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    if after {
        // Relative to one open directory at a time (`hstore_store::remove::visit_tree`): a tree nested past
        // `PATH_MAX` (20,000 directories) is counted too, instead of failing a build that succeeded.
        for dir in dirs {
            hstore_store::remove::visit_tree(dir, &mut |stat| {
                let kind = stat.st_mode & libc::S_IFMT;
                if stat.st_nlink > 1
                    && kind != libc::S_IFDIR
                    && !linked.insert((stat.st_dev, stat.st_ino))
                {
                    return;
                }
                let apparent = u64::try_from(stat.st_size).unwrap_or(0);
                let blocks = u64::try_from(stat.st_blocks)
                    .unwrap_or(0)
                    .saturating_mul(512);
                let size = match kind {
                    libc::S_IFREG => apparent.max(blocks),
                    libc::S_IFDIR => blocks,
                    libc::S_IFLNK => apparent,
                    _ => 0,
                };
                counted.bytes = counted.bytes.saturating_add(size);
            })
            .map_err(|error| store_walk_error(dir, error))?;
        }
        return Ok(counted);
    }
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) if after => return Err(Error::io("inspect the build's file", &path)(error)),
            Err(_) => {
                counted.unreadable = true;
                continue;
            }
        };
        if meta.nlink() > 1 && !meta.is_dir() && !linked.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let kind = meta.file_type();
        let size = if kind.is_file() {
            meta.len().max(meta.blocks().saturating_mul(512))
        } else if kind.is_dir() {
            meta.blocks().saturating_mul(512)
        } else if kind.is_symlink() {
            meta.len()
        } else {
            0
        };
        counted.bytes = counted.bytes.saturating_add(size);
        if !kind.is_dir() {
            continue;
        }
        let entries = match std::fs::read_dir(&path) {
            Err(error) if after && error.kind() == std::io::ErrorKind::PermissionDenied => {
                std::fs::set_permissions(
                    &path,
                    std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
                )
                .map_err(Error::io("make readable the build's directory", &path))?;
                std::fs::read_dir(&path)
            }
            other => other,
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) if after => {
                return Err(Error::io("list the build's directory", &path)(error));
            }
            Err(_) => {
                counted.unreadable = true;
                continue;
            }
        };
        for entry in entries {
            match entry {
                Ok(entry) => pending.push(entry.path()),
                Err(error) if after => {
                    return Err(Error::io("list the build's directory", &path)(error));
                }
                Err(_) => counted.unreadable = true,
            }
        }
    }
    Ok(counted)
}

/// A walk error of the store's tree walker, as this crate's error.
pub(crate) fn store_walk_error(root: &Path, error: hstore_store::Error) -> Error {
    match error {
        hstore_store::Error::Io {
            action,
            path,
            source,
        } => Error::Io {
            action,
            path,
            source,
        },
        other => Error::Io {
            action: "walk the build's tree",
            path: root.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Used bytes of the filesystem holding `dir`.
fn used_space(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(
        stat.blocks()
            .saturating_sub(stat.blocks_free())
            .saturating_mul(stat.fragment_size()),
    )
}

/// The watchdog of the module docs: runs until `finished` is dropped; over the cap, calls `stop` with
/// [`exceeded`] and returns.
pub(crate) fn watch(
    dirs: &[PathBuf],
    cap: u64,
    finished: &Receiver<()>,
    stop: &dyn Fn(Error),
    stopped: &Mutex<Option<Error>>,
) {
    let Some(start) = dirs.first().and_then(|dir| used_space(dir)) else {
        // No statvfs: the count after the build still holds the cap.
        return;
    };
    let mut counted_at = start;
    let mut counted: u64 = 0;
    let mut rest_until = Instant::now();
    while finished.recv_timeout(POLL) == Err(RecvTimeoutError::Timeout) {
        if stopped.lock().is_ok_and(|stopped| stopped.is_some()) {
            return;
        }
        let Some(used) = used_space(&dirs[0]) else {
            continue;
        };
        let grown = used.saturating_sub(counted_at);
        if counted.saturating_add(grown) <= cap || Instant::now() < rest_until {
            continue;
        }
        let began = Instant::now();
        let Ok(now) = measure(dirs, false) else {
            continue;
        };
        rest_until = Instant::now() + began.elapsed() * 9;
        counted_at = used;
        counted = if now.unreadable {
            now.bytes.max(used.saturating_sub(start))
        } else {
            now.bytes
        };
        if counted > cap {
            stop(exceeded(cap));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_files_count_at_their_apparent_size_and_hard_links_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sparse = std::fs::File::create(dir.path().join("sparse")).expect("create");
        sparse.set_len(1 << 30).expect("truncate");
        std::fs::write(dir.path().join("small"), b"x").expect("write");
        std::fs::hard_link(dir.path().join("small"), dir.path().join("link")).expect("link");
        let counted = measure(&[dir.path().to_path_buf()], true).expect("count");
        assert!(!counted.unreadable);
        // 1 GiB, one block for `small` (its link not again), the directory's blocks.
        assert!(
            (1 << 30) + 4096 <= counted.bytes && counted.bytes < (1 << 30) + 64 * 1024,
            "{counted:?}"
        );
    }

    #[test]
    fn an_unreadable_directory_is_opened_and_counted_after_the_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hidden = dir.path().join("hidden");
        std::fs::create_dir(&hidden).expect("mkdir");
        std::fs::File::create(hidden.join("big"))
            .expect("create")
            .set_len(8 << 20)
            .expect("truncate");
        std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let counted = measure(&[dir.path().to_path_buf()], true).expect("count");
        assert!(counted.bytes >= 8 << 20, "{counted:?}");
        assert!(check_after(&[dir.path().to_path_buf()], 1 << 20).is_err());
        assert!(check_after(&[dir.path().to_path_buf()], 16 << 20).is_ok());
    }
}
