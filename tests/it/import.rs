//! `hstore import`: damaged, truncated, lying and untrusted bundles are refused with a clear error and nothing
//! registered; a killed import leaves a clean store and a re-import succeeds.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hstore_store::Digest;

use crate::support::{Env, Parsed, noise, parse, reseal, with_manifest, write_tree};

/// A source store with one tree under `lockfile.json`, exported to `bundle.hsb`; returns the bundle bytes.
fn exported(env: &Env, extra: &[&str]) -> Vec<u8> {
    write_tree(&env.path("tree"), "1");
    let tree = env.add("src", &env.path("tree"));
    env.lockfile("lockfile.json", &[("tree", tree)]);
    env.ok(env
        .hstore("src")
        .args(["export", "-o", "bundle.hsb"])
        .args(extra));
    fs::read(env.path("bundle.hsb")).unwrap()
}

/// Imports `bytes` into `dest`, expecting failure; returns stderr.
fn import_fails(env: &Env, bytes: &[u8], extra: &[&str]) -> String {
    import_fails_into(env, "dest", bytes, extra)
}

fn import_fails_into(env: &Env, dest: &str, bytes: &[u8], extra: &[&str]) -> String {
    fs::write(env.path("damaged.hsb"), bytes).unwrap();
    env.fails(
        env.hstore(dest)
            .arg("import")
            .args(extra)
            .arg("damaged.hsb"),
    )
}

/// Nothing registered, nothing corrupt, and every object present is one the bundle listed.
fn assert_nothing_registered(env: &Env, parsed: &Parsed) {
    assert_nothing_registered_in(env, "dest", parsed);
}

fn assert_nothing_registered_in(env: &Env, dest: &str, parsed: &Parsed) {
    assert!(env.roots(dest).is_empty(), "roots were registered");
    assert!(!env.path(dest).join("meta-v1/build").exists());
    env.verify_clean(dest);
    let listed: Vec<String> = parsed
        .records
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    for line in env.ls(dest) {
        let address = line.split(' ').next().unwrap();
        assert!(
            listed.iter().any(|l| l == address),
            "unexpected object {line}"
        );
    }
}

#[test]
fn flipped_bytes_in_payloads_are_refused() {
    let env = Env::new();
    let bundle = exported(&env, &[]);
    let parsed = parse(&bundle);
    // One record of each encoding: raw blob (1), zstd blob (2), directory node (3).
    for encoding in [1u8, 2, 3] {
        let record = parsed
            .records
            .iter()
            .filter(|record| record.encoding == encoding)
            .max_by_key(|record| record.payload_len)
            .unwrap();
        let dest = format!("dest{encoding}");
        let mut damaged = bundle.clone();
        damaged[record.payload_offset + record.payload_len / 2] ^= 0x01;
        let stderr = import_fails_into(&env, &dest, &damaged, &[]);
        assert!(stderr.contains("failed verification"), "{stderr}");
        assert!(stderr.contains(&record.address.to_string()), "{stderr}");
        assert!(
            stderr.contains("no root or record was registered"),
            "{stderr}"
        );
        assert_nothing_registered_in(&env, &dest, &parsed);
        // The damaged object itself never became visible.
        assert!(
            !env.ls(&dest)
                .iter()
                .any(|l| l.starts_with(&record.address.to_string()))
        );
    }
    // A flipped byte outside any payload (a record's length field is covered by the trailer too).
    let mut damaged = bundle.clone();
    damaged[parsed.trailer_offset + 20] ^= 0x01;
    let stderr = import_fails(&env, &damaged, &[]);
    assert!(stderr.contains("do not match the trailer hash"), "{stderr}");
    assert_nothing_registered(&env, &parsed);

    // The undamaged bundle still imports, over whatever verified objects landed.
    env.ok(env.hstore("dest").args(["import", "bundle.hsb"]));
    env.verify_clean("dest");
}

#[test]
fn truncated_bundles_are_refused() {
    let env = Env::new();
    let bundle = exported(&env, &[]);
    let parsed = parse(&bundle);
    let big = parsed.records.iter().max_by_key(|r| r.payload_len).unwrap();
    let first = &parsed.records[0];
    let cuts = [
        5,                                                                 // inside the magic
        20, // inside the manifest length
        usize::midpoint(parsed.manifest_range.0, parsed.manifest_range.1), // inside the manifest
        parsed.manifest_range.1, // before the signature block
        first.payload_offset - 10, // inside a record header
        big.payload_offset + big.payload_len / 2, // inside a payload
        first.payload_offset + first.payload_len, // exactly between two records
        parsed.trailer_offset, // before the trailer
        bundle.len() - 1, // inside the trailer hash
    ];
    for cut in cuts {
        let stderr = import_fails(&env, &bundle[..cut], &[]);
        assert!(stderr.contains("truncated"), "cut at {cut}: {stderr}");
        assert_nothing_registered(&env, &parsed);
    }
    let stderr = import_fails(&env, b"", &[]);
    assert!(stderr.contains("not an hstore bundle"), "{stderr}");
    let stderr = import_fails(&env, &[&bundle[..], b"extra"].concat(), &[]);
    assert!(stderr.contains("after its trailer"), "{stderr}");
    assert_nothing_registered(&env, &parsed);
}

