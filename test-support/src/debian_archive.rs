//! [`DebianArchive`]: a loopback Debian archive for tests, built with the real tools — `.deb` files by `dpkg-deb
//! --build`, an `InRelease` clearsigned by `gpg` with a throwaway key — and served on `127.0.0.1` like
//! [`crate::TestRegistry`]:
//!
//! ```text
//! /dists/SUITE/InRelease                         Release, clearsigned (primary key, or a signing subkey)
//! /dists/SUITE/Release                           the same text, unsigned
//! /dists/SUITE/main/binary-ARCH/Packages{,.gz,.xz}   one paragraph per .deb of ARCH or `all`
//! /pool/main/L/NAME/NAME_VERSION_ARCH.deb        the packages (L: first letter, `libx` for `lib…`)
//! ```
//!
//! The keyring is the public key exported as `gpg --export` writes it (binary, like
//! /usr/share/keyrings/debian-archive-keyring.gpg) or armored. After [`DebianArchive::start`], the fixture can be
//! damaged on purpose: a `.deb` altered after indexing, the signed text altered after signing, or the `InRelease`
//! re-signed by a key that is not in the keyring. Every tool it runs must be installed: a missing one fails the
//! test, it never skips it. `gpg` runs with its own `GNUPGHOME` in a temporary directory, and its agent is stopped
//! when the archive is dropped.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::files::sha256_hex;
use crate::server::{Request, Server, Shared};

/// The suite's `Date` (2026-01-01 00:00:00 UTC): fixed, so the Release text is reproducible.
pub const DEBIAN_ARCHIVE_DATE: &str = "Thu, 01 Jan 2026 00:00:00 UTC";

/// `SOURCE_DATE_EPOCH` for `dpkg-deb`, so a `.deb`'s bytes do not depend on when the test ran.
const SOURCE_DATE_EPOCH: &str = "1767225600";

/// One binary package to build: control fields and data files.
#[derive(Debug, Clone)]
pub struct DebSpec {
    name: String,
    version: String,
    architecture: String,
    fields: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>, u32)>,
}

