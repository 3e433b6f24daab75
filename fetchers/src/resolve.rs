//! The orchestrator: [`Fetcher::lock`] turns recipes into a [`Lockfile`], [`Fetcher::fetch`] makes a store hold
//! everything a lockfile names.
//!
//! Dispatch is a `match` on [`SourceSpec`] (lock) and on [`Artifact`] (fetch), one arm per source kind, each
//! calling that kind's module (`git`, `crates`, `url`, `path`, `requirements`), which sees only the shared
//! [`Fetcher`] context (`context.rs`), never this module. A new kind is a new enum variant in `hstore-model`'s
//! `recipe`/`lockfile`, a new module here with an `ensure(fetcher, spec, locked) -> Artifact` function, and one arm in
//! each match (the compiler lists them: no match over kinds has a `_ =>` arm); see ARCHITECTURE.md's checklist. Which
//! sources a source reads ([`SourceSpec::reads`], ordering the lock topologically) and which artifacts are trees
//! ([`Artifact::tree`]) are the model's exhaustive matches, not lists here. We chose enum dispatch over a `Source`
//! trait object because every kind needs different inputs (a recipe directory, another source's tree, target tags)
//! and the set of kinds is closed and versioned with the lockfile format anyway.
//!
//! Invariants:
//! - Every kind's `ensure` is idempotent and cheap when the store already holds the artifact (one `stat`), which is
//!   what makes a warm `fetch` network-free and fast.
//! - Lock keeps pins: a source whose recipe table (`spec`) is unchanged keeps its locked artifacts unless it is
//!   named by `--update`. A `requirements` source also keeps its recorded index snapshot across recipe edits until
//!   `--update`. `path` sources are always re-hashed (their content is the pin) and `cargo_lock` sources
//!   are re-read from their (pinned) tree, reusing locked crate entries. An `xmake_requires` source is kept (its
//!   archives ensured in the store) only while its project and xmake-repo trees are the ones it was probed against;
//!   otherwise it is probed in the same pass, once every other source of every recipe is locked (the pinned xmake
//!   is a recipe built from them): [`Fetcher::lock`] asks the caller's [`LockEvaluator`] per target and locks what
//!   it reports ([`crate::xmake::probe_and_lock`]). Nothing is probed when another source already failed.
//! - Per-item failures are collected, not fatal: the run finishes what it can and returns every error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hstore_store::{Digest, Node, PathComponent, Store};

use crate::context::Fetcher;
use crate::crates::{self, CratePackage, Origin};
use crate::error::{Error, Result, blocking};
use crate::evaluator::{LockEvaluator, XmakeProbeRequest};
use crate::lockfile::{
    Artifact, CrateArtifact, GitArtifact, LockedRecipe, LockedSource, Lockfile, PathArtifact,
    Resolution, RustToolchainArtifact, UrlArtifact, XmakeResolution,
};
use crate::path::PathSpec;
use crate::recipe::{Recipe, SourceSpec};
use crate::requirements::{self, RequirementsRequest, WheelChoice};
use crate::url::UrlSpec;
use hstore_model::CommitId;

/// Which sources `lock` re-resolves even though their recipe is unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Update {
    /// None: keep every pin whose spec is unchanged.
    #[default]
    Nothing,
    /// All of them.
    Everything,
    /// These sources, as `source` or `recipe.source`.
    Sources(Vec<String>),
}

impl Update {
    fn covers(&self, recipe: &str, source: &str) -> bool {
        match self {
            Update::Nothing => false,
            Update::Everything => true,
            Update::Sources(names) => names.iter().any(|name| names_source(name, recipe, source)),
        }
    }

