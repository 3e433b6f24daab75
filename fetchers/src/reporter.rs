//! [`Reporter`]: how fetchers tell the CLI about progress and warnings without printing.

/// Receives download progress. Implementations must be cheap: they are called for every chunk.
pub trait Reporter: Send + Sync {
    /// A download started; `size` is the expected length if known. Returns an id for the other calls.
    fn on_download_start(&self, url: &str, size: Option<u64>) -> usize;
    /// `bytes` more bytes arrived for download `id`.
    fn on_download_progress(&self, id: usize, bytes: u64);
    /// Download `id` finished (successfully or not).
    fn on_download_complete(&self, id: usize);
    /// An artifact is now in the store (`kind` is `crate`, `git`…; `name` is human-readable).
    fn on_artifact(&self, kind: &str, name: &str) {
        let _ = (kind, name);
    }
    /// Something the user should act on although the run goes on (a target lock could not probe on this machine).
    fn on_warning(&self, message: &str) {
        let _ = message;
    }
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn on_download_start(&self, _url: &str, _size: Option<u64>) -> usize {
        0
    }
    fn on_download_progress(&self, _id: usize, _bytes: u64) {}
    fn on_download_complete(&self, _id: usize) {}
}
