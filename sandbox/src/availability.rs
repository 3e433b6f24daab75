//! Why namespaces are unavailable, and how to enable them: turning a refused `unshare` into
//! [`Error::NamespacesUnavailable`].
//!
//! The kernel says only `EPERM`, `ENOSPC` or `EINVAL`; the cause is one of a few well-known knobs, which we read
//! from `/proc/sys` (the caller can read them: they are world-readable):
//! - `user.max_user_namespaces` = 0 (any distribution; also what a container runtime may set);
//! - `kernel.unprivileged_userns_clone` = 0 (Debian and older Ubuntu kernels; root is not affected);
//! - `kernel.apparmor_restrict_unprivileged_userns` = 1 (Ubuntu 23.10+): `unshare` succeeds but the namespace
//!   grants no privileges, so the first mount fails with `EPERM`;
//! - otherwise, typically a container's seccomp profile denying `unshare`/`mount`.

use crate::error::Error;
use crate::protocol::SetupFailure;

/// Reads a sysctl by its `/proc/sys` path; `None` when it does not exist on this kernel.
pub(crate) type SysctlReader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads `/proc/sys/<path>`, trimmed.
pub(crate) fn read_proc_sys(path: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A setting that is known to forbid user namespaces, checked before starting anything.
pub(crate) fn known_blocker(read: SysctlReader<'_>) -> Option<Error> {
    (read("user/max_user_namespaces").as_deref() == Some("0"))
        .then(|| diagnose(None, "unshare", read))
}

/// Explains a namespace refusal reported by the helper.
pub(crate) fn from_failure(failure: &SetupFailure, read: SysctlReader<'_>) -> Error {
    diagnose(failure.errno, &failure.action, read)
}

fn diagnose(errno: Option<i32>, action: &str, read: SysctlReader<'_>) -> Error {
    let is_root = nix::unistd::geteuid().is_root();
    let (reason, remedy) = if read("user/max_user_namespaces").as_deref() == Some("0") {
        (
            "`user.max_user_namespaces` is 0".to_owned(),
            "allow user namespaces: `sysctl -w user.max_user_namespaces=15000` (persist it in /etc/sysctl.d/)".to_owned(),
        )
    } else if !is_root && read("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        (
            "`kernel.unprivileged_userns_clone` is 0, so unprivileged users may not create user namespaces".to_owned(),
            "run `sysctl -w kernel.unprivileged_userns_clone=1` (persist it in /etc/sysctl.d/)".to_owned(),
        )
    } else if read("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        (
            format!("AppArmor restricts unprivileged user namespaces (the helper could not {action})"),
            "run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or load an AppArmor profile that grants \
             `userns,` to the hstore binary"
                .to_owned(),
        )
    } else {
        (
            format!("the kernel refused to {action}; no sysctl forbids it, so a container's seccomp profile or a security module likely does"),
            "inside Docker or Podman, run with `--security-opt seccomp=unconfined` (or a profile allowing `unshare`, \
             `mount`, `pivot_root`) and `--security-opt apparmor=unconfined`; check `dmesg` for denials"
                .to_owned(),
        )
    };
    Error::NamespacesUnavailable {
        reason,
        remedy,
        source: errno.map(std::io::Error::from_raw_os_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> SetupFailure {
        SetupFailure {
            action: "unshare the user namespace".into(),
            errno: Some(libc::EPERM),
            namespaces: true,
        }
    }

    fn diagnosed(sysctls: &[(&str, &str)]) -> (String, String) {
        let read = |path: &str| {
            sysctls
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, v)| (*v).to_owned())
        };
        match from_failure(&failure(), &read) {
            Error::NamespacesUnavailable { reason, remedy, .. } => (reason, remedy),
            other => panic!("expected NamespacesUnavailable, got {other:?}"),
        }
    }

    #[test]
    fn max_user_namespaces_zero_is_named() {
        let (reason, remedy) = diagnosed(&[("user/max_user_namespaces", "0")]);
        assert!(reason.contains("user.max_user_namespaces"));
        assert!(remedy.contains("sysctl -w user.max_user_namespaces="));
        let read = |path: &str| (path == "user/max_user_namespaces").then(|| "0".to_owned());
        assert!(known_blocker(&read).is_some());
        assert!(known_blocker(&|_: &str| Some("15000".to_owned())).is_none());
    }

    #[test]
    fn apparmor_restriction_is_named() {
        let (reason, remedy) = diagnosed(&[
            ("user/max_user_namespaces", "1000"),
            ("kernel/apparmor_restrict_unprivileged_userns", "1"),
        ]);
        assert!(reason.contains("AppArmor"));
        assert!(remedy.contains("apparmor_restrict_unprivileged_userns=0"));
    }

    #[test]
    fn without_a_known_sysctl_seccomp_is_suggested() {
        let (reason, remedy) = diagnosed(&[("user/max_user_namespaces", "1000")]);
        assert!(reason.contains("seccomp"));
        assert!(remedy.contains("seccomp=unconfined"));
    }
}
