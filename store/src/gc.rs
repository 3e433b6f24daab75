//! Garbage collection: keep everything reachable from the roots, delete the rest.
//!
//! gc needs a [`Store`] opened with [`LockMode::Exclusive`]: every other command holds the shared lock for its whole
//! run, so nothing a running command just added (and has not yet rooted) can be collected. Temp files are only
//! ever left by killed commands once gc holds the exclusive lock, so gc removes them all.

use std::collections::HashSet;
use std::fs;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::materialize::remove_tree;
use crate::store::{LockMode, Store};
use crate::tree::Node;

/// What gc removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects kept because a root reaches them.
    pub kept: usize,
    /// Unreachable objects.
    pub removed: Vec<(Digest, ObjectFormat)>,
    /// Bytes of object files removed.
    pub removed_bytes: u64,
    /// Materialized trees removed from the cache.
    pub removed_trees: usize,
    /// Temp entries removed.
    pub removed_temp: usize,
}

impl Store {
    /// Every object reachable from the roots. A root naming a missing object is skipped (verify reports those).
    pub fn reachable(&self) -> Result<HashSet<Digest>> {
        let mut reachable = HashSet::new();
        let mut pending: Vec<Digest> = self
            .roots()?
            .into_iter()
            .flat_map(|(_, root)| root.addresses)
            .collect();
        while let Some(digest) = pending.pop() {
            if !reachable.insert(digest) {
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
        Ok(reachable)
    }

    /// Collects garbage. Requires the exclusive lock.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        assert_eq!(
            self.lock_mode(),
            LockMode::Exclusive,
            "gc needs the exclusive store lock"
        );
        let reachable = self.reachable()?;
        let mut report = GcReport::default();
        for (digest, format, path) in self.object_files()? {
            if reachable.contains(&digest) {
                report.kept += 1;
                continue;
            }
            report.removed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
            report.removed.push((digest, format));
            if !dry_run {
                fs::remove_file(&path).map_err(Error::io("remove", &path))?;
            }
        }
        let trees = self.layout().trees();
        for entry in fs::read_dir(&trees).map_err(Error::io("list", &trees))? {
            let entry = entry.map_err(Error::io("list", &trees))?;
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|name| Digest::from_hex(name).ok())
                .is_some_and(|digest| reachable.contains(&digest));
            if !keep {
                report.removed_trees += 1;
                if !dry_run {
                    remove_tree(&entry.path())?;
                }
            }
        }
        let tmp = self.layout().tmp();
        for entry in fs::read_dir(&tmp).map_err(Error::io("list", &tmp))? {
            let entry = entry.map_err(Error::io("list", &tmp))?;
            report.removed_temp += 1;
            if !dry_run {
                remove_tree(&entry.path())?;
            }
        }
        Ok(report)
    }
}
