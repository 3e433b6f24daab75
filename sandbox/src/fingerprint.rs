//! Fingerprints of what a build takes from the host, for the build key: the base system, declared host paths and
//! declared host tools. Each is a [`Digest`] (BLAKE3), stable while the host does not change.
//!
//! **Base system** ([`fingerprint_base_system`]): hashing the contents of `/usr` would take seconds to minutes,
//! so we hash what changes whenever the base system changes and costs well under 0.1 s to read:
//! - the package manager's database (`/var/lib/dpkg/status`, `/lib/apk/db/installed`,
//!   `/var/lib/rpm/rpmdb.sqlite` or `/var/lib/rpm/Packages`): every install, upgrade or removal rewrites it,
//!   with exact versions;
//! - `/etc/os-release` (the release) and `/etc/ld.so.cache` (which libraries the loader finds, including ones
//!   installed outside the package manager once `ldconfig` ran);
//! - the names, sizes and mtimes of the entries directly in `/usr/local/{bin,sbin,lib,include}`, which are on
//!   `PATH` but not in the package database.
//!
//! Without any known package database, it falls back to a metadata walk of `/usr/bin` and `/usr/lib/gcc`.
//! Files changed in place under `/usr` without the package manager are not seen; that is the price of speed.
//!
//! **Host paths** ([`fingerprint_host_paths`]): a metadata walk (relative path, kind, mode, size, mtime, symlink
//! target) of each declared path, in byte order, as a Merkle fold of per-directory digests, listed in parallel
//! level by level and folded bottom-up without recursion (a host path may be thousands of directories deep). It does
//! not read file contents: a CUDA toolkit is gigabytes. A host path that holds a socket is refused
//! ([`Error::SocketInHostPath`]): the sandbox binds host paths read-only, and a read-only mount does not stop
//! `connect` on a unix socket, so a listening socket there would let the build talk to a host service. The walk
//! already stats every entry, so the check costs nothing; it runs wherever a host path is fingerprinted, i.e.
//! before every build and before a lock-time probe build.
//!
//! **Host tools** ([`fingerprint_host_tools`]): the stdout of commands like `nvcc --version`, run on the host
//! with a cleared environment (`LC_ALL=C`, `PATH=/usr/local/bin:/usr/bin:/bin`).
//!
//! Every value is hashed length-prefixed after a versioned domain tag, so no two different inputs hash the same
//! byte stream. Changing what is hashed MUST change the tag's version.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hstore_store::Digest;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::DEFAULT_PATH;

const PACKAGE_DATABASES: &[&str] = &[
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
];
const SYSTEM_FILES: &[&str] = &["/etc/os-release", "/etc/ld.so.cache"];
const LOCAL_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/usr/local/include",
];
const FALLBACK_TREES: &[&str] = &["/usr/bin", "/usr/lib/gcc"];

/// A host tool whose output identifies it, e.g. `nvcc` with `["--version"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTool {
    /// The program: an absolute path, or a name looked up on `/usr/local/bin:/usr/bin:/bin`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl HostTool {
    /// A tool run as `program args…`.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        HostTool {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Length-prefixed hashing, so `("ab", "c")` and `("a", "bc")` differ.
struct Fingerprinter(blake3::Hasher);

