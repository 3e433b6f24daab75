//! Provenance of a build record: an in-toto Statement v1 whose predicate is SLSA Provenance v1, stored in the
//! record (`provenance`), signed as a DSSE envelope when the build has a signing key.
//!
//! - The statement's one subject is the output: `name` the recipe, `digest.blake3` the output tree's address (hex).
//! - `buildDefinition.externalParameters` holds what the recipe and target say (recipe, target, script, env, host
//!   paths and tools), `internalParameters` what hstore adds (`builder`: [`crate::BUILDER_VERSION`];
//!   `fingerprints`: base system, host paths, host tools), and `resolvedDependencies` every input: one descriptor per
//!   input, named as in the recipe, carrying its shape as annotations (`{"input": NAME, "shape": …}`, the
//!   [`InputShape`] the key hashed) and its address as `digest.blake3` where it is one object; an input made of
//!   several objects (vendored crates, wheels, xmake archives) has one more descriptor per object, named
//!   `INPUT/MEMBER`. Everything the build key hashes is in the statement, so [`verify`] recomputes the key from it
//!   alone ([`crate::KeyParts`]).
//! - `runDetails.metadata.invocationId` is the build key (`b3:…`), `startedOn`/`finishedOn` RFC 3339 UTC times.
//!
//! Nothing here enters the build key or the output: a record is not a content-addressed object, so its times are
//! free to differ between two builds of one key.
//!
//! Signed form: a DSSE envelope (`payloadType` [`PAYLOAD_TYPE`], `payload` the statement's compact JSON in base64,
//! `signatures[]` of `{keyid: "hstore-ed25519:…", sig: base64}`), each signature an ed25519 signature (the store's
//! `hstore key` pairs) over the DSSE pre-authentication encoding ([`pae`]).
//! See: <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>,
//! <https://slsa.dev/spec/v1.0/provenance>, <https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hstore_store::Digest;
use hstore_store::bundle::SecretKey;
use serde::{Deserialize, Serialize};

mod check;

pub use check::{Error, Problem, Verified, verify};

use crate::inputs::{Input, InputShape};
use crate::{BUILDER_VERSION, BuildPlan};

/// The statement's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The statement's `predicateType`.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildDefinition.buildType`: hstore's sandboxed build, version 1 of this statement's layout.
pub const BUILD_TYPE: &str = "https://example.invalid/hstore/provenance/build/v1";
/// `runDetails.builder.id`.
pub const BUILDER_ID: &str = "https://example.invalid/hstore/provenance/builder";
/// The DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The digest algorithm of every address.
const BLAKE3: &str = "blake3";

/// An in-toto Statement v1 with a SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The output.
    pub subject: Vec<ResourceDescriptor>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The SLSA provenance.
    pub predicate: SlsaProvenance,
}

/// An in-toto ResourceDescriptor: a subject or a resolved dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// The name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it is, when no digest names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → hex digest (`blake3` is the hstore address).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// hstore's description of an input (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<DependencyAnnotations>,
}

/// The annotations of a resolved dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyAnnotations {
    /// The input (recipe source) it belongs to.
    pub input: String,
    /// The input's shape, as the key hashed it; only on the input's own descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<InputShape>,
}

/// The SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlsaProvenance {
    /// What was built, from what.
    pub build_definition: BuildDefinition,
    /// Who built it, when.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// Always [`BUILD_TYPE`].
    pub build_type: String,
    /// What the recipe and target say.
    pub external_parameters: ExternalParameters,
    /// What hstore adds.
    pub internal_parameters: InternalParameters,
    /// Every input (see the module docs).
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// `externalParameters`: the recipe's build section for the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// The recipe's name.
    pub recipe: String,
    /// The target.
    pub target: String,
    /// The build script.
    pub script: String,
    /// The build environment.
    pub env: BTreeMap<String, String>,
    /// The target's host paths.
    pub host_paths: Vec<String>,
    /// The target's host tools.
    pub host_tools: Vec<String>,
}

/// `internalParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalParameters {
    /// [`BUILDER_VERSION`] of the builder that keyed the build.
    pub builder: String,
    /// Host fingerprints (base system, host paths, host tools).
    pub fingerprints: BTreeMap<String, String>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
    /// The run.
    pub metadata: BuildMetadata,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    /// Always [`BUILDER_ID`].
    pub id: String,
    /// `{"hstore": package version}`.
    #[serde(default)]
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// The build key (`b3:…`).
    pub invocation_id: String,
    /// When the build started (RFC 3339, UTC).
    pub started_on: String,
    /// When it finished.
    pub finished_on: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// base64 of the statement's bytes.
    pub payload: String,
    /// The signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signer's public key (`hstore-ed25519:…`).
    pub keyid: String,
    /// base64 of the 64-byte ed25519 signature over [`pae`].
    pub sig: String,
}

/// A record's provenance: the statement, signed or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Built without a signing key.
    Statement(Box<Statement>),
    /// Signed.
    Envelope(Envelope),
}

/// DSSE's pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    message.extend_from_slice(payload);
    message
}

