//! `--install-path PREFIX`: copies a whole build output (`bin/`, `lib/`, `include/`, `share/`, Python packages, …)
//! under a prefix, from the store's tree, so that a program whose libraries came from other recipes runs from the
//! prefix (see the relocation convention in README.md: `$ORIGIN`-relative rpaths, no absolute build paths).
//!
//! Security invariants (an output is written by a build script, so it is untrusted):
//! - The source is the store's Merkle tree, never a directory on disk: its nodes are files (with only the
//!   executable bit), directories and symlinks, so setuid/setgid/sticky bits and device files cannot be installed
//!   whatever the build wrote, and a symlink in the output is never followed (`ln -s /etc $out/bin` installs
//!   nothing of `/etc`).
//! - A symlink in the output is installed only if its target obeys the store's rule for links in a tree,
//!   [`hstore_store::check_symlink_target`] (the archive unpacker's rule too): relative, climbing with leading `..`
//!   no higher than the output's root, then only descending. A target is text, but the names it passes through may
//!   be links themselves, so a `..` after a name (`t1 -> s/..` with `s -> ../..`) is refused: with that shape no
//!   chain of installed links resolves outside the prefix. Any other target fails the install before anything is
//!   written, naming the link.
//! - Everything under the prefix is created relative to an open directory handle (`openat`/`mkdirat`/
//!   `symlinkat`/`renameat`): a directory is entered with `O_NOFOLLOW | O_DIRECTORY`, and a file is written to a
//!   fresh temporary name opened with `O_CREAT | O_EXCL | O_NOFOLLOW`, then renamed over the final name (rename
//!   replaces a symlink there instead of following it). Install never follows a symlink it did not create: a
//!   pre-planted `.NAME.hstore-tmp -> victim` in the prefix is left alone, and the victim untouched.
//! - Files get mode 0755 (executable) or 0644, directories 0755, regardless of umask-free modes in the output.
//!
//! The prefix itself (given by the user) is created with its parents if missing; it is the user's path, so a
//! symlink there is theirs to make.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hstore_store::{Digest, Node, Store, check_symlink_target};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

use crate::error::{BuildError, Result};

/// What [`install`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Regular files installed.
    pub files: usize,
    /// Symlinks installed.
    pub symlinks: usize,
    /// Directories created or entered.
    pub directories: usize,
}

/// Installs the output tree `output` under `prefix`; see the module docs.
pub fn install(store: &Store, output: &Digest, prefix: &Path) -> Result<InstallReport> {
    check_symlinks(store, output)?;
    std::fs::create_dir_all(prefix).map_err(|source| io_error("create", prefix, source))?;
    let root = openat(
        AT_FDCWD,
        prefix,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| io_error("open", prefix, errno.into()))?;
    let mut report = InstallReport::default();
    install_directory(store, output, &root, prefix, &mut report)?;
    Ok(report)
}

/// Refuses the whole install when any symlink of the output breaks the store's rule for links in a tree.
///
/// An explicit stack, no recursion: an output may be deeper than any thread's stack.
fn check_symlinks(store: &Store, output: &Digest) -> Result<()> {
    let mut stack = vec![(*output, PathBuf::new(), 0_usize)];
    while let Some((directory, at, depth)) = stack.pop() {
        let node = store
            .directory(&directory)
            .map_err(|source| BuildError::store("the output to install", source))?;
        for (name, child) in node.entries() {
            let path = at.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
            match child {
                Node::Directory { digest, .. } => stack.push((*digest, path, depth + 1)),
                Node::Symlink { target } => {
                    check_symlink_target(depth, target).map_err(|reason| {
                        BuildError::InstallSymlinkEscapes {
                            output: *output,
                            path,
                            target: String::from_utf8_lossy(target).into_owned(),
                            reason,
                        }
                    })?;
                }
                Node::File { .. } => {}
            }
        }
    }
    Ok(())
}

