//! The xmake probe: how `hstore lock` evaluates an `xmake_requires` source, all in one place — the Lua script the
//! pinned xmake runs ([`PROBE_SCRIPT`]), the shell script and sandboxed plan around it ([`xmake_probe_plan`]), the
//! report it writes ([`REPORT_FILE`], parsed here into `hstore-fetchers`' [`ProbedPackage`]s) and the
//! [`XmakeEvaluator`], this crate's implementation of the fetchers' [`LockEvaluator`], which the CLI constructs and
//! passes to `Fetcher::lock`.
//!
//! Per target, the evaluator:
//! 1. answers [`XmakeProbeOutcome::HostPathAbsent`] without running anything when a host path the target declares
//!    (its SDK: `/usr/local/cuda`) is absent on this machine — `xmake f --nv-gpu=y` needs it, and refusing the whole
//!    lock would make a recipe with GPU targets unlockable on a CPU machine;
//! 2. builds the source's pinned xmake (a `recipe` source) through the graph runner against the lock so far, once
//!    per (recipe, target) whatever the number of sources and targets (a cache hit after the first time);
//! 3. runs the probe in the sandbox, network cut, keyed and recorded like a build: a writable copy of the project,
//!    the [`InputShape::XmakePackages`] environment with no archive (so nothing but the host can satisfy a
//!    package), the target's env, host paths and host tools, then `xmake f $xmake_options --require=n -y`
//!    (configure without installing) and `xmake lua probe.lua $out/report.json`;
//! 4. reads and parses `$out/report.json`. A missing or malformed report is an error naming the source and target.
//!
//! The report is xmake's JSON (an empty Lua table is written `{}`, read here as an empty list) and stays inside this
//! module: what leaves it is the typed package list.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use hstore_fetchers::xmake::{Origin, ProbedPackage, ProbedUrl};
use hstore_fetchers::{EvaluatorError, LockEvaluator, XmakeProbeOutcome, XmakeProbeRequest};
use hstore_model::lockfile::Artifact;
use hstore_model::recipe::{Recipe, SourceSpec};
use hstore_store::{Digest, Node, PathComponent, Store};
use serde::{Deserialize, Deserializer};

use crate::BuildPlan;
use crate::error::{BuildError, Result};
use crate::graph::{GraphEvent, plan_graph, run_graph};
use crate::inputs::{Input, InputShape};
use crate::plan::{PlanContext, host_paths, host_tools};
use crate::record::{BuildOptions, build, input_env_name};

/// The file the probe writes in its output (`$out/report.json`).
pub const REPORT_FILE: &str = "report.json";

/// The probe's inputs, as the shell script sees them (`$src_<name>`).
const PROJECT_INPUT: &str = "project";
/// See [`PROJECT_INPUT`].
const XMAKE_INPUT: &str = "xmake";
/// See [`PROJECT_INPUT`]; a single file, `$src_probe_file`.
const PROBE_INPUT: &str = "probe";
/// See [`PROJECT_INPUT`].
const PACKAGES_INPUT: &str = "packages";

/// The Lua script the pinned xmake runs (`xmake lua probe.lua REPORT`) in the configured project: it writes the
/// report JSON to `REPORT`. It reads xmake's own package model (the same calls as `xmake require --info`), so the
/// versions, URLs, sha256 and file names are exactly those xmake's download step would use.
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
/// The shell script of [`xmake_probe_plan`]: configure a writable copy of the project, then run [`PROBE_SCRIPT`].
fn probe_shell_script() -> String {
    let project = input_env_name(PROJECT_INPUT);
    let probe = input_env_name(PROBE_INPUT);
    format!(
        r#"set -eu
cp -R "${project}" /build/project
chmod -R u+w /build/project
cd /build/project
xmake f $xmake_options --require=n -y
xmake lua "${probe}_file" "$out/{REPORT_FILE}"
"#
    )
}

/// The input name of the recipe's base in a probe's plan.
const BASE_INPUT: &str = "base";

/// The tree of the request recipe's base for the probed target (`[build] base` / `[targets.T] base`), from the lock
/// so far; `None` without a base.
fn locked_base(request: &XmakeProbeRequest<'_>) -> Result<Option<Digest>> {
    let Some(base) = request.recipe.base_for(request.target) else {
        return Ok(None);
    };
    request
        .lockfile
        .recipe(&request.recipe.name)
        .and_then(|recipe| recipe.sources.iter().find(|source| source.name == base))
        .and_then(|source| {
            source
                .artifacts
                .iter()
                .find_map(|id| match request.lockfile.artifact(id) {
                    Some(Artifact::DebianBase(tree)) => Some(tree.address),
                    _ => None,
                })
        })
        .map(Some)
        .ok_or_else(|| BuildError::InvalidBase {
            recipe: request.recipe.name.clone(),
            target: request.target.to_owned(),
            base: base.to_owned(),
        })
}

