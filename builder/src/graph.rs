//! The build graph (ARCHITECTURE.md, "The build graph"): (recipe, target) nodes, with an edge for every
//! `recipe = "NAME"` source the target uses (one limited to other targets by `targets = [...]` adds none).
//!
//! [`plan_graph`] walks the graph from the requested recipes depth-first and plans each node after its
//! dependencies, so the nodes come out in dependency order and a dependent's key can include its dependencies'
//! keys: every key is known before anything runs (like Nix's input-addressed derivations), a changed dependency
//! changes its dependents' keys and nothing else's, and `--dry-run` can say exactly what is cached. A command that
//! only looks (`--dry-run`, `log`) plans with [`PlanContext::keys_from_records`]: a node with host tools takes its
//! key from a matching record and runs no tool (see [`prepare_from_records`]). A cycle is an
//! error naming the chain (`hstore lock` refuses it first; this check keeps a stale lockfile from looping).
//!
//! [`run_graph`] builds the nodes in that order, at most `jobs` at a time: a node starts once every dependency is
//! built (its output is bound at `$src_NAME`), each in its own sandbox with its own scratch directory and log. After
//! a failure no further node starts; the builds already running finish and are recorded, so their work is kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

use hstore_model::lockfile::Lockfile;
use hstore_model::recipe::{Recipe, SourceSpec};
use hstore_store::{Digest, Store};

use crate::BuildPlan;
use crate::error::{BuildError, Result};
use crate::inputs::InputShape;
use crate::plan::{PlanContext, plan};
use crate::record::{
    BuildOptions, BuildOutcome, PreparedBuild, build_prepared, find_record, prepare,
    prepare_from_records,
};

/// One (recipe, target) of the graph, planned and keyed.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// The recipe's name.
    pub recipe: String,
    /// The target.
    pub target: String,
    /// The plan; its `recipe` inputs get their dependency's output just before the build starts.
    pub plan: BuildPlan,
    /// The key and fingerprints.
    pub prepared: PreparedBuild,
    /// Indices of the nodes it reads (all earlier in [`BuildGraph::nodes`]).
    pub dependencies: Vec<usize>,
    /// The dependencies its output needs at run time (`runtime = true` sources): a subset of `dependencies`.
    pub runtime_dependencies: Vec<usize>,
    /// Whether this node was asked for (rather than only needed by one that was).
    pub requested: bool,
}

/// The nodes in dependency order (every node after the ones it reads).
#[derive(Debug, Clone, Default)]
pub struct BuildGraph {
    /// See the type docs.
    pub nodes: Vec<GraphNode>,
}

impl BuildGraph {
    /// The run-time closure of `node`: the nodes whose outputs it needs at run time, through `runtime = true`
    /// sources, transitively, dependencies before dependents, ending with `node`. Build-time-only dependencies (a
    /// compiler, xmake) and what only they need are left out, as Spack leaves out `build` dependencies.
    pub fn runtime_closure(&self, node: usize) -> Vec<usize> {
        let mut closure = Vec::new();
        let mut stack = vec![(node, false)];
        while let Some((current, expanded)) = stack.pop() {
            if closure.contains(&current) {
                continue;
            }
            if expanded {
                closure.push(current);
                continue;
            }
            stack.push((current, true));
            for &dependency in self.nodes[current].runtime_dependencies.iter().rev() {
                stack.push((dependency, false));
            }
        }
        closure
    }

    /// Whether `node` has a usable record in `store` already (a cache hit that runs nothing).
    pub fn is_cached(&self, store: &Store, node: usize) -> Result<bool> {
        Ok(find_record(store, &self.nodes[node].prepared.key)?.is_some())
    }
}

/// Plans the graph of `requested` recipes for `target`: every dependency, planned, keyed and checked (inputs in the
/// store, host paths present) before anything runs. `all` is every recipe of the recipes directory.
pub fn plan_graph(
    store: &Store,
    all: &[Recipe],
    requested: &[Recipe],
    target: &str,
    lockfile: &Lockfile,
    lockfile_path: &Path,
    context: &PlanContext,
) -> Result<BuildGraph> {
    let mut planner = Planner {
        store,
        all,
        lockfile,
        lockfile_path,
        context,
        graph: BuildGraph::default(),
        index: BTreeMap::new(),
        stack: Vec::new(),
    };
    for recipe in requested {
        let node = planner.visit(recipe, target)?;
        planner.graph.nodes[node].requested = true;
    }
    Ok(planner.graph)
}

struct Planner<'a> {
    store: &'a Store,
    all: &'a [Recipe],
    lockfile: &'a Lockfile,
    lockfile_path: &'a Path,
    context: &'a PlanContext,
    graph: BuildGraph,
    index: BTreeMap<(String, String), usize>,
    /// The path from a requested node to the one being visited, for cycle detection.
    stack: Vec<(String, String)>,
}

