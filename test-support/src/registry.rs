//! [`TestRegistry`]: a loopback package registry for tests (after cargo's `registry.rs` and uv's `network.rs`).
//!
//! It binds `127.0.0.1:0` (never another interface) and serves, from a temporary directory:
//!
//! ```text
//! /index/config.json                  {"dl": "http://127.0.0.1:PORT/dl", "api": null}
//! /index/3/f/foo, /index/ba/r-/bar-x  cargo sparse index: one JSON line per version
//! /dl/{name}/{version}/download       the .crate (cargo's default `dl` form)
//! /simple/                            PEP 503 root
//! /simple/{project}/                  PEP 691 JSON for `Accept: application/vnd.pypi.simple.v1+json`, else PEP 503 HTML
//! /packages/{wheel file name}         the wheels
//! /anything/else                      files added with [`TestRegistry::file`]
//! ```
//!
//! Packages are real (their bytes come from [`crate::files`]): a `.crate` is a deterministic gzip'd tar that cargo unpacks and builds, a wheel is a zip pip
//! accepts. Both are byte-for-byte reproducible (fixed mtimes, modes and owners), so their checksums are stable
//! across runs and machines.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use crate::files::{deterministic_tar_gz, normalize_project, sha256_hex};
pub use crate::server::{Fault, Request};
use crate::server::{Server, Shared};

/// What a crate built by [`TestRegistry::crate_with`] contains.
#[derive(Debug, Clone, Default)]
pub struct CrateSpec {
    /// Normal dependencies as `(name, version)`; the requirement is `^version`.
    pub deps: Vec<(&'static str, &'static str)>,
    /// Extra files as `(path inside the package, contents)`; `src/lib.rs` replaces the default one.
    pub files: Vec<(&'static str, &'static str)>,
    /// Whether the index marks the version yanked.
    pub yanked: bool,
    /// The manifest's `license` (an SPDX expression, as crates.io requires), if any.
    pub license: Option<&'static str>,
}

/// A crate version as published.
#[derive(Debug, Clone)]
struct PublishedCrate {
    name: String,
    version: String,
    checksum: String,
    index_line: String,
}

/// A wheel as published.
#[derive(Debug, Clone)]
struct PublishedWheel {
    project: String,
    version: String,
    filename: String,
    sha256: String,
}

/// Builder for the loopback registry; [`TestRegistry::start`] serves it.
#[derive(Debug)]
pub struct TestRegistry {
    listener: TcpListener,
    root: tempfile::TempDir,
    base_url: String,
    crates: Vec<PublishedCrate>,
    wheels: Vec<PublishedWheel>,
    shared: Arc<Shared>,
}

/// Where cargo's index keeps `name` (lowercased): `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`.
pub fn index_path(name: &str) -> String {
    let name = name.to_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

fn crate_bytes(name: &str, version: &str, spec: &CrateSpec) -> Vec<u8> {
    let license = spec
        .license
        .map(|license| format!("license = \"{license}\"\n"))
        .unwrap_or_default();
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n{license}\n[lib]\npath = \"src/lib.rs\"\n"
    );
    for (dependency, requirement) in &spec.deps {
        write!(
            manifest,
            "\n[dependencies.{dependency}]\nversion = \"{requirement}\"\n"
        )
        .expect("write to String");
    }
    let lib = spec
        .files
        .iter()
        .find(|(path, _)| *path == "src/lib.rs")
        .map_or_else(
            || format!("//! The `{name}` test crate.\n\npub fn name() -> &'static str {{\n    \"{name}\"\n}}\n"),
            |(_, contents)| (*contents).to_owned(),
        );
    let prefix = format!("{name}-{version}");
    let mut files = vec![
        (
            format!("{prefix}/Cargo.toml"),
            manifest.clone().into_bytes(),
        ),
        (format!("{prefix}/Cargo.toml.orig"), manifest.into_bytes()),
        (format!("{prefix}/src/lib.rs"), lib.into_bytes()),
    ];
    for (path, contents) in &spec.files {
        if *path != "src/lib.rs" {
            files.push((format!("{prefix}/{path}"), contents.as_bytes().to_vec()));
        }
    }
    deterministic_tar_gz(&files)
}

