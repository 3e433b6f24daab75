//! Tests of the store: round trips, frames, packs, repair, and what two stores agree on.

use super::*;
use crate::frames::FRAME_SIZE;
use crate::pack::Location;

#[test]
fn compressed_formats_are_detected() {
    assert!(is_already_compressed(b"\x1f\x8b\x08\x00"));
    assert!(is_already_compressed(b"PK\x03\x04rest"));
    assert!(!is_already_compressed(b"fn main() {}"));
}

#[test]
fn blob_round_trip_raw_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let text = b"hello world, hello world, hello world, hello world, hello world, hello world, hello world!!"
        .repeat(10);
    let digest = store.add_bytes(&text).unwrap();
    assert_eq!(digest, Digest::of_bytes(&text));
    assert_eq!(
        store.blob_format(&digest).unwrap(),
        Some(ObjectFormat::ZstdBlob)
    );
    assert_eq!(store.read_blob(&digest).unwrap().unwrap(), text);

    let gz =
        b"\x1f\x8b\x08\x00 pretend gzip body that is long enough to be compressed otherwise......"
            .repeat(3);
    let digest = store.add_bytes(&gz).unwrap();
    assert_eq!(
        store.blob_format(&digest).unwrap(),
        Some(ObjectFormat::RawBlob)
    );
    let listed = store.list_objects().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|o| o.size == text.len() as u64));
}

/// Compressible text of `len` bytes whose lines all differ (so zstd cannot fold it into a few blocks).
fn numbered_lines(len: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(len + 64);
    let mut line = 0u64;
    while text.len() < len {
        text.extend_from_slice(format!("line {line} of a large compressible blob\n").as_bytes());
        line += 1;
    }
    text.truncate(len);
    text
}

/// A large blob is stored as 4 MiB frames, the same bytes whichever way it comes in, read back whole, dumped
/// frame by frame, and a missing or cut frame is reported, not read as a shorter file.
#[test]
fn a_large_blob_is_stored_as_frames_the_same_way_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = numbered_lines(2 * FRAME_SIZE + (1 << 20) + 3);
    let digest = Digest::of_bytes(&text);

    let known = Store::open(dir.path().join("known")).unwrap();
    let (added, size) = known
        .add_blob_reader(
            &mut &text[..],
            Some(text.len() as u64),
            None,
            Path::new("x"),
        )
        .unwrap();
    assert_eq!((added, size), (digest, text.len() as u64));
    let unknown = Store::open(dir.path().join("unknown")).unwrap();
    unknown
        .add_blob_reader(&mut &text[..], None, None, Path::new("x"))
        .unwrap();
    let batched = Store::open(dir.path().join("batched")).unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("big.txt"), &text).unwrap();
    let root = batched.add_path(&tree).unwrap().digest();

    let object = |store: &Store| store.layout().object(&digest, ObjectFormat::ZstdBlob);
    let stored = fs::read(object(&known)).unwrap();
    assert!(
        fs::read(object(&unknown)).unwrap() == stored,
        "unknown size"
    );
    assert!(fs::read(object(&batched)).unwrap() == stored, "batched");
    let frames_of = |path: &Path| {
        let file = File::open(path).unwrap();
        let stored = file.metadata().unwrap().len();
        crate::frames::frames(&file, 0, stored).unwrap().unwrap()
    };
    let frames = frames_of(&object(&known));
    let contents: Vec<u64> = frames.iter().map(|frame| frame.content).collect();
    let frame = FRAME_SIZE as u64;
    assert_eq!(contents, [frame, frame, (1 << 20) + 3]);
    assert!(
        stored.len() < text.len() / 4,
        "{} bytes stored",
        stored.len()
    );

    assert_eq!(known.blob_size(&digest).unwrap(), Some(text.len() as u64));
    assert!(
        known.read_blob(&digest).unwrap().unwrap() == text,
        "read back"
    );
    let mut nar = Vec::new();
    known.dump_nar(&digest, &mut nar).unwrap();
    // The contents, their padding to 8 bytes, then the closing token (a u64 length and ")" padded to 8).
    let end = nar.len() - 16 - 5;
    assert!(nar[end - text.len()..end] == text[..], "dump differs");
    assert!(known.verify(false).unwrap().problems.is_empty());

    // A blob of whole frames ends with a full frame: no empty one after it.
    let whole = &text[..2 * FRAME_SIZE];
    let (digest_whole, _) = unknown
        .add_blob_reader(&mut &whole[..], None, None, Path::new("whole"))
        .unwrap();
    let frames_whole = frames_of(
        &unknown
            .layout()
            .object(&digest_whole, ObjectFormat::ZstdBlob),
    );
    assert_eq!(frames_whole.len(), 2);
    assert!(
        unknown.read_blob(&digest_whole).unwrap().unwrap() == whole,
        "whole frames"
    );

    // Without its last frame, and then cut inside a frame: the tree records the size, so a dump of it fails
    // naming the object (a lone blob's size comes from the object itself, as a raw blob's does: verify finds
    // both).
    let last = frames.last().unwrap().offset;
    for cut in [last, last + 100] {
        let path = object(&batched);
        let mut permissions = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
        fs::set_permissions(&path, permissions).unwrap();
        fs::write(&path, &stored[..usize::try_from(cut).unwrap()]).unwrap();
        let error = batched.dump_nar(&root, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(&error, Error::CorruptObject { path: named, .. } if *named == path),
            "cut at {cut}: {error}"
        );
        let report = batched.verify(false).unwrap();
        assert_eq!(report.problems.len(), 1, "cut at {cut}");
    }
}

