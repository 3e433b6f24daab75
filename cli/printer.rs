//! The one place hstore writes to the terminal: status lines and errors on stderr, data on stdout.
//! Meaning never depends on colour; colour is off for NO_COLOR and non-terminals.
#![expect(
    clippy::print_stderr,
    reason = "the printer is the CLI's only writer to stderr"
)]

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::args::{ColorChoice, GlobalArgs};
use crate::env_vars;

/// How a command ended when it did not error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// A check failed (verify found corruption, `--locked` found a stale lockfile).
    Failure,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
        }
    }
}

/// Writes status lines and errors to stderr.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
    progress: bool,
}

impl Printer {
    pub fn new(args: &GlobalArgs) -> Self {
        let terminal = io::stderr().is_terminal();
        let no_color = std::env::var_os(env_vars::NO_COLOR).is_some_and(|v| !v.is_empty());
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Self {
            quiet: args.quiet > 0,
            color,
            progress: terminal && !args.no_progress && args.quiet == 0,
        }
    }

    /// Whether progress bars may be drawn.
    pub fn progress_enabled(&self) -> bool {
        self.progress
    }

    /// A cargo-style status line: a right-aligned verb and a message.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.quiet {
            return;
        }
        if self.color {
            eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {message}");
        } else {
            eprintln!("{verb:>12} {message}");
        }
    }

    /// A warning the user should act on, shown even when quiet.
    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.color {
            eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
        } else {
            eprintln!("warning: {message}");
        }
    }

    /// Reports one failed item (the run goes on): `error:`, its causes and hints, as [`Printer::render_error`].
    pub fn item_error(&self, error: &(dyn std::error::Error + 'static)) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{label}: {error}");
        let mut source = error.source();
        let mut hints: Vec<String> = hint_of(error).into_iter().collect();
        while let Some(cause) = source {
            let _ = writeln!(stderr, "  caused by: {cause}");
            hints.extend(hint_of(cause));
            source = cause.source();
        }
        hints.dedup();
        for hint in hints {
            let _ = writeln!(stderr, "  hint: {hint}");
        }
    }

    /// Writes a line of plain text to stderr (diffs, lists), unless quiet.
    pub fn line(&self, text: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Renders an error chain with its hints; a broken pipe is a normal end (exit 0).
    pub fn render_error(&self, error: &anyhow::Error) -> ExitCode {
        if error.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        }) {
            return ExitCode::SUCCESS;
        }
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{label}: {error}");
        for cause in error.chain().skip(1) {
            let _ = writeln!(stderr, "  caused by: {cause}");
        }
        let hints: Vec<String> = error.chain().filter_map(hint_of).collect();
        if !hints.is_empty() {
            let _ = writeln!(stderr);
            for hint in hints {
                let _ = writeln!(stderr, "hint: {hint}");
            }
        }
        ExitCode::from(2)
    }
}

/// The hint of the first error type in the chain that has one.
fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use hstore_store::Hint;
    if let Some(error) = cause.downcast_ref::<hstore_store::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::archive::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::recipe::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_store::bundle::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_store::bundle::KeyError>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::lockfile::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_build::BuildError>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_cache::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_sandbox::Error>() {
        return error.hint();
    }
    None
}

/// Starts tracing: `-v` debug, `-vv` trace, `-q` errors only; RUST_LOG overrides.
pub fn init_logging(args: &GlobalArgs) {
    let level = match (args.quiet, args.verbose) {
        (q, _) if q > 0 => "error",
        (_, 0) => "warn",
        (_, 1) => "debug",
        _ => "trace",
    };
    let filter = std::env::var(env_vars::RUST_LOG)
        .ok()
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

/// A byte count for people: `1.5 GiB`, `312 KiB`, `17 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
