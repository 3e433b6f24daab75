//! The neutral inventory of an SBOM: components, their licences and downloads, and who depends on whom, made
//! from a lockfile or a build closure ([`Inventory::of`]); the format modules write it (see the module docs of
//! [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hstore_store::Digest;

pub use crate::artifact::ComponentType;
use crate::artifact::{Artifact, Description, SourceFacts};
use crate::lockfile::Lockfile;
use crate::recipe::SourceSpec;

/// Declared licences (as the package's metadata writes them) by artifact id; an artifact missing here has none
/// known (its metadata declares none, or the object was not at hand to read).
pub type Licenses = BTreeMap<String, String>;

/// Why an SBOM could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An artifact's identity does not make a valid package URL.
    #[error("artifact `{id}` has no valid package URL")]
    Purl {
        /// The artifact.
        id: String,
        /// What `packageurl` refused.
        #[source]
        source: packageurl::Error,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Purl { .. } => Some(
                "the lockfile was edited by hand; restore it from version control or re-run `hstore lock`".into(),
            ),
        }
    }
}

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CycloneDX 1.6 JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// One build output of a closure, as its record tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltOutput {
    /// The recipe built.
    pub recipe: String,
    /// The target it was built for.
    pub target: String,
    /// The build key.
    pub key: Digest,
    /// The output tree.
    pub output: Digest,
    /// Its inputs, by input name.
    pub inputs: Vec<BuildInput>,
}

/// One input of a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInput {
    /// The input's name (the recipe's source name).
    pub name: String,
    /// What it is.
    pub kind: BuildInputKind,
}

/// What an input of a build is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildInputKind {
    /// Store objects that are locked artifacts (a tree, a file, vendored crates, wheels, xmake archives); an
    /// address the lockfile does not know still appears, as a component named after the input.
    Locked(Vec<Digest>),
    /// A local directory that stood in for the locked source (`--override-input`), stored as this tree.
    LocalTree(Digest),
    /// Another recipe's output.
    Output(Digest),
}

/// What the SBOM describes.
#[derive(Clone, Debug)]
pub enum Subject<'a> {
    /// The whole lockfile, whose bytes have this BLAKE3 address.
    Lockfile(Digest),
    /// A build output's closure: the output asked for first, then every output it depends on.
    Build(&'a [BuiltOutput]),
}

/// Everything an SBOM is made from.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The lockfile naming the artifacts.
    pub lockfile: &'a Lockfile,
    /// Declared licences by artifact id.
    pub licenses: &'a Licenses,
    /// What is described.
    pub subject: Subject<'a>,
    /// The creation time (RFC 3339, UTC), when the caller has a reproducible one; never the wall clock.
    pub created: Option<String>,
    /// The writing tool's version.
    pub tool_version: &'a str,
}

/// A declared licence: an SPDX expression when it parses as one, else the text as a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum License {
    /// A valid SPDX license expression (`MIT OR Apache-2.0`).
    Expression(String),
    /// Anything else (`BSD`, `Apache Software License`).
    Name(String),
}

impl License {
    /// Classifies declared text; `None` for blank text.
    pub fn of(declared: &str) -> Option<Self> {
        let text = declared.trim();
        if text.is_empty() {
            return None;
        }
        Some(if ::spdx::Expression::parse(text).is_ok() {
            License::Expression(text.to_owned())
        } else {
            License::Name(text.to_owned())
        })
    }
}

/// Where a component's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Download {
    /// This URL (or `git+URL@COMMIT`).
    Url(String),
    /// Nowhere: a local tree, a recipe, a build output.
    None,
}