/// What [`xmake_probe_plan`] needs: the source being locked, its inputs, and the built xmake.
#[derive(Debug, Clone)]
pub struct XmakeProbe<'a> {
    /// The recipe holding the `xmake_requires` source.
    pub recipe: &'a Recipe,
    /// The source's name.
    pub source: &'a str,
    /// The target to probe.
    pub target: &'a str,
    /// The project tree (the source's `xmake_requires`).
    pub project: Digest,
    /// The xmake-repo tree.
    pub repo: Digest,
    /// The `xmake` recipe the source names, its target, build key and output (built already).
    pub xmake: (&'a str, &'a str, Digest, Digest),
    /// The probe script ([`PROBE_SCRIPT`]), stored as a blob.
    pub script: Digest,
    /// The recipe's Debian base for the target (its tree), so xmake sees the packages the build will see: what it
    /// takes "from the host" is then a pinned Debian package.
    pub base: Option<Digest>,
    /// Other recipes' outputs the target reads, built, at the paths the build sees them (`/src/NAME`).
    pub recipe_inputs: Vec<Input>,
}

/// The sandboxed run that evaluates an `xmake_requires` source for one target at lock (see the module docs): keyed
/// and recorded like a build, so probing the same inputs again is a cache hit.
pub fn xmake_probe_plan(probe: &XmakeProbe<'_>, context: &PlanContext) -> Result<BuildPlan> {
    let recipe = probe.recipe;
    let Some(target_spec) = recipe.targets.get(probe.target) else {
        return Err(BuildError::UnknownTarget {
            recipe: recipe.name.clone(),
            target: probe.target.to_owned(),
            known: recipe.targets.keys().cloned().collect(),
        });
    };
    let (xmake_recipe, xmake_target, xmake_key, xmake_output) = probe.xmake;
    let mut env: BTreeMap<String, String> = recipe
        .build
        .as_ref()
        .map(|build| build.env.clone())
        .unwrap_or_default();
    for (key, value) in &target_spec.env {
        env.insert(key.clone(), context.expand_home(value));
    }
    let mut inputs = vec![
        Input {
            name: PROJECT_INPUT.into(),
            shape: InputShape::Tree(probe.project),
        },
        Input {
            name: XMAKE_INPUT.into(),
            shape: InputShape::Output {
                recipe: xmake_recipe.to_owned(),
                target: xmake_target.to_owned(),
                key: xmake_key,
                output: Some(xmake_output),
            },
        },
        Input {
            name: PROBE_INPUT.into(),
            shape: InputShape::File {
                digest: probe.script,
                file_name: "probe.lua".into(),
            },
        },
        Input {
            name: PACKAGES_INPUT.into(),
            shape: InputShape::XmakePackages {
                repo: probe.repo,
                archives: Vec::new(),
                host_packages: Vec::new(),
                options: target_spec.xmake_options.clone(),
                xmake_input: XMAKE_INPUT.into(),
            },
        },
    ];
    inputs.extend(probe.recipe_inputs.iter().cloned());
    if let Some(base) = probe.base {
        inputs.push(Input {
            name: BASE_INPUT.into(),
            shape: InputShape::Tree(base),
        });
    }
    Ok(BuildPlan {
        recipe: format!("{}.{}.xmake-probe", recipe.name, probe.source),
        target: probe.target.to_owned(),
        script: probe_shell_script(),
        env,
        inputs,
        base: probe.base.map(|_| BASE_INPUT.to_owned()),
        host_paths: host_paths(target_spec, context),
        host_tools: host_tools(target_spec, context),
        limits: hstore_sandbox::LimitOverrides::default(),
        notes: Vec::new(),
    })
}

/// The report as [`PROBE_SCRIPT`] writes it.
#[derive(Deserialize)]
struct Report {
    #[serde(deserialize_with = "lua_list")]
    packages: Vec<ReportedPackage>,
}

