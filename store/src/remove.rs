//! Walking trees that something else wrote: [`remove_tree`], [`TempTree`] (the store's scratch directories — a
//! build's `/build` and `$out`, an unpacked archive, a checkout — removed when dropped) and [`clear_special_bits`]
//! (what the sandbox runs over `/build` and `$out` once a build is over).
//!
//! Such a tree is hostile in shape, so the walk holds up whatever it is:
//! - **Any depth.** The walk keeps an explicit stack (no recursion: 20,000 nested directories overflowed the stack
//!   of `std::fs::remove_dir_all`), and works relative to one open directory at a time (`openat`/`unlinkat`), so a
//!   path longer than `PATH_MAX` and a depth above the open-file limit are no obstacle. It climbs back with `..`
//!   and checks that it lands on the directory it came from (device and inode), so a directory moved meanwhile
//!   fails the removal instead of sending it elsewhere.
//! - **Any modes.** A directory the tree's owner cannot read, enter or write (`chmod 000`, `chmod 555`) is given
//!   `u+rwx` first, so a build that left one behind is not failed by it, as root or not.
//! - **Never through a symlink.** Every directory is entered with `O_NOFOLLOW`, and a symlink is removed as a link.
//!
//! Memory: the names of the directories still to visit, no more than the tree lists.

use std::ffi::{CStr, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmod, fchmodat, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::error::{Error, Result};

/// Owner read, write and search: what removing a directory's entries takes.
const OWNER_RWX: u32 = 0o700;

/// Setuid and setgid.
const SPECIAL_BITS: u32 = 0o6000;

/// Removes `path` and everything below it; a missing `path` is not an error. See the [module docs](self).
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io("stat", path)(error)),
        Ok(metadata) if !metadata.is_dir() => {
            return fs::remove_file(path).map_err(Error::io("remove", path));
        }
        Ok(_) => {}
    }
    let top = open_directory(AT_FDCWD, path.as_os_str(), path)?;
    walk(top, path, &mut Walk::Remove)?;
    fs::remove_dir(path).map_err(Error::io("remove", path))
}

/// Clears the setuid and setgid bits of `root` and everything below it, and gives every directory `u+rwx`, by the
/// same walk as [`remove_tree`] (any depth, any modes, never through a symlink): what a build left in `/build` and
/// `$out` is then neither a setuid program nor an obstacle to listing, adding or removing the tree. A symlink or a
/// missing `root` is left alone. Run it only once whatever wrote the tree is gone.
pub fn clear_special_bits(root: &Path) -> Result<()> {
    clear_special_bits_visiting(root, &mut |_| {})
}

/// [`clear_special_bits`], calling `each` with the `lstat` of `root` and of every entry below it on the way (a
/// directory's once it is `u+rwx`; symlinks as links, never followed), so one walk both clears and counts a finished
/// build's trees. A missing `root` is visited as nothing.
pub fn clear_special_bits_visiting(root: &Path, each: &mut dyn FnMut(&FileStat)) -> Result<()> {
    let stat = match fstatat(AT_FDCWD, root, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(io_error("stat", root)(errno)),
    };
    match file_type(&stat) {
        SFlag::S_IFDIR => {
            let top = open_directory(AT_FDCWD, root.as_os_str(), root)?;
            // After `open_directory`, which may have changed its mode.
            each(&fstat(top.as_fd()).map_err(io_error("stat", root))?);
            walk(top, root, &mut Walk::ClearSpecialBits(each))
        }
        SFlag::S_IFLNK => {
            each(&stat);
            Ok(())
        }
        _ => {
            each(&stat);
            if stat.st_mode & SPECIAL_BITS == 0 {
                return Ok(());
            }
            // Not a symlink (checked above), so following one is not a concern.
            fs::set_permissions(
                root,
                std::os::unix::fs::PermissionsExt::from_mode(stat.st_mode & 0o7777 & !SPECIAL_BITS),
            )
            .map_err(Error::io("clear the setuid/setgid bits of", root))
        }
    }
}

/// What [`walk`] does to the tree.
enum Walk<'a> {
    /// Unlink every entry, each directory once it is empty.
    Remove,
    /// Clear the setuid/setgid bits of every entry (directories lose them as they are opened), and call the
    /// function with every entry's `lstat` (a directory's once it is `u+rwx`).
    ClearSpecialBits(&'a mut dyn FnMut(&FileStat)),
}

