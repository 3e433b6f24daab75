//! A hand-rolled HTTP/1.1 file server on `127.0.0.1`, with fault injection, for [`crate::TestRegistry`].
//!
//! One thread accepts connections and one short-lived thread serves each of them; every response carries
//! `Connection: close`, so a connection is exactly one request. That keeps fault injection exact: a dropped body or
//! a wrong status affects exactly the request it was armed for.
//!
//! URL paths map onto files under a root directory. A path ending in `/` serves `index.json` when the request's
//! `Accept` header names [`PYPI_JSON`] and that file exists, otherwise `index.html`. `Range: bytes=N-`,
//! `bytes=N-M` and `bytes=-N` give `206` with `Content-Range`; `HEAD` gives the headers alone.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The PEP 691 JSON media type.
pub const PYPI_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// A misbehaviour armed for a path, see [`crate::TestRegistry::fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short body (`429` and `503` also carry `Retry-After: 0`).
    Status(u16),
    /// Serve bytes of the right length but wrong content (every byte inverted).
    WrongBytes,
    /// Send the headers with the full `Content-Length`, then `after` bytes of the body, then close the socket.
    DropMidBody {
        /// Body bytes sent before the connection is closed.
        after: usize,
    },
    /// Wait this long before answering, then answer normally.
    Slow {
        /// The delay in milliseconds.
        delay_ms: u64,
    },
}

/// One request the server answered, in arrival order; see [`crate::RunningRegistry::requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`…
    pub method: String,
    /// The URL path, without the query string.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The fault that fired for this request, if any.
    pub fault: Option<Fault>,
    /// The status sent (`0` if the request could not be parsed).
    pub status: u16,
}

/// State shared between the accept thread, connection threads and the test.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) faults: Mutex<HashMap<String, VecDeque<(Fault, usize)>>>,
    pub(crate) log: Mutex<Vec<Request>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole registry down with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn arm(&self, path: &str, fault: Fault, times: usize) {
        lock(&self.faults)
            .entry(path.to_owned())
            .or_default()
            .push_back((fault, times));
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let queue = faults.get_mut(path)?;
        while let Some((fault, times)) = queue.front_mut() {
            if *times == 0 {
                queue.pop_front();
                continue;
            }
            *times -= 1;
            return Some(*fault);
        }
        None
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        lock(&self.log).clone()
    }
}

/// A running server; dropping it stops the accept loop and joins its thread.
#[derive(Debug)]
pub(crate) struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(listener: TcpListener, root: PathBuf, shared: Arc<Shared>) -> Self {
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = Arc::clone(&stop);
        let accept_thread = std::thread::Builder::new()
            .name(format!("test-registry-{}", address.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let root = root.clone();
                    let shared = Arc::clone(&shared);
                    // Detached: each connection ends after one request or a 10 s read timeout.
                    let _ = std::thread::Builder::new()
                        .name("test-registry-connection".into())
                        .spawn(move || serve(stream, &root, &shared));
                }
            })
            .expect("spawn accept thread");
        Server {
            address,
            stop,
            accept_thread: Some(accept_thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking `accept` so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

struct Parsed {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn parse(stream: &TcpStream) -> Option<Parsed> {
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once(':')?;
        headers.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Some(Parsed {
        method,
        path,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Maps a URL path to a file under `root`, refusing anything that could climb out of it.
fn resolve(root: &Path, url_path: &str, wants_json: bool) -> Option<PathBuf> {
    let relative = url_path.strip_prefix('/')?;
    if relative
        .split('/')
        .any(|component| component == ".." || component == ".")
    {
        return None;
    }
    let mut path = root.join(relative);
    if url_path.ends_with('/') {
        let json = path.join("index.json");
        path = if wants_json && json.is_file() {
            json
        } else {
            path.join("index.html")
        };
    }
    path.is_file().then_some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.file_name().and_then(|name| name.to_str()) {
        Some("index.json") => PYPI_JSON,
        Some("index.html") => "text/html; charset=utf-8",
        Some(name)
            if Path::new(name)
                .extension()
                .is_some_and(|extension| extension == "json") =>
        {
            "application/json"
        }
        _ => "application/octet-stream",
    }
}

/// Parses `bytes=N-`, `bytes=N-M` or the suffix form `bytes=-N` (the last N bytes, which uv asks for to read a
/// wheel's zip directory) against a body of `len` bytes; `Err(())` means unsatisfiable.
fn parse_range(range: &str, len: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    if start.trim().is_empty() {
        let suffix: usize = end.trim().parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len - suffix.min(len), len - 1)));
    }
    let start: usize = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => len.saturating_sub(1),
        end => end.parse::<usize>().ok()?.min(len.saturating_sub(1)),
    };
    if start >= len || end < start {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

fn serve(mut stream: TcpStream, root: &Path, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(request) = parse(&stream) else {
        return;
    };
    let range = request.header("range").map(str::to_owned);
    let fault = shared.take_fault(&request.path);
    let mut entry = Request {
        method: request.method.clone(),
        path: request.path.clone(),
        range: range.clone(),
        fault,
        status: 0,
    };
    if let Some(Fault::Slow { delay_ms }) = fault {
        std::thread::sleep(Duration::from_millis(delay_ms));
    }
    let head = request.method == "HEAD";
    let wants_json = request
        .header("accept")
        .is_some_and(|accept| accept.contains(PYPI_JSON));

    let mut headers: Vec<(&str, String)> = Vec::new();
    let (status, body) = if let Some(Fault::Status(status)) = fault {
        if matches!(status, 429 | 503) {
            headers.push(("Retry-After", "0".into()));
        }
        (status, format!("injected {status}\n").into_bytes())
    } else if request.method != "GET" && !head {
        (405, b"only GET and HEAD\n".to_vec())
    } else if let Some(path) = resolve(root, &request.path, wants_json) {
        let mut body = std::fs::read(&path).expect("read served file");
        if fault == Some(Fault::WrongBytes) {
            for byte in &mut body {
                *byte = !*byte;
            }
        }
        headers.push(("Content-Type", content_type(&path).into()));
        headers.push(("Accept-Ranges", "bytes".into()));
        let len = body.len();
        match range.as_deref().and_then(|range| parse_range(range, len)) {
            Some(Ok((start, end))) => {
                headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
                (206, body[start..=end].to_vec())
            }
            Some(Err(())) => {
                headers.push(("Content-Range", format!("bytes */{len}")));
                (416, Vec::new())
            }
            None => (200, body),
        }
    } else {
        (
            404,
            format!("no such file `{}`\n", request.path).into_bytes(),
        )
    };
    entry.status = status;
    lock(&shared.log).push(entry);

    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (key, value) in headers {
        write!(response, "{key}: {value}\r\n").expect("write to String");
    }
    response.push_str("\r\n");
    let mut out = response.into_bytes();
    let cut = match fault {
        Some(Fault::DropMidBody { after }) => Some(after.min(body.len())),
        _ => None,
    };
    if !head {
        out.extend_from_slice(&body[..cut.unwrap_or(body.len())]);
    }
    let _ = stream.write_all(&out);
    let _ = stream.flush();
    if cut.is_some() {
        let _ = stream.shutdown(Shutdown::Both);
    } else {
        // Let the client read everything before the socket goes away.
        let _ = stream.shutdown(Shutdown::Write);
        let mut sink = [0; 1024];
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        while matches!(stream.read(&mut sink), Ok(read) if read > 0) {}
    }
}
