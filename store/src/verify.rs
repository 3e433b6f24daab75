//! `verify`: re-hash every object alone (the store is self-validating) and, with repair, drop the bad ones so the
//! next `fetch` or `import` brings them back.
//!
//! Checks, in parallel: each blob decompresses and hashes to its name; each directory node decodes under the
//! format's rules and hashes to its name; each child a directory names is present; each materialized tree in the
//! cache still hashes to its name.

use std::fs;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::error::Result;
use crate::ingest::hash_tree;
use crate::layout::ObjectFormat;
use crate::materialize::remove_tree;
use crate::store::Store;
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

impl Store {
    /// Checks every object; with `repair`, removes corrupt objects and cached trees.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let files = self.object_files()?;
        let mut problems: Vec<Problem> = files
            .par_iter()
            .flat_map_iter(|(digest, format, path)| {
                let mut found = Vec::new();
                match format {
                    ObjectFormat::Directory => match fs::read(path) {
                        Err(error) => found.push(corrupt(*digest, *format, error.to_string())),
                        Ok(bytes) => {
                            let actual = Digest::of_bytes(&bytes);
                            if actual == *digest {
                                match Directory::decode(&bytes) {
                                    Err(error) => {
                                        found.push(corrupt(*digest, *format, error.to_string()));
                                    }
                                    Ok(directory) => {
                                        found.extend(self.missing_children(digest, &directory));
                                    }
                                }
                            } else {
                                found.push(corrupt(
                                    *digest,
                                    *format,
                                    format!("hashes to {actual}"),
                                ));
                            }
                        }
                    },
                    _ => match self.hash_stored_blob(digest) {
                        Err(error) => found.push(corrupt(*digest, *format, error_chain(&error))),
                        Ok((actual, _)) if actual != *digest => {
                            found.push(corrupt(*digest, *format, format!("hashes to {actual}")));
                        }
                        Ok(_) => {}
                    },
                }
                found
            })
            .collect();
        problems.extend(self.verify_materialized_trees()?);
        problems.sort_by_key(ToString::to_string);
        let mut report = VerifyReport {
            checked: files.len(),
            problems,
            repaired: 0,
        };
        if repair {
            for problem in &report.problems {
                match problem {
                    Problem::Corrupt { digest, format, .. } => {
                        let path = self.layout().object(digest, *format);
                        fs::remove_file(&path).map_err(crate::Error::io("remove", &path))?;
                        report.repaired += 1;
                    }
                    Problem::CorruptMaterializedTree { digest, .. } => {
                        remove_tree(&self.layout().tree(digest))?;
                        report.repaired += 1;
                    }
                    Problem::MissingChild { .. } => {}
                }
            }
        }
        Ok(report)
    }

    fn missing_children(&self, parent: &Digest, directory: &Directory) -> Vec<Problem> {
        directory
            .entries()
            .filter_map(|(_, node)| match node {
                Node::File { digest, .. } | Node::Directory { digest, .. } => {
                    matches!(self.object_format(digest), Ok(None)).then_some(
                        Problem::MissingChild {
                            parent: *parent,
                            child: *digest,
                        },
                    )
                }
                Node::Symlink { .. } => None,
            })
            .collect()
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