    /// Fails with [`Error::UnknownUpdate`] when a name given to `--update` is no source of `recipes` (as `source` or
    /// `recipe.source`): a typo must not silently keep every pin.
    pub fn check(&self, recipes: &[Recipe]) -> Result<()> {
        let Update::Sources(names) = self else {
            return Ok(());
        };
        let known: Vec<String> = recipes
            .iter()
            .flat_map(|recipe| {
                recipe
                    .sources
                    .keys()
                    .map(move |source| format!("{}.{source}", recipe.name))
            })
            .collect();
        for name in names {
            let found = recipes.iter().any(|recipe| {
                recipe
                    .sources
                    .keys()
                    .any(|source| names_source(name, &recipe.name, source))
            });
            if !found {
                return Err(Error::UnknownUpdate {
                    name: name.clone(),
                    closest: closest_name(name, &known),
                    known,
                });
            }
        }
        Ok(())
    }
}

/// Whether `name`, as given to `--update`, is `source` of `recipe` (`source` or `recipe.source`).
fn names_source(name: &str, recipe: &str, source: &str) -> bool {
    name == source
        || name
            .strip_prefix(recipe)
            .and_then(|rest| rest.strip_prefix('.'))
            == Some(source)
}

/// The name of `known` (`recipe.source`, or its `source` part) closest to `given` by edit distance, if it is close:
/// at most a third of the longer name's characters differ (and at least one may).
fn closest_name(given: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .flat_map(|full| {
            let bare = full
                .split_once('.')
                .map_or(full.as_str(), |(_, source)| source);
            [full.as_str(), bare]
        })
        .map(|candidate| (edit_distance(given, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= (given.chars().count().max(candidate.chars().count()) / 3).max(1)
        })
        .min()
        .map(|(_, candidate)| candidate.to_owned())
}

/// Levenshtein distance over characters (two rows; names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// An `xmake_requires` source the lock loop could not keep: probed after every other source is locked.
struct PendingProbe<'a> {
    recipe: &'a Recipe,
    source: &'a str,
    spec: &'a SourceSpec,
    project: Digest,
    repo: Digest,
}

/// What a source records beside its artifacts: a `requirements` source's resolution, an `xmake_requires` source's.
type Resolutions = (Option<Resolution>, Option<XmakeResolution>);

/// What the previous lockfile says about a `requirements` source's resolution.
#[derive(Clone, Copy, Debug, Default)]
struct PreviousResolution<'a> {
    /// Kept as it is (the source is unchanged and not named by `--update`).
    kept: Option<&'a Resolution>,
    /// The snapshot time to resolve against (absent under `--update`).
    snapshot: Option<&'a str>,
    /// The time this lock run started: the snapshot of sources resolved afresh (one per run, shared by its sources).
    now: &'a str,
}

