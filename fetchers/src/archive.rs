//! Safe, deterministic unpacking of downloaded archives (`.tar.gz`, `.tar.xz`, `.tar.zst`, `.tar`, `.zip`, `.crate`,
//! `.whl`) into a fresh directory that the store then hashes.
//!
//! Unpacking never writes outside its destination; no symlink, hardlink or device trick gets through. The rules,
//! each checked per entry before anything is written:
//!
//! - An entry path MUST be relative and MUST NOT contain a `..` component; every component MUST be a valid
//!   [`PathComponent`]. Empty and `.` components are dropped, so `./a//b` is `a/b`.
//! - After the first [`UnpackOptions::strip_components`] components are dropped, an entry left with no path is
//!   skipped if it is a directory (`./`, `pkg-1.0/`) and refused otherwise; an entry with fewer components than that
//!   is skipped (as `tar --strip-components` does) and counted in [`UnpackReport::skipped`].
//! - Symlinks MUST obey the store's rule for links in a tree, [`check_symlink_target`] (shared with `--install-path`):
//!   a non-empty relative target that climbs with leading `..` components no higher than the destination and then
//!   only descends (`../../lib/x.so` is fine, `a/../b` is not), so no chain of symlinks inside the tree can resolve
//!   outside it.
//! - Nothing is ever written through a symlink: parent directories are created one component at a time and every
//!   existing component MUST be a real directory (not a symlink or a file created earlier by the same archive).
//!   Files are created with `O_CREAT | O_EXCL` and symlinks with `symlink(2)`, neither of which follows a symlink at
//!   the final component.
//! - An entry MUST NOT replace anything already unpacked (a repeated directory entry is fine).
//! - Hardlinks, character and block devices, FIFOs and unknown entry types are refused.
//!
//! Only file contents, the owner executable bit, the directory structure and symlink targets survive: files are
//! written `0644` or `0755`, directories `0755`, and owners, times, xattrs and pax extras are ignored, so the same
//! archive gives the same tree (and the same store digest) on every machine.
//!
//! Disk use is bounded too: the file content an archive unpacks to, counted at apparent size (a sparse entry's
//! holes included), stops at [`UnpackOptions::max_unpacked_size`] (`--max-unpacked-size`; by default
//! [`default_max_unpacked_size`]); each entry's declared size is checked before it is written and every chunk as it
//! streams, so a 119-byte bomb fails with [`Error::TooLarge`] naming the archive and the cap.
//!
//! Memory stays bounded whatever the archive size (the xz decoder to 256 MiB, only `.xz` streams accepted; a
//! header asking more fails the read): tar formats are decoded as a stream; zip needs a seekable
//! [`File`] for its central directory, but each member is still copied as a stream.
//!
//! On error, `dest` holds a partial tree; callers unpack into a temporary directory and discard it.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hstore_store::path_component::PathComponentError;
use hstore_store::tree::MAX_SYMLINK_TARGET;
use hstore_store::{Hint, PathComponent, SymlinkTargetError, check_symlink_target};

mod merge;

pub use merge::{Merge, MergeReport, MergedEntry, MergedKind, Redirect};

/// The most memory the xz decoder may take. A header states the dictionary it needs, up to 4 GiB, and liblzma
/// allocates it unasked (the fuzzer's 57-byte `.tar.xz` asked for more than 2 GiB); `xz -9` needs 65 MiB.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// File type bits of a Unix mode, as zip's "external attributes" carry them.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Archive formats [`unpack`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// gzip-compressed tar (`.tar.gz`, `.tgz`, `.crate`).
    TarGz,
    /// xz-compressed tar (`.tar.xz`, `.txz`).
    TarXz,
    /// zstd-compressed tar (`.tar.zst`, `.tzst`).
    TarZst,
    /// Uncompressed tar (`.tar`).
    Tar,
    /// Zip (`.zip`, `.whl`).
    Zip,
}

impl ArchiveFormat {
    /// Guesses the format from a file name's extension (ASCII case-insensitive), or `None` for anything else.
    pub fn from_file_name(name: &str) -> Option<Self> {
        const SUFFIXES: &[(&str, ArchiveFormat)] = &[
            (".tar.gz", ArchiveFormat::TarGz),
            (".tgz", ArchiveFormat::TarGz),
            (".crate", ArchiveFormat::TarGz),
            (".tar.xz", ArchiveFormat::TarXz),
            (".txz", ArchiveFormat::TarXz),
            (".tar.zst", ArchiveFormat::TarZst),
            (".tzst", ArchiveFormat::TarZst),
            (".tar", ArchiveFormat::Tar),
            (".zip", ArchiveFormat::Zip),
            (".whl", ArchiveFormat::Zip),
        ];
        let name = name.to_ascii_lowercase();
        SUFFIXES
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))
            .map(|&(_, format)| format)
    }
}

/// How [`unpack`] lays out the tree.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Leading path components to drop from every entry (`1` turns `pkg-1.0/src/a.c` into `src/a.c`).
    pub strip_components: usize,
    /// The cap on the bytes of file content the archive may unpack to (`--max-unpacked-size`).
    pub max_unpacked_size: MaxUnpackedSize,
    /// What the archive is called in an error about it as a whole (its URL); its path when `None`.
    pub origin: Option<String>,
}

/// The cap on what one archive may unpack to, counted at apparent size (a sparse entry counts its holes) while it
/// streams, so a small archive that expands enormously (a 119-byte `.tar.gz` of 2 GiB of zeros) fails without
/// filling the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MaxUnpackedSize {
    /// [`default_max_unpacked_size`] of the archive's size.
    #[default]
    Default,
    /// At most this many bytes.
    Bytes(u64),
    /// No cap (`--max-unpacked-size none`).
    Unlimited,
}

impl MaxUnpackedSize {
    /// The cap for an archive of `archive_size` bytes, or `None` for no cap.
    pub fn for_archive(self, archive_size: u64) -> Option<u64> {
        match self {
            MaxUnpackedSize::Default => Some(default_max_unpacked_size(archive_size)),
            MaxUnpackedSize::Bytes(bytes) => Some(bytes),
            MaxUnpackedSize::Unlimited => None,
        }
    }
}

/// How many times its own size an archive may unpack to by default.
pub const DEFAULT_UNPACK_RATIO: u64 = 64;

/// The least default cap: a genuine source archive of a few hundred MiB may well unpack to gigabytes.
pub const DEFAULT_MIN_MAX_UNPACKED_SIZE: u64 = 16 << 30;

/// The default cap for an archive of `archive_size` bytes: [`DEFAULT_UNPACK_RATIO`] times its size or
/// [`DEFAULT_MIN_MAX_UNPACKED_SIZE`], whichever is larger.
pub fn default_max_unpacked_size(archive_size: u64) -> u64 {
    archive_size
        .saturating_mul(DEFAULT_UNPACK_RATIO)
        .max(DEFAULT_MIN_MAX_UNPACKED_SIZE)
}

/// What [`unpack`] created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created, explicit or implied.
    pub directories: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries dropped by [`UnpackOptions::strip_components`].
    pub skipped: u64,
}

