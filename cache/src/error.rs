//! The cache crate's one error enum. Messages name the cache by its URL with any user info removed, and a
//! backend's own message is scrubbed of the configured credentials before it is kept (S3 servers echo the access
//! key id in some error bodies), so no credential reaches a log or a terminal.

use hstore_store::Digest;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cache URL is not one this hstore understands.
    #[error("`{url}` is not a cache URL: {reason}")]
    InvalidUrl {
        /// What was given (user info removed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The backend could not be set up (bad S3 settings, bad endpoint).
    #[error("cannot open cache `{url}`: {message}")]
    Configure {
        /// The cache.
        url: String,
        /// What the client library said, credentials scrubbed.
        message: String,
    },
    /// A request to the cache failed (after the client's retries).
    #[error("cache `{url}`: failed to {operation} `{path}`: {message}")]
    Backend {
        /// The cache.
        url: String,
        /// "get", "put", "list"…
        operation: &'static str,
        /// The object path inside the cache.
        path: String,
        /// What the client library said, credentials scrubbed.
        message: String,
        /// Whether the server refused a write (405/403/501): a read-only cache.
        refused_write: bool,
    },
    /// A pack index failed its checks (wrong name hash, bad magic, truncated).
    #[error("cache `{url}`: pack index `{id}` is damaged: {problem}")]
    DamagedIndex {
        /// The cache.
        url: String,
        /// The pack id.
        id: String,
        /// What is wrong, with the values involved.
        problem: String,
    },
    /// An object from the cache failed verification (wrong address, wrong length, bad zstd): it was not stored.
    #[error(
        "cache `{url}`: object {address} (pack `{pack}`) failed verification; it was not stored"
    )]
    DamagedObject {
        /// The cache.
        url: String,
        /// The object.
        address: Digest,
        /// The pack it came from.
        pack: String,
        /// What the check found.
        #[source]
        source: Box<hstore_store::Error>,
    },
    /// A build record was refused (unsigned, untrusted, bad signature, malformed).
    #[error("cache `{url}`: build record `{key}` refused: {reason}")]
    RefusedRecord {
        /// The cache.
        url: String,
        /// The build key (hex).
        key: String,
        /// Why, in words.
        reason: String,
    },
    /// The local store failed underneath.
    #[error(transparent)]
    Store(#[from] hstore_store::Error),
    /// Collecting a closure failed (an object missing from the local store).
    #[error(transparent)]
    Closure(#[from] hstore_store::bundle::Error),
    /// A local file (the index cache) could not be read or written.
    #[error("failed to {action} `{}`", path.display())]
    Local {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A background task died.
    #[error("a cache worker task failed: {message}")]
    Task {
        /// The join error, in words.
        message: String,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidUrl { .. } => Some(
                "name a cache as `s3://BUCKET[/PREFIX]`, `https://HOST/PATH` or `file:///DIR`".into(),
            ),
            Error::Configure { .. } => Some(
                "S3 caches read AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or ~/.aws/config and ~/.aws/credentials, profile AWS_PROFILE)".into(),
            ),
            Error::Backend {
                refused_write: true,
                ..
            } => Some(
                "the server refuses writes: push to a writable URL (nginx needs `dav_methods PUT;` and a writable root), or only pull from this one".into(),
            ),
            Error::Backend { .. } => Some(
                "check that the cache is reachable and the credentials allow this; retries already happened".into(),
            ),
            Error::DamagedIndex { .. } | Error::DamagedObject { .. } => Some(
                "the cache holds damaged data: the object is skipped in favour of the next cache or upstream; push again from a good store to repair it".into(),
            ),
            Error::RefusedRecord { .. } => Some(
                "trust the signer with `--trust KEY.pub` (or list it in `[caches] trusted-keys` of hstore.toml) if you mean \
                 to, or push the record again with `--sign` by a trusted key; without a record, `hstore build` rebuilds"
                    .into(),
            ),
            Error::Store(error) => error.hint(),
            Error::Closure(error) => error.hint(),
            Error::Local { .. } | Error::Task { .. } => None,
        }
    }
}
