//! Running a [`BuildPlan`]: key → cache lookup → sandbox → store the output → record it.
//!
//! Records live in the store's metadata namespace [`BUILD_NAMESPACE`] under the key's hex, and a gc root
//! `build-<key hex>` keeps the output and its log. A record is written only after the output tree and the log are
//! stored, so a build killed at any point records nothing; its scratch directory lies in the store's `tmp/`, which gc
//! cleans. A record whose objects have gone missing (gc'd, repaired away) counts as absent.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hstore_store::bundle::SecretKey;
use hstore_store::{Digest, Root, Store};
use serde::{Deserialize, Serialize};

use super::diff::{TreeDifference, diff_trees};
use super::error::{BuildError, Result};
use super::{BuildPlan, INPUTS_DIR};
use crate::inputs::InputShape;
use crate::provenance::{Provenance, RunTimes};
use hstore_sandbox::spec::{BUILD_DIR, Bind, SandboxSpec};
use hstore_sandbox::{BuildOutput, Sandbox};

/// Metadata namespace of build records.
pub const BUILD_NAMESPACE: &str = "build";

/// The build records' kind, the only one that travels in bundles and caches; the build crate's part of the registry
/// of record namespaces ([`RECORD_KINDS`]).
pub const RECORDS: hstore_store::RecordKind = hstore_store::RecordKind {
    namespace: BUILD_NAMESPACE,
    travels: true,
    check: |key, value| {
        let record: BuildRecord = hstore_store::RecordKind::parse(value)?;
        if record.key.to_hex() != key {
            return Err(format!(
                "it is stored under key `{key}` but records the build of key `{}`",
                record.key
            ));
        }
        Ok(vec![record.output, record.log])
    },
};

/// Every record kind the build crate writes.
pub const RECORD_KINDS: [hstore_store::RecordKind; 1] = [RECORDS];

/// The registry of every record namespace hstore writes: the fetchers' (derived from the source kinds,
/// [`hstore_fetchers::kinds::record_kinds`]) and the build crate's ([`RECORD_KINDS`]). Import checks carried
/// records against its travelling kinds, verify every record against all of them. The build crate owns it because
/// it is the layer that sees both (the CLI only passes it on).
pub fn record_kinds() -> hstore_store::RecordKinds {
    hstore_store::RecordKinds::new(hstore_fetchers::kinds::record_kinds().chain(RECORD_KINDS))
}

/// Prefix of the gc roots that keep recorded build outputs (`build-<key hex>`); `export --with-builds` selects them.
pub const BUILD_ROOT_PREFIX: &str = "build-";

/// Where the output directory appears inside the sandbox (`$out`).
const OUTPUT_DIR: &str = "/out";

/// What a successful build produced, stored under its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The build key.
    pub key: Digest,
    /// The recipe.
    pub recipe: String,
    /// The target.
    pub target: String,
    /// The output tree.
    pub output: Digest,
    /// The build log blob.
    pub log: Digest,
    /// Each input's shape and address, as hashed into the key.
    pub inputs: BTreeMap<String, String>,
    /// The host fingerprints hashed into the key.
    pub fingerprints: BTreeMap<String, String>,
    /// The build's in-toto statement (SLSA provenance), signed when the build had a key; absent from records
    /// written before provenance existed. Never part of the key ([`crate::provenance`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// How to run a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The executable re-run as the single-threaded sandbox helper (the `hstore` binary).
    pub helper_exe: PathBuf,
    /// Rebuild even on a cache hit and compare with the recorded output.
    pub check: bool,
    /// Resource limits given on the command line, over the recipe's (not part of the key).
    pub limits: hstore_sandbox::LimitOverrides,
    /// Signs each new record's provenance statement (`build --sign`); unsigned without.
    pub signer: Option<SecretKey>,
}

/// The result of [`build`].
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The record of the (possibly cached) build.
    pub record: BuildRecord,
    /// Whether it came from the cache without running anything.
    pub cached: bool,
    /// With `check`, the comparison.
    pub check: Option<CheckOutcome>,
}

