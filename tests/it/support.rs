//! Shared helpers for the export/import tests: a sandboxed environment for the real `hstore` binary, trees with
//! deterministic contents, lockfiles written with the real [`Lockfile`] model, and a small bundle parser that
//! lets tests damage bundles at exact places (and re-seal the trailer, the way an attacker would).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hstore_fetchers::lockfile::{Artifact, Lockfile, PathArtifact};
use hstore_store::Digest;
use serde_json::Value;

/// A [`hstore_test_support::TestEnv`] holding several named stores; `hstore(store)` runs the binary on one of them.
pub struct Env {
    env: hstore_test_support::TestEnv,
}

impl Env {
    pub fn new() -> Self {
        Self {
            env: hstore_test_support::TestEnv::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.env.root().join(name)
    }

    /// `hstore --store <dir>/<store> …`, with a clean environment.
    pub fn hstore(&self, store: &str) -> Command {
        let mut command = self.env.command(env!("CARGO_BIN_EXE_hstore"));
        command.arg("--store").arg(self.path(store));
        command
    }

    /// Like [`Env::hstore`], but inside a fresh user + network namespace: no network at all, only a down `lo`.
    pub fn hstore_offline(&self, store: &str) -> Command {
        let mut command = self.env.command("unshare");
        command
            .args(["-r", "-n", "--"])
            .arg(env!("CARGO_BIN_EXE_hstore"))
            .arg("--store")
            .arg(self.path(store));
        command
    }

    /// Runs and asserts success; returns stdout.
    #[expect(
        clippy::unused_self,
        reason = "reads as `env.ok(env.hstore(…))` in tests"
    )]
    pub fn ok(&self, command: &mut Command) -> String {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and asserts exit code 2; returns stderr.
    #[expect(
        clippy::unused_self,
        reason = "reads as `env.ok(env.hstore(…))` in tests"
    )]
    pub fn fails(&self, command: &mut Command) -> String {
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command:?} should have failed:\n{stderr}"
        );
        stderr
    }

    /// `store add PATH` → address.
    pub fn add(&self, store: &str, path: &Path) -> Digest {
        self.ok(self.hstore(store).args(["store", "add"]).arg(path))
            .trim()
            .parse()
            .unwrap()
    }

    /// `store ls` lines, sorted.
    pub fn ls(&self, store: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .ok(self.hstore(store).args(["store", "ls"]))
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// Names of the roots registered in a store.
    pub fn roots(&self, store: &str) -> Vec<String> {
        let dir = self.path(store).join("roots-v1");
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Asserts `store verify` is clean.
    pub fn verify_clean(&self, store: &str) {
        let output = self
            .hstore(store)
            .args(["store", "verify"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "verify found problems in `{store}`:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Writes a lockfile naming each `(id, address)` as a path artifact; returns its path.
    pub fn lockfile(&self, name: &str, artifacts: &[(&str, Digest)]) -> PathBuf {
        let lockfile = Lockfile {
            artifacts: artifacts
                .iter()
                .map(|(id, address)| {
                    Artifact::Path(PathArtifact {
                        id: format!("path+{id}").into(),
                        path: (*id).to_owned(),
                        address: *address,
                        size: 0,
                    })
                })
                .collect(),
            ..Lockfile::default()
        };
        let path = self.path(name);
        lockfile.save(&path).unwrap();
        path
    }
}

/// Deterministic, incompressible bytes (xorshift64*), so sizes and compression are the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a small source tree: text files (compressible), an incompressible file, a gzip-looking file (kept raw), a
/// nested directory, a symlink. `variant` changes only `src/deep/version.txt`.
pub fn write_tree(root: &Path, variant: &str) {
    fs::create_dir_all(root.join("src/deep")).unwrap();
    fs::write(root.join("README"), "a tree for bundle tests\n".repeat(20)).unwrap();
    fs::write(
        root.join("src/lib.rs"),
        "pub fn f() -> u32 { 42 }\n".repeat(50),
    )
    .unwrap();
    // Noise in 7-bit bytes: zstd saves ~12% (so it is stored compressed) yet the frame stays over 100 kB.
    let data: Vec<u8> = noise(7, 300_000).iter().map(|b| b & 0x7f).collect();
    fs::write(root.join("src/deep/data.bin"), data).unwrap();
    fs::write(
        root.join("src/deep/version.txt"),
        format!("version {variant}\n").repeat(30),
    )
    .unwrap();
    // Starts like gzip, so the store keeps it raw: bundles carry raw blobs too.
    fs::write(
        root.join("vendor.tar.gz"),
        [&b"\x1f\x8b\x08\x00"[..], &noise(3, 5000)].concat(),
    )
    .unwrap();
    let _ = fs::remove_file(root.join("link"));
    std::os::unix::fs::symlink("src/lib.rs", root.join("link")).unwrap();
}

/// One object record's place in a bundle.
#[derive(Clone, Debug)]
pub struct Record {
    pub address: Digest,
    pub encoding: u8,
    pub payload_offset: usize,
    pub payload_len: usize,
}

/// A parsed bundle: the manifest JSON, where each piece sits.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub manifest: Value,
    pub manifest_range: (usize, usize),
    pub signature_len: usize,
    pub records: Vec<Record>,
    pub trailer_offset: usize,
}

const MAGIC_LEN: usize = 14;

pub fn parse(bytes: &[u8]) -> Parsed {
    assert_eq!(&bytes[..MAGIC_LEN], b"hstore-bundle\0");
    let length_at = MAGIC_LEN + 4;
    let manifest_len =
        u64::from_le_bytes(bytes[length_at..length_at + 8].try_into().unwrap()) as usize;
    let manifest_start = length_at + 8;
    let manifest_end = manifest_start + manifest_len;
    let manifest: Value = serde_json::from_slice(&bytes[manifest_start..manifest_end]).unwrap();
    let signature_len = if bytes[manifest_end] == 0 {
        1
    } else {
        1 + 32 + 64
    };
    let mut offset = manifest_end + signature_len;
    let mut records = Vec::new();
    while bytes[offset] == b'O' {
        let address = Digest::from_bytes(bytes[offset + 1..offset + 33].try_into().unwrap());
        let encoding = bytes[offset + 33];
        let payload_len =
            u64::from_le_bytes(bytes[offset + 34..offset + 42].try_into().unwrap()) as usize;
        records.push(Record {
            address,
            encoding,
            payload_offset: offset + 42,
            payload_len,
        });
        offset += 42 + payload_len;
    }
    assert_eq!(bytes[offset], b'T');
    assert_eq!(bytes.len(), offset + 1 + 8 + 32);
    Parsed {
        manifest,
        manifest_range: (manifest_start, manifest_end),
        signature_len,
        records,
        trailer_offset: offset,
    }
}

/// Rebuilds an unsigned bundle with `manifest` in place of the original one and a correct trailer hash: a
/// manifest that lies, sealed the way anyone without a key can seal it.
pub fn with_manifest(bytes: &[u8], manifest: &Value) -> Vec<u8> {
    let parsed = parse(bytes);
    let json = serde_json::to_vec(manifest).unwrap();
    let mut out = bytes[..MAGIC_LEN + 4].to_vec();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.push(0);
    let objects_start = parsed.manifest_range.1 + parsed.signature_len;
    out.extend_from_slice(&bytes[objects_start..]);
    reseal(&mut out);
    out
}

/// Recomputes the trailer hash of a bundle whose trailer is its last 41 bytes.
pub fn reseal(bytes: &mut [u8]) {
    let hash_at = bytes.len() - 32;
    let digest = blake3::hash(&bytes[..hash_at]);
    bytes[hash_at..].copy_from_slice(digest.as_bytes());
}
