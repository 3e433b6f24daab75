//! [`Merge`]: laying several tar streams (the `data.tar` members of Debian packages) into one tree, under the rules
//! of [`unpack`](super::unpack) with four differences, each needed to reproduce what dpkg leaves on disk:
//!
//! - **Redirects.** [`Merge::new`] makes the top-level directory links it is given ([`Redirect`], `bin -> usr/bin`:
//!   merged /usr) before anything is unpacked, and an entry under one (`./bin/bash`) is written to the path the link
//!   names (`usr/bin/bash`), as `tar --keep-directory-symlink` would. Only these links are ever passed through: the
//!   rewrite is done on the entry's path, so the parent-by-parent walk still refuses every symlink on disk,
//!   including any a package shipped. An entry naming a redirect itself is accepted if it is a directory (`./bin/`)
//!   or a symlink to the same place, and refused otherwise.
//! - **Absolute symlinks** (`/lib/x86_64-linux-gnu/libanl.so.1`, common in packages) are rewritten to the relative
//!   path from the link's real directory to the target, after the target's first component is passed through the
//!   redirects too (`../../lib/x86_64-linux-gnu/libanl.so.1` from `usr/lib/x86_64-linux-gnu/`, here `libanl.so.1`),
//!   so the tree is relocatable and the store's rule ([`check_symlink_target`]) still holds for every link. A target
//!   with a `..` component is not normalized (a name on the way may be a symlink): it is kept as it is below the
//!   root and then refused by the rule. Relative targets are kept as shipped; like the kernel on a merged-/usr
//!   system, they resolve from the link's real directory.
//! - **Hardlinks** to a regular file unpacked earlier from the same archive become copies of it (content and
//!   executable bit); one to anything else (another archive's file, a symlink, a path not yet unpacked, an
//!   absolute or `..` path) is refused. The copy is read from the tree with `O_NOFOLLOW`, and its bytes count
//!   against the archive's cap.
//! - **Conflicts.** Directories may repeat across archives; a file or symlink path that an earlier archive already
//!   unpacked is refused with [`Refusal::Conflict`] naming that archive's label.
//!
//! Setuid, setgid and sticky bits are dropped as by [`unpack`](super::unpack) (only the owner executable bit
//! survives) and counted in [`MergeReport::special_bits_stripped`]; devices and FIFOs are still refused.
//!
//! The merge remembers every file and symlink it made (its real path, kind and archive) so the caller can look
//! paths up ([`Merge::entry`], [`Merge::files_under`], [`Merge::read_file`]) and add generated files and links
//! under the same rules ([`Merge::add_file`], [`Merge::add_symlink`]) without following anything on disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use super::{
    Cow, Error, File, Hooks, Kind, OpenOptions, Path, PathBuf, PathComponent, PathComponentError,
    Refusal, UnpackReport, Unpacker, fs, io, make_dir, prepare_destination,
};

/// The label of what [`Merge::add_file`] and [`Merge::add_symlink`] create.
const GENERATED: &str = "hstore (generated)";

/// A top-level directory symlink that a [`Merge`] makes and writes through: `from -> to` (`bin -> usr/bin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    from: PathComponent,
    to: Vec<PathComponent>,
}

impl Redirect {
    /// The link `from` at the tree's root to the directory `to` (relative to the root, `/`-separated).
    pub fn new(from: &str, to: &str) -> Result<Self, PathComponentError> {
        let to_bytes = |to: &str| to.as_bytes().to_vec();
        let target = to;
        let to = target
            .split('/')
            .filter(|component| !component.is_empty())
            .map(PathComponent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(PathComponentError {
                name: to_bytes(target),
                reason: "a redirect needs a target directory",
            });
        }
        Ok(Redirect {
            from: PathComponent::try_from(from)?,
            to,
        })
    }

    /// The link's name at the root.
    pub fn from(&self) -> &PathComponent {
        &self.from
    }

    /// The link's target as written (`usr/bin`).
    pub fn target(&self) -> String {
        join(&self.to)
    }
}

/// What a path in a [`Merge`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergedKind {
    /// A regular file.
    File {
        /// Whether its owner executable bit is set.
        executable: bool,
    },
    /// A symlink.
    Symlink,
}

/// A file or symlink in a [`Merge`], from [`Merge::entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedEntry<'a> {
    /// Its real path relative to the root, after redirects (`usr/bin/bash` for `/bin/bash`).
    pub path: String,
    /// What it is.
    pub kind: MergedKind,
    /// The label of the archive that shipped it.
    pub owner: &'a str,
}

