//! Bundle signing keys: ed25519 key pairs in one-line text forms.
//!
//! - public key file `NAME.pub`: `hstore-ed25519:<base64 of the 32-byte key>` and a newline;
//! - secret key file `NAME.secret` (mode 0600, created new, never overwritten): `hstore-ed25519-secret:<base64 of
//!   the 32-byte seed>` and a newline;
//! - a trusted-keys file: one public key per line; blank lines and lines starting with `#` are ignored.
//!
//! Signatures are checked with `verify_strict` (no malleable or small-order keys).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Prefix of a public key's text form.
pub const PUBLIC_PREFIX: &str = "hstore-ed25519:";
/// Prefix of a secret key's text form.
pub const SECRET_PREFIX: &str = "hstore-ed25519-secret:";

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("failed to {action} key file `{}`", path.display())]
    Io {
        /// "read", "create"…
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a key of the expected form.
    #[error("`{text}` is not an hstore {kind} key: {reason}")]
    Invalid {
        /// What was given (a secret key's text is never echoed).
        text: String,
        /// "public" or "secret".
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key file has no key.
    #[error("key file `{}` holds no key", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl crate::Hint for KeyError {
    fn hint(&self) -> Option<String> {
        match self {
            KeyError::Invalid { .. } | KeyError::Empty { .. } => Some(
                "create a key pair with `hstore key generate --out NAME`: sign with NAME.secret, trust NAME.pub".into(),
            ),
            KeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Some("choose another name, or remove the old key files first".into())
            }
            KeyError::Io { .. } => None,
        }
    }
}

/// A public key that verifies bundle signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// A secret key that signs bundles. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl PublicKey {
    /// Wraps raw key bytes; `None` if they are not a valid curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        VerifyingKey::from_bytes(bytes).ok().map(Self)
    }

    /// The raw key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Whether `signature` signs `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// Reads a public key file (the first non-comment line).
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let keys = read_trusted_keys(path)?;
        keys.into_iter().next().ok_or_else(|| KeyError::Empty {
            path: path.to_path_buf(),
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn decode_key(text: &str, prefix: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let shown = if kind == "secret" {
        format!("{SECRET_PREFIX}…")
    } else {
        text.to_owned()
    };
    let invalid = |reason| KeyError::Invalid {
        text: shown.clone(),
        kind,
        reason,
    };
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| invalid("it does not start with the expected prefix"))?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|_| invalid("the part after the prefix is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| invalid("it does not hold 32 bytes"))
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = decode_key(text, PUBLIC_PREFIX, "public")?;
        Self::from_bytes(&bytes).ok_or_else(|| KeyError::Invalid {
            text: text.to_owned(),
            kind: "public",
            reason: "it is not a valid ed25519 point",
        })
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        text.parse()
    }

    /// The secret key's text form. Handle with care.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0.to_bytes()))
    }

    /// Writes `<base>.secret` (0600) and `<base>.pub`, refusing to overwrite either. Returns their paths.
    pub fn write_pair(&self, base: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let with_suffix = |suffix: &str| {
            let mut name = base.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let secret_path = with_suffix(".secret");
        let public_path = with_suffix(".pub");
        for path in [&secret_path, &public_path] {
            if path.exists() {
                return Err(KeyError::Io {
                    action: "create",
                    path: path.clone(),
                    source: std::io::ErrorKind::AlreadyExists.into(),
                });
            }
        }
        write_new(&secret_path, 0o600, &format!("{}\n", self.to_text()))?;
        write_new(&public_path, 0o644, &format!("{}\n", self.public_key()))?;
        Ok((secret_path, public_path))
    }
}

fn write_new(path: &Path, mode: u32, text: &str) -> Result<(), KeyError> {
    let io_error = |source| KeyError::Io {
        action: "create",
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

impl FromStr for SecretKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = decode_key(text, SECRET_PREFIX, "secret")?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key())
    }
}

/// Reads a trusted-keys file: one public key per line, `#` comments and blank lines ignored.
pub fn read_trusted_keys(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_sign() {
        let secret = SecretKey::generate();
        let public = secret.public_key();
        let text = public.to_string();
        assert!(text.starts_with(PUBLIC_PREFIX));
        assert_eq!(text.parse::<PublicKey>().unwrap(), public);
        let again: SecretKey = secret.to_text().parse().unwrap();
        assert_eq!(again.public_key(), public);
        let signature = secret.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagf", &signature));
        assert!(
            !SecretKey::generate()
                .public_key()
                .verify(b"message", &signature)
        );
        assert!(!format!("{secret:?}").contains(&secret.to_text()));
        assert!("hstore-ed25519:AAAA".parse::<PublicKey>().is_err());
        assert!("ssh-ed25519 AAAA".parse::<PublicKey>().is_err());
    }
}
