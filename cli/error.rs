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
    /// `import`: build records the bundle carried but nothing vouches for (unsigned, or signed by a key not
    /// trusted), dropped; the objects were imported.
    #[error(
        "dropped {}: {why}; a build record is taken only on a trusted signature",
        record_list(records)
    )]
    BundleRecordsDropped {
        /// The records (`namespace/key`).
        records: Vec<String>,
        /// Why nothing vouches for them.
        why: String,
    },
    /// `cache pull` with no trusted key: the cache's build records, left unread.
    #[error(
        "dropped {} of `{cache}`: no key is trusted to vouch for them",
        record_list(records)
    )]
    CacheRecordsDropped {
        /// The cache's URL.
        cache: String,
        /// The records' build keys.
        records: Vec<String>,
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
    /// `sbom --bundle -`: a bundle's SBOM reads it more than once.
    #[error(
        "`hstore sbom --bundle` cannot read a bundle from stdin: it reads the bundle up to three times"
    )]
    SbomOfStdin,
    /// `SOURCE_DATE_EPOCH` is not a number of seconds.
    #[error("`SOURCE_DATE_EPOCH` is `{value}`, not a whole number of seconds since 1970-01-01")]
    BadSourceDateEpoch {
        /// What it holds.
        value: String,
    },
}

/// `the build record of key `K`` or `3 build records (`K1`, `K2`, `K3`)`, naming at most five keys.
fn record_list(records: &[String]) -> String {
    let key = |record: &String| -> String {
        let key = record
            .split_once('/')
            .map_or(record.as_str(), |(_, key)| key);
        format!("`{key}`")
    };
    if let [one] = records {
        return format!("the build record of key {}", key(one));
    }
    let named: Vec<String> = records.iter().take(5).map(key).collect();
    let more = records.len().saturating_sub(named.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} build records ({}{tail})",
        records.len(),
        named.join(", ")
    )
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
            CliError::BundleRecordsDropped { .. } => Some(
                "to take the bundle's build records, export it with `--sign KEY` and import it with `--trust \
                 KEY.pub` (or list the key in `[caches] trusted-keys` of hstore.toml); its objects were imported, \
                 and `hstore build` rebuilds what has no record"
                    .into(),
            ),
            CliError::CacheRecordsDropped { .. } => Some(
                "a build record is taken from a cache only when signed by a trusted key: pass `--trust KEY.pub` (or \
                 list the key in `[caches] trusted-keys` of hstore.toml); without a record, `hstore build` rebuilds"
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
            CliError::SbomOfStdin => Some("save the bundle to a file first, and pass its path".into()),
            CliError::BadSourceDateEpoch { .. } => {
                Some("set it to `$(git log -1 --format=%ct)`, or unset it for an SBOM with no timestamp".into())
            }
            CliError::IncompletePull { cache, .. } => Some(format!(
                "push them from a store that holds them (`hstore cache push`), or run `hstore fetch --cache {cache}` \
                 to take the rest from upstream"
            )),
        }
    }
}
