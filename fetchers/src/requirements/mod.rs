//! `requirements` sources: Python requirements locked to one wheel set per target (docs/recipes.md, docs/lockfile.md "Python requirements").
//!
//! Lock, per source:
//! 1. The requirement text is the recipe's inline lines plus the `requirements_file` read from another source's
//!    (pinned) tree, parsed as data by [`input`] before anything runs: PEP 508 requirements by name and
//!    `--hash=sha256:…` only; options, `${…}`, URL and path requirements are refused naming file and line. uv is
//!    given hstore's own rendering of the parsed lines, never the text as written.
//! 2. The index snapshot time (`exclude_newer`) is the recipe's, else the one the lockfile recorded (kept until
//!    `--update`), else now. Files uploaded later are invisible, as with uv's `--exclude-newer` (PEP 691 v1.1
//!    `upload-time`), so re-resolving after a recipe edit sees the same index.
//! 3. Pins: a fully pinned, hashed input (`name==version --hash=sha256:…` on every line) is taken as it is; anything
//!    else is resolved per target by a pinned uv ([`uv`], which argues the choice), recorded as [`Resolution`].
//! 4. Each pin's file comes from the PEP 691 page ([`index`]): wheels only, not yanked, not newer than the snapshot,
//!    (for hashed inputs) with a sha256 the input lists, and compatible with the target; the best by the target's tag
//!    priority ([`tags`]) wins, ties broken by file name. No such wheel is [`Error::NoCompatibleWheel`] naming the
//!    package, version, target and the tags that do exist.
//! 5. Each wheel streams into the store as a blob, sha256-verified before it is stored ([`ensure_wheel`]); store
//!    metadata `wheel-sha256/<sha256>` records the address, so a warm lock or fetch touches no network.
//!
//! A source whose recipe table is unchanged keeps its wheels and resolution (no uv run, no index request) unless it
//! is named by `--update`.

pub mod index;
pub mod input;
pub mod pep508;
pub mod uv;

/// Target Pythons and wheel tags live in the model crate (the build's wheelhouse shape reads them too).
pub use hstore_model::python as tags;

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hstore_model::Sha256;
use hstore_store::Digest;

use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::{Artifact, Resolution, WheelArtifact};
use crate::pinned::Pinned;
use crate::recipe::PythonTarget;
use index::IndexFile;
use tags::{TargetPython, WheelName};

/// Store metadata namespace: sha256 of a wheel → its blob.
pub const META_NAMESPACE: &str = "wheel-sha256";

/// The wheel download records' kind, listed by the registry of record namespaces ([`crate::kinds::records`]).
pub const RECORDS: hstore_store::RecordKind = crate::record::download_kind(META_NAMESPACE);

/// The `resolver` recorded for pre-pinned inputs.
pub const PINNED_RESOLVER: &str = "pinned";

/// What one `requirements` source asks for, with its requirement text assembled.
#[derive(Clone, Debug)]
pub struct RequirementsRequest<'a> {
    /// The source's name (for messages).
    pub source_name: &'a str,
    /// The parsed requirement lines (inline lines, then the file's).
    pub requirements: input::Requirements,
    /// The canonical index URL, without a trailing slash.
    pub index: &'a str,
    /// The recipe's fixed snapshot time, if any.
    pub exclude_newer: Option<&'a str>,
    /// The targets' Pythons, by recipe target name.
    pub targets: &'a BTreeMap<String, PythonTarget>,
}

/// One wheel chosen for a target, before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelChoice {
    /// Normalized name.
    pub name: String,
    /// Version.
    pub version: String,
    /// File name.
    pub filename: String,
    /// Canonical URL.
    pub url: String,
    /// sha256 from the index.
    pub sha256: Sha256,
    /// The wheel's compressed tag set.
    pub tags: String,
    /// The target key (`cp310-manylinux_2_28_aarch64`).
    pub target: String,
}

impl WheelChoice {
    /// The lockfile id: `wheel+<target>#<url>`.
    pub fn id(&self) -> String {
        format!("wheel+{}#{}", self.target, self.url)
    }

    /// The choice a locked wheel artifact records.
    pub fn from_artifact(wheel: &WheelArtifact) -> Self {
        Self {
            name: wheel.name.clone(),
            version: wheel.version.clone(),
            filename: wheel.filename.clone(),
            url: wheel.url.clone(),
            sha256: wheel.sha256.clone(),
            tags: wheel.tags.clone(),
            target: wheel.target.clone(),
        }
    }

