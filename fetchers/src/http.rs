//! [`Downloader`]: the HTTP engine every source kind downloads through.
//!
//! Invariants:
//! - Bodies stream to a caller-provided file (a temp file in the store's `tmp/`) while sha256 is computed; memory
//!   stays bounded by one chunk whatever the body size. Nothing here touches the store's objects: callers hand the
//!   finished, verified file to [`hstore_store::Store`].
//! - A pinned sha256 that does not match is [`Error::Sha256Mismatch`] naming the URL, expected and computed values;
//!   the caller then drops the temp file, so nothing is stored.
//! - Concurrency is bounded twice: a global semaphore and one per `host:port`, so one slow registry cannot starve the
//!   rest and no host gets more than its share of connections (HTTP/2 multiplexes them where the server allows).
//! - Retries: connection errors, timeouts, bodies cut short, 429 and 5xx are retried up to
//!   [`DownloadOptions::max_attempts`] times with exponential backoff and jitter (a `Retry-After` in seconds wins).
//!   A body cut short resumes with `Range: bytes=N-`; the server must answer 206 with a `Content-Range` starting at
//!   N, otherwise the download restarts from byte 0 (and the hash with it).
//! - Proxies come from the environment (`HTTPS_PROXY`, `NO_PROXY`, reqwest's `system-proxy`), except that loopback
//!   hosts are never proxied. TLS uses rustls with the platform verifier, which on Linux trusts the system CA store
//!   (`/etc/ssl/certs`), so TLS-intercepting corporate mirrors work when their CA is installed there.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::reporter::Reporter;

/// Tuning for a [`Downloader`].
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Downloads in flight overall.
    pub max_concurrent: usize,
    /// Downloads in flight per `host:port`.
    pub max_per_host: usize,
    /// Attempts per download, the first included.
    pub max_attempts: u32,
    /// Sleep between retries (tests turn this off with `HSTORE_TEST_NO_RETRY_DELAY=1`).
    pub retry_delay: bool,
    /// Refuse every request (`--offline`).
    pub offline: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            max_per_host: 32,
            max_attempts: 5,
            retry_delay: true,
            offline: false,
        }
    }
}

/// What a finished download was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// sha256 of the body, lowercase hex.
    pub sha256: String,
    /// Body length in bytes.
    pub size: u64,
}

/// The download engine. Cheap to share behind an [`Arc`].
pub struct Downloader {
    client: reqwest::Client,
    loopback_client: reqwest::Client,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    options: DownloadOptions,
    reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One attempt's outcome when it did not finish.
enum Retry {
    /// Try again after this long (resuming from what was written).
    After(Option<Duration>, String),
    /// Give up with this error.
    Fail(Error),
}

impl Downloader {
    /// A downloader with its own connection pool.
    pub fn new(options: DownloadOptions, reporter: Arc<dyn Reporter>) -> Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("hstore/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(options.max_per_host)
        };
        let client = builder().build().map_err(|source| Error::Http {
            url: String::new(),
            source,
        })?;
        let loopback_client = builder().no_proxy().build().map_err(|source| Error::Http {
            url: String::new(),
            source,
        })?;
        Ok(Self {
            client,
            loopback_client,
            global: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
            hosts: Mutex::new(HashMap::new()),
            options,
            reporter,
        })
    }

    /// Whether requests are refused.
    pub fn offline(&self) -> bool {
        self.options.offline
    }