/// What a [`Merge`] made, over all its archives and generated entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Archives unpacked.
    pub archives: u64,
    /// Regular files written (hardlink copies and generated files included).
    pub files: u64,
    /// Directories created, explicit or implied.
    pub directories: u64,
    /// Symlinks created (generated ones included, the redirects not).
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// The redirect links made by [`Merge::new`].
    pub redirects: u64,
    /// Entries written through a redirect (`./bin/bash` to `usr/bin/bash`).
    pub redirected: u64,
    /// Hardlinks materialized as copies.
    pub hardlinks_copied: u64,
    /// Absolute symlink targets rewritten as relative ones.
    pub absolute_symlinks_rewritten: u64,
    /// Entries whose setuid, setgid or sticky bit was dropped.
    pub special_bits_stripped: u64,
}

impl MergeReport {
    fn add(&mut self, report: &UnpackReport) {
        self.files += report.files;
        self.directories += report.directories;
        self.symlinks += report.symlinks;
        self.bytes += report.bytes;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    archive: usize,
    kind: MergedKind,
}

/// The merge's state, which the engine ([`Unpacker`]) consults through [`Hooks`] while it lays one archive in.
struct State {
    redirects: Vec<Redirect>,
    /// Every file and symlink unpacked so far, by real path (`usr/bin/bash`).
    owners: BTreeMap<Vec<u8>, Owner>,
    /// Archive labels; index 0 is [`GENERATED`].
    labels: Vec<String>,
    /// The archive being unpacked, an index into `labels`.
    current: usize,
    counts: MergeReport,
}

/// How a path relates to the redirects.
enum Redirected {
    /// No redirect is involved.
    No,
    /// The path was under a redirect and now names the real path.
    Through,
    /// The path is the redirect at this index itself.
    Itself(usize),
}

impl State {
    /// Rewrites `components` through the redirect of its first component, if any.
    fn redirect(&self, components: &mut Vec<PathComponent>) -> Redirected {
        let Some(first) = components.first() else {
            return Redirected::No;
        };
        let Some(index) = self
            .redirects
            .iter()
            .position(|redirect| redirect.from == *first)
        else {
            return Redirected::No;
        };
        if components.len() == 1 {
            return Redirected::Itself(index);
        }
        components.splice(..1, self.redirects[index].to.iter().cloned());
        Redirected::Through
    }

    /// The relative target that an absolute `target` becomes for a link whose real directory is `link_dir`.
    fn relative_target(&self, link_dir: &[PathComponent], target: &[u8]) -> Vec<u8> {
        let Some(mut components) = parse(target) else {
            // A `..` or an invalid name: keep it below the root, where the store's rule refuses it.
            let mut kept = b"../".repeat(link_dir.len());
            kept.extend(target.iter().skip_while(|&&byte| byte == b'/'));
            return kept;
        };
        if let Redirected::Itself(index) = self.redirect(&mut components) {
            components.clone_from(&self.redirects[index].to);
        }
        let common = link_dir
            .iter()
            .zip(&components)
            .take_while(|(a, b)| a == b)
            .count();
        let mut parts: Vec<&[u8]> = vec![b".."; link_dir.len() - common];
        parts.extend(components[common..].iter().map(PathComponent::as_bytes));
        if parts.is_empty() {
            return b".".to_vec();
        }
        parts.join(&b'/')
    }

    fn label(&self, owner: Owner) -> &str {
        &self.labels[owner.archive]
    }

    /// Remembers that the current archive made `components`.
    fn record_owner(&mut self, components: &[PathComponent], kind: MergedKind) {
        let owner = Owner {
            archive: self.current,
            kind,
        };
        self.owners.insert(key(components), owner);
    }
}

/// `a/./b//c` or `/a/b` as components, or `None` if a component is `..` or not a valid name.
fn parse(path: &[u8]) -> Option<Vec<PathComponent>> {
    path.split(|&byte| byte == b'/')
        .filter(|component| !matches!(*component, b"" | b"."))
        .map(|component| {
            if component == b".." {
                None
            } else {
                PathComponent::new(component).ok()
            }
        })
        .collect()
}

fn key(components: &[PathComponent]) -> Vec<u8> {
    components
        .iter()
        .map(PathComponent::as_bytes)
        .collect::<Vec<_>>()
        .join(&b'/')
}

fn join(components: &[PathComponent]) -> String {
    String::from_utf8_lossy(&key(components)).into_owned()
}

impl Hooks for State {
    fn special_bits_stripped(&mut self) {
        self.counts.special_bits_stripped += 1;
    }

