//! [`assemble_base`]: a set of pinned Debian binary packages unpacked into ONE deterministic tree (a "base") that the
//! store then hashes, with what the skipped maintainer scripts would have done for a build, in this order:
//!
//! 1. **Merged /usr.** Before anything is unpacked, the links `bin -> usr/bin`, `sbin -> usr/sbin`,
//!    `lib -> usr/lib` (plus `lib64 -> usr/lib64` on amd64, and `lib32`/`libx32` there when a multilib package is
//!    in the set, as debootstrap's `merge_usr` makes them) are made when [`MergedUsr`] says so (by default: the set
//!    holds `usr-is-merged`/`usrmerge`, or a base-files of trixie or later, whose packages ship merged paths). Every
//!    entry under them (`./bin/bash`) is written through them (`usr/bin/bash`), as `tar --keep-directory-symlink`
//!    does; no link a package shipped is ever passed through (see [`Merge`]).
//! 2. **The packages**, in byte order of their names (whatever the input order), each `.deb`'s control checked
//!    against its label. Directories repeat freely; a file or symlink shipped by two packages is an error naming
//!    both. Hardlinks become copies, setuid/setgid/sticky bits are dropped, nothing is chowned, device nodes and
//!    FIFOs are refused (bookworm's packages ship none: makedev's postinst makes them; a sandbox binds /dev anyway),
//!    and absolute symlink targets are rewritten relative to the link's directory so the tree is relocatable and
//!    the store's link rule holds (`usr/bin/ld.so -> /lib64/ld-linux-x86-64.so.2` becomes
//!    `../lib64/ld-linux-x86-64.so.2`).
//! 3. **Alternatives** ([`ALTERNATIVES`]): for each, the highest-priority candidate present in the tree is chosen, as
//!    `update-alternatives --auto` would, and linked `link -> /etc/alternatives/NAME -> candidate` (both made
//!    relative), with the candidate's slave links whose targets exist. A link path a package already ships is left
//!    alone.
//! 4. **A minimal /etc**, each file only if no package shipped it: `passwd`/`group` copied from base-passwd's
//!    `passwd.master`/`group.master` (what `update-passwd` does on a fresh system), else a fixed root/nobody pair;
//!    `nsswitch.conf` from libc-bin's `/usr/share/libc-bin/nsswitch.conf` (what its postinst installs), else the same
//!    text built in; `hosts` and `hostname` (`localhost`); and, when `ca-certificates` is in the set, what
//!    `update-ca-certificates` makes: `ca-certificates.conf` listing every `usr/share/ca-certificates/**/*.crt` in
//!    byte order, the bundle `ssl/certs/ca-certificates.crt` (each certificate, newline-terminated, in that order),
//!    and the `ssl/certs/NAME.pem` links — but not the `HASH.0` links of `openssl rehash` (OpenSSL finds
//!    certificates through the bundle). `ld.so.cache` is not made (a build runs ~2 % slower without it);
//!    `/etc/ld.so.conf.d/*.conf` ship in libc6 and libc-bin.
//!
//! The result depends only on the set of `.deb` files: not on the input order, the host, the umask or the clock
//! (the store ignores times; modes are `0644`/`0755`). On error, `dest` holds a partial tree; callers assemble into
//! a temporary directory and discard it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hstore_store::Hint;

use crate::archive::{self, MaxUnpackedSize, Merge, MergedKind, Redirect};
use crate::debian::deb::{self, Control};

/// A package as the lockfile pins it: what errors and conflicts name, and what its `.deb`'s control must say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageLabel {
    /// The package name (`libc6`).
    pub name: String,
    /// Its version (`2.36-9+deb12u14`).
    pub version: String,
}

impl PackageLabel {
    /// A label for package `name` at `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PackageLabel {
            name: name.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for PackageLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Whether [`assemble_base`] makes the merged-/usr links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MergedUsr {
    /// When the set holds `usr-is-merged` or `usrmerge`, or `base-files` 13 or later (trixie on, where packages
    /// ship merged paths).
    #[default]
    Auto,
    /// Always.
    Yes,
    /// Never (releases before bookworm).
    No,
}

/// How [`assemble_base`] works.
#[derive(Debug, Clone, Default)]
pub struct BaseOptions {
    /// Whether to merge /usr.
    pub merged_usr: MergedUsr,
    /// The cap on what one `.deb`'s data member may unpack to, applied to the `.deb`'s size.
    pub max_unpacked_size: MaxUnpackedSize,
}

/// One alternative the maintainer scripts would have set up: `link -> /etc/alternatives/name -> candidate`.
#[derive(Debug, Clone, Copy)]
pub struct Alternative {
    /// Its name (`cc`).
    pub name: &'static str,
    /// The generic path (`/usr/bin/cc`).
    pub link: &'static str,
    /// The candidates, each with its priority.
    pub candidates: &'static [Candidate],
}

/// One candidate of an [`Alternative`], as a package's postinst registers it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The path it points to (`/usr/bin/gcc`).
    pub path: &'static str,
    /// Its priority; the highest present wins.
    pub priority: u32,
    /// Slave links that follow it: `(link, name, path)`.
    pub slaves: &'static [(&'static str, &'static str, &'static str)],
}

const fn candidate(path: &'static str, priority: u32) -> Candidate {
    Candidate {
        path,
        priority,
        slaves: &[],
    }
}

