//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the parts hstore writes, as a small serde model.
//!
//! Written: the document header (`SPDX-2.3`, `CC0-1.0`, `SPDXRef-DOCUMENT`, a name, a `documentNamespace` of
//! `urn:uuid:` derived from the document's bytes without it, `creationInfo` with the given time or else the Unix
//! epoch, since `created` is required and wall-clock time would break reproducibility), one package per component
//! (`SPDXRef-NAME-VERSION-HASH` ids, the hash of the `bom-ref`, `downloadLocation` the URL or `NONE`, `filesAnalyzed` false,
//! checksums `SHA256` and `BLAKE3`, `licenseDeclared` the expression, a `LicenseRef-` for a licence that is no SPDX
//! expression (its text in `hasExtractedLicensingInfos`), else `NOASSERTION`; the purl as a `PACKAGE-MANAGER`
//! external reference), and relationships: the document `DESCRIBES` the subject, then `DEPENDS_ON` and `CONTAINS`
//! edges, sorted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::inventory::{
    Component, ComponentType, Download, Inventory, License, Relation, content_uuid, to_bytes,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(rename = "spdxVersion")]
    version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    #[serde(rename = "documentNamespace")]
    namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    category: &'static str,
    #[serde(rename = "referenceType")]
    kind: &'static str,
    #[serde(rename = "referenceLocator")]
    locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    #[serde(rename = "licenseId")]
    id: String,
    extracted_text: String,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    #[serde(rename = "relationshipType")]
    kind: &'static str,
    related_spdx_element: String,
}

const NOASSERTION: &str = "NOASSERTION";

/// `SPDXRef-` + `readable`'s letters, digits, `.` and `-` (others become `-`, at most 60 kept), + 12 hex of the
/// BLAKE3 of `unique`, so ids are readable, valid (`[A-Za-z0-9.-]+`) and unique.
fn spdx_id(readable: &str, unique: &str) -> String {
    let readable: String = readable
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '.' || character == '-' {
                character
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let digest = hstore_store::Digest::of_bytes(unique.as_bytes()).to_hex();
    format!("SPDXRef-{readable}-{}", &digest[..12])
}

fn purpose(kind: ComponentType) -> &'static str {
    match kind {
        ComponentType::Application => "APPLICATION",
        ComponentType::Library => "LIBRARY",
        ComponentType::File => "FILE",
    }
}

/// A component's id: its name and version, then the hash of its `bom-ref`.
fn component_id(component: &Component) -> String {
    let readable = match &component.version {
        Some(version) => format!("{}-{version}", component.name),
        None => component.name.clone(),
    };
    spdx_id(&readable, &component.bom_ref)
}

fn package(component: &Component, extracted: &mut BTreeMap<String, ExtractedLicense>) -> Package {
    let mut checksums = Vec::new();
    if let Some(sha256) = &component.sha256 {
        checksums.push(Checksum {
            algorithm: "SHA256",
            checksum_value: sha256.clone(),
        });
    }
    if let Some(blake3) = &component.blake3 {
        checksums.push(Checksum {
            algorithm: "BLAKE3",
            checksum_value: blake3.clone(),
        });
    }
    let license_declared = match &component.license {
        Some(License::Expression(expression)) => expression.clone(),
        Some(License::Name(name)) => {
            let id = format!(
                "LicenseRef-{}",
                spdx_id(name, name).trim_start_matches("SPDXRef-")
            );
            extracted
                .entry(id.clone())
                .or_insert_with(|| ExtractedLicense {
                    id: id.clone(),
                    extracted_text: name.clone(),
                    name: name.clone(),
                });
            id
        }
        None => NOASSERTION.to_owned(),
    };
    Package {
        name: component.name.clone(),
        spdx_id: component_id(component),
        version_info: component.version.clone(),
        download_location: match &component.download {
            Download::Url(url) => url.clone(),
            Download::None => "NONE".to_owned(),
        },
        files_analyzed: false,
        checksums,
        license_concluded: NOASSERTION,
        license_declared,
        copyright_text: NOASSERTION,
        external_refs: component
            .purl
            .iter()
            .map(|purl| ExternalRef {
                category: "PACKAGE-MANAGER",
                kind: "purl",
                locator: purl.clone(),
            })
            .collect(),
        primary_package_purpose: purpose(component.kind),
    }
}

/// The SPDX 2.3 JSON document of `inventory`.
pub fn render(inventory: &Inventory) -> Vec<u8> {
    let mut extracted = BTreeMap::new();
    let mut packages = vec![package(&inventory.subject, &mut extracted)];
    packages.extend(
        inventory
            .components
            .iter()
            .map(|component| package(component, &mut extracted)),
    );
    let ids: BTreeMap<&str, String> = std::iter::once(&inventory.subject)
        .chain(&inventory.components)
        .map(|component| (component.bom_ref.as_str(), component_id(component)))
        .collect();
    // Every edge names a component of the inventory; `bom-ref`s are its keys.
    let id = |bom_ref: &str| {
        ids.get(bom_ref)
            .cloned()
            .unwrap_or_else(|| spdx_id(bom_ref, bom_ref))
    };
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        kind: "DESCRIBES",
        related_spdx_element: id(&inventory.subject.bom_ref),
    }];
    for (from, edges) in &inventory.relations {
        for (relation, to) in edges {
            relationships.push(Relationship {
                spdx_element_id: id(from),
                kind: match relation {
                    Relation::DependsOn => "DEPENDS_ON",
                    Relation::Contains => "CONTAINS",
                },
                related_spdx_element: id(to),
            });
        }
    }
    let name = match &inventory.subject.version {
        Some(version) => format!("{} {version}", inventory.subject.name),
        None => inventory.subject.name.clone(),
    };
    let mut document = Document {
        version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name,
        namespace: String::new(),
        creation_info: CreationInfo {
            created: inventory
                .created
                .clone()
                .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
            creators: vec![format!("Tool: hstore-{}", inventory.tool_version)],
        },
        packages,
        has_extracted_licensing_infos: extracted.into_values().collect(),
        relationships,
    };
    let unnamespaced = to_bytes(&document);
    document.namespace = format!("urn:uuid:{}", content_uuid(&unnamespaced));
    to_bytes(&document)
}
