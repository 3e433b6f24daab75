//! Reading one Debian binary package (`.deb`): an `ar` archive whose members MUST come in dpkg's order —
//! `debian-binary` (format `2.x`), `control.tar[.gz|.xz|.zst]`, `data.tar[.gz|.xz|.zst]` — with any member whose
//! name starts with `_` ignored, as dpkg-deb(1) and deb(5) say. Anything else is refused.
//!
//! [`read_control`] reads the package's name, version and architecture from `control`, and its `conffiles`;
//! [`unpack_data`] streams the data member into a [`Merge`] (the rules of a Debian base live there and in
//! [`super::base`]). Both stream: memory stays bounded whatever the package size (the xz decoder's memory is capped
//! as in [`archive`](crate::archive)); only `control` and `conffiles` are read into memory, each at most
//! [`MAX_CONTROL_FILE`] bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use hstore_store::Hint;

use crate::archive::{self, ArchiveFormat, MaxUnpackedSize, Merge, UnpackReport, tar_reader};

/// The most bytes `control` or `conffiles` may hold (the largest in bookworm are a few KiB).
pub const MAX_CONTROL_FILE: u64 = 1 << 20;

/// What a package says about itself in its `control` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:` (`amd64`, `all`…), empty when absent.
    pub architecture: String,
    /// The paths listed in `conffiles` (configuration files dpkg would keep on upgrade), in the package's order.
    pub conffiles: Vec<String>,
}

/// Which member of a `.deb` something is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// `debian-binary`.
    DebianBinary,
    /// `control.tar*`.
    Control,
    /// `data.tar*`.
    Data,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Member::DebianBinary => "debian-binary",
            Member::Control => "control.tar",
            Member::Data => "data.tar",
        })
    }
}

