//! `hstore store …` end to end: address invariance, NAR byte-identity with `nix-store --dump`, materialization,
//! crash safety, concurrency, verify/repair and gc. Every test runs the real binary against its own store.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::store_common::{TestEnv, assert_success, code, flip_stored_byte, stderr};

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Deterministic pseudo-random bytes (BLAKE3 in XOF mode), so no test depends on chance.
fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// A tree with every kind of entry the NAR format and our encoding must agree on.
fn rich_tree(root: &Path) {
    write(&root.join("bin/tool"), "#!/bin/sh\necho hi\n");
    chmod(&root.join("bin/tool"), 0o755);
    // Bigger than the 1 MiB streaming buffer, and not a multiple of 8 (NAR padding).
    write(&root.join("big.bin"), noise("big", (3 << 20) + 5));
    // Compressible and bigger than a 4 MiB zstd frame: stored as three frames, dumped by three workers.
    let mut lines = Vec::new();
    for n in 0..400_000 {
        writeln!(lines, "line {n} of a large text").unwrap();
    }
    write(&root.join("big.txt"), &lines[..(9 << 20) + 3]);
    write(&root.join("empty"), "");
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    write(&root.join("nested/a/b/c/deep.txt"), "deep\n".repeat(100));
    for (name, len) in [("pad7", 7), ("pad8", 8), ("pad9", 9)] {
        write(&root.join(name), vec![b'x'; len]);
    }
    // Byte order, not locale order: "B" < "a" < "a-b" < "a.b" < "a0".
    for name in ["B", "a", "a-b", "a.b", "a0"] {
        write(&root.join("order").join(name), name);
    }
    // Names that are not UTF-8.
    write(&root.join(os(b"\xff\xfe")), "not utf-8\n");
    write(
        &root.join(os(b"\xfe")).join(os(b"caf\xe9")),
        "latin-1 name\n",
    );
    symlink("nested/a", root.join("rel")).unwrap();
    symlink("/usr/bin/env", root.join("abs")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink(os(b"\xff\xfe"), root.join("to-bytes")).unwrap();
}

/// `nix-store --dump PATH`, or `None` when the oracle is skipped on purpose.
fn nix_dump(path: &Path) -> Option<Vec<u8>> {
    let output = match Command::new("nix-store").arg("--dump").arg(path).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("HSTORE_SKIP_NIX_ORACLE").is_some_and(|v| v == "1") {
                return None;
            }
            panic!(
                "`nix-store` is not installed: it is the oracle for NAR byte-identity.\n\
                 install it with `apt-get install nix-bin` (CI does), or set HSTORE_SKIP_NIX_ORACLE=1 to skip"
            );
        }
        Err(error) => panic!("cannot run nix-store: {error}"),
    };
    assert_success(&output);
    Some(output.stdout)
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[track_caller]
fn assert_same_bytes(ours: &[u8], theirs: &[u8], what: &str) {
    assert!(
        ours == theirs,
        "{what}: hstore dump ({} bytes) differs from nix-store --dump ({} bytes) at offset {}",
        ours.len(),
        theirs.len(),
        first_difference(ours, theirs)
    );
}

/// `find`'s view of a tree: kind, executable bit (files), link target and relative path of every entry.
fn listing(root: &Path) -> Vec<Vec<u8>> {
    let output = Command::new("find")
        .arg(".")
        .args(["-printf", "%y %m %l %P\\0"])
        .current_dir(root)
        .output()
        .unwrap();
    assert_success(&output);
    let mut entries: Vec<Vec<u8>> = output
        .stdout
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut fields = entry.splitn(3, |&b| b == b' ');
            let kind = fields.next().unwrap();
            let mode = u32::from_str_radix(std::str::from_utf8(fields.next().unwrap()).unwrap(), 8)
                .unwrap();
            let rest = fields.next().unwrap();
            let executable = if kind == b"f" {
                u8::from(mode & 0o100 != 0)
            } else {
                b'-'
            };
            let mut line = kind.to_vec();
            line.push(b' ');
            line.push(executable);
            line.push(b' ');
            line.extend_from_slice(rest);
            line
        })
        .collect();
    entries.sort();
    entries
}