fn install_directory(
    store: &Store,
    directory: &Digest,
    dir_fd: &OwnedFd,
    dir_path: &Path,
    report: &mut InstallReport,
) -> Result<()> {
    report.directories += 1;
    let node = store
        .directory(directory)
        .map_err(|source| BuildError::store("the output to install", source))?;
    for (name, child) in node.entries() {
        let name = std::ffi::OsStr::from_bytes(name.as_bytes());
        let path = dir_path.join(name);
        match child {
            Node::Directory { digest, .. } => {
                match mkdirat(dir_fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(io_error("create", &path, errno.into())),
                }
                // O_NOFOLLOW: an existing symlink here (planted, or left by an earlier install) is refused, never
                // entered.
                let child_fd = openat(
                    dir_fd.as_fd(),
                    name,
                    OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|errno| match errno {
                    Errno::ELOOP | Errno::ENOTDIR => {
                        BuildError::InstallNotADirectory { path: path.clone() }
                    }
                    errno => io_error("open", &path, errno.into()),
                })?;
                install_directory(store, digest, &child_fd, &path, report)?;
            }
            Node::File {
                digest, executable, ..
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                replace_with(dir_fd, name, &path, |fd, temp| {
                    let mut blob = store
                        .blob(digest)
                        .map_err(|source| BuildError::store("the output to install", source))?;
                    let mut file = File::from(fd);
                    std::io::copy(&mut blob.reader, &mut file)
                        .and_then(|_| file.flush())
                        .map_err(|source| io_error("write", temp, source))?;
                    fchmod(file.as_fd(), Mode::from_bits_truncate(mode))
                        .map_err(|errno| io_error("set the mode of", temp, errno.into()))
                })?;
                report.files += 1;
            }
            Node::Symlink { target } => {
                let target = std::ffi::OsStr::from_bytes(target);
                replace_with_symlink(dir_fd, name, &path, target)?;
                report.symlinks += 1;
            }
        }
    }
    Ok(())
}

/// A temporary name in the same directory that did not exist: `.NAME.<pid>-<n>.hstore-tmp`, created with
/// `O_EXCL | O_NOFOLLOW` so that whatever already sits at a candidate name (a planted symlink) is never opened.
fn temp_names(name: &std::ffi::OsStr) -> impl Iterator<Item = PathBuf> {
    let pid = std::process::id();
    (0..64).map(move |attempt| {
        let mut temp = std::ffi::OsString::from(".");
        temp.push(name);
        temp.push(format!(".{pid}-{attempt}.hstore-tmp"));
        PathBuf::from(temp)
    })
}

/// Writes a new file at a temporary name with `write`, then renames it over `name`.
fn replace_with(
    dir_fd: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    write: impl FnOnce(OwnedFd, &Path) -> Result<()>,
) -> Result<()> {
    for temp in temp_names(name) {
        let fd = match openat(
            dir_fd.as_fd(),
            &temp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => continue,
            Err(errno) => {
                return Err(io_error(
                    "create",
                    &path.with_file_name(&temp),
                    errno.into(),
                ));
            }
        };
        let temp_path = path.with_file_name(&temp);
        let result =
            write(fd, &temp_path).and_then(|()| rename_into_place(dir_fd, &temp, name, path));
        if result.is_err() {
            let _ = unlinkat(dir_fd.as_fd(), &temp, UnlinkatFlags::NoRemoveDir);
        }
        return result;
    }
    Err(temp_names_taken(path))
}

fn replace_with_symlink(
    dir_fd: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    target: &std::ffi::OsStr,
) -> Result<()> {
    for temp in temp_names(name) {
        match symlinkat(target, dir_fd.as_fd(), &temp) {
            Ok(()) => {}
            Err(Errno::EEXIST) => continue,
            Err(errno) => {
                return Err(io_error(
                    "create",
                    &path.with_file_name(&temp),
                    errno.into(),
                ));
            }
        }
        let result = rename_into_place(dir_fd, &temp, name, path);
        if result.is_err() {
            let _ = unlinkat(dir_fd.as_fd(), &temp, UnlinkatFlags::NoRemoveDir);
        }
        return result;
    }
    Err(temp_names_taken(path))
}

/// `renameat` replaces a file or symlink at `name` (never following it); a directory there is an error.
fn rename_into_place(
    dir_fd: &OwnedFd,
    temp: &Path,
    name: &std::ffi::OsStr,
    path: &Path,
) -> Result<()> {
    renameat(dir_fd.as_fd(), temp, dir_fd.as_fd(), name).map_err(|errno| match errno {
        Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST => BuildError::InstallOccupied {
            path: path.to_path_buf(),
        },
        errno => io_error("install", path, errno.into()),
    })
}

/// Every temporary name for `path` exists already (64 of them: not a race, something planted them).
fn temp_names_taken(path: &Path) -> BuildError {
    io_error(
        "find a free temporary name beside",
        path,
        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    )
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> BuildError {
    BuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
