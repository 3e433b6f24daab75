//! The closure of a recorded build, for `hstore sbom`: the output asked for and every output it read, each with
//! its inputs ([`hstore_model::sbom::BuiltOutput`]), read back from build records.
//!
//! A record keeps each input as the text hashed into its key ([`crate::inputs::InputShape::key_text`]): its
//! shape's word, then the addresses it binds. This module is the one reader of that text: `output R T KEY` is
//! another recipe's output (followed to its record, recursively), `local-tree ADDRESS` a local directory standing
//! in for a locked source, and every other shape lists locked store objects, each `b3:` token one address
//! (`requirements.txt=b3:…`, the hash of text hstore wrote from the wheels, is no object and is left out).

use std::collections::BTreeSet;

use hstore_model::sbom::{BuildInput, BuildInputKind, BuiltOutput};
use hstore_store::{Digest, Store};

use crate::error::{BuildError, Result};
use crate::record::{BuildRecord, find_record};

/// The addresses of one input's key text, by shape.
fn input_kind(text: &str) -> BuildInputKind {
    let mut words = text.split_whitespace();
    let shape = words.next().unwrap_or_default();
    let address = |token: &str| -> Option<Digest> {
        let (label, value) = token.split_once('=').unwrap_or(("", token));
        if label == "requirements.txt" {
            return None;
        }
        // Vendored crates carry their source after the address: `name-1.0=b3:…(registry)`.
        let value = value.split('(').next().unwrap_or(value);
        value.parse().ok()
    };
    match shape {
        "output" => match text.split_whitespace().last().and_then(address) {
            Some(key) => BuildInputKind::Output(key),
            None => BuildInputKind::Locked(Vec::new()),
        },
        "local-tree" => match words.find_map(address) {
            Some(tree) => BuildInputKind::LocalTree(tree),
            None => BuildInputKind::Locked(Vec::new()),
        },
        _ => BuildInputKind::Locked(words.filter_map(address).collect()),
    }
}

/// `record` and the records of every output it read, recursively: the first is `record`'s, each once. An
/// `Output` input's address is the dependency's output tree.
pub fn closure(store: &Store, record: &BuildRecord) -> Result<Vec<BuiltOutput>> {
    let mut outputs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut pending = vec![record.clone()];
    while let Some(record) = pending.pop() {
        if !seen.insert(record.key) {
            continue;
        }
        let mut inputs = Vec::new();
        for (name, text) in &record.inputs {
            let kind = match input_kind(text) {
                BuildInputKind::Output(key) => {
                    let dependency = find_record(store, &key)?.ok_or_else(|| {
                        BuildError::DependencyRecordMissing {
                            recipe: record.recipe.clone(),
                            input: name.clone(),
                            key,
                        }
                    })?;
                    let output = dependency.output;
                    pending.push(dependency);
                    BuildInputKind::Output(output)
                }
                other => other,
            };
            inputs.push(BuildInput {
                name: name.clone(),
                kind,
            });
        }
        outputs.push(BuiltOutput {
            recipe: record.recipe.clone(),
            target: record.target.clone(),
            key: record.key,
            output: record.output,
            inputs,
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{InputShape, VendoredCrate};

    #[test]
    fn every_shape_reads_back_to_its_addresses() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let text = |shape: InputShape| input_kind(&shape.key_text());
        assert_eq!(text(InputShape::Tree(a)), BuildInputKind::Locked(vec![a]));
        assert_eq!(text(InputShape::LocalTree(a)), BuildInputKind::LocalTree(a));
        assert_eq!(
            text(InputShape::File {
                digest: a,
                file_name: "x y.tar.gz".into()
            }),
            BuildInputKind::Locked(vec![a])
        );
        assert_eq!(
            text(InputShape::CargoVendor {
                crates: vec![VendoredCrate {
                    dir_name: "serde-1.0.0".into(),
                    tree: a,
                    git: None,
                    registry: Some("sparse+http://127.0.0.1:1/index/".into()),
                }]
            }),
            BuildInputKind::Locked(vec![a])
        );
        assert_eq!(
            text(InputShape::Wheelhouse {
                wheels: vec![
                    ("a-1-py3-none-any.whl".into(), a),
                    ("b-1-py3-none-any.whl".into(), b)
                ],
                requirements: "a==1\n".into(),
            }),
            BuildInputKind::Locked(vec![a, b])
        );
        assert_eq!(
            text(InputShape::Output {
                recipe: "core".into(),
                target: "cpu".into(),
                key: b,
                output: Some(a),
            }),
            BuildInputKind::Output(b)
        );
    }
}
