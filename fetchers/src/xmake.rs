//! `xmake` packages: the archives a project's `add_requires` pull in for one target — the requires with their configs
//! and every transitive dependency — locked to the URL and sha256 that the pinned xmake-repo declares, and the
//! phase-2 shape in which the pinned xmake installs them with no network.
//!
//! hstore does not re-implement xmake's Lua. Resolution is xmake's own: [`PROBE_SCRIPT`] runs under the pinned xmake,
//! in the sandbox with the network cut, against the locked xmake-repo tree (`XMAKE_MAIN_REPO`, no `.git`), after
//! `xmake f <target options> --require=n -y` configured the project without installing anything; it writes a JSON
//! [`ProbeReport`] of every package xmake would use, where it would take it from (an archive, or the host system),
//! and the archive URLs with their `add_versions` sha256 and the file names xmake looks for in `pkg_searchdirs`.
//! [`lock_entries`] turns that report into lockfile entries ([`XmakeArchive`], [`HostPackage`]); hstore downloads,
//! verifies and stores each archive as a blob, exactly like a `url` source.
//!
//! Phase 2 ([`Phase2`]): `XMAKE_MAIN_REPO` = the locked xmake-repo tree, read-only; a writable `XMAKE_GLOBALDIR`
//! whose `.xmake/xmake.conf` ([`global_conf`]) sets `network = "private"` and `pkg_searchdirs` = a directory holding
//! the archives under the file names xmake accepts; `XMAKE_PKG_INSTALLDIR`, `XMAKE_PKG_CACHEDIR` and `XMAKE_TMPDIR`
//! under `/build`; `XMAKE_STATS=false` (else xmake starts a detached `git clone` of its stats repository);
//! `XMAKE_ROOT=y` (the sandbox user is root in its namespace). A recipe's script is then `xmake f <target options> -y
//! && xmake -y && xmake install -o "$out"`. [`Phase2::check_archives`] fails before the build starts, naming the
//! package, version and accepted file names of any archive missing from the directory: never a silent fallback.
//!
//! Host packages: xmake prefers a package it finds on the system (pkg-config, `/usr`) to installing one. hstore
//! records them (the lockfile's `host_packages`, the build log) rather than forbidding them: the sandbox's host base
//! system is already a fingerprinted input of the build key, so a host package is pinned as well as `/usr` is, and
//! forbidding it (`--policies=package.install_only`) would make every system tool xmake packages depend on (cmake,
//! ninja, python for pybind11 v3) build from source in the sandbox. A package that is neither pinned in xmake-repo
//! nor found on the host fails at lock.
//!
//! Invariants: every archive file name is one path component (a hostile xmake-repo cannot make hstore write
//! elsewhere); every sha256 is 64 lowercase hex; entries are sorted and deduplicated, so the same report gives the
//! same lockfile bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// Why an xmake package report could not be locked or a phase-2 shape not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The probe's report is not the JSON [`PROBE_SCRIPT`] writes.
    #[error("invalid xmake package report `{}`", path.display())]
    Report {
        /// The report file.
        path: PathBuf,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The report could not be read.
    #[error("failed to read xmake package report `{}`", path.display())]
    ReadReport {
        /// The report file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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
    /// An archive the lockfile names is not in the phase-2 archives directory.
    #[error(
        "xmake package `{package}` {version} is missing from `{}`: xmake accepts {names}",
        dir.display()
    )]
    MissingArchive {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The archives directory.
        dir: PathBuf,
        /// The file names xmake accepts, comma-separated.
        names: String,
    },
    /// The archives directory could not be read or written.
    #[error("failed to set up xmake packages in `{}`", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Report { .. } | Error::ReadReport { .. } => Some(
                "the probe ran under an xmake other than the pinned one, or failed; see the probe's log".into(),
            ),
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
            Error::MissingArchive { .. } => {
                Some("run `hstore fetch` on a connected machine, or import a bundle that holds it".into())
            }
            Error::Io { .. } => None,
        }
    }
}

