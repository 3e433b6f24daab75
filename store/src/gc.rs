//! Garbage collection: keep everything reachable from the roots, delete the rest.
//!
//! gc needs a [`Store`] opened with [`LockMode::Exclusive`]: every other command holds the shared lock for its whole
//! run, so nothing a running command just added (and has not yet rooted) can be collected. Temp files are only
//! ever left by killed commands once gc holds the exclusive lock, so gc removes them all.
//!
//! Deletion order keeps a killed gc's store verifiable: unreachable directory nodes go first, each only after every
//! unreachable node naming it (Kahn's order over the unreachable part of the graph), then the blobs. So at every
//! moment each node still present has all its children, and `verify` after a SIGKILL at any point finds nothing.

use std::collections::{HashMap, HashSet};
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
        let mut doomed = Vec::new();
        for (digest, format, path) in self.object_files()? {
            if reachable.contains(&digest) {
                report.kept += 1;
            } else {
                doomed.push((digest, format, path));
            }
        }
        if !dry_run {
            self.objects_removed();
        }
        for (digest, format, path) in parents_first(self, doomed) {
            report.removed_bytes += fs::metadata(&path).map_or(0, |m| m.len());
            report.removed.push((digest, format));
            if !dry_run {
                fs::remove_file(&path).map_err(Error::io("remove", &path))?;
            }
        }
        report.removed.sort();
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
            let path = entry.path();
            if is_temp_shard(&entry) {
                // `tmp/ab/` holds the temp files of objects being added; the directory itself stays.
                for file in fs::read_dir(&path).map_err(Error::io("list", &path))? {
                    let file = file.map_err(Error::io("list", &path))?;
                    report.removed_temp += 1;
                    if !dry_run {
                        remove_tree(&file.path())?;
                    }
                }
                continue;
            }
            report.removed_temp += 1;
            if !dry_run {
                remove_tree(&path)?;
            }
        }
        Ok(report)
    }
}

/// Whether a `tmp/` entry is a temp shard directory (`tmp/ab/`, see `Store::temp_file_for`).
fn is_temp_shard(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name();
    let name = name.as_encoded_bytes();
    name.len() == 2
        && name
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && entry.file_type().is_ok_and(|kind| kind.is_dir())
}

/// Orders unreachable objects for deletion: directory nodes before the nodes they name (a node goes only once no
/// remaining unreachable node names it), then blobs. A node that cannot be read is taken to name nothing.
fn parents_first(
    store: &Store,
    doomed: Vec<(Digest, ObjectFormat, std::path::PathBuf)>,
) -> Vec<(Digest, ObjectFormat, std::path::PathBuf)> {
    let (directories, blobs): (Vec<_>, Vec<_>) = doomed
        .into_iter()
        .partition(|(_, format, _)| *format == ObjectFormat::Directory);
    let unreachable: HashSet<Digest> = directories.iter().map(|(digest, _, _)| *digest).collect();
    let mut children: HashMap<Digest, Vec<Digest>> = HashMap::new();
    let mut named_by: HashMap<Digest, usize> = HashMap::new();
    for (digest, _, _) in &directories {
        let mut below = Vec::new();
        if let Ok(Some(directory)) = store.get_directory(digest) {
            for (_, node) in directory.entries() {
                if let Node::Directory { digest: child, .. } = node
                    && unreachable.contains(child)
                {
                    below.push(*child);
                    *named_by.entry(*child).or_default() += 1;
                }
            }
        }
        children.insert(*digest, below);
    }
    let mut by_digest: HashMap<Digest, (Digest, ObjectFormat, std::path::PathBuf)> = directories
        .into_iter()
        .map(|entry| (entry.0, entry))
        .collect();
    let mut ready: Vec<Digest> = by_digest
        .keys()
        .filter(|digest| !named_by.contains_key(digest))
        .copied()
        .collect();
    ready.sort();
    let mut ordered = Vec::with_capacity(by_digest.len() + blobs.len());
    while let Some(digest) = ready.pop() {
        if let Some(entry) = by_digest.remove(&digest) {
            ordered.push(entry);
        }
        for child in children.remove(&digest).unwrap_or_default() {
            if let Some(count) = named_by.get_mut(&child) {
                *count -= 1;
                if *count == 0 {
                    ready.push(child);
                }
            }
        }
    }
    // Cycles cannot occur (addresses are hashes of content), but never drop an object from the list.
    let mut rest: Vec<_> = by_digest.into_values().collect();
    rest.sort_by_key(|entry| entry.0);
    ordered.extend(rest);
    ordered.extend(blobs);
    ordered
}