#[test]
fn expected_digest_mismatch_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut reader = &b"some bytes"[..];
    let error = store
        .add_blob_reader(
            &mut reader,
            Some(10),
            Some(Digest::of_bytes(b"other")),
            Path::new("x"),
        )
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }));
    assert!(store.list_objects().unwrap().is_empty());
    assert_eq!(fs::read_dir(store.layout().tmp()).unwrap().count(), 0);
}

#[test]
fn a_foreign_directory_is_not_made_a_store() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, Error::NotAStore { .. }), "{error}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn closure_check_sees_a_missing_blob_below_a_present_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), "content").unwrap();
    let root = store.add_path(&tree).unwrap().digest();
    assert!(store.closure_complete(&root).unwrap());
    let blob = Digest::of_bytes(b"content");
    store.remove_every_copy(&blob);
    assert!(store.object_format(&root).unwrap().is_some());
    assert_eq!(store.first_missing_in_closure(&root).unwrap(), Some(blob));
}

#[test]
fn put_meta_if_absent_keeps_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.put_meta_if_absent("build", "k", &1).unwrap());
    assert!(!store.put_meta_if_absent("build", "k", &2).unwrap());
    assert_eq!(store.get_meta::<u32>("build", "k").unwrap(), Some(1));
    assert_eq!(fs::read_dir(store.layout().tmp()).unwrap().count(), 0);
}

fn small_tree(root: &Path) {
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("a"), "alpha\n".repeat(50)).unwrap();
    fs::write(root.join("sub/b"), "beta").unwrap();
}

/// A store in `dir` holding [`small_tree`], added: the tree's path, the store and the tree's address.
fn store_with_small_tree(dir: &Path) -> (PathBuf, Store, Digest) {
    let tree = dir.join("tree");
    small_tree(&tree);
    let store = Store::open(dir.join("store")).unwrap();
    let root = store.add_path(&tree).unwrap().digest();
    (tree, store, root)
}

#[test]
fn a_tree_add_packs_its_small_objects_and_another_handle_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    small_tree(&tree);
    let reader = Store::open(dir.path().join("store")).unwrap();
    // The reader has read `packs-v1/` (empty) before the writer adds anything.
    assert_eq!(
        reader.object_format(&Digest::of_bytes(b"beta")).unwrap(),
        None
    );
    let writer = Store::open(dir.path().join("store")).unwrap();
    let root = writer.add_path(&tree).unwrap().digest();
    assert_eq!(writer.pack_files().unwrap().len(), 1);
    assert!(
        fs::read_dir(writer.layout().objects())
            .unwrap()
            .next()
            .is_none(),
        "nothing loose"
    );
    // A miss reads the packs directory again.
    assert_eq!(
        reader.object_format(&root).unwrap(),
        Some(ObjectFormat::Directory)
    );
    assert_eq!(
        reader
            .read_blob(&Digest::of_bytes(b"beta"))
            .unwrap()
            .unwrap(),
        b"beta"
    );
    assert_eq!(
        reader
            .blob_size(&Digest::of_bytes("alpha\n".repeat(50).as_bytes()))
            .unwrap(),
        Some(300)
    );
    assert!(reader.closure_complete(&root).unwrap());
}