/// One package of a [`Report`].
#[derive(Deserialize)]
struct ReportedPackage {
    name: String,
    version: String,
    origin: ReportedOrigin,
    #[serde(default)]
    host_version: Option<String>,
    #[serde(deserialize_with = "lua_list")]
    deps: Vec<String>,
    #[serde(deserialize_with = "lua_list")]
    urls: Vec<ReportedUrl>,
}

/// `origin` of a [`ReportedPackage`], as `_origin` in [`PROBE_SCRIPT`] spells it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReportedOrigin {
    Archive,
    System,
    Thirdparty,
    Missing,
}

/// One URL of a [`ReportedPackage`].
#[derive(Deserialize)]
struct ReportedUrl {
    url: String,
    git: bool,
    sha256: Option<String>,
    #[serde(default, deserialize_with = "lua_list")]
    searchnames: Vec<String>,
}

/// xmake's JSON encoder writes an empty Lua table as `{}`: accept that as an empty list.
fn lua_list<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
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

/// Parses the bytes of a [`REPORT_FILE`] into the packages it lists, in the report's order.
pub fn parse_report(json: &[u8]) -> std::result::Result<Vec<ProbedPackage>, serde_json::Error> {
    let report: Report = serde_json::from_slice(json)?;
    Ok(report
        .packages
        .into_iter()
        .map(|package| ProbedPackage {
            name: package.name,
            version: package.version,
            origin: match package.origin {
                ReportedOrigin::Archive => Origin::Archive,
                ReportedOrigin::System => Origin::System,
                ReportedOrigin::Thirdparty => Origin::Thirdparty,
                ReportedOrigin::Missing => Origin::Missing,
            },
            host_version: package.host_version,
            deps: package.deps,
            urls: package
                .urls
                .into_iter()
                .map(|url| ProbedUrl {
                    url: url.url,
                    git: url.git,
                    sha256: url.sha256,
                    searchnames: url.searchnames,
                })
                .collect(),
        })
        .collect())
}

/// Reads and parses the [`REPORT_FILE`] at the top of the probe's `output` tree. An object missing on the way is
/// [`hstore_store::Error::MissingObject`], never an empty report.
fn read_report(
    store: &Store,
    output: &Digest,
    source_name: &str,
    target: &str,
) -> Result<Vec<ProbedPackage>> {
    let what = || format!("the output of the xmake probe of `{source_name}`");
    let missing = |digest: &Digest| {
        BuildError::store(
            what(),
            hstore_store::Error::MissingObject { digest: *digest },
        )
    };
    let directory = store
        .get_directory(output)
        .map_err(|source| BuildError::store(what(), source))?
        .ok_or_else(|| missing(output))?;
    let no_report = || BuildError::NoProbeReport {
        source_name: source_name.to_owned(),
        target: target.to_owned(),
        file: REPORT_FILE,
    };
    let name = PathComponent::new(REPORT_FILE).map_err(|_| no_report())?;
    let Some(Node::File { digest, .. }) = directory.get(&name) else {
        return Err(no_report());
    };
    let bytes = store
        .read_blob(digest)
        .map_err(|source| BuildError::store(what(), source))?
        .ok_or_else(|| missing(digest))?;
    parse_report(&bytes).map_err(|source| BuildError::ProbeReport {
        source_name: source_name.to_owned(),
        target: target.to_owned(),
        file: REPORT_FILE,
        source,
    })
}

/// What an [`XmakeEvaluator`] reports while it works (the CLI prints it).
#[derive(Debug)]
pub enum ProbeEvent<'a> {
    /// A node of the pinned xmake's build graph started or finished.
    Graph(GraphEvent<'a>),
    /// A probe ran, or was found in the cache (`cached`).
    Probed {
        /// `recipe.source`.
        source_name: &'a str,
        /// The target probed.
        target: &'a str,
        /// Whether the probe's record was found (nothing ran).
        cached: bool,
    },
}

/// The build crate's [`LockEvaluator`]: builds the pinned xmake and runs the probe in the sandbox (see the module
/// docs). One per lock run; it remembers the xmake builds it made.
pub struct XmakeEvaluator<'a> {
    store: &'a Store,
    lockfile_path: &'a Path,
    context: &'a PlanContext,
    options: &'a BuildOptions,
    on_event: &'a (dyn Fn(ProbeEvent<'_>) + Sync),
    /// (xmake recipe, target) → (key, output).
    built: Mutex<BTreeMap<(String, String), (Digest, Digest)>>,
}

impl std::fmt::Debug for XmakeEvaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmakeEvaluator")
            .field("lockfile_path", &self.lockfile_path)
            .finish_non_exhaustive()
    }
}