/// Why an entry was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The entry path starts with `/`.
    AbsolutePath,
    /// The entry path has a `..` component.
    ParentComponent,
    /// A component is not a valid file name.
    InvalidName(PathComponentError),
    /// Nothing is left of a non-directory entry's path (after stripping).
    EmptyPath,
    /// A symlink's target breaks the store's rule for links in a tree ([`check_symlink_target`]): empty or
    /// invalid, absolute, climbing above the destination, or with `..` after a name.
    Symlink(SymlinkTargetError),
    /// A parent of the entry is a symlink or a file, so writing would go through it.
    ThroughNonDirectory {
        /// The offending parent, relative to the destination.
        parent: String,
    },
    /// The entry would replace something already unpacked.
    Duplicate,
    /// In a [`Merge`]: the entry's path was already unpacked from another archive (two Debian packages ship one
    /// file), or it names one of the merge's own directory links as something else.
    Conflict {
        /// The path in the merged tree (after [`Redirect`]s), lossy.
        path: String,
        /// The archive that put it there first (its label), or the link's description.
        other: String,
    },
    /// The entry is a hardlink.
    Hardlink {
        /// Its target, lossy.
        target: String,
    },
    /// The entry is a device, FIFO, socket or an unknown type.
    SpecialFile {
        /// Its kind, in words.
        kind: &'static str,
    },
}

impl Refusal {
    /// Whether the archive tried to reach outside its destination (as opposed to containing unsupported content).
    pub fn is_escape(&self) -> bool {
        matches!(
            self,
            Refusal::AbsolutePath
                | Refusal::ParentComponent
                | Refusal::Symlink(
                    SymlinkTargetError::Escapes { .. }
                        | SymlinkTargetError::ClimbsAfterDescending { .. }
                )
                | Refusal::ThroughNonDirectory { .. }
                | Refusal::Hardlink { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::AbsolutePath => f.write_str("its path is absolute"),
            Refusal::ParentComponent => f.write_str("its path has a `..` component"),
            Refusal::InvalidName(error) => write!(f, "{error}"),
            Refusal::EmptyPath => f.write_str("its path is empty"),
            Refusal::Symlink(error) => write!(f, "{error}"),
            Refusal::ThroughNonDirectory { parent } => {
                write!(
                    f,
                    "its parent `{parent}` is a symlink or a file, not a directory"
                )
            }
            Refusal::Duplicate => f.write_str("it would replace an entry unpacked earlier"),
            Refusal::Conflict { path, other } => {
                write!(f, "`{path}` is already in the tree, from {other}")
            }
            Refusal::Hardlink { target } => write!(f, "it is a hardlink to `{target}`"),
            Refusal::SpecialFile { kind } => write!(f, "it is a {kind}"),
        }
    }
}

/// Everything that can go wrong while unpacking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation on a named path failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing ("open", "create", "write"…).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An entry is unsafe or unsupported; nothing of it was written.
    #[error("refusing to unpack entry `{entry}` of `{}`: {reason}", archive.display())]
    Refused {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as stored in the archive, lossy.
        entry: String,
        /// Why.
        reason: Refusal,
    },
    /// The archive could not be decoded (corrupt, truncated, wrong format).
    #[error("failed to read archive `{}`{}", archive.display(), at_entry(entry.as_deref()))]
    Read {
        /// The archive.
        archive: PathBuf,
        /// The entry being read, if any.
        entry: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The zip container could not be decoded.
    #[error("failed to read zip archive `{}`{}", archive.display(), at_entry(entry.as_deref()))]
    Zip {
        /// The archive.
        archive: PathBuf,
        /// The entry being read, if any.
        entry: Option<String>,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
    /// The destination exists and is not an empty directory.
    #[error("destination `{}` already exists and is not an empty directory", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// The archive unpacks to more than the cap; what it wrote is discarded with the destination.
    #[error(
        "archive `{archive}` unpacks to more than {limit} bytes ({}), the cap on one archive; stopped at entry \
         `{entry}`",
        human_size(*limit)
    )]
    TooLarge {
        /// The archive: its URL, else its path.
        archive: String,
        /// The entry that crossed the cap, lossy.
        entry: String,
        /// The cap, in bytes.
        limit: u64,
    },
}

/// `17179869184` as `16 GiB`, for messages.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut value = bytes;
    while unit + 1 < UNITS.len() && value >= 1024 && value.is_multiple_of(1024) {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

fn at_entry(entry: Option<&str>) -> String {
    entry.map_or_else(String::new, |entry| format!(" at entry `{entry}`"))
}

impl Error {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Refused { reason, .. } if reason.is_escape() => Some(
                "the archive tries to write outside its destination; it is unsafe to unpack — check the URL and sha256 \
                 in the recipe"
                    .into(),
            ),
            Error::Refused {
                reason: Refusal::SpecialFile { .. },
                ..
            } => Some("device files and FIFOs cannot be stored; repack the archive without them".into()),
            Error::Refused {
                reason: Refusal::Conflict { .. },
                ..
            } => Some(
                "two packages ship the same path, which dpkg would refuse too (unless one `Replaces` the other); \
                 drop one of them from the set"
                    .into(),
            ),
            Error::Refused { .. } => Some(
                "the archive is malformed or hostile; check the URL and sha256 in the recipe, or repack it".into(),
            ),
            Error::Read { .. } | Error::Zip { .. } => Some(
                "the download may be truncated or not in the format its name says; check the URL and sha256 in the \
                 recipe"
                    .into(),
            ),
            Error::DestinationNotEmpty { .. } => Some("unpack into a new or empty directory".into()),
            Error::TooLarge { .. } => Some(format!(
                "an archive that expands this much may be a decompression bomb; if it is genuine, raise the cap with \
                 `--max-unpacked-size SIZE` (`64G`, or `none`); the default is {DEFAULT_UNPACK_RATIO} × the \
                 archive's size or {}, whichever is larger",
                human_size(DEFAULT_MIN_MAX_UNPACKED_SIZE)
            )),
            Error::Io { .. } => None,
        }
    }
}

/// Unpacks the archive at `source` into `dest`, which MUST be an empty directory or not exist yet (its parent must).
///
/// See the [module docs](self) for the rules every entry is held to.
pub fn unpack(
    source: &Path,
    format: ArchiveFormat,
    dest: &Path,
    options: &UnpackOptions,
) -> Result<UnpackReport, Error> {
    prepare_destination(dest)?;
    let file = File::open(source).map_err(Error::io("open", source))?;
    let archive_size = file.metadata().map_err(Error::io("inspect", source))?.len();
    let mut unpacker = Unpacker {
        archive: source,
        origin: options.origin.as_deref(),
        dest,
        strip_components: options.strip_components,
        limit: options.max_unpacked_size.for_archive(archive_size),
        report: UnpackReport::default(),
        merge: None,
    };
    let unpacked = match format {
        ArchiveFormat::Zip => unpacker.zip(file),
        format => match tar_reader(format, BufReader::new(file)) {
            Ok(reader) => unpacker.tar(reader),
            Err(source) => Err(unpacker.read_error(None, source)),
        },
    };
    unpacked?;
    Ok(unpacker.report)
}