impl DebSpec {
    /// A package `name` `version` for `amd64`, with no dependencies and no files.
    pub fn new(name: &str, version: &str) -> Self {
        DebSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: "amd64".to_owned(),
            fields: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Sets `Architecture` (`all`, `arm64`…).
    #[must_use]
    pub fn architecture(mut self, architecture: &str) -> Self {
        architecture.clone_into(&mut self.architecture);
        self
    }

    /// Adds a control field (`Depends`, `Pre-Depends`, `Provides`, `Multi-Arch`, `Priority`, `Section`…), written
    /// into `DEBIAN/control` as given: `dpkg-deb` checks it.
    #[must_use]
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Depends: value`.
    #[must_use]
    pub fn depends(self, value: &str) -> Self {
        self.field("Depends", value)
    }

    /// `Pre-Depends: value`.
    #[must_use]
    pub fn pre_depends(self, value: &str) -> Self {
        self.field("Pre-Depends", value)
    }

    /// `Provides: value`.
    #[must_use]
    pub fn provides(self, value: &str) -> Self {
        self.field("Provides", value)
    }

    /// `Essential: yes` (and `Priority: required`, as Debian's essential packages have).
    #[must_use]
    pub fn essential(self) -> Self {
        self.field("Essential", "yes").field("Priority", "required")
    }

    /// A regular file at `path` (relative, `usr/bin/tool`) with mode 0644.
    #[must_use]
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.file_with_mode(path, contents, 0o644)
    }

    /// A regular file at `path` with `mode` (`0o755` for a program).
    #[must_use]
    pub fn file_with_mode(mut self, path: &str, contents: impl AsRef<[u8]>, mode: u32) -> Self {
        assert!(
            !path.starts_with('/') && !path.split('/').any(|part| part == ".." || part.is_empty()),
            "data paths are relative: {path}"
        );
        self.files
            .push((path.to_owned(), contents.as_ref().to_vec(), mode));
        self
    }
}

/// A `.deb` as the archive indexes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDeb {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// `Filename`: the path below the archive root.
    pub filename: String,
    /// `Size`.
    pub size: u64,
    /// `SHA256`.
    pub sha256: String,
}

/// Which key clearsigns the `InRelease`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    Primary,
    Subkey,
}

/// Builder for the loopback archive; [`DebianArchive::start`] builds and serves it.
#[derive(Debug)]
pub struct DebianArchive {
    suite: String,
    codename: String,
    architecture: String,
    key_algorithm: String,
    signer: Signer,
    valid_until: Option<String>,
    debs: Vec<DebSpec>,
}

impl DebianArchive {
    /// An archive with suite `stable`, codename `hstore-test`, component `main`, architecture `amd64`, signed by an
    /// ed25519 primary key.
    #[expect(
        clippy::new_without_default,
        reason = "like TestRegistry::new: a fixture, not a value"
    )]
    pub fn new() -> Self {
        DebianArchive {
            suite: "stable".to_owned(),
            codename: "hstore-test".to_owned(),
            architecture: "amd64".to_owned(),
            key_algorithm: "ed25519".to_owned(),
            signer: Signer::Primary,
            valid_until: None,
            debs: Vec::new(),
        }
    }

    /// Sets the suite (the `dists/` directory name) and codename.
    #[must_use]
    pub fn suite(mut self, suite: &str, codename: &str) -> Self {
        suite.clone_into(&mut self.suite);
        codename.clone_into(&mut self.codename);
        self
    }

    /// Sets the archive's main architecture (its `binary-ARCH` index always exists).
    #[must_use]
    pub fn architecture(mut self, architecture: &str) -> Self {
        architecture.clone_into(&mut self.architecture);
        self
    }

    /// The algorithm `gpg --quick-gen-key` makes the key with (`ed25519`, `rsa3072`; Debian's own are RSA 4096).
    #[must_use]
    pub fn key_algorithm(mut self, algorithm: &str) -> Self {
        algorithm.clone_into(&mut self.key_algorithm);
        self
    }

    /// Signs with a signing subkey of the key (as Debian's archive keys do), not the primary key.
    #[must_use]
    pub fn sign_with_subkey(mut self) -> Self {
        self.signer = Signer::Subkey;
        self
    }

    /// Writes `Valid-Until` (Debian's format, e.g. `Thu, 08 Jan 2026 00:00:00 UTC`).
    #[must_use]
    pub fn valid_until(mut self, date: &str) -> Self {
        self.valid_until = Some(date.to_owned());
        self
    }

    /// Adds a package.
    #[must_use]
    pub fn deb(mut self, spec: DebSpec) -> Self {
        self.debs.push(spec);
        self
    }

    /// Builds the `.deb` files, indexes, Release and InRelease, then serves them on `127.0.0.1` until the result
    /// is dropped.
    pub fn start(self) -> RunningDebianArchive {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let root = tempfile::tempdir().expect("archive temp dir");
        let work = tempfile::tempdir().expect("archive work dir");
        let gpg = Gpg::new();
        let fingerprint = gpg.generate_key(
            "hstore test archive <archive@hstore.invalid>",
            &self.key_algorithm,
        );
        let signing_key = match self.signer {
            Signer::Primary => fingerprint.clone(),
            Signer::Subkey => gpg.add_signing_subkey(&fingerprint, &self.key_algorithm),
        };
        let mut published = Vec::new();
        for spec in &self.debs {
            published.push(build_deb(spec, root.path(), work.path()));
        }
        let mut architectures: Vec<String> = vec![self.architecture.clone()];
        for deb in &published {
            if deb.architecture != "all" && !architectures.contains(&deb.architecture) {
                architectures.push(deb.architecture.clone());
            }
        }
        architectures.sort();
        let dists = format!("dists/{}", self.suite);
        let mut listing = Vec::new();
        for architecture in &architectures {
            let mut packages = String::new();
            for deb in published
                .iter()
                .filter(|deb| deb.architecture == *architecture || deb.architecture == "all")
            {
                packages.push_str(&index_paragraph(deb, root.path()));
                packages.push('\n');
            }
            let directory = format!("main/binary-{architecture}");
            let plain = packages.into_bytes();
            let compressed = [
                ("Packages", plain.clone()),
                ("Packages.gz", gzip(&plain)),
                ("Packages.xz", xz(&plain)),
            ];
            for (name, bytes) in compressed {
                let path = format!("{directory}/{name}");
                write(&root.path().join(&dists).join(&path), &bytes);
                listing.push((path, bytes.len(), sha256_hex(&bytes)));
            }
        }
        let mut release = format!(
            "Origin: hstore-test\nLabel: hstore-test\nSuite: {}\nCodename: {}\nDate: {DEBIAN_ARCHIVE_DATE}\n",
            self.suite, self.codename
        );
        if let Some(valid_until) = &self.valid_until {
            writeln!(release, "Valid-Until: {valid_until}").expect("write to String");
        }
        writeln!(
            release,
            "Acquire-By-Hash: no\nArchitectures: all {}\nComponents: main\nDescription: hstore's loopback test \
             archive\nSHA256:",
            architectures.join(" ")
        )
        .expect("write to String");
        for (path, size, sha256) in &listing {
            writeln!(release, " {sha256} {size:>8} {path}").expect("write to String");
        }
        let release_path = root.path().join(&dists).join("Release");
        write(&release_path, release.as_bytes());
        let inrelease = gpg.clearsign(&signing_key, &release_path);
        write(&root.path().join(&dists).join("InRelease"), &inrelease);
        let shared = Arc::new(Shared::default());
        let server = Server::start(listener, root.path().to_path_buf(), Arc::clone(&shared));
        RunningDebianArchive {
            _server: server,
            base_url: format!("http://127.0.0.1:{port}"),
            suite: self.suite,
            keyring: gpg.export(&fingerprint, false),
            keyring_armored: gpg.export(&fingerprint, true),
            fingerprint,
            signing_key,
            published,
            shared,
            gpg,
            root,
        }
    }
}

/// A started [`DebianArchive`]; dropping it stops the server, the gpg agent, and removes the files.
#[derive(Debug)]
pub struct RunningDebianArchive {
    // Declared first so the server stops before its directory is removed.
    _server: Server,
    base_url: String,
    suite: String,
    keyring: Vec<u8>,
    keyring_armored: Vec<u8>,
    fingerprint: String,
    signing_key: String,
    published: Vec<PublishedDeb>,
    shared: Arc<Shared>,
    gpg: Gpg,
    root: tempfile::TempDir,
}

impl RunningDebianArchive {
    /// The archive root, `http://127.0.0.1:PORT` (what a `sources.list` line names), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The suite's directory name.
    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// `http://127.0.0.1:PORT/dists/SUITE/InRelease`.
    pub fn inrelease_url(&self) -> String {
        format!("{}/dists/{}/InRelease", self.base_url, self.suite)
    }

    /// The URL of `path` below the archive root (`pool/…`, `dists/…`).
    pub fn file_url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// The public key as `gpg --export` writes it (binary), the archive keyring to verify with.
    pub fn keyring(&self) -> &[u8] {
        &self.keyring
    }

    /// The public key as `gpg --export --armor` writes it.
    pub fn keyring_armored(&self) -> &[u8] {
        &self.keyring_armored
    }

    /// The primary key's fingerprint (uppercase hex, as gpg prints it).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The fingerprint of the key that signed the `InRelease` (the primary key or its subkey).
    pub fn signing_key(&self) -> &str {
        &self.signing_key
    }

    /// Every published `.deb`, in the order added.
    pub fn published(&self) -> &[PublishedDeb] {
        &self.published
    }

    /// The published `.deb` named `name`.
    pub fn deb(&self, name: &str) -> &PublishedDeb {
        self.published
            .iter()
            .find(|deb| deb.name == name)
            .unwrap_or_else(|| panic!("no .deb named {name} was published"))
    }

    /// The directory files are served from.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests()
    }