#[test]
fn lying_manifests_are_refused() {
    let env = Env::new();
    let bundle = exported(&env, &[]);
    let parsed = parse(&bundle);
    let objects = parsed.manifest["objects"].as_array().unwrap().clone();
    let fake = Digest::of_bytes(b"an object nobody has");

    // An object dropped from both the manifest and the stream: its directory's child is missing.
    let dropped = parsed
        .records
        .iter()
        .position(|r| r.encoding == 2 && r.payload_len > 100_000)
        .unwrap();
    let record = &parsed.records[dropped];
    let mut stream = bundle[..record.payload_offset - 42].to_vec();
    stream.extend_from_slice(&bundle[record.payload_offset + record.payload_len..]);
    let count_at = stream.len() - 40;
    let count = u64::from_le_bytes(stream[count_at..count_at + 8].try_into().unwrap());
    stream[count_at..count_at + 8].copy_from_slice(&(count - 1).to_le_bytes());
    reseal(&mut stream);
    let mut manifest = parsed.manifest.clone();
    manifest["objects"].as_array_mut().unwrap().remove(dropped);
    let stderr = import_fails(&env, &with_manifest(&stream, &manifest), &[]);
    assert!(
        stderr.contains("names `data.bin`")
            && stderr.contains("neither earlier in the bundle nor in the store"),
        "{stderr}"
    );
    assert_nothing_registered(&env, &parsed);

    // A listed size that is not the object's size.
    let blob_index = objects.iter().position(|o| o[1] == "blob").unwrap();
    let mut manifest = parsed.manifest.clone();
    let size = manifest["objects"][blob_index][2].as_u64().unwrap();
    manifest["objects"][blob_index][2] = (size + 1).into();
    let stderr = import_fails(&env, &with_manifest(&bundle, &manifest), &[]);
    assert!(
        stderr.contains(&format!("expected {}", size + 1)),
        "{stderr}"
    );
    assert_nothing_registered(&env, &parsed);

    // A listed address that is not the object in the stream.
    let mut manifest = parsed.manifest.clone();
    manifest["objects"][blob_index][0] = fake.to_string().into();
    let stderr = import_fails(&env, &with_manifest(&bundle, &manifest), &[]);
    assert!(
        stderr.contains(&format!("but the manifest lists {fake} at that position")),
        "{stderr}"
    );
    assert_nothing_registered(&env, &parsed);

    // An object listed that the stream does not hold.
    let mut manifest = parsed.manifest.clone();
    manifest["objects"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!([fake.to_string(), "blob", 3]));
    let stderr = import_fails(&env, &with_manifest(&bundle, &manifest), &[]);
    assert!(
        stderr.contains(&format!("the first missing is {fake}")),
        "{stderr}"
    );
    assert_nothing_registered(&env, &parsed);

    // An object in the stream that the manifest does not list.
    let mut manifest = parsed.manifest.clone();
    manifest["objects"].as_array_mut().unwrap().pop();
    manifest["roots"] = serde_json::json!({});
    manifest["lockfiles"] = serde_json::json!([]);
    let stderr = import_fails(&env, &with_manifest(&bundle, &manifest), &[]);
    assert!(
        stderr.contains("but the manifest lists no more objects"),
        "{stderr}"
    );
    assert_nothing_registered(&env, &parsed);

    // A root naming an address outside the closure: refused before any object is read.
    let mut manifest = parsed.manifest.clone();
    manifest["roots"]["evil"] =
        serde_json::json!({"description": "", "addresses": [fake.to_string()]});
    let before = env.ls("dest");
    let stderr = import_fails(&env, &with_manifest(&bundle, &manifest), &[]);
    assert!(
        stderr.contains("root `evil`") && stderr.contains(&fake.to_string()),
        "{stderr}"
    );
    assert_eq!(env.ls("dest"), before);
}

