//! The one place hstore writes to the terminal: status lines and errors on stderr, data on stdout.
//! Meaning never depends on colour; colour is off for NO_COLOR and non-terminals.

#![expect(
    clippy::disallowed_methods,
    reason = "logging is set up before settings exist: RUST_LOG and NO_COLOR are read here (clippy.toml)"
)]
#![expect(
    clippy::print_stderr,
    reason = "the printer is the CLI's only writer to stderr"
)]

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
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
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent switches read once from the arguments and the terminal"
)]
pub struct Printer {
    quiet: bool,
    color: bool,
    progress: bool,
    /// stderr is a terminal: control characters in reported text (a failed build's log tail) are escaped.
    escape: bool,
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
            escape: terminal,
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

    /// Reports one failed item (the run goes on), as [`Printer::report`] does.
    pub fn item_error(&self, error: &(dyn std::error::Error + 'static)) {
        self.report(Severity::Error, error);
    }

    /// The one way errors and their hints reach the user, shown even when quiet: `error: …` (or `warning: …`), a
    /// `  caused by: …` line per source, then a blank line and a `hint: …` line per distinct hint that an error of
    /// the chain has (the [`Hint`](hstore_store::Hint) trait; see [`hint_of`]). No hint is ever written as text.
    pub fn report(&self, severity: Severity, error: &(dyn std::error::Error + 'static)) {
        let (word, colour) = match severity {
            Severity::Error => ("error", "\x1b[1;31m"),
            Severity::Warning => ("warning", "\x1b[1;33m"),
        };
        // Messages carry text from outside (a build's log tail, a server's answer): on a terminal, never its
        // escape sequences.
        let shown = |text: String| {
            if self.escape {
                let mut escaped = String::with_capacity(text.len());
                escape_into(&text, &mut escaped);
                escaped
            } else {
                text
            }
        };
        let mut stderr = io::stderr().lock();
        let message = shown(error.to_string());
        if self.color {
            let _ = writeln!(stderr, "{colour}{word}\x1b[0m: {message}");
        } else {
            let _ = writeln!(stderr, "{word}: {message}");
        }
        let mut hints: Vec<String> = hint_of(error).into_iter().collect();
        let mut source = error.source();
        while let Some(cause) = source {
            let _ = writeln!(stderr, "  caused by: {}", shown(cause.to_string()));
            hints.extend(hint_of(cause));
            source = cause.source();
        }
        let mut seen = std::collections::HashSet::new();
        hints.retain(|hint| seen.insert(hint.clone()));
        if !hints.is_empty() {
            let _ = writeln!(stderr);
            for hint in hints {
                let _ = writeln!(stderr, "hint: {}", shown(hint));
            }
        }
    }

    /// Renders a command's error (see [`Printer::report`]) and gives its exit code: 2, or 0 for a broken pipe
    /// (a normal end when the reader of stdout went away).
    pub fn render_error(&self, error: &anyhow::Error) -> ExitCode {
        if error.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        }) {
            return ExitCode::SUCCESS;
        }
        self.report(Severity::Error, error.as_ref());
        ExitCode::from(2)
    }
}

/// What [`Printer::report`] prints a problem as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The command (or one item of it) failed.
    Error,
    /// Worth acting on, but the command went on.
    Warning,
}

/// The hint of one error of a chain, if its type has one: every error type with a [`hstore_store::Hint`] impl is
/// listed here, so a new one must be added (a type left out loses its hints).
fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use hstore_store::Hint;
    if let Some(error) = cause.downcast_ref::<crate::error::CliError>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_store::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::archive::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::xmake::Error>() {
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
    if let Some(error) = cause.downcast_ref::<hstore_build::provenance::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_cache::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_sandbox::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_fetchers::license::Error>() {
        return error.hint();
    }
    if let Some(error) = cause.downcast_ref::<hstore_model::sbom::Error>() {
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

/// Copies `reader` to `writer` for a terminal: every control character but newline and tab is written escaped
/// (`\x1b`, `\x0d`, `\x9b`, …) and every byte that is not UTF-8 as `\xNN`, so what reaches the terminal is text and
/// never a command to it (no title change, no cursor moves, no screen rewrite, no answer-back). Streams in
/// bounded memory; a character split between two reads is carried over, not escaped.
pub fn copy_escaped(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut carried = 0;
    loop {
        let read = match reader.read(&mut buffer[carried..]) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let end = carried + read;
        let at_end = read == 0;
        let mut text = String::with_capacity(end + end / 8);
        let mut rest = &buffer[..end];
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    escape_into(valid, &mut text);
                    rest = &[];
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // `valid_up_to` bytes are UTF-8, so this borrows without replacing anything.
                    escape_into(&String::from_utf8_lossy(valid), &mut text);
                    let invalid = match error.error_len() {
                        Some(len) => len,
                        // An incomplete character at the end of this read: wait for the rest.
                        None if !at_end => {
                            rest = after;
                            break;
                        }
                        None => after.len(),
                    };
                    for byte in &after[..invalid] {
                        let _ = write!(text, "\\x{byte:02x}");
                    }
                    rest = &after[invalid..];
                }
            }
        }
        writer.write_all(text.as_bytes())?;
        let kept = rest.len();
        buffer.copy_within(end - kept..end, 0);
        carried = kept;
        if at_end {
            return writer.flush();
        }
    }
}

/// Appends `text` with its control characters (C0 but `\n` and `\t`, DEL, C1) as `\xNN`.
fn escape_into(text: &str, out: &mut String) {
    for character in text.chars() {
        if character.is_control() && character != '\n' && character != '\t' {
            let _ = write!(out, "\\x{:02x}", u32::from(character));
        } else {
            out.push(character);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per read, so every character is split between reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buffer[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        copy_escaped(&mut Trickle(bytes), &mut out).expect("copy");
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn terminal_escapes_are_shown_not_obeyed() {
        assert_eq!(
            escaped(b"ok\x1b]0;pwned\x07\x1b[2J\r\n\tdone\x7f\n"),
            "ok\\x1b]0;pwned\\x07\\x1b[2J\\x0d\n\tdone\\x7f\n"
        );
        // C1 CSI (U+009B) as UTF-8, a raw 0x9b byte, and a truncated character at the end.
        assert_eq!(escaped("a\u{9b}2J".as_bytes()), "a\\x9b2J");
        assert_eq!(escaped(b"a\x9b2J\xe2\x82"), "a\\x9b2J\\xe2\\x82");
        // Multi-byte text split across reads stays intact.
        assert_eq!(escaped("größe → ok ✓".as_bytes()), "größe → ok ✓");
    }
}
