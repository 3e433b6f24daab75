//! [`ProgressReporter`]: the CLI's [`Reporter`], drawing one indicatif bar on a terminal (bytes and downloads in
//! flight) and cargo-style `Fetched` lines with `-v`; a fetcher's warnings go to the [`Printer`] above the bar. Off
//! the terminal it only counts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hstore_fetchers::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

/// Progress on stderr.
pub struct ProgressReporter {
    bar: Option<ProgressBar>,
    printer: Printer,
    verbose: bool,
    next_id: AtomicUsize,
    active: AtomicUsize,
    done: AtomicUsize,
    bytes: AtomicU64,
    artifacts: AtomicUsize,
}

impl ProgressReporter {
    /// A reporter drawing a bar when the printer allows progress.
    pub fn new(printer: &Printer, verbose: bool) -> Self {
        let bar = printer.progress_enabled().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:>10} {msg} {binary_bytes} ({binary_bytes_per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix("Fetching");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            printer: printer.clone(),
            verbose,
            next_id: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            artifacts: AtomicUsize::new(0),
        }
    }

    /// Artifacts that were added to the store during the run.
    pub fn artifacts_added(&self) -> usize {
        self.artifacts.load(Ordering::Relaxed)
    }

    /// Bytes downloaded.
    pub fn bytes_downloaded(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} downloads in flight, {} done,",
                self.active.load(Ordering::Relaxed),
                self.done.load(Ordering::Relaxed)
            ));
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_download_start(&self, _url: &str, _size: Option<u64>) -> usize {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.refresh();
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn on_download_progress(&self, _id: usize, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn on_download_complete(&self, _id: usize) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Relaxed);
        self.refresh();
    }

    fn on_artifact(&self, kind: &str, name: &str) {
        self.artifacts.fetch_add(1, Ordering::Relaxed);
        if self.verbose {
            match &self.bar {
                Some(bar) => {
                    bar.suspend(|| self.printer.status("Fetched", format!("{kind} {name}")));
                }
                None => self.printer.status("Fetched", format!("{kind} {name}")),
            }
        }
    }

    fn on_warning(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.printer.warn(message)),
            None => self.printer.warn(message),
        }
    }
}