/// One directory being walked: its name in its parent, the parent's identity (to check the climb back) and the
/// parent's subdirectories still to visit.
struct Level {
    name: OsString,
    parent: (u64, u64),
    parent_pending: Vec<OsString>,
}

/// Walks the directory open as `top` (which is `path`), depth first, without recursion, one open directory at a
/// time.
fn walk(top: OwnedFd, path: &Path, action: &mut Walk<'_>) -> Result<()> {
    let mut current = top;
    let mut pending = visit_entries(&current, path, 0, action)?;
    let mut levels: Vec<Level> = Vec::new();
    loop {
        if let Some(name) = pending.pop() {
            let at = named(path, levels.len() + 1, &name);
            let child = open_directory(&current, &name, &at)?;
            if let Walk::ClearSpecialBits(each) = action {
                each(&fstat(child.as_fd()).map_err(io_error("stat", &at))?);
            }
            let parent = identity(&fstat(current.as_fd()).map_err(io_error("stat", &at))?);
            let child_pending = visit_entries(&child, path, levels.len() + 1, action)?;
            levels.push(Level {
                name,
                parent,
                parent_pending: std::mem::replace(&mut pending, child_pending),
            });
            current = child;
        } else if let Some(level) = levels.pop() {
            let at = named(path, levels.len() + 1, &level.name);
            let parent = openat(
                current.as_fd(),
                "..",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_error("open the parent of", &at))?;
            let found = identity(&fstat(parent.as_fd()).map_err(io_error("stat", &at))?);
            if found != level.parent {
                return Err(Error::io("climb back from", at)(io::Error::other(
                    "the directory was moved while it was being walked",
                )));
            }
            current = parent;
            if matches!(action, Walk::Remove) {
                unlinkat(
                    current.as_fd(),
                    level.name.as_os_str(),
                    UnlinkatFlags::RemoveDir,
                )
                .or_else(ignore_missing)
                .map_err(io_error("remove", &at))?;
            }
            pending = level.parent_pending;
        } else {
            return Ok(());
        }
    }
}

/// Does `action` to every non-directory entry of `directory` and returns the names of its subdirectories.
fn visit_entries(
    directory: &OwnedFd,
    top: &Path,
    depth: usize,
    action: &mut Walk<'_>,
) -> Result<Vec<OsString>> {
    let here = || {
        if depth == 0 {
            top.to_path_buf()
        } else {
            top.join(format!("…{depth} levels down…"))
        }
    };
    // A description of its own ("."), so reading it never moves the offset of the descriptor the walk climbs from.
    let mut listing = Dir::openat(
        directory.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("list", &here()))?;
    let mut subdirectories = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(io_error("list", &here()))?;
        let name = entry.file_name();
        if is_dot_or_dot_dot(name) {
            continue;
        }
        let name = OsStr::from_bytes(name.to_bytes());
        let at = || named(top, depth + 1, name);
        let known = entry.file_type();
        // Clearing bits needs the mode; some file systems do not give the type in `readdir`.
        let stat = if !matches!(action, Walk::Remove) || known.is_none() {
            match fstatat(directory.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::ENOENT) => continue,
                Err(errno) => return Err(io_error("stat", &at())(errno)),
            }
        } else {
            None
        };
        let is_directory = match (known, &stat) {
            (Some(kind), _) => kind == Type::Directory,
            (None, Some(stat)) => file_type(stat) == SFlag::S_IFDIR,
            (None, None) => false,
        };
        if is_directory {
            subdirectories.push(name.to_owned());
            continue;
        }
        match (&mut *action, stat) {
            (Walk::Remove, _) => unlinkat(directory.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .or_else(ignore_missing)
                .map_err(io_error("remove", &at()))?,
            (Walk::ClearSpecialBits(each), Some(stat)) => {
                each(&stat);
                if file_type(&stat) != SFlag::S_IFLNK && stat.st_mode & SPECIAL_BITS != 0 {
                    // `fchmodat` follows a symlink; this is not one, and the tree's writers are gone.
                    fchmodat(
                        directory.as_fd(),
                        name,
                        Mode::from_bits_truncate(stat.st_mode & 0o7777 & !SPECIAL_BITS),
                        FchmodatFlags::FollowSymlink,
                    )
                    .map_err(io_error("clear the setuid/setgid bits of", &at()))?;
                }
            }
            (Walk::ClearSpecialBits(_), None) => {}
        }
    }
    Ok(subdirectories)
}

