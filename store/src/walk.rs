//! Walking stored trees: the closure of a set of addresses (what gc keeps, what a diff would carry) and finding
//! where an object sits inside a tree (`hstore why`).
//!
//! Both walk directory nodes only, each once (trees share subtrees), iteratively, so a deep tree cannot overflow
//! the stack. A directory node the store lacks, or cannot decode, ends that branch (as gc always did: `verify`
//! names those); callers that need complete closures check them with [`Store::first_missing_in_closure`].

use std::collections::HashSet;

use crate::digest::Digest;
use crate::error::Result;
use crate::store::Store;
use crate::tree::Node;

impl Store {
    /// Every address reachable from `addresses` (themselves included) through the directory nodes the store holds.
    pub fn closure(&self, addresses: impl IntoIterator<Item = Digest>) -> HashSet<Digest> {
        let mut reached = HashSet::new();
        let mut pending: Vec<Digest> = addresses.into_iter().collect();
        while let Some(digest) = pending.pop() {
            if !reached.insert(digest) {
                continue;
            }
            if let Ok(Some(directory)) = self.get_directory(&digest) {
                for (_, node) in directory.entries() {
                    match node {
                        Node::File { digest, .. } | Node::Directory { digest, .. } => {
                            pending.push(*digest);
                        }
                        Node::Symlink { .. } => {}
                    }
                }
            }
        }
        reached
    }

    /// The first path (in name order, depth first) at which `wanted` sits inside the tree `root`, as
    /// `/`-separated names; `Some("")` when `root` is `wanted` itself, `None` when the tree does not hold it.
    pub fn find_in_tree(&self, root: &Digest, wanted: &Digest) -> Result<Option<String>> {
        if root == wanted {
            return Ok(Some(String::new()));
        }
        let mut seen = HashSet::new();
        // Depth first in name order: entries are pushed in reverse so the first name is visited first.
        let mut pending = vec![(*root, String::new())];
        while let Some((digest, path)) = pending.pop() {
            if !seen.insert(digest) {
                continue;
            }
            let Some(directory) = self.get_directory(&digest)? else {
                continue;
            };
            let mut children = Vec::new();
            for (name, node) in directory.entries() {
                let child = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}/{name}")
                };
                match node {
                    Node::File { digest, .. } | Node::Directory { digest, .. }
                        if digest == wanted =>
                    {
                        return Ok(Some(child));
                    }
                    Node::Directory { digest, .. } => children.push((*digest, child)),
                    Node::File { .. } | Node::Symlink { .. } => {}
                }
            }
            pending.extend(children.into_iter().rev());
        }
        Ok(None)
    }
}
