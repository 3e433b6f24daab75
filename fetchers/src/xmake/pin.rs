//! What the xmake probe reports and how it is pinned: the [`ProbedPackage`]s a [`crate::LockEvaluator`] answers
//! for one target (every package xmake would use, where it would take it from, the URLs xmake-repo declares with
//! their `add_versions` sha256 and the file names xmake looks for), and [`lock_entries`], which turns them into
//! lockfile entries ([`XmakeArchive`], [`HostPackage`]) and this module's [`Error`]s.
//!
//! Pure data and logic, no I/O: the probe itself (its Lua script, its sandboxed plan and the parsing of the
//! `report.json` it writes) is `hstore-build`'s `xmake_probe` module, and storing the archives is [`super`]'s.
//!
//! Invariants: every archive file name is one path component (a hostile xmake-repo cannot make hstore write
//! elsewhere); every sha256 is 64 lowercase hex; entries are sorted and deduplicated, so the same packages give the
//! same lockfile bytes whatever order the probe reported them in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::lockfile::XmakeArchiveArtifact;
pub use crate::lockfile::{HostOrigin, HostPackage};

/// Why the packages of an xmake probe could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A package xmake would download has no archive URL pinned by a sha256 for this platform.
    #[error(
        "xmake package `{package}` {version} (target `{target}`) has no archive pinned by a sha256 in xmake-repo; urls: {urls}"
    )]
    Unpinned {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The target being locked.
        target: String,
        /// The URLs xmake-repo declares, comma-separated (git URLs cannot be pinned by sha256).
        urls: String,
    },
    /// A package is neither pinned in xmake-repo nor found on the host.
    #[error(
        "xmake package `{package}` (target `{target}`) is neither in xmake-repo nor found on the host"
    )]
    Unavailable {
        /// The package.
        package: String,
        /// The target being locked.
        target: String,
    },
    /// xmake-repo declares something hstore refuses to store (a file name that is not one path component, a
    /// malformed sha256).
    #[error("xmake package `{package}` {version}: {what} `{value}` is not acceptable")]
    Invalid {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// What was wrong ("archive file name", "sha256").
        what: &'static str,
        /// The value.
        value: String,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Unpinned { .. } => Some(
                "pin the package to a released version with `add_versions` in xmake-repo (or in the project's \
                 `add_requires`), or install it on the host so that xmake finds it there"
                    .into(),
            ),
            Error::Unavailable { .. } => Some(
                "add the package to the pinned xmake-repo, or install it on the host (and declare its path in \
                 the target)"
                    .into(),
            ),
            Error::Invalid { .. } => {
                Some("the xmake-repo commit is corrupt or hostile; pin another commit".into())
            }
        }
    }
}

/// One package xmake would use for a target, as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedPackage {
    /// The package name.
    pub name: String,
    /// The version xmake chose (empty for unversioned system packages).
    pub version: String,
    /// Where xmake would take it from.
    pub origin: Origin,
    /// The version found on the host, when xmake takes it from there and knows it.
    pub host_version: Option<String>,
    /// Names of the packages it depends on.
    pub deps: Vec<String>,
    /// The URLs xmake-repo declares, in xmake's order.
    pub urls: Vec<ProbedUrl>,
}

/// Where xmake would take a package from, as the probe saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Ord, PartialOrd)]
pub enum Origin {
    /// Not found anywhere yet: xmake would download one of its URLs.
    Archive,
    /// Found on the host system (pkg-config, `/usr`, a tool on `PATH`).
    System,
    /// Found through a third-party manager (conan, vcpkg, apt…).
    Thirdparty,
    /// Neither downloadable nor found.
    Missing,
}

/// One URL of a [`ProbedPackage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedUrl {
    /// The URL with xmake's version filters applied.
    pub url: String,
    /// A git URL (never pinned by sha256).
    pub git: bool,
    /// The `add_versions` sha256 for this URL, if any.
    pub sha256: Option<String>,
    /// The file names xmake looks for in `pkg_searchdirs`, in its order.
    pub searchnames: Vec<String>,
}

