//! `verify`: re-hash every object alone (the store is self-validating) and, with repair, drop the bad ones so the
//! next `fetch` or `import` brings them back.
//!
//! Checks, in parallel: each blob decompresses and hashes to its name; each directory node decodes under the
//! format's rules and hashes to its name; each child a directory names is present, and has the size the directory
//! claims for it (a node claiming 10^15 bytes for a 6-byte blob is corrupt even though it hashes to its name); each
//! materialized tree in the cache still hashes to its name. Then the small files: each gc root parses and names
//! objects that are present, and each record parses and passes the [`RecordSchema`] the caller passes in.
//!
//! Repair removes what can be fetched or imported again, and nothing else: corrupt objects (a lying directory node
//! included), corrupt cached trees, and roots and records that cannot be parsed or fail their schema. Records of a
//! namespace the schema does not know are reported and kept (they may be a newer hstore's). A directory
//! left naming a removed child is not removed: `fetch` (which checks closures, not just roots) brings the child back.

use std::collections::HashMap;
use std::fs;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::Result;
use crate::ingest::{hash_reader, hash_tree};
use crate::layout::ObjectFormat;
use crate::meta::RecordSchema;
use crate::pack::Location;
use crate::remove::remove_tree;
use crate::store::{ObjectCopy, Store};
use crate::tree::{Directory, Node};

/// One problem found by verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The object's bytes do not match its address, or cannot be decoded.
    Corrupt {
        /// The object.
        digest: Digest,
        /// How it is stored.
        format: ObjectFormat,
        /// What is wrong.
        reason: String,
    },
    /// A directory names a child the store does not hold.
    MissingChild {
        /// The directory.
        parent: Digest,
        /// The absent child.
        child: Digest,
    },
    /// A gc root names an object the store does not hold.
    RootMissingObject {
        /// The root.
        root: String,
        /// The absent object.
        address: Digest,
    },
    /// A gc root file cannot be parsed.
    BadRoot {
        /// The root.
        root: String,
        /// Why.
        reason: String,
    },
    /// A record cannot be parsed or fails its schema.
    BadRecord {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Records in a namespace the schema does not describe (written by another hstore version, or by hand):
    /// reported, never removed by repair.
    UnknownNamespace {
        /// The namespace.
        namespace: String,
        /// How many records it holds.
        records: usize,
    },
    /// A pack file cannot be read (its index is damaged, or does not hash to its name): its objects read as
    /// missing.
    CorruptPack {
        /// The pack file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A materialized tree in the cache no longer matches its address.
    CorruptMaterializedTree {
        /// The tree.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Corrupt {
                digest,
                format,
                reason,
            } => {
                write!(f, "corrupt {} {digest}: {reason}", format.kind_name())
            }
            Problem::MissingChild { parent, child } => {
                write!(f, "tree {parent} names missing object {child}")
            }
            Problem::CorruptPack { path, reason } => {
                write!(f, "pack `{}` is corrupt: {reason}", path.display())
            }
            Problem::RootMissingObject { root, address } => {
                write!(f, "gc root `{root}` names missing object {address}")
            }
            Problem::BadRoot { root, reason } => {
                write!(f, "gc root `{root}` is not valid: {reason}")
            }
            Problem::BadRecord {
                namespace,
                key,
                reason,
            } => write!(f, "record `{namespace}/{key}` is not valid: {reason}"),
            Problem::UnknownNamespace { namespace, records } => write!(
                f,
                "{records} records in namespace `{namespace}`, which this hstore does not write (kept by --repair)"
            ),
            Problem::CorruptMaterializedTree { digest, reason } => {
                write!(
                    f,
                    "materialized tree {digest} in the cache is corrupt: {reason}"
                )
            }
        }
    }
}

/// The outcome of [`Store::verify`].
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Objects checked.
    pub checked: usize,
    /// Problems found, sorted.
    pub problems: Vec<Problem>,
    /// Objects and cached trees removed by repair.
    pub repaired: usize,
}

/// What pass one learned about one object.
enum Checked {
    /// A sound blob of this many bytes.
    Blob(u64),
    /// A sound directory node whose files total this many bytes.
    Directory(u64),
    /// Corrupt (reported already).
    Bad,
}

