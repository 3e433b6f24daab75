//! Signed build records: `builds/<key hex>.json` maps a build key to its output tree and log, and counts only when
//! signed by a trusted key (the bundle signing keys, `hstore key generate`).
//!
//! ```json
//! {"format": "hstore-cache-build-record", "version": 1, "key": "<key hex>",
//!  "record": { …the store's build record, opaque here; it MUST name "output" and "log" addresses… },
//!  "signatures": [{"key": "hstore-ed25519:…", "signature": "<base64 of 64 bytes>"}]}
//! ```
//! The signed message is `"hstore-cache-v1 build record\0" ‖ key hex ‖ "\0" ‖ record` where `record` is the
//! record's compact JSON (serde_json, fields in the order stored). Binding the key into the message stops a valid
//! record from being replayed under another key. The objects the record names (output, log) travel in packs like
//! any other object and verify by address; the signature is what vouches that *this* key built *that* output.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hstore_store::Digest;
use hstore_store::bundle::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The `format` field.
pub const RECORD_FORMAT: &str = "hstore-cache-build-record";
/// The `version` field.
pub const RECORD_VERSION: u32 = 1;
/// Domain separation for the signed message.
const CONTEXT: &[u8] = b"hstore-cache-v1 build record\0";

/// One signature on a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSignature {
    /// The signer's public key (text form).
    pub key: String,
    /// base64 of the 64-byte ed25519 signature.
    pub signature: String,
}

/// A build record as a cache stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// Always [`RECORD_VERSION`].
    pub version: u32,
    /// The build key, as hex (the file name).
    pub key: String,
    /// The store's build record.
    pub record: serde_json::Value,
    /// Signatures; empty when pushed unsigned (such a record is never accepted).
    pub signatures: Vec<RecordSignature>,
}

/// A record whose signature checked out against a trusted key.
#[derive(Clone)]
pub struct TrustedRecord {
    /// The build key (hex).
    pub key: String,
    /// The store's build record.
    pub record: serde_json::Value,
    /// The output tree and the log blob it names.
    pub objects: Vec<Digest>,
    /// Who signed it.
    pub signer: PublicKey,
}

impl fmt::Debug for TrustedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedRecord")
            .field("key", &self.key)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

fn message(key: &str, record: &serde_json::Value) -> Vec<u8> {
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(key.as_bytes());
    message.push(0);
    // `Value`'s Display is its compact JSON, and cannot fail.
    message.extend_from_slice(record.to_string().as_bytes());
    message
}

/// The output and log addresses a build record names.
pub fn record_objects(record: &serde_json::Value) -> Result<Vec<Digest>, String> {
    let mut objects = Vec::new();
    for field in ["output", "log"] {
        let text = record
            .get(field)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("it has no `{field}` address"))?;
        objects.push(
            text.parse::<Digest>()
                .map_err(|error| format!("its `{field}` is not an address: {error}"))?,
        );
    }
    Ok(objects)
}

impl SignedRecord {
    /// A record for `key`, signed by `signer` when given.
    pub fn new(key: &str, record: serde_json::Value, signer: Option<&SecretKey>) -> Self {
        let signatures = signer
            .map(|secret| {
                vec![RecordSignature {
                    key: secret.public_key().to_string(),
                    signature: STANDARD.encode(secret.sign(&message(key, &record))),
                }]
            })
            .into_iter()
            .flatten()
            .collect();
        Self {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            key: key.to_owned(),
            record,
            signatures,
        }
    }