    fn artifact(&self, address: Digest, size: u64) -> Artifact {
        Artifact::Wheel(WheelArtifact {
            id: self.id().into(),
            name: self.name.clone(),
            version: self.version.clone(),
            filename: self.filename.clone(),
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            tags: self.tags.clone(),
            target: self.target.clone(),
            address,
            size,
        })
    }
}

/// A pin: name, version, and for hashed inputs the sha256 values allowed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pin {
    name: String,
    version: String,
    hashes: Vec<String>,
}

/// Locks one source: keeps `kept` (wheels and resolution of an unchanged source) or resolves afresh against the
/// recipe's `exclude_newer`, else `snapshot` (the lockfile's last snapshot time unless `--update`, else the time the
/// lock run started). Returns the wheels, the resolution and the per-item errors.
pub async fn lock(
    fetcher: &Fetcher,
    request: &RequirementsRequest<'_>,
    kept: Option<(&Resolution, Vec<&Artifact>)>,
    snapshot: &str,
) -> (Vec<Artifact>, Option<Resolution>, Vec<Error>) {
    if let Some((resolution, artifacts)) = kept {
        let choices: Vec<(WheelChoice, &Artifact)> = artifacts
            .into_iter()
            // A projection, not a per-kind decision: a kept requirements source lists only wheels.
            .filter_map(|artifact| {
                if let Artifact::Wheel(wheel) = artifact {
                    Some((WheelChoice::from_artifact(wheel), artifact))
                } else {
                    None
                }
            })
            .collect();
        let (artifacts, errors) = ensure_all(
            fetcher,
            choices
                .iter()
                .map(|(choice, artifact)| (choice, Some(*artifact))),
        )
        .await;
        return (artifacts, Some(resolution.clone()), errors);
    }
    let snapshot = request.exclude_newer.unwrap_or(snapshot).to_owned();
    match resolve(fetcher, request, &snapshot).await {
        Ok((resolver, choices, mut errors)) => {
            let (artifacts, mut fetch_errors) =
                ensure_all(fetcher, choices.iter().map(|choice| (choice, None))).await;
            errors.append(&mut fetch_errors);
            let resolution = Resolution {
                resolver,
                exclude_newer: snapshot,
            };
            (artifacts, Some(resolution), errors)
        }
        Err(error) => (Vec::new(), None, vec![error]),
    }
}

