//! The shared context of one `lock` or `fetch` run: the store, the HTTP engine, git access, mirrors, `--offline`,
//! the progress sink, and per-run caches (a sparse index's `dl` template). Every source kind's module
//! (`git`, `crates`, `url`, `path`) takes a [`Fetcher`] and nothing else of the orchestrator, so the kinds depend on
//! this module and the orchestrator (`resolve`) depends on the kinds, never the other way round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hstore_store::Store;

use crate::archive::MaxUnpackedSize;
use crate::error::{Error, Result};
use crate::git::Git;
use crate::http::{DownloadOptions, Downloader};
use crate::mirrors::Mirrors;
use crate::reporter::Reporter;

/// How a [`Fetcher`] works.
#[derive(Clone, Debug)]
pub struct FetcherOptions {
    /// Where git repositories are cached (`HSTORE_CACHE`).
    pub cache_dir: PathBuf,
    /// URL rewrites.
    pub mirrors: Mirrors,
    /// Never touch the network.
    pub offline: bool,
    /// HTTP tuning.
    pub download: DownloadOptions,
    /// The `uv` executable that resolves `requirements` sources (`HSTORE_UV`, else `uv` on `PATH`).
    pub uv: PathBuf,
    /// rustup's home (`$RUSTUP_HOME`, else `~/.rustup`), where `rust_toolchain` sources are found; `None` when
    /// neither is known.
    pub rustup_home: Option<PathBuf>,
    /// The cap on what one downloaded archive (a `url` source, a crate) may unpack to (`--max-unpacked-size`).
    pub max_unpacked_size: MaxUnpackedSize,
}

/// Shared state for one lock or fetch run.
pub struct Fetcher {
    pub(crate) store: Arc<Store>,
    pub(crate) downloader: Downloader,
    pub(crate) git: Git,
    pub(crate) mirrors: Mirrors,
    pub(crate) offline: bool,
    pub(crate) reporter: Arc<dyn Reporter>,
    rustup_home: Option<PathBuf>,
    max_unpacked_size: MaxUnpackedSize,
    index_dl: tokio::sync::Mutex<HashMap<String, String>>,
    cache_dir: PathBuf,
    uv: PathBuf,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher writing into `store`.
    pub fn new(
        store: Arc<Store>,
        options: FetcherOptions,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let mut download = options.download;
        download.offline = options.offline;
        Ok(Self {
            downloader: Downloader::new(download, Arc::clone(&reporter))?,
            git: Git::new(&options.cache_dir, options.mirrors.clone(), options.offline),
            cache_dir: options.cache_dir,
            uv: options.uv,
            store,
            mirrors: options.mirrors,
            offline: options.offline,
            rustup_home: options.rustup_home,
            max_unpacked_size: options.max_unpacked_size,
            reporter,
            index_dl: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
    /// The HTTP engine.
    pub fn downloader(&self) -> &Downloader {
        &self.downloader
    }
    /// Git access.
    pub fn git(&self) -> &Git {
        &self.git
    }
    /// URL rewrites.
    pub fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }
    /// `--offline`.
    pub fn offline(&self) -> bool {
        self.offline
    }
    /// rustup's home, for `rust_toolchain` sources.
    pub fn rustup_home(&self) -> Option<&Path> {
        self.rustup_home.as_deref()
    }
    /// The cap on what one downloaded archive may unpack to.
    pub fn max_unpacked_size(&self) -> MaxUnpackedSize {
        self.max_unpacked_size
    }
    /// Progress sink.
    pub fn reporter(&self) -> &dyn Reporter {
        &*self.reporter
    }
    /// Where rebuildable state goes (git repositories, uv's cache).
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }
    /// The `uv` executable.
    pub fn uv(&self) -> &std::path::Path {
        &self.uv
    }

    /// The `dl` template of the sparse index at `index` (ending in `/`), from its `config.json`, once per run.
    pub async fn index_dl(&self, index: &str) -> Result<String> {
        let mut cache = self.index_dl.lock().await;
        if let Some(dl) = cache.get(index) {
            return Ok(dl.clone());
        }
        let config_url = format!("{index}config.json");
        let fetch_url = self.mirrors.rewrite(&config_url);
        let bytes = self.downloader.get_bytes(&fetch_url, 1 << 20).await?;
        #[derive(serde::Deserialize)]
        struct Config {
            dl: String,
        }
        let config: Config =
            serde_json::from_slice(&bytes).map_err(|error| Error::IndexConfig {
                url: fetch_url.clone(),
                message: error.to_string(),
            })?;
        cache.insert(index.to_owned(), config.dl.clone());
        Ok(config.dl)
    }
}
