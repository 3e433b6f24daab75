//! [`Digest`]: the content address of a store object.
//!
//! An address is `b3:` followed by 64 lowercase hex digits of a BLAKE3-256 hash. That text form is the only one
//! accepted or printed; uppercase, missing prefix or wrong length are rejected when parsing, so no `String` digest
//! travels past the boundary where it was parsed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of every printed address; names the hash function so a future one can coexist.
pub const DIGEST_PREFIX: &str = "b3:";

/// Length of a BLAKE3 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// A BLAKE3-256 content address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; DIGEST_LEN]);

/// Why a text could not be parsed as a [`Digest`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid address `{input}`: {reason}")]
pub struct DigestParseError {
    /// The text that was given.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl Digest {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; DIGEST_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// Hashes a byte slice in one go (small objects: directory nodes, metadata).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The 64 lowercase hex digits, without the `b3:` prefix (used in file names).
    pub fn to_hex(&self) -> String {
        self.hex_digits().iter().copied().map(char::from).collect()
    }

    /// The 64 lowercase hex digits as ASCII bytes, without allocating (object paths are built per file).
    pub fn hex_digits(&self) -> [u8; DIGEST_LEN * 2] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; DIGEST_LEN * 2];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        out
    }

    /// Parses 64 lowercase hex digits without prefix (file names in the store).
    pub fn from_hex(hex_digits: &str) -> Result<Self, DigestParseError> {
        let error = |reason| DigestParseError {
            input: hex_digits.to_owned(),
            reason,
        };
        if hex_digits.len() != DIGEST_LEN * 2 {
            return Err(error("expected 64 hex digits"));
        }
        if hex_digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(error("hex digits must be lowercase"));
        }
        let mut bytes = [0u8; DIGEST_LEN];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| error("not hexadecimal"))?;
        Ok(Self(bytes))
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(hex_digits) = text.strip_prefix(DIGEST_PREFIX) else {
            return Err(DigestParseError {
                input: text.to_owned(),
                reason: "expected the `b3:` prefix",
            });
        };
        Self::from_hex(hex_digits).map_err(|error| DigestParseError {
            input: text.to_owned(),
            reason: error.reason,
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DIGEST_PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let digest = Digest::of_bytes(b"hello");
        let text = digest.to_string();
        assert!(text.starts_with("b3:"));
        assert_eq!(text.len(), 3 + 64);
        assert_eq!(text.parse::<Digest>().unwrap(), digest);
    }

    #[test]
    fn known_vector() {
        // BLAKE3 of the empty input, from the BLAKE3 test vectors.
        assert_eq!(
            Digest::of_bytes(b"").to_string(),
            "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn rejects_bad_forms() {
        let hex64 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assert!(hex64.parse::<Digest>().is_err(), "missing prefix");
        assert!(
            format!("b3:{}", hex64.to_uppercase())
                .parse::<Digest>()
                .is_err()
        );
        assert!(format!("b3:{}", &hex64[1..]).parse::<Digest>().is_err());
        assert!(format!("b3:{}zz", &hex64[2..]).parse::<Digest>().is_err());
        assert!(format!("sha256:{hex64}").parse::<Digest>().is_err());
    }
}