impl Fingerprinter {
    fn new(tag: &str) -> Self {
        let mut hasher = Fingerprinter(blake3::Hasher::new());
        hasher.field(tag.as_bytes());
        hasher
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn number(&mut self, value: i64) {
        self.0.update(&value.to_le_bytes());
    }

    fn finish(&self) -> Digest {
        Digest::from(self.0.finalize())
    }
}

/// Fingerprints the host base system the sandbox binds read-only; see the [module docs](self) for what it covers.
pub fn fingerprint_base_system() -> Result<Digest> {
    let mut hasher = Fingerprinter::new("hstore-sandbox base-system v2");
    let mut found_database = false;
    for path in PACKAGE_DATABASES.iter().chain(SYSTEM_FILES) {
        match fs::read(path) {
            Ok(bytes) => {
                found_database |= PACKAGE_DATABASES.contains(path);
                hasher.field(path.as_bytes());
                hasher.field(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", *path)(e)),
        }
    }
    for dir in LOCAL_DIRS {
        hash_tree(&mut hasher, Path::new(dir), 1, None)?;
    }
    if !found_database {
        for tree in FALLBACK_TREES {
            hash_tree(&mut hasher, Path::new(tree), usize::MAX, None)?;
        }
    }
    Ok(hasher.finish())
}

/// Fingerprints declared host paths by a metadata walk. A missing path is [`Error::MissingHostPath`].
pub fn fingerprint_host_paths(paths: &[PathBuf]) -> Result<Digest> {
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut hasher = Fingerprinter::new("hstore-sandbox host-paths v2");
    for path in sorted {
        let meta = fs::symlink_metadata(path).map_err(|source| Error::MissingHostPath {
            path: path.clone(),
            source,
        })?;
        // A declared path is often a symlink (`/usr/local/cuda -> cuda-12.4`): record where it points, then walk
        // what it points to, as the sandbox's bind does.
        hasher.field(path.as_os_str().as_bytes());
        if meta.file_type().is_symlink() {
            let target = fs::read_link(path).map_err(Error::io("read the symlink", path))?;
            hasher.field(target.as_os_str().as_bytes());
            fs::metadata(path).map_err(|source| Error::MissingHostPath {
                path: path.clone(),
                source,
            })?;
        }
        hash_tree(&mut hasher, path, usize::MAX, Some(path))?;
    }
    Ok(hasher.finish())
}

/// Fingerprints host tools by their stdout. A tool that cannot be started is [`Error::MissingHostTool`]; one that
/// fails is [`Error::HostToolFailed`].
pub fn fingerprint_host_tools(tools: &[HostTool]) -> Result<Digest> {
    let mut hasher = Fingerprinter::new("hstore-sandbox host-tools v1");
    for tool in tools {
        let output = Command::new(&tool.program)
            .args(&tool.args)
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::MissingHostTool {
                program: tool.program.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::HostToolFailed {
                program: tool.program.clone(),
                status: output.status.to_string(),
                stderr: stderr
                    .chars()
                    .take(500)
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            });
        }
        hasher.field(tool.program.as_bytes());
        hasher.number(i64::try_from(tool.args.len()).unwrap_or(i64::MAX));
        for arg in &tool.args {
            hasher.field(arg.as_bytes());
        }
        hasher.field(&output.stdout);
    }
    Ok(hasher.finish())
}

/// Hashes the metadata of `root` and, down to `depth` levels, everything below it, in byte order of names.
/// Symlinks below the root are recorded, not followed. With `host_path` (the declared path `root` is walked for),
/// a socket anywhere in the tree is [`Error::SocketInHostPath`].
fn hash_tree(
    hasher: &mut Fingerprinter,
    root: &Path,
    depth: usize,
    host_path: Option<&Path>,
) -> Result<()> {
    let meta = match fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read the metadata of", root)(e)),
    };
    if let Some(host_path) = host_path {
        refuse_socket(host_path, root, &meta)?;
    }
    hash_entry(hasher, Path::new(""), &meta, None);
    if meta.is_dir() {
        walk(hasher, root, Path::new(""), depth, host_path)?;
    }
    Ok(())
}

/// [`Error::SocketInHostPath`] if `meta` (of `path`, inside the declared `host_path`) is a socket.
fn refuse_socket(host_path: &Path, path: &Path, meta: &fs::Metadata) -> Result<()> {
    if meta.file_type().is_socket() {
        return Err(Error::SocketInHostPath {
            host_path: host_path.to_path_buf(),
            socket: path.to_path_buf(),
        });
    }
    Ok(())
}

/// One listed entry of a directory: its path relative to the root, metadata, link target, and the index of its
/// own listing when the walk descends into it.
struct Listed {
    child: PathBuf,
    meta: fs::Metadata,
    target: Option<PathBuf>,
    below: Option<usize>,
}

/// Hashes everything below `root`, down to `depth` levels, without recursion (a host path may be thousands of
/// directories deep). Directories are listed level by level, each level's directories in parallel (a toolchain is
/// ~50k files), then folded bottom-up: each subdirectory condensed to its own digest (a Merkle walk), folded into
/// its parent in name order, so the result does not depend on scheduling.
fn walk(
    hasher: &mut Fingerprinter,
    root: &Path,
    relative: &Path,
    depth: usize,
    host_path: Option<&Path>,
) -> Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let mut dirs: Vec<(PathBuf, usize)> = vec![(relative.to_path_buf(), depth)];
    let mut listings: Vec<Vec<Listed>> = Vec::new();
    let mut level = 0..1;
    while !level.is_empty() {
        let listed = dirs[level.clone()]
            .par_iter()
            .map(|(relative, _)| list(root, relative))
            .collect::<Result<Vec<_>>>()?;
        for (offset, entries) in listed.into_iter().enumerate() {
            let depth = dirs[level.start + offset].1;
            let mut listing = Vec::with_capacity(entries.len());
            for (child, meta, target) in entries {
                if let Some(host_path) = host_path {
                    refuse_socket(host_path, &root.join(&child), &meta)?;
                }
                let below = (meta.is_dir() && depth > 1).then(|| {
                    dirs.push((child.clone(), depth - 1));
                    dirs.len() - 1
                });
                listing.push(Listed {
                    child,
                    meta,
                    target,
                    below,
                });
            }
            listings.push(listing);
        }
        level = level.end..dirs.len();
    }
    let mut digests: Vec<Option<Digest>> = vec![None; dirs.len()];
    for index in (1..dirs.len()).rev() {
        let mut sub = Fingerprinter::new("dir");
        fold(&mut sub, &listings[index], &digests);
        digests[index] = Some(sub.finish());
    }
    fold(hasher, &listings[0], &digests);
    Ok(())
}