impl Store {
    /// Checks every object, root and record (records without a schema only for being valid JSON); with `repair`,
    /// removes what can be restored (see the module docs).
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        self.verify_with(repair, None)
    }

    /// [`Store::verify`] with the schema of the records of the layers above.
    pub fn verify_with(
        &self,
        repair: bool,
        schema: Option<&dyn RecordSchema>,
    ) -> Result<VerifyReport> {
        let crate::store::ObjectScan {
            copies,
            unreadable_packs,
        } = self.scan_objects()?;
        // Pass one: every stored copy of every object alone.
        let checked: Vec<(Digest, Checked, Option<Problem>)> = copies
            .par_iter()
            .map(|copy| {
                let (digest, format) = (copy.digest, copy.format);
                match check_copy(copy) {
                    Ok(state) => (digest, state, None),
                    Err(reason) => (digest, Checked::Bad, Some(corrupt(digest, format, reason))),
                }
            })
            .collect();
        // Copies to remove on repair: the corrupt ones alone (another copy of the same object may be sound).
        let mut bad_copies: Vec<Location> = copies
            .iter()
            .zip(&checked)
            .filter(|(_, (_, _, problem))| problem.is_some())
            .map(|(copy, _)| copy.location.clone())
            .collect();
        let mut problems: Vec<Problem> = unreadable_packs
            .into_iter()
            .map(|(path, reason)| Problem::CorruptPack { path, reason })
            .collect();
        let mut sound: HashMap<Digest, Checked> = HashMap::with_capacity(checked.len());
        for (digest, state, problem) in checked {
            problems.extend(problem);
            // One sound copy makes the object sound.
            if !matches!(state, Checked::Bad) || !sound.contains_key(&digest) {
                sound.insert(digest, state);
            }
        }
        // Pass two: each sound directory against its children.
        let directories: Vec<Digest> = sound
            .iter()
            .filter(|(_, state)| matches!(state, Checked::Directory(_)))
            .map(|(digest, _)| *digest)
            .collect();
        problems.extend(
            directories
                .par_iter()
                .flat_map_iter(|digest| self.check_children(digest, &sound))
                .collect::<Vec<_>>(),
        );
        problems.extend(self.verify_materialized_trees()?);
        problems.extend(self.verify_roots()?);
        problems.extend(self.verify_records(schema)?);
        problems.sort_by_key(ToString::to_string);
        problems.dedup();
        // A node lying about a child's size lies in every copy.
        let lying: std::collections::HashSet<Digest> = problems
            .iter()
            .filter_map(|problem| match problem {
                Problem::Corrupt {
                    digest,
                    format: ObjectFormat::Directory,
                    ..
                } => Some(*digest),
                _ => None,
            })
            .collect();
        bad_copies.extend(
            copies
                .iter()
                .filter(|copy| {
                    copy.format == ObjectFormat::Directory && lying.contains(&copy.digest)
                })
                .map(|copy| copy.location.clone()),
        );
        let mut report = VerifyReport {
            checked: copies.len(),
            problems,
            repaired: 0,
        };
        if repair {
            self.objects_removed();
            report.repaired += self.remove_copies(bad_copies)?;
            for problem in &report.problems {
                match problem {
                    Problem::CorruptPack { path, .. } => {
                        self.remove_pack(path)?;
                        report.repaired += 1;
                    }
                    Problem::CorruptMaterializedTree { digest, .. } => {
                        remove_tree(&self.layout().tree(digest))?;
                        report.repaired += 1;
                    }
                    Problem::BadRoot { root, .. } => {
                        self.remove_root(root)?;
                        report.repaired += 1;
                    }
                    Problem::BadRecord { namespace, key, .. } => {
                        self.remove_meta(namespace, key)?;
                        report.repaired += 1;
                    }
                    // Corrupt copies went above, all at once.
                    Problem::Corrupt { .. }
                    | Problem::UnknownNamespace { .. }
                    | Problem::MissingChild { .. }
                    | Problem::RootMissingObject { .. } => {}
                }
            }
        }
        Ok(report)
    }

    /// Removes stored copies: loose files, and entries of packs (each pack rewritten once). Returns how many.
    fn remove_copies(&self, copies: Vec<Location>) -> Result<usize> {
        let mut removed = 0;
        let mut from_packs: HashMap<std::path::PathBuf, std::collections::HashSet<u64>> =
            HashMap::new();
        for location in copies {
            match location {
                Location::Loose(path) => match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(crate::Error::io("remove", &path)(error)),
                },
                Location::Packed { pack, offset, .. } => {
                    from_packs.entry(pack).or_default().insert(offset);
                }
            }
        }
        for (pack, offsets) in from_packs {
            removed += offsets.len();
            self.drop_from_pack(&pack, &offsets)?;
        }
        Ok(removed)
    }

    /// A sound directory's children: present, and of the size it claims (else the directory is corrupt: it hashes
    /// to its name but lies about its content).
    fn check_children(&self, parent: &Digest, sound: &HashMap<Digest, Checked>) -> Vec<Problem> {
        let Ok(Some(directory)) = self.get_directory(parent) else {
            // Changed since pass one (a concurrent repair): nothing to say about it now.
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (name, node) in directory.entries() {
            let (child, claimed) = match node {
                Node::File { digest, size, .. } | Node::Directory { digest, size } => {
                    (*digest, *size)
                }
                Node::Symlink { .. } => continue,
            };
            let actual =
                match (node, sound.get(&child)) {
                    (_, None) => {
                        problems.push(Problem::MissingChild {
                            parent: *parent,
                            child,
                        });
                        continue;
                    }
                    (_, Some(Checked::Bad)) => continue,
                    (Node::File { .. }, Some(Checked::Blob(size)))
                    | (Node::Directory { .. }, Some(Checked::Directory(size))) => *size,
                    (_, Some(Checked::Blob(_) | Checked::Directory(_))) => {
                        problems.push(corrupt(
                        *parent,
                        ObjectFormat::Directory,
                        format!(
                            "entry `{}` names {child} as a {}, but it is stored as the other kind",
                            String::from_utf8_lossy(name.as_bytes()),
                            if matches!(node, Node::File { .. }) { "file" } else { "directory" },
                        ),
                    ));
                        continue;
                    }
                };
            if actual != claimed {
                problems.push(corrupt(
                    *parent,
                    ObjectFormat::Directory,
                    format!(
                        "entry `{}` claims {claimed} bytes, but {child} holds {actual}",
                        String::from_utf8_lossy(name.as_bytes())
                    ),
                ));
            }
        }
        problems
    }

    fn verify_roots(&self) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        for name in self.root_names()? {
            match self.get_root(&name) {
                Err(error) => problems.push(Problem::BadRoot {
                    root: name,
                    reason: error_chain(&error),
                }),
                Ok(None) => {}
                Ok(Some(root)) => {
                    for address in root.addresses {
                        if self.object_format(&address)?.is_none() {
                            problems.push(Problem::RootMissingObject {
                                root: name.clone(),
                                address,
                            });
                        }
                    }
                }
            }
        }
        Ok(problems)
    }

    /// Records must parse and pass the schema; a record naming a missing object is not a problem (its consumer
    /// treats it as absent, and gc may have collected its objects after its root went).
    fn verify_records(&self, schema: Option<&dyn RecordSchema>) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        for namespace in self.meta_namespaces()? {
            if let Some(schema) = schema
                && !schema.knows(&namespace)
            {
                problems.push(Problem::UnknownNamespace {
                    records: self.list_meta(&namespace)?.len(),
                    namespace,
                });
                continue;
            }
            for key in self.list_meta(&namespace)? {
                let reason = match self.get_meta::<serde_json::Value>(&namespace, &key) {
                    Err(error) => Some(error_chain(&error)),
                    Ok(None) => None,
                    Ok(Some(value)) => {
                        schema.and_then(|schema| schema.check(&namespace, &key, &value).err())
                    }
                };
                if let Some(reason) = reason {
                    problems.push(Problem::BadRecord {
                        namespace: namespace.clone(),
                        key,
                        reason,
                    });
                }
            }
        }
        Ok(problems)
    }

    fn verify_materialized_trees(&self) -> Result<Vec<Problem>> {
        let trees = self.layout().trees();
        let mut problems = Vec::new();
        for entry in fs::read_dir(&trees).map_err(crate::Error::io("list", &trees))? {
            let entry = entry.map_err(crate::Error::io("list", &trees))?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            match hash_tree(&entry.path()) {
                Ok((actual, _)) if actual == digest => {}
                Ok((actual, _)) => problems.push(Problem::CorruptMaterializedTree {
                    digest,
                    reason: format!("hashes to {actual}"),
                }),
                Err(error) => problems.push(Problem::CorruptMaterializedTree {
                    digest,
                    reason: error_chain(&error),
                }),
            }
        }
        Ok(problems)
    }
}

