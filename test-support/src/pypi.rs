//! [`TestIndex`]: a loopback PEP 691 (JSON simple API v1.1) index with real wheels, for the `requirements` tests.
//!
//! ```text
//! http://127.0.0.1:PORT/simple/{project}/   PEP 691 JSON: files with `hashes`, `requires-python`, `yanked`,
//!                                           `size`, `upload-time` (and `versions`, `meta.api-version = 1.1`)
//! http://localhost:PORT/files/{file name}   the wheels and sdists, on a second host name like files.pythonhosted.org
//! ```
//!
//! Wheels are real and importable: `{module}/__init__.py` sets `__version__` and `TAG`, and `METADATA` carries the
//! `Requires-Dist` and `Requires-Python` lines uv resolves with. Bytes are deterministic (fixed zip mtimes), so the
//! same spec gives the same sha256 on every run. Projects can be published while the index is serving (a new upload
//! after a lock), and a file can be tampered with in place (the page keeps the old sha256).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::files::{deterministic_tar_gz, normalize_project, sha256_hex};
use crate::server::{Request, Server, Shared};

/// The upload time of files published without one.
pub const DEFAULT_UPLOAD_TIME: &str = "2025-01-01T00:00:00Z";

/// A wheel to publish with [`TestIndex::wheel`].
#[derive(Debug, Clone)]
pub struct WheelSpec {
    /// Project name as written (`Foo_Bar`).
    pub project: String,
    /// Version.
    pub version: String,
    /// The compressed tag set (`cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64`).
    pub tags: String,
    /// `Requires-Dist` lines.
    pub requires: Vec<String>,
    /// `Requires-Python`, in METADATA and on the page.
    pub requires_python: Option<String>,
    /// Yanked on the page.
    pub yanked: bool,
    /// `upload-time` on the page.
    pub upload_time: String,
    /// `License-Expression` in METADATA (PEP 639).
    pub license_expression: Option<String>,
    /// The legacy `License` field in METADATA.
    pub license: Option<String>,
}

impl WheelSpec {
    /// A wheel of `project` `version` with `tags`, no dependencies, uploaded at [`DEFAULT_UPLOAD_TIME`].
    pub fn new(project: &str, version: &str, tags: &str) -> Self {
        Self {
            project: project.to_owned(),
            version: version.to_owned(),
            tags: tags.to_owned(),
            requires: Vec::new(),
            requires_python: None,
            yanked: false,
            upload_time: DEFAULT_UPLOAD_TIME.to_owned(),
            license_expression: None,
            license: None,
        }
    }

    /// Declares `License-Expression: EXPRESSION` (PEP 639).
    #[must_use]
    pub fn license_expression(mut self, expression: &str) -> Self {
        self.license_expression = Some(expression.to_owned());
        self
    }

    /// Declares the legacy `License: TEXT`.
    #[must_use]
    pub fn license(mut self, text: &str) -> Self {
        self.license = Some(text.to_owned());
        self
    }

    /// Adds `Requires-Dist` lines.
    #[must_use]
    pub fn requires(mut self, requirements: &[&str]) -> Self {
        self.requires
            .extend(requirements.iter().map(|r| (*r).to_owned()));
        self
    }

    /// Marks the file yanked.
    #[must_use]
    pub fn yanked(mut self) -> Self {
        self.yanked = true;
        self
    }

    /// Sets the upload time (`YYYY-MM-DDTHH:MM:SSZ`).
    #[must_use]
    pub fn uploaded(mut self, time: &str) -> Self {
        time.clone_into(&mut self.upload_time);
        self
    }
}

/// A published file, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile {
    /// File name.
    pub filename: String,
    /// Absolute URL (on the `localhost` host name).
    pub url: String,
    /// sha256 hex of the bytes the page promises.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    requires_python: Option<String>,
    yanked: bool,
    upload_time: String,
}

/// A running loopback PEP 691 index; dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct TestIndex {
    // Declared first so the server stops before its directory is removed.
    _server: Server,
    root: tempfile::TempDir,
    port: u16,
    projects: Mutex<BTreeMap<String, Vec<IndexedFile>>>,
    shared: Arc<Shared>,
}

/// A minimal, valid, deterministic wheel for `spec`: `(file name, bytes)`.
pub fn build_wheel(spec: &WheelSpec) -> (String, Vec<u8>) {
    use zip::write::SimpleFileOptions;
    let module = normalize_project(&spec.project).replace('-', "_");
    let filename = format!("{module}-{}-{}.whl", spec.version, spec.tags);
    let dist_info = format!("{module}-{}.dist-info", spec.version);
    let mut metadata = format!(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
        spec.project, spec.version
    );
    if let Some(expression) = &spec.license_expression {
        let _ = writeln!(metadata, "License-Expression: {expression}");
    }
    if let Some(license) = &spec.license {
        let _ = writeln!(metadata, "License: {license}");
    }
    if let Some(requires_python) = &spec.requires_python {
        let _ = writeln!(metadata, "Requires-Python: {requires_python}");
    }
    for requirement in &spec.requires {
        let _ = writeln!(metadata, "Requires-Dist: {requirement}");
    }
    let mut wheel =
        String::from("Wheel-Version: 1.0\nGenerator: hstore-test-support\nRoot-Is-Purelib: true\n");
    let (pythons, rest) = spec.tags.split_once('-').expect("python-abi-platform");
    let (abis, platforms) = rest.split_once('-').expect("python-abi-platform");
    for python in pythons.split('.') {
        for abi in abis.split('.') {
            for platform in platforms.split('.') {
                let _ = writeln!(wheel, "Tag: {python}-{abi}-{platform}");
            }
        }
    }
    let mut files = vec![
        (
            format!("{module}/__init__.py"),
            format!(
                "__version__ = \"{}\"\nTAG = \"{}\"\n",
                spec.version, spec.tags
            ),
        ),
        (format!("{dist_info}/METADATA"), metadata),
        (format!("{dist_info}/WHEEL"), wheel),
    ];
    let mut record = String::new();
    for (path, contents) in &files {
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(contents.as_bytes()));
        let _ = writeln!(record, "{path},sha256={digest},{}", contents.len());
    }
    let _ = writeln!(record, "{dist_info}/RECORD,,");
    files.push((format!("{dist_info}/RECORD"), record));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (path, contents) in files {
        writer.start_file(path, options).expect("wheel entry");
        writer.write_all(contents.as_bytes()).expect("wheel data");
    }
    (
        filename,
        writer.finish().expect("finish wheel").into_inner(),
    )
}