/// Lists one directory in name order, with each entry's metadata (`fstatat`, not following symlinks).
fn list(root: &Path, relative: &Path) -> Result<Vec<(PathBuf, fs::Metadata, Option<PathBuf>)>> {
    let dir = root.join(relative);
    let mut dir_entries: Vec<fs::DirEntry> = fs::read_dir(&dir)
        .map_err(Error::io("list", &dir))?
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("list", &dir))?;
    dir_entries.sort_by_key(fs::DirEntry::file_name);
    dir_entries
        .iter()
        .map(|entry| {
            let child = relative.join(entry.file_name());
            let path = entry.path();
            let meta = entry
                .metadata()
                .map_err(Error::io("read the metadata of", &path))?;
            let target = if meta.file_type().is_symlink() {
                Some(fs::read_link(&path).map_err(Error::io("read the symlink", &path))?)
            } else {
                None
            };
            Ok((child, meta, target))
        })
        .collect()
}

fn fold(hasher: &mut Fingerprinter, listing: &[Listed], digests: &[Option<Digest>]) {
    for entry in listing {
        hash_entry(hasher, &entry.child, &entry.meta, entry.target.as_deref());
        if let Some(below) = entry.below.and_then(|index| digests[index]) {
            hasher.field(below.as_bytes());
        }
    }
}

