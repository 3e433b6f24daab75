//! Typed upstream identities: [`CommitId`], [`Sha256`] and [`GitRef`].
//!
//! Each is validated once, where it is parsed (recipe, lockfile, `git rev-parse` output, a registry index), and is a
//! plain string on the wire (`#[serde(try_from = "String")]`), so the lockfile format is unchanged and a hand-edited
//! lockfile with a malformed value is refused at load time, naming the value, instead of failing deep in a fetcher.
//! They deref to `str`, so code that only reads them needs no conversion.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value that is not a valid id of its kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: expected {expected}")]
pub struct IdError {
    /// "sha256", "git commit" or "git ref".
    pub kind: &'static str,
    /// The value as found.
    pub value: String,
    /// What a valid one looks like.
    pub expected: &'static str,
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $expected:literal, $valid:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError {
                        kind: $kind,
                        value,
                        expected: $expected,
                    })
                }
            }

            /// The text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::new(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id!(
    /// A sha256 digest as upstream publishes it: 64 lowercase hex digits (a `.crate` checksum, a recipe's pin).
    Sha256,
    "sha256",
    "64 lowercase hex digits",
    |text| text.len() == 64 && is_lower_hex(text)
);

string_id!(
    /// A full git commit id: 40 lowercase hex digits (SHA-1 repositories) or 64 (SHA-256 repositories). Never an
    /// abbreviation: a lockfile pins exactly one commit.
    CommitId,
    "git commit",
    "a full commit id (40 or 64 lowercase hex digits)",
    |text| (text.len() == 40 || text.len() == 64) && is_lower_hex(text)
);

string_id!(
    /// What a recipe asks git for: a branch, a tag, a commit or `HEAD`. Refused when it could be read as an option
    /// (leading `-`) or holds whitespace or control characters, which no ref can.
    GitRef,
    "git ref",
    "a branch, tag or commit name (no leading `-`, no whitespace)",
    |text| !text.is_empty()
        && !text.starts_with('-')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
);

/// The id a lockfile artifact is sorted and referred to by (`git+<url>#<commit>`, `crate+<source>#<name>@<version>`,
/// …; docs/lockfile.md lists each kind's form). Each kind's fetcher module builds it; everything else only compares,
/// orders and prints it. Serialized as the plain string, so lockfile bytes do not depend on the type.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ArtifactId(String);

impl ArtifactId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ArtifactId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ArtifactId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl std::ops::Deref for ArtifactId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ArtifactId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ArtifactId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ArtifactId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ArtifactId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ArtifactId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_id_is_its_string_in_json_and_compares_with_text() {
        let id = ArtifactId::from("git+file:///repo#0123");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""git+file:///repo#0123""#
        );
        let back: ArtifactId = serde_json::from_str(r#""git+file:///repo#0123""#).unwrap();
        assert_eq!(back, id);
        assert!(id == "git+file:///repo#0123");
        assert_eq!(id.as_str(), &*id);
        assert_eq!(id.to_string(), "git+file:///repo#0123");
    }

    #[test]
    fn validates_and_round_trips_as_plain_strings() {
        let sha = "ab".repeat(32);
        let parsed: Sha256 = serde_json::from_str(&format!("\"{sha}\"")).unwrap();
        assert_eq!(parsed, sha.as_str());
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            format!("\"{sha}\"")
        );
        assert!(Sha256::new("AB".repeat(32)).is_err());
        assert!(Sha256::new("ab").is_err());

        assert!(CommitId::new("0123456789abcdef0123456789abcdef01234567").is_ok());
        assert!(CommitId::new("0123456").is_err());
        let error = serde_json::from_str::<CommitId>("\"main\"").unwrap_err();
        assert!(
            error.to_string().contains("invalid git commit `main`"),
            "{error}"
        );

        assert!(GitRef::new("issue/951").is_ok());
        assert!(GitRef::new("--upload-pack=evil").is_err());
        assert!(GitRef::new("a b").is_err());
        assert!(GitRef::new("").is_err());
    }
}