/// Everything that can go wrong reading a `.deb`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened.
    #[error("failed to open `{}`", deb.display())]
    Open {
        /// The `.deb`.
        deb: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The `ar` container or a member could not be read (truncated, corrupt, not an `ar` archive).
    #[error("failed to read `{}`{}", deb.display(), member.map(|member| format!(" (member `{member}`)")).unwrap_or_default())]
    Read {
        /// The `.deb`.
        deb: PathBuf,
        /// The member being read, if any.
        member: Option<Member>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The members are not what a binary package holds, or not in dpkg's order.
    #[error("`{}` is not a Debian binary package: expected {expected}, found {found}", deb.display())]
    Layout {
        /// The `.deb`.
        deb: PathBuf,
        /// What was expected, in words.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// `debian-binary` names a format other than `2.x`.
    #[error("`{}` has package format `{found}`; only format 2.x is supported", deb.display())]
    Format {
        /// The `.deb`.
        deb: PathBuf,
        /// The first line of `debian-binary`.
        found: String,
    },
    /// `control` lacks a required field, or is missing.
    #[error("`{}`: the `control` file has no `{field}` field", deb.display())]
    Control {
        /// The `.deb`.
        deb: PathBuf,
        /// The missing field.
        field: &'static str,
    },
    /// The data member could not be laid into the tree.
    #[error("failed to unpack package `{package}` (`{}`)", deb.display())]
    Unpack {
        /// The `.deb`.
        deb: PathBuf,
        /// The package, as labelled by the caller.
        package: String,
        /// Why (boxed: an archive error is large).
        #[source]
        source: Box<archive::Error>,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Open { .. } => None,
            Error::Read { .. } | Error::Layout { .. } | Error::Control { .. } => Some(
                "the file is not an intact .deb; the store verifies each .deb against the sha256 its lockfile \
                 pins, so check where this one came from"
                    .into(),
            ),
            Error::Format { .. } => Some(
                "hstore reads Debian's binary package format 2.0 (every package since dpkg 0.93); repack the \
                 package with `dpkg-deb --build`"
                    .into(),
            ),
            Error::Unpack { source, .. } => source.hint(),
        }
    }
}

/// The compressor named by a tar member's suffix (`data.tar.xz`), or `None` for one dpkg may write but hstore does
/// not read (`.bz2`, `.lzma`).
fn tar_format(suffix: &[u8]) -> Option<ArchiveFormat> {
    match suffix {
        b"" => Some(ArchiveFormat::Tar),
        b".gz" => Some(ArchiveFormat::TarGz),
        b".xz" => Some(ArchiveFormat::TarXz),
        b".zst" => Some(ArchiveFormat::TarZst),
        _ => None,
    }
}

/// Walks the members of the `.deb` at `deb` in dpkg's order, calling `on_control` with the decoded control tar and
/// then `on_data` with the decoded data tar and the file's size; stops after the data member.
fn walk<T>(
    deb: &Path,
    on_control: &mut dyn FnMut(&mut dyn Read) -> Result<(), Error>,
    on_data: impl FnOnce(&mut dyn Read, u64) -> Result<T, Error>,
) -> Result<T, Error> {
    let file = File::open(deb).map_err(|source| Error::Open {
        deb: deb.to_owned(),
        source,
    })?;
    let size = file.metadata().map_or(0, |metadata| metadata.len());
    let read_error = |member, source| Error::Read {
        deb: deb.to_owned(),
        member,
        source,
    };
    let layout = |expected, found: &[u8]| Error::Layout {
        deb: deb.to_owned(),
        expected,
        found: format!("`{}`", String::from_utf8_lossy(found)),
    };
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut expect = Member::DebianBinary;
    loop {
        let Some(entry) = archive.next_entry() else {
            let expected = match expect {
                Member::DebianBinary => "a `debian-binary` member first",
                Member::Control => "a `control.tar` member",
                Member::Data => "a `data.tar` member",
            };
            return Err(layout(expected, b"the end of the archive"));
        };
        let mut entry = entry.map_err(|source| read_error(None, source))?;
        let identifier = entry.header().identifier();
        // GNU ar ends names with `/`; dpkg-deb does not, but accept both.
        let name = identifier.strip_suffix(b"/").unwrap_or(identifier).to_vec();
        match expect {
            Member::DebianBinary => {
                if name != b"debian-binary" {
                    return Err(layout("a `debian-binary` member first", &name));
                }
                let mut content = Vec::new();
                (&mut entry)
                    .take(64)
                    .read_to_end(&mut content)
                    .map_err(|source| read_error(Some(Member::DebianBinary), source))?;
                let first = content.split(|&byte| byte == b'\n').next().unwrap_or(&[]);
                if !first.starts_with(b"2.") {
                    return Err(Error::Format {
                        deb: deb.to_owned(),
                        found: String::from_utf8_lossy(first).into_owned(),
                    });
                }
                expect = Member::Control;
            }
            _ if name.first() == Some(&b'_') => {}
            Member::Control => {
                let format = name
                    .strip_prefix(b"control.tar")
                    .and_then(tar_format)
                    .ok_or_else(|| layout("a `control.tar[.gz|.xz|.zst]` member", &name))?;
                let mut reader = tar_reader(format, BufReader::new(&mut entry))
                    .map_err(|source| read_error(Some(Member::Control), source))?;
                on_control(&mut reader)?;
                expect = Member::Data;
            }
            Member::Data => {
                let format = name
                    .strip_prefix(b"data.tar")
                    .and_then(tar_format)
                    .ok_or_else(|| layout("a `data.tar[.gz|.xz|.zst]` member", &name))?;
                let mut reader = tar_reader(format, BufReader::new(&mut entry))
                    .map_err(|source| read_error(Some(Member::Data), source))?;
                return on_data(&mut reader, size);
            }
        }
    }
}

/// Reads the name, version, architecture and conffiles of the `.deb` at `deb`.
pub fn read_control(deb: &Path) -> Result<Control, Error> {
    let mut control: Option<Vec<u8>> = None;
    let mut conffiles: Option<Vec<u8>> = None;
    let read_error = |source| Error::Read {
        deb: deb.to_owned(),
        member: Some(Member::Control),
        source,
    };
    walk(
        deb,
        &mut |reader| {
            let mut tar = tar::Archive::new(reader);
            for entry in tar.entries().map_err(read_error)? {
                let mut entry = entry.map_err(read_error)?;
                let path = entry.path_bytes();
                let slot = match path.strip_prefix(b"./").unwrap_or(&path) {
                    b"control" => &mut control,
                    b"conffiles" => &mut conffiles,
                    _ => continue,
                };
                let mut content = Vec::new();
                (&mut entry)
                    .take(MAX_CONTROL_FILE)
                    .read_to_end(&mut content)
                    .map_err(read_error)?;
                *slot = Some(content);
            }
            Ok(())
        },
        |_, _| Ok(()),
    )?;
    let control = control.ok_or_else(|| Error::Layout {
        deb: deb.to_owned(),
        expected: "a `control` file in `control.tar`",
        found: "none".into(),
    })?;
    let field = |name: &'static str| {
        field(&control, name).ok_or_else(|| Error::Control {
            deb: deb.to_owned(),
            field: name,
        })
    };
    Ok(Control {
        package: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture").unwrap_or_default(),
        conffiles: conffiles
            .map(|conffiles| {
                String::from_utf8_lossy(&conffiles)
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The value of the single-line field `name` (ASCII case-insensitive, as deb-control(5) says) of a control file.
fn field(control: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(control).lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.eq_ignore_ascii_case(name) && !value.is_empty()).then(|| value.to_owned())
    })
}

/// Streams the data member of the `.deb` at `deb` into `merge`, labelled `package` (what a later conflict names);
/// `max_unpacked_size` is applied to the `.deb`'s size.
pub fn unpack_data(
    deb: &Path,
    package: &str,
    merge: &mut Merge,
    max_unpacked_size: MaxUnpackedSize,
) -> Result<UnpackReport, Error> {
    walk(deb, &mut |_| Ok(()), |reader, size| {
        merge
            .unpack_tar(reader, deb, package, max_unpacked_size.for_archive(size))
            .map_err(|source| Error::Unpack {
                deb: deb.to_owned(),
                package: package.to_owned(),
                source: Box::new(source),
            })
    })
}
