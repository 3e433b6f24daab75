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
        /// Why.
        #[source]
        source: archive::Error,
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
        source,
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
                source,
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
                source,
            })?;
        self.report.generated_files.push(path.to_owned());
        Ok(())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        self.merge
            .read_file(path, MAX_TEMPLATE)
            .map_err(|source| Error::Generate {
                what: format!("read `{path}`"),
                source,
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
                matches!(entry.kind, MergedKind::File { .. }) && entry.path.ends_with(".crt")
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