/// `--check`: the recorded output against a rebuild.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The output recorded before.
    pub recorded: Digest,
    /// The output of the rebuild.
    pub rebuilt: Digest,
    /// Paths that differ (empty when reproducible).
    pub differences: Vec<TreeDifference>,
}

/// Registers a build record that came from outside the build (a cache), already checked by whoever fetched it (its
/// signature by a trusted key, its schema): the record under `key`, then the gc root keeping `objects` (its output
/// and log), described as vouched for by `signer`. Nothing is written unless every object is in the store; returns
/// whether it was registered.
pub fn install_record(
    store: &Store,
    key: &str,
    record: &serde_json::Value,
    objects: &[Digest],
    signer: &str,
) -> Result<bool> {
    let failed = |source| BuildError::store(format!("the build record `{key}`"), source);
    for object in objects {
        if store.object_format(object).map_err(failed)?.is_none() {
            return Ok(false);
        }
    }
    store
        .put_meta(BUILD_NAMESPACE, key, record)
        .map_err(failed)?;
    store
        .set_root(
            &format!("{BUILD_ROOT_PREFIX}{key}"),
            &Root {
                description: format!("build record `{key}` from a cache, signed by {signer}"),
                addresses: objects.to_vec(),
            },
        )
        .map_err(failed)?;
    store.flush().map_err(failed)?;
    Ok(true)
}

/// The record for `key`, if it exists and its objects are all present.
pub fn find_record(store: &Store, key: &Digest) -> Result<Option<BuildRecord>> {
    let record: Option<BuildRecord> = store
        .get_meta(BUILD_NAMESPACE, &key.to_hex())
        .map_err(|source| BuildError::store("a build record", source))?;
    let Some(record) = record else {
        return Ok(None);
    };
    for digest in [record.output, record.log] {
        if store
            .object_format(&digest)
            .map_err(|source| BuildError::store("a build record", source))?
            .is_none()
        {
            return Ok(None);
        }
    }
    Ok(Some(record))
}

/// A plan whose inputs are all in the store and whose host inputs are fingerprinted: ready for [`build_prepared`].
#[derive(Debug, Clone)]
pub struct PreparedBuild {
    /// The build key.
    pub key: Digest,
    /// The host fingerprints hashed into it.
    pub fingerprints: BTreeMap<String, String>,
}

/// `PATH` of a build on a base without one of its own, as Debian's `/etc/profile` sets it for root.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything that can fail before a build starts: inputs missing from the store, declared host paths or tools
/// missing on this machine. Nothing is run or written. Call it for every plan of a command first, so a command building
/// several recipes fails before the first one starts rather than after it.
pub fn prepare(store: &Store, plan: &BuildPlan) -> Result<PreparedBuild> {
    check_inputs(store, plan)?;
    let fingerprints = super::fingerprints(store, plan, &plan.host_tools)?;
    Ok(PreparedBuild {
        key: plan.key(&fingerprints)?,
        fingerprints,
    })
}

/// [`prepare`] for commands that only look (`build --dry-run`, `log`): when the plan declares host tools and a
/// record of its recipe and target gives its key from the host-tool fingerprint that record holds (with this
/// machine's base system and host paths, which are read, never run), the key is that record's and no tool runs.
/// Host tools run on the host, outside the sandbox; looking at a cached build must run nothing. Without such a
/// record the tools run, as for a build (the node will build, and its key needs them).
pub fn prepare_from_records(store: &Store, plan: &BuildPlan) -> Result<PreparedBuild> {
    if plan.host_tools.is_empty() {
        return prepare(store, plan);
    }
    check_inputs(store, plan)?;
    let mut fingerprints = super::fingerprints(store, plan, &[])?;
    let keys = store
        .list_meta(BUILD_NAMESPACE)
        .map_err(|source| BuildError::store("the build records", source))?;
    for name in keys {
        let record: Option<BuildRecord> = store
            .get_meta(BUILD_NAMESPACE, &name)
            .map_err(|source| BuildError::store("a build record", source))?;
        let Some(record) = record else {
            continue;
        };
        if record.recipe != plan.recipe || record.target != plan.target {
            continue;
        }
        let Some(tools) = record.fingerprints.get(super::HOST_TOOLS_FINGERPRINT) else {
            continue;
        };
        fingerprints.insert(super::HOST_TOOLS_FINGERPRINT.to_owned(), tools.clone());
        let key = plan.key(&fingerprints)?;
        if key == record.key && find_record(store, &key)?.is_some() {
            return Ok(PreparedBuild { key, fingerprints });
        }
    }
    prepare(store, plan)
}