/// A minimal, valid, deterministic wheel for `project` `version` with one platform `tag` (`py3-none-any`): the
/// PEP 691 fixture's wheel ([`crate::pypi::build_wheel`]) with no dependencies.
pub fn wheel_bytes(project: &str, version: &str, tag: &str) -> (String, Vec<u8>) {
    crate::pypi::build_wheel(&crate::pypi::WheelSpec::new(project, version, tag))
}

impl TestRegistry {
    /// Binds `127.0.0.1:0`; nothing is served until [`TestRegistry::start`].
    #[expect(
        clippy::new_without_default,
        reason = "binding a socket is not a default value"
    )]
    pub fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let root = tempfile::tempdir().expect("registry temp dir");
        let registry = TestRegistry {
            listener,
            root,
            base_url,
            crates: Vec::new(),
            wheels: Vec::new(),
            shared: Arc::default(),
        };
        let config = serde_json::json!({ "dl": format!("{}/dl", registry.base_url), "api": null });
        registry.write("/index/config.json", config.to_string().as_bytes())
    }

    fn write(self, url_path: &str, bytes: &[u8]) -> Self {
        let relative = url_path.trim_start_matches('/');
        assert!(
            !relative.split('/').any(|component| component == ".."),
            "`..` in {url_path}"
        );
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create registry dirs");
        std::fs::write(&path, bytes).expect("write registry file");
        self
    }

    /// Publishes a crate with a default `src/lib.rs` and no dependencies.
    #[must_use]
    pub fn crate_(self, name: &str, version: &str) -> Self {
        self.crate_with(name, version, CrateSpec::default())
    }

    /// Publishes a crate as described by `spec`: the `.crate` under `dl/`, and a line in its index file.
    #[must_use]
    pub fn crate_with(mut self, name: &str, version: &str, spec: CrateSpec) -> Self {
        let bytes = crate_bytes(name, version, &spec);
        let CrateSpec { deps, yanked, .. } = spec;
        let checksum = sha256_hex(&bytes);
        let deps: Vec<_> = deps
            .iter()
            .map(|(dependency, version)| {
                serde_json::json!({
                    "name": dependency,
                    "req": format!("^{version}"),
                    "features": [],
                    "optional": false,
                    "default_features": true,
                    "target": null,
                    "kind": "normal",
                })
            })
            .collect();
        let line = serde_json::json!({
            "name": name,
            "vers": version,
            "deps": deps,
            "cksum": checksum,
            "features": {},
            "yanked": yanked,
        });
        self.crates.push(PublishedCrate {
            name: name.to_owned(),
            version: version.to_owned(),
            checksum,
            index_line: line.to_string(),
        });
        let mut index = String::new();
        for published in &self.crates {
            if published.name.eq_ignore_ascii_case(name) {
                index.push_str(&published.index_line);
                index.push('\n');
            }
        }
        self.write(&format!("/dl/{name}/{version}/download"), &bytes)
            .write(&format!("/index/{}", index_path(name)), index.as_bytes())
    }

    /// Publishes a minimal wheel and regenerates the project's PEP 503/691 pages.
    #[must_use]
    pub fn wheel(mut self, project: &str, version: &str, tag: &str) -> Self {
        let (filename, bytes) = wheel_bytes(project, version, tag);
        let normalized = normalize_project(project);
        self.wheels.push(PublishedWheel {
            project: normalized.clone(),
            version: version.to_owned(),
            filename: filename.clone(),
            sha256: sha256_hex(&bytes),
        });
        let wheels: Vec<_> = self
            .wheels
            .iter()
            .filter(|wheel| wheel.project == normalized)
            .cloned()
            .collect();
        let url = |wheel: &PublishedWheel| format!("{}/packages/{}", self.base_url, wheel.filename);
        let mut versions: Vec<_> = wheels.iter().map(|wheel| wheel.version.clone()).collect();
        versions.dedup();
        let json = serde_json::json!({
            "meta": { "api-version": "1.1" },
            "name": normalized,
            "versions": versions,
            "files": wheels.iter().map(|wheel| serde_json::json!({
                "filename": wheel.filename,
                "url": url(wheel),
                "hashes": { "sha256": wheel.sha256 },
            })).collect::<Vec<_>>(),
        });
        let mut links = String::new();
        for wheel in &wheels {
            writeln!(
                links,
                "    <a href=\"{}#sha256={}\">{}</a><br/>",
                url(wheel),
                wheel.sha256,
                wheel.filename
            )
            .expect("write to String");
        }
        let html = format!(
            "<!DOCTYPE html>\n<html>\n  <head><meta name=\"pypi:repository-version\" content=\"1.1\"></head>\n  \
             <body>\n{links}  </body>\n</html>\n"
        );
        let mut projects: Vec<_> = self
            .wheels
            .iter()
            .map(|wheel| wheel.project.clone())
            .collect();
        projects.sort();
        projects.dedup();
        let mut root = String::new();
        for project in &projects {
            writeln!(root, "<a href=\"/simple/{project}/\">{project}</a>")
                .expect("write to String");
        }
        self.write(&format!("/packages/{filename}"), &bytes)
            .write(
                &format!("/simple/{normalized}/index.json"),
                json.to_string().as_bytes(),
            )
            .write(&format!("/simple/{normalized}/index.html"), html.as_bytes())
            .write(
                "/simple/index.html",
                format!("<!DOCTYPE html>\n<html><body>\n{root}</body></html>\n").as_bytes(),
            )
    }

    /// Serves `bytes` at `url_path` (`/files/tool-1.0.tar.gz`).
    #[must_use]
    pub fn file(self, url_path: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.write(url_path, bytes.as_ref())
    }

    /// Arms `fault` for the next `times` requests of `url_path`; faults armed on one path fire in order.
    #[must_use]
    pub fn fault(self, url_path: &str, fault: Fault, times: usize) -> Self {
        self.shared.arm(url_path, fault, times);
        self
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// Starts serving on a background thread; the server stops when the result is dropped.
    pub fn start(self) -> RunningRegistry {
        let server = Server::start(
            self.listener,
            self.root.path().to_path_buf(),
            Arc::clone(&self.shared),
        );
        RunningRegistry {
            _server: server,
            base_url: self.base_url,
            crates: self.crates,
            wheels: self.wheels,
            shared: self.shared,
            root: self.root,
        }
    }
}