/// The decoded tar stream of `reader`, a tar archive in `format` (not [`ArchiveFormat::Zip`], which is read as
/// plain tar): xz with the decoder's memory capped ([`XZ_MEMORY_LIMIT`]) and only `.xz` streams accepted.
pub(crate) fn tar_reader<'r>(
    format: ArchiveFormat,
    reader: impl io::BufRead + 'r,
) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match format {
        ArchiveFormat::TarGz => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        ArchiveFormat::TarXz => {
            let stream = xz2::stream::Stream::new_stream_decoder(
                XZ_MEMORY_LIMIT,
                xz2::stream::CONCATENATED,
            )?;
            Box::new(xz2::bufread::XzDecoder::new_stream(reader, stream))
        }
        ArchiveFormat::TarZst => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        ArchiveFormat::Tar | ArchiveFormat::Zip => Box::new(reader),
    })
}

/// Creates `dest`, or checks that it is an empty real directory.
fn prepare_destination(dest: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(dest) {
        Ok(metadata) => {
            let empty = metadata.is_dir()
                && fs::read_dir(dest)
                    .map_err(Error::io("read", dest))?
                    .next()
                    .is_none();
            if empty {
                Ok(())
            } else {
                Err(Error::DestinationNotEmpty {
                    path: dest.to_owned(),
                })
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => make_dir(dest),
        Err(error) => Err(Error::io("inspect", dest)(error)),
    }
}

fn make_dir(path: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(Error::io("create", path))?;
    // The umask may have cleared bits; the tree's modes must not depend on it.
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(Error::io("set permissions of", path))
}

/// What an entry becomes on disk.
enum Kind<'a> {
    Directory,
    File {
        executable: bool,
    },
    Symlink {
        target: Cow<'a, [u8]>,
    },
    /// A hardlink to a regular file unpacked earlier from the same archive; only in a [`Merge`], which copies it.
    Hardlink {
        target: Vec<u8>,
    },
}

/// What a [`Merge`] adds to the per-entry rules of [`unpack`] (its module docs list the differences). The engine
/// ([`Unpacker`]) asks these at each step of an entry and knows nothing else of the merge, so the merge depends on
/// the engine and never the other way round; a plain [`unpack`] has none.
trait Hooks {
    /// Counts an entry whose setuid, setgid or sticky bits are dropped.
    fn special_bits_stripped(&mut self);

    /// Rewrites an entry's validated, stripped path and kind (redirects, absolute symlinks); `Ok(None)` means the
    /// entry restates one of the merge's own links (skip it).
    fn place<'k>(
        &mut self,
        components: &mut Vec<PathComponent>,
        kind: Kind<'k>,
    ) -> Result<Option<Kind<'k>>, Refusal>;

    /// Why an entry may not take the path `components`, already on disk, when that is not a plain
    /// [`Refusal::Duplicate`] (another archive put it there).
    fn taken(&self, components: &[PathComponent]) -> Option<Refusal>;

    /// Records that the current archive made the regular file `components`.
    fn made_file(&mut self, components: &[PathComponent], executable: bool);

    /// Records that the current archive made the symlink `components`.
    fn made_symlink(&mut self, components: &[PathComponent]);

    /// The real path (below the destination) and executable bit of the file a hardlink to `target` copies, after
    /// `strip_components`; `None` refuses the hardlink.
    fn hardlink_source(
        &self,
        target: &[u8],
        strip_components: usize,
    ) -> Option<(Vec<PathComponent>, bool)>;

    /// Counts a hardlink written as a copy.
    fn hardlink_copied(&mut self);
}

/// The per-archive state shared by the tar and zip walkers.
struct Unpacker<'a> {
    archive: &'a Path,
    origin: Option<&'a str>,
    dest: &'a Path,
    strip_components: usize,
    /// The cap on `report.bytes`.
    limit: Option<u64>,
    report: UnpackReport,
    /// Set when this archive is one of several laid into one tree ([`Merge`]).
    merge: Option<&'a mut dyn Hooks>,
}

