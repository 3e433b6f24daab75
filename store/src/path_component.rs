//! [`PathComponent`]: one validated name inside a tree.
//!
//! Names are bytes, not UTF-8 (Linux file names may be any bytes but `/` and NUL). A component MUST NOT be empty,
//! `.`, `..`, contain `/` or NUL, or exceed 255 bytes. Validation happens on every path into the store (ingest, decode
//! of a directory node, bundle import), which is what makes materialization unable to escape its destination.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// Longest name Linux file systems accept.
pub const MAX_NAME_LEN: usize = 255;

/// A single validated file name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathComponent(Vec<u8>);

/// Why bytes are not a valid [`PathComponent`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid file name `{}`: {reason}", String::from_utf8_lossy(name))]
pub struct PathComponentError {
    /// The rejected name.
    pub name: Vec<u8>,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl PathComponent {
    /// Validates `name`.
    pub fn new(name: impl Into<Vec<u8>>) -> Result<Self, PathComponentError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("empty name")
        } else if name == b"." || name == b".." {
            Some("`.` and `..` are not names")
        } else if name.contains(&b'/') {
            Some("contains `/`")
        } else if name.contains(&0) {
            Some("contains a NUL byte")
        } else if name.len() > MAX_NAME_LEN {
            Some("longer than 255 bytes")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(PathComponentError { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The raw name bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as an OS string, for joining onto paths.
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }
}

impl TryFrom<&OsStr> for PathComponent {
    type Error = PathComponentError;

    fn try_from(name: &OsStr) -> Result<Self, Self::Error> {
        Self::new(name.as_bytes())
    }
}

impl TryFrom<&str> for PathComponent {
    type Error = PathComponentError;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::new(name.as_bytes())
    }
}

impl fmt::Display for PathComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for PathComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_non_utf8_names() {
        assert!(PathComponent::new("Cargo.toml").is_ok());
        assert!(PathComponent::new(vec![0xff, 0xfe, b'x']).is_ok());
        assert!(PathComponent::new(vec![b'a'; 255]).is_ok());
    }

    #[test]
    fn rejects_escapes() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
            assert!(PathComponent::new(bad).is_err(), "{bad:?}");
        }
        assert!(PathComponent::new(vec![b'a'; 256]).is_err());
    }
}
