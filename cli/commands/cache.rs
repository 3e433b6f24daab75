//! `hstore cache push|pull`, and the cache hooks of `fetch --cache` and `build --cache/--push`.
//!
//! Settings: a cache URL on the command line, else `[caches]` in `hstore.toml`:
//! ```toml
//! [caches]
//! substitute = ["s3://hstore-cache", "file:///nfs/hstore-cache"]   # fetch/build try these, in order
//! push = "s3://hstore-cache"                                         # build uploads here after each success
//! trusted-keys = ["keys/cluster.pub"]                                # build records (cache, import) must be signed by one of these
//! sign-key = "keys/cluster.secret"                                   # signs the records build/push upload
//! ```
//! S3 caches are configured the AWS way: `AWS_ENDPOINT_URL(_S3)`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, then the shared files (`AWS_CONFIG_FILE`, default
//! `~/.aws/config`; `AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`; profile `AWS_PROFILE`, default
//! `default`). Values never appear in output.
//!
//! `push --target T` and `pull --target T` move only the part of each lockfile T's builds read
//! ([`Lockfile::for_target`]) and name its root `lockfile-<16 hex>-T`, as `fetch` and `export` do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hstore_build::{BUILD_NAMESPACE, BUILD_ROOT_PREFIX};
use hstore_cache::{Cache, CacheUrl, OpenOptions, PushSpec, S3Settings, TrustedRecord};
use hstore_fetchers::lockfile::{Artifact, Lockfile};
use hstore_store::bundle::{PublicKey, SecretKey};
use hstore_store::{Digest, Root, Store};
use serde::Deserialize;

use super::lock::{CONFIG_FILE, register_root, runtime};
use crate::args::{CacheCommand, CachePullArgs, CachePushArgs};
use crate::commands::store::open_store;
use crate::env_vars;
use crate::error::CliError;
use crate::printer::{ExitStatus, Printer, Severity, human_bytes};
use crate::settings::GlobalSettings;

/// `[caches]` in hstore.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CachesConfig {
    /// Caches `fetch` and `build` substitute from when none is given.
    #[serde(default)]
    pub substitute: Vec<String>,
    /// The cache `build` pushes to when `--push` is not given.
    pub push: Option<String>,
    /// Public keys (files or text) whose build records are trusted.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// The secret key that signs pushed records.
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    caches: CachesConfig,
}

/// Reads `[caches]` from `./hstore.toml` (absent file or table: defaults).
pub fn load_config() -> Result<CachesConfig> {
    let path = Path::new(CONFIG_FILE);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CachesConfig::default());
        }
        Err(error) => return Err(error).context("failed to read `hstore.toml`"),
    };
    #[derive(Deserialize)]
    struct Loose {
        caches: Option<toml::Value>,
    }
    // Other tables belong to other readers; only `[caches]` is checked strictly here.
    let loose: Loose = toml::from_str(&text).context("`hstore.toml` is not valid TOML")?;
    let Some(caches) = loose.caches else {
        return Ok(CachesConfig::default());
    };
    let config: ConfigFile = ConfigFile {
        caches: caches
            .try_into()
            .context("invalid `[caches]` table in `hstore.toml`")?,
    };
    Ok(config.caches)
}

