//! Where a cache lives: parsing a cache URL ([`CacheUrl`]) and opening its backend ([`Cache`]).
//!
//! - `s3://BUCKET[/PREFIX]`: `object_store`'s S3 client, configured the way the AWS tools are. [`S3Settings`]
//!   carries what the CLI read from `AWS_*` variables and the shared `~/.aws/config` / `~/.aws/credentials` files
//!   (this crate reads no environment itself). Path-style requests, so any S3-compatible server works; plain
//!   `http://` endpoints are allowed (a cluster's Garage on its own network).
//! - `http://…`, `https://…`: `object_store`'s HTTP client (GET, PUT; MKCOL for parent directories, as WebDAV wants).
//! - `file:///DIR`: `object_store`'s local file system store (writes go to a temp file and are renamed into place,
//!   so a reader on NFS/Lustre never sees a half-written pack).
//!
//! Every backend retries failed requests with exponential backoff (`object_store`'s retry: 10 tries within 3 min by
//! default; [`Cache::open`] shortens the backoff when `fast_retries` is set, for tests).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::error::{Error, Result};

/// A parsed cache URL.
#[derive(Clone, PartialEq, Eq)]
pub enum CacheUrl {
    /// `s3://BUCKET[/PREFIX]`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it (no leading or trailing `/`; may be empty).
        prefix: String,
    },
    /// `http(s)://…`: the base URL (user info kept for the request, never shown).
    Http {
        /// The base URL.
        url: url::Url,
    },
    /// `file:///DIR`.
    File {
        /// The directory.
        dir: PathBuf,
    },
}

impl CacheUrl {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact(text),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|error| invalid(&error.to_string()))?;
        match url.scheme() {
            "s3" => {
                let bucket = url
                    .host_str()
                    .filter(|host| !host.is_empty())
                    .ok_or_else(|| invalid("it names no bucket (`s3://BUCKET[/PREFIX]`)"))?
                    .to_owned();
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "credentials do not belong in a cache URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                    ));
                }
                let prefix = url.path().trim_matches('/').to_owned();
                Ok(CacheUrl::S3 { bucket, prefix })
            }
            "http" | "https" => Ok(CacheUrl::Http { url }),
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| invalid("it is not an absolute local path (`file:///DIR`)"))?;
                Ok(CacheUrl::File { dir })
            }
            other => Err(invalid(&format!(
                "unknown scheme `{other}` (expected s3, http, https or file)"
            ))),
        }
    }
}

impl fmt::Display for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            CacheUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            CacheUrl::Http { url } => f.write_str(&redact(url.as_str())),
            CacheUrl::File { dir } => write!(f, "file://{}", dir.display()),
        }
    }
}

impl fmt::Debug for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `text` with any `user:password@` removed.
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

/// S3 settings, as the AWS tools take them: each is `(key, value)` with keys in `object_store`'s spelling of the
/// AWS variables (`aws_endpoint_url`, `aws_region`, `aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`…). The CLI fills this from the environment first, then the shared config files.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// The settings, in the order given; a later key does not override an earlier one.
    pub values: Vec<(String, String)>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys only: values may be secrets.
        f.debug_list()
            .entries(self.values.iter().map(|(key, _)| key))
            .finish()
    }
}

impl S3Settings {
    /// Adds `key = value` unless `key` is already set.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if !self.values.iter().any(|(existing, _)| existing == key) {
            self.values.push((key.to_owned(), value.to_owned()));
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(existing, _)| existing == key)
            .map(|(_, value)| value.as_str())
    }

    /// Values that must never be shown.
    fn secrets(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|(key, value)| {
                !value.is_empty()
                    && matches!(
                        key.as_str(),
                        "aws_access_key_id" | "aws_secret_access_key" | "aws_session_token"
                    )
            })
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// How to open a cache.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// S3 settings (ignored for other schemes).
    pub s3: S3Settings,
    /// Where fetched pack indexes are kept between runs (content-addressed, so never stale).
    pub index_cache: Option<PathBuf>,
    /// Retry quickly (tests): 10 ms initial backoff instead of 100 ms.
    pub fast_retries: bool,
}

