//! Debian package versions ([`Version`]): parsing `[epoch:]upstream[-revision]` and ordering them exactly as dpkg
//! does (`verrevcmp` in dpkg's lib/dpkg/version.c; Debian Policy §5.6.12).
//!
//! Ordering: epochs compare as numbers; then the upstream parts, then the revisions, each by alternating runs:
//! a non-digit run compares character by character with `~` before everything (even the end of the string), then
//! the end, then letters, then every other character (by ASCII); a digit run compares as a number. So
//! `1.0~rc1 < 1.0 < 1.0a < 1.0+b1` and `1.0~~ < 1.0~ < 1.0`. Versions that compare equal are equal (`1.0` = `1.00`
//! = `0:1.0` = `1.0-0`), so [`Version`] implements `Eq` by that ordering, not by text.
//!
//! Parsing follows dpkg's `parseversion`: the epoch is what precedes the first `:` and MUST be a number; the revision
//! is what follows the last `-` and MUST NOT be empty when that `-` is there; the upstream part MUST NOT be empty.
//! Characters outside `[A-Za-z0-9.+~-]` (upstream, plus `:` when there is an epoch) and `[A-Za-z0-9.+~]`
//! (revision) are refused, as no archive holds such a version.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed Debian version; displays as written.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u32,
    /// Byte range of the upstream part in `text`.
    upstream: (usize, usize),
    /// Byte range of the revision (empty when absent).
    revision: (usize, usize),
}

/// A string that is not a Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version `{version}`: {reason}")]
pub struct VersionError {
    /// The text as given.
    pub version: String,
    /// Why it is not a version.
    pub reason: &'static str,
}

impl Version {
    /// Parses `text` (surrounding whitespace is ignored, as dpkg does).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim();
        let error = |reason| VersionError {
            version: text.to_owned(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(error("it is empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(error("it contains whitespace"));
        }
        let (epoch, rest_start) = match trimmed.split_once(':') {
            Some((epoch, _)) => {
                if epoch.is_empty() || !epoch.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(error("the epoch (before `:`) is not a number"));
                }
                let epoch = epoch
                    .parse::<u32>()
                    .map_err(|_| error("the epoch is too large"))?;
                (epoch, trimmed.find(':').map_or(0, |colon| colon + 1))
            }
            None => (0, 0),
        };
        let rest = &trimmed[rest_start..];
        let (upstream, revision) = match rest.rfind('-') {
            Some(hyphen) => {
                if hyphen + 1 == rest.len() {
                    return Err(error("the revision (after the last `-`) is empty"));
                }
                (
                    (rest_start, rest_start + hyphen),
                    (rest_start + hyphen + 1, trimmed.len()),
                )
            }
            None => ((rest_start, trimmed.len()), (trimmed.len(), trimmed.len())),
        };
        let upstream_text = &trimmed[upstream.0..upstream.1];
        if upstream_text.is_empty() {
            return Err(error("the upstream version is empty"));
        }
        let allowed =
            |byte: u8, extra: &[u8]| byte.is_ascii_alphanumeric() || extra.contains(&byte);
        let upstream_extra: &[u8] = if rest_start > 0 { b".+~-:" } else { b".+~-" };
        if !upstream_text
            .bytes()
            .all(|byte| allowed(byte, upstream_extra))
        {
            return Err(error(
                "the upstream version has a character other than A-Z a-z 0-9 . + ~ - :",
            ));
        }
        if !trimmed[revision.0..revision.1]
            .bytes()
            .all(|byte| allowed(byte, b".+~"))
        {
            return Err(error(
                "the revision has a character other than A-Z a-z 0-9 . + ~",
            ));
        }
        Ok(Version {
            text: trimmed.to_owned(),
            epoch,
            upstream,
            revision,
        })
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part (between the epoch and the revision).
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision (after the last `-`), if any.
    pub fn revision(&self) -> Option<&str> {
        let revision = &self.text[self.revision.0..self.revision.1];
        (!revision.is_empty()).then_some(revision)
    }

    /// The version as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The version as it appears in a `.deb` file name: without the epoch (`1:2.3-4` → `2.3-4`).
    pub fn without_epoch(&self) -> &str {
        &self.text[self.upstream.0..]
    }
}

/// dpkg's `order`: the weight of one byte in a non-digit run; 0 is the end of the string.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(byte) if byte.is_ascii_digit() => 0,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(byte),
        Some(byte) => i32::from(byte) + 256,
    }
}