impl TestIndex {
    /// Binds `127.0.0.1:0` and starts serving an empty index.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let root = tempfile::tempdir().expect("index temp dir");
        let shared: Arc<Shared> = Arc::default();
        let server = Server::start(listener, root.path().to_path_buf(), Arc::clone(&shared));
        Self {
            _server: server,
            root,
            port,
            projects: Mutex::default(),
            shared,
        }
    }

    /// The index URL recipes name: `http://127.0.0.1:PORT/simple`.
    pub fn index_url(&self) -> String {
        format!("http://127.0.0.1:{}/simple", self.port)
    }

    /// Where files are served: `http://localhost:PORT/files/`.
    pub fn files_url(&self) -> String {
        format!("http://localhost:{}/files/", self.port)
    }

    /// Publishes a wheel (while serving) and rewrites its project's page; returns the listed file.
    pub fn wheel(&self, spec: &WheelSpec) -> IndexedFile {
        let (filename, bytes) = build_wheel(spec);
        self.publish(
            &spec.project,
            filename,
            &bytes,
            spec.requires_python.clone(),
            spec.yanked,
            &spec.upload_time,
        )
    }

    /// Publishes an existing wheel file as it is (a real upstream wheel, e.g. Debian's
    /// `/usr/share/python-wheels/setuptools-*.whl`) and rewrites its project's page; returns the listed file.
    pub fn wheel_file(&self, project: &str, filename: &str, bytes: &[u8]) -> IndexedFile {
        self.publish(
            project,
            filename.to_owned(),
            bytes,
            None,
            false,
            DEFAULT_UPLOAD_TIME,
        )
    }

    /// Publishes an sdist only (`{project}-{version}.tar.gz`).
    pub fn sdist(&self, project: &str, version: &str) -> IndexedFile {
        let base = format!("{}-{version}", normalize_project(project).replace('-', "_"));
        let bytes = deterministic_tar_gz(&[(
            format!("{base}/PKG-INFO"),
            format!("Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n").into_bytes(),
        )]);
        self.publish(
            project,
            format!("{base}.tar.gz"),
            &bytes,
            None,
            false,
            DEFAULT_UPLOAD_TIME,
        )
    }

    fn publish(
        &self,
        project: &str,
        filename: String,
        bytes: &[u8],
        requires_python: Option<String>,
        yanked: bool,
        upload_time: &str,
    ) -> IndexedFile {
        self.write(&format!("files/{filename}"), bytes);
        let file = IndexedFile {
            url: format!("{}{filename}", self.files_url()),
            filename,
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            requires_python,
            yanked,
            upload_time: upload_time.to_owned(),
        };
        let normalized = normalize_project(project);
        let mut projects = self
            .projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let files = projects.entry(normalized.clone()).or_default();
        files.retain(|existing| existing.filename != file.filename);
        files.push(file.clone());
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        let page = serde_json::json!({
            "meta": { "api-version": "1.1" },
            "name": normalized,
            "versions": [],
            "files": files.iter().map(|file| serde_json::json!({
                "filename": file.filename,
                "url": file.url,
                "hashes": { "sha256": file.sha256 },
                "requires-python": file.requires_python,
                "yanked": file.yanked,
                "size": file.size,
                "upload-time": file.upload_time,
            })).collect::<Vec<_>>(),
        });
        self.write(
            &format!("simple/{normalized}/index.json"),
            page.to_string().as_bytes(),
        );
        let mut links = String::new();
        for file in files.iter() {
            let _ = writeln!(
                links,
                "<a href=\"{}#sha256={}\">{}</a><br/>",
                file.url, file.sha256, file.filename
            );
        }
        self.write(
            &format!("simple/{normalized}/index.html"),
            format!("<!DOCTYPE html><html><body>\n{links}</body></html>\n").as_bytes(),
        );
        file
    }

    /// Replaces a served file's bytes (its page keeps the old sha256): a tampered mirror.
    pub fn tamper(&self, filename: &str) {
        let path = self.root.path().join("files").join(filename);
        let mut bytes = std::fs::read(&path).expect("published file");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).expect("tamper");
    }

    /// The directory files are served from.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests()
    }

    fn write(&self, relative: &str, bytes: &[u8]) {
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create index dirs");
        // Write then rename, so a request never sees half a page.
        let temp = path.with_extension("partial");
        std::fs::write(&temp, bytes).expect("write index file");
        std::fs::rename(&temp, &path).expect("publish index file");
    }
}
