//! Byte-reproducible package files and the names and hashes they are served under, shared by the cargo registry
//! ([`crate::TestRegistry`]) and the PEP 691 index ([`crate::TestIndex`]): a leaf module, so neither fixture
//! depends on the other for them.

use std::io::Write as _;

use sha2::{Digest, Sha256};

/// Mtime written into every tar header (cargo's own deterministic value).
const TAR_MTIME: u64 = 1_153_704_088;

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_project(name: &str) -> String {
    let mut normalized = String::new();
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(character.to_ascii_lowercase());
        }
    }
    normalized
}

/// A deterministic gzip'd tar of `files` (path, contents), as cargo packages crates.
pub fn deterministic_tar_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(TAR_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, contents.as_slice())
            .expect("append to .crate");
    }
    let tar = builder.into_inner().expect("finish tar");
    // flate2's default gzip header has mtime 0 and no file name, so this is reproducible too.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&tar).expect("gzip");
    encoder.finish().expect("gzip")
}
