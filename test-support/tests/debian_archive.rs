//! Tests of the loopback Debian archive, read over HTTP with hstore's own Debian code (`hstore_fetchers::debian`):
//! the InRelease verifies with the fixture's keyring (binary and armored, primary key and signing subkey, ed25519
//! and RSA), a tampered or foreign-signed one is refused, and the indexes resolve to real `.deb` files.

// clippy.toml's house rules are the product's: tests clean up fixtures by path.
#![allow(clippy::disallowed_methods)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;

use hstore_fetchers::debian::release::Error as ReleaseError;
use hstore_fetchers::debian::{
    Release, Request, ResolveOptions, parse_packages, resolve, verify_inrelease,
};
use hstore_store::Hint as _;
use hstore_test_support::{DebSpec, DebianArchive, RunningDebianArchive, sha256_hex};

/// `GET url` on the loopback archive; returns status and body.
fn get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (address, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("status");
    (status, response[end + 4..].to_vec())
}

fn fetch(url: &str) -> Vec<u8> {
    let (status, body) = get(url);
    assert_eq!(status, 200, "GET {url}");
    body
}

fn verify(archive: &RunningDebianArchive, keyring: &[u8]) -> Result<Release, ReleaseError> {
    let url = archive.inrelease_url();
    verify_inrelease(&fetch(&url), keyring, &url)
}

/// A small base system: an essential shell pre-depending on libc, a compiler with alternatives and a virtual
/// dependency, and an `all` package.
fn base_system() -> DebianArchive {
    DebianArchive::new()
        .deb(
            DebSpec::new("libc6", "2.36-9+deb12u4")
                .field("Multi-Arch", "same")
                .file("usr/lib/x86_64-linux-gnu/libc.so.6", "not really libc\n"),
        )
        .deb(
            DebSpec::new("dash", "0.5.12-2")
                .essential()
                .pre_depends("libc6 (>= 2.34)")
                .file_with_mode("usr/bin/dash", "#!/bin/false\n", 0o755),
        )
        .deb(
            DebSpec::new("cc-tool", "1:12.2.0-14")
                .depends("libc6 (>= 2.36), binutils | binutils-multiarch, c-runtime")
                .file("usr/share/doc/cc-tool/README", "a compiler\n"),
        )
        .deb(DebSpec::new("binutils", "2.40-2"))
        .deb(DebSpec::new("binutils-multiarch", "2.40-2"))
        .deb(
            DebSpec::new("runtime-data", "1.0")
                .architecture("all")
                .provides("c-runtime (= 1.0)"),
        )
        .deb(
            DebSpec::new("libc6", "2.36-9+deb12u4")
                .architecture("arm64")
                .field("Multi-Arch", "same"),
        )
}

#[test]
fn inrelease_verifies_and_indexes_resolve_to_real_debs() {
    let archive = base_system().start();
    let release = verify(&archive, archive.keyring()).expect("the fixture's InRelease verifies");
    assert_eq!(release.suite.as_deref(), Some("stable"));
    assert_eq!(release.codename.as_deref(), Some("hstore-test"));
    assert_eq!(release.architectures, ["all", "amd64", "arm64"]);
    assert_eq!(release.components, ["main"]);
    assert_eq!(release.date_unix(), Some(1_767_225_600));
    assert_eq!(
        release.signer.fingerprint,
        archive.fingerprint().to_lowercase()
    );
    assert_eq!(
        release.signer.fingerprint,
        release.signer.primary_fingerprint
    );

    // Every listed index is served with the size and sha256 the signed text lists.
    for file in release.files() {
        let bytes = fetch(&archive.file_url(&format!("dists/stable/{}", file.path)));
        assert_eq!(bytes.len() as u64, file.size, "{}", file.path);
        assert_eq!(sha256_hex(&bytes), file.sha256.as_str(), "{}", file.path);
    }
    let listed = release
        .file("main/binary-amd64/Packages.gz")
        .expect("Packages.gz is listed");
    let compressed = fetch(&archive.file_url(&format!("dists/stable/{}", listed.path)));
    let mut packages = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut packages)
        .expect("gunzip");
    let index = parse_packages(&packages, &listed.path).expect("the index parses");
    assert_eq!(index.len(), 6, "amd64 and all, not arm64");
    let dash = index.iter().find(|package| package.name == "dash").unwrap();
    assert!(dash.essential);
    assert_eq!(dash.pre_depends[0][0].to_string(), "libc6 (>= 2.34)");

    let requests: Vec<Request> = vec!["cc-tool".parse().unwrap()];
    let resolution = resolve(&[&index], &requests, &ResolveOptions::new("amd64")).unwrap();
    let chosen: Vec<String> = resolution
        .packages()
        .map(|package| format!("{} {}", package.name, package.version))
        .collect();
    assert_eq!(
        chosen,
        [
            "binutils 2.40-2",
            "cc-tool 1:12.2.0-14",
            "dash 0.5.12-2",
            "libc6 2.36-9+deb12u4",
            "runtime-data 1.0"
        ]
    );
    assert_eq!(resolution.chain("libc6"), ["cc-tool", "libc6"]);

    // Each chosen .deb is served as indexed, and is a real package dpkg-deb unpacks.
    let unpacked = tempfile::tempdir().unwrap();
    for package in resolution.packages() {
        let bytes = fetch(&archive.file_url(&package.filename));
        assert_eq!(bytes.len() as u64, package.size);
        assert_eq!(sha256_hex(&bytes), package.sha256.as_str());
        let path = unpacked.path().join(format!("{}.deb", package.name));
        std::fs::write(&path, &bytes).unwrap();
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&path)
            .arg(unpacked.path().join("root"))
            .status()
            .expect("run dpkg-deb");
        assert!(status.success(), "dpkg-deb -x {}", package.name);
    }
    let dash_binary = unpacked.path().join("root/usr/bin/dash");
    assert_eq!(std::fs::read(&dash_binary).unwrap(), b"#!/bin/false\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dash_binary).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        archive.deb("cc-tool").filename,
        "pool/main/c/cc-tool/cc-tool_12.2.0-14_amd64.deb",
        "the epoch is not part of the file name"
    );
}