/// Opens the directory `name` in `parent` without following a symlink, making it `u+rwx` first if it was not (so
/// it can be listed and emptied). `path` names it in errors.
fn open_directory<Fd: AsFd>(parent: Fd, name: &OsStr, path: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let directory = match openat(parent.as_fd(), name, flags, Mode::empty()) {
        Ok(directory) => directory,
        Err(Errno::EACCES) => {
            // Unreadable (`chmod 000`): make it readable, then open it. `fchmodat` follows a symlink, so check
            // first that `name` is a directory; the tree's writers are gone, nothing swaps it meanwhile.
            let stat = fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(io_error("stat", path))?;
            if file_type(&stat) != SFlag::S_IFDIR {
                return Err(io_error("open", path)(Errno::ENOTDIR));
            }
            fchmodat(
                parent.as_fd(),
                name,
                Mode::from_bits_truncate(usable_mode(stat.st_mode)),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(io_error("make removable", path))?;
            openat(parent.as_fd(), name, flags, Mode::empty()).map_err(io_error("open", path))?
        }
        Err(errno) => return Err(io_error("open", path)(errno)),
    };
    let stat = fstat(directory.as_fd()).map_err(io_error("stat", path))?;
    if usable_mode(stat.st_mode) != stat.st_mode & 0o7777 {
        // Searchable and writable, or its entries cannot be removed (`chmod 555`, `chmod 444`); and no setgid bit.
        fchmod(
            directory.as_fd(),
            Mode::from_bits_truncate(usable_mode(stat.st_mode)),
        )
        .map_err(io_error("make removable", path))?;
    }
    Ok(directory)
}

/// A directory's mode with `u+rwx` and without setuid/setgid.
fn usable_mode(mode: u32) -> u32 {
    ((mode & 0o7777) | OWNER_RWX) & !SPECIAL_BITS
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn identity(stat: &FileStat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

fn is_dot_or_dot_dot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// Something already gone is what removal wanted.
fn ignore_missing(errno: Errno) -> std::result::Result<(), Errno> {
    if errno == Errno::ENOENT {
        Ok(())
    } else {
        Err(errno)
    }
}

/// A path for errors: the whole path of an entry thousands of levels down is longer than any message should be,
/// so it is the top, the depth and the entry's name.
fn named(top: &Path, depth: usize, name: &OsStr) -> PathBuf {
    if depth <= 1 {
        top.join(name)
    } else {
        top.join(format!("…{} levels down…", depth - 1)).join(name)
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error {
    let path = path.to_path_buf();
    move |errno| Error::Io {
        action,
        path,
        source: io::Error::from(errno),
    }
}

/// A scratch directory in the store's `tmp/`, removed with [`remove_tree`] when dropped (whatever depth and modes
/// its contents have), unless [`TempTree::keep`] takes it.
#[derive(Debug)]
pub struct TempTree {
    path: PathBuf,
    /// Whether dropping removes it (not once kept or removed).
    armed: bool,
}

impl TempTree {
    /// Takes ownership of the directory at `path`, which the caller just created.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory (a failed build's, for inspection) and returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }

    /// Removes the directory now, reporting a failure (a drop can only log it).
    pub fn remove(mut self) -> Result<()> {
        self.armed = false;
        remove_tree(&self.path)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if self.armed
            && let Err(error) = remove_tree(&self.path)
        {
            // `store gc` removes whatever is left in `tmp/`.
            tracing::warn!("could not remove the scratch directory: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A chain of `depth` directories named `d` below `root`, made with relative steps (the whole path is far longer
    /// than `PATH_MAX`), with a file and a symlink at the bottom.
    fn deep_chain(root: &Path, depth: usize) {
        fs::create_dir(root).unwrap();
        let mut current = openat(
            AT_FDCWD,
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        for _ in 0..depth {
            nix::sys::stat::mkdirat(current.as_fd(), "d", Mode::from_bits_truncate(0o755)).unwrap();
            current = openat(
                current.as_fd(),
                "d",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
        }
        let file = openat(
            current.as_fd(),
            "f",
            OFlag::O_WRONLY | OFlag::O_CREAT,
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        drop(file);
        nix::unistd::symlinkat("/etc", current.as_fd(), "link").unwrap();
    }

    #[test]
    fn a_tree_5000_directories_deep_is_removed_from_a_64_kib_stack() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("deep");
        // Deep enough that the whole path is past `PATH_MAX` and a recursion would overflow 64 KiB many times over
        // (std's `remove_dir_all` overflowed the main thread's 8 MiB at 20,000, which the escape suite runs; each
        // level costs a slow `rmdir` on some disks, so not here).
        deep_chain(&root, 5000);
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn({
                let root = root.clone();
                move || remove_tree(&root).unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn unreadable_unsearchable_and_read_only_directories_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        for sub in [
            "none/inner",
            "read-only/inner",
            "no-search/inner",
            "wide/a",
            "wide/b",
            "wide/c",
        ] {
            fs::create_dir_all(root.join(sub)).unwrap();
            fs::write(root.join(sub).join("file"), b"x").unwrap();
        }
        std::os::unix::fs::symlink("/etc", root.join("wide/etc")).unwrap();
        std::os::unix::fs::symlink("../none", root.join("wide/up")).unwrap();
        set_mode(&root.join("none/inner"), 0o000);
        set_mode(&root.join("none"), 0o000);
        set_mode(&root.join("read-only/inner"), 0o555);
        set_mode(&root.join("read-only"), 0o444);
        set_mode(&root.join("no-search"), 0o600);
        set_mode(&root, 0o500);
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        // The symlinks were removed, not followed.
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn special_bits_are_cleared_and_directories_made_usable_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        deep_chain(&root, 3000);
        fs::create_dir_all(root.join("bin/locked")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        set_mode(&root.join("bin/tool"), 0o6755);
        set_mode(&root.join("bin/locked"), 0o2000);
        let victim = dir.path().join("victim");
        fs::write(&victim, b"x").unwrap();
        set_mode(&victim, 0o4755);
        std::os::unix::fs::symlink(&victim, root.join("bin/victim")).unwrap();
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn({
                let root = root.clone();
                move || clear_special_bits(&root).unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        let mode = |path: &Path| {
            std::os::unix::fs::PermissionsExt::mode(
                &fs::symlink_metadata(path).unwrap().permissions(),
            ) & 0o7777
        };
        assert_eq!(mode(&root.join("bin/tool")), 0o755);
        assert_eq!(mode(&root.join("bin/locked")), 0o700);
        // Through the link: untouched.
        assert_eq!(mode(&victim), 0o4755);
        remove_tree(&root).unwrap();
        assert!(victim.exists());
    }

    #[test]
    fn every_entry_is_visited_once_at_any_depth_through_unreadable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        deep_chain(&root, 3000);
        fs::create_dir_all(root.join("x/locked")).unwrap();
        fs::write(root.join("x/locked/file"), b"12345").unwrap();
        set_mode(&root.join("x/locked"), 0o000);
        let mut count = 0_usize;
        let mut bytes = 0_i64;
        clear_special_bits_visiting(&root, &mut |stat| {
            count += 1;
            if file_type(stat) == SFlag::S_IFREG {
                bytes += stat.st_size;
            }
        })
        .unwrap();
        // The root, 3000 `d`, `f` and `link` at the bottom, `x`, `x/locked` and its file.
        assert_eq!(count, 1 + 3000 + 2 + 3);
        assert_eq!(bytes, 5);
        let mut missing = 0;
        clear_special_bits_visiting(&dir.path().join("missing"), &mut |_| missing += 1).unwrap();
        assert_eq!(missing, 0);
        remove_tree(&root).unwrap();
    }

    #[test]
    fn a_missing_path_is_removed_already_and_a_file_or_link_is_removed_alone() {
        let dir = tempfile::tempdir().unwrap();
        remove_tree(&dir.path().join("missing")).unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("kept"), b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(target.join("kept").exists());
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        remove_tree(&file).unwrap();
        assert!(!file.exists());
    }

    #[test]
    fn a_temp_tree_is_removed_when_dropped_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = dir.path().join("dropped");
        deep_chain(&dropped, 300);
        set_mode(&dropped, 0o000);
        drop(TempTree::new(dropped.clone()));
        assert!(!dropped.exists());
        let kept = dir.path().join("kept");
        fs::create_dir(&kept).unwrap();
        assert_eq!(TempTree::new(kept.clone()).keep(), kept);
        assert!(kept.is_dir());
    }
}