/// S3 settings from the environment, then the shared AWS files.
fn s3_settings() -> S3Settings {
    let mut settings = S3Settings::default();
    let environment = crate::settings::aws_environment(&[
        env_vars::AWS_ENDPOINT_URL_S3,
        env_vars::AWS_ENDPOINT_URL,
        env_vars::AWS_REGION,
        env_vars::AWS_DEFAULT_REGION,
        env_vars::AWS_ACCESS_KEY_ID,
        env_vars::AWS_SECRET_ACCESS_KEY,
        env_vars::AWS_SESSION_TOKEN,
        env_vars::AWS_PROFILE,
        env_vars::AWS_SHARED_CREDENTIALS_FILE,
        env_vars::AWS_CONFIG_FILE,
        env_vars::HOME,
    ]);
    let env = |name: &str| {
        environment
            .iter()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| value.clone())
    };
    for (variable, key) in [
        (env_vars::AWS_ENDPOINT_URL_S3, "aws_endpoint_url"),
        (env_vars::AWS_ENDPOINT_URL, "aws_endpoint_url"),
        (env_vars::AWS_REGION, "aws_region"),
        (env_vars::AWS_DEFAULT_REGION, "aws_region"),
        (env_vars::AWS_ACCESS_KEY_ID, "aws_access_key_id"),
        (env_vars::AWS_SECRET_ACCESS_KEY, "aws_secret_access_key"),
        (env_vars::AWS_SESSION_TOKEN, "aws_session_token"),
    ] {
        if let Some(value) = env(variable) {
            settings.set_default(key, &value);
        }
    }
    let profile = env(env_vars::AWS_PROFILE).unwrap_or_else(|| "default".into());
    let home = env(env_vars::HOME).map(PathBuf::from);
    let file = |variable: &str, default: &str| {
        env(variable)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(default)))
    };
    if let Some(path) = file(env_vars::AWS_SHARED_CREDENTIALS_FILE, ".aws/credentials") {
        for (key, value) in ini_section(&path, &profile) {
            if matches!(
                key.as_str(),
                "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token"
            ) {
                settings.set_default(&key, &value);
            }
        }
    }
    if let Some(path) = file(env_vars::AWS_CONFIG_FILE, ".aws/config") {
        let section = if profile == "default" {
            profile.clone()
        } else {
            format!("profile {profile}")
        };
        for (key, value) in ini_section(&path, &section) {
            match key.as_str() {
                "region" => settings.set_default("aws_region", &value),
                "endpoint_url" => settings.set_default("aws_endpoint_url", &value),
                "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token" => {
                    settings.set_default(&key, &value);
                }
                _ => {}
            }
        }
    }
    settings
}

/// The `key = value` lines of `[section]` in an AWS shared file. These files are INI as the AWS CLI reads them
/// (sections, `key = value`, `#`/`;` comments); nested `services` blocks are not needed here and are skipped.
fn ini_section(path: &Path, section: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut inside = false;
    let mut values = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inside = name.trim() == section;
            continue;
        }
        if inside
            && let Some((key, value)) = line.split_once('=')
            && !value.trim().is_empty()
        {
            values.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    values
}

/// Opens the cache named `text`.
pub fn open_cache(text: &str, global: &GlobalSettings) -> Result<Cache> {
    let url = CacheUrl::parse(text)?;
    let options = OpenOptions {
        s3: match url {
            CacheUrl::S3 { .. } => s3_settings(),
            CacheUrl::Http { .. } | CacheUrl::File { .. } => S3Settings::default(),
        },
        index_cache: Some(global.cache.join("cache-indexes-v1")),
        fast_retries: !global.retry_delay,
    };
    Ok(Cache::open(&url, &options)?)
}

/// The caches to substitute from: those given, else `[caches] substitute`.
pub fn substitutes(given: &[String], global: &GlobalSettings) -> Result<Vec<Cache>> {
    let names = if given.is_empty() {
        load_config()?.substitute
    } else {
        given.to_vec()
    };
    names.iter().map(|name| open_cache(name, global)).collect()
}

/// Parses `--trust` values (files or key text) plus `[caches] trusted-keys`.
pub fn trusted_keys(given: &[String], config: &CachesConfig) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for text in given.iter().chain(&config.trusted_keys) {
        if text.starts_with(hstore_store::bundle::PUBLIC_KEY_PREFIX) {
            keys.push(text.parse::<PublicKey>()?);
        } else {
            keys.extend(
                hstore_store::bundle::read_trusted_keys(Path::new(text))
                    .with_context(|| format!("failed to read trusted key `{text}`"))?,
            );
        }
    }
    Ok(keys)
}

fn signing_key(given: Option<&Path>, config: &CachesConfig) -> Result<Option<SecretKey>> {
    given
        .or(config.sign_key.as_deref())
        .map(|path| {
            SecretKey::read(path)
                .with_context(|| format!("failed to load the signing key `{}`", path.display()))
        })
        .transpose()
}

/// `build --sign KEY`, else `[caches] sign-key`: the key that signs new records' provenance and pushed records. A
/// `--sign` key that cannot be read is an error; a `[caches] sign-key` one a warning, and the provenance goes
/// unsigned: that setting was read only by `--push` before, and a node that never pushes may lack the file.
pub fn build_signer(given: Option<&Path>, printer: &Printer) -> Result<Option<SecretKey>> {
    if given.is_some() {
        return signing_key(given, &CachesConfig::default());
    }
    match signing_key(None, &load_config()?) {
        Ok(signer) => Ok(signer),
        Err(error) => {
            let error = error.context("the provenance of new build records will be unsigned");
            printer.report(Severity::Warning, error.as_ref());
            Ok(None)
        }
    }
}

