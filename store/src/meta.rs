//! Small JSON records beside the objects: gc roots (`roots-v1/`) and namespaced metadata (`meta-v1/`).
//!
//! Records are written atomically and are hints: losing one loses no object, and every consumer re-checks that
//! the objects a record names exist. Names are restricted to `[A-Za-z0-9._-]`, at most 200 bytes, not starting with
//! `.`, so a name can never point outside its directory.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;

/// What the layers above know about their records. The store knows nothing of builds or fetchers, so whoever opens
/// it for an import or a verify passes one of these in: it says whether a record is well formed and which objects it
/// refers to, and the store checks those are present.
pub trait RecordSchema: Send + Sync {
    /// Checks the record `namespace/key` holding `value`: the addresses it refers to, or why it is not valid
    /// (an unknown namespace, a missing field, a key that does not match its contents).
    fn check(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> std::result::Result<Vec<Digest>, String>;

    /// Whether `namespace` is one the schema describes. Verify reports records of other namespaces but `--repair`
    /// keeps them: they may be a newer hstore's, and deleting what one does not understand is not a repair.
    fn knows(&self, namespace: &str) -> bool {
        let _ = namespace;
        true
    }
}

/// One kind of record a layer above writes under `meta-v1/<namespace>/`, declared beside the code that writes it
/// (the fetchers' download records, the build records). Every kind is listed once in a [`RecordKinds`] registry,
/// which is what import and verify check records against: a namespace no kind declares is never imported, and
/// verify reports it without deleting it.
#[derive(Clone, Copy, Debug)]
pub struct RecordKind {
    /// The directory under `meta-v1/`.
    pub namespace: &'static str,
    /// Whether a bundle may carry it (build records). Download records map an upstream hash to an address: `fetch`
    /// rebuilds them, and a bundle has no business planting them.
    pub travels: bool,
    /// Checks a record stored under `key`: the addresses it refers to, or why it is not valid.
    pub check: fn(key: &str, value: &serde_json::Value) -> std::result::Result<Vec<Digest>, String>,
}

impl RecordKind {
    /// A [`RecordKind::check`] helper: parses `value` as `T`, the error in words.
    pub fn parse<T: DeserializeOwned>(value: &serde_json::Value) -> std::result::Result<T, String> {
        T::deserialize(value).map_err(|error| error.to_string())
    }
}

/// The registry of every [`RecordKind`], as a [`RecordSchema`]: the binary collects it once and passes it to import
/// (only the kinds that travel) and to verify (all of them).
#[derive(Clone, Debug)]
pub struct RecordKinds {
    kinds: Vec<RecordKind>,
    travelling_only: bool,
}

impl RecordKinds {
    /// Every kind in `kinds`; a namespace declared twice is a programming error, caught by the tests that build
    /// the registry.
    pub fn new(kinds: impl IntoIterator<Item = RecordKind>) -> Self {
        let kinds: Vec<RecordKind> = kinds.into_iter().collect();
        debug_assert!(
            kinds.iter().enumerate().all(|(at, kind)| kinds[..at]
                .iter()
                .all(|earlier| earlier.namespace != kind.namespace)),
            "a record namespace is declared twice"
        );
        Self {
            kinds,
            travelling_only: false,
        }
    }

    /// The same registry, accepting only the kinds that travel in bundles (for import).
    #[must_use]
    pub fn travelling(&self) -> Self {
        Self {
            kinds: self.kinds.clone(),
            travelling_only: true,
        }
    }

    /// The namespaces declared, in registry order.
    pub fn namespaces(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|kind| kind.namespace)
    }
}

impl RecordSchema for RecordKinds {
    fn check(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> std::result::Result<Vec<Digest>, String> {
        let Some(kind) = self.kinds.iter().find(|kind| kind.namespace == namespace) else {
            return Err(format!("namespace `{namespace}` is not one hstore writes"));
        };
        if self.travelling_only && !kind.travels {
            let travelling: Vec<String> = self
                .kinds
                .iter()
                .filter(|kind| kind.travels)
                .map(|kind| format!("`{}`", kind.namespace))
                .collect();
            return Err(format!(
                "namespace `{namespace}` does not travel in bundles (only {} records do)",
                travelling.join(", ")
            ));
        }
        (kind.check)(key, value)
    }

    fn knows(&self, namespace: &str) -> bool {
        self.kinds.iter().any(|kind| kind.namespace == namespace)
    }
}

/// A gc root: objects (and everything below them) that gc must keep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// What registered it, for people reading `roots-v1/`.
    pub description: String,
    /// Addresses kept alive.
    pub addresses: Vec<Digest>,
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidMetadataName {
            name: name.to_owned(),
        })
    }
}