impl Fetcher {
    /// Resolves every source of `recipes` (fetching into the store as it goes) into a lockfile, in one pass.
    /// `previous` supplies pins to keep; `lockfile_dir` anchors `path` sources; `evaluator` probes the
    /// `xmake_requires` sources that cannot be kept, after every other source is locked. Returns the lockfile and
    /// every per-item error; the lockfile is only complete when the error list is empty.
    pub async fn lock(
        &self,
        recipes: &[Recipe],
        previous: Option<&Lockfile>,
        lockfile_dir: &Path,
        update: &Update,
        evaluator: &dyn LockEvaluator,
    ) -> (Lockfile, Vec<Error>) {
        let mut lockfile = Lockfile::default();
        if let Err(error) = update.check(recipes) {
            return (lockfile, vec![error]);
        }
        let mut errors = Vec::new();
        let now = requirements::utc_now();
        // `xmake_requires` sources to probe once everything else is locked.
        let mut probes: Vec<PendingProbe<'_>> = Vec::new();
        for recipe in recipes {
            let previous_recipe = previous.and_then(|lock| lock.recipe(&recipe.name));
            let mut locked_recipe = LockedRecipe {
                name: recipe.name.clone(),
                sources: Vec::new(),
            };
            // A source is locked after every tree it reads (`SourceSpec::reads`).
            let ordered = lock_order(&recipe.sources);
            let mut trees: BTreeMap<String, Digest> = BTreeMap::new();
            for (name, spec) in ordered {
                let same_name =
                    previous_recipe.and_then(|r| r.sources.iter().find(|s| &s.name == name));
                let previous_source = same_name.filter(|s| &s.spec == spec);
                let keep = previous_source.is_some() && !update.covers(&recipe.name, name);
                let previous_xmake = previous_source
                    .and_then(|s| s.xmake.as_ref())
                    .filter(|_| keep);
                // A requirements source re-resolves against the snapshot it was locked at until `--update`.
                let resolution = PreviousResolution {
                    kept: previous_source
                        .and_then(|s| s.resolution.as_ref())
                        .filter(|_| keep),
                    snapshot: same_name
                        .and_then(|s| s.resolution.as_ref())
                        .filter(|_| !update.covers(&recipe.name, name))
                        .map(|resolution| resolution.exclude_newer.as_str()),
                    now: &now,
                };
                let previous_artifacts: Vec<&Artifact> = previous_source
                    .into_iter()
                    .flat_map(|s| s.artifacts.iter())
                    .filter_map(|id| previous.and_then(|lock| lock.artifact(id)))
                    .collect();
                let label = format!("{}.{name}", recipe.name);
                let result = self
                    .lock_source(
                        recipe,
                        name,
                        spec,
                        keep,
                        &previous_artifacts,
                        lockfile_dir,
                        &trees,
                        resolution,
                        previous_xmake,
                    )
                    .await;
                match result {
                    Ok((artifacts, mut source_errors, (resolution, xmake))) => {
                        if let [artifact] = artifacts.as_slice()
                            && let Some(tree) = artifact.tree()
                        {
                            trees.insert(name.clone(), tree);
                        }
                        if let SourceSpec::XmakeRequires { project, repo, .. } = spec
                            && xmake.is_none()
                            && let (Some(project), Some(repo)) =
                                (trees.get(project), trees.get(repo))
                        {
                            probes.push(PendingProbe {
                                recipe,
                                source: name,
                                spec,
                                project: *project,
                                repo: *repo,
                            });
                        }
                        locked_recipe.sources.push(LockedSource {
                            name: name.clone(),
                            spec: spec.clone(),
                            targets: recipe
                                .source_targets
                                .get(name)
                                .map(|targets| targets.iter().cloned().collect())
                                .unwrap_or_default(),
                            artifacts: artifacts.iter().map(|a| a.id().into()).collect(),
                            resolution,
                            xmake,
                        });
                        lockfile.artifacts.extend(artifacts);
                        errors.append(&mut source_errors);
                    }
                    Err(error) => {
                        errors.push(error.context(format!("failed to lock source `{label}`")));
                    }
                }
            }
            lockfile.recipes.push(locked_recipe);
        }
        lockfile.normalize();
        // Crates are stored in one shared batch (see `crates.rs`): publish it before a probe builds from them and
        // before the lockfile is written.
        if let Err(error) = self.store.commit_pending() {
            errors.push(error.into());
        }
        if errors.is_empty() {
            for probe in probes {
                self.probe_xmake(recipes, &mut lockfile, &probe, evaluator, &mut errors)
                    .await;
            }
            lockfile.normalize();
        }
        (lockfile, errors)
    }

