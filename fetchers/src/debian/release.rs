//! A suite's signed `InRelease` ([`verify_inrelease`]): the OpenPGP cleartext signature checked against a keyring,
//! then the signed text read as a [`Release`] (suite, codename, dates, architectures, components, and the sha256
//! and size of every index file below `dists/SUITE/`).
//!
//! Trust rules, which every caller relies on:
//! - The text MUST be a cleartext-signed message (RFC 9580 §7) with nothing before or after it; a plain `Release`
//!   is refused.
//! - At least one signature MUST verify with a key of the keyring: a primary key, or a subkey whose binding
//!   signature by its primary verifies and grants the signing flag. Other signatures
//!   may be by unknown keys (Debian signs with several).
//! - Only the text the signature covers is parsed (the normalized signed text, not the bytes around it).
//! - Key expiry, revocation and `Valid-Until` are recorded, not enforced: a lockfile replays an archive state long
//!   after the suite's InRelease expired (the security suite's expires after 7 days), so whether a stale release is
//!   acceptable is the caller's decision ([`Release::is_expired_at`]).

use std::collections::BTreeMap;

use hstore_model::ids::Sha256;
use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

use super::control::{self, Paragraph};

/// The signed description of a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Origin` (`Debian`).
    pub origin: Option<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `Suite` (`stable`, `bookworm-updates`…).
    pub suite: Option<String>,
    /// `Codename` (`bookworm`).
    pub codename: Option<String>,
    /// `Version` (`12.7`).
    pub version: Option<String>,
    /// `Date` as written (`Sat, 31 Aug 2024 09:04:32 UTC`).
    pub date: Option<String>,
    /// `Valid-Until` as written, recorded but not enforced.
    pub valid_until: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// The key that made the verified signature.
    pub signer: Signer,
    files: BTreeMap<String, IndexFile>,
}

/// The key whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Fingerprint (lowercase hex) of the key that signed: the primary key or one of its subkeys.
    pub fingerprint: String,
    /// Fingerprint of its primary key (the same as `fingerprint` when the primary key signed).
    pub primary_fingerprint: String,
    /// The primary key's first user id (`Debian Archive Automatic Signing Key (12/bookworm) <…>`), if any.
    pub user_id: Option<String>,
}

/// One file listed in the `SHA256` field of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Path below `dists/SUITE/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    /// Its sha256.
    pub sha256: Sha256,
    /// Its size in bytes.
    pub size: u64,
}

impl Release {
    /// The listed file at `path` (below `dists/SUITE/`), if the release lists it.
    pub fn file(&self, path: &str) -> Option<&IndexFile> {
        self.files.get(path)
    }

    /// Every listed file, by path.
    pub fn files(&self) -> impl Iterator<Item = &IndexFile> {
        self.files.values()
    }

    /// `Date` as seconds since the Unix epoch, if present and in Debian's format.
    pub fn date_unix(&self) -> Option<i64> {
        self.date.as_deref().and_then(parse_date)
    }

    /// `Valid-Until` as seconds since the Unix epoch, if present and in Debian's format.
    pub fn valid_until_unix(&self) -> Option<i64> {
        self.valid_until.as_deref().and_then(parse_date)
    }

    /// Whether `Valid-Until` lies before `unix_time` (false when there is none).
    pub fn is_expired_at(&self, unix_time: i64) -> bool {
        self.valid_until_unix()
            .is_some_and(|valid_until| valid_until < unix_time)
    }
}

/// Why an InRelease was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not a cleartext-signed message at all.
    #[error(
        "`{origin}` is not signed: it does not start with `-----BEGIN PGP SIGNED MESSAGE-----`"
    )]
    Unsigned {
        /// The URL or file.
        origin: String,
    },
    /// The text looks signed but its OpenPGP framing does not parse.
    #[error("`{origin}` is not a well-formed OpenPGP cleartext-signed message")]
    Malformed {
        /// The URL or file.
        origin: String,
        /// The parser's error.
        #[source]
        source: pgp::errors::Error,
    },
    /// The keyring does not parse.
    #[error("the keyring given to verify `{origin}` is not OpenPGP public key data")]
    Keyring {
        /// The URL or file being verified.
        origin: String,
        /// The parser's error.
        #[source]
        source: pgp::errors::Error,
    },
    /// The keyring holds no key.
    #[error("the keyring given to verify `{origin}` holds no public key")]
    EmptyKeyring {
        /// The URL or file being verified.
        origin: String,
    },
    /// No signature is by a key of the keyring.
    #[error(
        "`{origin}` is signed by {}, not by a key of the keyring",
        signer_list(signers)
    )]
    UnknownSigner {
        /// The URL or file.
        origin: String,
        /// The issuer key ids and fingerprints the signatures name (empty when they name none).
        signers: Vec<String>,
    },
    /// A signature names a key of the keyring, but does not verify with it.
    #[error(
        "the signature of `{origin}` by key `{signer}` does not verify: the signed text was altered"
    )]
    BadSignature {
        /// The URL or file.
        origin: String,
        /// The key id (or fingerprint) the signature names.
        signer: String,
    },
    /// The signed text is not a valid release.
    #[error(transparent)]
    Control(#[from] control::Error),
}

