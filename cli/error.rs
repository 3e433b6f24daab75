//! [`CliError`]: the failures and warnings the CLI detects itself (not a library's), each with its [`Hint`], so that
//! every hint reaches the user one way: [`Printer::report`](crate::printer::Printer::report) reads it from the `Hint`
//! trait of each error in a chain. A command never writes a `hint:` line as text.

use std::path::PathBuf;

use hstore_store::Hint;

/// A problem found by a command rather than by a library.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `lock --locked`: locking the recipes gives a different lockfile than the one on disk.
    #[error("`{}` is not up to date with the recipes (`--locked`):{}", lockfile.display(), changes_list(changes))]
    StaleLockfile {
        /// The lockfile.
        lockfile: PathBuf,
        /// What changed, one line each (`- source app.code {…}`, `+ artifact …`).
        changes: Vec<String>,
    },
    /// `import`: the bundle carries a record for a key the store already has a different record for, and is not
    /// signed by a trusted key, so the store's own record was kept.
    #[error(
        "kept the store's own record `{record}`: the bundle carries a different one and is not signed by a trusted key"
    )]
    RecordKept {
        /// The record (`namespace/key`).
        record: String,
    },
    /// `cache pull`: some lockfiles' objects are not in the cache (or failed verification).
    #[error(
        "{incomplete} of {lockfiles} lockfiles are incomplete: {objects} objects are not in `{cache}` or failed \
         verification (first: {first})"
    )]
    IncompletePull {
        /// Lockfiles whose closure is not complete.
        incomplete: usize,
        /// Lockfiles asked for.
        lockfiles: usize,
        /// Objects missing or damaged.
        objects: usize,
        /// The cache's URL.
        cache: String,
        /// The first few missing addresses.
        first: String,
    },
}

fn changes_list(changes: &[String]) -> String {
    changes.iter().fold(String::new(), |mut text, change| {
        text.push_str("\n  ");
        text.push_str(change);
        text
    })
}

impl Hint for CliError {
    fn hint(&self) -> Option<String> {
        match self {
            CliError::StaleLockfile { .. } => Some("run `hstore lock` without `--locked` and commit the result".into()),
            CliError::RecordKept { .. } => Some(
                "a record is replaced only by a bundle signed with a key passed to `--trust`; to discard the local \
                 record, remove it from `meta-v1/` first"
                    .into(),
            ),
            CliError::IncompletePull { cache, .. } => Some(format!(
                "push them from a store that holds them (`hstore cache push`), or run `hstore fetch --cache {cache}` \
                 to take the rest from upstream"
            )),
        }
    }
}
