//! Python targets and wheel tags (pure data, shared by the `requirements` fetcher and the build's wheelhouse
//! shape): a recipe target's `python` table ([`PythonTarget`], re-exported by `recipe`, which depends on this module
//! and never the other way round) and its validated form [`TargetPython`], its compatible-tag list in priority
//! order, wheel file names parsed into their tag sets, and the time format of index snapshots.
//!
//! The list MUST equal what `packaging.tags` computes on a machine of the target platform (CPython `cpXY`, glibc
//! `manylinux_2_Y`): `cpXY-cpXY-P`, `cpXY-abi3-P`, `cpXY-none-P`, then `cpXW-abi3-P` for every older minor, then
//! `pyXY-none-P`, `py3-none-P`, `pyXW-none-P`, then `cpXY-none-any`, `pyXY-none-any`, `py3-none-any`,
//! `pyXW-none-any`; where `P` runs over `manylinux_2_Y_ARCH` down to `manylinux_2_17` (2_5 on x86_64), each legacy
//! alias (`manylinux2014`, `manylinux2010`, `manylinux1`) right after the level it names, and finally `linux_ARCH`.
//! `model/tests/data/tags-*.txt` hold the lists `packaging` 26.4 gave (scripts/gen-python-tags.py); the unit
//! tests compare against them. See <https://packaging.python.org/en/latest/specifications/platform-compatibility-tags/>.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// The architectures and glibc levels `uv pip compile --python-platform` accepts (uv 0.13), which are the ones a
/// target may name.
const ARCHES: [&str; 2] = ["x86_64", "aarch64"];
const GLIBC_MINORS: [u32; 12] = [17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];

/// `[targets.<name>] python = { version = "3.10", platform = "manylinux_2_28_aarch64" }`: the interpreter and
/// platform a `requirements` source locks wheels for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonTarget {
    /// `MAJOR.MINOR` of CPython.
    pub version: String,
    /// `manylinux_X_Y_ARCH` (the target's glibc level and architecture).
    pub platform: String,
}

/// A validated [`PythonTarget`]: CPython `3.minor` on `manylinux_2_<glibc>_<arch>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPython {
    /// The minor version of CPython 3.
    pub minor: u32,
    /// The glibc minor version (`2.<glibc>`).
    pub glibc: u32,
    /// The architecture (`x86_64`, `aarch64`).
    pub arch: String,
}

impl TargetPython {
    /// Validates a recipe's `python` table; the error says what is accepted.
    pub fn parse(target: &PythonTarget) -> Result<Self, String> {
        let minor = target
            .version
            .strip_prefix("3.")
            .and_then(|minor| minor.parse::<u32>().ok())
            .filter(|minor| (6..=99).contains(minor))
            .ok_or_else(|| {
                format!(
                    "python version `{}` is not `3.MINOR` (e.g. \"3.10\")",
                    target.version
                )
            })?;
        let invalid = || {
            format!(
                "python platform `{}` is not `manylinux_2_Y_ARCH` with ARCH one of {} and Y one of {}",
                target.platform,
                ARCHES.join(", "),
                GLIBC_MINORS.map(|minor| minor.to_string()).join(", ")
            )
        };
        let rest = target
            .platform
            .strip_prefix("manylinux_2_")
            .ok_or_else(invalid)?;
        let (glibc, arch) = rest.split_once('_').ok_or_else(invalid)?;
        let glibc: u32 = glibc.parse().map_err(|_| invalid())?;
        if !GLIBC_MINORS.contains(&glibc) || !ARCHES.contains(&arch) {
            return Err(invalid());
        }
        Ok(Self {
            minor,
            glibc,
            arch: arch.to_owned(),
        })
    }

    /// The lockfile's name for this target: `cp310-manylinux_2_28_aarch64`.
    pub fn key(&self) -> String {
        format!("cp3{}-manylinux_2_{}_{}", self.minor, self.glibc, self.arch)
    }

    /// `3.10`.
    pub fn version(&self) -> String {
        format!("3.{}", self.minor)
    }

    /// The value of uv's `--python-platform`: `aarch64-manylinux_2_28`.
    pub fn uv_platform(&self) -> String {
        format!("{}-manylinux_2_{}", self.arch, self.glibc)
    }

    /// The platform tags, best first (see the module docs).
    pub fn platforms(&self) -> Vec<String> {
        let arch = &self.arch;
        let oldest = if arch == "x86_64" { 5 } else { 17 };
        let mut platforms = Vec::new();
        for minor in (oldest..=self.glibc).rev() {
            platforms.push(format!("manylinux_2_{minor}_{arch}"));
            let legacy = match minor {
                17 => Some("manylinux2014"),
                12 => Some("manylinux2010"),
                5 => Some("manylinux1"),
                _ => None,
            };
            if let Some(legacy) = legacy {
                platforms.push(format!("{legacy}_{arch}"));
            }
        }
        platforms.push(format!("linux_{arch}"));
        platforms
    }