impl Store {
    fn root_path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.layout().roots().join(format!("{name}.json")))
    }

    fn meta_path(&self, namespace: &str, key: &str) -> Result<PathBuf> {
        validate_name(namespace)?;
        validate_name(key)?;
        Ok(self
            .layout()
            .meta()
            .join(namespace)
            .join(format!("{key}.json")))
    }

    /// Registers (or replaces) the gc root `name`.
    pub fn set_root(&self, name: &str, root: &Root) -> Result<()> {
        let path = self.root_path(name)?;
        self.write_json(&path, root)
    }

    /// Removes the gc root `name`; a missing root is not an error.
    pub fn remove_root(&self, name: &str) -> Result<()> {
        let path = self.root_path(name)?;
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path)(error))
            }
            _ => Ok(()),
        }
    }

    /// When the gc root `name` was last registered or extended (its file's modification time); `Ok(None)` if absent.
    /// Kept out of the root's JSON on purpose: roots travel in bundles, whose bytes must not depend on the day.
    pub fn root_registered(&self, name: &str) -> Result<Option<std::time::SystemTime>> {
        let path = self.root_path(name)?;
        match fs::metadata(&path) {
            Ok(metadata) => metadata
                .modified()
                .map(Some)
                .map_err(Error::io("read the modification time of", &path)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::io("read the metadata of", &path)(error)),
        }
    }

    /// Removes the gc roots `names`, each of which must exist (checked for all before any is removed), unlike
    /// [`Store::remove_root`]: a person naming a root that is not there has mistyped it.
    pub fn remove_named_roots(&self, names: &[String]) -> Result<()> {
        let roots = self.root_names()?;
        if let Some(missing) = names.iter().find(|name| !roots.contains(name)) {
            return Err(Error::NoSuchRoot {
                name: missing.clone(),
                roots,
            });
        }
        names.iter().try_for_each(|name| self.remove_root(name))
    }

    /// Every gc root, sorted by name.
    pub fn roots(&self) -> Result<Vec<(String, Root)>> {
        let dir = self.layout().roots();
        let mut roots = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(root) = read_json::<Root>(&entry.path())? {
                roots.push((name.to_owned(), root));
            }
        }
        roots.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(roots)
    }

    /// Writes the record `namespace/key`.
    pub fn put_meta<T: Serialize>(&self, namespace: &str, key: &str, value: &T) -> Result<()> {
        let path = self.meta_path(namespace, key)?;
        self.write_json(&path, value)
    }

    /// Reads the record `namespace/key`; `Ok(None)` if absent.
    pub fn get_meta<T: DeserializeOwned>(&self, namespace: &str, key: &str) -> Result<Option<T>> {
        read_json(&self.meta_path(namespace, key)?)
    }

    /// Writes the record `namespace/key` unless one exists; returns whether it was written. Two processes racing
    /// to write the same key both see one winner: the record is linked into place, never renamed over another.
    pub fn put_meta_if_absent<T: Serialize>(
        &self,
        namespace: &str,
        key: &str,
        value: &T,
    ) -> Result<bool> {
        let path = self.meta_path(namespace, key)?;
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        self.write_file_new(&path, &bytes)
    }

    /// Removes the record `namespace/key`; a missing record is not an error.
    pub fn remove_meta(&self, namespace: &str, key: &str) -> Result<()> {
        let path = self.meta_path(namespace, key)?;
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path)(error))
            }
            _ => Ok(()),
        }
    }

    /// Every namespace that holds records, sorted.
    pub fn meta_namespaces(&self) -> Result<Vec<String>> {
        let dir = self.layout().meta();
        let mut namespaces = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            if let Some(name) = entry.file_name().to_str()
                && validate_name(name).is_ok()
            {
                namespaces.push(name.to_owned());
            }
        }
        namespaces.sort();
        Ok(namespaces)
    }

    /// The gc root `name` as stored; `Ok(None)` if absent, an error naming the file if it is not a valid root.
    pub fn get_root(&self, name: &str) -> Result<Option<Root>> {
        read_json(&self.root_path(name)?)
    }

    /// Names of every gc root file, sorted, without reading them.
    pub fn root_names(&self) -> Result<Vec<String>> {
        let dir = self.layout().roots();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            if let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                && validate_name(name).is_ok()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Keys of every record in `namespace`, sorted.
    pub fn list_meta(&self, namespace: &str) -> Result<Vec<String>> {
        validate_name(namespace)?;
        let dir = self.layout().meta().join(namespace);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::io("list", &dir)(error)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &dir))?;
            if let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
            {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn write_json<T: Serialize>(&self, path: &std::path::Path, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        bytes.push(b'\n');
        self.write_file_atomic(path, &bytes)
    }
}

fn read_json<T: DeserializeOwned>(path: &std::path::Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io("read", path)(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name("lockfile-ab12.json_x").is_ok());
    }
}