/// The alternatives a build needs, from the `update-alternatives --install` lines of bookworm's postinst scripts:
/// gcc (cc, c89, c99), g++ (c++), cpp (`/lib/cpp`), mawk and gawk (awk, with nawk), debianutils (which), less and
/// util-linux (pager), xz-utils (lzma, with its lz* tools), tar (rmt). Only links to programs are made; the manual
/// page slaves are left out.
pub const ALTERNATIVES: &[Alternative] = &[
    Alternative {
        name: "awk",
        link: "/usr/bin/awk",
        candidates: &[
            Candidate {
                path: "/usr/bin/gawk",
                priority: 10,
                slaves: &[("/usr/bin/nawk", "nawk", "/usr/bin/gawk")],
            },
            Candidate {
                path: "/usr/bin/mawk",
                priority: 5,
                slaves: &[("/usr/bin/nawk", "nawk", "/usr/bin/mawk")],
            },
        ],
    },
    Alternative {
        name: "c++",
        link: "/usr/bin/c++",
        candidates: &[candidate("/usr/bin/g++", 20)],
    },
    Alternative {
        name: "c89",
        link: "/usr/bin/c89",
        candidates: &[candidate("/usr/bin/c89-gcc", 20)],
    },
    Alternative {
        name: "c99",
        link: "/usr/bin/c99",
        candidates: &[candidate("/usr/bin/c99-gcc", 20)],
    },
    Alternative {
        name: "cc",
        link: "/usr/bin/cc",
        candidates: &[candidate("/usr/bin/gcc", 20)],
    },
    Alternative {
        name: "cpp",
        link: "/lib/cpp",
        candidates: &[candidate("/usr/bin/cpp", 10)],
    },
    Alternative {
        name: "lzma",
        link: "/usr/bin/lzma",
        candidates: &[Candidate {
            path: "/usr/bin/xz",
            priority: 20,
            slaves: &[
                ("/usr/bin/unlzma", "unlzma", "/usr/bin/unxz"),
                ("/usr/bin/lzcat", "lzcat", "/usr/bin/xzcat"),
                ("/usr/bin/lzmore", "lzmore", "/usr/bin/xzmore"),
                ("/usr/bin/lzless", "lzless", "/usr/bin/xzless"),
                ("/usr/bin/lzdiff", "lzdiff", "/usr/bin/xzdiff"),
                ("/usr/bin/lzcmp", "lzcmp", "/usr/bin/xzcmp"),
                ("/usr/bin/lzgrep", "lzgrep", "/usr/bin/xzgrep"),
                ("/usr/bin/lzegrep", "lzegrep", "/usr/bin/xzegrep"),
                ("/usr/bin/lzfgrep", "lzfgrep", "/usr/bin/xzfgrep"),
            ],
        }],
    },
    Alternative {
        name: "pager",
        link: "/usr/bin/pager",
        candidates: &[candidate("/usr/bin/less", 77), candidate("/bin/more", 50)],
    },
    Alternative {
        name: "rmt",
        link: "/usr/sbin/rmt",
        candidates: &[candidate("/usr/sbin/rmt-tar", 50)],
    },
    Alternative {
        name: "which",
        link: "/usr/bin/which",
        candidates: &[candidate("/usr/bin/which.debianutils", 0)],
    },
];

/// `nsswitch.conf` as libc-bin 2.36 ships it in `/usr/share/libc-bin/nsswitch.conf`, for a set without libc-bin.
const DEFAULT_NSSWITCH: &str = "\
# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the `glibc-doc-reference' and `info' packages installed, try:
# `info libc \"Name Service Switch\"' for information about this file.

passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
";

/// `passwd` and `group` for a set without base-passwd.
const DEFAULT_PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const DEFAULT_GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// What `hosts` and `hostname` say.
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";
const HOSTNAME: &str = "localhost\n";

/// The most a template (`passwd.master`, a certificate) read from the tree may hold.
const MAX_TEMPLATE: u64 = 1 << 20;

/// What [`assemble_base`] made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseReport {
    /// The packages unpacked, in the order they were.
    pub packages: Vec<PackageLabel>,
    /// Whether /usr was merged.
    pub merged_usr: bool,
    /// Regular files written (hardlink copies and generated files included).
    pub files: u64,
    /// Directories created.
    pub directories: u64,
    /// Symlinks in the tree (packages', alternatives', certificates' and the merged-/usr links).
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Links hstore made: merged /usr, alternatives (with `/etc/alternatives` and slaves), certificate `.pem` links.
    pub links_made: u64,
    /// The alternatives set up, as `(name, chosen path)`, by name.
    pub alternatives: Vec<(String, String)>,
    /// Files hstore generated in /etc.
    pub generated_files: Vec<String>,
    /// Conffiles the packages declare (kept as shipped: no prior configuration exists to preserve).
    pub conffiles: u64,
    /// Hardlinks materialized as copies.
    pub hardlinks_copied: u64,
    /// Absolute symlink targets rewritten as relative ones.
    pub absolute_symlinks_rewritten: u64,
    /// Entries whose setuid, setgid or sticky bit was dropped.
    pub special_bits_stripped: u64,
    /// What was skipped.
    pub skipped: Skipped,
}

/// What [`assemble_base`] left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Alternatives with no candidate in the tree.
    pub alternatives_without_candidate: u64,
    /// Alternative (or slave) links a package already ships, or slaves whose target is missing.
    pub alternative_links: u64,
    /// Generated /etc files a package already ships.
    pub generated_files: u64,
}

/// Everything that can go wrong assembling a base.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.deb` could not be read or unpacked.
    #[error(transparent)]
    Deb(#[from] deb::Error),
    /// Two `.deb` files are the same package.
    #[error("package `{name}` is in the set twice: `{}` and `{}`", first.display(), second.display())]
    DuplicatePackage {
        /// The package name.
        name: String,
        /// One `.deb`.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A `.deb`'s control does not say what its label does.
    #[error("`{}` was expected to be package `{expected}`, but its control says `{found}`", deb.display())]
    WrongPackage {
        /// The `.deb`.
        deb: PathBuf,
        /// The label it was given.
        expected: PackageLabel,
        /// What its control says.
        found: PackageLabel,
    },
    /// The tree could not be started, or a generated file or link could not be added.
    #[error("failed to {what} in the base tree")]
    Generate {
        /// What hstore was doing (`write /etc/passwd`).
        what: String,
        /// Why (boxed: an archive error is large).
        #[source]
        source: Box<archive::Error>,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Deb(error) => error.hint(),
            Error::DuplicatePackage { .. } => {
                Some("a base holds one version of each package; drop one of them from the set".into())
            }
            Error::WrongPackage { .. } => Some(
                "the lockfile and the file disagree; re-run `hstore lock`, or check where the .deb came from".into(),
            ),
            Error::Generate { source, .. } => source.hint(),
        }
    }
}

