//! Garbage collection: keep everything reachable from the roots, delete the rest.
//!
//! gc needs a [`Store`] opened with [`LockMode::Exclusive`]: every other command holds the shared lock for its whole
//! run, so nothing a running command just added (and has not yet rooted) can be collected. Temp files are only
//! ever left by killed commands once gc holds the exclusive lock, so gc removes them all.
//!
//! Deletion order keeps a killed gc's store verifiable: a file holding unreachable objects (a loose object, or a
//! pack, rewritten without them) is changed only after every file holding an unreachable node that names one of
//! them (Kahn's order over the files), and a rewritten pack is in place before the old one goes. So at every moment
//! each node still present has all its children, and `verify` after a SIGKILL at any point finds nothing (see
//! `containers_parents_first` for the one exception, packs of concurrent adds naming each other).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::pack::{Location, PackEntry};
use crate::remove::remove_tree;
use crate::store::{LockMode, ObjectCopy, Store};
use crate::tree::Node;

/// What gc removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects kept because a root reaches them.
    pub kept: usize,
    /// Unreachable objects.
    pub removed: Vec<(Digest, ObjectFormat)>,
    /// Stored bytes of the objects removed.
    pub removed_bytes: u64,
    /// Materialized trees removed from the cache.
    pub removed_trees: usize,
    /// Temp entries removed.
    pub removed_temp: usize,
}

impl Store {
    /// Every object reachable from the roots. A root naming a missing object is skipped (verify reports those).
    pub fn reachable(&self) -> Result<HashSet<Digest>> {
        let roots = self.roots()?;
        Ok(self.closure(roots.into_iter().flat_map(|(_, root)| root.addresses)))
    }

    /// Collects garbage. Requires the exclusive lock.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        assert_eq!(
            self.lock_mode(),
            LockMode::Exclusive,
            "gc needs the exclusive store lock"
        );
        // Listing first: it reads every pack's index once and hands it to the lookups of the walk from the roots.
        let copies = self.object_copies()?;
        let reachable = self.reachable()?;
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        let mut kept = HashSet::new();
        for copy in copies {
            if reachable.contains(&copy.digest) {
                kept.insert(copy.digest);
            } else {
                doomed.push(copy);
            }
        }
        report.kept = kept.len();
        let order = containers_parents_first(self, doomed);
        if !dry_run {
            self.objects_removed();
        }
        for container in order {
            match container {
                Container::Loose(copy) => {
                    let path = copy.location.path();
                    report.removed_bytes += fs::metadata(path).map_or(0, |m| m.len());
                    report.removed.push((copy.digest, copy.format));
                    if !dry_run {
                        fs::remove_file(path).map_err(Error::io("remove", path))?;
                    }
                }
                Container::Pack { path, doomed } => {
                    report.removed_bytes += doomed.iter().map(|entry| entry.len).sum::<u64>();
                    report
                        .removed
                        .extend(doomed.iter().map(|entry| (entry.digest, entry.format)));
                    if !dry_run {
                        let gone: HashSet<u64> = doomed.iter().map(|entry| entry.offset).collect();
                        self.drop_from_pack(&path, &gone)?;
                    }
                }
            }
        }
        report.removed.sort();
        report.removed.dedup();
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
            report.removed_temp += 1;
            if !dry_run {
                remove_tree(&path)?;
            }
        }
        Ok(report)
    }
}

/// What gc removes objects from: a loose object's file, or a pack (rewritten without them, or removed when nothing
/// in it is kept).
enum Container {
    Loose(ObjectCopy),
    Pack {
        path: PathBuf,
        doomed: Vec<PackEntry>,
    },
}