impl Unpacker<'_> {
    fn refused(&self, entry: &[u8], reason: Refusal) -> Error {
        Error::Refused {
            archive: self.archive.to_owned(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason,
        }
    }

    /// Fails when `more` bytes of `entry` would take the unpacked size over the cap.
    fn check_size(&self, entry: &[u8], more: u64) -> Result<(), Error> {
        match self.limit {
            Some(limit) if self.report.bytes.saturating_add(more) > limit => Err(Error::TooLarge {
                archive: self
                    .origin
                    .map_or_else(|| self.archive.display().to_string(), str::to_owned),
                entry: String::from_utf8_lossy(entry).into_owned(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    fn read_error(&self, entry: Option<&[u8]>, source: io::Error) -> Error {
        Error::Read {
            archive: self.archive.to_owned(),
            entry: entry.map(|entry| String::from_utf8_lossy(entry).into_owned()),
            source,
        }
    }

    fn tar(&mut self, reader: impl Read) -> Result<(), Error> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(|source| self.read_error(None, source))?;
        let mut last: Option<Vec<u8>> = None;
        for entry in entries {
            let mut entry = entry.map_err(|source| self.read_error(last.as_deref(), source))?;
            let name = entry.path_bytes().into_owned();
            if let Some(merge) = self.merge.as_deref_mut()
                && entry.header().mode().is_ok_and(|mode| mode & 0o7000 != 0)
            {
                merge.special_bits_stripped();
            }
            let kind = match entry.header().entry_type() {
                // Sparse files read back with their holes filled in; "contiguous" files are regular files.
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => Kind::File {
                    executable: entry
                        .header()
                        .mode()
                        .map_err(|source| self.read_error(Some(&name), source))?
                        & 0o100
                        != 0,
                },
                tar::EntryType::Directory => Kind::Directory,
                tar::EntryType::Symlink => Kind::Symlink {
                    target: Cow::Owned(
                        entry
                            .link_name_bytes()
                            .map(Cow::into_owned)
                            .unwrap_or_default(),
                    ),
                },
                // `git archive` writes the commit id in a pax global header; it describes no file.
                tar::EntryType::XGlobalHeader => {
                    last = Some(name);
                    continue;
                }
                tar::EntryType::Link if self.merge.is_some() => Kind::Hardlink {
                    target: entry
                        .link_name_bytes()
                        .map(Cow::into_owned)
                        .unwrap_or_default(),
                },
                tar::EntryType::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    let target = String::from_utf8_lossy(&target).into_owned();
                    return Err(self.refused(&name, Refusal::Hardlink { target }));
                }
                tar::EntryType::Char => {
                    return Err(self.refused(
                        &name,
                        Refusal::SpecialFile {
                            kind: "character device",
                        },
                    ));
                }
                tar::EntryType::Block => {
                    return Err(self.refused(
                        &name,
                        Refusal::SpecialFile {
                            kind: "block device",
                        },
                    ));
                }
                tar::EntryType::Fifo => {
                    return Err(self.refused(&name, Refusal::SpecialFile { kind: "FIFO" }));
                }
                _ => {
                    return Err(self.refused(
                        &name,
                        Refusal::SpecialFile {
                            kind: "entry of unknown type",
                        },
                    ));
                }
            };
            // The apparent size (holes included for a sparse entry), before anything of it is written.
            self.check_size(&name, entry.size())?;
            self.entry(&name, kind, &mut entry)?;
            last = Some(name);
        }
        Ok(())
    }

    fn zip(&mut self, file: File) -> Result<(), Error> {
        let zip_error = |entry: Option<&str>, source| Error::Zip {
            archive: self.archive.to_owned(),
            entry: entry.map(str::to_owned),
            source,
        };
        let mut archive =
            zip::ZipArchive::new(BufReader::new(file)).map_err(|source| zip_error(None, source))?;
        for index in 0..archive.len() {
            let entry = archive.name_for_index(index).map(str::to_owned);
            let mut member = archive
                .by_index(index)
                .map_err(|source| zip_error(entry.as_deref(), source))?;
            let name = member.name().as_bytes().to_vec();
            let mode = member.unix_mode();
            let kind = match mode.map(|mode| mode & S_IFMT) {
                Some(S_IFLNK) => {
                    // Info-ZIP stores a symlink's target as the member's content.
                    let mut target = Vec::new();
                    (&mut member)
                        .take(MAX_SYMLINK_TARGET as u64 + 1)
                        .read_to_end(&mut target)
                        .map_err(|source| self.read_error(Some(&name), source))?;
                    Kind::Symlink {
                        target: Cow::Owned(target),
                    }
                }
                _ if member.is_dir() => Kind::Directory,
                Some(S_IFDIR) => Kind::Directory,
                None | Some(0 | S_IFREG) => Kind::File {
                    executable: mode.is_some_and(|mode| mode & 0o100 != 0),
                },
                Some(_) => {
                    return Err(self.refused(
                        &name,
                        Refusal::SpecialFile {
                            kind: "device, FIFO or socket",
                        },
                    ));
                }
            };
            self.check_size(&name, member.size())?;
            self.entry(&name, kind, &mut member)?;
        }
        Ok(())
    }

    /// Validates an entry path and applies `strip_components`; `None` means "skip this entry".
    fn relative_path(
        &mut self,
        name: &[u8],
        is_directory: bool,
    ) -> Result<Option<Vec<PathComponent>>, Error> {
        if name.first() == Some(&b'/') {
            return Err(self.refused(name, Refusal::AbsolutePath));
        }
        let mut components = Vec::new();
        for component in name.split(|&byte| byte == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(self.refused(name, Refusal::ParentComponent)),
                _ => components.push(
                    PathComponent::new(component)
                        .map_err(|error| self.refused(name, Refusal::InvalidName(error)))?,
                ),
            }
        }
        if self.strip_components > 0 && components.len() <= self.strip_components {
            self.report.skipped += 1;
            return Ok(None);
        }
        components.drain(..self.strip_components);
        if components.is_empty() {
            // `./` or the like: the destination itself.
            return if is_directory {
                Ok(None)
            } else {
                Err(self.refused(name, Refusal::EmptyPath))
            };
        }
        Ok(Some(components))
    }

    /// Creates the missing parents of `components`, refusing to pass through anything but a real directory.
    fn create_parents(
        &mut self,
        name: &[u8],
        components: &[PathComponent],
    ) -> Result<PathBuf, Error> {
        let mut path = self.dest.to_path_buf();
        let Some((_, parents)) = components.split_last() else {
            return Ok(path);
        };
        for (depth, component) in parents.iter().enumerate() {
            path.push(component.as_os_str());
            match fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    let parent = display_components(&components[..=depth]);
                    return Err(self.refused(name, Refusal::ThroughNonDirectory { parent }));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    make_dir(&path)?;
                    self.report.directories += 1;
                }
                Err(error) => return Err(Error::io("inspect", path)(error)),
            }
        }
        Ok(path)
    }

    fn entry(
        &mut self,
        name: &[u8],
        mut kind: Kind<'_>,
        content: &mut impl Read,
    ) -> Result<(), Error> {
        let Some(mut components) = self.relative_path(name, matches!(kind, Kind::Directory))?
        else {
            return Ok(());
        };
        if let Some(merge) = self.merge.as_deref_mut() {
            match merge.place(&mut components, kind) {
                Ok(Some(placed)) => kind = placed,
                Ok(None) => return Ok(()),
                Err(reason) => return Err(self.refused(name, reason)),
            }
        }
        if let Kind::Symlink { target } = &kind {
            self.check_symlink_target(name, &components, target)?;
        }
        let mut path = self.create_parents(name, &components)?;
        let Some(last) = components.last() else {
            return Ok(());
        };
        path.push(last.as_os_str());
        let already_exists = |error: &io::Error| error.kind() == io::ErrorKind::AlreadyExists;
        match kind {
            Kind::Directory => match fs::symlink_metadata(&path) {
                // Tar archives often repeat directories, or list them after their contents.
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => return Err(self.replaced(name, &components)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    make_dir(&path)?;
                    self.report.directories += 1;
                }
                Err(error) => return Err(Error::io("inspect", path)(error)),
            },
            Kind::Hardlink { target } => {
                let (source, executable) = self.hardlink_source(name, &target)?;
                let mut source = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&source)
                    .map_err(Error::io("open", &source))?;
                self.write_file(name, &components, &path, executable, &mut source, true)?;
                if let Some(merge) = self.merge.as_deref_mut() {
                    merge.hardlink_copied();
                }
            }
            Kind::File { executable } => {
                self.write_file(name, &components, &path, executable, content, false)?;
            }
            Kind::Symlink { target } => {
                let target = Path::new(OsStr::from_bytes(&target));
                match std::os::unix::fs::symlink(target, &path) {
                    Ok(()) => {
                        self.report.symlinks += 1;
                        if let Some(merge) = self.merge.as_deref_mut() {
                            merge.made_symlink(&components);
                        }
                    }
                    Err(error) if already_exists(&error) => {
                        return Err(self.replaced(name, &components));
                    }
                    Err(error) => return Err(Error::io("create symlink", path)(error)),
                }
            }
        }
        Ok(())
    }

    /// Creates `path` (the entry `components`) with `O_EXCL` and streams `content` into it, counting against the cap;
    /// `copy` says the content is a copy of a file already counted (a hardlink), read from the tree, not the archive.
    fn write_file(
        &mut self,
        name: &[u8],
        components: &[PathComponent],
        path: &Path,
        executable: bool,
        content: &mut impl Read,
        copy: bool,
    ) -> Result<(), Error> {
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(self.replaced(name, components));
            }
            Err(error) => return Err(Error::io("create", path)(error)),
        };
        // Copy by hand so a read error (archive) and a write error (disk) are told apart.
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if copy => return Err(Error::io("read", path)(error)),
                Err(error) => return Err(self.read_error(Some(name), error)),
            };
            // Counted as it streams too: a header may understate what its entry holds.
            self.check_size(name, read as u64)?;
            io::Write::write_all(&mut file, &buffer[..read]).map_err(Error::io("write", path))?;
            self.report.bytes += read as u64;
        }
        let mode = if executable { 0o755 } else { 0o644 };
        // fchmod on the open file: never follows a symlink.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(Error::io("set permissions of", path))?;
        self.report.files += 1;
        if let Some(merge) = self.merge.as_deref_mut() {
            merge.made_file(components, executable);
        }
        Ok(())
    }

    /// The refusal for an entry whose path is taken: what the merge says (a [`Refusal::Conflict`] naming the archive
    /// that shipped it, when that was another one), else [`Refusal::Duplicate`].
    fn replaced(&self, name: &[u8], components: &[PathComponent]) -> Error {
        let reason = self
            .merge
            .as_deref()
            .and_then(|merge| merge.taken(components))
            .unwrap_or(Refusal::Duplicate);
        self.refused(name, reason)
    }

    /// The real path and executable bit of the file a hardlink entry `name -> target` copies; only a merge allows
    /// one (see [`Hooks::hardlink_source`]).
    fn hardlink_source(&self, name: &[u8], target: &[u8]) -> Result<(PathBuf, bool), Error> {
        let source = self
            .merge
            .as_deref()
            .and_then(|merge| merge.hardlink_source(target, self.strip_components));
        let Some((components, executable)) = source else {
            let target = String::from_utf8_lossy(target).into_owned();
            return Err(self.refused(name, Refusal::Hardlink { target }));
        };
        let mut path = self.dest.to_path_buf();
        path.extend(components.iter().map(PathComponent::as_os_str));
        Ok((path, executable))
    }

    /// The store's rule for links in a tree, with the link's directory `components` minus its last element.
    fn check_symlink_target(
        &self,
        name: &[u8],
        components: &[PathComponent],
        target: &[u8],
    ) -> Result<(), Error> {
        check_symlink_target(components.len() - 1, target)
            .map_err(|error| self.refused(name, Refusal::Symlink(error)))
    }
}

