//! Checking a build record's provenance (`hstore verify-provenance`): the envelope's signature by a trusted key,
//! the statement against the record (subject, key, recipe, target), and the build key recomputed from the
//! statement's inputs alone.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hstore_store::Digest;
use hstore_store::bundle::PublicKey;

use super::{
    BLAKE3, BUILD_TYPE, Envelope, PAYLOAD_TYPE, PREDICATE_TYPE, Provenance, ResourceDescriptor,
    STATEMENT_TYPE, Statement, dependencies, pae,
};
use crate::KeyParts;
use crate::inputs::InputShape;
use crate::record::BuildRecord;

/// What a provenance check found wrong, one thing each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The statement is stored unsigned, or its envelope has no signature.
    NotSigned,
    /// Signed only by keys not trusted.
    Untrusted {
        /// The signers' keys.
        signers: Vec<String>,
    },
    /// A trusted key's signature does not match the payload.
    BadSignature {
        /// The key.
        key: String,
    },
    /// The envelope or statement cannot be read.
    Malformed {
        /// Why.
        reason: String,
    },
    /// A field that must hold one value holds another.
    Field {
        /// The field (`_type`, `subject`, `invocationId`, …).
        field: &'static str,
        /// What it must be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// A resolved dependency disagrees with its input's shape.
    Dependency {
        /// The descriptor's name.
        name: String,
        /// The address the input's shape gives it (`none` if the shape has no such object).
        expected: String,
        /// The address the descriptor names (`none` if there is no descriptor).
        found: String,
    },
    /// An input of the statement is not the one the key was computed from.
    Input {
        /// The input.
        input: String,
        /// What the record says the key hashed (`none`: the record has no such input).
        expected: String,
        /// What the statement names (`none`: the statement lacks it).
        found: String,
    },
    /// A host fingerprint of the statement is not the one the key was computed from.
    Fingerprint {
        /// Its name (`base-system`, …).
        name: String,
        /// The record's.
        expected: String,
        /// The statement's.
        found: String,
    },
    /// The key computed from the statement is not the record's.
    Key {
        /// The record's key.
        expected: Digest,
        /// The key of the statement's inputs.
        computed: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotSigned => write!(f, "the statement is not signed"),
            Problem::Untrusted { signers } => write!(
                f,
                "the statement is signed by {}, none of them trusted",
                signers
                    .iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Problem::BadSignature { key } => write!(
                f,
                "the signature by `{key}` does not match the statement (altered after signing)"
            ),
            Problem::Malformed { reason } => write!(f, "the provenance cannot be read: {reason}"),
            Problem::Field {
                field,
                expected,
                found,
            } => write!(f, "`{field}` is `{found}`, expected `{expected}`"),
            Problem::Dependency {
                name,
                expected,
                found,
            } => write!(
                f,
                "resolved dependency `{name}` names `{found}`, but its input's shape names `{expected}`"
            ),
            Problem::Input {
                input,
                expected,
                found,
            } => write!(
                f,
                "input `{input}` is not the one the build key was computed from:\n      expected: {expected}\n      \
                 found:    {found}"
            ),
            Problem::Fingerprint {
                name,
                expected,
                found,
            } => write!(
                f,
                "fingerprint `{name}` is not the one the build key was computed from:\n      expected: \
                 {expected}\n      found:    {found}"
            ),
            Problem::Key { expected, computed } => write!(
                f,
                "the statement's inputs give build key {computed}, but the record's key is {expected}"
            ),
        }
    }
}

/// Why provenance was not verified.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record carries no provenance (built before provenance existed).
    #[error("the build record of key {key} (output {output}) carries no provenance")]
    Missing {
        /// The build key.
        key: Digest,
        /// The output.
        output: Digest,
    },
    /// The provenance failed one or more checks.
    #[error(
        "the provenance of output {output} (build key {key}) is refused:{}",
        problems.iter().fold(String::new(), |text, problem| format!("{text}\n  - {problem}"))
    )]
    Refused {
        /// The build key.
        key: Digest,
        /// The output.
        output: Digest,
        /// What is wrong, the signature's problem first.
        problems: Vec<Problem>,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Missing { .. } => Some(
                "the record was written by an hstore without provenance, and a record is never rewritten: build \
                 the output again with `--sign KEY` in a store without this record, or take the record from a store \
                 that built it so"
                    .into(),
            ),
            Error::Refused { problems, .. } => problems.first().map(|problem| match problem {
                Problem::NotSigned => "build with `--sign KEY` (or set `[caches] sign-key` in hstore.toml) to sign \
                                       the provenance"
                    .into(),
                Problem::Untrusted { .. } => "pass the signer's public key with `--trust KEY.pub` or \
                                              `--trusted-keys FILE` (or list it in `[caches] trusted-keys`) if you \
                                              trust it"
                    .into(),
                Problem::BadSignature { .. }
                | Problem::Malformed { .. }
                | Problem::Field { .. }
                | Problem::Dependency { .. }
                | Problem::Input { .. }
                | Problem::Fingerprint { .. }
                | Problem::Key { .. } => "the record was altered after it was built: do not trust this output; \
                                          rebuild it (`hstore build --check` compares), or take the record again \
                                          from a trusted source (`import --trust`, `cache pull --trust`)"
                    .into(),
            }),
        }
    }
}