/// The Lua script the pinned xmake runs (`xmake lua probe.lua REPORT`) in the configured project: it writes the
/// [`ProbeReport`] JSON to `REPORT`. It reads xmake's own package model (the same calls as `xmake require --info`),
/// so the versions, URLs, sha256 and file names are exactly those xmake's download step would use.
pub const PROBE_SCRIPT: &str = r#"-- hstore's xmake package probe: which archives would xmake download for this project and configuration?
import("core.base.json")
import("core.project.config")
import("devel.git")
import("utils.archive")
import("private.action.require.impl.package")
import("private.action.require.impl.environment")
import("private.action.require.impl.utils.filter")
import("private.action.require.impl.utils.url_filename")
import("private.action.require.impl.utils.get_requires")

function _origin(instance)
    if instance:fetch() then
        if instance:is_thirdparty() then return "thirdparty" end
        -- the probe runs with an empty package directory, so whatever xmake finds is on the host (pkg-config,
        -- /usr, a package's on_fetch script)
        return "system"
    end
    if #instance:urls() > 0 then return "archive" end
    return "missing"
end

function main(outfile)
    config.load()
    local requires, requires_extra = get_requires()
    local report = {packages = {}}
    if requires and #requires > 0 then
        environment.enter()
        for _, instance in ipairs(package.load_packages(requires, {requires_extra = requires_extra})) do
            local entry = {name = instance:name(), version = instance:version_str() or "",
                           origin = _origin(instance), deps = {}, urls = {}}
            local fetchinfo = instance:fetch()
            if fetchinfo and fetchinfo.version then
                entry.host_version = tostring(fetchinfo.version)
            end
            for _, dep in ipairs(instance:orderdeps() or {}) do
                table.insert(entry.deps, dep:name())
            end
            for _, url in ipairs(instance:urls() or {}) do
                local url_alias = instance:url_alias(url)
                local real = filter.handle(url, instance)
                local item = {url = real, git = git.checkurl(real) and true or false, searchnames = {}}
                if not item.git then
                    item.sha256 = instance:sourcehash(url_alias)
                    local extension = archive.extension(real)
                    if extension then
                        table.insert(item.searchnames, instance:name() .. "-" .. instance:version_str() .. extension)
                    end
                    table.insert(item.searchnames, url_filename(real))
                    local github_name = url_filename.github_filename(real)
                    if github_name then
                        table.insert(item.searchnames, github_name)
                    end
                end
                table.insert(entry.urls, item)
            end
            table.insert(report.packages, entry)
        end
        environment.leave()
    end
    json.savefile(outfile, report)
end
"#;

/// What [`PROBE_SCRIPT`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProbeReport {
    /// Every package xmake would use, requires and their dependencies.
    #[serde(deserialize_with = "lua_list")]
    pub packages: Vec<ProbedPackage>,
}

/// One package of a [`ProbeReport`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProbedPackage {
    /// The package name.
    pub name: String,
    /// The version xmake chose (empty for unversioned system packages).
    pub version: String,
    /// Where xmake would take it from.
    pub origin: Origin,
    /// The version found on the host, when xmake takes it from there and knows it.
    #[serde(default)]
    pub host_version: Option<String>,
    /// Names of the packages it depends on.
    #[serde(deserialize_with = "lua_list")]
    pub deps: Vec<String>,
    /// The URLs xmake-repo declares, in xmake's order.
    #[serde(deserialize_with = "lua_list")]
    pub urls: Vec<ProbedUrl>,
}

/// Where xmake would take a package from, as the probe saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProbedUrl {
    /// The URL with xmake's version filters applied.
    pub url: String,
    /// A git URL (never pinned by sha256).
    pub git: bool,
    /// The `add_versions` sha256 for this URL, if any.
    pub sha256: Option<String>,
    /// The file names xmake looks for in `pkg_searchdirs`, in its order.
    #[serde(default, deserialize_with = "lua_list")]
    pub searchnames: Vec<String>,
}

/// xmake's JSON encoder writes an empty Lua table as `{}`: accept that as an empty list.
fn lua_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty(BTreeMap<String, serde_json::Value>),
    }
    match ListOrEmpty::deserialize(deserializer)? {
        ListOrEmpty::List(items) => Ok(items),
        ListOrEmpty::Empty(map) if map.is_empty() => Ok(Vec::new()),
        ListOrEmpty::Empty(_) => Err(serde::de::Error::custom("expected a list")),
    }
}

