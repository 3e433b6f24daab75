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
//! [`lock_source`] downloads, verifies (sha256) and stores each archive as a blob through the `url` kind's code
//! ([`crate::url::ensure`], so mirrors, `--offline`, resumable downloads and the warm-path records are shared) and
//! returns the [`Artifact::XmakeArchive`] entries plus the source's [`XmakeResolution`]. Running the probe needs the
//! pinned xmake, a build output, and the sandbox: that is the CLI's `lock` (it builds the `xmake` recipe through
//! `hstore-build` and runs the probe there), so this crate never depends on the build crate. The phase-2 shape
//! (`XMAKE_MAIN_REPO`, `XMAKE_GLOBALDIR` with `pkg_searchdirs`, …) is `hstore-build`'s `InputShape::XmakePackages`.
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

use hstore_model::Sha256;
use hstore_store::Digest;
use serde::{Deserialize, Deserializer, Serialize};

use crate::context::Fetcher;
use crate::lockfile::{Artifact, XmakeResolution};
pub use crate::lockfile::{HostOrigin, HostPackage};
use crate::url::UrlSpec;

/// Why an xmake package report could not be locked.
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
fn used_packages(report: &ProbeReport) -> Vec<&ProbedPackage> {
    let by_name: BTreeMap<&str, &ProbedPackage> = report
        .packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    let depended_on: BTreeSet<&str> = report
        .packages
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

/// Turns a probe report into lockfile entries for `target`: one archive per package xmake would download (the
/// first URL pinned by a sha256, as xmake's download order tries it), one host entry per package found on the host;
/// only the packages xmake would use ([`used_packages`]).
pub fn lock_entries(report: &ProbeReport, target: &str) -> Result<XmakeLock, Error> {
    let mut archives = BTreeMap::new();
    let mut host = BTreeSet::new();
    for package in used_packages(report) {
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

/// Locks an `xmake_requires` source from its probe reports (one per target, as `(target, report)`): pins every
/// archive with [`lock_entries`], downloads, verifies and stores each as a blob, and records the host packages.
/// `project` and `repo` are the tree addresses the probe ran against; `previous` holds locked archives whose store
/// copies can be reused. Returns the artifacts (sorted by id) and the resolution, or every error.
pub async fn lock_source(
    fetcher: &Fetcher,
    reports: &[(String, ProbeReport)],
    project: Digest,
    repo: Digest,
    previous: &[Artifact],
) -> (Vec<Artifact>, Option<XmakeResolution>, Vec<crate::Error>) {
    let mut pins = Vec::new();
    let mut host_packages = Vec::new();
    let mut errors = Vec::new();
    for (target, report) in reports {
        match lock_entries(report, target) {
            Ok(lock) => {
                pins.extend(lock.archives);
                host_packages.extend(lock.host_packages);
            }
            Err(error) => errors.push(crate::Error::from(error)),
        }
    }
    if !errors.is_empty() {
        return (Vec::new(), None, errors);
    }
    let mut artifacts = Vec::new();
    for pin in &pins {
        let locked = previous.iter().find(|artifact| {
            matches!(artifact, Artifact::XmakeArchive { id, sha256, .. } if *id == pin.id && sha256.as_str() == pin.sha256)
        });
        match ensure_archive(fetcher, pin, locked).await {
            Ok(artifact) => artifacts.push(artifact),
            Err(error) => errors.push(error.context(format!(
                "failed to fetch xmake package `{}` {} (target `{}`)",
                pin.package, pin.version, pin.target
            ))),
        }
    }
    artifacts.sort_by(|a, b| a.id().cmp(b.id()));
    host_packages.sort();
    host_packages.dedup();
    let mut targets: Vec<String> = reports.iter().map(|(target, _)| target.clone()).collect();
    targets.sort();
    targets.dedup();
    let resolution = XmakeResolution {
        project,
        repo,
        targets,
        host_packages,
    };
    (artifacts, Some(resolution), errors)
}

/// Makes the store hold one archive (download by URL through the mirrors, verify its sha256, store as a blob) and
/// returns its lockfile entry; `locked` is the entry to restore (fetch) or keep (lock), checked for drift.
pub async fn ensure_archive(
    fetcher: &Fetcher,
    pin: &XmakeArchive,
    locked: Option<&Artifact>,
) -> crate::Result<Artifact> {
    if let Some(locked) = locked
        && fetcher.store().closure_complete(&locked.address())?
    {
        // Warm path (and an imported store, which has the blob but no download record): nothing to do.
        return Ok(locked.clone());
    }
    let sha256 = Sha256::new(pin.sha256.clone())?;
    let spec = UrlSpec {
        url: pin.url.clone(),
        sha256: sha256.clone(),
        unpack: false,
        strip_components: 0,
    };
    let stored = crate::url::ensure(fetcher, &spec, None).await?;
    crate::error::check_drift(|| pin.id.clone(), locked, stored.address())?;
    Ok(Artifact::XmakeArchive {
        id: pin.id.clone(),
        package: pin.package.clone(),
        version: pin.version.clone(),
        target: pin.target.clone(),
        url: pin.url.clone(),
        sha256,
        file_name: pin.file_name.clone(),
        search_names: pin.search_names.clone(),
        address: stored.address(),
        size: stored.size(),
    })
}

impl XmakeArchive {
    /// The pin of a locked archive entry; `None` for other artifacts.
    pub fn from_artifact(artifact: &Artifact) -> Option<Self> {
        match artifact {
            Artifact::XmakeArchive {
                id,
                package,
                version,
                target,
                url,
                sha256,
                file_name,
                search_names,
                ..
            } => Some(Self {
                id: id.clone(),
                package: package.clone(),
                version: version.clone(),
                target: target.clone(),
                url: url.clone(),
                sha256: sha256.as_str().to_owned(),
                file_name: file_name.clone(),
                search_names: search_names.clone(),
            }),
            Artifact::Git { .. }
            | Artifact::Crate { .. }
            | Artifact::Url { .. }
            | Artifact::Wheel { .. }
            | Artifact::RustToolchain { .. }
            | Artifact::Path { .. } => None,
        }
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
                target: "cpu".into(),
                package: "openmp".into(),
                version: String::new(),
                origin: HostOrigin::System,
            }]
        );
        // Deterministic whatever the report's order.
        let mut reversed = report();
        reversed.packages.reverse();
        assert_eq!(lock_entries(&reversed, "cpu").expect("lock"), lock);
    }

    #[test]
    fn dependencies_of_a_package_taken_from_the_host_are_not_locked() {
        // InfiniCore's cpu probe with the host's boost and pybind11: cmake, ninja and ca-certificates are only
        // needed to build those from source, and python (a host package) is only pybind11's dependency.
        let report = ProbeReport::parse(
            r#"{"packages":[
              {"name":"ninja","version":"v1.13.2","origin":"archive","deps":{},"urls":[{"git":false,"url":"https://example.org/ninja.tar.gz","sha256":"974d6b2f4eeefa25625d34da3cb36bdcebe7fbce40f4c16ac0835fd1c0cbae17","searchnames":["ninja-v1.13.2.tar.gz"]}]},
              {"name":"cmake","version":"4.3.4","origin":"archive","deps":["ninja"],"urls":[{"git":false,"url":"https://example.org/cmake.tar.gz","sha256":"ca6f08ccbd5e6b0a9068d33317d0d1aff7278d08cccaed4529b8fbead7942a68","searchnames":["cmake-4.3.4.tar.gz"]}]},
              {"name":"boost","version":"1.90.0","origin":"system","deps":["ninja","cmake"],"urls":{}},
              {"name":"python","version":"3.14.3","origin":"system","deps":["ca-certificates"],"urls":{}},
              {"name":"ca-certificates","version":"20250131","origin":"archive","deps":{},"urls":[{"git":false,"url":"https://example.org/cacert.zip","sha256":"d54be451aaf1a1ec9d9d0b7a2e5a3e4ec1f6e5e4f7e7a1c8b3b0a2d5c6e7f8a9","searchnames":["cacert.zip"]}]},
              {"name":"pybind11","version":"v3.0.4","origin":"system","deps":["ninja","cmake","python"],"urls":{}},
              {"name":"openmp","version":"latest","origin":"system","deps":{},"urls":{}}
            ]}"#,
            Path::new("report.json"),
        )
        .expect("parse report");
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
        built.packages[2].origin = Origin::Archive;
        built.packages[2].urls = built.packages[1].urls.clone();
        let lock = lock_entries(&built, "cpu").expect("lock");
        let names: Vec<&str> = lock.archives.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(names, ["boost", "cmake", "ninja"]);
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
}