fn touch_all(root: &Path, when: &str) {
    let status = Command::new("find")
        .arg(root)
        .args(["-exec", "touch", "-h", "-d", when, "{}", "+"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The same small tree, built in the given entry order with the given modes.
fn simple_tree(root: &Path, reverse: bool, file_mode: u32, exe_mode: u32) {
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| write(&root.join("a.txt"), "alpha\n")),
        Box::new(|| write(&root.join("b/c.txt"), "gamma\n")),
        Box::new(|| write(&root.join("b/d.sh"), "#!/bin/sh\n")),
        Box::new(|| fs::create_dir_all(root.join("e")).unwrap()),
        Box::new(|| symlink("a.txt", root.join("link")).unwrap()),
        Box::new(|| write(&root.join("z/y/x"), "deep")),
    ];
    if reverse {
        steps.reverse();
    }
    for step in steps {
        step();
    }
    for file in ["a.txt", "b/c.txt", "z/y/x"] {
        chmod(&root.join(file), file_mode);
    }
    chmod(&root.join("b/d.sh"), exe_mode);
}

#[test]
fn address_ignores_mtime_owner_mode_order_and_location() {
    let env = TestEnv::new();
    let first = env.root().join("one/tree");
    simple_tree(&first, false, 0o644, 0o755);
    let reference = env.add(&first);

    // Another parent, reverse creation order, 0600/0700 modes, old mtimes, another owner.
    let second = env.root().join("two/deeper/tree");
    simple_tree(&second, true, 0o600, 0o700);
    touch_all(&second, "@1000000");
    let status = Command::new("chown")
        .args(["-R", "-h", "1234:5678"])
        .arg(&second)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        env.add(&second),
        reference,
        "same content must give the same address"
    );

    // Group/other execute bits alone do not count; only the owner's does (as in Nix).
    chmod(&second.join("a.txt"), 0o611);
    assert_eq!(env.add(&second), reference);

    // The executable bit, a content byte and a link target each do change it.
    chmod(&second.join("b/d.sh"), 0o644);
    let no_exec = env.add(&second);
    assert_ne!(no_exec, reference);
    chmod(&second.join("b/d.sh"), 0o755);
    assert_eq!(env.add(&second), reference);
    write(&second.join("z/y/x"), "deeP");
    assert_ne!(env.add(&second), reference);
    write(&second.join("z/y/x"), "deep");
    fs::remove_file(second.join("link")).unwrap();
    symlink("b/c.txt", second.join("link")).unwrap();
    assert_ne!(env.add(&second), reference);
}

#[test]
fn dump_is_byte_identical_to_nix_store_dump() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    rich_tree(&tree);
    let Some(expected) = nix_dump(&tree) else {
        return;
    };
    let address = env.add(&tree);
    let ours = env.ok(["store", "dump", &address]);
    assert_same_bytes(&ours, &expected, "rich tree");

    // A blob dumps as a regular (non-executable) file; a subtree and an empty tree as directories.
    let big = tree.join("big.bin");
    let blob = env.add(&big);
    assert_same_bytes(
        &env.ok(["store", "dump", &blob]),
        &nix_dump(&big).unwrap(),
        "big blob",
    );
    let empty = tree.join("empty");
    let blob = env.add(&empty);
    assert_same_bytes(
        &env.ok(["store", "dump", &blob]),
        &nix_dump(&empty).unwrap(),
        "empty blob",
    );
    let empty_dir = tree.join("empty-dir");
    let address = env.add(&empty_dir);
    assert_same_bytes(
        &env.ok(["store", "dump", &address]),
        &nix_dump(&empty_dir).unwrap(),
        "empty tree",
    );
    let nested = tree.join("nested");
    let address = env.add(&nested);
    assert_same_bytes(
        &env.ok(["store", "dump", &address]),
        &nix_dump(&nested).unwrap(),
        "subtree",
    );
}