/// Unpacks the `.deb` files of `packages` (each with its label) into `dest`, which MUST be an empty directory or not
/// exist yet, as the [module docs](self) describe; the order of `packages` does not matter.
#[tracing::instrument(skip_all, fields(packages = packages.len(), dest = %dest.display()))]
pub fn assemble_base(
    packages: &[(PackageLabel, &Path)],
    dest: &Path,
    options: &BaseOptions,
) -> Result<BaseReport, Error> {
    // Pass 1: the controls (a few KiB each), checked against the labels, in name order.
    let mut by_name: BTreeMap<&str, (&PackageLabel, &Path, Control)> = BTreeMap::new();
    for (label, deb) in packages {
        if let Some((_, first, _)) = by_name.get(label.name.as_str()) {
            let (first, second) = if *first <= *deb {
                (*first, *deb)
            } else {
                (*deb, *first)
            };
            return Err(Error::DuplicatePackage {
                name: label.name.clone(),
                first: first.to_owned(),
                second: second.to_owned(),
            });
        }
        let control = deb::read_control(deb)?;
        if control.package != label.name || control.version != label.version {
            return Err(Error::WrongPackage {
                deb: deb.to_path_buf(),
                expected: label.clone(),
                found: PackageLabel::new(control.package, control.version),
            });
        }
        by_name.insert(&label.name, (label, deb, control));
    }

    let merged_usr = match options.merged_usr {
        MergedUsr::Yes => true,
        MergedUsr::No => false,
        MergedUsr::Auto => by_name.iter().any(|(name, (_, _, control))| {
            matches!(*name, "usr-is-merged" | "usrmerge")
                || (*name == "base-files" && leading_number(&control.version) >= 13)
        }),
    };
    let redirects = if merged_usr {
        merged_usr_redirects(&by_name)
    } else {
        Vec::new()
    };
    let mut merge = Merge::new(dest, redirects).map_err(|source| Error::Generate {
        what: "start".into(),
        source: Box::new(source),
    })?;

    // Pass 2: the data members.
    let mut report = BaseReport {
        merged_usr,
        ..BaseReport::default()
    };
    for (label, deb, control) in by_name.values() {
        deb::unpack_data(
            deb,
            &label.to_string(),
            &mut merge,
            options.max_unpacked_size,
        )?;
        report.packages.push((*label).clone());
        report.conffiles += control.conffiles.len() as u64;
    }

    let mut generated = Generated {
        merge: &mut merge,
        report: &mut report,
    };
    generated.alternatives()?;
    let installed = |name: &str| by_name.contains_key(name);
    generated.etc(installed("ca-certificates"))?;

    let merged = merge.report();
    report.files = merged.files;
    report.directories = merged.directories;
    report.symlinks = merged.symlinks + merged.redirects;
    report.bytes = merged.bytes;
    report.links_made += merged.redirects;
    report.hardlinks_copied = merged.hardlinks_copied;
    report.absolute_symlinks_rewritten = merged.absolute_symlinks_rewritten;
    report.special_bits_stripped = merged.special_bits_stripped;
    tracing::debug!(?report, "assembled a Debian base");
    Ok(report)
}

/// The leading decimal number of a version (`13` of `13.8`, `0` if none).
fn leading_number(version: &str) -> u64 {
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// debootstrap's `merge_usr` links for the set's architecture: `bin`, `sbin`, `lib`, and on amd64 `lib64` (which
/// holds the dynamic loader every program names), plus `lib32`/`libx32` when a multilib package needs them.
fn merged_usr_redirects(
    by_name: &BTreeMap<&str, (&PackageLabel, &Path, Control)>,
) -> Vec<Redirect> {
    let amd64 = by_name
        .values()
        .any(|(_, _, control)| control.architecture == "amd64");
    let multilib = |prefix: &str| by_name.keys().any(|name| name.starts_with(prefix));
    let mut names = vec!["bin", "sbin", "lib"];
    if amd64 {
        if multilib("lib32") || multilib("libc6-i386") {
            names.push("lib32");
        }
        names.push("lib64");
        if multilib("libx32") || multilib("libc6-x32") {
            names.push("libx32");
        }
    }
    names
        .into_iter()
        .map(|name| {
            Redirect::new(name, &format!("usr/{name}")).expect("the merged-/usr names are valid")
        })
        .collect()
}

/// The steps after unpacking: alternatives and /etc.
struct Generated<'a> {
    merge: &'a mut Merge,
    report: &'a mut BaseReport,
}

