//! `xmake` packages: the archives a project's `add_requires` pull in for one target — the requires with their configs
//! and every transitive dependency — locked to the URL and sha256 that the pinned xmake-repo declares.
//!
//! hstore does not re-implement xmake's Lua. Resolution is xmake's own, asked through the [`LockEvaluator`] the
//! caller passes to [`Fetcher::lock`](crate::Fetcher::lock): `hstore-build`'s evaluator builds the pinned xmake and
//! runs its probe in the sandbox with the network cut, against the locked xmake-repo tree, and answers the
//! [`ProbedPackage`]s of each target. This module owns the lock side of that exchange:
//!
//! - [`probe_and_lock`]: one source, every target: asks the evaluator, skips (with a warning through the
//!   [`Reporter`](crate::Reporter)) a target whose SDK is absent on this machine, then [`lock_source`];
//! - [`lock_source`]: pins every archive ([`pin::lock_entries`]), downloads, verifies (sha256) and stores each as a
//!   blob through the `url` kind's code ([`crate::url::ensure`], so mirrors, `--offline`, resumable downloads and the
//!   warm-path records are shared) and returns the [`Artifact::XmakeArchive`] entries plus the source's
//!   [`XmakeResolution`];
//! - [`ensure_archive`]: one archive, for lock and fetch alike.
//!
//! The phase-2 shape (`XMAKE_MAIN_REPO`, `XMAKE_GLOBALDIR` with `pkg_searchdirs`, …) is `hstore-build`'s
//! `InputShape::XmakePackages`.
//!
//! Host packages: xmake prefers a package it finds on the system (pkg-config, `/usr`) to installing one. hstore
//! records them (the lockfile's `host_packages`, the build log) rather than forbidding them: the sandbox's host base
//! system is already a fingerprinted input of the build key, so a host package is pinned as well as `/usr` is, and
//! forbidding it (`--policies=package.install_only`) would make every system tool xmake packages depend on (cmake,
//! ninja, python for pybind11 v3) build from source in the sandbox. A package that is neither pinned in xmake-repo
//! nor found on the host fails at lock.

pub mod pin;

use hstore_model::Sha256;
use hstore_store::Digest;

use crate::context::Fetcher;
use crate::evaluator::{LockEvaluator, XmakeProbeOutcome, XmakeProbeRequest};
use crate::lockfile::{Artifact, XmakeArchiveArtifact, XmakeResolution};
pub use pin::{
    Error, HostOrigin, HostPackage, Origin, ProbedPackage, ProbedUrl, XmakeArchive, XmakeLock,
    lock_entries,
};

/// Probes one `xmake_requires` source for each of its `targets` through `evaluator` (`request` names the source;
/// its `target` and `xmake_target` are set per target here: the `recipe` source's own target when it names one,
/// else the probed target), then locks what was reported with [`lock_source`]. A target whose SDK is absent on this
/// machine is reported as a warning and left out of the resolution, so `hstore build` for it fails naming it.
/// Returns the artifacts, the resolution (none when a probe failed) and every error.
pub async fn probe_and_lock(
    fetcher: &Fetcher,
    evaluator: &dyn LockEvaluator,
    request: XmakeProbeRequest<'_>,
    xmake_target: Option<&str>,
    targets: &[&str],
) -> (Vec<Artifact>, Option<XmakeResolution>, Vec<crate::Error>) {
    let label = format!("{}.{}", request.recipe.name, request.source);
    let mut reports = Vec::new();
    for &target in targets {
        let request = XmakeProbeRequest {
            target,
            xmake_target: xmake_target.unwrap_or(target),
            ..request
        };
        // The probe builds and runs in the sandbox for seconds to minutes: off the async workers.
        match run_blocking(|| evaluator.probe_xmake(&request)) {
            Ok(XmakeProbeOutcome::Packages(packages)) => {
                reports.push((target.to_owned(), packages));
            }
            Ok(XmakeProbeOutcome::HostPathAbsent { path }) => {
                fetcher.reporter().on_warning(&format!(
                    "not probing target `{target}` of `{label}`: its host path `{}` is absent on this machine, so \
                     its xmake packages are not locked (lock on a machine that has it to build `{target}`)",
                    path.display()
                ));
            }
            Err(source) => {
                let error = crate::Error::Probe {
                    source_name: label,
                    target: target.to_owned(),
                    source,
                };
                return (Vec::new(), None, vec![error]);
            }
        }
    }
    lock_source(fetcher, &reports, request.project, request.repo, &[]).await
}

/// Runs blocking `work` without stalling the runtime's other tasks: on a worker of a multi-thread runtime through
/// [`tokio::task::block_in_place`], else (a current-thread runtime, no runtime) in place.
fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Locks an `xmake_requires` source from what its probes reported (one list per target, as `(target, packages)`):
/// pins every
/// archive with [`lock_entries`], downloads, verifies and stores each as a blob, and records the host packages.
/// `project` and `repo` are the tree addresses the probe ran against; `previous` holds locked archives whose store
/// copies can be reused. Returns the artifacts (sorted by id) and the resolution, or every error.
pub async fn lock_source(
    fetcher: &Fetcher,
    reports: &[(String, Vec<ProbedPackage>)],
    project: Digest,
    repo: Digest,
    previous: &[Artifact],
) -> (Vec<Artifact>, Option<XmakeResolution>, Vec<crate::Error>) {
    let mut pins = Vec::new();
    let mut host_packages = Vec::new();
    let mut errors = Vec::new();
    for (target, packages) in reports {
        match lock_entries(packages, target) {
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
            matches!(artifact, Artifact::XmakeArchive(XmakeArchiveArtifact { id, sha256, .. }) if *id == pin.id && sha256.as_str() == pin.sha256)
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
    let sha256 = Sha256::new(pin.sha256.clone())?;
    // A plain download under the `url` kind's records (the same key a `url` source of this file uses), through the
    // one pinned-download skeleton; the warm path includes an imported store, which has the blob but no record.
    let pinned = crate::pinned::Pinned {
        id: pin.id.clone(),
        what: format!("`{}`", pin.url),
        label: pin.url.clone(),
        sha256: sha256.as_str(),
        records: &crate::url::RECORDS,
        record_key: sha256.to_string(),
        report: ("url", &pin.url),
    };
    let url = pin.url.clone();
    let stored = crate::pinned::ensure_blob(fetcher, &pinned, locked, url).await?;
    Ok(Artifact::XmakeArchive(XmakeArchiveArtifact {
        id: pin.id.clone().into(),
        package: pin.package.clone(),
        version: pin.version.clone(),
        target: pin.target.clone(),
        url: pin.url.clone(),
        sha256,
        file_name: pin.file_name.clone(),
        search_names: pin.search_names.clone(),
        address: stored.address,
        size: stored.size,
    }))
}