/// Builds `plan` (or finds it in the cache): [`prepare`] then [`build_prepared`]. See the module docs.
pub fn build(store: &Store, plan: &BuildPlan, options: &BuildOptions) -> Result<BuildOutcome> {
    let prepared = prepare(store, plan)?;
    build_prepared(store, plan, prepared, options)
}

/// Builds a plan [`prepare`]d with the same store (or finds it in the cache).
pub fn build_prepared(
    store: &Store,
    plan: &BuildPlan,
    prepared: PreparedBuild,
    options: &BuildOptions,
) -> Result<BuildOutcome> {
    let PreparedBuild { key, fingerprints } = prepared;
    let previous = find_record(store, &key)?;
    if let (Some(record), false) = (&previous, options.check) {
        return Ok(BuildOutcome {
            record: record.clone(),
            cached: true,
            check: None,
        });
    }
    let started = hstore_store::clock::now();
    let (output, log) = run_in_sandbox(store, plan, options)?;
    let times = RunTimes {
        started,
        finished: hstore_store::clock::now(),
    };
    let statement = crate::provenance::statement(plan, &key, &fingerprints, &output, times);
    let record = BuildRecord {
        key,
        recipe: plan.recipe.clone(),
        target: plan.target.clone(),
        output,
        log,
        inputs: plan
            .inputs
            .iter()
            .map(|input| (input.name.clone(), input.shape.key_text()))
            .collect(),
        fingerprints,
        provenance: Some(Provenance::new(statement, options.signer.as_ref())),
    };
    if let Some(previous) = previous {
        let differences = diff_trees(store, &previous.output, &record.output)?;
        return Ok(BuildOutcome {
            record: previous.clone(),
            cached: false,
            check: Some(CheckOutcome {
                recorded: previous.output,
                rebuilt: record.output,
                differences,
            }),
        });
    }
    let record_error = |source| BuildError::store("the build record", source);
    // Concurrent builds of one key: the first record wins and every builder reports it, so one key never names
    // two outputs. A record left stale (its objects gone) is replaced: this build is its honest successor.
    let written = store
        .put_meta_if_absent(BUILD_NAMESPACE, &key.to_hex(), &record)
        .map_err(record_error)?;
    if !written {
        if let Some(winner) = find_record(store, &key)? {
            return Ok(BuildOutcome {
                record: winner,
                cached: false,
                check: None,
            });
        }
        store
            .put_meta(BUILD_NAMESPACE, &key.to_hex(), &record)
            .map_err(record_error)?;
    }
    store
        .set_root(
            &format!("{BUILD_ROOT_PREFIX}{}", key.to_hex()),
            &Root {
                description: format!("build of {} for target {}", plan.recipe, plan.target),
                // The outputs of `recipe` inputs too: a root keeps its whole chain alive even if a dependency's
                // own root is removed.
                addresses: [record.output, record.log]
                    .into_iter()
                    .chain(plan.inputs.iter().flat_map(|input| match &input.shape {
                        InputShape::Output { output, .. } => output.iter().copied().collect(),
                        InputShape::Tree(_)
                        | InputShape::LocalTree(_)
                        | InputShape::File { .. }
                        | InputShape::CargoVendor { .. }
                        | InputShape::XmakePackages { .. }
                        | InputShape::Wheelhouse { .. } => Vec::new(),
                    }))
                    .collect(),
            },
        )
        .map_err(record_error)?;
    Ok(BuildOutcome {
        record,
        cached: false,
        check: None,
    })
}