/// One component, format-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Unique within the document: an artifact's lockfile id, `recipe:NAME`, `build:ADDRESS`.
    pub bom_ref: String,
    /// What it is.
    pub kind: ComponentType,
    /// Its name.
    pub name: String,
    /// Its version, where it has one.
    pub version: Option<String>,
    /// Its package URL (artifacts only).
    pub purl: Option<String>,
    /// SHA-256 hex of the upstream file, where upstream pins one.
    pub sha256: Option<String>,
    /// BLAKE3 hex of what the store holds.
    pub blake3: Option<String>,
    /// The declared licence, when one is known.
    pub license: Option<License>,
    /// Where it was downloaded from.
    pub download: Download,
    /// A version-control location (`git+URL@COMMIT`), for git artifacts and submodules.
    pub vcs: Option<String>,
    /// hstore's own facts (`hstore:kind`, `hstore:target`, `hstore:build-key`), sorted by name.
    pub properties: Vec<(String, String)>,
}

/// How one component relates to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// Needs it to build (a recipe's sources, a build's inputs).
    DependsOn,
    /// Holds it (the lockfile its recipes, a repository its submodules).
    Contains,
}

/// The neutral document both formats are written from.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// What is described.
    pub subject: Component,
    /// Every other component, sorted by `bom_ref`.
    pub components: Vec<Component>,
    /// `from → (relation, to)` edges by `bom_ref`.
    pub relations: BTreeMap<String, BTreeSet<(Relation, String)>>,
    /// Creation time (RFC 3339), if reproducible.
    pub created: Option<String>,
    /// The writing tool's version.
    pub tool_version: String,
}

impl Inventory {
    /// Builds the inventory of `request`.
    pub fn of(request: &Request<'_>) -> Result<Self, Error> {
        let lockfile = request.lockfile;
        let toolchains = toolchain_specs(lockfile);
        let mut components: BTreeMap<String, Component> = BTreeMap::new();
        let mut relations: BTreeMap<String, BTreeSet<(Relation, String)>> = BTreeMap::new();
        let add_artifact = |artifact: &Artifact,
                            components: &mut BTreeMap<String, Component>,
                            relations: &mut BTreeMap<String, BTreeSet<(Relation, String)>>|
         -> Result<(), Error> {
            if !components.contains_key(artifact.id()) {
                for component in
                    artifact_component(artifact, request.licenses, &toolchains, relations)?
                {
                    components.insert(component.bom_ref.clone(), component);
                }
            }
            Ok(())
        };
        let subject = match &request.subject {
            Subject::Lockfile(address) => {
                let subject = Component {
                    bom_ref: "lockfile".into(),
                    kind: ComponentType::File,
                    name: "lockfile.json".into(),
                    version: None,
                    purl: None,
                    sha256: None,
                    blake3: Some(address.to_hex()),
                    license: None,
                    download: Download::None,
                    vcs: None,
                    properties: Vec::new(),
                };
                for artifact in &lockfile.artifacts {
                    add_artifact(artifact, &mut components, &mut relations)?;
                }
                for recipe in &lockfile.recipes {
                    let bom_ref = format!("recipe:{}", recipe.name);
                    relations
                        .entry(subject.bom_ref.clone())
                        .or_default()
                        .insert((Relation::Contains, bom_ref.clone()));
                    let edges = relations.entry(bom_ref.clone()).or_default();
                    for source in &recipe.sources {
                        for id in &source.artifacts {
                            edges.insert((Relation::DependsOn, id.to_string()));
                        }
                        if let SourceSpec::Recipe { recipe: read, .. } = &source.spec
                            && lockfile.recipe(read).is_some()
                        {
                            edges.insert((Relation::DependsOn, format!("recipe:{read}")));
                        }
                    }
                    components.insert(
                        bom_ref.clone(),
                        Component {
                            bom_ref,
                            kind: ComponentType::Application,
                            name: recipe.name.clone(),
                            version: None,
                            purl: None,
                            sha256: None,
                            blake3: None,
                            license: None,
                            download: Download::None,
                            vcs: None,
                            properties: vec![("hstore:kind".into(), "recipe".into())],
                        },
                    );
                }
                subject
            }
            Subject::Build(outputs) => {
                let by_address: BTreeMap<Digest, &Artifact> = lockfile
                    .artifacts
                    .iter()
                    .map(|artifact| (artifact.address(), artifact))
                    .collect();
                let output_ref = |output: &Digest| format!("build:{output}");
                let mut subject = None;
                for built in *outputs {
                    let bom_ref = output_ref(&built.output);
                    let component = Component {
                        bom_ref: bom_ref.clone(),
                        kind: ComponentType::Application,
                        name: built.recipe.clone(),
                        version: None,
                        purl: None,
                        sha256: None,
                        blake3: Some(built.output.to_hex()),
                        license: None,
                        download: Download::None,
                        vcs: None,
                        properties: vec![
                            ("hstore:build-key".into(), built.key.to_string()),
                            ("hstore:kind".into(), "build-output".into()),
                            ("hstore:target".into(), built.target.clone()),
                        ],
                    };
                    for input in &built.inputs {
                        let targets: Vec<String> = match &input.kind {
                            BuildInputKind::Output(output) => vec![output_ref(output)],
                            BuildInputKind::LocalTree(tree) => {
                                let local = format!("local:{}.{}:{tree}", built.recipe, input.name);
                                components.entry(local.clone()).or_insert_with(|| {
                                    unlocked(&local, &input.name, *tree, "local-tree")
                                });
                                vec![local]
                            }
                            BuildInputKind::Locked(addresses) => {
                                let mut targets = Vec::new();
                                for address in addresses {
                                    if let Some(artifact) = by_address.get(address) {
                                        add_artifact(artifact, &mut components, &mut relations)?;
                                        targets.push(artifact.id().to_owned());
                                    } else {
                                        let other = format!(
                                            "input:{}.{}:{address}",
                                            built.recipe, input.name
                                        );
                                        components.entry(other.clone()).or_insert_with(|| {
                                            unlocked(
                                                &other,
                                                &input.name,
                                                *address,
                                                "unlocked-input",
                                            )
                                        });
                                        targets.push(other);
                                    }
                                }
                                targets
                            }
                        };
                        let edges = relations.entry(bom_ref.clone()).or_default();
                        edges.extend(
                            targets
                                .into_iter()
                                .map(|target| (Relation::DependsOn, target)),
                        );
                    }
                    if subject.is_none() {
                        subject = Some(component);
                    } else {
                        components.insert(bom_ref, component);
                    }
                }
                // A closure always holds the output asked for; an empty one describes nothing.
                subject.unwrap_or_else(|| {
                    unlocked(
                        "build:none",
                        "nothing",
                        Digest::of_bytes(b""),
                        "build-output",
                    )
                })
            }
        };
        components.remove(&subject.bom_ref);
        Ok(Inventory {
            subject,
            components: components.into_values().collect(),
            relations,
            created: request.created.clone(),
            tool_version: request.tool_version.to_owned(),
        })
    }
}

