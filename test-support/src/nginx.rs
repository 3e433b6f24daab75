//! [`Nginx`]: a real nginx (Debian's `nginx-core`) serving a directory on a loopback port, for the HTTP cache
//! backend. Writable servers enable WebDAV `PUT`/`MKCOL`/`DELETE` (`ngx_http_dav_module`); read-only ones answer
//! 405 to anything but GET/HEAD, as a static mirror would. The process runs in the foreground (`daemon off`,
//! `master_process off`) so dropping the handle stops it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; stopped on drop.
pub struct Nginx {
    child: Child,
    port: u16,
    state: tempfile::TempDir,
}

/// The nginx binary: `$HSTORE_TEST_NGINX`, else `nginx` on PATH, else Debian's `/usr/sbin/nginx`.
fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HSTORE_TEST_NGINX") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nginx"))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// A free loopback port (bound and released; nginx binds it right after).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl Nginx {
    /// Serves `root` on `127.0.0.1:<free port>`; `writable` enables WebDAV PUT. Panics (failing the test) when
    /// nginx is missing: `.ci/run` installs `nginx-core`.
    pub fn start(root: &Path, writable: bool) -> Self {
        let binary = nginx_binary();
        assert!(
            binary.exists(),
            "nginx is not installed (`{}`): `apt-get install nginx-core` (.ci/run does)",
            binary.display()
        );
        let state = tempfile::tempdir().expect("nginx state dir");
        let port = free_port();
        let dir = state.path().display().to_string();
        let methods = if writable {
            "dav_methods PUT DELETE MKCOL;\n            create_full_put_path on;\n            dav_access user:rw group:r all:r;"
        } else {
            "limit_except GET HEAD { deny all; }"
        };
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {dir}/access.log;\n    client_body_temp_path {dir}/body;\n    \
             proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    \
             scgi_temp_path {dir}/scgi;\n    client_max_body_size 0;\n    \
             server {{\n        listen 127.0.0.1:{port};\n        root {root};\n        \
             location / {{\n            {methods}\n        }}\n    }}\n}}\n",
            root = root.display(),
        );
        let config_path = state.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .arg("-p")
            .arg(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start `{}`: {error}", binary.display()));
        let mut nginx = Self { child, port, state };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(nginx.state.path().join("error.log"))
                    .unwrap_or_default();
                panic!("nginx exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