/// One archive of an xmake-packages source: the lockfile entry (address and size are added when it is stored).
#[derive(Clone, Debug, PartialEq, Eq, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmakeArchive {
    /// `xmake+<target>/<package>@<version>`.
    pub id: String,
    /// The package name.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The hardware target it was locked for.
    pub target: String,
    /// The canonical URL xmake-repo declares.
    pub url: String,
    /// The `add_versions` sha256.
    pub sha256: String,
    /// The file name it is stored under in the archives directory (the first name xmake looks for).
    pub file_name: String,
    /// Every file name xmake accepts for it, in its order.
    pub search_names: Vec<String>,
}

/// What an xmake-packages source locks to for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmakeLock {
    /// Archives from the store, sorted by id.
    pub archives: Vec<XmakeArchive>,
    /// Packages from the host, sorted.
    pub host_packages: Vec<HostPackage>,
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\0'])
}

/// The packages xmake would actually use: everything reachable from the project's requires (the packages no
/// other package depends on), not descending below a package taken from the host. The probe lists each package's
/// dependencies as xmake-repo declares them, but xmake installs a package's dependencies only when it installs the
/// package itself: with the host's boost and pybind11, the cmake, ninja and ca-certificates they would need to be
/// built from source are never fetched (InfiniCore `issue/951` configures and builds offline with no archive at
/// all on a host with Debian's libboost-stacktrace-dev and pybind11-dev). Locking them anyway would make `lock`
/// download archives no build reads.
fn used_packages(packages: &[ProbedPackage]) -> Vec<&ProbedPackage> {
    let by_name: BTreeMap<&str, &ProbedPackage> = packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    let depended_on: BTreeSet<&str> = packages
        .iter()
        .flat_map(|package| package.deps.iter().map(String::as_str))
        .collect();
    let mut queue: Vec<&str> = by_name
        .keys()
        .copied()
        .filter(|name| !depended_on.contains(name))
        .collect();
    let mut used: BTreeMap<&str, &ProbedPackage> = BTreeMap::new();
    while let Some(name) = queue.pop() {
        let Some(package) = by_name.get(name) else {
            continue;
        };
        if used.insert(name, package).is_some() {
            continue;
        }
        match package.origin {
            Origin::Archive | Origin::Missing => {
                queue.extend(package.deps.iter().map(String::as_str));
            }
            Origin::System | Origin::Thirdparty => {}
        }
    }
    used.into_values().collect()
}

/// Turns the packages a probe reported into lockfile entries for `target`: one archive per package xmake would download (the
/// first URL pinned by a sha256, as xmake's download order tries it), one host entry per package found on the host;
/// only the packages xmake would use ([`used_packages`]).
pub fn lock_entries(packages: &[ProbedPackage], target: &str) -> Result<XmakeLock, Error> {
    let mut archives = BTreeMap::new();
    let mut host = BTreeSet::new();
    for package in used_packages(packages) {
        match package.origin {
            Origin::Archive => {
                let archive = pin_archive(package, target)?;
                archives.insert(archive.id.clone(), archive);
            }
            Origin::System | Origin::Thirdparty => {
                host.insert(HostPackage {
                    target: target.to_owned(),
                    package: package.name.clone(),
                    version: package
                        .host_version
                        .clone()
                        .unwrap_or_else(|| package.version.clone()),
                    origin: if package.origin == Origin::System {
                        HostOrigin::System
                    } else {
                        HostOrigin::Thirdparty
                    },
                });
            }
            Origin::Missing => {
                return Err(Error::Unavailable {
                    package: package.name.clone(),
                    target: target.to_owned(),
                });
            }
        }
    }
    Ok(XmakeLock {
        archives: archives.into_values().collect(),
        host_packages: host.into_iter().collect(),
    })
}