    /// Accepts the record for `expected_key` if one of its signatures is by a key in `trusted` and checks out.
    /// The error is the reason in words.
    pub fn verify(
        self,
        expected_key: &str,
        trusted: &[PublicKey],
    ) -> Result<TrustedRecord, String> {
        if self.format != RECORD_FORMAT || self.version != RECORD_VERSION {
            return Err(format!(
                "it is `{}` version {}, expected `{RECORD_FORMAT}` version {RECORD_VERSION}",
                self.format, self.version
            ));
        }
        if self.key != expected_key {
            return Err(format!(
                "it is stored as `{expected_key}` but names key `{}`",
                self.key
            ));
        }
        if self.signatures.is_empty() {
            return Err("it is not signed".into());
        }
        let objects = record_objects(&self.record)?;
        let signed = message(&self.key, &self.record);
        let mut signers = Vec::new();
        for signature in &self.signatures {
            let Ok(key) = signature.key.parse::<PublicKey>() else {
                continue;
            };
            if !trusted.contains(&key) {
                signers.push(signature.key.clone());
                continue;
            }
            let bytes: Option<[u8; 64]> = STANDARD
                .decode(&signature.signature)
                .ok()
                .and_then(|bytes| bytes.try_into().ok());
            if bytes.is_some_and(|bytes| key.verify(&signed, &bytes)) {
                return Ok(TrustedRecord {
                    key: self.key,
                    record: self.record,
                    objects,
                    signer: key,
                });
            }
            return Err(format!(
                "its signature by `{key}` does not match its contents (altered after signing)"
            ));
        }
        Err(format!(
            "it is signed by {}, none of them trusted",
            signers
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

impl crate::Cache {
    /// The record for build key `key` (hex), if the cache holds one signed by a key in `trusted`. A record that is
    /// present but unsigned, foreign-signed, altered or malformed is [`Error::RefusedRecord`].
    pub async fn fetch_record(
        &self,
        key: &str,
        trusted: &[PublicKey],
    ) -> Result<Option<TrustedRecord>, Error> {
        let path = self.path(&format!("{}/{key}.json", crate::BUILDS_DIR));
        let Some(bytes) = self.get_optional(&path).await? else {
            return Ok(None);
        };
        let refused = |reason: String| Error::RefusedRecord {
            url: self.url.to_string(),
            key: key.to_owned(),
            reason,
        };
        let signed: SignedRecord = serde_json::from_slice(&bytes)
            .map_err(|error| refused(format!("it is not a valid record: {error}")))?;
        signed.verify(key, trusted).map(Some).map_err(refused)
    }

    /// The build keys (hex) of every record in the cache, where the backend can list (empty on plain HTTP).
    pub async fn record_keys(&self) -> Result<Vec<String>, Error> {
        if matches!(self.url, crate::CacheUrl::Http { .. }) {
            // Plain HTTP cannot list; records are still found by key (`build --cache`).
            return Ok(Vec::new());
        }
        self.list_stems(crate::BUILDS_DIR, ".json").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> serde_json::Value {
        serde_json::json!({
            "key": format!("{}", Digest::of_bytes(b"k")),
            "output": format!("{}", Digest::of_bytes(b"out")),
            "log": format!("{}", Digest::of_bytes(b"log")),
        })
    }

    #[test]
    fn only_trusted_untampered_records_pass() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let signed = SignedRecord::new("abc", record(), Some(&key));
        let round: SignedRecord =
            serde_json::from_slice(&serde_json::to_vec(&signed).unwrap()).unwrap();
        let trusted = round.clone().verify("abc", &[key.public_key()]).unwrap();
        assert_eq!(trusted.objects.len(), 2);
        assert!(
            round
                .clone()
                .verify("abc", &[other.public_key()])
                .unwrap_err()
                .contains("none of them trusted")
        );
        assert!(round.clone().verify("abd", &[key.public_key()]).is_err());
        let mut tampered = round.clone();
        tampered.record["output"] =
            serde_json::Value::String(Digest::of_bytes(b"evil").to_string());
        assert!(
            tampered
                .verify("abc", &[key.public_key()])
                .unwrap_err()
                .contains("altered")
        );
        let unsigned = SignedRecord::new("abc", record(), None);
        assert!(
            unsigned
                .verify("abc", &[key.public_key()])
                .unwrap_err()
                .contains("not signed")
        );
    }
}
