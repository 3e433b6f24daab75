//! hstore-build: turning recipe + lockfile + target into a [`BuildPlan`] ([`plan`]), keying it, looking it up,
//! and — on a miss — running it in the sandbox (`hstore-sandbox`, which knows nothing of recipes, cargo or
//! records), its output stored as a tree and recorded under its key ([`record`]). Also owned here: the phase-2 input
//! shapes ([`inputs`]: trees, single files, cargo vendor directories, wheelhouses, xmake packages, other recipes'
//! outputs), the build graph
//! ([`graph`]: dependency order, keys that include dependencies' keys, `-j N`), installing outputs under a prefix
//! ([`install`]), `--check` diffs ([`diff`]), deployment cases ([`case`]) and the xmake probe ([`xmake_probe`]:
//! `hstore-fetchers`' [`LockEvaluator`](hstore_fetchers::LockEvaluator) for `xmake_requires` sources, which builds
//! the pinned xmake and evaluates the project in the sandbox at lock).
//!
//! The build key (ARCHITECTURE.md, "Build") is BLAKE3 over a canonical JSON document of everything that can change the
//! output: [`BUILDER_VERSION`], the recipe name, the build script and environment, the target's name, host paths and
//! tools, every input's address and shape, and the host fingerprints (base system, declared host paths, host tool
//! output). Same key → cache hit, no rebuild. Nothing is recorded unless the script succeeded and its output was
//! stored, so a failed or killed build leaves only temp files (collected by gc).

pub mod case;
pub mod diff;
pub mod error;
pub mod graph;
pub mod inputs;
pub mod install;
pub mod plan;
pub mod provenance;
pub mod record;
pub mod sbom;
pub mod xmake_probe;

use std::collections::BTreeMap;
use std::path::PathBuf;

use hstore_store::Digest;
use serde::Serialize;

use hstore_sandbox::HostTool;

pub use case::{DeploymentCase, LocalSource, local_sources, select_components};
pub use diff::{TreeDifference, diff_trees};
pub use error::{BuildError, BuildError as Error, Result};
pub use graph::{BuildGraph, GraphEvent, GraphNode, plan_graph, run_graph};
pub use inputs::{
    GitReplacement, Input, InputShape, VendoredCrate, XmakeArchiveInput, xmake_global_conf,
};
pub use install::{InstallReport, install};
pub use plan::{PlanContext, SourceOverride, plan, select_recipes};
pub use record::{
    BUILD_NAMESPACE, BUILD_ROOT_PREFIX, BuildOptions, BuildOutcome, BuildRecord, CheckOutcome,
    PreparedBuild, RECORD_KINDS, RECORDS, build, build_prepared, find_record, input_env_name,
    install_record, prepare, prepare_from_records, record_kinds,
};
pub use xmake_probe::{ProbeEvent, XmakeEvaluator, XmakeProbe, xmake_probe_plan};

/// Bumped whenever the sandbox or the input shapes change in a way that can change outputs.
// v2 (issue 20): a root-run build is a build user (host-root files show as nobody), /etc holds only the loader files
// and CA certificates, /proc/cmdline and others read empty, /proc/self/cgroup shows `/`.
pub const BUILDER_VERSION: &str = "hstore-builder-v2";

/// Where inputs appear inside the sandbox: `/src/<name>`.
pub const INPUTS_DIR: &str = "/src";

/// Everything one build needs, already resolved to store addresses (made by [`plan()`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The recipe's name.
    pub recipe: String,
    /// The target's name (`--target`).
    pub target: String,
    /// The `[build] script`.
    pub script: String,
    /// `[build] env` merged with `[targets.T] env` (target wins).
    pub env: BTreeMap<String, String>,
    /// The recipe's sources, by name.
    pub inputs: Vec<Input>,
    /// The input whose tree is the sandbox's root (`[build] base` / `[targets.T] base`, a `debian` source); `None`:
    /// the host's base system, read-only.
    pub base: Option<String>,
    /// `[targets.T] host_paths`, already expanded (bound read-only at the same path).
    pub host_paths: Vec<PathBuf>,
    /// `[targets.T] host_tools`: commands whose output goes into the key.
    pub host_tools: Vec<String>,
    /// `[build.limits]` overridden by `[targets.T.limits]`; not part of the key.
    pub limits: hstore_sandbox::LimitOverrides,
    /// Lines hstore writes at the head of the build log (where an input came from when that is not the lockfile);
    /// derived from the inputs, so not part of the key themselves.
    pub notes: Vec<String>,
}

/// The name of the host tools' fingerprint in a key's fingerprints (and a record's).
pub const HOST_TOOLS_FINGERPRINT: &str = "host-tools";

/// The name of the base tree's entry in a key's fingerprints: `SOURCE ADDRESS` of the plan's base.
pub const BASE_FINGERPRINT: &str = "base";