impl Generated<'_> {
    fn symlink(&mut self, link: &str, target: &str) -> Result<(), Error> {
        self.merge
            .add_symlink(link, target)
            .map_err(|source| Error::Generate {
                what: format!("link `{link}` to `{target}`"),
                source: Box::new(source),
            })?;
        self.report.links_made += 1;
        Ok(())
    }

    /// Writes `path` unless a package shipped it.
    fn file(&mut self, path: &str, content: &[u8]) -> Result<(), Error> {
        if self.merge.entry(path).is_some() {
            self.report.skipped.generated_files += 1;
            return Ok(());
        }
        self.merge
            .add_file(path, content, false)
            .map_err(|source| Error::Generate {
                what: format!("write `{path}`"),
                source: Box::new(source),
            })?;
        self.report.generated_files.push(path.to_owned());
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        self.merge
            .read_file(path, MAX_TEMPLATE)
            .map_err(|source| Error::Generate {
                what: format!("read `{path}`"),
                source: Box::new(source),
            })
    }

    fn alternatives(&mut self) -> Result<(), Error> {
        for alternative in ALTERNATIVES {
            // The first of the highest priority, as `update-alternatives --auto` picks.
            let mut chosen: Option<&Candidate> = None;
            for candidate in alternative.candidates {
                if self.merge.entry(candidate.path).is_some()
                    && chosen.is_none_or(|chosen| candidate.priority > chosen.priority)
                {
                    chosen = Some(candidate);
                }
            }
            let Some(chosen) = chosen else {
                self.report.skipped.alternatives_without_candidate += 1;
                continue;
            };
            let master = (alternative.link, alternative.name, chosen.path);
            for (index, &(link, name, path)) in
                std::iter::once(&master).chain(chosen.slaves).enumerate()
            {
                let slave = index > 0;
                if self.merge.entry(link).is_some() || (slave && self.merge.entry(path).is_none()) {
                    self.report.skipped.alternative_links += 1;
                    continue;
                }
                let managed = format!("/etc/alternatives/{name}");
                self.symlink(&managed, path)?;
                self.symlink(link, &managed)?;
            }
            self.report
                .alternatives
                .push((alternative.name.to_owned(), chosen.path.to_owned()));
        }
        Ok(())
    }

    fn etc(&mut self, ca_certificates: bool) -> Result<(), Error> {
        let passwd = self.read("/usr/share/base-passwd/passwd.master")?;
        let group = self.read("/usr/share/base-passwd/group.master")?;
        self.file(
            "/etc/passwd",
            passwd.as_deref().unwrap_or(DEFAULT_PASSWD.as_bytes()),
        )?;
        self.file(
            "/etc/group",
            group.as_deref().unwrap_or(DEFAULT_GROUP.as_bytes()),
        )?;
        let nsswitch = self.read("/usr/share/libc-bin/nsswitch.conf")?;
        self.file(
            "/etc/nsswitch.conf",
            nsswitch.as_deref().unwrap_or(DEFAULT_NSSWITCH.as_bytes()),
        )?;
        self.file("/etc/hosts", HOSTS.as_bytes())?;
        self.file("/etc/hostname", HOSTNAME.as_bytes())?;
        if ca_certificates {
            self.ca_certificates()?;
        }
        Ok(())
    }

    /// What `update-ca-certificates` does on a fresh system, but the `openssl rehash` links.
    fn ca_certificates(&mut self) -> Result<(), Error> {
        const CERTS: &str = "usr/share/ca-certificates/";
        let certificates: Vec<String> = self
            .merge
            .files_under(CERTS)
            .into_iter()
            .filter(|entry| {
                #[expect(
                    clippy::case_sensitive_file_extension_comparisons,
                    reason = "update-ca-certificates finds `-name '*.crt'`, case-sensitively"
                )]
                let certificate = entry.path.ends_with(".crt");
                matches!(entry.kind, MergedKind::File { .. }) && certificate
            })
            .map(|entry| entry.path)
            .collect();
        let mut bundle = Vec::new();
        let mut conf = String::new();
        for path in &certificates {
            let relative = path.strip_prefix(CERTS).unwrap_or(path);
            conf.push_str(relative);
            conf.push('\n');
            if let Some(content) = self.read(path)? {
                bundle.extend_from_slice(&content);
                if !content.is_empty() && !content.ends_with(b"\n") {
                    bundle.push(b'\n');
                }
            }
        }
        self.file("/etc/ca-certificates.conf", conf.as_bytes())?;
        self.file("/etc/ssl/certs/ca-certificates.crt", &bundle)?;
        for path in &certificates {
            let Some(stem) = path
                .rsplit('/')
                .next()
                .and_then(|name| name.strip_suffix(".crt"))
            else {
                continue;
            };
            // update-ca-certificates' `sed -e 's/ /_/g' -e 's/[()]/=/g' -e 's/,/_/g'`.
            let pem: String = stem
                .chars()
                .map(|c| match c {
                    ' ' | ',' => '_',
                    '(' | ')' => '=',
                    c => c,
                })
                .collect();
            let link = format!("/etc/ssl/certs/{pem}.pem");
            if self.merge.entry(&link).is_some() {
                continue;
            }
            self.symlink(&link, &format!("/{path}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::*;
    use crate::archive::Refusal;

    /// One path of a test package.
    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8], u32),
        Symlink(&'a str, &'a str),
        /// A hardlink to an earlier file of the same package.
        Hardlink(&'a str, &'a str),
    }

    /// A scratch directory holding test packages and the tree.
    struct Scratch {
        root: tempfile::TempDir,
    }

    impl Scratch {
        fn new() -> Self {
            Scratch {
                root: tempfile::tempdir().expect("tempdir"),
            }
        }

        fn dest(&self) -> PathBuf {
            self.root.path().join("base")
        }

        /// A real `.deb` built by `dpkg-deb --build`, its data member compressed with `compression`.
        fn deb(
            &self,
            name: &str,
            items: &[Item<'_>],
            compression: &str,
        ) -> (PackageLabel, PathBuf) {
            let root = self.root.path().join(format!("{name}-root"));
            let debian = root.join("DEBIAN");
            fs::create_dir_all(&debian).expect("DEBIAN");
            fs::write(
                debian.join("control"),
                format!(
                    "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Test <test@example.test>\n\
                     Description: a test package\n"
                ),
            )
            .expect("control");
            for item in items {
                match *item {
                    Item::Dir(path) => fs::create_dir_all(root.join(path)).expect("dir"),
                    Item::File(path, content, mode) => {
                        let path = root.join(path);
                        fs::create_dir_all(path.parent().expect("parent")).expect("parent");
                        fs::write(&path, content).expect("file");
                        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("mode");
                    }
                    Item::Symlink(path, target) => {
                        let path = root.join(path);
                        fs::create_dir_all(path.parent().expect("parent")).expect("parent");
                        std::os::unix::fs::symlink(target, path).expect("symlink");
                    }
                    Item::Hardlink(path, target) => {
                        fs::hard_link(root.join(target), root.join(path)).expect("hardlink");
                    }
                }
            }
            set_directory_modes(&root);
            let deb = self.root.path().join(format!("{name}_1.0-1_amd64.deb"));
            let output = Command::new("dpkg-deb")
                .arg("--root-owner-group")
                .arg(format!("-Z{compression}"))
                .arg("--build")
                .arg(&root)
                .arg(&deb)
                .output()
                .expect("dpkg-deb must be installed (apt-get install dpkg)");
            assert!(
                output.status.success(),
                "dpkg-deb failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            (PackageLabel::new(name, "1.0-1"), deb)
        }

        /// A `.deb` assembled by hand: `debian_binary`, a `control.tar.gz`, and `data` as `data.tar`.
        fn crafted(
            &self,
            name: &str,
            debian_binary: &[u8],
            data: &[u8],
        ) -> (PackageLabel, PathBuf) {
            let control = format!("Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n");
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(control.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, "./control", control.as_bytes())
                .expect("control");
            let control_tar = builder.into_inner().expect("control tar");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&control_tar).expect("gzip");
            let control_tar_gz = gz.finish().expect("gzip");

            let deb = self.root.path().join(format!("{name}_1.0-1_amd64.deb"));
            let mut ar = ar::Builder::new(fs::File::create(&deb).expect("create deb"));
            for (member, content) in [
                ("debian-binary", debian_binary),
                ("control.tar.gz", &control_tar_gz),
                ("data.tar", data),
            ] {
                let header = ar::Header::new(member.as_bytes().to_vec(), content.len() as u64);
                ar.append(&header, content).expect("ar member");
            }
            (PackageLabel::new(name, "1.0-1"), deb)
        }

        fn assemble(&self, packages: &[(PackageLabel, PathBuf)]) -> Result<BaseReport, Error> {
            let packages: Vec<_> = packages
                .iter()
                .map(|(label, deb)| (label.clone(), deb.as_path()))
                .collect();
            assemble_base(&packages, &self.dest(), &BaseOptions::default())
        }
    }

    /// dpkg-deb refuses group- or world-writable control directories, which a umask of 002 makes.
    fn set_directory_modes(dir: &Path) {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("mode");
        for entry in fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                set_directory_modes(&entry.path());
            }
        }
    }

    /// A data tar written entry by entry with raw headers, so nothing checks the paths.
    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for &(name, entry_type, link, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(entry_type);
            header.set_size(data.len() as u64);
            header.set_mode(if entry_type == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            header.set_cksum();
            builder.append(&header, data).expect("append");
        }
        builder.into_inner().expect("tar")
    }

    /// The package and refusal of an error that refused an entry of a package.
    fn refusal(error: &Error) -> Option<(&str, &Refusal)> {
        match error {
            Error::Deb(deb::Error::Unpack {
                package, source, ..
            }) => match &**source {
                archive::Error::Refused { reason, .. } => Some((package, reason)),
                _ => None,
            },
            _ => None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path)
            .expect("lstat")
            .permissions()
            .mode()
            & 0o7777
    }

    fn link(path: &Path) -> String {
        fs::read_link(path)
            .expect("readlink")
            .to_string_lossy()
            .into_owned()
    }

    /// Every path of a tree with its kind, mode, and content or target, in order: what the store's address sees
    /// (and more: all mode bits).
    fn signature(root: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = entry.expect("walk");
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string();
            let metadata = fs::symlink_metadata(path).expect("lstat");
            let what = if metadata.is_symlink() {
                format!("-> {}", link(path))
            } else if metadata.is_file() {
                format!("{:?}", fs::read(path).expect("read"))
            } else {
                "dir".into()
            };
            lines.push(format!("{relative} {:o} {what}", mode(path)));
        }
        lines
    }

    fn usr_is_merged(scratch: &Scratch) -> (PackageLabel, PathBuf) {
        scratch.deb(
            "usr-is-merged",
            &[Item::File(
                "usr/share/doc/usr-is-merged/copyright",
                b"c\n",
                0o644,
            )],
            "xz",
        )
    }

    #[test]
    fn merged_usr_entries_go_through_hstores_links() {
        let scratch = Scratch::new();
        let packages = [
            usr_is_merged(&scratch),
            scratch.deb(
                "tool",
                &[
                    Item::File("bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
                    Item::File("lib/x86_64-linux-gnu/libtool.so.1", b"elf", 0o644),
                    Item::File("sbin/tool-admin", b"admin", 0o755),
                    Item::Symlink("lib64/ld-tool.so", "/lib/x86_64-linux-gnu/libtool.so.1"),
                ],
                "xz",
            ),
        ];
        let report = scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        assert!(report.merged_usr);
        for (link_path, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            assert_eq!(link(&dest.join(link_path)), target);
        }
        assert!(!dest.join("lib32").exists());
        assert!(
            fs::symlink_metadata(dest.join("usr/bin/tool"))
                .expect("usr/bin/tool")
                .is_file()
        );
        assert_eq!(mode(&dest.join("usr/bin/tool")), 0o755);
        assert_eq!(
            fs::read(dest.join("bin/tool")).expect("through bin"),
            b"#!/bin/sh\necho tool\n"
        );
        assert!(dest.join("usr/sbin/tool-admin").is_file());
        assert_eq!(
            link(&dest.join("usr/lib64/ld-tool.so")),
            "../lib/x86_64-linux-gnu/libtool.so.1"
        );
        assert_eq!(
            fs::read(dest.join("lib64/ld-tool.so")).expect("through lib64"),
            b"elf"
        );
        assert_eq!(report.packages.len(), 2);
        assert_eq!(report.links_made, 4);
    }

    #[test]
    fn without_usr_is_merged_nothing_is_redirected() {
        let scratch = Scratch::new();
        let packages = [scratch.deb("tool", &[Item::File("bin/tool", b"tool", 0o755)], "xz")];
        let report = scratch.assemble(&packages).expect("assemble");
        assert!(!report.merged_usr);
        let dest = scratch.dest();
        assert!(
            fs::symlink_metadata(dest.join("bin"))
                .expect("bin")
                .is_dir()
        );
        assert!(!dest.join("usr/bin/tool").exists());
    }

    #[test]
    fn hardlinks_become_copies() {
        let scratch = Scratch::new();
        let packages = [
            usr_is_merged(&scratch),
            scratch.deb(
                "perl-ish",
                &[
                    Item::File("usr/bin/perl", b"interpreter", 0o755),
                    Item::Hardlink("usr/bin/perl5.36.0", "usr/bin/perl"),
                    Item::File("bin/gunzip", b"gunzip", 0o755),
                    Item::Hardlink("bin/uncompress", "bin/gunzip"),
                ],
                "xz",
            ),
        ];
        let report = scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        for (copy, content) in [
            ("usr/bin/perl5.36.0", &b"interpreter"[..]),
            ("usr/bin/uncompress", b"gunzip"),
        ] {
            let path = dest.join(copy);
            assert_eq!(fs::read(&path).expect("copy"), content);
            assert_eq!(mode(&path), 0o755);
            assert_eq!(
                std::os::unix::fs::MetadataExt::nlink(&fs::metadata(&path).expect("stat")),
                1,
                "{copy} is a copy, not a hardlink"
            );
        }
        assert_eq!(report.hardlinks_copied, 2);
    }

    #[test]
    fn setuid_setgid_and_sticky_bits_are_stripped() {
        let scratch = Scratch::new();
        let packages = [scratch.deb(
            "login-ish",
            &[
                Item::File("usr/bin/su", b"su", 0o4755),
                Item::File("usr/sbin/chkpwd", b"chk", 0o2755),
                Item::Dir("var/tmp"),
            ],
            "xz",
        )];
        let root = scratch.root.path().join("login-ish-root");
        // dpkg-deb keeps the modes it finds; set them after the tree is made (a umask may have dropped them).
        let (label, deb) = {
            fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777))
                .expect("sticky");
            let deb = scratch.root.path().join("login-ish-2.deb");
            let status = Command::new("dpkg-deb")
                .args(["--root-owner-group", "--build"])
                .arg(&root)
                .arg(&deb)
                .output()
                .expect("dpkg-deb");
            assert!(status.status.success());
            (packages[0].0.clone(), deb)
        };
        let report = scratch.assemble(&[(label, deb)]).expect("assemble");
        let dest = scratch.dest();
        assert_eq!(mode(&dest.join("usr/bin/su")), 0o755);
        assert_eq!(mode(&dest.join("usr/sbin/chkpwd")), 0o755);
        assert_eq!(mode(&dest.join("var/tmp")), 0o755);
        assert_eq!(report.special_bits_stripped, 3);
    }

    #[test]
    fn absolute_symlinks_are_made_relative_to_the_tree() {
        let scratch = Scratch::new();
        let packages = [
            usr_is_merged(&scratch),
            scratch.deb(
                "links",
                &[
                    Item::File("etc/tool.conf", b"conf", 0o644),
                    Item::File("bin/tool", b"tool", 0o755),
                    Item::Symlink("usr/bin/alias", "/bin/tool"),
                    Item::Symlink("usr/share/tool/tool.conf", "/etc/tool.conf"),
                    Item::Symlink("usr/share/tool/root", "/"),
                    Item::Symlink(
                        "usr/lib/x86_64-linux-gnu/libz.so",
                        "/lib/x86_64-linux-gnu/libz.so.1",
                    ),
                    Item::File("lib/x86_64-linux-gnu/libz.so.1", b"z", 0o644),
                ],
                "xz",
            ),
        ];
        let report = scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        assert_eq!(link(&dest.join("usr/bin/alias")), "tool");
        assert_eq!(
            link(&dest.join("usr/share/tool/tool.conf")),
            "../../../etc/tool.conf"
        );
        assert_eq!(link(&dest.join("usr/share/tool/root")), "../../..");
        assert_eq!(
            link(&dest.join("usr/lib/x86_64-linux-gnu/libz.so")),
            "libz.so.1"
        );
        assert_eq!(
            fs::read(dest.join("usr/share/tool/tool.conf")).expect("conf"),
            b"conf"
        );
        assert_eq!(report.absolute_symlinks_rewritten, 4);
    }

    #[test]
    fn a_file_in_two_packages_is_an_error_naming_both() {
        let scratch = Scratch::new();
        let packages = [
            scratch.deb("first", &[Item::File("usr/bin/same", b"1", 0o755)], "xz"),
            scratch.deb("second", &[Item::File("usr/bin/same", b"2", 0o755)], "xz"),
        ];
        // Whatever the input order, `first` is unpacked first (names in byte order).
        for order in [[0, 1], [1, 0]] {
            let scratch_dest = Scratch::new();
            let packages: Vec<_> = order
                .iter()
                .map(|&index| (packages[index].0.clone(), packages[index].1.as_path()))
                .collect();
            let error = assemble_base(&packages, &scratch_dest.dest(), &BaseOptions::default())
                .expect_err("conflict");
            let message = format!(
                "{error}: {}",
                std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
            assert!(message.contains("second 1.0-1"), "{message}");
            assert!(message.contains("`first 1.0-1`"), "{message}");
            assert!(message.contains("usr/bin/same"), "{message}");
            let Some((_, Refusal::Conflict { path, other })) = refusal(&error) else {
                panic!("{error:?}");
            };
            assert_eq!(path, "usr/bin/same");
            assert_eq!(other, "`first 1.0-1`");
            assert!(error.hint().expect("hint").contains("drop one"));
        }
        // A symlink counts too; directories may repeat.
        let scratch = Scratch::new();
        let packages = [
            scratch.deb(
                "a",
                &[Item::Dir("usr/share/doc"), Item::Symlink("usr/lib/l", "x")],
                "xz",
            ),
            scratch.deb(
                "b",
                &[Item::Dir("usr/share/doc"), Item::Symlink("usr/lib/l", "y")],
                "xz",
            ),
        ];
        let error = scratch.assemble(&packages).expect_err("symlink conflict");
        assert!(
            matches!(refusal(&error), Some((package, Refusal::Conflict { other, .. })) if package == "b 1.0-1" && other == "`a 1.0-1`"),
            "{error:?}"
        );
    }

    #[test]
    fn escapes_are_refused() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, tar::EntryType, &'a str, &'a [u8])],
            fn(&Refusal) -> bool,
        );
        let cases: &[Case<'_>] = &[
            ("dotdot", &[("./../evil", Regular, "", b"x")], |reason| {
                *reason == Refusal::ParentComponent
            }),
            ("absolute", &[("/evil", Regular, "", b"x")], |reason| {
                *reason == Refusal::AbsolutePath
            }),
            // A package's own link is never written through, even one that stays inside.
            (
                "symlink-then-write",
                &[
                    ("./usr/", Directory, "", b""),
                    ("./usr/share", Symlink, "/etc", b""),
                    ("./usr/share/passwd", Regular, "", b"pwned"),
                ],
                |reason| matches!(reason, Refusal::ThroughNonDirectory { parent } if parent == "usr/share"),
            ),
            (
                "climbing-symlink",
                &[("./usr/up", Symlink, "../../..", b"")],
                |reason| matches!(reason, Refusal::Symlink(_)),
            ),
            (
                "hardlink-out",
                &[("./usr/x", Link, "../../../etc/passwd", b"")],
                |reason| matches!(reason, Refusal::Hardlink { .. }),
            ),
            (
                "hardlink-absolute",
                &[("./usr/x", Link, "/etc/passwd", b"")],
                |reason| matches!(reason, Refusal::Hardlink { .. }),
            ),
            // The merged-/usr link is hstore's: a package may not turn it into something else.
            (
                "replace-bin",
                &[("./bin", Symlink, "/tmp", b"")],
                |reason| matches!(reason, Refusal::Conflict { path, .. } if path == "bin"),
            ),
            (
                "fifo",
                &[("./usr/fifo", tar::EntryType::Fifo, "", b"")],
                |reason| matches!(reason, Refusal::SpecialFile { .. }),
            ),
        ];
        for (name, entries, expected) in cases {
            let scratch = Scratch::new();
            let outside = scratch.root.path().join("outside-marker");
            fs::write(&outside, b"keep").expect("marker");
            let packages = [
                usr_is_merged(&scratch),
                scratch.crafted(name, b"2.0\n", &raw_tar(entries)),
            ];
            let error = scratch.assemble(&packages).expect_err(name);
            let Some((_, reason)) = refusal(&error) else {
                panic!("{name}: {error:?}");
            };
            assert!(expected(reason), "{name}: {reason:?}");
            assert!(error.hint().is_some(), "{name}");
            assert_eq!(fs::read(&outside).expect("marker"), b"keep");
            assert!(!scratch.root.path().join("evil").exists(), "{name}");
            assert!(!scratch.dest().join("etc/passwd").exists(), "{name}");
        }
        // A hardlink to another package's file is refused as well.
        let scratch = Scratch::new();
        let packages = [
            scratch.deb(
                "a-first",
                &[Item::File("usr/bin/real", b"real", 0o755)],
                "xz",
            ),
            scratch.crafted(
                "b-second",
                b"2.0\n",
                &raw_tar(&[("./usr/bin/copy", Link, "./usr/bin/real", b"")]),
            ),
        ];
        let error = scratch
            .assemble(&packages)
            .expect_err("cross-package hardlink");
        assert!(format!("{error:?}").contains("Hardlink"), "{error:?}");
    }

    #[test]
    fn a_legitimate_restatement_of_the_merged_links_is_accepted() {
        let scratch = Scratch::new();
        let entries: &[(&str, tar::EntryType, &str, &[u8])] = &[
            ("./bin", tar::EntryType::Symlink, "usr/bin", b""),
            ("./lib/", tar::EntryType::Directory, "", b""),
            ("./bin/x", tar::EntryType::Regular, "", b"x"),
        ];
        let packages = [
            usr_is_merged(&scratch),
            scratch.crafted("base-files", b"2.0\n", &raw_tar(entries)),
        ];
        scratch.assemble(&packages).expect("assemble");
        assert_eq!(link(&scratch.dest().join("bin")), "usr/bin");
        assert!(scratch.dest().join("usr/bin/x").is_file());
    }

    #[test]
    fn every_data_compression_dpkg_writes() {
        for compression in ["xz", "zstd", "gzip", "none"] {
            let scratch = Scratch::new();
            let packages = [scratch.deb(
                "tool",
                &[Item::File("usr/bin/tool", b"tool", 0o755)],
                compression,
            )];
            scratch.assemble(&packages).expect(compression);
            assert_eq!(
                fs::read(scratch.dest().join("usr/bin/tool")).expect(compression),
                b"tool"
            );
        }
    }

    #[test]
    fn a_deb_of_another_format_or_label_is_refused() {
        let scratch = Scratch::new();
        let data = raw_tar(&[("./usr/", tar::EntryType::Directory, "", b"")]);
        let (label, deb) = scratch.crafted("future", b"3.0\n", &data);
        let error = scratch.assemble(&[(label, deb)]).expect_err("format 3");
        assert!(
            matches!(&error, Error::Deb(deb::Error::Format { found, .. }) if found == "3.0"),
            "{error:?}"
        );

        let scratch = Scratch::new();
        let (_, deb) = scratch.crafted("actual", b"2.0\n", &data);
        let error = scratch
            .assemble(&[(PackageLabel::new("expected", "1.0-1"), deb)])
            .expect_err("label");
        assert!(
            matches!(&error, Error::WrongPackage { found, .. } if found.name == "actual"),
            "{error:?}"
        );

        let scratch = Scratch::new();
        let not_a_deb = scratch.root.path().join("x.deb");
        fs::write(&not_a_deb, b"!<arch>\nnot really").expect("write");
        let error = scratch
            .assemble(&[(PackageLabel::new("x", "1"), not_a_deb)])
            .expect_err("garbage");
        assert!(
            matches!(
                &error,
                Error::Deb(deb::Error::Read { .. } | deb::Error::Layout { .. })
            ),
            "{error:?}"
        );
    }

    #[test]
    fn alternatives_and_etc_are_what_the_maintainer_scripts_make() {
        let scratch = Scratch::new();
        let packages = [
            usr_is_merged(&scratch),
            scratch.deb(
                "gcc",
                &[
                    Item::Symlink("usr/bin/gcc", "gcc-12"),
                    Item::File("usr/bin/gcc-12", b"gcc", 0o755),
                    Item::File("usr/bin/cpp", b"cpp", 0o755),
                ],
                "xz",
            ),
            scratch.deb("mawk", &[Item::File("usr/bin/mawk", b"mawk", 0o755)], "xz"),
            scratch.deb(
                "base-passwd",
                &[
                    Item::File(
                        "usr/share/base-passwd/passwd.master",
                        b"root:*:0:0:root:/root:/bin/bash\n",
                        0o644,
                    ),
                    Item::File("usr/share/base-passwd/group.master", b"root:*:0:\n", 0o644),
                ],
                "xz",
            ),
            scratch.deb(
                "ca-certificates",
                &[
                    Item::File(
                        "usr/share/ca-certificates/mozilla/B_Root.crt",
                        b"-----B-----",
                        0o644,
                    ),
                    Item::File(
                        "usr/share/ca-certificates/mozilla/A (Root), 2.crt",
                        b"-----A-----\n",
                        0o644,
                    ),
                    Item::File(
                        "usr/share/ca-certificates/mozilla/README",
                        b"not a cert",
                        0o644,
                    ),
                    Item::Dir("etc/ssl/certs"),
                ],
                "xz",
            ),
            scratch.deb(
                "base-files",
                &[Item::File("etc/hostname", b"shipped\n", 0o644)],
                "xz",
            ),
        ];
        let report = scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        assert_eq!(link(&dest.join("usr/bin/cc")), "../../etc/alternatives/cc");
        assert_eq!(link(&dest.join("etc/alternatives/cc")), "../../usr/bin/gcc");
        assert_eq!(fs::read(dest.join("usr/bin/cc")).expect("cc"), b"gcc");
        // `/lib/cpp` lands in `usr/lib`, through the merged link.
        assert_eq!(
            link(&dest.join("usr/lib/cpp")),
            "../../etc/alternatives/cpp"
        );
        assert_eq!(fs::read(dest.join("lib/cpp")).expect("cpp"), b"cpp");
        assert_eq!(fs::read(dest.join("usr/bin/awk")).expect("awk"), b"mawk");
        assert_eq!(fs::read(dest.join("usr/bin/nawk")).expect("nawk"), b"mawk");
        assert!(!dest.join("usr/bin/c++").exists());
        assert_eq!(
            report.alternatives,
            [
                ("awk".to_owned(), "/usr/bin/mawk".to_owned()),
                ("cc".to_owned(), "/usr/bin/gcc".to_owned()),
                ("cpp".to_owned(), "/usr/bin/cpp".to_owned()),
            ]
        );
        assert_eq!(
            report.skipped.alternatives_without_candidate,
            ALTERNATIVES.len() as u64 - 3
        );

        assert_eq!(
            fs::read(dest.join("etc/passwd")).expect("passwd"),
            b"root:*:0:0:root:/root:/bin/bash\n"
        );
        assert_eq!(
            fs::read(dest.join("etc/group")).expect("group"),
            b"root:*:0:\n"
        );
        assert_eq!(
            fs::read_to_string(dest.join("etc/nsswitch.conf")).expect("nsswitch"),
            DEFAULT_NSSWITCH
        );
        assert_eq!(
            fs::read_to_string(dest.join("etc/hosts")).expect("hosts"),
            HOSTS
        );
        assert_eq!(
            fs::read(dest.join("etc/hostname")).expect("hostname"),
            b"shipped\n"
        );
        assert_eq!(report.skipped.generated_files, 1);
        assert_eq!(
            fs::read(dest.join("etc/ssl/certs/ca-certificates.crt")).expect("bundle"),
            b"-----A-----\n-----B-----\n"
        );
        assert_eq!(
            fs::read_to_string(dest.join("etc/ca-certificates.conf")).expect("conf"),
            "mozilla/A (Root), 2.crt\nmozilla/B_Root.crt\n"
        );
        assert_eq!(
            link(&dest.join("etc/ssl/certs/A_=Root=__2.pem")),
            "../../../usr/share/ca-certificates/mozilla/A (Root), 2.crt"
        );
        assert_eq!(
            fs::read(dest.join("etc/ssl/certs/B_Root.pem")).expect("pem"),
            b"-----B-----"
        );
        for file in ["etc/passwd", "etc/ssl/certs/ca-certificates.crt"] {
            assert_eq!(mode(&dest.join(file)), 0o644);
        }
    }

    #[test]
    fn without_base_passwd_or_libc_bin_etc_has_a_fixed_minimum() {
        let scratch = Scratch::new();
        let packages = [scratch.deb("tool", &[Item::File("usr/bin/tool", b"t", 0o755)], "xz")];
        scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        assert_eq!(
            fs::read_to_string(dest.join("etc/passwd")).expect("passwd"),
            DEFAULT_PASSWD
        );
        assert_eq!(
            fs::read_to_string(dest.join("etc/group")).expect("group"),
            DEFAULT_GROUP
        );
        assert!(!dest.join("etc/ssl").exists());
    }

    #[test]
    fn the_tree_depends_on_the_set_not_the_order() {
        let scratch = Scratch::new();
        let packages = [
            usr_is_merged(&scratch),
            scratch.deb(
                "zeta",
                &[Item::File("bin/z", b"z", 0o755), Item::Dir("usr/share/doc")],
                "zstd",
            ),
            scratch.deb(
                "alpha",
                &[
                    Item::File("usr/share/doc/a", b"a", 0o644),
                    Item::Symlink("usr/bin/a", "/bin/z"),
                ],
                "gzip",
            ),
            scratch.deb("mawk", &[Item::File("usr/bin/mawk", b"mawk", 0o755)], "xz"),
        ];
        let mut signatures = Vec::new();
        for (index, order) in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
            .iter()
            .enumerate()
        {
            let packages: Vec<_> = order
                .iter()
                .map(|&index| (packages[index].0.clone(), packages[index].1.as_path()))
                .collect();
            let dest = scratch.root.path().join(format!("base-{index}"));
            let report =
                assemble_base(&packages, &dest, &BaseOptions::default()).expect("assemble");
            assert_eq!(
                report
                    .packages
                    .iter()
                    .map(|label| label.name.as_str())
                    .collect::<Vec<_>>(),
                ["alpha", "mawk", "usr-is-merged", "zeta"]
            );
            signatures.push(signature(&dest));
        }
        assert_eq!(signatures[0], signatures[1]);
        assert_eq!(signatures[0], signatures[2]);
    }

    #[test]
    fn the_same_package_twice_is_an_error() {
        let scratch = Scratch::new();
        let (label, deb) = scratch.deb("tool", &[Item::File("usr/bin/tool", b"t", 0o755)], "xz");
        let error = scratch
            .assemble(&[(label.clone(), deb.clone()), (label, deb)])
            .expect_err("twice");
        assert!(
            matches!(&error, Error::DuplicatePackage { name, .. } if name == "tool"),
            "{error:?}"
        );
    }

    /// Downloads a handful of real bookworm packages with this machine's apt (`apt-get download`) and assembles them.
    #[test]
    #[ignore = "downloads from deb.debian.org"]
    fn live_bookworm_packages_assemble_into_a_merged_usr_base() {
        let scratch = Scratch::new();
        let debs = scratch.root.path().join("debs");
        fs::create_dir(&debs).expect("debs");
        let names = [
            "libc6",
            "libgcc-s1",
            "gcc-12-base",
            "bash",
            "coreutils",
            "dash",
            "usr-is-merged",
            "base-passwd",
            "libc-bin",
            "mawk",
        ];
        let output = Command::new("apt-get")
            .arg("download")
            .args(names)
            .current_dir(&debs)
            .output()
            .expect("apt-get must be installed (a Debian host)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut packages = Vec::new();
        for entry in fs::read_dir(&debs).expect("read_dir") {
            let path = entry.expect("entry").path();
            let control = deb::read_control(&path).expect("control");
            packages.push((PackageLabel::new(control.package, control.version), path));
        }
        assert_eq!(packages.len(), names.len());
        let report = scratch.assemble(&packages).expect("assemble");
        let dest = scratch.dest();
        assert!(report.merged_usr);
        assert!(
            fs::symlink_metadata(dest.join("usr/bin/bash"))
                .expect("bash")
                .is_file()
        );
        assert_eq!(
            fs::read(dest.join("bin/bash")).expect("through bin"),
            fs::read(dest.join("usr/bin/bash")).expect("bash")
        );
        assert_eq!(
            link(&dest.join("usr/lib64/ld-linux-x86-64.so.2")),
            "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        assert!(dest.join("lib64/ld-linux-x86-64.so.2").is_file());
        assert!(
            dest.join("etc/ld.so.conf.d/x86_64-linux-gnu.conf")
                .is_file()
        );
        assert!(
            fs::read_to_string(dest.join("etc/passwd"))
                .expect("passwd")
                .starts_with("root:")
        );
        assert_eq!(
            fs::read(dest.join("usr/bin/awk")).expect("awk"),
            fs::read(dest.join("usr/bin/mawk")).expect("mawk")
        );
    }
}
