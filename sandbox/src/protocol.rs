//! The wire protocol between the caller ([`Sandbox`](crate::Sandbox)) and the re-exec'd helper.
//!
//! - The caller starts `helper_exe HELPER_ARG` with the write end of a pipe as fd [`STATUS_FD`] and writes one
//!   [`Request`] as JSON on the helper's stdin, then closes it.
//! - Every process of the helper (the helper, its id mapper, the namespace's init, the build before its
//!   `execve`) writes [`Report`]s on fd [`STATUS_FD`], one JSON object per line. Each report is one `write` of
//!   less than `PIPE_BUF` bytes, so lines from different processes never interleave.
//! - The build's copy of the fd is close-on-exec, so the pipe reaches EOF when the helper and init have exited.
//!   The caller then takes the first [`Report::SetupFailed`], or else the [`Report::Exited`]/[`Report::Signaled`].
//!   No report at all means the helper did not run our code (see [`Error::HelperSilent`](crate::Error::HelperSilent)).

use std::io::Write;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::spec::SandboxSpec;

/// The helper's status pipe, as set up by the caller with `dup2` before `exec`.
pub(crate) const STATUS_FD: RawFd = 3;

/// What the caller asks the helper to do. `Option<BuildIds>` is the host identity of the build: `Some` when the
/// caller is root (a leased [`BuildUser`](crate::BuildUser)), `None` when it is unprivileged (the caller's own ids).
#[derive(Debug, Serialize, Deserialize)]
#[expect(
    clippy::large_enum_variant,
    reason = "one request per helper process, sent once; boxing would buy nothing"
)]
pub(crate) enum Request {
    /// Create the namespaces and the essential mounts, then report [`Report::Exited`] with code 0.
    Probe(Option<BuildIds>),
    /// Run a build under these limits.
    Run(SandboxSpec, Limits, Option<BuildIds>),
}

impl Request {
    /// The host ids the namespace's uid 0 and gid 0 map to, when not the caller's.
    pub(crate) fn build_ids(&self) -> Option<BuildIds> {
        match self {
            Request::Probe(ids) | Request::Run(_, _, ids) => *ids,
        }
    }
}

/// The host uid and gid a root caller's build runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildIds {
    /// The host uid that uid 0 inside maps to.
    pub uid: u32,
    /// The host gid that gid 0 inside maps to.
    pub gid: u32,
}

/// Why the helper could not set the sandbox up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SetupFailure {
    /// What was being done, with paths, worded to follow "could not": ``bind `/a` at `/b` read-only``.
    pub action: String,
    /// The system call's errno, if there was one.
    pub errno: Option<i32>,
    /// True when the failure means the kernel refused the namespaces themselves (unshare, id maps, the first
    /// mount), so the caller diagnoses sysctls rather than blaming a path.
    pub namespaces: bool,
}

impl SetupFailure {
    /// A failure with an errno from `nix`.
    pub(crate) fn errno(action: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SetupFailure {
            action: action.into(),
            errno: Some(errno as i32),
            namespaces: false,
        }
    }

    /// A failure from a `std::io::Error`.
    pub(crate) fn io(action: impl Into<String>, error: &std::io::Error) -> Self {
        SetupFailure {
            action: action.into(),
            errno: error.raw_os_error(),
            namespaces: false,
        }
    }

    /// Marks this failure as a refusal of the namespaces themselves.
    pub(crate) fn in_namespaces(mut self) -> Self {
        self.namespaces = true;
        self
    }
}

/// One line on the status pipe.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// Setting up failed; the command did not run.
    SetupFailed(SetupFailure),
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal.
    Signaled(i32),
}

impl Report {
    /// Writes the report as one line in one `write`. Errors are ignored: if the caller is gone, nobody is
    /// left to tell.
    pub(crate) fn send(&self, mut status: &std::fs::File) {
        if let Ok(mut line) = serde_json::to_vec(self) {
            line.push(b'\n');
            let _ = status.write_all(&line);
        }
    }
}
