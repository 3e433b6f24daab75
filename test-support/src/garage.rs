//! [`GarageCluster`]: a real three-node Garage cluster (the S3-compatible distributed object store, `cargo install
//! garage`) on 127.0.0.1, replication factor 3, with one bucket and one key, for the S3 cache backend.
//!
//! Each node has its own config, metadata and data directories and its own RPC and S3 ports; the nodes are
//! connected and given a layout with the `garage` CLI, exactly as an operator would. Garage is AGPL and runs only as
//! a separate server process, never linked. Every node is killed when the handle drops; [`GarageCluster::kill_node`]
//! kills one early (a dead node mid-pull).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::free_port;

/// The S3 region the cluster answers to.
pub const GARAGE_REGION: &str = "garage";
/// The bucket created.
pub const GARAGE_BUCKET: &str = "hstore-cache";
/// Access key id imported (Garage ids are `GK` + 24 hex digits).
pub const GARAGE_KEY_ID: &str = "GK0123456789abcdef01234567";
/// Its secret (64 hex digits). Tests check it never appears in hstore's output.
pub const GARAGE_SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";
/// The cluster's RPC secret.
const RPC_SECRET: &str = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6";

struct Node {
    child: Option<Child>,
    config: PathBuf,
    s3_port: u16,
}

/// A running three-node Garage cluster; all nodes are killed on drop.
pub struct GarageCluster {
    nodes: Vec<Node>,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

/// The garage binary: `$HSTORE_TEST_GARAGE`, else `garage` on PATH, else `~/.cargo/bin/garage`.
fn garage_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HSTORE_TEST_GARAGE") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("garage"))
            .find(|path| path.exists())
    });
    on_path.unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".cargo/bin/garage")
    })
}

impl GarageCluster {
    /// Starts three nodes, joins them, applies a layout, creates the bucket and key. Panics (failing the test)
    /// when `garage` is missing: `.ci/run` installs it with `cargo install garage --locked`.
    pub fn start() -> Self {
        let binary = garage_binary();
        assert!(
            binary.exists(),
            "garage is not installed (`{}`): `cargo install garage --locked` (.ci/run does)",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("garage dir");
        let mut nodes = Vec::new();
        for index in 0..3 {
            let root = dir.path().join(format!("node{index}"));
            std::fs::create_dir_all(root.join("meta")).unwrap();
            std::fs::create_dir_all(root.join("data")).unwrap();
            let rpc_port = free_port();
            let s3_port = free_port();
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{root}/meta\"\ndata_dir = \"{root}/data\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nconsistency_mode = \"consistent\"\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_secret = \"{RPC_SECRET}\"\n\n[s3_api]\ns3_region = \"{GARAGE_REGION}\"\n\
                     api_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage.localhost\"\n",
                    root = root.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(root.join("server.log")).unwrap();
            let child = Command::new(&binary)
                .arg("-c")
                .arg(&config)
                .arg("server")
                .env("RUST_LOG", "garage=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| panic!("start `{}`: {error}", binary.display()));
            nodes.push(Node {
                child: Some(child),
                config,
                s3_port,
            });
        }
        let cluster = Self { nodes, binary, dir };
        let ids: Vec<String> = (0..3)
            .map(|index| {
                let output = cluster.retry(index, &["node", "id", "-q"]);
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            })
            .collect();
        for id in &ids[1..] {
            cluster.retry(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap_or(id);
            cluster.retry(
                0,
                &["layout", "assign", "-z", "dc1", "-c", "1GB", &short[..16]],
            );
        }
        cluster.retry(0, &["layout", "apply", "--version", "1"]);
        cluster.retry(0, &["bucket", "create", GARAGE_BUCKET]);
        cluster.retry(
            0,
            &[
                "key",
                "import",
                "--yes",
                "-n",
                "hstore",
                GARAGE_KEY_ID,
                GARAGE_SECRET,
            ],
        );
        cluster.retry(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                GARAGE_BUCKET,
                "--key",
                "hstore",
            ],
        );
        cluster
    }

    /// Runs `garage -c <node's config> ARGS` until it succeeds (the cluster takes a moment to converge).
    fn retry(&self, node: usize, args: &[&str]) -> Output {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = Command::new(&self.binary)
                .arg("-c")
                .arg(&self.nodes[node].config)
                .args(args)
                .env("RUST_LOG", "error")
                .output()
                .expect("run garage");
            if output.status.success() {
                return output;
            }
            assert!(
                Instant::now() <= deadline,
                "`garage {}` failed:\n{}{}\nserver log:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(self.dir.path().join(format!("node{node}/server.log")))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The S3 endpoint of node `index` (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[index].s3_port)
    }

    /// The AWS-style environment for a client talking to node `index`.
    pub fn env(&self, index: usize) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint(index)),
            ("AWS_REGION", GARAGE_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", GARAGE_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", GARAGE_SECRET.to_owned()),
        ]
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{GARAGE_BUCKET}/{prefix}")
    }

    /// Kills node `index` (SIGKILL), as a crashed machine.
    pub fn kill_node(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The directory holding every node's state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill_node(index);
        }
    }
}