fn hash_entry(
    hasher: &mut Fingerprinter,
    relative: &Path,
    meta: &fs::Metadata,
    target: Option<&Path>,
) {
    hasher.field(relative.as_os_str().as_bytes());
    hasher.number(i64::from(meta.mode()));
    // Directories' sizes and mtimes change when entries are added, which the walk sees anyway; skipping them keeps
    // the fingerprint independent of e.g. a removed-then-recreated temp file.
    if !meta.is_dir() {
        hasher.number(meta.size().cast_signed());
        hasher.number(meta.mtime());
        hasher.number(meta.mtime_nsec());
    }
    if let Some(target) = target {
        hasher.field(target.as_os_str().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_system_fingerprint_is_stable_and_cheap() {
        let started = std::time::Instant::now();
        let first = fingerprint_base_system().expect("fingerprint");
        let elapsed = started.elapsed();
        let second = fingerprint_base_system().expect("fingerprint");
        assert_eq!(first, second);
        // The design budget is 0.1 s; allow slack for a loaded CI machine and debug builds.
        assert!(elapsed.as_secs_f64() < 1.0, "took {elapsed:?}");
    }

    #[test]
    fn host_path_fingerprint_follows_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sdk = dir.path().join("sdk");
        fs::create_dir_all(sdk.join("bin")).expect("mkdir");
        fs::write(sdk.join("bin/tool"), "v1").expect("write");
        let paths = vec![sdk.clone()];
        let first = fingerprint_host_paths(&paths).expect("fingerprint");
        assert_eq!(first, fingerprint_host_paths(&paths).expect("fingerprint"));
        fs::write(sdk.join("bin/tool"), "v2 longer").expect("write");
        let second = fingerprint_host_paths(&paths).expect("fingerprint");
        assert_ne!(first, second);
        fs::write(sdk.join("new-file"), "").expect("write");
        assert_ne!(second, fingerprint_host_paths(&paths).expect("fingerprint"));
    }

    #[test]
    fn a_deep_host_path_is_fingerprinted_from_a_small_stack() {
        let dir = tempfile::tempdir().unwrap();
        let mut leaf = dir.path().to_path_buf();
        for _ in 0..1500 {
            leaf.push("d");
        }
        fs::create_dir_all(&leaf).unwrap();
        fs::write(leaf.join("f"), b"x").unwrap();
        let root = dir.path().to_path_buf();
        // Recursion 1000 deep overflowed even the main thread; rayon's threads have 2 MiB.
        let digest = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || fingerprint_host_paths(&[root]).unwrap())
            .unwrap()
            .join()
            .unwrap();
        fs::write(leaf.join("f"), b"changed").unwrap();
        assert_ne!(
            fingerprint_host_paths(&[dir.path().to_path_buf()]).unwrap(),
            digest
        );
    }

    /// Issue 20, attack 7: a listening socket under a declared host path let the build reach a host service.
    #[test]
    fn a_host_path_holding_a_socket_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sdk = dir.path().join("sdk");
        fs::create_dir_all(sdk.join("run")).expect("mkdir");
        fs::write(sdk.join("tool"), "sdk").expect("write");
        fingerprint_host_paths(std::slice::from_ref(&sdk)).expect("no socket yet");
        let socket = sdk.join("run/agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        match fingerprint_host_paths(std::slice::from_ref(&sdk)) {
            Err(Error::SocketInHostPath {
                host_path,
                socket: found,
            }) => {
                assert_eq!(host_path, sdk);
                assert_eq!(found, socket);
            }
            other => panic!("expected SocketInHostPath, got {other:?}"),
        }
        // Declaring the socket itself is no way around it.
        assert!(matches!(
            fingerprint_host_paths(std::slice::from_ref(&socket)),
            Err(Error::SocketInHostPath { .. })
        ));
    }

    #[test]
    fn host_path_order_does_not_matter() {
        let a = PathBuf::from("/usr/lib/os-release");
        let b = PathBuf::from("/etc/hostname");
        let forward = fingerprint_host_paths(&[a.clone(), b.clone()]).expect("fingerprint");
        assert_eq!(
            forward,
            fingerprint_host_paths(&[b, a]).expect("fingerprint")
        );
    }

    #[test]
    fn missing_host_path_and_tool_are_named() {
        match fingerprint_host_paths(&[PathBuf::from("/nonexistent/opt/hpcc")]) {
            Err(Error::MissingHostPath { path, .. }) => {
                assert_eq!(path, Path::new("/nonexistent/opt/hpcc"));
            }
            other => panic!("expected MissingHostPath, got {other:?}"),
        }
        match fingerprint_host_tools(&[HostTool::new("hstore-no-such-nvcc", ["--version"])]) {
            Err(Error::MissingHostTool { program, .. }) => {
                assert_eq!(program, "hstore-no-such-nvcc");
            }
            other => panic!("expected MissingHostTool, got {other:?}"),
        }
    }

    #[test]
    fn host_tool_output_is_fingerprinted() {
        let echo = |text: &str| {
            fingerprint_host_tools(&[HostTool::new("echo", [text])]).expect("echo runs")
        };
        assert_eq!(echo("release 12.4"), echo("release 12.4"));
        assert_ne!(echo("release 12.4"), echo("release 12.5"));
        match fingerprint_host_tools(&[HostTool::new("false", Vec::<String>::new())]) {
            Err(Error::HostToolFailed { program, .. }) => assert_eq!(program, "false"),
            other => panic!("expected HostToolFailed, got {other:?}"),
        }
    }
}