/// A started [`TestRegistry`]; dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct RunningRegistry {
    // Declared first so the server stops before its directory is removed; only its `Drop` matters.
    _server: Server,
    base_url: String,
    crates: Vec<PublishedCrate>,
    wheels: Vec<PublishedWheel>,
    shared: Arc<Shared>,
    root: tempfile::TempDir,
}

impl RunningRegistry {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The sparse index as cargo's config spells it: `sparse+http://127.0.0.1:PORT/index/`.
    pub fn crates_index_url(&self) -> String {
        format!("sparse+{}/index/", self.base_url)
    }

    /// The sparse index as a plain HTTP URL: `http://127.0.0.1:PORT/index/`.
    pub fn index_url(&self) -> String {
        format!("{}/index/", self.base_url)
    }

    /// The `dl` value of the index's `config.json`: `http://127.0.0.1:PORT/dl`.
    pub fn dl_url(&self) -> String {
        format!("{}/dl", self.base_url)
    }

    /// Where a crate downloads from: `{dl}/{name}/{version}/download`.
    pub fn crate_url(&self, name: &str, version: &str) -> String {
        format!("{}/{name}/{version}/download", self.dl_url())
    }

    /// The PEP 503/691 index root: `http://127.0.0.1:PORT/simple/`.
    pub fn simple_url(&self) -> String {
        format!("{}/simple/", self.base_url)
    }

    /// The full URL of a path served by this registry.
    pub fn file_url(&self, url_path: &str) -> String {
        format!("{}{url_path}", self.base_url)
    }

    /// The directory files are served from (tests may change files in place).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// sha256 hex of a published `.crate`, as Cargo.lock's `checksum` records it.
    pub fn checksum(&self, name: &str, version: &str) -> String {
        self.crates
            .iter()
            .find(|published| published.name == name && published.version == version)
            .unwrap_or_else(|| panic!("crate {name} {version} was not published"))
            .checksum
            .clone()
    }

    /// sha256 hex and file name of a published wheel.
    pub fn wheel_sha256(&self, project: &str, version: &str) -> (String, String) {
        let project = normalize_project(project);
        let wheel = self
            .wheels
            .iter()
            .find(|wheel| wheel.project == project && wheel.version == version)
            .unwrap_or_else(|| panic!("wheel {project} {version} was not published"));
        (wheel.sha256.clone(), wheel.filename.clone())
    }

    /// Arms `fault` for the next `times` requests of `url_path`, while serving.
    pub fn fault(&self, url_path: &str, fault: Fault, times: usize) {
        self.shared.arm(url_path, fault, times);
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests()
    }
}