impl Planner<'_> {
    fn visit(&mut self, recipe: &Recipe, target: &str) -> Result<usize> {
        let id = (recipe.name.clone(), target.to_owned());
        if let Some(&node) = self.index.get(&id) {
            return Ok(node);
        }
        if let Some(start) = self.stack.iter().position(|entry| *entry == id) {
            let mut chain: Vec<String> = self.stack[start..]
                .iter()
                .map(|(recipe, target)| format!("{recipe} ({target})"))
                .collect();
            chain.push(format!("{} ({target})", recipe.name));
            return Err(BuildError::Cycle { chain });
        }
        self.stack.push(id.clone());
        let mut dependencies = Vec::new();
        let mut runtime_dependencies = Vec::new();
        let mut dependency_keys = BTreeMap::new();
        // A `recipe` source limited to other targets is no edge of this node.
        for (source, spec) in recipe.sources_for(target) {
            let SourceSpec::Recipe {
                recipe: dependency,
                target: dependency_target,
                runtime,
            } = spec
            else {
                continue;
            };
            let dependency_target = dependency_target.as_deref().unwrap_or(target);
            let all = self.all;
            let Some(dependency_recipe) = all.iter().find(|r| &r.name == dependency) else {
                return Err(BuildError::UnknownDependency {
                    recipe: recipe.name.clone(),
                    file: recipe.file.clone(),
                    source_name: source.clone(),
                    dependency: dependency.clone(),
                });
            };
            let node = self.visit(dependency_recipe, dependency_target)?;
            dependencies.push(node);
            if *runtime {
                runtime_dependencies.push(node);
            }
            dependency_keys.insert(source.clone(), self.graph.nodes[node].prepared.key);
        }
        self.stack.pop();
        let plan = plan(
            recipe,
            target,
            self.lockfile,
            self.lockfile_path,
            self.context,
            &dependency_keys,
        )?;
        let prepared = if self.context.keys_from_records {
            prepare_from_records(self.store, &plan)?
        } else {
            prepare(self.store, &plan)?
        };
        dependencies.sort_unstable();
        dependencies.dedup();
        runtime_dependencies.sort_unstable();
        runtime_dependencies.dedup();
        self.graph.nodes.push(GraphNode {
            recipe: recipe.name.clone(),
            target: target.to_owned(),
            plan,
            prepared,
            dependencies,
            runtime_dependencies,
            requested: false,
        });
        let node = self.graph.nodes.len() - 1;
        self.index.insert(id, node);
        Ok(node)
    }
}

/// What [`run_graph`] reports as it goes, from the calling thread.
#[derive(Debug)]
pub enum GraphEvent<'a> {
    /// A node's build (or cache lookup) starts.
    Started(&'a GraphNode),
    /// A node finished.
    Finished(&'a GraphNode, &'a BuildOutcome),
}

/// Builds every node of `graph` in dependency order, at most `jobs` at once; see the module docs. Returns each
/// node's outcome, by node index. On failure, returns the first error after the running builds finished.
pub fn run_graph(
    store: &Store,
    graph: &BuildGraph,
    options: &BuildOptions,
    jobs: usize,
    mut on_event: impl FnMut(GraphEvent<'_>),
) -> Result<Vec<BuildOutcome>> {
    let jobs = jobs.max(1);
    let count = graph.nodes.len();
    let mut outcomes: Vec<Option<BuildOutcome>> = vec![None; count];
    let mut started = vec![false; count];
    let mut failure: Option<BuildError> = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<(usize, Result<BuildOutcome>)>();
        let mut running = 0;
        loop {
            while failure.is_none() && running < jobs {
                let ready = (0..count).find(|&node| {
                    !started[node]
                        && graph.nodes[node]
                            .dependencies
                            .iter()
                            .all(|&dependency| outcomes[dependency].is_some())
                });
                let Some(node) = ready else {
                    break;
                };
                started[node] = true;
                let mut plan = graph.nodes[node].plan.clone();
                for input in &mut plan.inputs {
                    if let InputShape::Output {
                        recipe,
                        target,
                        output,
                        ..
                    } = &mut input.shape
                    {
                        *output = graph.nodes[node]
                            .dependencies
                            .iter()
                            .find(|&&dependency| {
                                graph.nodes[dependency].recipe == *recipe
                                    && graph.nodes[dependency].target == *target
                            })
                            .and_then(|&dependency| outcomes[dependency].as_ref())
                            .map(|outcome| outcome.record.output);
                    }
                }
                on_event(GraphEvent::Started(&graph.nodes[node]));
                let prepared = graph.nodes[node].prepared.clone();
                let sender = sender.clone();
                running += 1;
                scope.spawn(move || {
                    let result = build_prepared(store, &plan, prepared, options);
                    // The receiver outlives every sender in this scope.
                    let _ = sender.send((node, result));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((node, result)) = receiver.recv() else {
                break;
            };
            running -= 1;
            match result {
                Ok(outcome) => {
                    on_event(GraphEvent::Finished(&graph.nodes[node], &outcome));
                    outcomes[node] = Some(outcome);
                }
                Err(error) => {
                    if failure.is_none() {
                        failure = Some(error);
                    }
                }
            }
        }
    });
    if let Some(error) = failure {
        return Err(error);
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(node, outcome)| {
            outcome.ok_or_else(|| BuildError::DependencyNotBuilt {
                recipe: graph.nodes[node].recipe.clone(),
                input: String::new(),
            })
        })
        .collect()
}

/// The keys of a graph's nodes, for tests and `--dry-run`: `(recipe, target) → key`.
pub fn keys(graph: &BuildGraph) -> BTreeMap<(String, String), Digest> {
    graph
        .nodes
        .iter()
        .map(|node| {
            (
                (node.recipe.clone(), node.target.clone()),
                node.prepared.key,
            )
        })
        .collect()
}
