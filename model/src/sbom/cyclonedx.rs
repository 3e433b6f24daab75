//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the parts hstore writes, as a small serde model.
//! The `cyclonedx-bom` crate stops at spec 1.5, whose hash algorithms lack `BLAKE3`.
//!
//! Written: `bomFormat`, `specVersion` `1.6`, `serialNumber` (a `urn:uuid:` derived from the document's bytes
//! without it, [`super::content_uuid`]), `version` 1, `metadata` (the timestamp only when given, the tool, the
//! subject as `metadata.component`), `components` (type, `bom-ref`, name, version, hashes `SHA-256` and `BLAKE3`,
//! licences as one `expression` or one `license.name`, purl, `distribution`/`vcs` references, hstore properties)
//! and `dependencies` (every component with edges, `dependsOn` sorted; containment counts as a dependency, the
//! one relation CycloneDX's graph has). A component without a known licence has no `licenses`.

use serde::Serialize;

use super::inventory::{
    Component, ComponentType, Download, Inventory, License, content_uuid, to_bytes,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    #[serde(rename = "bomFormat")]
    format: &'static str,
    spec_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    version: u32,
    metadata: Metadata,
    components: Vec<CdxComponent>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    tools: Tools,
    component: CdxComponent,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<CdxComponent>,
}

#[derive(Serialize)]
struct CdxComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(rename = "externalReferences", skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum LicenseChoice {
    Expression { expression: String },
    License { license: NamedLicense },
}

#[derive(Serialize)]
struct NamedLicense {
    name: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

fn component_type(kind: ComponentType) -> &'static str {
    match kind {
        ComponentType::Application => "application",
        ComponentType::Library => "library",
        ComponentType::File => "file",
    }
}

fn component(component: &Component) -> CdxComponent {
    let mut hashes = Vec::new();
    if let Some(sha256) = &component.sha256 {
        hashes.push(Hash {
            alg: "SHA-256",
            content: sha256.clone(),
        });
    }
    if let Some(blake3) = &component.blake3 {
        hashes.push(Hash {
            alg: "BLAKE3",
            content: blake3.clone(),
        });
    }
    let licenses = match &component.license {
        Some(License::Expression(expression)) => vec![LicenseChoice::Expression {
            expression: expression.clone(),
        }],
        Some(License::Name(name)) => vec![LicenseChoice::License {
            license: NamedLicense { name: name.clone() },
        }],
        None => Vec::new(),
    };
    let mut external_references = Vec::new();
    match &component.download {
        // A `git+URL@COMMIT` location is the `vcs` reference below, not a file to download.
        Download::Url(url) if component.vcs.is_none() => {
            external_references.push(ExternalReference {
                kind: "distribution",
                url: url.clone(),
            });
        }
        Download::Url(_) | Download::None => {}
    }
    if let Some(vcs) = &component.vcs {
        external_references.push(ExternalReference {
            kind: "vcs",
            url: vcs.clone(),
        });
    }
    CdxComponent {
        kind: component_type(component.kind),
        bom_ref: Some(component.bom_ref.clone()),
        name: component.name.clone(),
        version: component.version.clone(),
        hashes,
        licenses,
        purl: component.purl.clone(),
        external_references,
        properties: component
            .properties
            .iter()
            .map(|(name, value)| Property {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

/// The CycloneDX 1.6 JSON document of `inventory`.
pub fn render(inventory: &Inventory) -> Vec<u8> {
    let dependencies = inventory
        .relations
        .iter()
        .filter(|(_, edges)| !edges.is_empty())
        .map(|(from, edges)| {
            let mut depends_on: Vec<String> = edges.iter().map(|(_, to)| to.clone()).collect();
            depends_on.sort();
            depends_on.dedup();
            Dependency {
                reference: from.clone(),
                depends_on,
            }
        })
        .collect();
    let mut bom = Bom {
        format: "CycloneDX",
        spec_version: "1.6",
        serial_number: None,
        version: 1,
        metadata: Metadata {
            timestamp: inventory.created.clone(),
            tools: Tools {
                components: vec![CdxComponent {
                    kind: "application",
                    bom_ref: None,
                    name: "hstore".into(),
                    version: Some(inventory.tool_version.clone()),
                    hashes: Vec::new(),
                    licenses: Vec::new(),
                    purl: None,
                    external_references: Vec::new(),
                    properties: Vec::new(),
                }],
            },
            component: component(&inventory.subject),
        },
        components: inventory.components.iter().map(component).collect(),
        dependencies,
    };
    let unnumbered = to_bytes(&bom);
    bom.serial_number = Some(format!("urn:uuid:{}", content_uuid(&unnumbered)));
    to_bytes(&bom)
}
