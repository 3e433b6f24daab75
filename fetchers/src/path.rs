//! `path` sources: a local directory stored as a tree.
//!
//! The recipe's path is relative to the recipe file; the lockfile records it relative to the lockfile's directory,
//! so a checkout moved elsewhere still locks the same. `.git` is always left out, at any depth; so is a cargo build
//! directory: `target` at the top, or a `target` below that holds cargo's `CACHEDIR.TAG` (a nested crate's build
//! output). Any other directory named `target` is source (xmake's own scripts have one) and is kept.
//! Each `exclude` entry without a `/` is a name left out at any depth; one with a `/` is a path relative to the
//! source root (and everything below it). A path source is re-read on every `lock` (its content is the pin) through
//! the store's stat cache, so an unchanged tree costs a `stat` per file; `fetch` re-adds it from disk only when the
//! locked tree is missing or incomplete (reading every file again, past the stat cache), failing if it changed. Files other users cannot read are refused
//! ([`Access::OthersReadable`]): the store would hand them to every sandbox and every bundle.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use hstore_store::{Access, Digest};

use crate::context::Fetcher;
use crate::error::{Error, Result};
use crate::lockfile::{Artifact, PathArtifact};

/// Names always excluded, at any depth.
pub const DEFAULT_EXCLUDES: [&str; 1] = [".git"];

/// Cargo's build directory name: excluded at the top of the source, and below it where it holds [`CACHEDIR_TAG`].
pub const CARGO_TARGET_DIR: &str = "target";

/// The file cargo (and other tools following the Cache Directory Tagging spec) writes into its build directory.
/// See: <https://bford.info/cachedir/>
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG";

/// What a `path` source asks for, with its directory resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSpec {
    /// The directory on disk.
    pub dir: PathBuf,
    /// `dir` relative to the lockfile's directory (with `/`).
    pub relative: String,
    /// Extra excludes from the recipe.
    pub exclude: Vec<String>,
}

impl PathSpec {
    /// Resolves `path` (relative to `base`, the recipe's directory at lock time or the lockfile's at fetch time).
    pub fn new(base: &Path, path: &str, lockfile_dir: &Path, exclude: &[String]) -> Result<Self> {
        let joined = base.join(path);
        let dir = joined
            .canonicalize()
            .map_err(Error::io("find path source", &joined))?;
        let anchor = lockfile_dir
            .canonicalize()
            .map_err(Error::io("find directory", lockfile_dir))?;
        Ok(Self {
            relative: relative_path(&anchor, &dir),
            dir,
            exclude: exclude.to_vec(),
        })
    }

    /// The lockfile id.
    pub fn id(&self) -> String {
        if self.exclude.is_empty() {
            format!("path+{}", self.relative)
        } else {
            format!("path+{}#exclude={}", self.relative, self.exclude.join(","))
        }
    }

    /// The extra excludes a `path` artifact was locked with, read back from its [id](Self::id) (`path` is the
    /// artifact's `path`): what `fetch` re-hashes the directory with, from the artifact alone. `None` when the id is
    /// not one [`PathSpec::id`] writes for `path`. Exclude entries hold no `,` (`Recipe::load` refuses one), so the
    /// list reads back exactly.
    pub fn excludes_from_id(path: &str, id: &str) -> Option<Vec<String>> {
        let rest = id.strip_prefix("path+")?.strip_prefix(path)?;
        if rest.is_empty() {
            return Some(Vec::new());
        }
        let list = rest.strip_prefix("#exclude=")?;
        Some(list.split(',').map(str::to_owned).collect())
    }

    fn excluded(&self, relative: &Path) -> bool {
        let Some(name) = relative.file_name() else {
            return false;
        };
        if DEFAULT_EXCLUDES.iter().any(|d| name == *d) {
            return true;
        }
        if name == CARGO_TARGET_DIR
            && (relative.parent() == Some(Path::new(""))
                || self.dir.join(relative).join(CACHEDIR_TAG).is_file())
        {
            return true;
        }
        self.exclude.iter().any(|pattern| {
            if pattern.contains('/') {
                relative == Path::new(pattern.trim_end_matches('/'))
            } else {
                name == pattern.as_str()
            }
        })
    }
}