/// A component for a store object no lockfile artifact names (a local tree, an input of another lockfile).
fn unlocked(bom_ref: &str, name: &str, address: Digest, kind: &str) -> Component {
    Component {
        bom_ref: bom_ref.to_owned(),
        kind: ComponentType::Library,
        name: name.to_owned(),
        version: None,
        purl: None,
        sha256: None,
        blake3: Some(address.to_hex()),
        license: None,
        download: Download::None,
        vcs: None,
        properties: vec![("hstore:kind".into(), kind.into())],
    }
}

/// `rust_toolchain` artifact ids → (version, host), from the sources that locked them.
fn toolchain_specs(lockfile: &Lockfile) -> BTreeMap<String, (String, String)> {
    let mut specs = BTreeMap::new();
    for source in lockfile.recipes.iter().flat_map(|recipe| &recipe.sources) {
        if let SourceSpec::RustToolchain { version, host } = &source.spec {
            for id in &source.artifacts {
                specs.insert(id.to_string(), (version.clone(), host.clone()));
            }
        }
    }
    specs
}

/// The component of `artifact`, followed by the parts its tree contains (a git artifact's submodules; the edges
/// are added to `relations`). What a kind says of itself is its
/// [`ArtifactKind::describe`](crate::artifact::ArtifactKind::describe).
fn artifact_component(
    artifact: &Artifact,
    licenses: &Licenses,
    toolchains: &BTreeMap<String, (String, String)>,
    relations: &mut BTreeMap<String, BTreeSet<(Relation, String)>>,
) -> Result<Vec<Component>, Error> {
    let id = artifact.id();
    let facts = SourceFacts {
        toolchain: toolchains
            .get(id)
            .map(|(version, host)| (version.as_str(), host.as_str())),
    };
    let purl_error = |source| Error::Purl {
        id: id.to_owned(),
        source,
    };
    let kind = artifact.kind_impl();
    let purl = kind.purl(&facts).map_err(purl_error)?;
    let description = kind.describe(&facts).map_err(purl_error)?;
    let mut all = Vec::with_capacity(1 + description.parts.len());
    for part in &description.parts {
        let bom_ref = format!("{id}#{}", part.reference);
        relations
            .entry(id.to_owned())
            .or_default()
            .insert((Relation::Contains, bom_ref.clone()));
        // Its files are inside the parent's tree, which is what the store addresses: no blake3 of its own.
        all.push(described(
            bom_ref,
            &part.description,
            Some(part.purl.clone()),
            None,
            None,
        ));
    }
    let mut component = described(
        id.to_owned(),
        &description,
        Some(purl),
        Some(artifact.address().to_hex()),
        licenses.get(id).and_then(|text| License::of(text)),
    );
    component
        .properties
        .push(("hstore:kind".into(), artifact.kind().into()));
    component.properties.sort();
    all.insert(0, component);
    Ok(all)
}