#[test]
fn a_v1_store_is_marked_v2_when_opened_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    drop(Store::open(&root).unwrap());
    fs::write(root.join("VERSION"), STORE_VERSION_V1).unwrap();
    fs::remove_dir(root.join(PACKS_DIR)).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("VERSION")).unwrap(),
        STORE_VERSION
    );
    assert!(root.join(PACKS_DIR).is_dir());
    drop(store);
    fs::write(root.join("VERSION"), "hstore-store-v3\n").unwrap();
    assert!(matches!(
        Store::open(&root),
        Err(Error::IncompatibleStore { .. })
    ));
}

#[test]
fn verify_reports_a_damaged_pack_and_repair_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, store, root) = store_with_small_tree(dir.path());
    let pack = store.pack_files().unwrap().remove(0);
    let mut bytes = fs::read(&pack).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 1;
    fs::write(&pack, &bytes).unwrap();
    drop(store);

    let store = Store::open(dir.path().join("store")).unwrap();
    // The pack's objects read as missing, not as wrong bytes.
    assert_eq!(store.object_format(&root).unwrap(), None);
    let report = store.verify(false).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        matches!(&report.problems[0], crate::verify::Problem::CorruptPack { path, .. } if *path == pack),
        "{:?}",
        report.problems
    );
    let report = store.verify(true).unwrap();
    assert_eq!(report.repaired, 1);
    assert!(store.pack_files().unwrap().is_empty());
    assert!(store.verify(false).unwrap().problems.is_empty());
    // Adding the tree again brings everything back.
    assert_eq!(store.add_path(&tree).unwrap().digest(), root);
    assert!(store.closure_complete(&root).unwrap());
}

#[test]
fn repair_drops_a_damaged_packed_object_and_keeps_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store, root) = store_with_small_tree(dir.path());
    let alpha = Digest::of_bytes("alpha\n".repeat(50).as_bytes());
    let copy = store
        .object_copies()
        .unwrap()
        .into_iter()
        .find(|copy| copy.digest == alpha)
        .unwrap();
    let Location::Packed { pack, offset, len } = &copy.location else {
        panic!("{copy:?}");
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(pack)
        .unwrap();
    let mut byte = [0];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, offset + len / 2).unwrap();
    byte[0] ^= 0x40;
    std::os::unix::fs::FileExt::write_all_at(&file, &byte, offset + len / 2).unwrap();

    let report = store.verify(true).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.repaired, 1);
    assert_eq!(store.object_format(&alpha).unwrap(), None);
    assert_eq!(store.first_missing_in_closure(&root).unwrap(), Some(alpha));
    assert_eq!(
        store
            .read_blob(&Digest::of_bytes(b"beta"))
            .unwrap()
            .unwrap(),
        b"beta"
    );
    let after = store.verify(false).unwrap();
    assert!(
        after
            .problems
            .iter()
            .all(|problem| matches!(problem, crate::verify::Problem::MissingChild { .. })),
        "{:?}",
        after.problems
    );
}

#[test]
fn every_object_is_stored_the_same_in_two_stores_whatever_the_packs_look_like() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for n in 0..300 {
        let sub = tree.join(format!("d{}", n % 7));
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            sub.join(format!("f{n}")),
            format!("file {n}\n").repeat(n % 50 + 1),
        )
        .unwrap();
    }
    fs::write(tree.join("large"), numbered_lines(9 << 20)).unwrap();
    let stored = |name: &str| {
        let store = Store::open(dir.path().join(name)).unwrap();
        let root = store.add_path(&tree).unwrap().digest();
        let mut objects = Vec::new();
        for copy in store.object_copies().unwrap() {
            let mut bytes = Vec::new();
            store
                .open_stored(&copy.digest)
                .unwrap()
                .unwrap()
                .reader
                .read_to_end(&mut bytes)
                .unwrap();
            objects.push((copy.digest, copy.format, bytes));
        }
        (root, objects)
    };
    let (root_a, objects_a) = stored("a");
    let (root_b, objects_b) = stored("b");
    assert_eq!(root_a, root_b);
    assert_eq!(objects_a.len(), 300 + 7 + 1 + 1);
    assert!(
        objects_a == objects_b,
        "the same objects, stored byte for byte alike"
    );
}