/// Pins every target and chooses its wheels: (resolver, choices, per-item errors).
async fn resolve(
    fetcher: &Fetcher,
    request: &RequirementsRequest<'_>,
    snapshot: &str,
) -> Result<(String, Vec<WheelChoice>, Vec<Error>)> {
    let mut targets: BTreeMap<String, TargetPython> = BTreeMap::new();
    for (name, python) in request.targets {
        let target = TargetPython::parse(python).map_err(|message| Error::Requirements {
            source_name: request.source_name.to_owned(),
            message: format!("target `{name}`: {message}"),
        })?;
        targets.insert(target.key(), target);
    }
    if targets.is_empty() {
        return Err(Error::Requirements {
            source_name: request.source_name.to_owned(),
            message: "no target of the recipe declares `python = { version, platform }`".into(),
        });
    }
    if fetcher.offline() {
        return Err(Error::Offline {
            what: format!(
                "the index `{}` (to resolve `{}`)",
                request.index, request.source_name
            ),
        });
    }
    let mut errors = Vec::new();
    let mut pins: BTreeMap<String, Vec<Pin>> = BTreeMap::new();
    let resolver = if let Some(pinned) = pinned(&request.requirements) {
        for key in targets.keys() {
            pins.insert(key.clone(), pinned.clone());
        }
        PINNED_RESOLVER.to_owned()
    } else {
        let program = fetcher.uv().to_path_buf();
        let version = crate::error::blocking({
            let program = program.clone();
            move || uv::Uv::new(&program).version()
        })
        .await?;
        let index_url = fetcher.mirrors().rewrite(request.index);
        let cache_dir = fetcher.cache_dir().join("uv");
        let mut pending: FuturesUnordered<_> = targets
            .values()
            .map(|target| {
                let (program, text, index_url, snapshot, cache_dir, target) = (
                    program.clone(),
                    request.requirements.render(),
                    index_url.clone(),
                    snapshot.to_owned(),
                    cache_dir.clone(),
                    target.clone(),
                );
                crate::error::blocking(move || {
                    let pins = uv::Uv::new(&program)
                        .compile(&text, &target, &index_url, &snapshot, &cache_dir)?;
                    Ok((target.key(), pins))
                })
            })
            .collect();
        while let Some(result) = pending.next().await {
            match result {
                Ok((key, resolved)) => {
                    let resolved = resolved
                        .into_iter()
                        .map(|(name, version)| Pin {
                            name,
                            version,
                            hashes: Vec::new(),
                        })
                        .collect();
                    pins.insert(key, resolved);
                }
                Err(error) => errors.push(error),
            }
        }
        version
    };

    // One page per project, shared by the targets.
    let mut names: Vec<&str> = pins
        .values()
        .flatten()
        .map(|pin| pin.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut pending: FuturesUnordered<_> = names
        .iter()
        .map(|name| async move {
            (
                *name,
                index::project_files(fetcher, request.index, name).await,
            )
        })
        .collect();
    let mut pages: HashMap<&str, Vec<IndexFile>> = HashMap::new();
    while let Some((name, result)) = pending.next().await {
        match result {
            Ok(files) => {
                pages.insert(name, files);
            }
            Err(error) => {
                errors.push(error.context(format!("failed to read the index page of `{name}`")));
            }
        }
    }
    drop(pending);

    let mut choices = Vec::new();
    for (key, target_pins) in &pins {
        let target = &targets[key];
        let priorities = target.priorities();
        for pin in target_pins {
            let Some(files) = pages.get(pin.name.as_str()) else {
                continue;
            };
            match choose(files, pin, target, &priorities, snapshot) {
                Ok(choice) => choices.push(choice),
                Err(error) => errors.push(error),
            }
        }
    }
    Ok((resolver, choices, errors))
}

/// Chooses the best wheel of `pin` for `target` (see the module docs).
fn choose(
    files: &[IndexFile],
    pin: &Pin,
    target: &TargetPython,
    priorities: &HashMap<String, usize>,
    snapshot: &str,
) -> Result<WheelChoice> {
    let mut best: Option<(usize, &IndexFile, WheelName)> = None;
    let mut available: Vec<String> = Vec::new();
    let mut hash_mismatch = false;
    for file in files {
        let Some(wheel) = WheelName::parse(&file.filename) else {
            continue;
        };
        if wheel.name != pin.name
            || !same_version(&wheel.version, &pin.version)
            || file.yanked.is_yanked()
            || is_newer(file.upload_time.as_deref(), snapshot)
        {
            continue;
        }
        available.push(wheel.tags.clone());
        let Some(priority) = wheel.best_priority(priorities) else {
            continue;
        };
        let sha256 = file
            .hashes
            .get("sha256")
            .map(|hash| hash.to_ascii_lowercase());
        if !pin.hashes.is_empty()
            && !sha256
                .as_ref()
                .is_some_and(|sha256| pin.hashes.contains(sha256))
        {
            hash_mismatch = true;
            continue;
        }
        let better = best.as_ref().is_none_or(|(best_priority, best_file, _)| {
            (priority, &file.filename) < (*best_priority, &best_file.filename)
        });
        if better {
            best = Some((priority, file, wheel));
        }
    }
    let Some((_, file, wheel)) = best else {
        available.sort();
        available.dedup();
        return Err(Error::NoCompatibleWheel {
            name: pin.name.clone(),
            version: pin.version.clone(),
            target: target.key(),
            available,
            hash_mismatch,
        });
    };
    let sha256 = file
        .hashes
        .get("sha256")
        .and_then(|hash| Sha256::new(hash.to_ascii_lowercase()).ok())
        .ok_or_else(|| Error::IndexPage {
            url: file.url.clone(),
            message: format!("file `{}` has no valid sha256 in the index", file.filename),
        })?;
    Ok(WheelChoice {
        name: pin.name.clone(),
        version: wheel.version,
        filename: file.filename.clone(),
        url: file.url.clone(),
        sha256,
        tags: wheel.tags,
        target: target.key(),
    })
}

/// Ensures every choice concurrently (the downloader bounds the network side); artifacts sorted by id.
async fn ensure_all<'a>(
    fetcher: &Fetcher,
    choices: impl Iterator<Item = (&'a WheelChoice, Option<&'a Artifact>)>,
) -> (Vec<Artifact>, Vec<Error>) {
    let mut pending: FuturesUnordered<_> = choices
        .map(
            |(choice, locked)| async move { (choice, ensure_wheel(fetcher, choice, locked).await) },
        )
        .collect();
    let mut artifacts = Vec::new();
    let mut errors = Vec::new();
    while let Some((choice, result)) = pending.next().await {
        match result {
            Ok(artifact) => artifacts.push(artifact),
            Err(error) => errors.push(error.context(format!(
                "failed to fetch wheel `{}` for `{}`",
                choice.filename, choice.target
            ))),
        }
    }
    artifacts.sort_by(|a, b| a.id().cmp(b.id()));
    (artifacts, errors)
}