impl<'a> XmakeEvaluator<'a> {
    /// An evaluator building and probing in `store`; `lockfile_path` names the lockfile being written (in errors
    /// about the lock so far), `on_event` receives progress.
    pub fn new(
        store: &'a Store,
        lockfile_path: &'a Path,
        context: &'a PlanContext,
        options: &'a BuildOptions,
        on_event: &'a (dyn Fn(ProbeEvent<'_>) + Sync),
    ) -> Self {
        Self {
            store,
            lockfile_path,
            context,
            options,
            on_event,
            built: Mutex::new(BTreeMap::new()),
        }
    }

    /// One probe; see the module docs.
    fn probe(&self, request: &XmakeProbeRequest<'_>) -> Result<XmakeProbeOutcome> {
        let recipe = request.recipe;
        let source_name = format!("{}.{}", recipe.name, request.source);
        let Some(target_spec) = recipe.targets.get(request.target) else {
            return Err(BuildError::UnknownTarget {
                recipe: recipe.name.clone(),
                target: request.target.to_owned(),
                known: recipe.targets.keys().cloned().collect(),
            });
        };
        if let Some(path) = host_paths(target_spec, self.context)
            .into_iter()
            .find(|path| !path.exists())
        {
            return Ok(XmakeProbeOutcome::HostPathAbsent { path });
        }
        let (xmake_key, xmake_output) =
            self.xmake(request)
                .map_err(|source| BuildError::XmakeForProbe {
                    source_name: source_name.clone(),
                    source: Box::new(source),
                })?;
        let script = self
            .store
            .add_bytes(PROBE_SCRIPT.as_bytes())
            .map_err(|source| BuildError::store("the xmake probe script", source))?;
        let plan = xmake_probe_plan(
            &XmakeProbe {
                recipe,
                source: request.source,
                target: request.target,
                project: request.project,
                repo: request.repo,
                xmake: (
                    request.xmake_recipe,
                    request.xmake_target,
                    xmake_key,
                    xmake_output,
                ),
                script,
                base: locked_base(request)?,
                recipe_inputs: self.recipe_inputs(request)?,
            },
            self.context,
        )?;
        let outcome = build(self.store, &plan, self.options)?;
        (self.on_event)(ProbeEvent::Probed {
            source_name: &source_name,
            target: request.target,
            cached: outcome.cached,
        });
        read_report(
            self.store,
            &outcome.record.output,
            &source_name,
            request.target,
        )
        .map(XmakeProbeOutcome::Packages)
    }

    /// Builds (or finds built) the request's xmake recipe for its target against the lock so far; returns its key
    /// and output.
    fn xmake(&self, request: &XmakeProbeRequest<'_>) -> Result<(Digest, Digest)> {
        self.built_output(request, request.xmake_recipe, request.xmake_target)
    }

    /// The other recipes' outputs the probed target reads (`recipe` sources it uses, besides the pinned xmake),
    /// built against the lock so far, by source name: `xmake f` sees them where the build will (a CUDA toolkit's
    /// `--cuda=/src/cuda`).
    fn recipe_inputs(&self, request: &XmakeProbeRequest<'_>) -> Result<Vec<Input>> {
        let mut inputs = Vec::new();
        for (name, spec) in request.recipe.sources_for(request.target) {
            let SourceSpec::Recipe { recipe, target, .. } = spec else {
                continue;
            };
            // The pinned xmake is mounted already; a source named like one of the probe's own inputs cannot be.
            if [
                PROJECT_INPUT,
                XMAKE_INPUT,
                PROBE_INPUT,
                PACKAGES_INPUT,
                BASE_INPUT,
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            let target = target.as_deref().unwrap_or(request.target);
            let (key, output) = self.built_output(request, recipe, target)?;
            inputs.push(Input {
                name: name.clone(),
                shape: InputShape::Output {
                    recipe: recipe.clone(),
                    target: target.to_owned(),
                    key,
                    output: Some(output),
                },
            });
        }
        Ok(inputs)
    }

    /// Builds (or finds built) `recipe_name` for `target` against the lock so far; returns its key and output.
    fn built_output(
        &self,
        request: &XmakeProbeRequest<'_>,
        recipe_name: &str,
        target: &str,
    ) -> Result<(Digest, Digest)> {
        let slot = (recipe_name.to_owned(), target.to_owned());
        if let Some(found) = self
            .built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&slot)
        {
            return Ok(*found);
        }
        let Some(recipe) = request
            .recipes
            .iter()
            .find(|recipe| recipe.name == recipe_name)
        else {
            return Err(BuildError::UnknownRecipe {
                name: recipe_name.to_owned(),
                dir: request.recipe.dir().to_path_buf(),
                known: request.recipes.iter().map(|r| r.name.clone()).collect(),
            });
        };
        let graph = plan_graph(
            self.store,
            request.recipes,
            std::slice::from_ref(recipe),
            target,
            request.lockfile,
            self.lockfile_path,
            self.context,
        )?;
        let outcomes = run_graph(self.store, &graph, self.options, 1, |event| {
            (self.on_event)(ProbeEvent::Graph(event));
        })?;
        let found = graph
            .nodes
            .iter()
            .zip(&outcomes)
            .find(|(node, _)| node.requested)
            .map(|(_, outcome)| (outcome.record.key, outcome.record.output))
            .ok_or_else(|| BuildError::DependencyNotBuilt {
                recipe: recipe_name.to_owned(),
                input: request.source.to_owned(),
            })?;
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot, found);
        Ok(found)
    }
}