#[test]
fn armored_keyring_and_signing_subkey() {
    let archive = DebianArchive::new()
        .sign_with_subkey()
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    assert!(
        archive
            .keyring_armored()
            .starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    for keyring in [archive.keyring(), archive.keyring_armored()] {
        let release = verify(&archive, keyring).expect("a bound signing subkey verifies");
        assert_eq!(
            release.signer.fingerprint,
            archive.signing_key().to_lowercase()
        );
        assert_eq!(
            release.signer.primary_fingerprint,
            archive.fingerprint().to_lowercase()
        );
        assert_ne!(
            release.signer.fingerprint,
            release.signer.primary_fingerprint
        );
        assert_eq!(
            release.signer.user_id.as_deref(),
            Some("hstore test archive <archive@hstore.invalid>")
        );
    }
}

#[test]
fn rsa_keys_verify() {
    let archive = DebianArchive::new()
        .key_algorithm("rsa3072")
        .sign_with_subkey()
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    verify(&archive, archive.keyring()).expect("an RSA signature verifies");
}

#[test]
fn a_foreign_key_is_an_unknown_signer() {
    let archive = DebianArchive::new()
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    let other = archive.resign_with_other_key();
    let error = verify(&archive, archive.keyring()).unwrap_err();
    let ReleaseError::UnknownSigner { signers, .. } = &error else {
        panic!("expected UnknownSigner, got {error:?}")
    };
    assert_eq!(signers, &[other.to_lowercase()]);
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` is signed by `{}`, not by a key of the keyring",
            archive.inrelease_url(),
            other.to_lowercase()
        )
    );
    assert!(error.hint().unwrap().contains("debian-archive-keyring"));
    // The real Debian keyring does not know the fixture's key either.
    let debian = std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg").unwrap();
    assert!(matches!(
        verify(&archive, &debian),
        Err(ReleaseError::UnknownSigner { .. })
    ));
}

#[test]
fn altered_signed_text_is_a_bad_signature() {
    let archive = DebianArchive::new()
        .sign_with_subkey()
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    archive.tamper_inrelease();
    let error = verify(&archive, archive.keyring()).unwrap_err();
    let ReleaseError::BadSignature { signer, .. } = &error else {
        panic!("expected BadSignature, got {error:?}")
    };
    assert_eq!(signer, &archive.signing_key().to_lowercase());
    assert!(error.to_string().contains("does not verify"), "{error}");
    assert!(error.hint().is_some());
}

#[test]
fn an_unsigned_release_is_refused() {
    let archive = DebianArchive::new()
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    let url = archive.file_url("dists/stable/Release");
    let error = verify_inrelease(&fetch(&url), archive.keyring(), &url).unwrap_err();
    assert!(matches!(error, ReleaseError::Unsigned { .. }), "{error:?}");
    assert!(error.to_string().contains(&url));
}

#[test]
fn an_expired_release_still_verifies() {
    let archive = DebianArchive::new()
        .valid_until("Thu, 08 Jan 2026 00:00:00 UTC")
        .deb(DebSpec::new("hello", "1.0"))
        .start();
    let release = verify(&archive, archive.keyring()).expect("expiry is the caller's decision");
    assert_eq!(
        release.valid_until.as_deref(),
        Some("Thu, 08 Jan 2026 00:00:00 UTC")
    );
    assert!(release.is_expired_at(1_900_000_000));
}

#[test]
fn a_tampered_deb_no_longer_matches_its_index() {
    let archive = DebianArchive::new()
        .deb(DebSpec::new("hello", "1.0").file("usr/share/hello", "hello\n"))
        .start();
    let published = archive.deb("hello").clone();
    assert_eq!(
        sha256_hex(&fetch(&archive.file_url(&published.filename))),
        published.sha256
    );
    archive.tamper_deb("hello");
    let bytes = fetch(&archive.file_url(&published.filename));
    assert_eq!(bytes.len() as u64, published.size);
    assert_ne!(sha256_hex(&bytes), published.sha256);
    assert!(
        archive
            .requests()
            .iter()
            .all(|request| request.path.starts_with("/pool/")),
        "requests are logged"
    );
}
