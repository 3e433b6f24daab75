//! Every environment variable hstore reads, documented once.

/// The store directory (overrides the XDG default; `--store` overrides it).
pub const HSTORE_STORE: &str = "HSTORE_STORE";
/// Where rebuildable state goes (git repository cache); default `$XDG_CACHE_HOME/hstore` or `~/.cache/hstore`.
pub const HSTORE_CACHE: &str = "HSTORE_CACHE";
/// Base of the default store location (`$XDG_DATA_HOME/hstore`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Fallback base of the default store location (`~/.local/share/hstore`).
pub const HOME: &str = "HOME";
/// Disables colour when set to anything (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Log filter, overriding `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Base of the default cache location (`$XDG_CACHE_HOME/hstore`, else `~/.cache/hstore`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Tests only: when `1`, download retries happen without sleeping.
pub const HSTORE_TEST_NO_RETRY_DELAY: &str = "HSTORE_TEST_NO_RETRY_DELAY";
/// Tests only: seconds to move hstore's clock ahead (`hstore_store::clock`), so a test lets time pass without
/// sleeping.
pub const HSTORE_TEST_CLOCK_OFFSET: &str = "HSTORE_TEST_CLOCK_OFFSET";
/// Seconds since the Unix epoch to stamp into `hstore sbom` output (<https://reproducible-builds.org/specs/source-date-epoch/>);
/// unset, an SBOM has no wall-clock time.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The `uv` executable that resolves `requirements` sources (default: `uv` on `PATH`); its version goes into the
/// lockfile.
pub const HSTORE_UV: &str = "HSTORE_UV";
/// rustup's home (default `~/.rustup`): where `rust_toolchain` sources are found at lock time.
pub const RUSTUP_HOME: &str = "RUSTUP_HOME";
/// S3 caches: the endpoint (Garage, MinIO, Ceph RGW); as the AWS tools read it.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// S3 caches: an endpoint for S3 only (wins over `AWS_ENDPOINT_URL`).
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
/// S3 caches: the region (Garage's default is `garage`).
pub const AWS_REGION: &str = "AWS_REGION";
/// S3 caches: the region, if `AWS_REGION` is unset.
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// S3 caches: the access key id.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// S3 caches: the secret access key (never shown).
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// S3 caches: a session token.
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// S3 caches: the profile of the shared files (default `default`).
pub const AWS_PROFILE: &str = "AWS_PROFILE";
/// S3 caches: the shared config file (default `~/.aws/config`).
pub const AWS_CONFIG_FILE: &str = "AWS_CONFIG_FILE";
/// S3 caches: the shared credentials file (default `~/.aws/credentials`).
pub const AWS_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
