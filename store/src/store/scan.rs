//! Scanning the store: every object and every copy of it (loose files and packs), and removing copies (gc,
//! repair).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::{fs, io};

use super::{ObjectInfo, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::ObjectFormat;
use crate::pack::{Location, PackEntry};

/// What [`Store::scan_objects`] found.
pub(crate) struct ObjectScan {
    /// Every stored copy, sorted by address.
    pub copies: Vec<ObjectCopy>,
    /// Packs whose index cannot be read, with why.
    pub unreadable_packs: Vec<(PathBuf, String)>,
}

/// One stored copy of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCopy {
    /// Its address.
    pub digest: Digest,
    /// How it is stored.
    pub format: ObjectFormat,
    /// Where.
    pub location: Location,
}

impl Store {
    /// Every object in the store, sorted by address, each once. Unknown files (never written by us) are skipped.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        let mut objects: Vec<ObjectInfo> = Vec::new();
        for copy in self.object_copies()? {
            if objects
                .last()
                .is_some_and(|last| (last.digest, last.format) == (copy.digest, copy.format))
            {
                continue;
            }
            let size = match copy.format {
                ObjectFormat::RawBlob => copy
                    .location
                    .stored_len()
                    .map_err(Error::io("stat", copy.location.path()))?,
                ObjectFormat::ZstdBlob => Self::zstd_content_size(&copy.digest, &copy.location)?,
                ObjectFormat::Directory => match self.get_directory(&copy.digest) {
                    Ok(Some(directory)) => directory.total_size(),
                    _ => 0,
                },
            };
            objects.push(ObjectInfo {
                digest: copy.digest,
                format: copy.format,
                size,
            });
        }
        Ok(objects)
    }

    /// Every stored copy of every object, loose or packed, sorted by address (an object may be in more than one
    /// pack, when concurrent adds both stored it). Packs whose index cannot be read are in `unreadable_packs`.
    pub fn object_copies(&self) -> Result<Vec<ObjectCopy>> {
        Ok(self.scan_objects()?.copies)
    }

    /// [`Store::object_copies`], and the packs that could not be read, with why.
    pub(crate) fn scan_objects(&self) -> Result<ObjectScan> {
        let dir = self.layout.packs();
        let mut read = Vec::new();
        let mut unreadable = Vec::new();
        for (pack, name) in crate::pack::list(&dir).map_err(Error::io("list", &dir))? {
            match crate::pack::read_index(&pack) {
                Ok(entries) => read.push((pack, name, entries)),
                Err(error) => unreadable.push((pack, error.to_string())),
            }
        }
        // What the lookups after a scan (verify's second pass, gc's walk from the roots) need, already read.
        self.packs_mut().insert_listed(&read);
        let mut found = Vec::new();
        for (pack, _, entries) in read {
            found.extend(entries.into_iter().map(|entry| ObjectCopy {
                digest: entry.digest,
                format: entry.format,
                location: Location::Packed {
                    pack: pack.clone(),
                    offset: entry.offset,
                    len: entry.len,
                },
            }));
        }
        let objects_dir = self.layout.objects();
        for shard in fs::read_dir(&objects_dir).map_err(Error::io("list", &objects_dir))? {
            let shard = shard.map_err(Error::io("list", &objects_dir))?;
            let shard_path = shard.path();
            if !shard_path.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard_path).map_err(Error::io("list", &shard_path))? {
                let entry = entry.map_err(Error::io("list", &shard_path))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some((hex_digits, suffix)) = name.split_once('.') else {
                    continue;
                };
                let (Ok(digest), Some(format)) = (
                    Digest::from_hex(hex_digits),
                    ObjectFormat::from_suffix(suffix),
                ) else {
                    continue;
                };
                found.push(ObjectCopy {
                    digest,
                    format,
                    location: Location::Loose(entry.path()),
                });
            }
        }
        found.sort_by_key(|copy| (copy.digest, copy.format));
        Ok(ObjectScan {
            copies: found,
            unreadable_packs: unreadable,
        })
    }

    /// Replaces the pack at `path` by one without the objects stored at the offsets in `dropped` (none left: the
    /// pack is removed), written and made durable before the old one goes, so a kept object is present at every
    /// moment. For gc and repair, which hold the store lock exclusively or remove only what is corrupt.
    pub(crate) fn drop_from_pack(&self, path: &Path, dropped: &HashSet<u64>) -> Result<()> {
        let entries = crate::pack::read_index(path).map_err(|error| Error::CorruptPack {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let keep = |entry: &PackEntry| !dropped.contains(&entry.offset);
        if entries.iter().all(keep) {
            return Ok(());
        }
        crate::pack::rewrite(
            path,
            &entries,
            &keep,
            &self.layout.tmp(),
            &self.layout.packs(),
        )
        .map_err(Error::io("rewrite", path))?;
        self.remove_pack(path)
    }

    /// Removes a pack file (the caller saw to what it held), and forgets what this process knew of packs.
    pub(crate) fn remove_pack(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io("remove", path)(error));
            }
            _ => {}
        }
        self.mark_dirty(self.layout.packs());
        self.objects_removed();
        Ok(())
    }

    /// Removes every copy of `digest`, loose or packed, as a gc or repair in another process would: for tests that
    /// need an object gone behind the store's back.
    #[cfg(test)]
    pub(crate) fn remove_every_copy(&self, digest: &Digest) {
        for copy in self.object_copies().expect("list objects") {
            if copy.digest != *digest {
                continue;
            }
            match copy.location {
                Location::Loose(path) => fs::remove_file(path).expect("remove object"),
                Location::Packed { pack, offset, .. } => self
                    .drop_from_pack(&pack, &HashSet::from([offset]))
                    .expect("rewrite pack"),
            }
        }
    }

    /// Every file in `packs-v1/` named like a pack, sorted.
    #[cfg(test)]
    pub(crate) fn pack_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.layout.packs();
        let packs = crate::pack::list(&dir).map_err(Error::io("list", &dir))?;
        Ok(packs.into_iter().map(|(path, _)| path).collect())
    }
}