fn pin_archive(package: &ProbedPackage, target: &str) -> Result<XmakeArchive, Error> {
    let invalid = |what, value: &str| Error::Invalid {
        package: package.name.clone(),
        version: package.version.clone(),
        what,
        value: value.to_owned(),
    };
    let Some((url, sha256)) = package.urls.iter().find_map(|url| match &url.sha256 {
        Some(sha256) if !url.git => Some((url, sha256)),
        _ => None,
    }) else {
        return Err(Error::Unpinned {
            package: package.name.clone(),
            version: package.version.clone(),
            target: target.to_owned(),
            urls: package
                .urls
                .iter()
                .map(|url| url.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let sha256 = sha256.to_ascii_lowercase();
    if !is_sha256(&sha256) {
        return Err(invalid("sha256", &sha256));
    }
    let mut search_names: Vec<String> = Vec::new();
    for name in &url.searchnames {
        if !is_file_name(name) {
            return Err(invalid("archive file name", name));
        }
        if !search_names.contains(name) {
            search_names.push(name.clone());
        }
    }
    let Some(file_name) = search_names.first().cloned() else {
        return Err(invalid("archive file name", ""));
    };
    Ok(XmakeArchive {
        id: format!("xmake+{target}/{}@{}", package.name, package.version),
        package: package.name.clone(),
        version: package.version.clone(),
        target: target.to_owned(),
        url: url.url.clone(),
        sha256,
        file_name,
        search_names,
    })
}

impl XmakeArchive {
    /// The pin of a locked archive entry; `None` for other artifacts.
    pub fn from_artifact(archive: &XmakeArchiveArtifact) -> Self {
        Self {
            id: archive.id.to_string(),
            package: archive.package.clone(),
            version: archive.version.clone(),
            target: archive.target.clone(),
            url: archive.url.clone(),
            sha256: archive.sha256.as_str().to_owned(),
            file_name: archive.file_name.clone(),
            search_names: archive.search_names.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        name: &str,
        version: &str,
        origin: Origin,
        deps: &[&str],
        archive: Option<(&str, &str)>,
    ) -> ProbedPackage {
        ProbedPackage {
            name: name.into(),
            version: version.into(),
            origin,
            host_version: None,
            deps: deps.iter().map(|&dep| dep.into()).collect(),
            urls: archive
                .map(|(file, sha256)| ProbedUrl {
                    url: format!("http://127.0.0.1:9/files/{file}"),
                    git: false,
                    sha256: Some(sha256.into()),
                    searchnames: vec![file.into(), file.into()],
                })
                .into_iter()
                .collect(),
        }
    }

    /// What the probe reported under xmake v3.0.0 for a project requiring `greet` (with a config) and `fancy`
    /// (which depends on `hdronly`), with the host's `openmp`.
    fn report() -> Vec<ProbedPackage> {
        vec![
            package(
                "greet",
                "2.1.0",
                Origin::Archive,
                &[],
                Some((
                    "greet-2.1.0.tar.gz",
                    "7B7F4DFD4DE9833A39D31A7884A3CB93481A9C890667D24E9885EF301E3B794A",
                )),
            ),
            package(
                "hdronly",
                "1.0.0",
                Origin::Archive,
                &[],
                Some((
                    "hdronly-1.0.0.tar.gz",
                    "75790646c724d197aaa2f9fa6ebaa54b7a4428cbfbf0c7ad891c34e780db697d",
                )),
            ),
            package(
                "fancy",
                "0.3.0",
                Origin::Archive,
                &["hdronly"],
                Some((
                    "fancy-0.3.0.tar.gz",
                    "5e0aae6b7842ca8841a008ccffbae313a94d4358051baeffd67f55e283fee567",
                )),
            ),
            package("openmp", "", Origin::System, &[], None),
        ]
    }

    #[test]
    fn a_report_locks_sorted_deduplicated_archives_and_records_host_packages() {
        let lock = lock_entries(&report(), "cpu").expect("lock");
        let ids: Vec<_> = lock.archives.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "xmake+cpu/fancy@0.3.0",
                "xmake+cpu/greet@2.1.0",
                "xmake+cpu/hdronly@1.0.0"
            ]
        );
        let greet = &lock.archives[1];
        assert_eq!(
            greet.sha256,
            "7b7f4dfd4de9833a39d31a7884a3cb93481a9c890667d24e9885ef301e3b794a"
        );
        assert_eq!(greet.file_name, "greet-2.1.0.tar.gz");
        assert_eq!(greet.search_names, ["greet-2.1.0.tar.gz"]);
        assert_eq!(
            lock.host_packages,
            [HostPackage {
                target: "cpu".into(),
                package: "openmp".into(),
                version: String::new(),
                origin: HostOrigin::System,
            }]
        );
        // Deterministic whatever the report's order.
        let mut reversed = report();
        reversed.reverse();
        assert_eq!(lock_entries(&reversed, "cpu").expect("lock"), lock);
    }

    #[test]
    fn dependencies_of_a_package_taken_from_the_host_are_not_locked() {
        // InfiniCore's cpu probe with the host's boost and pybind11: cmake, ninja and ca-certificates are only
        // needed to build those from source, and python (a host package) is only pybind11's dependency.
        let ninja = (
            "ninja-v1.13.2.tar.gz",
            "974d6b2f4eeefa25625d34da3cb36bdcebe7fbce40f4c16ac0835fd1c0cbae17",
        );
        let cmake = (
            "cmake-4.3.4.tar.gz",
            "ca6f08ccbd5e6b0a9068d33317d0d1aff7278d08cccaed4529b8fbead7942a68",
        );
        let cacert = (
            "cacert.zip",
            "d54be451aaf1a1ec9d9d0b7a2e5a3e4ec1f6e5e4f7e7a1c8b3b0a2d5c6e7f8a9",
        );
        let report = vec![
            package("ninja", "v1.13.2", Origin::Archive, &[], Some(ninja)),
            package("cmake", "4.3.4", Origin::Archive, &["ninja"], Some(cmake)),
            package("boost", "1.90.0", Origin::System, &["ninja", "cmake"], None),
            package(
                "python",
                "3.14.3",
                Origin::System,
                &["ca-certificates"],
                None,
            ),
            package(
                "ca-certificates",
                "20250131",
                Origin::Archive,
                &[],
                Some(cacert),
            ),
            package(
                "pybind11",
                "v3.0.4",
                Origin::System,
                &["ninja", "cmake", "python"],
                None,
            ),
            package("openmp", "latest", Origin::System, &[], None),
        ];
        let lock = lock_entries(&report, "cpu").expect("lock");
        assert!(lock.archives.is_empty(), "{:?}", lock.archives);
        let host: Vec<&str> = lock
            .host_packages
            .iter()
            .map(|p| p.package.as_str())
            .collect();
        assert_eq!(host, ["boost", "openmp", "pybind11"]);
        // The same packages with boost to be built: its build tools are locked.
        let mut built = report.clone();
        built[2].origin = Origin::Archive;
        built[2].urls = built[1].urls.clone();
        let lock = lock_entries(&built, "cpu").expect("lock");
        let names: Vec<&str> = lock.archives.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(names, ["boost", "cmake", "ninja"]);
    }

    #[test]
    fn git_only_package_is_unpinned_and_missing_package_is_unavailable() {
        let mut report = report();
        report[0].urls[0].git = true;
        let error = lock_entries(&report, "cuda").expect_err("git url");
        assert!(matches!(&error, Error::Unpinned { package, .. } if package == "greet"));
        assert!(error.to_string().contains("(target `cuda`)"), "{error}");
        let mut report = self::report();
        report[3].origin = Origin::Missing;
        let error = lock_entries(&report, "cpu").expect_err("missing");
        assert!(matches!(error, Error::Unavailable { .. }));
    }

    #[test]
    fn hostile_file_names_and_bad_hashes_are_refused() {
        for (name, sha256) in [
            (
                "../evil.tar.gz",
                "75790646c724d197aaa2f9fa6ebaa54b7a4428cbfbf0c7ad891c34e780db697d",
            ),
            (
                "a/b.tar.gz",
                "75790646c724d197aaa2f9fa6ebaa54b7a4428cbfbf0c7ad891c34e780db697d",
            ),
            ("ok.tar.gz", "not-a-hash"),
        ] {
            let mut report = report();
            report[1].urls[0].searchnames = vec![name.into()];
            report[1].urls[0].sha256 = Some(sha256.into());
            let error = lock_entries(&report, "cpu").expect_err("refused");
            assert!(matches!(error, Error::Invalid { .. }), "{error}");
        }
    }
}