/// Stores a local directory given on the command line in place of a locked source (`hstore build
/// --override-input RECIPE.SOURCE=DIR`), left out exactly what a `path` source leaves out and nothing more, through
/// the stat cache (a checkout rebuilt after a small edit re-reads only what changed). Returns its address and size.
pub fn add_override_tree(store: &hstore_store::Store, dir: &Path) -> Result<(Digest, u64)> {
    let spec = PathSpec {
        dir: dir
            .canonicalize()
            .map_err(Error::io("find directory", dir))?,
        relative: String::new(),
        exclude: Vec::new(),
    };
    store
        .add_local_tree(
            &spec.dir,
            &|relative| spec.excluded(relative),
            Access::OthersReadable,
        )
        .map_err(Error::from)
}

/// `to` relative to `from` (both absolute, canonical), with `/` separators; `.` when equal.
pub fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// Hashes the directory into the store; with `locked`, the result must be the locked address.
pub async fn ensure(
    fetcher: &Fetcher,
    spec: &PathSpec,
    locked: Option<&Artifact>,
) -> Result<Artifact> {
    let store = Arc::clone(fetcher.store());
    if let Some(locked) = locked
        && store.closure_complete(&locked.address())?
    {
        return Ok(locked.clone());
    }
    let owned = spec.clone();
    // A locked tree that is incomplete lost objects (to `store verify --repair`, or damage): its stat cache and its
    // existing directory nodes would vouch for blobs that are gone, so every file is read and stored again.
    let heal = locked.is_some();
    let (address, size): (Digest, u64) = crate::error::blocking(move || {
        let exclude = |relative: &Path| owned.excluded(relative);
        if heal {
            store.add_local_tree_uncached(&owned.dir, &exclude, Access::OthersReadable)
        } else {
            store.add_local_tree(&owned.dir, &exclude, Access::OthersReadable)
        }
        .map_err(Error::from)
    })
    .await?;
    crate::error::check_drift(|| spec.id(), locked, address)?;
    Ok(Artifact::Path(PathArtifact {
        id: spec.id().into(),
        path: spec.relative.clone(),
        address,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/a/b")), ".");
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/a")), "..");
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c/d")),
            "../c/d"
        );
    }

    #[test]
    fn excludes_read_back_from_the_id() {
        let spec = PathSpec {
            dir: PathBuf::from("/x"),
            relative: "a#b".into(),
            exclude: vec!["docs".into(), "a/b".into()],
        };
        assert_eq!(
            PathSpec::excludes_from_id("a#b", &spec.id()),
            Some(spec.exclude.clone())
        );
        assert_eq!(
            PathSpec::excludes_from_id("a#b", "path+a#b"),
            Some(Vec::new())
        );
        assert_eq!(PathSpec::excludes_from_id("a#b", "path+a#bc"), None);
        assert_eq!(PathSpec::excludes_from_id("a", "git+a"), None);
    }

    #[test]
    fn excludes_match_names_and_paths() {
        let spec = PathSpec {
            dir: "/x".into(),
            relative: ".".into(),
            exclude: vec!["docs".into(), "a/b".into()],
        };
        assert!(spec.excluded(Path::new("target")));
        assert!(spec.excluded(Path::new("sub/.git")));
        assert!(spec.excluded(Path::new("q/docs")));
        assert!(spec.excluded(Path::new("a/b")));
        assert!(!spec.excluded(Path::new("c/a/b")));
        assert!(!spec.excluded(Path::new("src")));
    }

    // See: issue 11 (a nested `target` directory of xmake's own scripts was dropped from its source tree).
    #[test]
    fn only_cargo_build_directories_named_target_are_left_out() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("crates/app/target")).expect("mkdir");
        std::fs::write(
            root.path().join("crates/app/target").join(CACHEDIR_TAG),
            "Signature: 8a477f597d28d172789f06886806bc55\n",
        )
        .expect("write tag");
        std::fs::create_dir_all(root.path().join("modules/checkers/api/target")).expect("mkdir");
        let spec = PathSpec {
            dir: root.path().to_path_buf(),
            relative: ".".into(),
            exclude: Vec::new(),
        };
        assert!(spec.excluded(Path::new("target")));
        assert!(spec.excluded(Path::new("crates/app/target")));
        assert!(!spec.excluded(Path::new("modules/checkers/api/target")));
    }
}