    /// Flips one byte in the middle of the published `.deb` named `name`: its size stays, its sha256 no longer
    /// matches the index.
    pub fn tamper_deb(&self, name: &str) {
        let path = self.root.path().join(&self.deb(name).filename);
        let mut bytes = std::fs::read(&path).expect("read .deb");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).expect("write .deb");
    }

    /// Changes the signed text of the `InRelease` after signing (`Suite: SUITE` becomes `Suite: SUITEx`), leaving
    /// the signature as it was.
    pub fn tamper_inrelease(&self) {
        let path = self.inrelease_path();
        let text = std::fs::read_to_string(&path).expect("read InRelease");
        let from = format!("\nSuite: {}\n", self.suite);
        assert!(text.contains(&from), "InRelease has no Suite line");
        let altered = text.replacen(&from, &format!("\nSuite: {}x\n", self.suite), 1);
        std::fs::write(&path, altered).expect("write InRelease");
    }

    /// Re-signs the `InRelease` with a new key that is not in [`RunningDebianArchive::keyring`]; returns that
    /// key's fingerprint.
    pub fn resign_with_other_key(&self) -> String {
        let other = self
            .gpg
            .generate_key("someone else <other@hstore.invalid>", "ed25519");
        let release = self
            .root
            .path()
            .join("dists")
            .join(&self.suite)
            .join("Release");
        let inrelease = self.gpg.clearsign(&other, &release);
        std::fs::write(self.inrelease_path(), inrelease).expect("write InRelease");
        other
    }

    fn inrelease_path(&self) -> PathBuf {
        self.root
            .path()
            .join("dists")
            .join(&self.suite)
            .join("InRelease")
    }
}