/// An open cache: a backend, the base path inside it, and what is needed to keep messages free of secrets.
pub struct Cache {
    pub(crate) url: CacheUrl,
    pub(crate) backend: Arc<dyn ObjectStore>,
    pub(crate) base: ObjectPath,
    secrets: Vec<String>,
    pub(crate) local_indexes: Option<PathBuf>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Opens the cache at `url` (no request is made yet).
    pub fn open(url: &CacheUrl, options: &OpenOptions) -> Result<Self> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(if options.fast_retries { 10 } else { 100 }),
                max_backoff: Duration::from_secs(if options.fast_retries { 1 } else { 15 }),
                base: 2.0,
            },
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
        };
        let secrets = options.s3.secrets();
        let configure = |error: object_store::Error| Error::Configure {
            url: url.to_string(),
            message: scrub(&error.to_string(), &secrets),
        };
        let (backend, base): (Arc<dyn ObjectStore>, String) = match url {
            CacheUrl::S3 { bucket, prefix } => {
                // No SHA-256 of each body (on our side to sign it, on the server's to check it): every object is
                // verified by its address on the way in, and an index by its name, so the signature need not
                // cover the bytes. The request itself is still signed.
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_unsigned_payload(true);
                for (key, value) in &options.s3.values {
                    let key = key.parse().map_err(configure)?;
                    builder = builder.with_config(key, value);
                }
                let endpoint = options.s3.get("aws_endpoint_url");
                let mut client = ClientOptions::new().with_timeout(Duration::from_secs(300));
                if endpoint.is_some_and(|endpoint| endpoint.starts_with("http://")) {
                    client = client.with_allow_http(true);
                }
                let backend = builder
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map_err(configure)?;
                (Arc::new(backend), join(prefix, crate::CACHE_DIR))
            }
            CacheUrl::Http { url: base_url } => {
                let client = ClientOptions::new()
                    .with_timeout(Duration::from_secs(300))
                    .with_allow_http(true);
                let backend = HttpBuilder::new()
                    .with_url(base_url.as_str())
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map_err(configure)?;
                (Arc::new(backend), crate::CACHE_DIR.to_owned())
            }
            CacheUrl::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|source| Error::Local {
                    action: "create the cache directory",
                    path: dir.clone(),
                    source,
                })?;
                let backend = LocalFileSystem::new_with_prefix(dir).map_err(configure)?;
                (Arc::new(backend), crate::CACHE_DIR.to_owned())
            }
        };
        Ok(Self {
            url: url.clone(),
            backend,
            base: ObjectPath::from(base),
            secrets,
            local_indexes: options.index_cache.clone(),
        })
    }

    /// The cache URL (safe to show).
    pub fn url(&self) -> &CacheUrl {
        &self.url
    }

    /// The path of `relative` (e.g. `packs/ab.idx`) inside the cache.
    pub(crate) fn path(&self, relative: &str) -> ObjectPath {
        ObjectPath::from(join(self.base.as_ref(), relative))
    }

    /// A backend error, with secrets removed.
    pub(crate) fn backend_error(
        &self,
        operation: &'static str,
        path: &ObjectPath,
        error: &object_store::Error,
    ) -> Error {
        let message = scrub(&error.to_string(), &self.secrets);
        let refused_write = operation == "put"
            && ["405", "403", "501", "Method Not Allowed", "Forbidden"]
                .iter()
                .any(|needle| message.contains(needle));
        Error::Backend {
            url: self.url.to_string(),
            operation,
            path: path.to_string(),
            message,
            refused_write,
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// `text` with every secret replaced.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        assert_eq!(
            CacheUrl::parse("s3://bucket/some/prefix/").unwrap(),
            CacheUrl::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            CacheUrl::parse("file:///srv/cache").unwrap(),
            CacheUrl::File {
                dir: PathBuf::from("/srv/cache")
            }
        );
        assert!(matches!(
            CacheUrl::parse("https://u:p@host/c").unwrap(),
            CacheUrl::Http { .. }
        ));
        assert_eq!(
            CacheUrl::parse("https://u:p@host/c").unwrap().to_string(),
            "https://host/c"
        );
        let error = CacheUrl::parse("s3://key:secret@bucket").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(CacheUrl::parse("ftp://host/x").is_err());
        assert!(CacheUrl::parse("s3:///nobucket").is_err());
    }

    #[test]
    fn scrubs_secrets() {
        assert_eq!(
            scrub(
                "InvalidAccessKeyId: GK123 with secret abc",
                &["GK123".into(), "abc".into()]
            ),
            "InvalidAccessKeyId: [redacted] with secret [redacted]"
        );
    }
}
