//! Comparing two stored trees, for `hstore build --check`: which paths differ, and how.
//!
//! Subtrees with equal addresses are skipped without reading them, so the cost is proportional to what changed.

use std::fmt;

use hstore_store::{Digest, Node, Store};

use super::error::{BuildError, Result};

/// One path that differs between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDifference {
    /// Path relative to the tree root (lossy UTF-8 for display).
    pub path: String,
    /// What differs.
    pub change: &'static str,
}

impl fmt::Display for TreeDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.change)
    }
}

/// Every path that differs between trees `old` and `new`, sorted.
pub fn diff_trees(store: &Store, old: &Digest, new: &Digest) -> Result<Vec<TreeDifference>> {
    let mut differences = Vec::new();
    diff_into(store, old, new, "", &mut differences)?;
    Ok(differences)
}

fn diff_into(
    store: &Store,
    old: &Digest,
    new: &Digest,
    prefix: &str,
    out: &mut Vec<TreeDifference>,
) -> Result<()> {
    if old == new {
        return Ok(());
    }
    let load = |digest: &Digest| {
        store
            .directory(digest)
            .map_err(|source| BuildError::store("a build output", source))
    };
    let (old_dir, new_dir) = (load(old)?, load(new)?);
    let join = |name: &hstore_store::PathComponent| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    for (name, old_node) in old_dir.entries() {
        let path = join(name);
        match new_dir.get(name) {
            None => out.push(TreeDifference {
                path,
                change: "removed",
            }),
            Some(new_node) if new_node == old_node => {}
            Some(Node::Directory {
                digest: new_digest, ..
            }) => {
                if let Node::Directory {
                    digest: old_digest, ..
                } = old_node
                {
                    diff_into(store, old_digest, new_digest, &path, out)?;
                } else {
                    out.push(TreeDifference {
                        path,
                        change: "type changed",
                    });
                }
            }
            Some(new_node) => {
                let change = match (old_node, new_node) {
                    (Node::File { digest: a, .. }, Node::File { digest: b, .. }) if a == b => {
                        "executable bit changed"
                    }
                    (Node::File { .. }, Node::File { .. }) => "contents differ",
                    (Node::Symlink { .. }, Node::Symlink { .. }) => "link target differs",
                    _ => "type changed",
                };
                out.push(TreeDifference { path, change });
            }
        }
    }
    for (name, _) in new_dir.entries() {
        if old_dir.get(name).is_none() {
            out.push(TreeDifference {
                path: join(name),
                change: "added",
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}