impl Envelope {
    /// An envelope around `payload` (a statement's bytes), signed by `signer`.
    pub fn sign(payload: &[u8], signer: &SecretKey) -> Self {
        Self {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: signer.public_key().to_string(),
                sig: STANDARD.encode(signer.sign(&pae(PAYLOAD_TYPE, payload))),
            }],
        }
    }
}

impl Provenance {
    /// The statement, in an envelope signed by `signer` when given.
    pub fn new(statement: Statement, signer: Option<&SecretKey>) -> Self {
        match signer {
            // Serializing a statement (strings and maps) cannot fail.
            Some(signer) => Self::Envelope(Envelope::sign(
                &serde_json::to_vec(&statement).unwrap_or_default(),
                signer,
            )),
            None => Self::Statement(Box::new(statement)),
        }
    }
}

/// How a build ran, for its statement.
#[derive(Debug, Clone, Copy)]
pub struct RunTimes {
    /// When the build started.
    pub started: SystemTime,
    /// When it finished.
    pub finished: SystemTime,
}

/// The statement of `plan`'s build under `key` with `fingerprints`, which gave `output`.
pub fn statement(
    plan: &BuildPlan,
    key: &Digest,
    fingerprints: &BTreeMap<String, String>,
    output: &Digest,
    times: RunTimes,
) -> Statement {
    let inputs: Vec<(&str, &InputShape)> = plan
        .inputs
        .iter()
        .map(|Input { name, shape }| (name.as_str(), shape))
        .collect();
    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: vec![ResourceDescriptor {
            name: Some(plan.recipe.clone()),
            uri: None,
            digest: blake3(output),
            annotations: None,
        }],
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: SlsaProvenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_owned(),
                external_parameters: ExternalParameters {
                    recipe: plan.recipe.clone(),
                    target: plan.target.clone(),
                    script: plan.script.clone(),
                    env: plan.env.clone(),
                    host_paths: plan
                        .host_paths
                        .iter()
                        .map(|path| path.to_string_lossy().into_owned())
                        .collect(),
                    host_tools: plan.host_tools.clone(),
                },
                internal_parameters: InternalParameters {
                    builder: BUILDER_VERSION.to_owned(),
                    fingerprints: fingerprints.clone(),
                },
                resolved_dependencies: dependencies(&inputs),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: BUILDER_ID.to_owned(),
                    version: BTreeMap::from([(
                        "hstore".to_owned(),
                        env!("CARGO_PKG_VERSION").to_owned(),
                    )]),
                },
                metadata: BuildMetadata {
                    invocation_id: key.to_string(),
                    started_on: humantime::format_rfc3339_seconds(times.started).to_string(),
                    finished_on: humantime::format_rfc3339_seconds(times.finished).to_string(),
                },
            },
        },
    }
}

fn blake3(digest: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([(BLAKE3.to_owned(), digest.to_hex())])
}

/// The resolved dependencies of `inputs`, in their order (see the module docs).
fn dependencies(inputs: &[(&str, &InputShape)]) -> Vec<ResourceDescriptor> {
    let mut descriptors = Vec::new();
    for (name, shape) in inputs {
        let annotations = |shape: Option<&InputShape>| {
            Some(DependencyAnnotations {
                input: (*name).to_owned(),
                shape: shape.cloned(),
            })
        };
        let member = |member: &str, digest: &Digest| ResourceDescriptor {
            name: Some(format!("{name}/{member}")),
            uri: None,
            digest: blake3(digest),
            annotations: annotations(None),
        };
        let single = match shape {
            InputShape::Tree(digest)
            | InputShape::LocalTree(digest)
            | InputShape::File { digest, .. }
            | InputShape::Output {
                output: Some(digest),
                ..
            } => Some(*digest),
            InputShape::Output { output: None, .. }
            | InputShape::CargoVendor { .. }
            | InputShape::Wheelhouse { .. }
            | InputShape::XmakePackages { .. } => None,
        };
        descriptors.push(ResourceDescriptor {
            name: Some((*name).to_owned()),
            // A descriptor needs a digest or a URI: an input of several objects is named by where it is bound.
            uri: single.is_none().then(|| format!("hstore:input/{name}")),
            digest: single.as_ref().map(blake3).unwrap_or_default(),
            annotations: annotations(Some(shape)),
        });
        match shape {
            InputShape::CargoVendor { crates } => {
                for krate in crates {
                    descriptors.push(member(&krate.dir_name, &krate.tree));
                }
            }
            InputShape::Wheelhouse { wheels, .. } => {
                for (file_name, digest) in wheels {
                    descriptors.push(member(file_name, digest));
                }
            }
            InputShape::XmakePackages { repo, archives, .. } => {
                descriptors.push(member("repo", repo));
                for archive in archives {
                    descriptors.push(member(
                        &format!("archives/{}", archive.file_name),
                        &archive.digest,
                    ));
                }
            }
            InputShape::Tree(_)
            | InputShape::LocalTree(_)
            | InputShape::File { .. }
            | InputShape::Output { .. } => {}
        }
    }
    descriptors
}
