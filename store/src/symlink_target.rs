//! [`check_symlink_target`]: the one rule deciding whether a symlink written by untrusted content (an archive being
//! unpacked, a build output being installed) may be created inside a tree without any chain of links reaching
//! outside it.
//!
//! A target is accepted if it is relative, climbs with leading `..` components no higher than the tree's root, and
//! then only descends (`../../lib/x.so` is fine; `a/../b`, `/etc`, `../..` from one level down are not). Checking a
//! target by its text alone is sound only because a `..` never follows a name: a name may itself be a symlink (to
//! `.`, to `../..`, …), so `s/..` is wherever `s` points plus one level up, which the text cannot tell. With the
//! leading-`..` shape, every link climbs from its own real directory to a real directory inside the tree, then
//! descends through names that are directories or links obeying the same rule: by induction on the kernel's
//! resolution, no chain of links in the tree resolves outside it, whatever order the links were created in and
//! whatever the other links are (the attack chain `s -> ../..`, `t1 -> s/..`, …, `pw -> t6/etc/passwd` is refused at
//! `t1`).

use crate::tree::{MAX_SYMLINK_TARGET, is_valid_symlink_target};

/// Why [`check_symlink_target`] refused a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymlinkTargetError {
    /// The target is empty, too long or contains NUL.
    #[error(
        "symlink target `{target}` is empty, longer than {MAX_SYMLINK_TARGET} bytes or contains NUL"
    )]
    Invalid {
        /// The target, lossy.
        target: String,
    },
    /// The target is absolute or climbs above the tree's root.
    #[error("symlink target `{target}` points outside the tree")]
    Escapes {
        /// The target, lossy.
        target: String,
    },
    /// The target has `..` after a name (`s/..`), which cannot be checked without following links.
    #[error(
        "symlink target `{target}` has `..` after a name; only leading `..` components are accepted"
    )]
    ClimbsAfterDescending {
        /// The target, lossy.
        target: String,
    },
}

impl SymlinkTargetError {
    /// The refused target, lossy.
    pub fn target(&self) -> &str {
        match self {
            SymlinkTargetError::Invalid { target }
            | SymlinkTargetError::Escapes { target }
            | SymlinkTargetError::ClimbsAfterDescending { target } => target,
        }
    }
}

/// Checks `target`, the target of a symlink whose directory lies `depth` directories below the tree's root (`0` for
/// a link at the root, `2` for `a/b/link`); see the [module docs](self) for the rule.
pub fn check_symlink_target(depth: usize, target: &[u8]) -> Result<(), SymlinkTargetError> {
    let lossy = || String::from_utf8_lossy(target).into_owned();
    if !is_valid_symlink_target(target) {
        return Err(SymlinkTargetError::Invalid { target: lossy() });
    }
    if target.first() == Some(&b'/') {
        return Err(SymlinkTargetError::Escapes { target: lossy() });
    }
    let mut depth = depth;
    let mut descended = false;
    for component in target.split(|&byte| byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." if descended => {
                return Err(SymlinkTargetError::ClimbsAfterDescending { target: lossy() });
            }
            b".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SymlinkTargetError::Escapes { target: lossy() })?;
            }
            _ => descended = true,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(depth: usize, target: &str) -> SymlinkTargetError {
        check_symlink_target(depth, target.as_bytes()).expect_err(target)
    }

    #[test]
    fn links_that_climb_first_and_then_descend_inside_the_tree_are_accepted() {
        for (depth, target) in [
            (1, "libx.so.1"),
            (1, "../lib/x"),
            (0, "./bin/x"),
            (0, "bin//x/"),
            (2, "../../etc/passwd"),
            (3, "./../.././x"),
            (0, "."),
            (1, ".."),
        ] {
            assert_eq!(
                check_symlink_target(depth, target.as_bytes()),
                Ok(()),
                "{target}"
            );
        }
    }

    #[test]
    fn absolute_and_escaping_targets_are_refused() {
        assert!(matches!(
            refused(1, "/etc/passwd"),
            SymlinkTargetError::Escapes { .. }
        ));
        assert!(matches!(
            refused(0, "../x"),
            SymlinkTargetError::Escapes { .. }
        ));
        assert!(matches!(
            refused(1, "../../etc/passwd"),
            SymlinkTargetError::Escapes { .. }
        ));
        // Leaving and re-entering is refused too: the directory above the root could be anything on the host.
        assert!(matches!(
            refused(0, "../prefix/bin"),
            SymlinkTargetError::Escapes { .. }
        ));
    }

    #[test]
    fn a_climb_after_a_name_is_refused_so_no_chain_of_links_can_escape() {
        // The attack chain, in `a/b/`: `s -> ../..` is fine on its own (the root), but `t1 -> s/..` would be the
        // root's parent, and each later link one more level up.
        assert_eq!(check_symlink_target(2, b"../.."), Ok(()));
        let error = refused(2, "s/..");
        assert_eq!(
            error,
            SymlinkTargetError::ClimbsAfterDescending {
                target: "s/..".into()
            }
        );
        assert_eq!(error.target(), "s/..");
        assert!(matches!(
            refused(5, "a/../b"),
            SymlinkTargetError::ClimbsAfterDescending { .. }
        ));
        assert!(matches!(
            refused(5, "../a/./../b"),
            SymlinkTargetError::ClimbsAfterDescending { .. }
        ));
    }

    #[test]
    fn empty_overlong_and_nul_targets_are_invalid() {
        assert!(matches!(refused(0, ""), SymlinkTargetError::Invalid { .. }));
        assert!(matches!(
            refused(0, "a\0b"),
            SymlinkTargetError::Invalid { .. }
        ));
        let long = "a/".repeat(MAX_SYMLINK_TARGET);
        assert!(matches!(
            refused(0, &long),
            SymlinkTargetError::Invalid { .. }
        ));
    }
}