fn signer_list(signers: &[String]) -> String {
    if signers.is_empty() {
        "a key it does not name".to_owned()
    } else {
        signers
            .iter()
            .map(|signer| format!("`{signer}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Unsigned { .. } | Error::Malformed { .. } => Some(
                "hstore trusts only a signed `InRelease`: check the URL (a proxy's or mirror's error page?)".into(),
            ),
            Error::Keyring { .. } | Error::EmptyKeyring { .. } => Some(
                "give a keyring as `gpg --export` (binary, like /usr/share/keyrings/debian-archive-keyring.gpg) or \
                 `gpg --export --armor` writes it"
                    .into(),
            ),
            Error::UnknownSigner { .. } => Some(
                "add the archive's public key to the keyring (for Debian: /usr/share/keyrings/\
                 debian-archive-keyring.gpg from the debian-archive-keyring package), or check that the URL is the \
                 archive you meant"
                    .into(),
            ),
            Error::BadSignature { .. } => {
                Some("the file was changed after signing (by a mirror or in transit): fetch it again or use another mirror".into())
            }
            Error::Control(error) => hstore_store::Hint::hint(error),
        }
    }
}

/// A key of the keyring that may have signed: a primary key, or a subkey bound to it.
enum Candidate<'a> {
    Primary(&'a SignedPublicKey),
    Subkey(&'a SignedPublicKey, &'a pgp::composed::SignedPublicSubKey),
}

impl Candidate<'_> {
    fn matches(&self, signature: &Signature) -> bool {
        match self {
            Candidate::Primary(key) => names_key(signature, *key),
            Candidate::Subkey(_, subkey) => names_key(signature, *subkey),
        }
    }

    fn verifies(&self, signature: &Signature, text: &[u8]) -> bool {
        match self {
            Candidate::Primary(key) => signature.verify(*key, text).is_ok(),
            Candidate::Subkey(_, subkey) => signature.verify(*subkey, text).is_ok(),
        }
    }

    fn signer(&self) -> Signer {
        let (primary, fingerprint) = match self {
            Candidate::Primary(key) => (*key, key.fingerprint()),
            Candidate::Subkey(key, subkey) => (*key, subkey.fingerprint()),
        };
        Signer {
            fingerprint: format!("{fingerprint:x}"),
            primary_fingerprint: format!("{:x}", primary.fingerprint()),
            user_id: primary
                .details
                .users
                .first()
                .map(|user| String::from_utf8_lossy(user.id.id()).into_owned()),
        }
    }
}

/// Whether `signature` names `key` as its issuer (by key id or fingerprint); one that names no issuer may be by any.
fn names_key(signature: &Signature, key: &impl KeyDetails) -> bool {
    let ids = signature.issuer_key_id();
    let fingerprints = signature.issuer_fingerprint();
    (ids.is_empty() && fingerprints.is_empty())
        || ids.iter().any(|id| **id == key.legacy_key_id())
        || fingerprints
            .iter()
            .any(|fingerprint| **fingerprint == key.fingerprint())
}

/// The issuers a signature names, for messages: fingerprints when given, else key ids.
fn issuers(signature: &Signature) -> Vec<String> {
    let fingerprints: Vec<String> = signature
        .issuer_fingerprint()
        .iter()
        .map(|fingerprint| format!("{fingerprint:x}"))
        .collect();
    if fingerprints.is_empty() {
        signature
            .issuer_key_id()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        fingerprints
    }
}

/// The keyring's keys: binary (`gpg --export`) or armored, one or several.
fn read_keyring(keyring: &[u8], origin: &str) -> Result<Vec<SignedPublicKey>, Error> {
    let keyring_error = |source| Error::Keyring {
        origin: origin.to_owned(),
        source,
    };
    let (keys, _headers) = PublicOrSecret::from_reader_many(keyring).map_err(keyring_error)?;
    let mut public = Vec::new();
    for key in keys {
        public.push(match key.map_err(keyring_error)? {
            PublicOrSecret::Public(key) => key,
            // A secret keyring works too: only its public half is used.
            PublicOrSecret::Secret(key) => key.to_public_key(),
        });
    }
    if public.is_empty() {
        return Err(Error::EmptyKeyring {
            origin: origin.to_owned(),
        });
    }
    Ok(public)
}