    fn host_semaphore(&self, url: &reqwest::Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = match self.hosts.lock() {
            Ok(hosts) => hosts,
            Err(poisoned) => poisoned.into_inner(),
        };
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.max_per_host.max(1))))
            .clone()
    }

    fn client_for(&self, url: &reqwest::Url) -> &reqwest::Client {
        let loopback = match url.host() {
            Some(::url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(::url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(::url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if loopback {
            &self.loopback_client
        } else {
            &self.client
        }
    }

    /// Fetches a small document (an index `config.json`) into memory. Retries like [`Downloader::download`].
    pub async fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        let temp = tempfile::tempfile().map_err(Error::io("create temp file for", url))?;
        let mut file = tokio::fs::File::from_std(temp);
        let downloaded = self.download_into(url, &mut file, None, url).await?;
        if downloaded.size > limit {
            return Err(Error::Transfer {
                url: url.to_owned(),
                message: format!("response larger than {limit} bytes"),
            });
        }
        let mut bytes = Vec::with_capacity(downloaded.size as usize);
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(Error::io("read temp file for", url))?;
        tokio::io::AsyncReadExt::read_to_end(&mut file, &mut bytes)
            .await
            .map_err(Error::io("read temp file for", url))?;
        Ok(bytes)
    }

    /// Downloads `url` into the file at `dest` (created or truncated), checking `expected_sha256` if given.
    /// `what` names the artifact in errors.
    pub async fn download(
        &self,
        url: &str,
        dest: &std::path::Path,
        expected_sha256: Option<&str>,
        what: &str,
    ) -> Result<Downloaded> {
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io("create", dest))?;
        let downloaded = self
            .download_into(url, &mut file, expected_sha256, what)
            .await?;
        file.flush().await.map_err(Error::io("write", dest))?;
        Ok(downloaded)
    }

    async fn download_into(
        &self,
        url: &str,
        file: &mut tokio::fs::File,
        expected_sha256: Option<&str>,
        what: &str,
    ) -> Result<Downloaded> {
        if self.options.offline {
            return Err(Error::Offline {
                what: url.to_owned(),
            });
        }
        let parsed = reqwest::Url::parse(url).map_err(|error| Error::Transfer {
            url: url.to_owned(),
            message: format!("invalid URL: {error}"),
        })?;
        let host = self.host_semaphore(&parsed);
        let _global = self.global.acquire().await.map_err(|_| Error::Task {
            message: "semaphore closed".into(),
        })?;
        let _host = host.acquire().await.map_err(|_| Error::Task {
            message: "semaphore closed".into(),
        })?;

        let id = self.reporter.on_download_start(url, None);
        let mut state = Progress {
            offset: 0,
            hasher: Sha256::new(),
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.attempt(&parsed, file, &mut state, id).await {
                Ok(()) => break Ok(()),
                Err(Retry::Fail(error)) => break Err(error),
                Err(Retry::After(delay, message)) => {
                    if attempt >= self.options.max_attempts {
                        break Err(Error::Transfer {
                            url: url.to_owned(),
                            message: format!("{message} (gave up after {attempt} attempts)"),
                        });
                    }
                    tracing::debug!(url, attempt, "retrying: {message}");
                    if self.options.retry_delay {
                        tokio::time::sleep(delay.unwrap_or_else(|| backoff(attempt))).await;
                    }
                }
            }
        };
        self.reporter.on_download_complete(id);
        result?;
        let sha256 = hex::encode(state.hasher.finalize());
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(Error::Sha256Mismatch {
                what: what.to_owned(),
                url: url.to_owned(),
                expected: expected.to_owned(),
                actual: sha256,
            });
        }
        Ok(Downloaded {
            sha256,
            size: state.offset,
        })
    }

    /// One request. On a retryable failure, `state` keeps what was written so the next attempt can resume.
    async fn attempt(
        &self,
        url: &reqwest::Url,
        file: &mut tokio::fs::File,
        state: &mut Progress,
        id: usize,
    ) -> Result<(), Retry> {
        let url_text = url.as_str();
        let io_fail = |error: std::io::Error| {
            Retry::Fail(Error::Transfer {
                url: url_text.to_owned(),
                message: format!("writing the temp file failed: {error}"),
            })
        };
        let mut request = self.client_for(url).get(url.clone());
        if state.offset > 0 {
            request = request.header(RANGE, format!("bytes={}-", state.offset));
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_builder() || error.is_redirect() => {
                return Err(Retry::Fail(Error::Http {
                    url: url_text.to_owned(),
                    source: error,
                }));
            }
            Err(error) => return Err(Retry::After(None, error_chain(&error))),
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(|seconds| Duration::from_secs(seconds.min(60)));
            return Err(Retry::After(
                retry_after,
                format!("server answered {status}"),
            ));
        }
        if !status.is_success() {
            return Err(Retry::Fail(Error::HttpStatus {
                url: url_text.to_owned(),
                status: status.as_u16(),
            }));
        }
        let mut total = response.content_length();
        if state.offset > 0 {
            let resumed = status == StatusCode::PARTIAL_CONTENT
                && response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_content_range)
                    .is_some_and(|(start, whole)| {
                        total = whole;
                        start == state.offset
                    });
            if resumed {
                tracing::debug!(url = url_text, offset = state.offset, "resumed with Range");
            } else {
                // The server ignored or mangled the Range request: start over.
                tracing::debug!(
                    url = url_text,
                    "server did not honour Range; restarting from byte 0"
                );
                state.offset = 0;
                state.hasher = Sha256::new();
                file.set_len(0).await.map_err(io_fail)?;
                file.seek(SeekFrom::Start(0)).await.map_err(io_fail)?;
                total = response.content_length();
                if status == StatusCode::PARTIAL_CONTENT {
                    return Err(Retry::After(
                        None,
                        "server sent an unexpected partial response".into(),
                    ));
                }
            }
        } else {
            file.set_len(0).await.map_err(io_fail)?;
            file.seek(SeekFrom::Start(0)).await.map_err(io_fail)?;
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk).await.map_err(io_fail)?;
                    state.hasher.update(&chunk);
                    state.offset += chunk.len() as u64;
                    self.reporter.on_download_progress(id, chunk.len() as u64);
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(Retry::After(
                        None,
                        format!(
                            "connection dropped after {} bytes: {}",
                            state.offset,
                            error_chain(&error)
                        ),
                    ));
                }
            }
        }
        if let Some(total) = total
            && state.offset < total
        {
            return Err(Retry::After(
                None,
                format!("body ended after {} of {total} bytes", state.offset),
            ));
        }
        Ok(())
    }
}

struct Progress {
    offset: u64,
    hasher: Sha256,
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, whole) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, whole.trim().parse().ok()))
}

/// Exponential backoff with jitter: 250 ms × 2^(attempt-1), capped at 10 s, plus up to 50 %.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(10_000);
    let jitter = rand::thread_rng().gen_range(0..=base / 2);
    Duration::from_millis(base + jitter)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(
            backoff(1) >= Duration::from_millis(250) && backoff(1) <= Duration::from_millis(375)
        );
        assert!(backoff(20) <= Duration::from_secs(15));
    }
}