/// The component a [`Description`] makes under `bom_ref`.
fn described(
    bom_ref: String,
    description: &Description,
    purl: Option<String>,
    blake3: Option<String>,
    license: Option<License>,
) -> Component {
    let name = if description.name.is_empty() {
        bom_ref.clone()
    } else {
        description.name.clone()
    };
    Component {
        bom_ref,
        kind: description.component,
        name,
        version: description.version.clone(),
        purl,
        sha256: description.sha256.clone(),
        blake3,
        license,
        download: description
            .download
            .clone()
            .map_or(Download::None, Download::Url),
        vcs: description.vcs.clone(),
        properties: description.properties.clone(),
    }
}

/// A UUID derived from `bytes`: the first 16 bytes of their BLAKE3 hash with the version nibble set to 5 and the
/// RFC 4122 variant, because the CycloneDX 1.6 schema accepts `urn:uuid:` serial numbers of versions 1 to 5 only
/// (a version-5 UUID is name-based too; BLAKE3 stands in for SHA-1).
pub fn content_uuid(bytes: &[u8]) -> String {
    let digest = Digest::of_bytes(bytes);
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&digest.as_bytes()[..16]);
    raw[6] = (raw[6] & 0x0f) | 0x50;
    raw[8] = (raw[8] & 0x3f) | 0x80;
    let mut hex = String::with_capacity(32);
    for byte in raw {
        let _ = write!(hex, "{byte:02x}");
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Pretty JSON with a trailing newline; serializing plain data structures cannot fail.
pub(crate) fn to_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_are_expressions_when_they_parse() {
        assert_eq!(
            License::of(" MIT OR Apache-2.0 "),
            Some(License::Expression("MIT OR Apache-2.0".into()))
        );
        assert_eq!(
            License::of("Apache-2.0 WITH LLVM-exception"),
            Some(License::Expression("Apache-2.0 WITH LLVM-exception".into()))
        );
        assert_eq!(
            License::of("MIT/Apache-2.0"),
            Some(License::Name("MIT/Apache-2.0".into()))
        );
        assert_eq!(License::of("BSD"), Some(License::Name("BSD".into())));
        assert_eq!(License::of("  "), None);
    }

    #[test]
    fn content_uuids_are_version_5_shaped_and_stable() {
        let uuid = content_uuid(b"x");
        assert_eq!(uuid, content_uuid(b"x"));
        assert_ne!(uuid, content_uuid(b"y"));
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