/// The keys of `keys` that may sign: every primary key, and every subkey with a verified binding that grants signing.
fn candidates(keys: &[SignedPublicKey]) -> Vec<Candidate<'_>> {
    let mut candidates = Vec::new();
    for key in keys {
        candidates.push(Candidate::Primary(key));
        for subkey in &key.public_subkeys {
            let bound = subkey.signatures.iter().any(|binding| {
                binding.key_flags().sign()
                    && binding
                        .verify_subkey_binding(&key.primary_key, &subkey.key)
                        .is_ok()
            });
            if bound {
                candidates.push(Candidate::Subkey(key, subkey));
            }
        }
    }
    candidates
}

/// Verifies the cleartext signature of an `InRelease` (`text`, fetched from `origin`, which errors name) with
/// `keyring`, then parses what it signs.
pub fn verify_inrelease(text: &[u8], keyring: &[u8], origin: &str) -> Result<Release, Error> {
    const BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
    if !text.starts_with(BEGIN) {
        return Err(Error::Unsigned {
            origin: origin.to_owned(),
        });
    }
    let (message, _headers) =
        CleartextSignedMessage::from_armor(text).map_err(|source| Error::Malformed {
            origin: origin.to_owned(),
            source,
        })?;
    let keys = read_keyring(keyring, origin)?;
    let candidates = candidates(&keys);
    let signed = message.signed_text();
    let mut named_known_key = None;
    let mut signers = Vec::new();
    for signature in message.signatures() {
        signers.extend(issuers(signature));
        for candidate in candidates
            .iter()
            .filter(|candidate| candidate.matches(signature))
        {
            if candidate.verifies(signature, signed.as_bytes()) {
                let text = signed.replace("\r\n", "\n");
                return parse_release(&text, origin, candidate.signer());
            }
            if named_known_key.is_none() && !issuers(signature).is_empty() {
                named_known_key = issuers(signature).into_iter().next();
            }
        }
    }
    signers.dedup();
    match named_known_key {
        Some(signer) => Err(Error::BadSignature {
            origin: origin.to_owned(),
            signer,
        }),
        None => Err(Error::UnknownSigner {
            origin: origin.to_owned(),
            signers,
        }),
    }
}

fn words(paragraph: &Paragraph, field: &str) -> Vec<String> {
    paragraph
        .get(field)
        .map(|value| value.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Reads the signed text of a release.
fn parse_release(text: &str, origin: &str, signer: Signer) -> Result<Release, Error> {
    let paragraphs = control::parse(text, origin)?;
    let Some(paragraph) = paragraphs.first() else {
        return Err(control::Error {
            origin: origin.to_owned(),
            line: 1,
            problem: control::Problem::MissingField { field: "SHA256" },
        }
        .into());
    };
    if let Some(second) = paragraphs.get(1) {
        return Err(control::Error {
            origin: origin.to_owned(),
            line: second.line(),
            problem: control::Problem::NotAField {
                line: "a second paragraph (a release has one)".to_owned(),
            },
        }
        .into());
    }
    let listing = paragraph.required("SHA256", origin)?;
    let mut files = BTreeMap::new();
    for line in listing.lines().filter(|line| !line.is_empty()) {
        let invalid = |reason: &str| paragraph.invalid(origin, "SHA256", line, reason);
        let mut parts = line.split_whitespace();
        let (Some(sha256), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("each line must be `SHA256 SIZE PATH`").into());
        };
        let sha256 = Sha256::new(sha256)
            .map_err(|_| invalid("the sha256 is not 64 lowercase hex digits"))?;
        let size = size
            .parse()
            .map_err(|_| invalid("the size is not a number"))?;
        if path.starts_with('/')
            || path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(invalid("the path must be relative, without `.` or `..`").into());
        }
        let file = IndexFile {
            path: path.to_owned(),
            sha256,
            size,
        };
        if files.insert(path.to_owned(), file).is_some() {
            return Err(invalid("the path is listed twice").into());
        }
    }
    let owned = |field| paragraph.get(field).map(str::to_owned);
    Ok(Release {
        origin: owned("Origin"),
        label: owned("Label"),
        suite: owned("Suite"),
        codename: owned("Codename"),
        version: owned("Version"),
        date: owned("Date"),
        valid_until: owned("Valid-Until"),
        architectures: words(paragraph, "Architectures"),
        components: words(paragraph, "Components"),
        acquire_by_hash: paragraph
            .get("Acquire-By-Hash")
            .is_some_and(|value| value.eq_ignore_ascii_case("yes")),
        signer,
        files,
    })
}

