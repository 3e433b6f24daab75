//! Tests of the loopback registry: raw HTTP behaviour and faults, and real cargo and pip against it.

// clippy.toml's house rules are the product's: tests read their own switches and clean up fixtures by path.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use hstore_test_support::{
    CrateSpec, Fault, PYPI_JSON, RunningRegistry, TestRegistry, index_path, sha256_hex,
};

/// A response as read off the socket: status, headers (lowercased names), body, and whether it was complete.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one request and reads until the server closes the connection.
fn request(
    registry: &RunningRegistry,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Response {
    let address = registry.url().trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    for (key, value) in extra {
        write!(request, "{key}: {value}\r\n").expect("write to String");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("utf-8 headers");
    let mut lines = head.lines();
    let status = lines
        .next()
        .expect("status line")
        .split(' ')
        .nth(1)
        .expect("status")
        .parse()
        .expect("number");
    let headers = lines
        .map(|line| {
            let (key, value) = line.split_once(':').expect("header");
            (key.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(registry: &RunningRegistry, path: &str) -> Response {
    request(registry, "GET", path, &[])
}

#[test]
fn plain_files_ranges_and_head() {
    let content: Vec<u8> = (0..=255).cycle().take(1000).collect();
    let registry = TestRegistry::new()
        .file("/files/tool-1.0.tar.gz", &content)
        .start();
    assert!(registry.url().starts_with("http://127.0.0.1:"));

    let full = get(&registry, "/files/tool-1.0.tar.gz");
    assert_eq!(full.status, 200);
    assert_eq!(full.header("content-length"), Some("1000"));
    assert_eq!(full.body, content);

    let tail = request(
        &registry,
        "GET",
        "/files/tool-1.0.tar.gz",
        &[("Range", "bytes=600-")],
    );
    assert_eq!(tail.status, 206);
    assert_eq!(tail.header("content-range"), Some("bytes 600-999/1000"));
    assert_eq!(tail.body, &content[600..]);

    let middle = request(
        &registry,
        "GET",
        "/files/tool-1.0.tar.gz",
        &[("Range", "bytes=10-19")],
    );
    assert_eq!(
        (middle.status, middle.body.as_slice()),
        (206, &content[10..20])
    );

    let past = request(
        &registry,
        "GET",
        "/files/tool-1.0.tar.gz",
        &[("Range", "bytes=1000-")],
    );
    assert_eq!(
        (past.status, past.header("content-range")),
        (416, Some("bytes */1000"))
    );

    let head = request(&registry, "HEAD", "/files/tool-1.0.tar.gz", &[]);
    assert_eq!(
        (head.status, head.header("content-length"), head.body.len()),
        (200, Some("1000"), 0)
    );

    assert_eq!(get(&registry, "/files/missing").status, 404);
    assert_eq!(get(&registry, "/files/../index/config.json").status, 404);

    let log = registry.requests();
    assert_eq!(log.len(), 7);
    assert_eq!(log[1].range.as_deref(), Some("bytes=600-"));
    assert_eq!((log[4].method.as_str(), log[5].status), ("HEAD", 404));
}

#[test]
fn faults_fire_in_order_then_stop() {
    let content = b"0123456789".repeat(100);
    let registry = TestRegistry::new()
        .file("/files/x", &content)
        .fault("/files/x", Fault::Status(500), 1)
        .fault("/files/x", Fault::Status(429), 1)
        .fault("/files/x", Fault::WrongBytes, 1)
        .fault("/files/x", Fault::DropMidBody { after: 100 }, 1)
        .fault("/files/x", Fault::Slow { delay_ms: 300 }, 1)
        .start();

    assert_eq!(get(&registry, "/files/x").status, 500);
    let limited = get(&registry, "/files/x");
    assert_eq!(
        (limited.status, limited.header("retry-after")),
        (429, Some("0"))
    );

    let wrong = get(&registry, "/files/x");
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.body.len(), content.len());
    assert_ne!(sha256_hex(&wrong.body), sha256_hex(&content));

    let dropped = get(&registry, "/files/x");
    assert_eq!(dropped.header("content-length"), Some("1000"));
    assert_eq!(dropped.body, &content[..100]);

    let started = std::time::Instant::now();
    assert_eq!(get(&registry, "/files/x").body, content);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    assert_eq!(get(&registry, "/files/x").body, content);
    let fired: Vec<_> = registry
        .requests()
        .iter()
        .map(|request| request.fault)
        .collect();
    assert_eq!(
        fired,
        [
            Some(Fault::Status(500)),
            Some(Fault::Status(429)),
            Some(Fault::WrongBytes),
            Some(Fault::DropMidBody { after: 100 }),
            Some(Fault::Slow { delay_ms: 300 }),
            None,
        ]
    );

    // Faults can be armed while serving, too.
    registry.fault("/files/x", Fault::Status(404), 2);
    assert_eq!(get(&registry, "/files/x").status, 404);
    assert_eq!(get(&registry, "/files/x").status, 404);
    assert_eq!(get(&registry, "/files/x").status, 200);
}

#[test]
fn sparse_index_layout() {
    assert_eq!(index_path("a"), "1/a");
    assert_eq!(index_path("ab"), "2/ab");
    assert_eq!(index_path("abc"), "3/a/abc");
    assert_eq!(index_path("Serde_JSON"), "se/rd/serde_json");

    let registry = TestRegistry::new()
        .crate_("foo", "1.0.0")
        .crate_("foo", "1.1.0")
        .crate_with(
            "bar",
            "0.2.0",
            CrateSpec {
                deps: vec![("foo", "1.0.0")],
                ..CrateSpec::default()
            },
        )
        .start();
    let config: serde_json::Value =
        serde_json::from_slice(&get(&registry, "/index/config.json").body).expect("config.json");
    assert_eq!(config["dl"], registry.dl_url());

    let foo = String::from_utf8(get(&registry, "/index/3/f/foo").body).expect("utf-8");
    let versions: Vec<serde_json::Value> = foo
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["vers"], "1.0.0");
    assert_eq!(versions[0]["cksum"], registry.checksum("foo", "1.0.0"));
    let bar: serde_json::Value =
        serde_json::from_slice(&get(&registry, "/index/3/b/bar").body).expect("json");
    assert_eq!(bar["deps"][0]["name"], "foo");
    assert_eq!(bar["deps"][0]["req"], "^1.0.0");

    let crate_file = get(&registry, "/dl/foo/1.0.0/download");
    assert_eq!(
        sha256_hex(&crate_file.body),
        registry.checksum("foo", "1.0.0")
    );
    // Rebuilding gives the same bytes: checksums are stable across runs.
    let again = TestRegistry::new().crate_("foo", "1.0.0").start();
    assert_eq!(
        again.checksum("foo", "1.0.0"),
        registry.checksum("foo", "1.0.0")
    );
}

#[test]
fn pypi_simple_negotiates_json_and_html() {
    let registry = TestRegistry::new()
        .wheel("My.Pkg", "1.0", "py3-none-any")
        .start();
    let (sha256, filename) = registry.wheel_sha256("my-pkg", "1.0");
    assert_eq!(filename, "my_pkg-1.0-py3-none-any.whl");

    let json = request(
        &registry,
        "GET",
        "/simple/my-pkg/",
        &[("Accept", PYPI_JSON)],
    );
    assert_eq!(json.header("content-type"), Some(PYPI_JSON));
    let json: serde_json::Value = serde_json::from_slice(&json.body).expect("json");
    assert_eq!(json["meta"]["api-version"], "1.1");
    assert_eq!(json["name"], "my-pkg");
    assert_eq!(json["files"][0]["filename"], filename);
    assert_eq!(json["files"][0]["hashes"]["sha256"], sha256);

    let html = get(&registry, "/simple/my-pkg/");
    assert!(
        html.header("content-type")
            .is_some_and(|value| value.starts_with("text/html"))
    );
    let html = String::from_utf8(html.body).expect("utf-8");
    assert!(
        html.contains(&format!("/packages/{filename}#sha256={sha256}")),
        "{html}"
    );

    let wheel = get(&registry, &format!("/packages/{filename}"));
    assert_eq!(sha256_hex(&wheel.body), sha256);
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("spawn");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed:\n{stderr}");
    stderr
}

/// A cargo command isolated from the developer's cargo setup and from the outer `cargo test`.
fn cargo(project: &Path, cargo_home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if (name.starts_with("CARGO_") || name.starts_with("RUSTC") || name == "RUSTFLAGS")
            && name != "CARGO_HOME"
        {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .current_dir(project)
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .env("CARGO_NET_RETRY", "0")
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY");
    command
}

#[test]
fn real_cargo_fetches_and_builds_from_the_registry() {
    let registry = TestRegistry::new()
        .crate_("foo", "1.0.0")
        .crate_with(
            "bar",
            "0.2.0",
            CrateSpec {
                deps: vec![("foo", "1.0.0")],
                files: vec![(
                    "src/lib.rs",
                    "pub fn bar() -> &'static str {\n    foo::name()\n}\n",
                )],
                ..CrateSpec::default()
            },
        )
        .start();
    let temp = tempfile::tempdir().expect("tempdir");
    let project = temp.path().join("app");
    let cargo_home = temp.path().join("cargo-home");
    std::fs::create_dir_all(project.join("src")).expect("src");
    std::fs::create_dir_all(project.join(".cargo")).expect(".cargo");
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nbar = \"0.2.0\"\n",
    )
    .expect("manifest");
    std::fs::write(
        project.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\", bar::bar());\n}\n",
    )
    .expect("main");
    std::fs::write(
        project.join(".cargo/config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"test\"\n\n[source.test]\nregistry = \"{}\"\n",
            registry.crates_index_url()
        ),
    )
    .expect("config");

    run(&mut cargo(&project, &cargo_home, &["generate-lockfile"]));
    run(&mut cargo(&project, &cargo_home, &["fetch"]));
    let served = registry.requests().len();
    run(&mut cargo(&project, &cargo_home, &["build", "--offline"]));
    assert_eq!(
        registry.requests().len(),
        served,
        "`cargo build --offline` must not touch the network"
    );

    let lockfile = std::fs::read_to_string(project.join("Cargo.lock")).expect("Cargo.lock");
    let lock: toml_like::Lock = toml_like::parse(&lockfile);
    assert_eq!(
        lock.checksum("foo"),
        Some(registry.checksum("foo", "1.0.0")),
        "{lockfile}"
    );
    assert_eq!(
        lock.checksum("bar"),
        Some(registry.checksum("bar", "0.2.0")),
        "{lockfile}"
    );
    assert!(
        lockfile.contains("source = \"registry+https://github.com/rust-lang/crates.io-index\""),
        "{lockfile}"
    );

    let paths: Vec<_> = registry
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert!(
        paths.contains(&"/index/config.json".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/dl/foo/1.0.0/download".to_owned()),
        "{paths:?}"
    );
    let binary = project.join("target/debug/app");
    let output = Command::new(binary).output().expect("run app");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "foo\n");
}

/// Just enough of Cargo.lock's TOML to read `[[package]]` checksums without a TOML dependency.
mod toml_like {
    pub struct Lock(Vec<(String, Option<String>)>);

    pub fn parse(text: &str) -> Lock {
        let mut packages = Vec::new();
        for block in text.split("[[package]]").skip(1) {
            let field = |key: &str| {
                block.lines().find_map(|line| {
                    line.strip_prefix(&format!("{key} = \""))
                        .and_then(|rest| rest.strip_suffix('"'))
                        .map(str::to_owned)
                })
            };
            packages.push((field("name").expect("name"), field("checksum")));
        }
        Lock(packages)
    }

    impl Lock {
        pub fn checksum(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(package, _)| package == name)
                .and_then(|(_, checksum)| checksum.clone())
        }
    }
}

#[test]
fn real_pip_downloads_a_wheel() {
    // pip is one of the suite's tools (scripts/test-deps.sh installs python3-pip): missing, this fails, never skips.
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-m", "pip", "--version"])
                .output()
                .is_ok_and(|out| out.status.success())
        })
        .expect("a python with pip on PATH (scripts/test-deps.sh installs python3-pip)");
    let registry = TestRegistry::new()
        .wheel("pkg", "1.0", "py3-none-any")
        .start();
    let temp = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(python);
    command
        .args([
            "-m",
            "pip",
            "download",
            "--isolated",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-cache-dir",
        ])
        .args(["--index-url", &registry.simple_url(), "pkg==1.0", "-d"])
        .arg(temp.path())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL");
    run(&mut command);
    let (sha256, filename) = registry.wheel_sha256("pkg", "1.0");
    let downloaded = std::fs::read(temp.path().join(&filename)).expect("downloaded wheel");
    assert_eq!(sha256_hex(&downloaded), sha256);
    assert!(
        registry
            .requests()
            .iter()
            .any(|request| request.path == "/simple/pkg/")
    );
}