    /// Applies the redirects, and rewrites an absolute symlink target as a relative one.
    fn place<'k>(
        &mut self,
        components: &mut Vec<PathComponent>,
        kind: Kind<'k>,
    ) -> Result<Option<Kind<'k>>, Refusal> {
        match self.redirect(components) {
            Redirected::No => {}
            Redirected::Through => self.counts.redirected += 1,
            Redirected::Itself(index) => {
                let redirect = &self.redirects[index];
                let same = match &kind {
                    Kind::Directory => true,
                    Kind::Symlink { target } => parse(target).as_ref() == Some(&redirect.to),
                    _ => false,
                };
                if same {
                    return Ok(None);
                }
                return Err(Refusal::Conflict {
                    path: redirect.from.to_string(),
                    other: format!(
                        "the merged-/usr link `{} -> {}` that hstore made",
                        redirect.from,
                        redirect.target()
                    ),
                });
            }
        }
        if let Kind::Symlink { target } = &kind
            && target.first() == Some(&b'/')
        {
            let link_dir = &components[..components.len() - 1];
            let target = self.relative_target(link_dir, target);
            self.counts.absolute_symlinks_rewritten += 1;
            return Ok(Some(Kind::Symlink {
                target: Cow::Owned(target),
            }));
        }
        Ok(Some(kind))
    }

    /// A [`Refusal::Conflict`] naming the archive that shipped `components`, when that was another archive.
    fn taken(&self, components: &[PathComponent]) -> Option<Refusal> {
        let &owner = self.owners.get(&key(components))?;
        (owner.archive != self.current).then(|| Refusal::Conflict {
            path: join(components),
            other: format!("`{}`", self.label(owner)),
        })
    }

    fn made_file(&mut self, components: &[PathComponent], executable: bool) {
        self.record_owner(components, MergedKind::File { executable });
    }

    fn made_symlink(&mut self, components: &[PathComponent]) {
        self.record_owner(components, MergedKind::Symlink);
    }

    /// Only a relative `target` (passed through the redirects) naming a regular file that the current archive
    /// unpacked.
    fn hardlink_source(
        &self,
        target: &[u8],
        strip_components: usize,
    ) -> Option<(Vec<PathComponent>, bool)> {
        if target.first() == Some(&b'/') {
            return None;
        }
        let mut components = parse(target)?;
        if components.len() <= strip_components {
            return None;
        }
        components.drain(..strip_components);
        if let Redirected::Itself(_) = self.redirect(&mut components) {
            return None;
        }
        match self.owners.get(&key(&components)) {
            Some(&Owner {
                archive,
                kind: MergedKind::File { executable },
            }) if archive == self.current => Some((components, executable)),
            _ => None,
        }
    }

    fn hardlink_copied(&mut self) {
        self.counts.hardlinks_copied += 1;
    }
}

/// Several archives unpacked into one tree; see the [module docs](self).
pub struct Merge {
    dest: PathBuf,
    state: State,
}