#[test]
fn sigkill_during_import_then_reimport() {
    let env = Env::new();
    fs::create_dir_all(env.path("big")).unwrap();
    for index in 0..6u64 {
        fs::write(
            env.path(&format!("big/part{index}")),
            noise(index, 16 << 20),
        )
        .unwrap();
    }
    let tree = env.add("src", &env.path("big"));
    env.lockfile("lockfile.json", &[("big", tree)]);
    env.ok(env.hstore("src").args(["export", "-o", "bundle.hsb"]));
    let bundle = fs::read(env.path("bundle.hsb")).unwrap();

    // Feed 40% of the bundle (inside the third 16 MiB part), wait until objects landed and one is half-written in tmp/, then SIGKILL.
    let mut child = env
        .hstore("dest")
        .args(["import", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bundle[..bundle.len() * 2 / 5]).unwrap();
    stdin.flush().unwrap();
    let count_files = |dir: &str| walk_files(&env.path(dir));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(count_files("dest/objects-v1") >= 2 && count_files("dest/tmp") >= 1) {
        assert!(Instant::now() < deadline, "the import made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);

    // Only complete, verified objects are visible; nothing is registered.
    env.verify_clean("dest");
    assert!(env.roots("dest").is_empty());
    let landed = env.ls("dest").len();
    assert!(landed >= 2);

    let output = env
        .hstore("dest")
        .args(["import", "bundle.hsb"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{landed} already present")),
        "{stderr}"
    );
    env.verify_clean("dest");
    assert_eq!(env.roots("dest").len(), 1);
    assert_eq!(env.ls("dest"), env.ls("src"));
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk_files(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn trust_refuses_unsigned_and_foreign_bundles_before_importing_anything() {
    let env = Env::new();
    let public = env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "release"]));
    env.ok(env
        .hstore("src")
        .args(["key", "generate", "--out", "mallory"]));
    assert_eq!(
        public.trim(),
        fs::read_to_string(env.path("release.pub")).unwrap().trim()
    );
    let mode = fs::metadata(env.path("release.secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stderr = env.fails(
        env.hstore("src")
            .args(["key", "generate", "--out", "release"]),
    );
    assert!(stderr.contains("release.secret"), "{stderr}");

    let unsigned = exported(&env, &[]);
    env.ok(env
        .hstore("src")
        .args(["export", "--sign", "mallory.secret", "-o", "mallory.hsb"]));
    env.ok(env
        .hstore("src")
        .args(["export", "--sign", "release.secret", "-o", "release.hsb"]));
    let foreign = fs::read(env.path("mallory.hsb")).unwrap();
    let signed = fs::read(env.path("release.hsb")).unwrap();
    let parsed = parse(&signed);

    let stderr = import_fails(&env, &unsigned, &["--trust", "release.pub"]);
    assert!(stderr.contains("is not signed"), "{stderr}");
    assert!(env.ls("dest").is_empty() && env.roots("dest").is_empty());

    let stderr = import_fails(&env, &foreign, &["--trust", "release.pub"]);
    assert!(stderr.contains("not among the trusted keys"), "{stderr}");
    assert!(env.ls("dest").is_empty() && env.roots("dest").is_empty());

    fs::write(env.path("trusted"), "# keys we accept\n\n").unwrap();
    let stderr = import_fails(&env, &signed, &["--trusted-keys", "trusted"]);
    assert!(stderr.contains("hold no key"), "{stderr}");

    // A signed manifest edited afterwards: refused even without trust flags.
    let mut manifest = parsed.manifest.clone();
    manifest["roots"]["evil"] = serde_json::json!({"description": "", "addresses": []});
    let mut edited = with_manifest(&signed, &manifest);
    // with_manifest writes an unsigned bundle; splice the original signature block back in.
    let (start, end) = parse(&edited).manifest_range;
    edited.splice(
        end..=end,
        signed[parsed.manifest_range.1..parsed.manifest_range.1 + parsed.signature_len]
            .iter()
            .copied(),
    );
    reseal(&mut edited);
    assert!(start > 0);
    let stderr = import_fails(&env, &edited, &[]);
    assert!(stderr.contains("does not match its manifest"), "{stderr}");
    assert!(env.ls("dest").is_empty() && env.roots("dest").is_empty());

    fs::write(
        env.path("trusted"),
        format!("# keys we accept\n{}\n", public.trim()),
    )
    .unwrap();
    fs::write(env.path("release-in.hsb"), &signed).unwrap();
    let output = env
        .hstore("dest")
        .args(["import", "--trusted-keys", "trusted", "release-in.hsb"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("signed by {}", public.trim())),
        "{stderr}"
    );
    env.verify_clean("dest");
    assert_eq!(env.roots("dest").len(), 1);
}