/// Makes the store hold `choice`'s wheel (downloading and verifying its sha256 if needed); with `locked`, the blob
/// must come out at the locked address.
pub async fn ensure_wheel(
    fetcher: &Fetcher,
    choice: &WheelChoice,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    let pinned = Pinned {
        id: choice.id(),
        what: format!("wheel `{}`", choice.filename),
        label: format!("wheel `{}`", choice.filename),
        sha256: choice.sha256.as_str(),
        records: &RECORDS,
        record_key: choice.sha256.to_string(),
        report: ("wheel", &choice.filename),
    };
    let url = choice.url.clone();
    let stored = crate::pinned::ensure_blob(fetcher, &pinned, locked, url).await?;
    Ok(choice.artifact(stored.address, stored.size))
}

/// A pre-pinned input ([`input::Requirements::pinned`]) as sorted pins; `None` when uv must resolve.
fn pinned(requirements: &input::Requirements) -> Option<Vec<Pin>> {
    let mut pins: Vec<Pin> = requirements
        .pinned()?
        .into_iter()
        .map(|(name, version, hashes)| Pin {
            name,
            version,
            hashes,
        })
        .collect();
    pins.sort();
    Some(pins)
}

/// PEP 440 equality of release versions as far as file names need it: case-insensitive, trailing `.0`s ignored.
fn same_version(a: &str, b: &str) -> bool {
    fn canonical(version: &str) -> (String, String) {
        let version = version.to_ascii_lowercase();
        let split = version
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(version.len());
        let (release, rest) = version.split_at(split);
        let mut release = release.trim_end_matches('.').to_owned();
        while release.ends_with(".0") {
            release.truncate(release.len() - 2);
        }
        (release, rest.to_owned())
    }
    canonical(a) == canonical(b)
}

/// Whether a file's `upload-time` is after the snapshot (both RFC 3339 UTC; compared to the second).
fn is_newer(upload_time: Option<&str>, snapshot: &str) -> bool {
    match (upload_time.and_then(|t| t.get(..19)), snapshot.get(..19)) {
        (Some(upload), Some(snapshot)) => upload > snapshot,
        _ => false,
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let seconds = hstore_store::clock::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format_utc(seconds)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian; Howard Hinnant's `civil_from_days`).
pub fn format_utc(seconds: u64) -> String {
    let days = (seconds / 86_400).cast_signed();
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_format_and_validate() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_798_761_599), "2026-12-31T23:59:59Z");
        assert!(tags::is_rfc3339_utc(&utc_now()));
        assert!(is_newer(
            Some("2026-11-02T00:00:00.123Z"),
            "2026-11-01T00:00:00Z"
        ));
        assert!(!is_newer(
            Some("2026-11-01T00:00:00.999Z"),
            "2026-11-01T00:00:00Z"
        ));
    }

    #[test]
    fn hashed_inputs_become_sorted_pins_and_ranges_do_not() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let text = format!("foo==1.0 --hash=sha256:{a}\nBar_Baz==2.0 --hash=sha256:{b}\n");
        let origin = input::Origin::File { file: "up:r.txt" };
        let parsed = input::Requirements::parse(&[(origin, text.as_str())]).expect("valid");
        let pins = pinned(&parsed).expect("pre-pinned");
        assert_eq!(pins[0].name, "bar-baz");
        assert_eq!(pins[1].hashes, vec![a.clone()]);
        let ranged = format!("foo>=1.0 --hash=sha256:{a}\n");
        let parsed = input::Requirements::parse(&[(origin, ranged.as_str())]).expect("valid");
        assert!(pinned(&parsed).is_none());
    }

    #[test]
    fn versions_compare_like_pep_440_releases() {
        assert!(same_version("1.0", "1.0.0"));
        assert!(same_version("2.0.0RC1", "2.0rc1"));
        assert!(!same_version("1.0.1", "1.0"));
        assert!(!same_version("10", "1"));
    }
}