    /// Probes one `xmake_requires` source through `evaluator` against the lock so far and completes its entry in
    /// `lockfile` (artifacts and resolution).
    async fn probe_xmake(
        &self,
        recipes: &[Recipe],
        lockfile: &mut Lockfile,
        probe: &PendingProbe<'_>,
        evaluator: &dyn LockEvaluator,
        errors: &mut Vec<Error>,
    ) {
        let label = format!("{}.{}", probe.recipe.name, probe.source);
        let SourceSpec::XmakeRequires { xmake, targets, .. } = probe.spec else {
            return;
        };
        // `Recipe::load` has checked that `xmake` names a `recipe` source.
        let Some(SourceSpec::Recipe {
            recipe: xmake_recipe,
            target: xmake_target,
            ..
        }) = probe.recipe.sources.get(xmake)
        else {
            errors.push(Error::InconsistentSource {
                source_name: label,
                problem: format!(
                    "is an `xmake_requires` source naming `{xmake}`, which is not a `recipe` source"
                ),
            });
            return;
        };
        let request = XmakeProbeRequest {
            recipes,
            lockfile: &*lockfile,
            recipe: probe.recipe,
            source: probe.source,
            target: "",
            project: probe.project,
            repo: probe.repo,
            xmake_recipe,
            xmake_target: "",
        };
        let targets: Vec<&str> = targets.keys().map(String::as_str).collect();
        let (artifacts, resolution, source_errors) = crate::xmake::probe_and_lock(
            self,
            evaluator,
            request,
            xmake_target.as_deref(),
            &targets,
        )
        .await;
        errors.extend(
            source_errors
                .into_iter()
                .map(|error| error.context(format!("failed to lock source `{label}`"))),
        );
        if let Some(locked) = lockfile
            .recipes
            .iter_mut()
            .find(|locked| locked.name == probe.recipe.name)
            .and_then(|locked| locked.sources.iter_mut().find(|s| s.name == probe.source))
        {
            locked.artifacts = artifacts.iter().map(|a| a.id().into()).collect();
            locked.xmake = resolution;
        }
        lockfile.artifacts.extend(artifacts);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the state is the lock loop's"
    )]
    async fn lock_source(
        &self,
        recipe: &Recipe,
        name: &str,
        spec: &SourceSpec,
        keep: bool,
        previous: &[&Artifact],
        lockfile_dir: &Path,
        trees: &BTreeMap<String, Digest>,
        resolution: PreviousResolution<'_>,
        previous_xmake: Option<&XmakeResolution>,
    ) -> Result<(Vec<Artifact>, Vec<Error>, Resolutions)> {
        let kept = if keep {
            previous.first().copied()
        } else {
            None
        };
        match spec {
            SourceSpec::Git {
                url,
                reference,
                submodules,
            } => {
                let artifact =
                    if let Some(locked @ Artifact::Git(GitArtifact { commit, .. })) = kept {
                        self.ensure_git(url, commit, *submodules, Some(locked))
                            .await?
                    } else {
                        let git = self.git.clone();
                        let (url_owned, reference) = (url.clone(), reference.clone());
                        let commit = blocking(move || git.resolve(&url_owned, &reference)).await?;
                        let commit = CommitId::new(commit)?;
                        self.ensure_git(url, &commit, *submodules, None).await?
                    };
                Ok((vec![artifact], Vec::new(), (None, None)))
            }
            SourceSpec::Url {
                url,
                sha256,
                unpack,
                strip_components,
            } => {
                let spec = UrlSpec {
                    url: url.clone(),
                    sha256: sha256.clone(),
                    unpack: *unpack,
                    strip_components: *strip_components,
                };
                Ok((
                    vec![crate::url::ensure(self, &spec, kept).await?],
                    Vec::new(),
                    (None, None),
                ))
            }
            SourceSpec::Path { path, exclude } => {
                let spec = PathSpec::new(recipe.dir(), path, lockfile_dir, exclude)?;
                Ok((
                    vec![crate::path::ensure(self, &spec, None).await?],
                    Vec::new(),
                    (None, None),
                ))
            }
            SourceSpec::RustToolchain { version, host } => {
                let name = SourceSpec::rust_toolchain_name(version, host);
                Ok((
                    vec![crate::rust_toolchain::ensure(self, &name, kept).await?],
                    Vec::new(),
                    (None, None),
                ))
            }
            // Another recipe's output: built, not fetched; `hstore lock` has checked the graph (recipe::check_graph).
            SourceSpec::Recipe { .. } => Ok((Vec::new(), Vec::new(), (None, None))),
            SourceSpec::CargoLock { source, path } => {
                let tree = trees.get(source).ok_or_else(|| Error::NotATree {
                    source_name: name.to_owned(),
                    needed: source.clone(),
                })?;
                let text =
                    read_text_in_tree(&self.store, tree, path, &format!("source `{source}`"))?
                        .ok_or_else(|| Error::CargoLock {
                            source_name: source.clone(),
                            path: path.clone(),
                            message: "no such file in the source's tree".into(),
                        })?;
                let packages = crates::parse_cargo_lock(&text, source, path)?;
                let previous: HashMap<&str, &Artifact> = if keep {
                    previous
                        .iter()
                        .map(|artifact| (artifact.id(), *artifact))
                        .collect()
                } else {
                    HashMap::new()
                };
                let (artifacts, errors) = self.ensure_crates(&packages, &previous).await;
                Ok((artifacts, errors, (None, None)))
            }
            SourceSpec::XmakeRequires { project, repo, .. } => {
                let tree = |needed: &String| {
                    trees.get(needed).copied().ok_or_else(|| Error::NotATree {
                        source_name: name.to_owned(),
                        needed: needed.clone(),
                    })
                };
                let (project, repo) = (tree(project)?, tree(repo)?);
                // Kept only when the probe's inputs are the same trees: a new project or xmake-repo commit can
                // change every package. Otherwise nothing is locked here: `lock` probes the source once every other
                // source is locked (the pinned xmake is built from them), see `probe_xmake`.
                match previous_xmake
                    .filter(|locked| locked.project == project && locked.repo == repo)
                {
                    Some(locked) => {
                        let mut artifacts = Vec::new();
                        for artifact in previous {
                            let Artifact::XmakeArchive(archive) = artifact else {
                                return Err(Error::InconsistentLockfile {
                                    artifact: artifact.id().to_owned(),
                                    problem: format!(
                                        "is listed by `xmake_requires` source `{}.{name}` but is a `{}` artifact",
                                        recipe.name,
                                        artifact.kind()
                                    ),
                                });
                            };
                            let pin = crate::xmake::XmakeArchive::from_artifact(archive);
                            artifacts.push(
                                crate::xmake::ensure_archive(self, &pin, Some(artifact)).await?,
                            );
                        }
                        Ok((artifacts, Vec::new(), (None, Some(locked.clone()))))
                    }
                    None => Ok((Vec::new(), Vec::new(), (None, None))),
                }
            }
            SourceSpec::Debian(debian) => {
                let kept: Vec<&Artifact> = if keep { previous.to_vec() } else { Vec::new() };
                Ok((
                    crate::debian::source::lock(self, name, debian, &kept).await?,
                    Vec::new(),
                    (None, None),
                ))
            }
            SourceSpec::Requirements {
                requirements,
                requirements_file,
                index,
                exclude_newer,
                targets,
            } => {
                // Requirement text is data: parsed here, before anything runs (see `requirements::input`).
                let inline = requirements.join("\n");
                let mut contents = None;
                if let Some(file) = requirements_file {
                    let (source, path) = file.split_once(':').unwrap_or((file.as_str(), ""));
                    let tree = trees.get(source).ok_or_else(|| Error::NotATree {
                        source_name: name.to_owned(),
                        needed: source.to_owned(),
                    })?;
                    contents = Some(
                        read_text_in_tree(&self.store, tree, path, &format!("source `{source}`"))?
                            .ok_or_else(|| Error::Requirements {
                                source_name: name.to_owned(),
                                message: format!("`{path}` is not a file in source `{source}`"),
                            })?,
                    );
                }
                let mut parts = vec![(
                    requirements::input::Origin::Inline {
                        recipe: &recipe.name,
                        source: name,
                    },
                    inline.as_str(),
                )];
                if let (Some(file), Some(contents)) = (requirements_file, &contents) {
                    parts.push((
                        requirements::input::Origin::File { file },
                        contents.as_str(),
                    ));
                }
                let request = RequirementsRequest {
                    source_name: name,
                    requirements: requirements::input::Requirements::parse(&parts)?,
                    index,
                    exclude_newer: exclude_newer.as_deref(),
                    targets,
                };
                let kept = resolution.kept.map(|kept| (kept, previous.to_vec()));
                let (artifacts, resolution, errors) = requirements::lock(
                    self,
                    &request,
                    kept,
                    resolution.snapshot.unwrap_or(resolution.now),
                )
                .await;
                Ok((artifacts, errors, (resolution, None)))
            }
        }
    }

    async fn ensure_git(
        &self,
        url: &str,
        commit: &CommitId,
        submodules: bool,
        locked: Option<&Artifact>,
    ) -> Result<Artifact> {
        let id = format!("git+{url}#{commit}");
        if let Some(locked) = locked
            && self.store.closure_complete(&locked.address())?
        {
            return Ok(locked.clone());
        }
        let git = self.git.clone();
        let store = Arc::clone(&self.store);
        let (url_owned, commit_owned) = (url.to_owned(), commit.to_string());
        let tree =
            blocking(move || git.fetch_tree(&store, &url_owned, &commit_owned, submodules)).await?;
        if let Some(locked) = locked
            && locked.address() != tree.address
        {
            return Err(Error::AddressDrift {
                id,
                expected: locked.address(),
                actual: tree.address,
            });
        }
        self.reporter.on_artifact("git", &format!("{url}#{commit}"));
        Ok(Artifact::Git(GitArtifact {
            id: id.into(),
            url: url.to_owned(),
            commit: commit.clone(),
            submodules: tree.submodules,
            address: tree.address,
            size: tree.size,
        }))
    }

    /// Ensures every package concurrently (the downloader bounds the network side); returns artifacts in input
    /// order and the errors.
    async fn ensure_crates(
        &self,
        packages: &[CratePackage],
        locked: &HashMap<&str, &Artifact>,
    ) -> (Vec<Artifact>, Vec<Error>) {
        let mut pending: FuturesUnordered<_> = packages
            .iter()
            .map(|package| async move {
                let id = package.id();
                let result = crates::ensure(self, package, locked.get(id.as_str()).copied()).await;
                (package, result)
            })
            .collect();
        let mut artifacts = Vec::new();
        let mut errors = Vec::new();
        while let Some((package, result)) = pending.next().await {
            match result {
                Ok(artifact) => artifacts.push(artifact),
                Err(error) => {
                    errors.push(error.context(format!(
                        "failed to fetch crate `{}@{}`",
                        package.name, package.version
                    )));
                }
            }
        }
        artifacts.sort_by(|a, b| a.id().cmp(b.id()));
        (artifacts, errors)
    }

    /// Makes the store hold every artifact of `lockfile` (paths resolved against `lockfile_dir`). Returns the
    /// per-artifact errors; empty means the closure is complete. Each artifact carries all its refetch needs; the
    /// recipes' specs are read only to name an artifact's source in errors.
    pub async fn fetch(&self, lockfile: &Lockfile, lockfile_dir: &Path) -> Vec<Error> {
        // Which source each artifact came from, for errors, and the other artifacts of that source (a Debian base
        // is unpacked from its source's packages).
        let mut labels: BTreeMap<&str, String> = BTreeMap::new();
        let mut siblings: BTreeMap<&str, Vec<&Artifact>> = BTreeMap::new();
        for recipe in &lockfile.recipes {
            for source in &recipe.sources {
                let of_source: Vec<&Artifact> = source
                    .artifacts
                    .iter()
                    .filter_map(|id| lockfile.artifact(id))
                    .collect();
                for id in &source.artifacts {
                    labels
                        .entry(id.as_str())
                        .or_insert_with(|| format!("{}.{}", recipe.name, source.name));
                    siblings
                        .entry(id.as_str())
                        .or_insert_with(|| of_source.clone());
                }
            }
        }
        let mut pending: FuturesUnordered<_> = lockfile
            .artifacts
            .iter()
            .map(|artifact| {
                let label = labels.get(artifact.id()).map(String::as_str);
                let siblings = siblings.get(artifact.id()).map_or(&[][..], Vec::as_slice);
                async move {
                    (
                        artifact,
                        label,
                        self.fetch_artifact(artifact, siblings, lockfile_dir).await,
                    )
                }
            })
            .collect();
        let mut errors = Vec::new();
        while let Some((artifact, label, result)) = pending.next().await {
            if let Err(error) = result {
                let of_source =
                    label.map_or_else(String::new, |label| format!(" (source `{label}`)"));
                errors
                    .push(error.context(format!("failed to fetch `{}`{of_source}", artifact.id())));
            }
        }
        // Crates are stored in one shared batch (see `crates.rs`): publish it before the gc root is registered.
        if let Err(error) = self.store.commit_pending() {
            errors.push(error.into());
        }
        errors
    }

    async fn fetch_artifact(
        &self,
        artifact: &Artifact,
        siblings: &[&Artifact],
        lockfile_dir: &Path,
    ) -> Result<()> {
        if self.store.closure_complete(&artifact.address())? {
            return Ok(());
        }
        match artifact {
            Artifact::Git(GitArtifact {
                url,
                commit,
                submodules,
                ..
            }) => {
                // A source locked with `submodules = false` lists none; one locked with `submodules = true` lists
                // every one placed. Where none was placed (none declared, or all `update = none`) both choices write
                // the same tree, so the list alone says how to rebuild it.
                self.ensure_git(url, commit, !submodules.is_empty(), Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::Crate(CrateArtifact {
                name,
                version,
                source,
                sha256,
                commit,
                url,
                ..
            }) => {
                let origin = match (sha256, commit, url) {
                    (Some(sha256), _, _) => Origin::Registry {
                        index: String::new(),
                        sha256: sha256.clone(),
                    },
                    (None, Some(commit), Some(url)) => Origin::Git {
                        url: url.clone(),
                        commit: commit.clone(),
                    },
                    _ => {
                        return Err(Error::UnsupportedCrateSource {
                            name: name.clone(),
                            version: version.clone(),
                            source_id: source.clone(),
                        });
                    }
                };
                let package = CratePackage {
                    name: name.clone(),
                    version: version.clone(),
                    source: source.clone(),
                    origin,
                };
                crates::ensure(self, &package, Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::Url(UrlArtifact {
                url,
                sha256,
                unpack,
                strip_components,
                ..
            }) => {
                let spec = UrlSpec {
                    url: url.clone(),
                    sha256: sha256.clone(),
                    unpack: *unpack,
                    strip_components: *strip_components,
                };
                crate::url::ensure(self, &spec, Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::Wheel(wheel) => {
                let choice = WheelChoice::from_artifact(wheel);
                requirements::ensure_wheel(self, &choice, Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::RustToolchain(RustToolchainArtifact { toolchain, .. }) => {
                crate::rust_toolchain::ensure(self, toolchain, Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::XmakeArchive(archive) => {
                let pin = crate::xmake::XmakeArchive::from_artifact(archive);
                crate::xmake::ensure_archive(self, &pin, Some(artifact))
                    .await
                    .map(|_| ())
            }
            Artifact::Deb(deb) => crate::debian::source::ensure_deb(self, deb, Some(artifact))
                .await
                .map(|_| ()),
            Artifact::DebianBase(base) => {
                // Its packages first (each fetch is idempotent: the store holds one copy however many ask).
                let mut debs = Vec::new();
                for sibling in siblings {
                    if let Artifact::Deb(deb) = sibling {
                        debs.push(
                            crate::debian::source::ensure_deb(self, deb, Some(sibling)).await?,
                        );
                    }
                }
                crate::debian::source::ensure_base(self, base.clone(), &debs, true)
                    .await
                    .map(|_| ())
            }
            Artifact::Path(PathArtifact { path, id, .. }) => {
                let exclude = PathSpec::excludes_from_id(path, id).ok_or_else(|| {
                    Error::InconsistentLockfile {
                        artifact: id.to_string(),
                        problem: format!("is not the id of a `path` artifact for `{path}`"),
                    }
                })?;
                let spec = PathSpec::new(lockfile_dir, path, lockfile_dir, &exclude)?;
                crate::path::ensure(self, &spec, Some(artifact))
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// `sources` in the order `lock` takes them: each after the sources it [reads](SourceSpec::reads) (a topological
/// sort, ties by name). Sources in a cycle, or reading one, come last in name order; locking them then fails with
/// [`Error::NotATree`], naming the source they wait for.
fn lock_order(sources: &BTreeMap<String, SourceSpec>) -> Vec<(&String, &SourceSpec)> {
    let mut ordered: Vec<(&String, &SourceSpec)> = Vec::with_capacity(sources.len());
    let mut waiting: Vec<(&String, &SourceSpec)> = sources.iter().collect();
    while !waiting.is_empty() {
        let ready = waiting.iter().position(|(_, spec)| {
            spec.reads().iter().all(|read| {
                !sources.contains_key(*read) || ordered.iter().any(|(name, _)| name == read)
            })
        });
        match ready {
            Some(index) => ordered.push(waiting.remove(index)),
            None => ordered.append(&mut waiting),
        }
    }
    ordered
}

/// Reads the UTF-8 file at `path` (`/`-separated) inside tree `root`; `Ok(None)` if there is no such file. `what`
/// names the tree for errors (``source `app` ``). An object missing on the way is [`Error::MissingInTree`] and bytes
/// that are not UTF-8 are [`Error::NotText`]: a lockfile or requirements file is never read as empty or mangled text.
pub fn read_text_in_tree(
    store: &Store,
    root: &Digest,
    path: &str,
    what: &str,
) -> Result<Option<String>> {
    let missing = |digest: &Digest| Error::MissingInTree {
        what: what.to_owned(),
        tree: *root,
        path: path.to_owned(),
        missing: *digest,
    };
    let directory_at = |digest: &Digest| -> Result<hstore_store::Directory> {
        store.get_directory(digest)?.ok_or_else(|| missing(digest))
    };
    let mut directory = directory_at(root)?;
    let components: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let Some((last, parents)) = components.split_last() else {
        return Ok(None);
    };
    for component in parents {
        let Ok(name) = PathComponent::new(component.as_bytes().to_vec()) else {
            return Ok(None);
        };
        match directory.get(&name) {
            Some(Node::Directory { digest, .. }) => directory = directory_at(digest)?,
            _ => return Ok(None),
        }
    }
    let Ok(name) = PathComponent::new(last.as_bytes().to_vec()) else {
        return Ok(None);
    };
    match directory.get(&name) {
        Some(Node::File { digest, .. }) => {
            let bytes = store.read_blob(digest)?.ok_or_else(|| missing(digest))?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|error| Error::NotText {
                    what: what.to_owned(),
                    tree: *root,
                    path: path.to_owned(),
                    offset: error.utf8_error().valid_up_to(),
                })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_locked_after_the_trees_they_read() {
        let git = SourceSpec::Git {
            url: "file:///repo".into(),
            reference: hstore_model::GitRef::new("HEAD").unwrap(),
            submodules: true,
        };
        let cargo_lock = |source: &str| SourceSpec::CargoLock {
            source: source.into(),
            path: "Cargo.lock".into(),
        };
        let sources: BTreeMap<String, SourceSpec> = [
            ("a-crates".to_owned(), cargo_lock("z-code")),
            ("b-loop".to_owned(), cargo_lock("c-loop")),
            ("c-loop".to_owned(), cargo_lock("b-loop")),
            ("m-vendored".to_owned(), cargo_lock("a-crates")),
            ("z-code".to_owned(), git),
        ]
        .into_iter()
        .collect();
        let order: Vec<&str> = lock_order(&sources)
            .into_iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            order,
            ["z-code", "a-crates", "m-vendored", "b-loop", "c-loop"]
        );
    }

    #[test]
    fn update_names_match_source_or_recipe_dot_source_only() {
        assert!(names_source("top", "g", "top"));
        assert!(names_source("g.top", "g", "top"));
        assert!(!names_source("gg.top", "g", "top"));
        assert!(!names_source("g.to", "g", "top"));
        assert!(!names_source("g", "g", "top"));
    }

    #[test]
    fn the_closest_source_is_offered_only_when_close() {
        let known = vec!["app.crates".to_owned(), "app.code".to_owned()];
        assert_eq!(closest_name("crate", &known).as_deref(), Some("crates"));
        assert_eq!(
            closest_name("app.cdoe", &known).as_deref(),
            Some("app.code")
        );
        assert_eq!(closest_name("zzzzzz", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