/// Checks one stored copy alone: a blob decompresses and hashes to its name; a node hashes to its name and
/// decodes. `Err` says what is wrong.
fn check_copy(copy: &ObjectCopy) -> std::result::Result<Checked, String> {
    let (digest, location) = (copy.digest, &copy.location);
    match copy.format {
        ObjectFormat::Directory => {
            let bytes = location.read().map_err(|error| error.to_string())?;
            let actual = Digest::of_bytes(&bytes);
            if actual != digest {
                return Err(format!("hashes to {actual}"));
            }
            let directory = Directory::decode(&bytes).map_err(|error| error.to_string())?;
            Ok(Checked::Directory(directory.total_size()))
        }
        format @ (ObjectFormat::RawBlob | ObjectFormat::ZstdBlob) => {
            let read_error = |error: std::io::Error| {
                error_chain(&crate::Error::io("read", location.path())(error))
            };
            let (file, len) = location.open().map_err(read_error)?;
            if format == ObjectFormat::ZstdBlob {
                // Frame headers first: a cut or damaged frame names the object.
                Store::zstd_content_size_in(&digest, location, &file, len)
                    .map_err(|error| error_chain(&error))?;
            }
            let stored = std::io::BufReader::new(std::io::Read::take(file, len));
            let hashed = if format == ObjectFormat::ZstdBlob {
                let mut decoder = zstd::stream::Decoder::with_buffer(stored).map_err(read_error)?;
                hash_reader(&mut decoder)
            } else {
                let mut stored = stored;
                hash_reader(&mut stored)
            };
            let (actual, size) = hashed.map_err(read_error)?;
            if actual != digest {
                return Err(format!("hashes to {actual}"));
            }
            Ok(Checked::Blob(size))
        }
    }
}

fn corrupt(digest: Digest, format: ObjectFormat, reason: String) -> Problem {
    Problem::Corrupt {
        digest,
        format,
        reason,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