pub fn run(
    command: CacheCommand,
    global: &GlobalSettings,
    printer: &Printer,
) -> Result<ExitStatus> {
    match command {
        CacheCommand::Push(args) => push(&args, global, printer),
        CacheCommand::Pull(args) => pull(&args, global, printer),
    }
}

/// A lockfile's gc root and its blob, as `fetch` and `export` name them (with `target`, that target's part).
fn lockfile_root(
    store: &Store,
    path: &Path,
    target: Option<&str>,
) -> Result<(String, Root, Lockfile)> {
    let lockfile = Lockfile::load(path)?;
    let bytes = lockfile.to_json();
    let blob = store
        .add_bytes(&bytes)
        .with_context(|| format!("failed to store lockfile `{}` as a blob", path.display()))?;
    let description = format!("lockfile `{}`", path.display());
    let (name, root) = match target {
        Some(target) => lockfile.target_gc_root(target, &bytes, blob, &description),
        None => lockfile.gc_root(&bytes, blob, description),
    };
    Ok((name, root, lockfile))
}

fn push(args: &CachePushArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let config = load_config()?;
    let signer = signing_key(args.sign.as_deref(), &config)?;
    if (args.with_builds || args.all) && signer.is_none() {
        bail!(
            "build records are only accepted when signed: pass `--sign KEY` (or set `[caches] sign-key`), or push without `--with-builds`/`--all`"
        );
    }
    let store = Arc::new(open_store(global)?);
    let cache = open_cache(&args.cache, global)?;
    let mut spec = PushSpec::default();
    let lockfiles: Vec<PathBuf> = if args.lockfile.is_empty() && !args.all {
        vec![PathBuf::from("lockfile.json")]
    } else {
        args.lockfile.clone()
    };
    for path in &lockfiles {
        let (name, root, _) = lockfile_root(&store, path, args.target.as_deref())?;
        spec.roots.insert(name, root);
    }
    if args.all || args.with_builds {
        for (name, root) in store.roots()? {
            if args.all || name.starts_with(BUILD_ROOT_PREFIX) {
                spec.roots.entry(name).or_insert(root);
            }
        }
        for key in store.list_meta(BUILD_NAMESPACE)? {
            if let Some(value) = store.get_meta::<serde_json::Value>(BUILD_NAMESPACE, &key)? {
                spec.records.push((key, value));
            }
        }
    }
    let started = std::time::Instant::now();
    let report = runtime()?
        .block_on(hstore_cache::push_closure(&cache, store, spec, signer))
        .with_context(|| format!("failed to push to `{}`", cache.url()))?;
    if report.uploaded_objects == 0 {
        printer.status(
            "Pushed",
            format!(
                "nothing new: `{}` already holds the whole closure; {} build records uploaded ({:.2}s)",
                cache.url(),
                report.records,
                started.elapsed().as_secs_f64()
            ),
        );
        return Ok(ExitStatus::Success);
    }
    printer.status(
        "Pushed",
        format!(
            "{} objects the cache lacked in {} packs ({}) and {} build records to `{}` in {:.2}s",
            report.uploaded_objects,
            report.packs,
            human_bytes(report.uploaded_bytes),
            report.records,
            cache.url(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(ExitStatus::Success)
}

fn pull(args: &CachePullArgs, global: &GlobalSettings, printer: &Printer) -> Result<ExitStatus> {
    let config = load_config()?;
    let trusted = trusted_keys(&args.trust, &config)?;
    let store = Arc::new(open_store(global)?);
    let cache = open_cache(&args.cache, global)?;
    let lockfiles: Vec<PathBuf> = if args.lockfile.is_empty() {
        vec![PathBuf::from("lockfile.json")]
    } else {
        args.lockfile.clone()
    };
    let mut loaded = Vec::new();
    let mut wanted: Vec<Digest> = Vec::new();
    for path in &lockfiles {
        let lockfile = Lockfile::load(path)?;
        let part = match &args.target {
            Some(target) => lockfile.for_target(target),
            None => lockfile.clone(),
        };
        wanted.extend(part.artifacts.iter().map(Artifact::address));
        loaded.push((path.clone(), lockfile, part));
    }
    let runtime = runtime()?;
    let started = std::time::Instant::now();
    let index = runtime
        .block_on(cache.load_index())
        .with_context(|| format!("failed to read the indexes of `{}`", cache.url()))?;
    let mut records: Vec<TrustedRecord> = Vec::new();
    let keys = runtime.block_on(cache.record_keys())?;
    if trusted.is_empty() {
        // Nothing could vouch for any record: say which were left, without reading them.
        if !keys.is_empty() {
            printer.report(
                Severity::Warning,
                &CliError::CacheRecordsDropped {
                    cache: cache.url().to_string(),
                    records: keys,
                },
            );
        }
    } else {
        for key in keys {
            match runtime.block_on(cache.fetch_record(&key, &trusted)) {
                Ok(Some(record)) => {
                    wanted.extend(record.objects.iter().copied());
                    records.push(record);
                }
                Ok(None) => {}
                Err(error) => warn_refused(printer, &error),
            }
        }
    }
    let report = runtime
        .block_on(hstore_cache::pull_objects(
            &cache,
            &index,
            Arc::clone(&store),
            &wanted,
        ))
        .with_context(|| format!("failed to pull from `{}`", cache.url()))?;
    for error in &report.damaged {
        printer.item_error(error);
    }
    let missing: std::collections::HashSet<Digest> = report.missing.iter().copied().collect();
    let mut incomplete = 0;
    for (path, lockfile, part) in &loaded {
        if part.artifacts.iter().all(|artifact| {
            store
                .object_format(&artifact.address())
                .ok()
                .flatten()
                .is_some()
        }) {
            let root = register_root(&store, path, lockfile, args.target.as_deref())?;
            printer.status("Registered", format!("gc root `{root}`"));
        } else {
            incomplete += 1;
        }
    }
    let mut recorded = 0;
    for record in &records {
        if record
            .objects
            .iter()
            .all(|object| !missing.contains(object))
            && install_record(&store, record)?
        {
            recorded += 1;
        }
    }
    printer.status(
        "Pulled",
        format!(
            "{} objects ({}) in {} requests from `{}` in {:.2}s; {} build records",
            report.fetched,
            human_bytes(report.fetched_bytes),
            report.requests,
            cache.url(),
            started.elapsed().as_secs_f64(),
            recorded
        ),
    );
    if incomplete > 0 || !report.damaged.is_empty() {
        let first = report
            .missing
            .iter()
            .take(3)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CliError::IncompletePull {
            incomplete,
            lockfiles: loaded.len(),
            objects: report.missing.len() + report.damaged.len(),
            cache: cache.url().to_string(),
            first,
        }
        .into());
    }
    Ok(ExitStatus::Success)
}

/// Reports a cache error met while reading a build record. A refused record (unsigned, foreign-signed, altered,
/// malformed) is a warning naming its build key, with its hint: it is dropped and the build runs instead.
fn warn_refused(printer: &Printer, error: &hstore_cache::Error) {
    if matches!(error, hstore_cache::Error::RefusedRecord { .. }) {
        printer.report(Severity::Warning, error);
    } else {
        printer.item_error(error);
    }
}

/// Registers a trusted record from a cache (see [`hstore_build::install_record`]).
fn install_record(store: &Store, record: &TrustedRecord) -> Result<bool> {
    Ok(hstore_build::install_record(
        store,
        &record.key,
        &record.record,
        &record.objects,
        &record.signer.to_string(),
    )?)
}

/// `fetch --cache`: brings what the caches hold of `wanted` into the store, trying each cache in order for what
/// is still missing. A damaged object or an unreachable cache is reported and skipped (the next cache, then
/// upstream, provides it). Returns how many objects came from caches.
pub fn substitute_objects(
    caches: &[Cache],
    store: &Arc<Store>,
    wanted: &[Digest],
    runtime: &tokio::runtime::Runtime,
    printer: &Printer,
) -> usize {
    let mut remaining: Vec<Digest> = wanted
        .iter()
        .copied()
        .filter(|address| store.object_format(address).ok().flatten().is_none())
        .collect();
    let mut fetched = 0;
    for cache in caches {
        if remaining.is_empty() {
            break;
        }
        let outcome = runtime.block_on(async {
            let index = cache.load_index().await?;
            hstore_cache::pull_objects(cache, &index, Arc::clone(store), &remaining).await
        });
        match outcome {
            Ok(report) => {
                for error in &report.damaged {
                    printer.item_error(error);
                }
                fetched += report.fetched;
                printer.status(
                    "Substituted",
                    format!(
                        "{} objects ({}) from `{}` in {} requests",
                        report.fetched,
                        human_bytes(report.fetched_bytes),
                        cache.url(),
                        report.requests
                    ),
                );
            }
            Err(error) => {
                printer.warn(format!("skipping cache `{}`", cache.url()));
                printer.item_error(&error);
            }
        }
        remaining.retain(|address| store.object_format(address).ok().flatten().is_none());
    }
    fetched
}

/// `build --cache`: before building `key`, take a trusted record and its objects from the first cache that has
/// them. Returns whether the store now holds a record for `key`.
pub fn substitute_build(
    caches: &[Cache],
    trusted: &[PublicKey],
    store: &Arc<Store>,
    key: &Digest,
    printer: &Printer,
) -> Result<bool> {
    if caches.is_empty() {
        return Ok(false);
    }
    let runtime = runtime()?;
    let key_hex = key.to_hex();
    for cache in caches {
        let record = match runtime.block_on(cache.fetch_record(&key_hex, trusted)) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(error) => {
                warn_refused(printer, &error);
                continue;
            }
        };
        let outcome = runtime.block_on(async {
            let index = cache.load_index().await?;
            hstore_cache::pull_objects(cache, &index, Arc::clone(store), &record.objects).await
        });
        match outcome {
            Ok(report) => {
                for error in &report.damaged {
                    printer.item_error(error);
                }
            }
            Err(error) => {
                printer.item_error(&error);
                continue;
            }
        }
        if install_record(store, &record)? {
            printer.status(
                "Substituted",
                format!(
                    "build {key} from `{}`, signed by {}",
                    cache.url(),
                    record.signer
                ),
            );
            return Ok(true);
        }
    }
    Ok(false)
}

/// `build --push`: uploads a recorded build (output, log, signed record) to `cache`.
pub fn push_build(
    cache: &Cache,
    signer: Option<SecretKey>,
    store: &Arc<Store>,
    key: &Digest,
    printer: &Printer,
) -> Result<()> {
    let key_hex = key.to_hex();
    let Some(record) = store.get_meta::<serde_json::Value>(BUILD_NAMESPACE, &key_hex)? else {
        bail!("build {key} has no record to push");
    };
    let root_name = format!("{BUILD_ROOT_PREFIX}{key_hex}");
    let objects = hstore_cache::record::record_objects(&record)
        .map_err(|reason| anyhow::anyhow!("the record of build {key} is not valid: {reason}"))?;
    let spec = PushSpec {
        roots: BTreeMap::from([(
            root_name,
            Root {
                description: format!("build {key}"),
                addresses: objects,
            },
        )]),
        records: vec![(key_hex, record)],
    };
    let report = runtime()?
        .block_on(hstore_cache::push_closure(
            cache,
            Arc::clone(store),
            spec,
            signer,
        ))
        .with_context(|| format!("failed to push build {key} to `{}`", cache.url()))?;
    printer.status(
        "Pushed",
        format!(
            "build {key}: {} objects in {} packs ({}) to `{}`",
            report.uploaded_objects,
            report.packs,
            human_bytes(report.uploaded_bytes),
            cache.url()
        ),
    );
    Ok(())
}

/// What `build` needs for caches: where to substitute from, whom to trust, where to push and with which key.
pub struct BuildCaches {
    pub substitutes: Vec<Cache>,
    pub trusted: Vec<PublicKey>,
    pub push: Option<(Cache, Option<SecretKey>)>,
}

/// Resolves `build`'s cache flags against `[caches]`.
pub fn build_caches(
    caches: &[String],
    trust: &[String],
    push: Option<&str>,
    sign: Option<&Path>,
    global: &GlobalSettings,
) -> Result<BuildCaches> {
    let config = load_config()?;
    let substitutes = substitutes(caches, global)?;
    let trusted = if substitutes.is_empty() {
        Vec::new()
    } else {
        trusted_keys(trust, &config)?
    };
    if !substitutes.is_empty() && trusted.is_empty() {
        bail!(
            "`--cache` on build needs a key to trust build records with: pass `--trust KEY.pub` or set `[caches] trusted-keys`"
        );
    }
    let push = match push.map(str::to_owned).or_else(|| config.push.clone()) {
        Some(url) => {
            let signer = signing_key(sign, &config)?;
            if signer.is_none() {
                bail!(
                    "`--push` uploads signed build records: pass `--sign KEY` or set `[caches] sign-key`"
                );
            }
            Some((open_cache(&url, global)?, signer))
        }
        None => None,
    };
    Ok(BuildCaches {
        substitutes,
        trusted,
        push,
    })
}