    /// Every compatible `python-abi-platform` tag, best first (see the module docs).
    pub fn compatible_tags(&self) -> Vec<String> {
        let platforms = self.platforms();
        let interpreter = format!("cp3{}", self.minor);
        let mut tags = Vec::new();
        for abi in [interpreter.as_str(), "abi3", "none"] {
            for platform in &platforms {
                tags.push(format!("{interpreter}-{abi}-{platform}"));
            }
        }
        for minor in (2..self.minor).rev() {
            for platform in &platforms {
                tags.push(format!("cp3{minor}-abi3-{platform}"));
            }
        }
        let mut pythons = vec![format!("py3{}", self.minor), "py3".to_owned()];
        pythons.extend((0..self.minor).rev().map(|minor| format!("py3{minor}")));
        for python in &pythons {
            for platform in &platforms {
                tags.push(format!("{python}-none-{platform}"));
            }
        }
        tags.push(format!("{interpreter}-none-any"));
        for python in &pythons {
            tags.push(format!("{python}-none-any"));
        }
        tags
    }

    /// A lookup from tag to priority (lower is better) for [`best_priority`].
    pub fn priorities(&self) -> HashMap<String, usize> {
        self.compatible_tags()
            .into_iter()
            .enumerate()
            .map(|(priority, tag)| (tag, priority))
            .collect()
    }
}

/// A wheel file name, parsed (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelName {
    /// The project name, PEP 503-normalized.
    pub name: String,
    /// The version as written.
    pub version: String,
    /// The compressed tag set (`cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64`).
    pub tags: String,
    /// Every tag the set expands to.
    pub expanded: BTreeSet<String>,
}

impl WheelName {
    /// Parses `filename`; `None` if it is not a wheel file name.
    pub fn parse(filename: &str) -> Option<Self> {
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts.as_slice() {
            [name, version, python, abi, platform] | [name, version, _, python, abi, platform] => {
                (*name, *version, *python, *abi, *platform)
            }
            _ => return None,
        };
        let mut expanded = BTreeSet::new();
        for python in python.split('.') {
            for abi in abi.split('.') {
                for platform in platform.split('.') {
                    expanded.insert(format!("{python}-{abi}-{platform}"));
                }
            }
        }
        Some(Self {
            name: normalize_name(name),
            version: version.to_owned(),
            tags: format!("{python}-{abi}-{platform}"),
            expanded,
        })
    }

    /// The best priority of any of its tags for a target (`None`: incompatible).
    pub fn best_priority(&self, priorities: &HashMap<String, usize>) -> Option<usize> {
        self.expanded
            .iter()
            .filter_map(|tag| priorities.get(tag).copied())
            .min()
    }
}

/// Whether `text` is `YYYY-MM-DDTHH:MM:SSZ` (an index snapshot time, like uv's `--exclude-newer`).
pub fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(character.to_ascii_lowercase());
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(version: &str, platform: &str) -> TargetPython {
        TargetPython::parse(&PythonTarget {
            version: version.into(),
            platform: platform.into(),
        })
        .expect("a valid target")
    }

    /// The oracle: `packaging.tags` 26.4 for the same target (see scripts/gen-python-tags.py).
    #[test]
    fn compatible_tags_match_packaging_for_cp310_manylinux_2_28_aarch64() {
        let expected = include_str!("../tests/data/tags-cp310-manylinux_2_28_aarch64.txt");
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(
            target("3.10", "manylinux_2_28_aarch64").compatible_tags(),
            expected
        );
    }

    #[test]
    fn compatible_tags_match_packaging_for_cp311_manylinux_2_17_x86_64() {
        let expected = include_str!("../tests/data/tags-cp311-manylinux_2_17_x86_64.txt");
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(
            target("3.11", "manylinux_2_17_x86_64").compatible_tags(),
            expected
        );
    }

    #[test]
    fn wheel_names_expand_compressed_tag_sets() {
        let wheel = WheelName::parse(
            "ml_dtypes-0.5.1-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        )
        .expect("a wheel name");
        assert_eq!(wheel.name, "ml-dtypes");
        assert_eq!(wheel.version, "0.5.1");
        assert_eq!(wheel.expanded.len(), 2);
        let aarch64 = target("3.10", "manylinux_2_28_aarch64").priorities();
        let x86_64 = target("3.10", "manylinux_2_28_x86_64").priorities();
        assert_eq!(wheel.best_priority(&aarch64), Some(11));
        assert_eq!(wheel.best_priority(&x86_64), None);
        assert!(WheelName::parse("foo-1.0.tar.gz").is_none());
        let built = WheelName::parse("foo-1.0-1-py3-none-any.whl").expect("build tag");
        assert_eq!(built.tags, "py3-none-any");
    }

    #[test]
    fn snapshot_times_are_validated() {
        assert!(is_rfc3339_utc("2026-11-01T00:00:00Z"));
        assert!(!is_rfc3339_utc("2026-11-01"));
        assert!(!is_rfc3339_utc("2026-11-01T00:00:00+00:00"));
    }

    #[test]
    fn targets_outside_what_uv_resolves_for_are_refused() {
        for (version, platform) in [
            ("3", "manylinux_2_28_aarch64"),
            ("3.10", "manylinux_2_27_aarch64"),
            ("3.10", "manylinux_2_28_riscv64"),
            ("3.10", "musllinux_1_2_x86_64"),
        ] {
            let error = TargetPython::parse(&PythonTarget {
                version: version.into(),
                platform: platform.into(),
            })
            .expect_err("invalid");
            assert!(
                error.contains(version) || error.contains(platform),
                "{error}"
            );
        }
        assert_eq!(
            target("3.10", "manylinux_2_28_aarch64").uv_platform(),
            "aarch64-manylinux_2_28"
        );
    }
}
