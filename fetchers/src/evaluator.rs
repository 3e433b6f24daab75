//! [`LockEvaluator`]: what `lock` asks of a package manager that must run in the sandbox to be resolved — today
//! xmake, whose packages only the pinned xmake can evaluate (hstore does not re-implement its Lua).
//!
//! The trait is defined here, where the one lock pass ([`crate::Fetcher::lock`]) calls it, and implemented by the
//! crate that can build (`hstore-build`'s `XmakeEvaluator`, which builds the pinned xmake and runs the probe in the
//! sandbox); the CLI constructs the implementation and passes it in (uv's `BuildContext` inversion).
//! So this crate never depends on the build crate, and lock stays one pass.
//!
//! Contract: an evaluator answers from the request alone (the trees and the pinned tool it names) and does not
//! touch the lockfile; whatever it runs is its own affair (keyed and cached like a build). What it answers is data
//! ([`ProbedPackage`]s), pinned and downloaded by this crate ([`crate::xmake`]) like any other source.

use std::path::PathBuf;

use hstore_store::Digest;

use crate::lockfile::Lockfile;
use crate::recipe::Recipe;
use crate::xmake::pin::ProbedPackage;

/// The error an evaluator fails with: its own type (the build crate's), kept whole as the cause so its hint still
/// reaches the user.
pub type EvaluatorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Evaluates, at lock, the sources whose resolution only a sandboxed tool can compute.
pub trait LockEvaluator: Sync {
    /// Which packages the pinned xmake would use for one target of an `xmake_requires` source, or that this
    /// machine cannot tell (the target's SDK is absent).
    fn probe_xmake(
        &self,
        request: &XmakeProbeRequest<'_>,
    ) -> Result<XmakeProbeOutcome, EvaluatorError>;
}

/// Everything one xmake probe needs, resolved by the lock pass.
#[derive(Debug, Clone, Copy)]
pub struct XmakeProbeRequest<'a> {
    /// Every recipe being locked (the pinned xmake is one of them, with whatever it depends on).
    pub recipes: &'a [Recipe],
    /// The lock so far: every source except the `xmake_requires` sources still to be probed, so the pinned xmake
    /// can be planned and built from it.
    pub lockfile: &'a Lockfile,
    /// The recipe holding the `xmake_requires` source.
    pub recipe: &'a Recipe,
    /// The source's name.
    pub source: &'a str,
    /// The target to probe.
    pub target: &'a str,
    /// The locked project tree (the source's `xmake_requires`).
    pub project: Digest,
    /// The locked xmake-repo tree (the source's `repo`).
    pub repo: Digest,
    /// The recipe whose output holds `bin/xmake` (the source's `xmake`, a `recipe` source).
    pub xmake_recipe: &'a str,
    /// The target to build that recipe for (the `recipe` source's `target`, else the probed target).
    pub xmake_target: &'a str,
}

/// What an evaluator answers for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmakeProbeOutcome {
    /// Every package xmake would use for the target (the requires and their dependencies).
    Packages(Vec<ProbedPackage>),
    /// The target was not probed: a host path it declares (its SDK) is absent on this machine.
    HostPathAbsent {
        /// The absent path, expanded.
        path: PathBuf,
    },
}

/// A [`LockEvaluator`] for runs that cannot evaluate anything (no sandbox): every request fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvaluator;

/// [`NoEvaluator`]'s answer.
#[derive(Debug, thiserror::Error)]
#[error("this lock runs without an evaluator, so xmake packages cannot be probed")]
pub struct NoEvaluatorError;

impl LockEvaluator for NoEvaluator {
    fn probe_xmake(
        &self,
        _request: &XmakeProbeRequest<'_>,
    ) -> Result<XmakeProbeOutcome, EvaluatorError> {
        Err(Box::new(NoEvaluatorError))
    }
}