fn check_inputs(store: &Store, plan: &BuildPlan) -> Result<()> {
    // An xmake archive gets its own error first: package, version and the names xmake accepts, not an address.
    for input in &plan.inputs {
        input
            .shape
            .check_xmake_archives(store, &plan.recipe, &input.name)?;
    }
    let mut missing = Vec::new();
    for input in &plan.inputs {
        for address in input.shape.addresses() {
            let present = store
                .object_format(&address)
                .map_err(|source| BuildError::store(format!("input `{}`", input.name), source))?
                .is_some();
            if !present {
                missing.push((input.name.clone(), address));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BuildError::MissingInputs {
            recipe: plan.recipe.clone(),
            missing,
        })
    }
}

/// The name of an input's environment variable: `src_<name>` with `-` as `_`.
pub fn input_env_name(name: &str) -> String {
    format!("src_{}", name.replace('-', "_"))
}

/// Runs the script; returns the stored output tree and log blob.
fn run_in_sandbox(
    store: &Store,
    plan: &BuildPlan,
    options: &BuildOptions,
) -> Result<(Digest, Digest)> {
    let scratch = store
        .temp_dir()
        .map_err(|source| BuildError::store("the build's scratch directory", source))?;
    // Run as root, the build is a leased build user on the host, never uid 0; the lease is held until its output is
    // stored and the scratch removed, so no other build gets the id while its files are still here.
    let build_user = hstore_sandbox::BuildUser::for_caller()?;
    let build_dir = scratch.path().join("build");
    let output_dir = scratch.path().join("out");
    let log_path = scratch.path().join("build.log");
    for dir in [&build_dir, &output_dir] {
        fs::create_dir(dir).map_err(|source| io_error("create", dir, source))?;
    }
    let mut env = plan.env.clone();
    let mut binds = Vec::new();
    let mut base = None;
    for input in &plan.inputs {
        let tree = input.shape.tree(store, &input.name)?;
        let host = store
            .materialized_tree(&tree)
            .map_err(|source| BuildError::store(format!("input `{}`", input.name), source))?;
        if plan.base.as_ref() == Some(&input.name) {
            // The root itself, not an input under `/src`.
            base = Some(host);
            continue;
        }
        let inside = format!("{INPUTS_DIR}/{}", input.name);
        env.insert(input_env_name(&input.name), inside.clone());
        if let super::InputShape::File { file_name, .. } = &input.shape {
            env.insert(
                format!("{}_file", input_env_name(&input.name)),
                format!("{inside}/{file_name}"),
            );
        }
        if let Some(config) = input.shape.cargo_config(&inside) {
            let cargo_home = build_dir.join(".cargo-home");
            fs::create_dir_all(&cargo_home)
                .map_err(|source| io_error("create", &cargo_home, source))?;
            let config_path = cargo_home.join("config.toml");
            fs::write(&config_path, config)
                .map_err(|source| io_error("write", &config_path, source))?;
            env.entry("CARGO_HOME".into())
                .or_insert_with(|| format!("{BUILD_DIR}/.cargo-home"));
            env.insert(
                "cargo_config".into(),
                format!("{BUILD_DIR}/.cargo-home/config.toml"),
            );
        }
        let path = env
            .get("PATH")
            .map_or(hstore_sandbox::spec::DEFAULT_PATH, String::as_str);
        if let Some(setup) = input.shape.xmake_setup(&inside, BUILD_DIR, path) {
            let conf_dir = build_dir
                .join(crate::inputs::XMAKE_GLOBAL_DIR)
                .join(".xmake");
            fs::create_dir_all(&conf_dir)
                .map_err(|source| io_error("create", &conf_dir, source))?;
            for (_, dir) in crate::inputs::XMAKE_SCRATCH_DIRS {
                let dir = build_dir.join(dir);
                fs::create_dir_all(&dir).map_err(|source| io_error("create", &dir, source))?;
            }
            let conf = conf_dir.join("xmake.conf");
            fs::write(&conf, setup.conf).map_err(|source| io_error("write", &conf, source))?;
            env.extend(setup.env);
        }
        binds.push(Bind::new(host, inside));
    }
    let mut spec = SandboxSpec::shell(&plan.script, &build_dir, Bind::new(&output_dir, OUTPUT_DIR));
    // Python's installers never look for an index inside (there is no network, and a wheelhouse input is the only
    // source of packages); their config files are ignored so nothing but the recipe configures them. The host's
    // `PIP_*`/`UV_*` variables never get here: the environment is exactly the plan's.
    for (key, value) in [
        ("PIP_NO_INDEX", "1"),
        ("PIP_CONFIG_FILE", "/dev/null"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("UV_OFFLINE", "1"),
        ("UV_NO_CONFIG", "1"),
        ("UV_PYTHON_DOWNLOADS", "never"),
    ] {
        env.entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    if base.is_some() {
        // A Debian root's tools live in sbin too (ldconfig, update-alternatives); its locale is C.UTF-8.
        for (key, value) in [("PATH", BASE_PATH), ("LANG", "C.UTF-8")] {
            env.entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    spec.env = env;
    spec.inputs = binds;
    spec.host_paths.clone_from(&plan.host_paths);
    spec.base_root = base;
    // The script's output goes to its own file; hstore's notes (where inputs came from) head the stored log.
    let script_log = scratch.path().join("script.log");
    let status = Sandbox::new(&options.helper_exe)
        .with_limits(plan.limits.then(options.limits).limits())
        .run_as(
            &spec,
            BuildOutput::LogFile(script_log.clone()),
            build_user.as_ref(),
        )?;
    // The notes are derived from the inputs, which the key already holds (where each xmake package comes from).
    let notes: Vec<String> = plan
        .notes
        .iter()
        .cloned()
        .chain(plan.inputs.iter().flat_map(|input| input.shape.log_notes()))
        .collect();
    write_log(&log_path, &notes, &script_log)?;
    if !status.success() {
        // Keep the scratch directory so the log (and the build tree) can be inspected.
        let kept = scratch.keep();
        let log = kept.join("build.log");
        return Err(BuildError::ScriptFailed {
            recipe: plan.recipe.clone(),
            target: plan.target.clone(),
            status: status.to_string(),
            tail: log_tail(&log, 30),
            log,
        });
    }
    let (output, _) = store
        .add_tree(&output_dir, &|_| false)
        .map_err(|source| BuildError::store("the build output", source))?;
    let (log, _) = store
        .add_blob_file(&log_path)
        .map_err(|source| BuildError::store("the build log", source))?;
    scratch
        .remove()
        .map_err(|source| BuildError::store("the scratch directory", source))?;
    Ok((output, log))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> BuildError {
    BuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the build log: one `hstore: NOTE` line per note, then the script's output (streamed; logs can be large).
fn write_log(log_path: &Path, notes: &[String], script_log: &Path) -> Result<()> {
    let mut log =
        fs::File::create(log_path).map_err(|source| io_error("create", log_path, source))?;
    for note in notes {
        writeln!(log, "hstore: {note}").map_err(|source| io_error("write", log_path, source))?;
    }
    let mut script =
        fs::File::open(script_log).map_err(|source| io_error("read", script_log, source))?;
    std::io::copy(&mut script, &mut log).map_err(|source| io_error("write", log_path, source))?;
    fs::remove_file(script_log).map_err(|source| io_error("remove", script_log, source))
}

/// The last `lines` lines of a log, read from its end (logs can be large).
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(16 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
