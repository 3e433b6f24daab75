//! The sandbox crate's [`Error`] and its [`Hint`] implementation.
//!
//! Errors that happen inside the helper (after `unshare`, where nothing can be returned by value) travel back to the
//! caller as a [`SetupFailure`](crate::protocol::SetupFailure) on the status pipe and become [`Error::Setup`] or
//! [`Error::NamespacesUnavailable`] here, so the CLI can always say *why* a sandbox could not be built.

use std::path::PathBuf;

use hstore_store::Hint;

/// Everything that can go wrong while preparing, running or fingerprinting a sandboxed build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The [`SandboxSpec`](crate::SandboxSpec) is malformed; nothing was started.
    #[error("invalid sandbox spec: {what}: {reason}")]
    InvalidSpec {
        /// The field or value at fault, e.g. ``input `/nix/x` ``.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host path that a target declares (a vendor SDK, a toolkit) does not exist on this machine.
    #[error("declared host path `{}` does not exist on this machine", path.display())]
    MissingHostPath {
        /// The declared path.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A declared host path holds a socket. Host paths are bound read-only, and a read-only mount does not stop
    /// `connect` on a unix socket: the build could talk to the host service listening on it.
    #[error(
        "declared host path `{}` holds a socket, `{}`: a build could connect through it to a service on the host",
        host_path.display(),
        socket.display()
    )]
    SocketInHostPath {
        /// The declared path.
        host_path: PathBuf,
        /// The socket found in it.
        socket: PathBuf,
    },
    /// A host-side path of the spec (an input, the build or output directory) is missing or of the wrong kind.
    #[error("{role} `{}` is not usable: {reason}", path.display())]
    BadHostPath {
        /// What the path is for ("input", "build directory", "output directory").
        role: &'static str,
        /// The host path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The spec's base root (the tree that replaces the host base system) is missing or not a root file system.
    #[error("base root `{}` is not usable: {reason}", path.display())]
    BadBaseRoot {
        /// The base root's host path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A declared host tool (e.g. `nvcc`) cannot be run to fingerprint it.
    #[error("declared host tool `{program}` could not be run")]
    MissingHostTool {
        /// The program as declared.
        program: String,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// A declared host tool ran but failed, so it cannot be fingerprinted.
    #[error("declared host tool `{program}` failed ({status}) while being fingerprinted: {stderr}")]
    HostToolFailed {
        /// The program as declared.
        program: String,
        /// Its exit status, in words.
        status: String,
        /// The start of its stderr.
        stderr: String,
    },
    /// The kernel (or a container runtime, or a security module) refuses the namespaces the sandbox needs.
    /// Builds never fall back to running unsandboxed.
    #[error("Linux namespaces are unavailable, so builds cannot be sandboxed: {reason}")]
    NamespacesUnavailable {
        /// Why, as far as we can tell (which sysctl or mechanism blocks it).
        reason: String,
        /// How to enable them; printed as the hint.
        remedy: String,
        /// The refused system call's error, when there was one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The helper could not set the sandbox up (a mount, a bind, the `execve` of the command failed).
    #[error("failed to set up the build sandbox: could not {action}")]
    Setup {
        /// What the helper was doing, with the paths involved.
        action: String,
        /// The system call's error, when there was one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The build went over one of its [`Limits`](crate::Limits) and was stopped (or killed by the kernel).
    #[error("the build exceeded its {limit} of {value} and was stopped")]
    LimitExceeded {
        /// Which limit, in words ("wall-clock time limit", "log size limit").
        limit: &'static str,
        /// The limit's value, as the user would write it.
        value: String,
        /// The `hstore build` flag that raises it.
        flag: &'static str,
    },
    /// The helper executable could not be started.
    #[error("failed to start the sandbox helper `{}`", helper.display())]
    SpawnHelper {
        /// The helper executable.
        helper: PathBuf,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// The helper exited without reporting anything: it most likely does not dispatch [`HELPER_ARG`](crate::HELPER_ARG).
    #[error("the sandbox helper `{}` exited ({status}) without reporting a result", helper.display())]
    HelperSilent {
        /// The helper executable.
        helper: PathBuf,
        /// Its exit status, in words.
        status: String,
    },
    /// The helper wrote something on the status pipe that is not a report.
    #[error("the sandbox helper `{}` sent an unreadable report", helper.display())]
    BadReport {
        /// The helper executable.
        helper: PathBuf,
        /// Why it could not be parsed.
        #[source]
        source: serde_json::Error,
    },
    /// Every id of the build users' pool is leased: that many builds of root-run hstore processes are running.
    #[error("all {count} build users (ids {first}…) are in use by running builds (leases in `{}`)", dir.display())]
    BuildUsersExhausted {
        /// The pool's first id.
        first: u32,
        /// How many ids it holds.
        count: u32,
        /// The lease directory.
        dir: PathBuf,
    },
    /// A build user was asked for ([`BuildUser::acquire`](crate::BuildUser::acquire)) in a user namespace (a
    /// container, `unshare -r`) that does not map the build users' ids.
    #[error("the build users' ids {first}…{last} are not mapped in this user namespace (`{}`: {content})", map.display())]
    BuildUsersUnmapped {
        /// The pool's first id.
        first: u32,
        /// The pool's last id.
        last: u32,
        /// The id map read.
        map: PathBuf,
        /// Its content, on one line.
        content: String,
    },
    /// The directory of build user leases could be written by someone other than root.
    #[error("refusing to lease build users from `{}`: {reason}", path.display())]
    UnsafeLeaseDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O operation of the calling side (pipes, log file, fingerprint reads) failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what we were doing and where.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// Shorthand for [`Error::InvalidSpec`].
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidSpec {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NamespacesUnavailable { remedy, .. } => Some(remedy.clone()),
            Error::MissingHostPath { .. } => Some(
                "install the SDK or toolkit at that path, or build a target that does not declare it".into(),
            ),
            Error::SocketInHostPath { .. } => Some(
                "declare only the subdirectories the build reads (e.g. `bin`, `lib`, `include`), or move the socket \
                 out of the declared path"
                    .into(),
            ),
            Error::BadBaseRoot { .. } => Some(
                "a base root is a complete root file system tree (`usr/`, `etc/` with passwd and group, `bin -> usr/bin`, \
                 …), such as a materialized store tree of Debian packages: materialize it again, or leave the base \
                 root unset to build on the host base system"
                    .into(),
            ),
            Error::MissingHostTool { .. } | Error::HostToolFailed { .. } => {
                Some("install the tool, or make sure it is on `/usr/local/bin:/usr/bin:/bin` or declared by absolute path".into())
            }
            Error::HelperSilent { .. } => Some(format!(
                "the program's `main` must call `hstore_sandbox::helper_main()` first thing when its first argument is `{}`",
                crate::HELPER_ARG
            )),
            Error::BuildUsersExhausted { .. } => Some(
                "wait for running builds to finish, or run fewer at once (`hstore build --jobs`)".into(),
            ),
            Error::BuildUsersUnmapped { .. } => Some(
                "run hstore as a non-root user (builds then run as that user), or give the container's user namespace the whole id range".into(),
            ),
            Error::UnsafeLeaseDir { path, .. } => Some(format!(
                "remove `{}` (hstore recreates it owned by root, mode 0700) and make sure nothing else creates it",
                path.display()
            )),
            Error::LimitExceeded { flag, .. } => Some(format!(
                "if the build needs more, raise the limit with `hstore build {flag} …` (`none` lifts it)"
            )),
            _ => None,
        }
    }
}

/// Result alias for the sandbox crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