#[test]
fn materialize_reproduces_the_tree_exactly() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    rich_tree(&tree);
    let address = env.add(&tree);
    let out = env.root().join("out");
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        out.as_os_str(),
    ]);

    let diff = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(&tree)
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&diff);
    assert_eq!(listing(&out), listing(&tree));
    assert_eq!(
        env.add(&out),
        address,
        "the checkout adds back to the same address"
    );

    // An existing empty directory is an acceptable destination too.
    let empty = env.root().join("empty-dest");
    fs::create_dir(&empty).unwrap();
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        empty.as_os_str(),
    ]);
    assert_eq!(listing(&empty), listing(&tree));

    // A blob materializes as a plain file with its bytes.
    let blob = env.add(&tree.join("big.bin"));
    let file = env.root().join("big-copy");
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&blob),
        file.as_os_str(),
    ]);
    assert_eq!(
        fs::read(&file).unwrap(),
        fs::read(tree.join("big.bin")).unwrap()
    );
}

#[test]
fn materialize_refuses_a_non_empty_destination() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    simple_tree(&tree, false, 0o644, 0o755);
    let address = env.add(&tree);
    let dest = env.root().join("dest");
    write(&dest.join("keep"), "mine");
    let output = env.run([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("`{}`", dest.display())),
        "{message}"
    );
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(
        fs::read_dir(&dest).unwrap().count(),
        1,
        "nothing was written into the destination"
    );
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"mine");

    // A blob never overwrites an existing file.
    let blob = env.add(&tree.join("a.txt"));
    let output = env.run([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&blob),
        dest.join("keep").as_os_str(),
    ]);
    assert_eq!(code(&output), 2);
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"mine");
}

#[test]
fn materialize_into_a_missing_parent_is_a_clear_error() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    simple_tree(&tree, false, 0o644, 0o755);
    let address = env.add(&tree);
    let dest = env.root().join("no/such/parent/dest");
    let output = env.run([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "`{}`",
            env.root().join("no/such/parent").display()
        )),
        "{message}"
    );
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("hint:"), "{message}");
    assert!(!env.root().join("no").exists());
}

#[test]
fn materialize_writes_absolute_symlinks_without_touching_their_targets() {
    let env = TestEnv::new();
    let outside = env.root().join("outside");
    write(&outside.join("target.txt"), "secret");
    let before = listing(&outside);
    let tree = env.root().join("tree");
    fs::create_dir_all(&tree).unwrap();
    symlink(outside.join("target.txt"), tree.join("file-link")).unwrap();
    symlink(&outside, tree.join("dir-link")).unwrap();
    symlink(outside.join("created"), tree.join("new-link")).unwrap();
    write(&tree.join("regular"), "inside");
    let address = env.add(&tree);
    fs::remove_dir_all(&tree).unwrap();

    let dest = env.root().join("dest");
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        dest.as_os_str(),
    ]);
    assert_eq!(
        fs::read_link(dest.join("file-link")).unwrap(),
        outside.join("target.txt")
    );
    assert_eq!(fs::read_link(dest.join("dir-link")).unwrap(), outside);
    assert_eq!(
        fs::read_link(dest.join("new-link")).unwrap(),
        outside.join("created")
    );
    assert_eq!(
        listing(&outside),
        before,
        "nothing outside the destination changed"
    );
    assert_eq!(fs::read(outside.join("target.txt")).unwrap(), b"secret");
    assert!(!outside.join("created").exists());
}

#[test]
fn add_of_a_symlink_is_refused_with_a_clear_error() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    simple_tree(&tree, false, 0o644, 0o755);
    let link = env.root().join("link-to-tree");
    symlink(&tree, &link).unwrap();
    let output = env.run([OsStr::new("store"), OsStr::new("add"), link.as_os_str()]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains(&format!("`{}` is a symlink", link.display())),
        "{message}"
    );
    assert!(message.contains("hint:"), "{message}");
    assert!(output.stdout.is_empty());
}

/// Writes `len` bytes that zstd can compress but must work at (random bytes interleaved with text).
fn write_compressible_file(path: &Path, len: u64) {
    let mut file = std::io::BufWriter::with_capacity(4 << 20, File::create(path).unwrap());
    let mut xof = blake3::Hasher::new().update(b"large").finalize_xof();
    let text = b"the quick brown fox jumps over the lazy dog 0123456789\n".repeat(10_000);
    let mut random = vec![0u8; 1 << 19];
    let mut written = 0u64;
    while written < len {
        xof.fill(&mut random);
        for part in [&random[..], &text[..1 << 19]] {
            let take = usize::try_from((len - written).min(part.len() as u64)).unwrap();
            file.write_all(&part[..take]).unwrap();
            written += take as u64;
        }
    }
    file.flush().unwrap();
}