/// Parses a release date as Debian writes it (RFC 2822 in UTC: `Sat, 31 Aug 2024 09:04:32 UTC`; the weekday is
/// optional, the zone may be `UTC`, `GMT`, `Z` or `+0000`/`-hhmm`) into seconds since the Unix epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.split_once(',').map_or(text, |(_, rest)| rest).trim();
    let mut parts = text.split_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next().map_or(Some(0), |second| second.parse().ok())?;
    let offset = match parts.next() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(zone) => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits = zone.get(1..)?;
            if digits.len() != 4 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[..2].parse().ok()?;
            let minutes: i64 = digits[2..].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    if parts.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer {
            fingerprint: "f".into(),
            primary_fingerprint: "f".into(),
            user_id: None,
        }
    }

    const RELEASE: &str = "Origin: Debian
Label: Debian
Suite: stable
Version: 12.7
Codename: bookworm
Date: Sat, 31 Aug 2024 09:04:32 UTC
Valid-Until: Sat, 07 Sep 2024 09:04:32 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib non-free-firmware
Description: Debian 12.7 Released 31 August 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 contrib/Contents-all
 b74bb1e2b5f6a2e3a5a1d6f5c0a7c2c0e2f4f0b1a2c3d4e5f60718293a4b5c6d 8786352 main/binary-amd64/Packages.xz
";

    #[test]
    fn parses_release_fields_and_file_list() {
        let release = parse_release(RELEASE, "InRelease", signer()).unwrap();
        assert_eq!(release.suite.as_deref(), Some("stable"));
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        assert_eq!(release.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(release.components, ["main", "contrib", "non-free-firmware"]);
        assert!(release.acquire_by_hash);
        let packages = release.file("main/binary-amd64/Packages.xz").unwrap();
        assert_eq!(packages.size, 8_786_352);
        assert!(packages.sha256.starts_with("b74bb1e2"));
        assert_eq!(release.files().count(), 2);
        assert_eq!(release.file("main/binary-amd64/Packages"), None);
        assert_eq!(release.date_unix(), Some(1_725_095_072));
        assert_eq!(release.valid_until_unix(), Some(1_725_095_072 + 7 * 86_400));
        assert!(release.is_expired_at(1_800_000_000));
        assert!(!release.is_expired_at(1_725_095_072));
    }

    #[test]
    fn release_errors() {
        let cases = [
            (RELEASE.replace("SHA256:", "SHA1:"), "has no `SHA256` field"),
            (
                RELEASE.replace("   738242", " big"),
                "the size is not a number",
            ),
            (
                RELEASE.replace("738242 contrib/Contents-all", "738242 ../x"),
                "must be relative",
            ),
            (
                RELEASE.replace(
                    "8786352 main/binary-amd64/Packages.xz",
                    "738242 contrib/Contents-all",
                ),
                "listed twice",
            ),
            (format!("{RELEASE}\nOther: x\n"), "a second paragraph"),
        ];
        for (text, expected) in cases {
            let error = parse_release(&text, "InRelease", signer())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(parse_date("01 Jan 1970 01:00:00 +0100"), Some(0));
        assert_eq!(
            parse_date("Sat, 10 Jun 2023 08:44:12 UTC"),
            Some(1_686_386_652)
        );
        assert_eq!(
            parse_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        for bad in [
            "",
            "yesterday",
            "Sat, 10 Jun 2023",
            "32 Jun 2023 00:00:00 UTC",
            "10 Jun 2023 00:00:00 CEST",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn unsigned_and_garbage_are_refused() {
        let error = verify_inrelease(RELEASE.as_bytes(), b"", "http://x/InRelease").unwrap_err();
        assert!(matches!(error, Error::Unsigned { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "`http://x/InRelease` is not signed: it does not start with `-----BEGIN PGP SIGNED MESSAGE-----`"
        );
        let text = format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{RELEASE}");
        let error = verify_inrelease(text.as_bytes(), b"", "InRelease").unwrap_err();
        assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
    }

    /// The real Debian keyring parses and yields its signing subkeys (the bookworm archive key signs with one).
    #[test]
    fn debian_keyring_has_bound_signing_subkeys() {
        let keyring = std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg")
            .expect("read the Debian keyring (install debian-archive-keyring)");
        let keys = read_keyring(&keyring, "test").unwrap();
        assert!(keys.len() >= 5, "{} keys", keys.len());
        let signers: Vec<String> = candidates(&keys)
            .iter()
            .map(|candidate| candidate.signer().fingerprint)
            .collect();
        assert!(
            signers.contains(&"4cb50190207b4758a3f73a796ed0e7b82643e131".to_owned()),
            "the bookworm automatic key's signing subkey is bound: {signers:?}"
        );
    }
}