/// Orders the files holding unreachable objects for deletion: a file goes only once no remaining file holds an
/// unreachable node naming an unreachable object in it (Kahn's order over the files), so every node still present
/// keeps its children. A loose directory node is its own file, so among loose nodes this is parents first, and
/// loose blobs (which name nothing) come after the nodes naming them. One add's packs only name objects in
/// themselves, in earlier packs or in loose blobs, so they never form a cycle; packs written by concurrent adds
/// that share objects could, and a cycle is broken in address order (a gc killed right there may leave an
/// unreachable node without a child, which the next gc removes). A node that cannot be read names nothing.
fn containers_parents_first(store: &Store, doomed: Vec<ObjectCopy>) -> Vec<Container> {
    let mut containers: Vec<Container> = Vec::new();
    let mut pack_ids: HashMap<PathBuf, usize> = HashMap::new();
    // Where each doomed object is held (an object may have several copies).
    let mut held_in: HashMap<Digest, Vec<usize>> = HashMap::new();
    let mut nodes: Vec<(usize, Digest)> = Vec::new();
    for copy in doomed {
        let id = match &copy.location {
            Location::Loose(_) => {
                containers.push(Container::Loose(copy.clone()));
                containers.len() - 1
            }
            Location::Packed { pack, offset, len } => {
                let id = *pack_ids.entry(pack.clone()).or_insert_with(|| {
                    containers.push(Container::Pack {
                        path: pack.clone(),
                        doomed: Vec::new(),
                    });
                    containers.len() - 1
                });
                if let Container::Pack { doomed, .. } = &mut containers[id] {
                    doomed.push(PackEntry {
                        digest: copy.digest,
                        format: copy.format,
                        offset: *offset,
                        len: *len,
                    });
                }
                id
            }
        };
        held_in.entry(copy.digest).or_default().push(id);
        if copy.format == ObjectFormat::Directory {
            nodes.push((id, copy.digest));
        }
    }
    let mut before: Vec<HashSet<usize>> = vec![HashSet::new(); containers.len()];
    let mut waits_for = vec![0usize; containers.len()];
    for (id, digest) in nodes {
        let Ok(Some(directory)) = store.get_directory(&digest) else {
            continue;
        };
        for (_, node) in directory.entries() {
            if let Node::File { digest: child, .. } | Node::Directory { digest: child, .. } = node {
                for &other in held_in.get(child).into_iter().flatten() {
                    if other != id && before[id].insert(other) {
                        waits_for[other] += 1;
                    }
                }
            }
        }
    }
    let mut order = Vec::with_capacity(containers.len());
    let mut done = vec![false; containers.len()];
    let mut ready: Vec<usize> = (0..containers.len())
        .filter(|id| waits_for[*id] == 0)
        .rev()
        .collect();
    while order.len() < containers.len() {
        let next = match ready.pop() {
            Some(next) => next,
            // A cycle: take the first file left.
            None => match (0..containers.len()).find(|id| !done[*id]) {
                Some(next) => next,
                None => break,
            },
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        order.push(next);
        for &after in &before[next] {
            waits_for[after] = waits_for[after].saturating_sub(1);
            if waits_for[after] == 0 && !done[after] {
                ready.push(after);
            }
        }
    }
    let mut slots: Vec<Option<Container>> = containers.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|id| slots[id].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::meta::Root;

    #[test]
    fn a_pack_with_live_and_dead_objects_is_rewritten_with_the_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("keep/deeper")).unwrap();
        fs::create_dir_all(tree.join("drop")).unwrap();
        fs::write(tree.join("keep/deeper/file"), "kept\n".repeat(100)).unwrap();
        fs::write(tree.join("keep/small"), "k").unwrap();
        fs::write(tree.join("drop/file"), "dropped\n".repeat(100)).unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let root = store.add_path(&tree).unwrap().digest();
        let keep_name = crate::PathComponent::new("keep").unwrap();
        let keep = match store.directory(&root).unwrap().get(&keep_name) {
            Some(Node::Directory { digest, .. }) => *digest,
            other => panic!("{other:?}"),
        };
        let packs = store.pack_files().unwrap();
        assert_eq!(packs.len(), 1, "one add, one pack");
        store
            .set_root(
                "keep",
                &Root {
                    description: "test".into(),
                    addresses: vec![keep],
                },
            )
            .unwrap();
        drop(store);

        let store = Store::open_with(dir.path().join("store"), LockMode::Exclusive).unwrap();
        let report = store.gc(false).unwrap();
        // The root node, `drop/` and its file; `keep/`, `keep/deeper/` and two files stay.
        assert_eq!(report.removed.len(), 3, "{report:?}");
        assert_eq!(report.kept, 4);
        let after = store.pack_files().unwrap();
        assert_eq!(after.len(), 1);
        assert_ne!(after, packs, "the pack was rewritten");
        let kept: HashSet<Digest> = store
            .object_copies()
            .unwrap()
            .iter()
            .map(|c| c.digest)
            .collect();
        assert_eq!(kept.len(), 4);
        assert!(!kept.contains(&root));
        assert!(store.verify(false).unwrap().problems.is_empty());
        let mut nar = Vec::new();
        store.dump_nar(&keep, &mut nar).unwrap();
        assert!(nar.windows(5).any(|window| window == b"kept\n"));

        // Unrooted, the rewritten pack goes whole.
        store.remove_root("keep").unwrap();
        store.gc(false).unwrap();
        assert!(store.pack_files().unwrap().is_empty());
        assert!(store.object_copies().unwrap().is_empty());
    }
}