fn blake3_of_file(path: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path).unwrap();
    format!("b3:{}", hasher.finalize().to_hex())
}

fn temp_entries(env: &TestEnv) -> Vec<PathBuf> {
    fs::read_dir(env.store().join("tmp"))
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn killed_add_leaves_no_visible_object() {
    let env = TestEnv::new();
    let big = env.root().join("big.bin");
    write_compressible_file(&big, 1536 << 20);
    let expected = blake3_of_file(&big);

    let mut child = env
        .command([OsStr::new("store"), OsStr::new("add"), big.as_os_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the add is visibly mid-way: its temp file holds bytes.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if temp_entries(&env)
            .iter()
            .any(|path| fs::metadata(path).is_ok_and(|m| m.len() > 0))
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "add ended before its temp file showed up"
        );
        assert!(
            Instant::now() < deadline,
            "no temp file appeared in the store's tmp/"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the add finished before it could be killed ({status}); the test file is too small for this machine"
    );

    assert!(
        env.ok(["store", "ls"]).is_empty(),
        "no object may be visible after a killed add"
    );
    assert!(env.object_files().is_empty());
    env.ok(["store", "verify"]);
    assert!(
        !temp_entries(&env).is_empty(),
        "the killed add leaves its temp file behind for gc"
    );

    assert_eq!(env.add(&big), expected);
    let listed = String::from_utf8(env.ok(["store", "ls"])).unwrap();
    assert_eq!(listed, format!("{expected} blob {}\n", 1536u64 << 20));
    env.ok(["store", "verify"]);
    let gc = env.run(["store", "gc"]);
    assert_success(&gc);
    assert!(stderr(&gc).contains("1 temp entries"), "{}", stderr(&gc));
    assert!(temp_entries(&env).is_empty());
}

/// Content identity of every directory below `root` (itself included), as a canonical description that does not
/// use hstore's encoding: two directories are the same store object exactly when their descriptions are equal.
fn describe_dirs(
    root: &Path,
    dirs: &mut BTreeSet<Vec<u8>>,
    blobs: &mut BTreeSet<Vec<u8>>,
) -> Vec<u8> {
    let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        let description = if metadata.is_dir() {
            [b"d:".to_vec(), describe_dirs(&path, dirs, blobs)].concat()
        } else if metadata.is_symlink() {
            [
                b"l:".to_vec(),
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            ]
            .concat()
        } else {
            let bytes = fs::read(&path).unwrap();
            let hash = blake3::hash(&bytes).to_hex().as_bytes().to_vec();
            blobs.insert(bytes);
            let executable = metadata.permissions().mode() & 0o100 != 0;
            [
                if executable {
                    b"x:".to_vec()
                } else {
                    b"f:".to_vec()
                },
                hash,
            ]
            .concat()
        };
        entries.insert(entry.file_name().as_bytes().to_vec(), description);
    }
    let mut text = Vec::new();
    for (name, description) in entries {
        text.extend_from_slice(&(name.len() as u64).to_le_bytes());
        text.extend_from_slice(&name);
        text.extend_from_slice(&(description.len() as u64).to_le_bytes());
        text.extend_from_slice(&description);
    }
    let identity = blake3::hash(&text).to_hex().as_bytes().to_vec();
    dirs.insert(identity.clone());
    identity
}

#[test]
fn concurrent_adds_give_one_consistent_store() {
    let env = TestEnv::new();
    let sources = env.root().join("sources");
    // Trees 0/1, 2/3 and 4/5 are identical pairs; all six share `shared/` and some files.
    let trees: Vec<PathBuf> = (0..6).map(|i| sources.join(format!("tree{i}"))).collect();
    for (i, tree) in trees.iter().enumerate() {
        let flavour = i / 2;
        for n in 0..40 {
            write(
                &tree.join(format!("shared/file{n}")),
                format!("shared {n}\n").repeat(50),
            );
        }
        write(&tree.join("shared/big"), noise("shared-big", 2 << 20));
        for n in 0..20 {
            write(
                &tree.join(format!("own/f{n}")),
                format!("flavour {flavour} file {n}\n").repeat(10 + n),
            );
        }
        write(
            &tree.join(format!("own/sub{flavour}/x")),
            noise(&format!("x{flavour}"), 300_000),
        );
        write(&tree.join("common.txt"), "same everywhere\n");
        symlink("shared/file1", tree.join("link")).unwrap();
    }
    let children: Vec<_> = trees
        .iter()
        .map(|tree| {
            env.command([OsStr::new("store"), OsStr::new("add"), tree.as_os_str()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let addresses: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert_success(&output);
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        })
        .collect();
    for pair in addresses.chunks(2) {
        assert_eq!(pair[0], pair[1], "identical trees must get one address");
    }
    let distinct: BTreeSet<_> = addresses.iter().collect();
    assert_eq!(distinct.len(), 3);

    env.ok(["store", "verify"]);
    let (mut dirs, mut blobs) = (BTreeSet::new(), BTreeSet::new());
    for tree in &trees {
        describe_dirs(tree, &mut dirs, &mut blobs);
    }
    assert_eq!(
        env.object_files().len(),
        dirs.len() + blobs.len(),
        "every unique blob and directory is stored"
    );
    assert!(
        temp_entries(&env).is_empty(),
        "successful adds leave no temp files"
    );
    // Adding again (sequentially) writes nothing: no object, no pack.
    let before = env.object_copies();
    assert_eq!(env.add(&trees[5]), addresses[5]);
    assert_eq!(env.object_copies(), before);
}

#[test]
fn verify_reports_flipped_bytes_and_repair_removes_exactly_those() {
    let env = TestEnv::new();
    let tree = env.root().join("tree");
    write(&tree.join("small"), "tiny");
    write(&tree.join("text.txt"), "compressible text\n".repeat(1000));
    write(
        &tree.join("archive.tar.gz"),
        [b"\x1f\x8b\x08\x00".as_slice(), &noise("gz", 5000)].concat(),
    );
    write(&tree.join("sub/inner.txt"), "inner\n".repeat(100));
    let address = env.add(&tree);
    env.ok(["store", "verify"]);
    let all = env.object_files();
    let copies = env.object_copies();
    let pick = |suffix: &str| copies.iter().find(|(_, s, _)| s == suffix).unwrap().clone();
    let victims = [pick("raw"), pick("zst"), pick("dir")];
    for (_, _, location) in &victims {
        flip_stored_byte(location);
    }
    let victims: Vec<(String, String)> = victims
        .into_iter()
        .map(|(hex, suffix, _)| (hex, suffix))
        .collect();

    let output = env.run(["store", "verify"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let message = stderr(&output);
    for (hex, _) in &victims {
        assert!(
            message.contains(&format!("b3:{hex}")),
            "verify must name b3:{hex}:\n{message}"
        );
    }

    let output = env.run(["store", "verify", "--repair"]);
    assert_eq!(code(&output), 1);
    let remaining = env.object_files();
    let expected: Vec<_> = all
        .iter()
        .filter(|object| !victims.contains(object))
        .cloned()
        .collect();
    assert_eq!(
        remaining, expected,
        "repair removes exactly the corrupt objects"
    );

    assert_eq!(env.add(&tree), address);
    env.ok(["store", "verify"]);
    assert_eq!(env.object_files(), all);
}

fn write_root(env: &TestEnv, name: &str, addresses: &[&str]) {
    let root =
        serde_json::json!({ "description": format!("test root {name}"), "addresses": addresses });
    write(
        &env.store().join("roots-v1").join(format!("{name}.json")),
        serde_json::to_vec_pretty(&root).unwrap(),
    );
}

#[test]
fn gc_removes_only_unreachable_objects() {
    let env = TestEnv::new();
    let kept = env.root().join("kept");
    write(&kept.join("shared.txt"), "in both trees\n".repeat(20));
    write(&kept.join("only-kept/file"), "kept only\n");
    symlink("shared.txt", kept.join("link")).unwrap();
    let gone = env.root().join("gone");
    write(&gone.join("shared.txt"), "in both trees\n".repeat(20));
    write(&gone.join("only-gone/file"), "gone only\n");
    let loose = env.root().join("loose.bin");
    write(&loose, noise("loose", 10_000));

    let kept_address = env.add(&kept);
    let kept_objects = env.object_files();
    let gone_address = env.add(&gone);
    let loose_address = env.add(&loose);
    write_root(&env, "kept", &[&kept_address]);
    let everything = env.object_files();
    assert_eq!(
        everything.len(),
        kept_objects.len() + 4,
        "gone adds its root, its subdir and one file; loose one blob"
    );

    let dry = env.run(["store", "gc", "--dry-run"]);
    assert_success(&dry);
    assert!(
        stderr(&dry).contains("Would remove 4 objects"),
        "{}",
        stderr(&dry)
    );
    assert_eq!(env.object_files(), everything, "--dry-run removes nothing");

    let output = env.run(["store", "gc"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("Removed 4 objects"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        env.object_files(),
        kept_objects,
        "exactly the rooted tree survives, shared blob included"
    );
    for address in [&gone_address, &loose_address] {
        let output = env.run(["store", "dump", address]);
        assert_eq!(code(&output), 2, "{address} should be gone");
    }
    env.ok(["store", "verify"]);
    let out = env.root().join("out");
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&kept_address),
        out.as_os_str(),
    ]);
    assert_eq!(listing(&out), listing(&kept));

    // Unrooting makes everything collectable.
    fs::remove_file(env.store().join("roots-v1/kept.json")).unwrap();
    env.ok(["store", "gc"]);
    assert!(env.object_files().is_empty());
}

#[test]
fn gc_waits_for_commands_holding_the_shared_lock() {
    let env = TestEnv::new();
    let file = env.root().join("unrooted.txt");
    write(&file, "not rooted\n");
    env.add(&file);
    let objects = env.object_files();
    assert_eq!(objects.len(), 1);

    // Stand in for a running command: hold the shared store lock the way every hstore command does.
    let lock = File::options()
        .read(true)
        .write(true)
        .open(env.store().join("locks/store.lock"))
        .unwrap();
    lock.lock_shared().unwrap();
    let mut gc = env
        .command(["store", "gc"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        gc.try_wait().unwrap().is_none(),
        "gc must wait while a shared lock is held"
    );
    assert_eq!(
        env.object_files(),
        objects,
        "gc removed an object while another command held the store"
    );
    lock.unlock().unwrap();
    let output = gc.wait_with_output().unwrap();
    assert_success(&output);
    assert!(
        env.object_files().is_empty(),
        "after the lock is released gc collects the unrooted blob"
    );
}

#[test]
fn cat_reports_missing_and_malformed_addresses() {
    let env = TestEnv::new();
    let file = env.root().join("f");
    write(&file, "hello\n");
    let address = env.add(&file);
    assert_eq!(env.ok(["store", "cat", &address]), b"hello\n");

    let missing = format!("b3:{}", "0".repeat(64));
    let output = env.run(["store", "cat", &missing]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains(&missing), "{message}");
    assert!(message.contains("\nhint: "), "{message}");
    assert!(output.stdout.is_empty());

    for bad in [
        "nothex",
        "b3:1234",
        &address.to_uppercase().replace("B3:", "b3:"),
        &address[3..],
    ] {
        let output = env.run(["store", "cat", bad]);
        assert_eq!(code(&output), 2, "{bad}");
        let message = stderr(&output);
        assert!(
            message.contains(&format!("`{bad}` is not an hstore address")),
            "{message}"
        );
    }

    // A tree is not a blob.
    let tree = env.root().join("tree");
    write(&tree.join("x"), "x");
    let tree_address = env.add(&tree);
    let output = env.run(["store", "cat", &tree_address]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("is a tree, expected a blob"),
        "{}",
        stderr(&output)
    );
}

/// A chain of `depth` directories named `d` under `root`, with one file at the bottom.
fn deep_tree(root: &Path, depth: usize) -> PathBuf {
    let mut leaf = root.to_path_buf();
    for _ in 0..depth {
        leaf.push("d");
    }
    write(&leaf.join("bottom.txt"), "the bottom of a deep tree\n");
    leaf
}

#[test]
fn a_tree_1000_directories_deep_is_added_dumped_materialized_and_locked() {
    let env = TestEnv::new();
    let root = env.root().join("deep");
    deep_tree(&root, 1000);
    let address = env.add(&root);
    let dumped = env.ok(["store", "dump", &address]);
    if let Some(theirs) = nix_dump(&root) {
        assert_same_bytes(&dumped, &theirs, "1000-deep tree");
    }
    let dest = env.root().join("out");
    env.ok([
        OsStr::new("store"),
        OsStr::new("materialize"),
        OsStr::new(&address),
        dest.as_os_str(),
    ]);
    assert!(dest.join("d").is_dir());
    assert_eq!(listing(&dest), listing(&root));
    env.ok(["store", "verify"]);

    // The same tree as a `path` source of `hstore lock` (the fetchers' blocking threads have small stacks).
    let lock_env = hstore_test_support::TestEnv::new();
    deep_tree(&lock_env.root().join("deep"), 1000);
    crate::common::recipe(
        &lock_env,
        "deep",
        "[recipe]\nname = \"deep\"\n[sources.deep]\npath = \"../deep\"\n",
    );
    crate::common::ok(&crate::common::hstore(&lock_env, &["lock"]));
    let lock = fs::read_to_string(lock_env.root().join("lockfile.json")).unwrap();
    assert!(lock.contains(&address), "{lock}");
}

#[test]
fn a_path_source_with_files_others_cannot_read_is_refused_by_name() {
    let env = hstore_test_support::TestEnv::new();
    // Outside the project, named by an absolute path, like `path = "/etc"`.
    let shared = env.root().join("elsewhere/conf");
    write(&shared.join("public.conf"), "visible = true\n");
    write(&shared.join("shadow"), "root:$6$secret\n");
    chmod(&shared.join("public.conf"), 0o644);
    chmod(&shared.join("shadow"), 0o640);
    let project = env.root().join("project");
    fs::create_dir_all(project.join("recipes")).unwrap();
    let recipe = |exclude: &str| {
        fs::write(
            project.join("recipes/conf.toml"),
            format!(
                "[recipe]\nname = \"conf\"\n[sources.conf]\npath = \"{}\"\n{exclude}",
                shared.display()
            ),
        )
        .unwrap();
    };
    recipe("");
    let lock = |env: &hstore_test_support::TestEnv| {
        crate::common::command(env, &["lock"])
            .current_dir(&project)
            .output()
            .unwrap()
    };
    let stderr = crate::common::fails(&lock(&env), 2);
    assert!(
        stderr.contains(&*shared.join("shadow").to_string_lossy()),
        "{stderr}"
    );
    assert!(stderr.contains("not readable by other users"), "{stderr}");
    // (The store error carries a `hint:` naming `chmod o+r` and `exclude`; `lock` lists per-source errors
    // without hints today.)
    assert!(!project.join("lockfile.json").exists());
    // Nothing of the refused tree is visible in the store.
    let store = env.store();
    let secret = blake3::hash(b"root:$6$secret\n").to_hex().to_string();
    if store.join("VERSION").exists() {
        let copies = hstore_store::Store::open(&store)
            .unwrap()
            .object_copies()
            .unwrap();
        assert!(
            copies.iter().all(|copy| copy.digest.to_hex() != secret),
            "the private file reached the store"
        );
    }

    // Left out by the recipe, the rest locks; the artifact records the tree relative to the lockfile. (The
    // lockfile's copy of the recipe's spec still repeats `path` as the recipe wrote it: see the lock layer.)
    recipe("exclude = [\"shadow\"]\n");
    crate::common::ok(&lock(&env));
    let text = fs::read_to_string(project.join("lockfile.json")).unwrap();
    assert!(text.contains("\"../elsewhere/conf\""), "{text}");
}

#[test]
fn a_warm_add_gives_the_address_a_cold_store_gives_after_each_change() {
    let env = TestEnv::new();
    let root = env.root().join("tree");
    rich_tree(&root);
    env.advance_clock(3); // past the stat cache's racy window
    let first = env.add(&root);
    assert_eq!(env.add(&root), first);
    let cold = |root: &Path| {
        let other = TestEnv::new();
        other.add(root)
    };
    // Same size, same second, mtime put back: only ctime tells.
    let path = root.join("pad9");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let changed = env.add(&root);
    assert_ne!(changed, first);
    assert_eq!(changed, cold(&root));
}
