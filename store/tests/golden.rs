//! Golden vectors: the bytes of hstore's on-disk and on-wire formats, pinned. A failure here means a change alters
//! what existing stores, bundles or other machines read — a new format version, never a silent edit
//! (store/src/tree.rs and store/src/bundle.rs say so in their format docs). The directory node's bytes are spelled
//! out field by field from the documented layout, not copied from the encoder's output.

use std::collections::BTreeMap;
use std::io::Read;

use hstore_store::bundle::{self, ExportSpec, ImportOptions, SecretKey};
use hstore_store::{Digest, Directory, Node, PathComponent, Root, Store};

fn name(text: &str) -> PathComponent {
    PathComponent::new(text).expect("a valid name")
}

fn digest_of(text: &str) -> Digest {
    Digest::of_bytes(text.as_bytes())
}

/// A node with one entry of each kind, in an order that differs from the canonical one.
fn every_kind() -> Directory {
    let mut directory = Directory::new();
    directory.insert(
        name("src"),
        Node::Directory {
            digest: digest_of("child"),
            size: 300,
        },
    );
    directory.insert(
        name("run.sh"),
        Node::File {
            digest: digest_of("#!/bin/sh\n"),
            size: 10,
            executable: true,
        },
    );
    directory.insert(
        name("README"),
        Node::File {
            digest: digest_of("hello\n"),
            size: 6,
            executable: false,
        },
    );
    directory.insert(
        name("latest"),
        Node::Symlink {
            target: b"src/v2".to_vec(),
        },
    );
    directory
}

#[test]
fn directory_node_v1_bytes_and_address() {
    // magic · count u64 · entries by name bytes: "README" < "latest" < "run.sh" < "src".
    let mut expected = b"hstore-dir-v1\0".to_vec();
    expected.extend_from_slice(&4u64.to_le_bytes());
    let mut entry = |entry_name: &str, kind: u8, body: &[u8]| {
        expected.extend_from_slice(&(entry_name.len() as u32).to_le_bytes());
        expected.extend_from_slice(entry_name.as_bytes());
        expected.push(kind);
        expected.extend_from_slice(body);
    };
    let file = |text: &str, size: u64| {
        [digest_of(text).as_bytes().as_slice(), &size.to_le_bytes()].concat()
    };
    entry("README", 1, &file("hello\n", 6));
    let target = b"src/v2";
    entry(
        "latest",
        3,
        &[&(target.len() as u32).to_le_bytes()[..], target].concat(),
    );
    entry("run.sh", 2, &file("#!/bin/sh\n", 10));
    entry("src", 4, &file("child", 300));

    let encoded = every_kind().encode();
    assert_eq!(encoded, expected);
    assert_eq!(Directory::decode(&encoded).expect("decodes"), every_kind());
    assert_eq!(
        Digest::of_bytes(&encoded).to_string(),
        "b3:8deab5c32ebbbfc448b13acc10685440149f32e9f03e79851d26a65463ae024e",
    );
    assert_eq!(every_kind().total_size(), 316);
}

#[test]
fn empty_directory_node() {
    let encoded = Directory::new().encode();
    assert_eq!(
        encoded,
        [b"hstore-dir-v1\0".as_slice(), &0u64.to_le_bytes()].concat()
    );
}

/// A store holding one small blob and one tree, under one root.
fn small_store(dir: &std::path::Path) -> (Store, ExportSpec) {
    let store = Store::open(dir.join("store")).expect("store opens");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("hello.txt"), "hello, golden bundle\n").expect("write");
    let address = store.add_path(&tree).expect("tree added").digest();
    let spec = ExportSpec {
        roots: BTreeMap::from([(
            "golden".to_owned(),
            Root {
                description: "golden vector".into(),
                addresses: vec![address],
            },
        )]),
        ..ExportSpec::default()
    };
    (store, spec)
}

fn export(
    store: &Store,
    spec: &ExportSpec,
    signer: Option<&SecretKey>,
    level: Option<i32>,
) -> Vec<u8> {
    let manifest = bundle::plan(store, spec).expect("plan");
    let mut out = Vec::new();
    bundle::export(
        store,
        &manifest,
        signer,
        level.map(|level| bundle::Compression { level }),
        &mut out,
    )
    .expect("export");
    out
}

#[test]
fn bundle_v1_header_and_whole_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, spec) = small_store(dir.path());
    let bytes = export(&store, &spec, None, None);

    // Header: magic, version 1, manifest length, then the manifest JSON (fields in a fixed order).
    assert_eq!(&bytes[..14], b"hstore-bundle\0");
    assert_eq!(&bytes[14..18], &1u32.to_le_bytes());
    let manifest_length = u64::from_le_bytes(bytes[18..26].try_into().expect("8 bytes")) as usize;
    let manifest = std::str::from_utf8(&bytes[26..26 + manifest_length]).expect("UTF-8 manifest");
    assert!(
        manifest.starts_with(r#"{"format":"hstore-bundle","version":1,"roots":{"golden":{"#),
        "{manifest}"
    );
    assert_eq!(bytes[26 + manifest_length], 0, "unsigned");
    // The whole bundle, pinned: any change to the manifest, the records, the trailer or the stored encoding of a
    // small blob shows here.
    assert_eq!(
        Digest::of_bytes(&bytes).to_string(),
        "b3:70581a0bd0a8a9de01434d770e34e15838a908cc349804f12b26a9e342970206",
    );
}

#[test]
fn signed_and_compressed_bundles_are_pinned_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, spec) = small_store(dir.path());
    // A fixed key (never use it for anything): ed25519 signatures are deterministic.
    let key: SecretKey = format!(
        "hstore-ed25519-secret:{}",
        "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    )
    .parse()
    .expect("a valid secret key");
    let signed = export(&store, &spec, Some(&key), None);
    assert_eq!(
        Digest::of_bytes(&signed).to_string(),
        "b3:708e23c1016b0003a975d534a42bf3c9f58dd5f89fbfab9206561cd1b1fab12e",
    );
    // zstd's output is fixed by its version (pinned by Cargo.lock through zstd-sys) and parameters, not by the
    // number of cores: a zstd upgrade that moves this vector changes bundle bytes, not what they decode to.
    let compressed = export(&store, &spec, None, Some(19));
    assert_eq!(&compressed[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    assert_eq!(
        Digest::of_bytes(&compressed).to_string(),
        "b3:fad0284a42c294981546214817f2c1b7f00908c9e9f812cb7abfd842523846ae",
    );
    // Both still import.
    for bytes in [signed, compressed] {
        let target = tempfile::tempdir().expect("tempdir");
        let destination = Store::open(target.path()).expect("store opens");
        bundle::import(
            &destination,
            &mut bytes.as_slice(),
            "golden",
            &ImportOptions::default(),
        )
        .expect("imports");
        let mut stored = destination
            .open_blob(&digest_of("hello, golden bundle\n"))
            .expect("readable")
            .expect("present")
            .reader;
        let mut text = String::new();
        stored.read_to_string(&mut text).expect("read");
        assert_eq!(text, "hello, golden bundle\n");
    }
}
