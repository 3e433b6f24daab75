//! Golden vector of the build key: the JSON document it hashes, spelled out field by field, and the key itself. A
//! failure means every recorded build would miss its cache entry: a deliberate change bumps `BUILDER_VERSION`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hstore_build::{InputShape, KeyParts};
use hstore_store::Digest;

#[test]
fn build_key_document_and_address() {
    let source = Digest::of_bytes(b"source tree");
    let patch = Digest::of_bytes(b"patch file");
    let env = BTreeMap::from([("CC".to_owned(), "gcc".to_owned())]);
    let fingerprints = BTreeMap::from([("base-system".to_owned(), "b3:feed".to_owned())]);
    let host_paths = [PathBuf::from("/usr/local/cuda")];
    let host_tools = ["/usr/bin/gcc --version".to_owned()];
    let parts = KeyParts {
        builder: "hstore-builder-v2",
        recipe: "app",
        target: "cpu",
        script: "make install PREFIX=$out",
        env: &env,
        host_paths: &host_paths,
        host_tools: &host_tools,
        fingerprints: &fingerprints,
    };
    let tree = InputShape::Tree(source);
    let file = InputShape::File {
        digest: patch,
        file_name: "fix.patch".to_owned(),
    };
    // Inputs in any order: the key sorts them by name.
    let key = parts.key([("src", &tree), ("patch", &file)]).expect("keys");

    let document = format!(
        concat!(
            r#"{{"builder":"hstore-builder-v2","recipe":"app","target":"cpu","script":"make install PREFIX=$out","#,
            r#""env":{{"CC":"gcc"}},"inputs":[["patch","file fix.patch {patch}"],["src","tree {source}"]],"#,
            r#""host_paths":["/usr/local/cuda"],"host_tools":["/usr/bin/gcc --version"],"#,
            r#""fingerprints":{{"base-system":"b3:feed"}}}}"#
        ),
        patch = patch,
        source = source,
    );
    assert_eq!(key, Digest::of_bytes(document.as_bytes()));
    assert_eq!(
        key.to_string(),
        "b3:866e79971f272595fbee7fe7dc4a767052145935bf15e1db1eec9baeb0e3185d"
    );
}
