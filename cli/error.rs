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
    /// `diff`: OLD is not a file, and git could not show it as a revision of NEW.
    #[error("`{old}` is not a lockfile file, and `git show {object}` in `{}` failed: {git}", directory.display())]
    UnknownOldLockfile {
        /// OLD as given.
        old: String,
        /// The object asked of git (`REV:PATH`).
        object: String,
        /// Where git ran.
        directory: PathBuf,
        /// What git said.
        git: String,
        /// NEW, for the hint.
        new: PathBuf,
    },
    /// `why`: nothing in the lockfile is, or holds, what was asked about.
    #[error("`{query}` is neither an artifact of `{}` nor inside one", lockfile.display())]
    NotInLockfile {
        /// The name or address asked about.
        query: String,
        /// The lockfile read.
        lockfile: PathBuf,
        /// Whether the query was an address and the store could be searched.
        searched_store: bool,
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
            CliError::UnknownOldLockfile { new, .. } => Some(format!(
                "pass a lockfile path, a git revision of `{}` (`HEAD~1`, a tag), or `REVISION:PATH`",
                new.display()
            )),
            CliError::NotInLockfile { searched_store: false, query, .. } if query.starts_with("b3:") => Some(
                "an address inside an artifact is found only when the store holds it: run `hstore fetch` first".into(),
            ),
            CliError::NotInLockfile { .. } => Some(
                "give a crate, wheel or xmake package name, `name@version`, a repository name or URL, a lockfile id, \
                 or a `b3:` address; `--lockfile` names another lockfile"
                    .into(),
            ),
            CliError::IncompletePull { cache, .. } => Some(format!(
                "push them from a store that holds them (`hstore cache push`), or run `hstore fetch --cache {cache}` \
                 to take the rest from upstream"
            )),
        }
    }
}