/// dpkg's `verrevcmp` over two upstream parts or two revisions.
fn compare_part(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |text: &[u8], at: usize| text.get(at).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (left, right) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if left != right {
                return left.cmp(&right);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| {
                compare_part(
                    self.revision().unwrap_or_default().as_bytes(),
                    other.revision().unwrap_or_default().as_bytes(),
                )
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(text: &str) -> Result<Self, VersionError> {
        Version::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn parts() {
        let version = v("1:2.36-9+deb12u4");
        assert_eq!(
            (version.epoch(), version.upstream(), version.revision()),
            (1, "2.36", Some("9+deb12u4"))
        );
        assert_eq!(version.without_epoch(), "2.36-9+deb12u4");
        let version = v("1.2-3-4");
        assert_eq!(
            (version.upstream(), version.revision()),
            ("1.2-3", Some("4"))
        );
        let version = v(" 7 ");
        assert_eq!(
            (version.epoch(), version.upstream(), version.revision()),
            (0, "7", None)
        );
        assert_eq!(version.to_string(), "7");
        assert_eq!(
            v("2:1:0-1").upstream(),
            "1:0",
            "a colon in upstream is allowed with an epoch"
        );
    }

    #[test]
    fn invalid_versions() {
        for text in [
            "",
            "  ",
            "a:1",
            ":1",
            "1-",
            "1.0 1",
            "-1",
            "1:",
            "1_0",
            "1.0-a_b",
            "1:2-3:4",
            "99999999999:1",
        ] {
            assert!(Version::parse(text).is_err(), "{text:?} should be refused");
        }
        assert_eq!(
            Version::parse("1-").unwrap_err().to_string(),
            "invalid Debian version `1-`: the revision (after the last `-`) is empty"
        );
    }

    #[test]
    fn tilde_sorts_before_everything_including_the_end() {
        assert!(v("1.0~rc1") < v("1.0"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("1.0~~a") < v("1.0~"));
        assert!(v("1.0~") < v("1.0"));
        assert!(v("1.0~rc1") < v("1.0~rc2"));
        assert!(v("1.0") < v("1.0a"), "the end sorts before a letter");
        assert!(v("1.0a") < v("1.0+"), "letters sort before non-letters");
        assert!(v("1.0-1~bpo1") < v("1.0-1"));
    }

    #[test]
    fn epochs_and_numbers() {
        assert!(v("1:0.1") > v("9.9"));
        assert!(v("0:1.0") == v("1.0"));
        assert!(v("1.00") == v("1.0"));
        assert!(v("1.0-0") == v("1.0"));
        assert!(v("1.10") > v("1.9"));
        assert!(v("2.36-9+deb12u4") < v("2.36-9+deb12u10"));
        assert!(v("12.2.0-14") > v("12.2.0-13+deb12u1"));
    }

    /// Every pair compared by our code and by the real `dpkg --compare-versions`.
    #[test]
    fn matches_dpkg_compare_versions() {
        let versions = [
            "1.0",
            "1.0~rc1",
            "1.0~~",
            "1.0~",
            "1.0~~a",
            "1.0a",
            "1.0+",
            "1.0.1",
            "1.00",
            "1:0.1",
            "0:1.0",
            "1.0-1",
            "1.0-0",
            "1.0-1~bpo1",
            "1.0-1+b1",
            "2.36-9+deb12u4",
            "2.36-9+deb12u10",
            "12.2.0-14",
            "12.2.0-13+deb12u1",
            "1.2.3-4.1",
            "1.2.3-4a",
            "9",
            "10",
            "a",
            "1a2b3",
            "1a2b",
            "1.0+dfsg-1",
            "1.0+dfsg1-1",
            "3.0.11-1~deb12u2",
            "3.0.11-1",
            "1:2.38.1-5+deb12u3",
            "2.38.1-5+deb12u3",
            "1.2~beta.3",
            "1.2~beta3",
            "0",
            "00",
            "0.0",
            "1..0",
            "1.0..",
        ];
        let mut mismatches = Vec::new();
        for (index, a) in versions.iter().enumerate() {
            for b in &versions[index + 1..] {
                let ours = v(a).cmp(&v(b));
                let dpkg = dpkg_compare(a, b);
                if ours != dpkg {
                    mismatches.push(format!("{a} vs {b}: ours {ours:?}, dpkg {dpkg:?}"));
                }
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    /// Asks `dpkg --compare-versions` (which must be installed: the test fails, not skips, without it).
    fn dpkg_compare(a: &str, b: &str) -> Ordering {
        let holds = |relation: &str| {
            let status = Command::new("dpkg")
                .args(["--compare-versions", a, relation, b])
                .status()
                .expect("run dpkg (install dpkg: this test compares against it)");
            status.success()
        };
        if holds("lt") {
            Ordering::Less
        } else if holds("eq") {
            Ordering::Equal
        } else {
            assert!(holds("gt"), "dpkg says neither lt, eq nor gt for {a} {b}");
            Ordering::Greater
        }
    }
}