/// A provenance that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who signed it.
    pub signer: PublicKey,
    /// The statement.
    pub statement: Statement,
}

/// Checks `record`'s provenance: a DSSE signature by a key in `trusted` over the statement, the statement's subject
/// is the record's output, its invocation id the record's key, its dependencies agree with its inputs' shapes, and
/// the build key recomputed from the statement alone ([`KeyParts`]) is the record's key. Every problem found is
/// reported, the signature's first.
pub fn verify(record: &BuildRecord, trusted: &[PublicKey]) -> Result<Verified, Error> {
    let Some(provenance) = &record.provenance else {
        return Err(Error::Missing {
            key: record.key,
            output: record.output,
        });
    };
    let mut problems = Vec::new();
    let (signer, statement) = match provenance {
        Provenance::Statement(statement) => {
            problems.push(Problem::NotSigned);
            (None, Some((**statement).clone()))
        }
        Provenance::Envelope(envelope) => open_envelope(envelope, trusted, &mut problems),
    };
    if let Some(statement) = &statement {
        check_statement(record, statement, &mut problems);
    }
    match (signer, statement) {
        (Some(signer), Some(statement)) if problems.is_empty() => {
            Ok(Verified { signer, statement })
        }
        _ => Err(Error::Refused {
            key: record.key,
            output: record.output,
            problems,
        }),
    }
}

/// The envelope's trusted signer (if one signature checks out) and its statement (if it parses).
fn open_envelope(
    envelope: &Envelope,
    trusted: &[PublicKey],
    problems: &mut Vec<Problem>,
) -> (Option<PublicKey>, Option<Statement>) {
    if envelope.payload_type != PAYLOAD_TYPE {
        problems.push(Problem::Field {
            field: "payloadType",
            expected: PAYLOAD_TYPE.to_owned(),
            found: envelope.payload_type.clone(),
        });
    }
    let Ok(payload) = STANDARD.decode(&envelope.payload) else {
        problems.push(Problem::Malformed {
            reason: "the envelope's payload is not base64".into(),
        });
        return (None, None);
    };
    let message = pae(&envelope.payload_type, &payload);
    let mut signer = None;
    let mut untrusted = Vec::new();
    let mut bad = None;
    for signature in &envelope.signatures {
        let Ok(key) = signature.keyid.parse::<PublicKey>() else {
            untrusted.push(signature.keyid.clone());
            continue;
        };
        if !trusted.contains(&key) {
            untrusted.push(signature.keyid.clone());
            continue;
        }
        let bytes: Option<[u8; 64]> = STANDARD
            .decode(&signature.sig)
            .ok()
            .and_then(|bytes| bytes.try_into().ok());
        if bytes.is_some_and(|bytes| key.verify(&message, &bytes)) {
            signer = Some(key);
            break;
        }
        bad.get_or_insert(key);
    }
    if signer.is_none() {
        problems.insert(
            0,
            match (bad, envelope.signatures.is_empty()) {
                (Some(key), _) => Problem::BadSignature {
                    key: key.to_string(),
                },
                (None, true) => Problem::NotSigned,
                (None, false) => Problem::Untrusted { signers: untrusted },
            },
        );
    }
    match serde_json::from_slice::<Statement>(&payload) {
        Ok(statement) => (signer, Some(statement)),
        Err(error) => {
            problems.push(Problem::Malformed {
                reason: format!("the payload is not an hstore provenance statement: {error}"),
            });
            (signer, None)
        }
    }
}

fn check_field(problems: &mut Vec<Problem>, field: &'static str, expected: &str, found: &str) {
    if expected != found {
        problems.push(Problem::Field {
            field,
            expected: expected.to_owned(),
            found: found.to_owned(),
        });
    }
}