impl Merge {
    /// Starts a tree at `dest`, which MUST be an empty directory or not exist yet (its parent must), and makes the
    /// `redirects`' links in it, each with its target directory.
    pub fn new(dest: &Path, redirects: Vec<Redirect>) -> Result<Self, Error> {
        prepare_destination(dest)?;
        let mut counts = MergeReport::default();
        for redirect in &redirects {
            let mut path = dest.to_path_buf();
            for component in &redirect.to {
                path.push(component.as_os_str());
                match fs::symlink_metadata(&path) {
                    Ok(metadata) if metadata.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::io("create directory", path)(io::Error::from(
                            io::ErrorKind::AlreadyExists,
                        )));
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        make_dir(&path)?;
                        counts.directories += 1;
                    }
                    Err(error) => return Err(Error::io("inspect", path)(error)),
                }
            }
            let link = dest.join(redirect.from.as_os_str());
            std::os::unix::fs::symlink(redirect.target(), &link)
                .map_err(Error::io("create symlink", link))?;
            counts.redirects += 1;
        }
        Ok(Merge {
            dest: dest.to_owned(),
            state: State {
                redirects,
                owners: BTreeMap::new(),
                labels: vec![GENERATED.to_owned()],
                current: 0,
                counts,
            },
        })
    }

    /// The tree's root.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// What the merge has made so far.
    pub fn report(&self) -> &MergeReport {
        &self.state.counts
    }

    /// Lays the tar stream `reader` into the tree. `archive` (its file, for errors) and `label` (what names it in
    /// a [`Refusal::Conflict`] of a later archive, such as `bash 5.2.15-2+b7`) identify it; `max_unpacked_size`
    /// caps its file content (hardlink copies included).
    pub fn unpack_tar(
        &mut self,
        reader: impl Read,
        archive: &Path,
        label: &str,
        max_unpacked_size: Option<u64>,
    ) -> Result<UnpackReport, Error> {
        self.state.labels.push(label.to_owned());
        self.state.current = self.state.labels.len() - 1;
        let mut unpacker = Unpacker {
            archive,
            origin: None,
            dest: &self.dest,
            strip_components: 0,
            limit: max_unpacked_size,
            report: UnpackReport::default(),
            merge: Some(&mut self.state),
        };
        let result = unpacker.tar(reader);
        let report = unpacker.report;
        self.state.counts.add(&report);
        self.state.counts.archives += 1;
        result.map(|()| report)
    }

    /// Adds a generated file at `path` (absolute or relative to the root, passed through the redirects), under the
    /// same rules as an archive's entry: it MUST NOT exist yet, and no symlink is followed.
    pub fn add_file(&mut self, path: &str, content: &[u8], executable: bool) -> Result<(), Error> {
        self.add(path, Kind::File { executable }, content)
    }

    /// Adds a generated symlink at `path` (as [`Merge::add_file`]); an absolute `target` is rewritten as a relative
    /// one, and the result MUST obey the store's rule.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), Error> {
        let target = Kind::Symlink {
            target: Cow::Borrowed(target.as_bytes()),
        };
        self.add(path, target, &[])
    }

    fn add(&mut self, path: &str, kind: Kind<'_>, mut content: &[u8]) -> Result<(), Error> {
        self.state.current = 0;
        let relative = path.trim_start_matches('/');
        let mut unpacker = Unpacker {
            archive: Path::new(GENERATED),
            origin: None,
            dest: &self.dest,
            strip_components: 0,
            limit: None,
            report: UnpackReport::default(),
            merge: Some(&mut self.state),
        };
        let result = unpacker.entry(relative.as_bytes(), kind, &mut content);
        let report = unpacker.report;
        self.state.counts.add(&report);
        result
    }

    /// The file or symlink at `path` (absolute or relative to the root, passed through the redirects), if an
    /// archive or [`Merge::add_file`]/[`Merge::add_symlink`] made one there. Directories are not tracked.
    pub fn entry(&self, path: &str) -> Option<MergedEntry<'_>> {
        let mut components = parse(path.as_bytes())?;
        if let Redirected::Itself(_) = self.state.redirect(&mut components) {
            return None;
        }
        let owner = *self.state.owners.get(&key(&components))?;
        Some(MergedEntry {
            path: join(&components),
            kind: owner.kind,
            owner: self.state.label(owner),
        })
    }

    /// The real paths of the files and symlinks below the directory `dir` (passed through the redirects), at any
    /// depth, in byte order.
    pub fn files_under(&self, dir: &str) -> Vec<MergedEntry<'_>> {
        let Some(mut components) = parse(dir.as_bytes()) else {
            return Vec::new();
        };
        if let Redirected::Itself(index) = self.state.redirect(&mut components) {
            components.clone_from(&self.state.redirects[index].to);
        }
        let mut prefix = key(&components);
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        self.state
            .owners
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .map(|(path, &owner)| MergedEntry {
                path: String::from_utf8_lossy(path).into_owned(),
                kind: owner.kind,
                owner: self.state.label(owner),
            })
            .collect()
    }

    /// The content of the regular file at `path` (see [`Merge::entry`]), or `None` if the merge made none there; a
    /// file larger than `max` bytes is an error.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
        let Some(entry) = self.entry(path) else {
            return Ok(None);
        };
        if !matches!(entry.kind, MergedKind::File { .. }) {
            return Ok(None);
        }
        let path = self.dest.join(&entry.path);
        let file: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        let mut content = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut content)
            .map_err(Error::io("read", &path))?;
        if content.len() as u64 > max {
            return Err(Error::io("read", &path)(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {max} bytes"),
            )));
        }
        Ok(Some(content))
    }
}