/// `gpg` with its own home directory.
#[derive(Debug)]
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Self {
        // A short path: gpg-agent's socket lives in the home, and socket paths are limited to ~108 bytes.
        let home = tempfile::Builder::new()
            .prefix("hgpg")
            .tempdir_in("/tmp")
            .expect("gpg home");
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let output = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("run gpg (install gnupg: the Debian archive fixture signs with it)");
        assert!(
            output.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Fingerprints of `key`'s primary key and subkeys, in gpg's order.
    fn fingerprints(&self, key: &str) -> Vec<String> {
        let listing = String::from_utf8(self.run(&["--with-colons", "--list-keys", key]))
            .expect("gpg output");
        listing
            .lines()
            .filter_map(|line| line.strip_prefix("fpr:"))
            .filter_map(|rest| rest.split(':').find(|field| !field.is_empty()))
            .map(str::to_owned)
            .collect()
    }

    /// Makes a new signing-only primary key with `user_id`; returns its fingerprint.
    fn generate_key(&self, user_id: &str, algorithm: &str) -> String {
        self.run(&["--quick-gen-key", user_id, algorithm, "sign", "never"]);
        self.fingerprints(user_id)
            .into_iter()
            .next()
            .expect("the new key's fingerprint")
    }

    /// Adds a signing subkey to `primary`; returns its fingerprint.
    fn add_signing_subkey(&self, primary: &str, algorithm: &str) -> String {
        self.run(&["--quick-add-key", primary, algorithm, "sign", "never"]);
        self.fingerprints(primary)
            .into_iter()
            .nth(1)
            .expect("the new subkey's fingerprint")
    }

    /// Clearsigns `file` with exactly `key` (the `!` stops gpg from picking a subkey of its own).
    fn clearsign(&self, key: &str, file: &Path) -> Vec<u8> {
        let file = file.to_str().expect("UTF-8 path");
        self.run(&[
            "--local-user",
            &format!("{key}!"),
            "--digest-algo",
            "SHA256",
            "--output",
            "-",
            "--clearsign",
            file,
        ])
    }

    fn export(&self, key: &str, armor: bool) -> Vec<u8> {
        if armor {
            self.run(&["--armor", "--export", key])
        } else {
            self.run(&["--export", key])
        }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // Stops the agent gpg started for this home (and only that one).
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create archive dirs");
    std::fs::write(path, bytes).expect("write archive file");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = xz2::write::XzEncoder::new(Vec::new(), 6);
    encoder.write_all(bytes).expect("xz");
    encoder.finish().expect("xz")
}

/// The pool directory of a package: `pool/main/g/gcc/`, `pool/main/libc/libc6/`.
fn pool_directory(name: &str) -> String {
    let prefix = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    format!("pool/main/{prefix}/{name}")
}

/// Builds `spec` with `dpkg-deb --build` into the pool under `root`.
fn build_deb(spec: &DebSpec, root: &Path, work: &Path) -> PublishedDeb {
    let staging = work.join(format!("{}_{}", spec.name, spec.architecture));
    let debian = staging.join("DEBIAN");
    std::fs::create_dir_all(&debian).expect("create DEBIAN");
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: hstore tests <tests@hstore.invalid>\n",
        spec.name, spec.version, spec.architecture
    );
    for (name, value) in &spec.fields {
        writeln!(control, "{name}: {value}").expect("write to String");
    }
    writeln!(
        control,
        "Description: {} (a test package)\n built by hstore's DebianArchive fixture",
        spec.name
    )
    .expect("write to String");
    std::fs::write(debian.join("control"), control).expect("write control");
    for (path, contents, mode) in &spec.files {
        let target = staging.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("create data dirs");
        std::fs::write(&target, contents).expect("write data file");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))
            .expect("chmod data file");
    }
    let version = spec
        .version
        .split_once(':')
        .map_or(spec.version.as_str(), |(_, rest)| rest);
    let filename = format!(
        "{}/{}_{version}_{}.deb",
        pool_directory(&spec.name),
        spec.name,
        spec.architecture
    );
    let output = root.join(&filename);
    std::fs::create_dir_all(output.parent().expect("parent")).expect("create pool dirs");
    let status = Command::new("dpkg-deb")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&staging)
        .arg(&output)
        .output()
        .expect("run dpkg-deb (install dpkg: the Debian archive fixture builds real packages)");
    assert!(
        status.status.success(),
        "dpkg-deb --build {} failed: {}",
        spec.name,
        String::from_utf8_lossy(&status.stderr)
    );
    let bytes = std::fs::read(&output).expect("read .deb");
    PublishedDeb {
        name: spec.name.clone(),
        version: spec.version.clone(),
        architecture: spec.architecture.clone(),
        filename,
        size: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    }
}

/// The `Packages` paragraph of `deb`: its control file as `dpkg-deb --field` prints it, then where it is and what
/// it hashes to (what `apt-ftparchive packages` writes).
fn index_paragraph(deb: &PublishedDeb, root: &Path) -> String {
    let output = Command::new("dpkg-deb")
        .arg("--field")
        .arg(root.join(&deb.filename))
        .output()
        .expect("run dpkg-deb --field");
    assert!(
        output.status.success(),
        "dpkg-deb --field {} failed",
        deb.name
    );
    let mut paragraph = String::from_utf8(output.stdout).expect("UTF-8 control");
    if !paragraph.ends_with('\n') {
        paragraph.push('\n');
    }
    write!(
        paragraph,
        "Filename: {}\nSize: {}\nSHA256: {}\n",
        deb.filename, deb.size, deb.sha256
    )
    .expect("write to String");
    paragraph
}