/// Everything but the signature (see [`verify`]).
fn check_statement(record: &BuildRecord, statement: &Statement, problems: &mut Vec<Problem>) {
    let definition = &statement.predicate.build_definition;
    let external = &definition.external_parameters;
    let internal = &definition.internal_parameters;
    check_field(problems, "_type", STATEMENT_TYPE, &statement.statement_type);
    check_field(
        problems,
        "predicateType",
        PREDICATE_TYPE,
        &statement.predicate_type,
    );
    check_field(problems, "buildType", BUILD_TYPE, &definition.build_type);
    let subjects: Vec<String> = statement
        .subject
        .iter()
        .map(|subject| {
            subject
                .digest
                .get(BLAKE3)
                .map_or_else(|| "none".to_owned(), |hex| format!("b3:{hex}"))
        })
        .collect();
    check_field(
        problems,
        "subject",
        &record.output.to_string(),
        &subjects.join(", "),
    );
    check_field(
        problems,
        "invocationId",
        &record.key.to_string(),
        &statement.predicate.run_details.metadata.invocation_id,
    );
    check_field(problems, "recipe", &record.recipe, &external.recipe);
    check_field(problems, "target", &record.target, &external.target);

    // The inputs, from the descriptors that carry a shape; every descriptor must be one the shapes give.
    let inputs: Vec<(&str, &InputShape)> = definition
        .resolved_dependencies
        .iter()
        .filter_map(|descriptor| {
            let annotations = descriptor.annotations.as_ref()?;
            Some((annotations.input.as_str(), annotations.shape.as_ref()?))
        })
        .collect();
    let address = |descriptor: Option<&ResourceDescriptor>| {
        descriptor
            .and_then(|descriptor| descriptor.digest.get(BLAKE3))
            .map_or_else(|| "none".to_owned(), |hex| format!("b3:{hex}"))
    };
    let expected = dependencies(&inputs);
    let named = |descriptors: &[ResourceDescriptor], name: &Option<String>| {
        descriptors
            .iter()
            .find(|descriptor| &descriptor.name == name)
            .cloned()
    };
    for descriptor in &expected {
        let found = named(&definition.resolved_dependencies, &descriptor.name);
        if found.as_ref().map(|found| &found.digest) != Some(&descriptor.digest) {
            problems.push(Problem::Dependency {
                name: descriptor.name.clone().unwrap_or_default(),
                expected: address(Some(descriptor)),
                found: address(found.as_ref()),
            });
        }
    }
    for descriptor in &definition.resolved_dependencies {
        if named(&expected, &descriptor.name).is_none() {
            problems.push(Problem::Dependency {
                name: descriptor.name.clone().unwrap_or_default(),
                expected: "none".into(),
                found: address(Some(descriptor)),
            });
        }
    }

    let host_paths: Vec<PathBuf> = external.host_paths.iter().map(PathBuf::from).collect();
    let parts = KeyParts {
        builder: &internal.builder,
        recipe: &external.recipe,
        target: &external.target,
        script: &external.script,
        env: &external.env,
        host_paths: &host_paths,
        host_tools: &external.host_tools,
        fingerprints: &internal.fingerprints,
    };
    let computed = match parts.key(inputs.iter().copied()) {
        Ok(key) if key == record.key => return,
        Ok(key) => key.to_string(),
        Err(error) => format!("none ({error})"),
    };
    // The key differs: name what differs from what the record says the key hashed.
    let stated: BTreeMap<&str, String> = inputs
        .iter()
        .map(|(name, shape)| (*name, shape.key_text()))
        .collect();
    let none = || "none".to_owned();
    for (name, recorded) in &record.inputs {
        let found = stated.get(name.as_str()).cloned().unwrap_or_else(none);
        if &found != recorded {
            problems.push(Problem::Input {
                input: name.clone(),
                expected: recorded.clone(),
                found,
            });
        }
    }
    for (name, text) in &stated {
        if !record.inputs.contains_key(*name) {
            problems.push(Problem::Input {
                input: (*name).to_owned(),
                expected: none(),
                found: text.clone(),
            });
        }
    }
    for (name, recorded) in &record.fingerprints {
        let found = internal
            .fingerprints
            .get(name)
            .cloned()
            .unwrap_or_else(none);
        if &found != recorded {
            problems.push(Problem::Fingerprint {
                name: name.clone(),
                expected: recorded.clone(),
                found,
            });
        }
    }
    for (name, value) in &internal.fingerprints {
        if !record.fingerprints.contains_key(name) {
            problems.push(Problem::Fingerprint {
                name: name.clone(),
                expected: none(),
                found: value.clone(),
            });
        }
    }
    problems.push(Problem::Key {
        expected: record.key,
        computed,
    });
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use hstore_store::bundle::SecretKey;

    use super::super::{RunTimes, blake3, statement};
    use super::*;
    use crate::BuildPlan;
    use crate::inputs::Input;

    fn plan() -> BuildPlan {
        BuildPlan {
            recipe: "app".into(),
            target: "cpu".into(),
            base: None,
            script: "make".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            inputs: vec![
                Input {
                    name: "code".into(),
                    shape: InputShape::Tree(Digest::of_bytes(b"code")),
                },
                Input {
                    name: "wheels".into(),
                    shape: InputShape::Wheelhouse {
                        wheels: vec![("a-1-py3-none-any.whl".into(), Digest::of_bytes(b"a"))],
                        requirements: "a==1\n".into(),
                    },
                },
            ],
            host_paths: vec![PathBuf::from("/opt/sdk")],
            host_tools: Vec::new(),
            limits: hstore_sandbox::LimitOverrides::default(),
            notes: Vec::new(),
        }
    }

    fn record(signer: Option<&SecretKey>) -> BuildRecord {
        let plan = plan();
        let fingerprints = BTreeMap::from([("base-system".to_owned(), "b3:00".to_owned())]);
        let key = plan.key(&fingerprints).unwrap();
        let output = Digest::of_bytes(b"out");
        let now = SystemTime::now();
        let times = RunTimes {
            started: now,
            finished: now,
        };
        BuildRecord {
            key,
            recipe: plan.recipe.clone(),
            target: plan.target.clone(),
            output,
            log: Digest::of_bytes(b"log"),
            inputs: plan
                .inputs
                .iter()
                .map(|input| (input.name.clone(), input.shape.key_text()))
                .collect(),
            fingerprints: fingerprints.clone(),
            provenance: Some(Provenance::new(
                statement(&plan, &key, &fingerprints, &output, times),
                signer,
            )),
        }
    }

    fn problems(record: &BuildRecord, trusted: &[PublicKey]) -> Vec<Problem> {
        match verify(record, trusted) {
            Ok(_) => Vec::new(),
            Err(Error::Refused { problems, .. }) => problems,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn pae_is_the_dsse_encoding() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_statement_verifies_and_names_every_input() {
        let key = SecretKey::generate();
        let record = record(Some(&key));
        let verified = verify(&record, &[key.public_key()]).unwrap();
        let names: Vec<String> = verified
            .statement
            .predicate
            .build_definition
            .resolved_dependencies
            .iter()
            .filter_map(|descriptor| descriptor.name.clone())
            .collect();
        assert_eq!(names, ["code", "wheels", "wheels/a-1-py3-none-any.whl"]);
        assert_eq!(
            problems(&record, &[SecretKey::generate().public_key()]),
            [Problem::Untrusted {
                signers: vec![key.public_key().to_string()]
            }]
        );
        assert_eq!(
            problems(&self::record(None), &[key.public_key()]),
            [Problem::NotSigned]
        );
    }

    #[test]
    fn a_changed_input_is_named_whether_re_signed_or_not() {
        let key = SecretKey::generate();
        let record = record(Some(&key));
        let Some(Provenance::Envelope(envelope)) = &record.provenance else {
            panic!("signed");
        };
        let mut statement: Statement =
            serde_json::from_slice(&STANDARD.decode(&envelope.payload).unwrap()).unwrap();
        let evil = Digest::of_bytes(b"evil");
        let code = &mut statement.predicate.build_definition.resolved_dependencies[0];
        code.digest = blake3(&evil);
        code.annotations.as_mut().unwrap().shape = Some(InputShape::Tree(evil));
        let bytes = serde_json::to_vec(&statement).unwrap();

        let mut re_signed = record.clone();
        re_signed.provenance = Some(Provenance::Envelope(Envelope::sign(&bytes, &key)));
        let found = problems(&re_signed, &[key.public_key()]);
        assert!(
            matches!(&found[..], [Problem::Input { input, .. }, Problem::Key { .. }] if input == "code"),
            "{found:?}"
        );

        let mut altered = record.clone();
        altered.provenance = Some(Provenance::Envelope(Envelope {
            payload: STANDARD.encode(&bytes),
            ..envelope.clone()
        }));
        let found = problems(&altered, &[key.public_key()]);
        assert!(
            matches!(&found[..], [Problem::BadSignature { .. }, Problem::Input { input, .. }, Problem::Key { .. }] if input == "code"),
            "{found:?}"
        );
    }
}
