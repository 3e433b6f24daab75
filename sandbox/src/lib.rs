//! hstore-sandbox: the network-less Linux namespace sandbox that `hstore build` runs recipe build scripts in.
//!
//! A build runs in new user, mount, pid, network, ipc and uts namespaces, inside a fresh tmpfs root holding the
//! host base system read-only, a minimal `/etc`, its inputs read-only, a writable `/build` and output directory,
//! a tmpfs `/tmp`, a fresh `/proc` and a minimal `/dev`; only `lo` exists; `no_new_privs` is set; the environment
//! is exactly the spec's plus a few fixed variables. See ARCHITECTURE.md §6.
//!
//! The namespaces are created by a re-exec'd, single-threaded helper ([`helper_main`], selected by
//! [`HELPER_ARG`]), because the kernel refuses `unshare(CLONE_NEWUSER)` to a multi-threaded process such as the
//! tokio-based CLI. [`Sandbox::run`] starts the helper, and reports a setup failure as a typed [`Error`] (why,
//! not just an exit code). If namespaces are unavailable the build fails with
//! [`Error::NamespacesUnavailable`], naming the sysctl to change; there is no unsandboxed fallback.
//!
//! Modules: [`spec`] (what a build sees), [`run`] (calling side), `helper` (namespace side), `mounts`
//! (the file system inside), `net` (`lo`), `protocol` (caller ↔ helper), `availability` (diagnosing refusals),
//! [`fingerprint`] (host inputs for the build key), [`error`].
//!
//! This crate is the mechanism only: it runs a [`SandboxSpec`] and knows nothing of recipes, cargo, lockfiles or
//! build records, which are `hstore-build`'s.

// `unsafe_code` is denied workspace-wide and lifted only here: `fork`, `pre_exec`, and the `lo` ioctl have no safe
// wrapper. Every `unsafe` block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]
#![deny(missing_docs)]

mod availability;
pub mod error;
pub mod fingerprint;
mod helper;
mod mounts;
mod net;
mod protocol;
pub mod run;
pub mod spec;

pub use error::{Error, Result};
pub use fingerprint::{
    HostTool, fingerprint_base_system, fingerprint_host_paths, fingerprint_host_tools,
};
pub use helper::{HELPER_ARG, helper_main};
pub use run::{BuildOutput, BuildStatus, Sandbox, check_available};
pub use spec::{Bind, SandboxSpec};