impl LockEvaluator for XmakeEvaluator<'_> {
    fn probe_xmake(
        &self,
        request: &XmakeProbeRequest<'_>,
    ) -> std::result::Result<XmakeProbeOutcome, EvaluatorError> {
        Ok(self.probe(request)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as the probe wrote it under xmake v3.0.0 for a project requiring `greet` (with a config) and
    /// `fancy` (which depends on `hdronly`); note the `{}` for an empty list.
    const REPORT: &str = r#"{"packages":[{"urls":[{"sha256":"7B7F4DFD4DE9833A39D31A7884A3CB93481A9C890667D24E9885EF301E3B794A","searchnames":["greet-2.1.0.tar.gz","greet-2.1.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/greet-2.1.0.tar.gz","git":false}],"version":"2.1.0","name":"greet","origin":"archive","deps":{},"system":false},{"urls":[{"sha256":"75790646c724d197aaa2f9fa6ebaa54b7a4428cbfbf0c7ad891c34e780db697d","searchnames":["hdronly-1.0.0.tar.gz","hdronly-1.0.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/hdronly-1.0.0.tar.gz","git":false}],"version":"1.0.0","name":"hdronly","origin":"archive","deps":{},"system":false},{"urls":[{"sha256":"5e0aae6b7842ca8841a008ccffbae313a94d4358051baeffd67f55e283fee567","searchnames":["fancy-0.3.0.tar.gz","fancy-0.3.0.tar.gz"],"url":"http:\/\/127.0.0.1:9\/files\/fancy-0.3.0.tar.gz","git":false}],"version":"0.3.0","name":"fancy","origin":"archive","deps":["hdronly"],"system":false},{"urls":{},"version":"","name":"openmp","origin":"system","deps":{},"host_version":"4.5"}]}"#;

    #[test]
    fn a_report_parses_with_lua_empty_tables_as_empty_lists() {
        let packages = parse_report(REPORT.as_bytes()).expect("parse report");
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["greet", "hdronly", "fancy", "openmp"]);
        assert_eq!(packages[2].deps, ["hdronly"]);
        assert!(packages[0].deps.is_empty());
        let greet = &packages[0].urls[0];
        assert_eq!(greet.url, "http://127.0.0.1:9/files/greet-2.1.0.tar.gz");
        assert!(!greet.git);
        assert_eq!(
            greet.searchnames,
            ["greet-2.1.0.tar.gz", "greet-2.1.0.tar.gz"]
        );
        let openmp = &packages[3];
        assert_eq!(openmp.origin, Origin::System);
        assert_eq!(openmp.host_version.as_deref(), Some("4.5"));
        assert!(openmp.urls.is_empty());
    }

    #[test]
    fn a_report_that_is_not_the_probes_json_is_refused() {
        for bad in [
            "",
            r#"{"packages":{"a":1}}"#,
            r#"{"packages":[{"name":"x"}]}"#,
        ] {
            assert!(parse_report(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shell_script_runs_the_probe_input_and_writes_the_report_file() {
        assert_eq!(
            probe_shell_script(),
            "set -eu\ncp -R \"$src_project\" /build/project\nchmod -R u+w /build/project\ncd /build/project\n\
             xmake f $xmake_options --require=n -y\nxmake lua \"$src_probe_file\" \"$out/report.json\"\n"
        );
    }
}