/// The fingerprints for the build key: the root the build sees — the plan's base tree (its source and address,
/// [`BASE_FINGERPRINT`]) or else the host's base system — then declared host paths and host tools when present.
/// With a base, nothing of the host's `/usr` is read or keyed. A host tool is written as a command line
/// (`nvcc --version`); a leading `~/` is the invoking user's home. The base system's file contents are remembered
/// in the store's `cache-v1/` (see [`hstore_sandbox::fingerprint`]).
pub fn fingerprints(
    store: &hstore_store::Store,
    plan: &BuildPlan,
    host_tools: &[String],
) -> Result<BTreeMap<String, String>> {
    let host_paths = &plan.host_paths;
    let mut fingerprints = BTreeMap::new();
    if let Some((name, tree)) = plan.base_input()? {
        fingerprints.insert(BASE_FINGERPRINT.to_owned(), format!("{name} {tree}"));
    } else {
        let content_cache = store.root().join(hstore_store::layout::CACHE_DIR);
        fingerprints.insert(
            "base-system".to_owned(),
            hstore_sandbox::fingerprint_base_system(Some(&content_cache))?.to_string(),
        );
    }
    if !host_paths.is_empty() {
        fingerprints.insert(
            "host-paths".to_owned(),
            hstore_sandbox::fingerprint_host_paths(host_paths)?.to_string(),
        );
    }
    if !host_tools.is_empty() {
        let tools: Vec<HostTool> = host_tools
            .iter()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.next().map(|program| HostTool::new(program, words))
            })
            .collect();
        fingerprints.insert(
            HOST_TOOLS_FINGERPRINT.to_owned(),
            hstore_sandbox::fingerprint_host_tools(&tools)?.to_string(),
        );
    }
    Ok(fingerprints)
}

/// Everything a build key is computed from, by reference: made from a [`BuildPlan`] ([`BuildPlan::key`]) or from a
/// provenance statement's named inputs ([`provenance::verify`]), so both hash the same document.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// [`BUILDER_VERSION`] of the builder that keyed it.
    pub builder: &'a str,
    /// The recipe's name.
    pub recipe: &'a str,
    /// The target's name.
    pub target: &'a str,
    /// The build script.
    pub script: &'a str,
    /// The build environment.
    pub env: &'a BTreeMap<String, String>,
    /// The target's host paths.
    pub host_paths: &'a [PathBuf],
    /// The target's host tool command lines.
    pub host_tools: &'a [String],
    /// The host fingerprints.
    pub fingerprints: &'a BTreeMap<String, String>,
}

/// The document the build key hashes; field order is part of the format.
#[derive(Serialize)]
struct KeyDocument<'a> {
    builder: &'a str,
    recipe: &'a str,
    target: &'a str,
    script: &'a str,
    env: &'a BTreeMap<String, String>,
    inputs: Vec<(&'a str, String)>,
    host_paths: &'a [PathBuf],
    host_tools: &'a [String],
    fingerprints: &'a BTreeMap<String, String>,
}

impl KeyParts<'_> {
    /// The build key of these parts with `inputs` (each input's name and [`InputShape`]), in any order.
    /// Fails only when the parts cannot be written as the key's JSON (a host path that is not UTF-8): an empty
    /// document would give every such build the same key.
    pub fn key<'i>(
        &self,
        inputs: impl IntoIterator<Item = (&'i str, &'i InputShape)>,
    ) -> Result<Digest> {
        let mut inputs: Vec<(&str, String)> = inputs
            .into_iter()
            .map(|(name, shape)| (name, shape.key_text()))
            .collect();
        inputs.sort();
        let document = KeyDocument {
            builder: self.builder,
            recipe: self.recipe,
            target: self.target,
            script: self.script,
            env: self.env,
            inputs,
            host_paths: self.host_paths,
            host_tools: self.host_tools,
            fingerprints: self.fingerprints,
        };
        let bytes = serde_json::to_vec(&document).map_err(|source| BuildError::KeyEncoding {
            recipe: self.recipe.to_owned(),
            target: self.target.to_owned(),
            source,
        })?;
        Ok(Digest::of_bytes(&bytes))
    }
}

impl BuildPlan {
    /// The base input's name and tree address, when the plan has a base.
    pub fn base_input(&self) -> Result<Option<(&str, Digest)>> {
        let Some(base) = &self.base else {
            return Ok(None);
        };
        match self
            .inputs
            .iter()
            .find(|input| &input.name == base)
            .map(|input| &input.shape)
        {
            Some(InputShape::Tree(tree)) => Ok(Some((base.as_str(), *tree))),
            _ => Err(BuildError::InvalidBase {
                recipe: self.recipe.clone(),
                target: self.target.clone(),
                base: base.clone(),
            }),
        }
    }

    /// What this plan's key is computed from, given the host fingerprints.
    pub fn key_parts<'a>(&'a self, fingerprints: &'a BTreeMap<String, String>) -> KeyParts<'a> {
        KeyParts {
            builder: BUILDER_VERSION,
            recipe: &self.recipe,
            target: &self.target,
            script: &self.script,
            env: &self.env,
            host_paths: &self.host_paths,
            host_tools: &self.host_tools,
            fingerprints,
        }
    }

    /// The build key, given the host fingerprints (see [`hstore_sandbox::fingerprint`]); see [`KeyParts::key`].
    pub fn key(&self, fingerprints: &BTreeMap<String, String>) -> Result<Digest> {
        self.key_parts(fingerprints).key(
            self.inputs
                .iter()
                .map(|input| (input.name.as_str(), &input.shape)),
        )
    }
}
