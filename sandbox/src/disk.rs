//! The output-size cap ([`OutputLimit`]): what a build may leave in `/build` and `$out` together, both of which
//! live on the store's filesystem, so a build could otherwise fill that disk unnoticed.
//!
//! Two checks enforce it, both on the calling side:
//! - during the build, [`watch`]: every [`POLL`] it reads the filesystem's used space (one `statvfs`, nothing
//!   walked) and only when the space used since its last count, added to that count, could pass the cap does it
//!   count the two trees ([`measure_running`]), stopping the build if they are over. A build far below its cap is never
//!   walked; a walk is followed by a rest nine times its length, so counting takes at most a tenth of the time;
//! - after a build that ran, one exact count ([`finish`]) before anything (the store) reads the trees. This is the
//!   check that sees a sparse file (`truncate -s 1G`), which costs the disk nothing until the store would keep it
//!   dense. It is the same walk that clears the setuid/setgid bits the build left, which happens after every build:
//!   the trees are walked once, not twice.
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
use std::os::unix::fs::MetadataExt;
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

/// After the build (nothing runs in the trees any more): clears the setuid/setgid bits under `dirs` and makes every
/// directory readable to its owner, and with `cap` counts the trees in the same walk: [`exceeded`] if they hold more.
pub(crate) fn finish(dirs: &[PathBuf], cap: Option<u64>) -> Result<()> {
    let counted = clear_and_count(dirs, cap.is_some())?;
    match cap {
        Some(cap) if counted.bytes > cap => Err(exceeded(cap)),
        _ => Ok(()),
    }
}

/// Bytes the trees hold, and whether some of them could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    pub(crate) bytes: u64,
    pub(crate) unreadable: bool,
}

/// What an entry is, for [`Tally::charge`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
    Symlink,
    Other,
}

/// A running count of the module docs' rule, hard links once.
#[derive(Default)]
struct Tally {
    bytes: u64,
    linked: HashSet<(u64, u64)>,
}

impl Tally {
    /// Adds one entry: `blocks` in 512-byte units, `identity` its device and inode.
    fn charge(&mut self, kind: Kind, apparent: u64, blocks: u64, links: u64, identity: (u64, u64)) {
        if links > 1 && kind != Kind::Directory && !self.linked.insert(identity) {
            return;
        }
        let allocated = blocks.saturating_mul(512);
        let size = match kind {
            Kind::File => apparent.max(allocated),
            Kind::Directory => allocated,
            Kind::Symlink => apparent,
            Kind::Other => 0,
        };
        self.bytes = self.bytes.saturating_add(size);
    }
}

/// One walk per tree, relative to one open directory at a time (`hstore_store::remove`), so a tree nested past
/// `PATH_MAX` (20,000 directories) is handled instead of failing a build that succeeded: setuid/setgid bits cleared,
/// unreadable directories made readable (`u+rwx`), and with `count` every entry counted. Any error is returned.
fn clear_and_count(dirs: &[PathBuf], count: bool) -> Result<Counted> {
    let mut tally = Tally::default();
    for dir in dirs {
        hstore_store::remove::clear_special_bits_visiting(dir, &mut |stat| {
            if !count {
                return;
            }
            let kind = match stat.st_mode & libc::S_IFMT {
                libc::S_IFREG => Kind::File,
                libc::S_IFDIR => Kind::Directory,
                libc::S_IFLNK => Kind::Symlink,
                _ => Kind::Other,
            };
            tally.charge(
                kind,
                u64::try_from(stat.st_size).unwrap_or(0),
                u64::try_from(stat.st_blocks).unwrap_or(0),
                stat.st_nlink,
                (stat.st_dev, stat.st_ino),
            );
        })
        .map_err(|error| store_walk_error(dir, error))?;
    }
    Ok(Counted {
        bytes: tally.bytes,
        unreadable: false,
    })
}

/// Counts what `dirs` hold while the build runs and changes them: entries that vanish are skipped, and unreadable
/// ones noted (the watchdog then counts the filesystem's growth instead).
fn measure_running(dirs: &[PathBuf]) -> Counted {
    let mut tally = Tally::default();
    let mut unreadable = false;
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                unreadable = true;
                continue;
            }
        };
        let file_type = meta.file_type();
        let kind = if file_type.is_file() {
            Kind::File
        } else if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        tally.charge(
            kind,
            meta.len(),
            meta.blocks(),
            meta.nlink(),
            (meta.dev(), meta.ino()),
        );
        if kind != Kind::Directory {
            continue;
        }
        match std::fs::read_dir(&path) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => pending.push(entry.path()),
                        Err(_) => unreadable = true,
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => unreadable = true,
        }
    }
    Counted {
        bytes: tally.bytes,
        unreadable,
    }
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
        let now = measure_running(dirs);
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
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sparse_files_count_at_their_apparent_size_and_hard_links_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sparse = std::fs::File::create(dir.path().join("sparse")).expect("create");
        sparse.set_len(1 << 30).expect("truncate");
        std::fs::write(dir.path().join("small"), b"x").expect("write");
        std::fs::hard_link(dir.path().join("small"), dir.path().join("link")).expect("link");
        let counted = clear_and_count(&[dir.path().to_path_buf()], true).expect("count");
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
        let counted = clear_and_count(&[dir.path().to_path_buf()], true).expect("count");
        assert!(counted.bytes >= 8 << 20, "{counted:?}");
        assert!(finish(&[dir.path().to_path_buf()], Some(1 << 20)).is_err());
        assert!(finish(&[dir.path().to_path_buf()], Some(16 << 20)).is_ok());
    }
}
