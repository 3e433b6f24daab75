//! hstore-sandbox: the network-less Linux namespace sandbox that `hstore build` runs recipe build scripts in.
//!
//! A build runs in new user, mount, pid, network, ipc, uts and cgroup namespaces, as uid 0 inside and, outside,
//! the caller's uid or, for a root caller, a leased [`BuildUser`] (never host uid 0). Its root is a fresh tmpfs
//! holding either the spec's base root (a complete root file system tree, [`SandboxSpec::base_root`]) read-only
//! or the host base system read-only with a minimal `/etc` (the loader's files and CA certificates), its inputs
//! read-only, a writable `/build` and output directory, a tmpfs `/tmp`, a fresh `/proc` (its host-wide settings
//! read-only, the kernel command line masked), a minimal `/dev` and no `/sys`; only `lo` exists; `no_new_privs`
//! is set; the build holds no capability, runs under a seccomp filter, in its own session, with no descriptor of
//! the caller's but stdout/stderr, and under resource [`Limits`]; the environment is exactly the spec's plus a
//! few fixed variables. See ARCHITECTURE.md, "Build" and "Sandbox security model".
//!
//! The namespaces are created by a re-exec'd, single-threaded helper ([`helper_main`], selected by
//! [`HELPER_ARG`]), because the kernel refuses `unshare(CLONE_NEWUSER)` to a multi-threaded process such as the
//! tokio-based CLI. [`Sandbox::run`] starts the helper, and reports a setup failure as a typed [`Error`] (why,
//! not just an exit code). If namespaces are unavailable the build fails with
//! [`Error::NamespacesUnavailable`], naming the sysctl to change; there is no unsandboxed fallback.
//!
//! Modules: [`spec`] (what a build sees), [`run`] (calling side), [`build_users`] (the host ids of root-run
//! builds), `helper` (namespace side), `mounts` (the file system inside), `confine` (capabilities, seccomp,
//! descriptors, session), [`limits`] (resources), `disk` (the output-size cap), `net` (`lo`), `protocol` (caller ↔
//! helper), `availability` (diagnosing refusals), [`fingerprint`] (host inputs for the build key), [`error`].
//!
//! This crate is the mechanism only: it runs a [`SandboxSpec`] and knows nothing of recipes, cargo, lockfiles or
//! build records, which are `hstore-build`'s.

// `unsafe_code` is denied workspace-wide and lifted only here: `fork`, `pre_exec`, and the `lo` ioctl have no safe
// wrapper. Every `unsafe` block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]
#![deny(missing_docs)]

mod availability;
pub mod build_users;
mod confine;
mod disk;
pub mod error;
pub mod fingerprint;
mod helper;
pub mod limits;
mod mounts;
mod net;
mod protocol;
pub mod run;
pub mod spec;

pub use build_users::BuildUser;
pub use error::{Error, Result};
pub use fingerprint::{
    HostTool, fingerprint_base_system, fingerprint_host_paths, fingerprint_host_tools,
};
pub use helper::{HELPER_ARG, helper_main};
pub use limits::{LimitOverrides, Limits};
pub use run::{BuildOutput, BuildStatus, Sandbox, check_available};
pub use spec::{Bind, SandboxSpec};