impl ProbeReport {
    /// Parses the report JSON.
    pub fn parse(json: &str, path: &Path) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|source| Error::Report {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and parses a report file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadReport {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }
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

/// A package xmake takes from the host: recorded, not stored.
#[derive(Clone, Debug, PartialEq, Eq, Ord, PartialOrd, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPackage {
    /// The package name.
    pub package: String,
    /// The version found on the host, else the version xmake-repo would have installed (empty when neither is
    /// known).
    pub version: String,
    /// The hardware target it was locked for.
    pub target: String,
    /// `system` or `thirdparty`.
    pub origin: Origin,
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

/// Turns a probe report into lockfile entries for `target`: one archive per package xmake would download (the
/// first URL pinned by a sha256, as xmake's download order tries it), one host entry per package found on the host.
pub fn lock_entries(report: &ProbeReport, target: &str) -> Result<XmakeLock, Error> {
    let mut archives = BTreeMap::new();
    let mut host = BTreeSet::new();
    for package in &report.packages {
        match package.origin {
            Origin::Archive => {
                let archive = pin_archive(package, target)?;
                archives.insert(archive.id.clone(), archive);
            }
            Origin::System | Origin::Thirdparty => {
                host.insert(HostPackage {
                    package: package.name.clone(),
                    version: package
                        .host_version
                        .clone()
                        .unwrap_or_else(|| package.version.clone()),
                    target: target.to_owned(),
                    origin: package.origin,
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

/// The text of `$XMAKE_GLOBALDIR/.xmake/xmake.conf`: no network, archives from `archives_dir`.
pub fn global_conf(archives_dir: &str) -> String {
    // xmake reads this file as a Lua table; the directory is quoted as a Lua string.
    let quoted = archives_dir.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{{\n    network = \"private\",\n    pkg_searchdirs = \"{quoted}\"\n}}\n")
}

/// The phase-2 shape of an xmake build: where the repo, archives and xmake's writable directories are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase2 {
    /// The locked xmake-repo tree (read-only, no `.git`).
    pub repo: PathBuf,
    /// The directory holding the archives under their file names.
    pub archives: PathBuf,
    /// A writable scratch directory (the sandbox's `/build`); xmake's global, package and temp dirs go under it.
    pub scratch: PathBuf,
    /// The directory holding the pinned `xmake` binary.
    pub xmake_bin: PathBuf,
}

impl Phase2 {
    /// `XMAKE_GLOBALDIR`.
    pub fn global_dir(&self) -> PathBuf {
        self.scratch.join("xmake-global")
    }

    /// The environment an xmake build runs with, `PATH` first naming the pinned xmake.
    pub fn env(&self) -> BTreeMap<String, String> {
        let scratch = |name: &str| self.scratch.join(name).display().to_string();
        BTreeMap::from([
            ("XMAKE_MAIN_REPO".into(), self.repo.display().to_string()),
            (
                "XMAKE_GLOBALDIR".into(),
                self.global_dir().display().to_string(),
            ),
            ("XMAKE_PKG_INSTALLDIR".into(), scratch("xmake-packages")),
            ("XMAKE_PKG_CACHEDIR".into(), scratch("xmake-cache")),
            ("XMAKE_TMPDIR".into(), scratch("xmake-tmp")),
            ("XMAKE_STATS".into(), "false".into()),
            ("XMAKE_ROOT".into(), "y".into()),
            (
                "PATH".into(),
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.xmake_bin.display()),
            ),
        ])
    }

    /// Fails, naming the first missing package, unless every archive is in the archives directory.
    pub fn check_archives(&self, archives: &[XmakeArchive]) -> Result<(), Error> {
        for archive in archives {
            let present = archive
                .search_names
                .iter()
                .any(|name| self.archives.join(name).is_file());
            if !present {
                return Err(Error::MissingArchive {
                    package: archive.package.clone(),
                    version: archive.version.clone(),
                    dir: self.archives.clone(),
                    names: archive
                        .search_names
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// Creates `XMAKE_GLOBALDIR/.xmake/xmake.conf` and the writable directories, after checking the archives.
    pub fn prepare(&self, archives: &[XmakeArchive]) -> Result<(), Error> {
        self.check_archives(archives)?;
        let conf_dir = self.global_dir().join(".xmake");
        for dir in [
            conf_dir.clone(),
            self.scratch.join("xmake-packages"),
            self.scratch.join("xmake-cache"),
            self.scratch.join("xmake-tmp"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
        }
        let conf = conf_dir.join("xmake.conf");
        std::fs::write(&conf, global_conf(&self.archives.display().to_string()))
            .map_err(|source| Error::Io { path: conf, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as the probe wrote it under xmake v3.0.0 for a project requiring `greet` (with a config) and
    /// `fancy` (which depends on `hdronly`); note the `{}` for an empty list.
    const REPORT: &str = r#"{"packages":[{"urls":[{"sha256":"7B7F4DFD4DE9833A39D31A7884A3CB93481A9C890667D24E9885EF301E3B794A","searchnames":["greet-2.1.0.tar.gz","greet-2.1.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/greet-2.1.0.tar.gz","git":false}],"version":"2.1.0","name":"greet","origin":"archive","deps":{},"system":false},{"urls":[{"sha256":"75790646c724d197aaa2f9fa6ebaa54b7a4428cbfbf0c7ad891c34e780db697d","searchnames":["hdronly-1.0.0.tar.gz","hdronly-1.0.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/hdronly-1.0.0.tar.gz","git":false}],"version":"1.0.0","name":"hdronly","origin":"archive","deps":{},"system":false},{"urls":[{"sha256":"5e0aae6b7842ca8841a008ccffbae313a94d4358051baeffd67f55e283fee567","searchnames":["fancy-0.3.0.tar.gz","fancy-0.3.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/fancy-0.3.0.tar.gz","git":false}],"version":"0.3.0","name":"fancy","origin":"archive","deps":["hdronly"],"system":false},{"urls":{},"version":"","name":"openmp","origin":"system","deps":{}}]}"#;

    fn report() -> ProbeReport {
        ProbeReport::parse(REPORT, Path::new("report.json")).expect("parse report")
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
                package: "openmp".into(),
                version: String::new(),
                target: "cpu".into(),
                origin: Origin::System,
            }]
        );
        // Deterministic whatever the report's order.
        let mut reversed = report();
        reversed.packages.reverse();
        assert_eq!(lock_entries(&reversed, "cpu").expect("lock"), lock);
    }

    #[test]
    fn git_only_package_is_unpinned_and_missing_package_is_unavailable() {
        let mut report = report();
        report.packages[0].urls[0].git = true;
        let error = lock_entries(&report, "cuda").expect_err("git url");
        assert!(matches!(&error, Error::Unpinned { package, .. } if package == "greet"));
        assert!(error.to_string().contains("(target `cuda`)"), "{error}");
        let mut report = self::report();
        report.packages[3].origin = Origin::Missing;
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
            report.packages[1].urls[0].searchnames = vec![name.into()];
            report.packages[1].urls[0].sha256 = Some(sha256.into());
            let error = lock_entries(&report, "cpu").expect_err("refused");
            assert!(matches!(error, Error::Invalid { .. }), "{error}");
        }
    }

    #[test]
    fn missing_archive_names_package_version_and_accepted_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let archives_dir = dir.path().join("archives");
        std::fs::create_dir(&archives_dir).expect("mkdir");
        let lock = lock_entries(&report(), "cpu").expect("lock");
        for archive in &lock.archives[..2] {
            std::fs::write(archives_dir.join(&archive.file_name), b"x").expect("write");
        }
        let phase2 = Phase2 {
            repo: "/src/repo".into(),
            archives: archives_dir.clone(),
            scratch: dir.path().join("build"),
            xmake_bin: "/src/xmake/bin".into(),
        };
        let error = phase2.prepare(&lock.archives).expect_err("missing");
        assert_eq!(
            error.to_string(),
            format!(
                "xmake package `hdronly` 1.0.0 is missing from `{}`: xmake accepts `hdronly-1.0.0.tar.gz`",
                archives_dir.display()
            )
        );
        std::fs::write(archives_dir.join("hdronly-1.0.0.tar.gz"), b"x").expect("write");
        phase2.prepare(&lock.archives).expect("prepare");
        let conf = std::fs::read_to_string(phase2.global_dir().join(".xmake/xmake.conf"))
            .expect("read conf");
        assert_eq!(
            conf,
            format!(
                "{{\n    network = \"private\",\n    pkg_searchdirs = \"{}\"\n}}\n",
                archives_dir.display()
            )
        );
        let env = phase2.env();
        assert_eq!(env["XMAKE_MAIN_REPO"], "/src/repo");
        assert_eq!(env["XMAKE_STATS"], "false");
        assert!(env["PATH"].starts_with("/src/xmake/bin:"));
    }
}