fn display_components(components: &[PathComponent]) -> String {
    components
        .iter()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// One entry of a test archive, written with raw header bytes so the builder's own checks do not get in the way.
    enum Item<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Special(&'a str, tar::EntryType),
    }

    fn tar_bytes(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            let (name, entry_type, link, data, mode): (&str, _, &str, &[u8], u32) = match *item {
                Item::File(name, data, mode) => (name, tar::EntryType::Regular, "", data, mode),
                Item::Dir(name) => (name, tar::EntryType::Directory, "", b"", 0o700),
                Item::Symlink(name, target) => (name, tar::EntryType::Symlink, target, b"", 0o777),
                Item::Hardlink(name, target) => (name, tar::EntryType::Link, target, b"", 0o644),
                Item::Special(name, entry_type) => (name, entry_type, "", b"", 0o644),
            };
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(entry_type);
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_mtime(1_234_567_890);
            header.set_uid(1000);
            if name.len() < 100 {
                header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, data).expect("append");
            } else {
                // Long names go through the builder, which writes a GNU long-name entry first.
                builder
                    .append_data(&mut header, name, data)
                    .expect("append long name");
            }
        }
        builder.into_inner().expect("finish tar")
    }

    fn compress(format: ArchiveFormat, tar: &[u8]) -> Vec<u8> {
        match format {
            ArchiveFormat::Tar => tar.to_vec(),
            ArchiveFormat::TarGz => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(tar).expect("gzip");
                encoder.finish().expect("gzip")
            }
            ArchiveFormat::TarXz => {
                let mut encoder = xz2::write::XzEncoder::new(Vec::new(), 6);
                encoder.write_all(tar).expect("xz");
                encoder.finish().expect("xz")
            }
            ArchiveFormat::TarZst => zstd::encode_all(tar, 3).expect("zstd"),
            ArchiveFormat::Zip => unreachable!("zip archives are built by zip_bytes"),
        }
    }

    fn zip_bytes(items: &[Item<'_>]) -> Vec<u8> {
        use zip::write::SimpleFileOptions;
        let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for item in items {
            match *item {
                Item::File(name, data, mode) => {
                    writer
                        .start_file(name, SimpleFileOptions::default().unix_permissions(mode))
                        .expect("zip file");
                    writer.write_all(data).expect("zip data");
                }
                Item::Dir(name) => writer
                    .add_directory(name, SimpleFileOptions::default())
                    .expect("zip dir"),
                Item::Symlink(name, target) => writer
                    .add_symlink(name, target, SimpleFileOptions::default())
                    .expect("zip symlink"),
                Item::Hardlink(..) => unreachable!("zip has no hardlinks"),
                Item::Special(name, _) => {
                    writer
                        .start_file(name, SimpleFileOptions::default().unix_permissions(0o644))
                        .expect("zip special");
                }
            }
        }
        let mut bytes = writer.finish().expect("finish zip").into_inner();
        if items.iter().any(|item| matches!(item, Item::Special(..))) {
            // The writer masks modes to 0o777; only the file type bits in the central directory's external
            // attributes (offset 38, high half) say "FIFO", so patch them in.
            let start = bytes
                .windows(4)
                .position(|window| window == b"PK\x01\x02")
                .expect("central directory");
            bytes[start + 38..start + 42].copy_from_slice(&(0o010_644_u32 << 16).to_le_bytes());
        }
        bytes
    }

    /// A scratch area: `archive` is written next to `dest` and a `sibling` directory that must stay untouched.
    struct Scratch {
        root: tempfile::TempDir,
    }

    impl Scratch {
        fn new() -> Self {
            let root = tempfile::tempdir().expect("tempdir");
            fs::create_dir(root.path().join("sibling")).expect("sibling");
            fs::write(root.path().join("sibling/keep"), b"keep").expect("sibling file");
            Scratch { root }
        }

        fn dest(&self) -> PathBuf {
            self.root.path().join("dest")
        }

        fn unpack(
            &self,
            format: ArchiveFormat,
            bytes: &[u8],
            strip: usize,
        ) -> Result<UnpackReport, Error> {
            let archive = self.root.path().join("archive");
            fs::write(&archive, bytes).expect("write archive");
            let options = UnpackOptions {
                strip_components: strip,
                ..UnpackOptions::default()
            };
            unpack(&archive, format, &self.dest(), &options)
        }

        /// Everything in the scratch root outside `dest`, as sorted relative paths.
        fn outside(&self) -> Vec<String> {
            let mut found = Vec::new();
            let mut stack = vec![self.root.path().to_path_buf()];
            while let Some(dir) = stack.pop() {
                for entry in fs::read_dir(&dir).expect("read_dir") {
                    let path = entry.expect("entry").path();
                    if path == self.dest() || path.file_name() == Some("archive".as_ref()) {
                        continue;
                    }
                    let relative = path.strip_prefix(self.root.path()).expect("prefix");
                    found.push(relative.to_string_lossy().into_owned());
                    if fs::symlink_metadata(&path).expect("lstat").is_dir() {
                        stack.push(path);
                    }
                }
            }
            found.sort();
            found
        }

        fn assert_refused(&self, format: ArchiveFormat, bytes: &[u8], entry: &str) -> Refusal {
            let error = self
                .unpack(format, bytes, 0)
                .expect_err("hostile archive must be refused");
            assert_eq!(
                self.outside(),
                ["sibling", "sibling/keep"],
                "wrote outside dest: {error}"
            );
            assert_eq!(
                fs::read(self.root.path().join("sibling/keep")).expect("keep"),
                b"keep"
            );
            assert!(
                error.to_string().contains(&format!("`{entry}`")),
                "{error} does not name {entry}"
            );
            match error {
                Error::Refused {
                    entry: refused,
                    reason,
                    ..
                } => {
                    assert_eq!(refused, entry);
                    reason
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    const TAR_FORMATS: [ArchiveFormat; 4] = [
        ArchiveFormat::TarGz,
        ArchiveFormat::TarXz,
        ArchiveFormat::TarZst,
        ArchiveFormat::Tar,
    ];

    /// Builds `items` in every format (zip too, where it can express them).
    fn every_format(items: &[Item<'_>]) -> Vec<(ArchiveFormat, Vec<u8>)> {
        let tar = tar_bytes(items);
        let mut all: Vec<_> = TAR_FORMATS
            .iter()
            .map(|&format| (format, compress(format, &tar)))
            .collect();
        if !items.iter().any(|item| matches!(item, Item::Hardlink(..))) {
            all.push((ArchiveFormat::Zip, zip_bytes(items)));
        }
        all
    }

    fn assert_refused_everywhere(
        items: &[Item<'_>],
        entry: &str,
        check: impl Fn(&Refusal) -> bool,
    ) {
        for (format, bytes) in every_format(items) {
            let reason = Scratch::new().assert_refused(format, &bytes, entry);
            assert!(check(&reason), "{format:?}: unexpected reason {reason:?}");
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path)
            .expect("lstat")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn format_from_file_name() {
        use ArchiveFormat::{Tar, TarGz, TarXz, TarZst, Zip};
        for (name, format) in [
            ("a.tar.gz", Some(TarGz)),
            ("a.TGZ", Some(TarGz)),
            ("foo-1.0.0.crate", Some(TarGz)),
            ("a.tar.xz", Some(TarXz)),
            ("a.txz", Some(TarXz)),
            ("a.tar.zst", Some(TarZst)),
            ("a.tzst", Some(TarZst)),
            ("a.tar", Some(Tar)),
            ("a.zip", Some(Zip)),
            ("pkg-1.0-py3-none-any.whl", Some(Zip)),
            ("a.tar.bz2", None),
            (".tar", None),
            ("README", None),
        ] {
            assert_eq!(ArchiveFormat::from_file_name(name), format, "{name}");
        }
    }

    #[test]
    fn normal_archive_in_every_format() {
        let long = format!("pkg/{}/deep.txt", "d".repeat(120));
        let items = [
            Item::Dir("pkg/"),
            Item::File("pkg/README", b"hello\n", 0o664),
            Item::File("pkg/bin/tool", b"#!/bin/sh\n", 0o775),
            Item::File("pkg/src/nested/a.c", b"int a;\n", 0o600),
            Item::Symlink("pkg/src/nested/link", "../../README"),
            Item::Symlink("pkg/self", "."),
            Item::Dir("pkg/src/"),
            Item::File(&long, b"long", 0o644),
        ];
        for (format, bytes) in every_format(&items) {
            let scratch = Scratch::new();
            let report = scratch.unpack(format, &bytes, 0).expect("unpack");
            let dest = scratch.dest();
            assert_eq!(
                fs::read(dest.join("pkg/README")).expect("README"),
                b"hello\n"
            );
            assert_eq!(mode(&dest.join("pkg/README")), 0o644, "{format:?}");
            assert_eq!(mode(&dest.join("pkg/bin/tool")), 0o755, "{format:?}");
            assert_eq!(mode(&dest.join("pkg/src/nested/a.c")), 0o644, "{format:?}");
            assert_eq!(mode(&dest.join("pkg")), 0o755, "{format:?}");
            assert_eq!(mode(&dest.join("pkg/bin")), 0o755, "{format:?}");
            assert_eq!(
                fs::read_link(dest.join("pkg/src/nested/link")).expect("link"),
                Path::new("../../README")
            );
            assert_eq!(
                fs::read(dest.join("pkg/src/nested/link")).expect("via link"),
                b"hello\n"
            );
            assert_eq!(
                fs::read(dest.join(&long)).expect("long name"),
                b"long",
                "{format:?}"
            );
            assert_eq!(
                report,
                UnpackReport {
                    files: 4,
                    directories: 5,
                    symlinks: 2,
                    bytes: 6 + 10 + 7 + 4,
                    skipped: 0,
                },
                "{format:?}"
            );
            assert_eq!(scratch.outside(), ["sibling", "sibling/keep"]);
        }
    }

    #[test]
    fn strip_components_drops_the_top_directory() {
        let items = [
            Item::Dir("./"),
            Item::Dir("./pkg-1.0/"),
            Item::File("./pkg-1.0/src/lib.rs", b"fn f() {}", 0o644),
            Item::Symlink("pkg-1.0/lib", "src/lib.rs"),
        ];
        for (format, bytes) in every_format(&items) {
            let scratch = Scratch::new();
            let report = scratch.unpack(format, &bytes, 1).expect("unpack");
            let dest = scratch.dest();
            assert_eq!(
                fs::read(dest.join("src/lib.rs")).expect("lib.rs"),
                b"fn f() {}"
            );
            assert_eq!(
                fs::read_link(dest.join("lib")).expect("link"),
                Path::new("src/lib.rs")
            );
            assert!(!dest.join("pkg-1.0").exists());
            // `./` and `./pkg-1.0/` are skipped (zip drops the lone `.` component too).
            assert_eq!(report.skipped, 2, "{format:?}");
        }
    }

    #[test]
    fn strip_components_keeps_symlinks_inside() {
        // After stripping, `pkg/l -> ../other` would point above the destination.
        let items = [Item::Symlink("pkg/l", "../other")];
        for (format, bytes) in every_format(&items) {
            let scratch = Scratch::new();
            let error = scratch
                .unpack(format, &bytes, 1)
                .expect_err("escapes after stripping");
            assert!(
                matches!(&error, Error::Refused { entry, reason: Refusal::Symlink(SymlinkTargetError::Escapes { .. }), .. } if entry == "pkg/l"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn refuses_parent_components() {
        assert_refused_everywhere(&[Item::File("../evil", b"x", 0o644)], "../evil", |reason| {
            *reason == Refusal::ParentComponent
        });
        assert_refused_everywhere(
            &[Item::Dir("a/"), Item::File("a/../../evil", b"x", 0o644)],
            "a/../../evil",
            |reason| *reason == Refusal::ParentComponent,
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        assert_refused_everywhere(
            &[Item::File("/tmp/evil", b"x", 0o644)],
            "/tmp/evil",
            |reason| *reason == Refusal::AbsolutePath,
        );
    }

    #[test]
    fn refuses_writing_through_an_absolute_symlink() {
        // The classic: `link -> /etc` (or here, the sibling directory) and then `link/passwd`.
        let sibling = Scratch::new();
        let target = sibling.root.path().join("sibling");
        let target = target.to_str().expect("utf-8 temp path");
        let items = [
            Item::Symlink("link", target),
            Item::File("link/passwd", b"pwned", 0o644),
        ];
        assert_refused_everywhere(&items, "link", |reason| {
            matches!(reason, Refusal::Symlink(SymlinkTargetError::Escapes { .. }))
        });
        assert_refused_everywhere(&[Item::Symlink("etc", "/etc")], "etc", |reason| {
            matches!(reason, Refusal::Symlink(SymlinkTargetError::Escapes { .. }))
        });
    }

    #[test]
    fn refuses_symlinks_that_climb_out() {
        assert_refused_everywhere(
            &[
                Item::Symlink("up", ".."),
                Item::File("up/sibling/keep", b"pwned", 0o644),
            ],
            "up",
            |reason| matches!(reason, Refusal::Symlink(SymlinkTargetError::Escapes { .. })),
        );
        assert_refused_everywhere(
            &[Item::Symlink("a/b/up", "../../../x")],
            "a/b/up",
            |reason| matches!(reason, Refusal::Symlink(SymlinkTargetError::Escapes { .. })),
        );
        // `sub/l -> ..` is inside, but `x -> sub/l/..` would resolve above the destination through it.
        assert_refused_everywhere(
            &[
                Item::Symlink("sub/l", ".."),
                Item::Symlink("x", "sub/l/../sibling"),
            ],
            "x",
            |reason| {
                matches!(
                    reason,
                    Refusal::Symlink(SymlinkTargetError::ClimbsAfterDescending { .. })
                )
            },
        );
    }

    #[test]
    fn never_writes_through_an_inner_symlink() {
        // `a -> b` stays inside, but `a/x` must not land in `b/x` by following it.
        for (format, bytes) in every_format(&[
            Item::Dir("b/"),
            Item::Symlink("a", "b"),
            Item::File("a/x", b"x", 0o644),
        ]) {
            let scratch = Scratch::new();
            let reason = scratch.assert_refused(format, &bytes, "a/x");
            assert_eq!(reason, Refusal::ThroughNonDirectory { parent: "a".into() });
            assert!(!scratch.dest().join("b/x").exists());
        }
        // Nor through a file.
        assert_refused_everywhere(
            &[Item::File("f", b"", 0o644), Item::File("f/x", b"x", 0o644)],
            "f/x",
            |reason| matches!(reason, Refusal::ThroughNonDirectory { .. }),
        );
    }

    #[test]
    fn refuses_replacing_an_entry() {
        for items in [
            // The zip reader keeps only the last of two identical names, so spell the second one differently.
            &[Item::File("a", b"1", 0o644), Item::File("./a", b"2", 0o644)][..],
            &[Item::Symlink("a", "b"), Item::File("./a", b"2", 0o644)],
            &[Item::Dir("a/"), Item::File("a", b"2", 0o644)],
            &[Item::File("a", b"1", 0o644), Item::Dir("a/")],
            &[Item::File("a", b"1", 0o644), Item::Symlink("./a", "b")],
        ] {
            assert_refused_everywhere(items, items[1].name(), |reason| {
                *reason == Refusal::Duplicate
            });
        }
    }

    #[test]
    fn refuses_hardlinks_and_special_files() {
        assert_refused_everywhere(
            &[Item::File("a", b"1", 0o644), Item::Hardlink("b", "a")],
            "b",
            |reason| matches!(reason, Refusal::Hardlink { target } if target == "a"),
        );
        for entry_type in [
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
        ] {
            assert_refused_everywhere(&[Item::Special("dev", entry_type)], "dev", |reason| {
                matches!(reason, Refusal::SpecialFile { .. })
            });
        }
    }

    #[test]
    fn ignores_pax_global_headers_and_reads_pax_paths() {
        let mut builder = tar::Builder::new(Vec::new());
        // What `git archive` writes first.
        let comment = b"52 comment=0123456789012345678901234567890123456789\n";
        let mut header = tar::Header::new_ustar();
        header.set_path("pax_global_header").expect("path");
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_size(comment.len() as u64);
        header.set_cksum();
        builder
            .append(&header, &comment[..])
            .expect("global header");
        // A pax `path` record overrides the (truncated) ustar name.
        let long = format!("{}/file", "p".repeat(150));
        let record = format!("path={long}\n");
        let record = format!("{} {record}", record.len() + 4);
        let mut header = tar::Header::new_ustar();
        header.set_path("PaxHeaders/file").expect("path");
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(record.len() as u64);
        header.set_cksum();
        builder
            .append(&header, record.as_bytes())
            .expect("pax header");
        let mut header = tar::Header::new_ustar();
        header.set_path("truncated").expect("path");
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &b"pax"[..]).expect("file");
        let bytes = builder.into_inner().expect("tar");

        let scratch = Scratch::new();
        let report = scratch
            .unpack(ArchiveFormat::Tar, &bytes, 0)
            .expect("unpack");
        assert_eq!(
            fs::read(scratch.dest().join(&long)).expect("pax path"),
            b"pax"
        );
        assert!(!scratch.dest().join("truncated").exists());
        assert!(!scratch.dest().join("pax_global_header").exists());
        assert_eq!(report.files, 1);
    }

    #[test]
    fn destination_must_be_empty() {
        let scratch = Scratch::new();
        fs::create_dir(scratch.dest()).expect("dest");
        fs::write(scratch.dest().join("old"), b"").expect("old");
        let bytes = tar_bytes(&[Item::File("a", b"1", 0o644)]);
        let error = scratch
            .unpack(ArchiveFormat::Tar, &bytes, 0)
            .expect_err("not empty");
        assert!(
            matches!(error, Error::DestinationNotEmpty { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn corrupt_archive_is_a_read_error() {
        let bytes = compress(
            ArchiveFormat::TarGz,
            &tar_bytes(&[Item::File("a", &vec![7; 100_000], 0o644)]),
        );
        let scratch = Scratch::new();
        let error = scratch
            .unpack(ArchiveFormat::TarGz, &bytes[..bytes.len() / 2], 0)
            .expect_err("truncated");
        assert!(matches!(error, Error::Read { .. }), "{error:?}");
        assert!(error.hint().is_some());
    }

    #[test]
    fn hints_call_escapes_unsafe() {
        let scratch = Scratch::new();
        let error = scratch
            .unpack(
                ArchiveFormat::Tar,
                &tar_bytes(&[Item::File("../x", b"", 0o644)]),
                0,
            )
            .expect_err("escape");
        assert!(error.hint().expect("hint").contains("unsafe to unpack"));
    }

    impl Item<'_> {
        fn name(&self) -> &str {
            match self {
                Item::File(name, ..)
                | Item::Dir(name)
                | Item::Symlink(name, _)
                | Item::Hardlink(name, _)
                | Item::Special(name, _) => name,
            }
        }
    }

    /// A GNU sparse tar holding `name`: `apparent` bytes, a hole but for the last 512 (ones).
    fn sparse_tar(name: &str, apparent: u64) -> Vec<u8> {
        fn octal(field: &mut [u8], value: u64) {
            let width = field.len() - 1;
            field[..width].copy_from_slice(format!("{value:0width$o}").as_bytes());
            field[width] = 0;
        }
        let mut header = tar::Header::new_gnu();
        header.set_path(name).expect("name");
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_size(512);
        header.set_mtime(1_234_567_890);
        let gnu = header.as_gnu_mut().expect("gnu header");
        octal(&mut gnu.sparse[0].offset, apparent - 512);
        octal(&mut gnu.sparse[0].numbytes, 512);
        octal(&mut gnu.realsize, apparent);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &[1_u8; 512][..]).expect("append");
        builder.into_inner().expect("finish tar")
    }

    fn unpack_capped(
        scratch: &Scratch,
        format: ArchiveFormat,
        bytes: &[u8],
        cap: u64,
    ) -> Result<UnpackReport, Error> {
        let archive = scratch.root.path().join("archive");
        fs::write(&archive, bytes).expect("write archive");
        let options = UnpackOptions {
            max_unpacked_size: MaxUnpackedSize::Bytes(cap),
            origin: Some("https://example.test/bomb.tar.gz".into()),
            ..UnpackOptions::default()
        };
        unpack(&archive, format, &scratch.dest(), &options)
    }

    /// Bytes of file content under `dir`.
    fn bytes_under(dir: &Path) -> u64 {
        let mut total = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("read_dir") {
                let entry = entry.expect("entry");
                let metadata = fs::symlink_metadata(entry.path()).expect("lstat");
                if metadata.is_dir() {
                    stack.push(entry.path());
                } else if metadata.is_file() {
                    total += metadata.len();
                }
            }
        }
        total
    }

    /// Found by the `archive_unpack` fuzz target: a 56-byte legacy `.lzma` header asking liblzma for a 4 GiB
    /// dictionary, which the auto-detecting decoder allocated; and an `.xz` block asking for the same.
    #[test]
    fn an_xz_stream_asking_for_gigabytes_of_memory_is_a_read_error() {
        fn crc32(bytes: &[u8]) -> [u8; 4] {
            let mut crc = !0_u32;
            for &byte in bytes {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xedb8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            (!crc).to_le_bytes()
        }
        let mut lzma = vec![0_u8];
        lzma.extend([255_u8; 50]);
        lzma.extend([208, 208, 186, 243, 231]);
        let scratch = Scratch::new();
        let error = scratch
            .unpack(ArchiveFormat::TarXz, &lzma, 0)
            .expect_err("refused");
        assert!(matches!(error, Error::Read { .. }), "{error:?}");

        let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4];
        xz.extend(crc32(&[0, 4]));
        // One block, one filter: LZMA2 with dictionary property 40 (4 GiB - 1).
        let header = [0x02, 0x00, 0x21, 0x01, 40, 0, 0, 0];
        xz.extend(header);
        xz.extend(crc32(&header));
        xz.extend([0_u8; 64]);
        let scratch = Scratch::new();
        let error = scratch
            .unpack(ArchiveFormat::TarXz, &xz, 0)
            .expect_err("refused");
        let Error::Read { source, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(source.to_string().contains("memory limit"), "{source}");
    }

    #[test]
    fn the_default_cap_is_64_times_the_archive_or_16_gib_whichever_is_larger() {
        assert_eq!(default_max_unpacked_size(0), 16 << 30);
        assert_eq!(default_max_unpacked_size(119), 16 << 30);
        assert_eq!(default_max_unpacked_size(256 << 20), 16 << 30);
        assert_eq!(default_max_unpacked_size((256 << 20) + 1), (16 << 30) + 64);
        assert_eq!(default_max_unpacked_size(1 << 30), 64 << 30);
        assert_eq!(default_max_unpacked_size(u64::MAX), u64::MAX);
        assert_eq!(
            MaxUnpackedSize::Default.for_archive(1 << 30),
            Some(64 << 30)
        );
        assert_eq!(MaxUnpackedSize::Bytes(5).for_archive(1 << 30), Some(5));
        assert_eq!(MaxUnpackedSize::Unlimited.for_archive(1 << 30), None);
    }

    // See: issue 20, attack 9 (a 119-byte `.tar.gz` unpacks to 2 GiB at lock).
    #[test]
    fn an_archive_bomb_stops_at_the_cap_naming_the_archive_and_the_flag() {
        let zeros = vec![0_u8; 3 << 20];
        let items = [
            Item::Dir("pkg"),
            Item::File("pkg/a", &zeros, 0o644),
            Item::File("pkg/b", &zeros, 0o644),
            Item::File("pkg/c", b"after", 0o644),
        ];
        for (format, bytes) in every_format(&items) {
            // A few MB that compress to a few KB: a bomb in miniature.
            assert!(
                format == ArchiveFormat::Tar || bytes.len() < 64 << 10,
                "{format:?}"
            );
            let scratch = Scratch::new();
            let error = unpack_capped(&scratch, format, &bytes, 4 << 20).expect_err("over the cap");
            let Error::TooLarge {
                archive,
                entry,
                limit,
            } = &error
            else {
                panic!("{format:?}: expected TooLarge, got {error:?}");
            };
            assert_eq!(archive, "https://example.test/bomb.tar.gz");
            assert_eq!(entry, "pkg/b");
            assert_eq!(*limit, 4 << 20);
            let message = error.to_string();
            assert!(
                message.contains("https://example.test/bomb.tar.gz"),
                "{message}"
            );
            assert!(message.contains("4 MiB"), "{message}");
            let hint = error.hint().expect("hint");
            assert!(hint.contains("--max-unpacked-size"), "{hint}");
            // Refused before the entry was written: nothing over the cap is ever on disk.
            assert!(!scratch.dest().join("pkg/b").exists(), "{format:?}");
            assert!(bytes_under(&scratch.dest()) <= 4 << 20);
            assert_eq!(scratch.outside(), ["sibling", "sibling/keep"]);

            // Under a cap it fits, it unpacks.
            let scratch = Scratch::new();
            let report = unpack_capped(&scratch, format, &bytes, 7 << 20).expect("under the cap");
            assert_eq!(report.bytes, (6 << 20) + 5);
        }
    }

    #[test]
    fn a_sparse_entry_counts_at_its_apparent_size() {
        let tar = sparse_tar("holes", 64 << 20);
        assert!(tar.len() < 4096);
        for format in TAR_FORMATS {
            let bytes = compress(format, &tar);
            let scratch = Scratch::new();
            let error =
                unpack_capped(&scratch, format, &bytes, 16 << 20).expect_err("over the cap");
            assert!(
                matches!(&error, Error::TooLarge { entry, .. } if entry == "holes"),
                "{format:?}: {error:?}"
            );
            assert!(!scratch.dest().join("holes").exists());
        }
        let small = sparse_tar("holes", 2 << 20);
        let scratch = Scratch::new();
        let report = unpack_capped(&scratch, ArchiveFormat::Tar, &small, 4 << 20).expect("fits");
        assert_eq!(report.bytes, 2 << 20);
        assert_eq!(
            fs::metadata(scratch.dest().join("holes"))
                .expect("stat")
                .len(),
            2 << 20
        );
    }
}
