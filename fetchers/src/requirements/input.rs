//! The requirement text of a `requirements` source, read as data: the recipe's inline `requirements = […]` lines and
//! the `requirements_file`'s lines become [`Requirements`] before anything runs, and what uv is given is
//! [`Requirements::render`], never the text as written (issue 20, attack 3).
//!
//! Lines are split as pip splits a requirements file (`pip/_internal/req/req_file.py`): a line ending in `\` is
//! joined with the next (not a comment line), a `#` at the start or after whitespace starts a comment, blank lines
//! are skipped, and a joined line is reported at the number of its first line. Each remaining line MUST be one
//! PEP 508 requirement by name ([`pep508`]) followed only by `--hash=sha256:<64 hex>` options. Everything else is
//! refused with the file (or recipe and source) and line: any option (`-r`, `-c`, `-e`, `--index-url`,
//! `--extra-index-url`, `--find-links`, `--trusted-host`, `--no-index`, `--pre`…), an environment reference
//! (`${…}`, which pip and uv would expand from hstore's environment), a URL or a path requirement. The index is the
//! recipe's `index`; nothing in the text can name another or make uv open a file.

use std::fmt;

use super::pep508::{self, Operator, ParseError, Requirement};

/// Where requirement text comes from.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// The recipe's inline `requirements = […]` (its entries are lines).
    Inline {
        /// The recipe.
        recipe: &'a str,
        /// The source.
        source: &'a str,
    },
    /// A `requirements_file = "SOURCE:PATH"`.
    File {
        /// `SOURCE:PATH` as the recipe writes it.
        file: &'a str,
    },
}

/// One line's place, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Line `line` of the inline `requirements` of `recipe.source` (entries count as lines).
    Inline {
        /// The recipe.
        recipe: String,
        /// The source.
        source: String,
        /// 1-based line.
        line: usize,
    },
    /// Line `line` of the requirements file `file` (`SOURCE:PATH`).
    File {
        /// `SOURCE:PATH`.
        file: String,
        /// 1-based line.
        line: usize,
    },
}

impl Location {
    fn new(origin: Origin<'_>, line: usize) -> Self {
        match origin {
            Origin::Inline { recipe, source } => Location::Inline {
                recipe: recipe.to_owned(),
                source: source.to_owned(),
                line,
            },
            Origin::File { file } => Location::File {
                file: file.to_owned(),
                line,
            },
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Inline {
                recipe,
                source,
                line,
            } => write!(
                f,
                "line {line} of the inline `requirements` of recipe `{recipe}`, source `{source}`"
            ),
            Location::File { file, line } => write!(f, "line {line} of requirements file `{file}`"),
        }
    }
}

/// A requirement line hstore cannot take as data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pip/uv option (`-r`, `--extra-index-url`, `--config-settings`…).
    #[error(
        "{location}: found the option `{option}`; a requirement line holds one PEP 508 requirement and `--hash=sha256:…` options only"
    )]
    Option {
        /// Where.
        location: Location,
        /// The option as written (`--extra-index-url`, `-r`), escaped.
        option: String,
    },
    /// `${VAR}` (or a bare `$`): pip and uv expand these from the environment.
    #[error(
        "{location}: found the environment reference `{reference}`; requirement text is data and is never expanded"
    )]
    EnvironmentReference {
        /// Where.
        location: Location,
        /// The reference as written, escaped.
        reference: String,
    },
    /// `name @ URL`.
    #[error(
        "{location}: found the direct URL requirement `{requirement}`; requirements are resolved from the source's index only"
    )]
    Url {
        /// Where.
        location: Location,
        /// The requirement as written, escaped.
        requirement: String,
    },
    /// A local path, archive or VCS URL instead of a requirement.
    #[error(
        "{location}: found the path or URL `{requirement}`; requirements are resolved from the source's index only"
    )]
    Path {
        /// Where.
        location: Location,
        /// The text as written, escaped.
        requirement: String,
    },
    /// A `--hash` that is not `sha256:` and 64 hex digits.
    #[error("{location}: found the hash `{hash}`; expected `sha256:` and 64 hex digits")]
    Hash {
        /// Where.
        location: Location,
        /// The value as written, escaped.
        hash: String,
    },
    /// Not PEP 508.
    #[error("{location}: invalid requirement `{line}`: {message} (column {column})")]
    Syntax {
        /// Where.
        location: Location,
        /// The requirement as written, escaped.
        line: String,
        /// 1-based column in `line`.
        column: usize,
        /// What was expected and found.
        message: String,
    },
}

impl Error {
    /// Where the refused line is.
    pub fn location(&self) -> &Location {
        match self {
            Error::Option { location, .. }
            | Error::EnvironmentReference { location, .. }
            | Error::Url { location, .. }
            | Error::Path { location, .. }
            | Error::Hash { location, .. }
            | Error::Syntax { location, .. } => location,
        }
    }
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Option { option, .. } => option_hint(option).to_owned(),
            Error::EnvironmentReference { .. } => {
                "write the value itself; the index is the recipe's `index = \"URL\"` (a mirror is `--mirror FROM=TO`), \
                 and credentials never belong in requirement text"
                    .to_owned()
            }
            Error::Url { .. } | Error::Path { .. } => {
                "name the package and a version the source's `index` serves (`name==1.2`), or build the package in a \
                 recipe of its own"
                    .to_owned()
            }
            Error::Hash { .. } => {
                "write hashes as `uv pip compile --generate-hashes` does: `--hash=sha256:` and the wheel's 64-digit \
                 sha256"
                    .to_owned()
            }
            Error::Syntax { .. } => {
                "write one PEP 508 requirement per line, e.g. `name[extra]>=1.0,<2; python_version >= \"3.10\"`"
                    .to_owned()
            }
        })
    }
}

/// The hint that fits a refused option (`-rfile` is `-r`, as in pip's option parser).
fn option_hint(option: &str) -> &'static str {
    let key = if option.starts_with("--") {
        option
    } else {
        option.get(..2).unwrap_or(option)
    };
    match key {
        "-i" | "--index-url" | "--extra-index-url" | "--no-index" | "-f" | "--find-links"
        | "--trusted-host" => {
            "the index is the recipe's `index = \"URL\"` in the source's table (a mirror is `--mirror FROM=TO`); \
             requirement text cannot name another"
        }
        "-r" | "--requirement" | "-c" | "--constraint" => {
            "a source reads one `requirements_file` and nothing it names: copy the included file's requirements \
             into it, or into the inline `requirements = […]`"
        }
        "-e" | "--editable" => {
            "a local or editable project is not a locked input: build it in a recipe of its own, or publish its wheel \
             to the index"
        }
        _ => {
            "remove the line: resolution settings (pre-releases, binaries only, the snapshot time) are hstore's and \
             the recipe's (`exclude_newer`)"
        }
    }
}

/// One accepted line: a requirement and the sha256 values (lowercase hex) its `--hash` options allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequirementLine {
    /// The requirement.
    pub requirement: Requirement,
    /// Allowed sha256 values, in the order written.
    pub hashes: Vec<String>,
}

impl fmt::Display for RequirementLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.requirement)?;
        for hash in &self.hashes {
            write!(f, " --hash=sha256:{hash}")?;
        }
        Ok(())
    }
}

/// A source's requirements, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Every accepted line, inline lines first.
    pub lines: Vec<RequirementLine>,
}

impl Requirements {
    /// Parses each `(origin, text)` in turn; the first refused line is the error.
    pub fn parse(parts: &[(Origin<'_>, &str)]) -> Result<Self, Error> {
        let mut lines = Vec::new();
        for (origin, text) in parts {
            lines.extend(parse_text(*origin, text)?);
        }
        Ok(Self { lines })
    }

    /// hstore's own rendering, one requirement per line: what uv reads.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        text
    }

    /// Whether there is no requirement at all.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// `(name, version, hashes)` of every line when each is `name==version` (no `.*`, no marker) with at least one
    /// hash: a pre-pinned input, taken as it is. `None` otherwise.
    pub fn pinned(&self) -> Option<Vec<(String, String, Vec<String>)>> {
        if self.lines.is_empty() {
            return None;
        }
        self.lines
            .iter()
            .map(|line| match line.requirement.specifiers.as_slice() {
                [specifier]
                    if specifier.operator == Operator::Equal
                        && !specifier.version.ends_with(".*")
                        && line.requirement.marker.is_none()
                        && !line.hashes.is_empty() =>
                {
                    Some((
                        line.requirement.name.clone(),
                        specifier.version.clone(),
                        line.hashes.clone(),
                    ))
                }
                _ => None,
            })
            .collect()
    }
}

/// Parses one text (a file, or the inline lines joined by newlines).
pub fn parse_text(origin: Origin<'_>, text: &str) -> Result<Vec<RequirementLine>, Error> {
    let mut lines = Vec::new();
    for (number, line) in logical_lines(text) {
        lines.push(parse_line(Location::new(origin, number), &line)?);
    }
    Ok(lines)
}

/// pip's `COMMENT_RE.match`: a line whose first non-whitespace character is `#`.
fn is_comment_line(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// pip's `preprocess` without the environment expansion (after a UTF-8 byte-order mark is dropped): `(first line number, text)` of each non-empty logical line,
/// continuations joined, comments (`#` at the start or after whitespace) removed, trimmed.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    // pip decodes a file with a byte-order mark as the encoding it names; for UTF-8 that is dropping it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut joined: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let number = index + 1;
        let comment = is_comment_line(line);
        if !line.ends_with('\\') || comment {
            // A comment line ends a continuation; pip prefixes it with a space so the comment rule removes it.
            let line = if comment {
                format!(" {line}")
            } else {
                line.to_owned()
            };
            match pending.take() {
                Some((first, mut text)) => {
                    text.push_str(&line);
                    joined.push((first, text));
                }
                None => joined.push((number, line)),
            }
        } else {
            let head = line.trim_end_matches('\\');
            match &mut pending {
                Some((_, text)) => text.push_str(head),
                None => pending = Some((number, head.to_owned())),
            }
        }
    }
    joined.extend(pending);
    joined
        .into_iter()
        .filter_map(|(number, line)| {
            let line = strip_comment(&line).trim();
            (!line.is_empty()).then(|| (number, line.to_owned()))
        })
        .collect()
}

/// Removes `(^|\s+)#.*$`.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return line[..at].trim_end();
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

/// Shows untrusted text in a message: escaped ([`pep508::escape`]), long text cut.
fn shown(text: &str) -> String {
    const LIMIT: usize = 120;
    let cut: String = text.chars().take(LIMIT).collect();
    let mut shown = pep508::escape(&cut);
    if cut.len() < text.len() {
        shown.push('…');
    }
    shown
}

/// The character classes that are never part of a requirement (checked before the grammar, for a message that
/// names them): `$` begins an environment reference in pip and uv.
fn environment_reference(line: &str) -> Option<&str> {
    let at = line.find('$')?;
    let rest = &line[at..];
    let end = if rest.starts_with("${") {
        rest.find('}').map_or(rest.len(), |close| close + 1)
    } else {
        rest.find(char::is_whitespace).unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

/// Whether a requirement's first word looks like a path, archive (pip's archive suffixes) or VCS/URL spec rather
/// than a name.
fn is_path_or_url(requirement: &str) -> bool {
    let lower = requirement.to_ascii_lowercase();
    lower.starts_with(['.', '/', '~'])
        || lower.contains(['/', '\\'])
        || lower.contains("://")
        || ["file:", "git+", "hg+", "svn+", "bzr+"]
            .iter()
            .any(|scheme| lower.starts_with(scheme))
        || [
            ".whl",
            ".zip",
            ".tar.gz",
            ".tgz",
            ".tar.bz2",
            ".tbz",
            ".tar.xz",
            ".txz",
            ".tlz",
            ".tar.lz",
            ".tar.lzma",
            ".tar",
        ]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

fn parse_line(location: Location, line: &str) -> Result<RequirementLine, Error> {
    if let Some(reference) = environment_reference(line) {
        return Err(Error::EnvironmentReference {
            location,
            reference: shown(reference),
        });
    }
    if line.starts_with('-') {
        let option = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .next()
            .unwrap_or(line);
        return Err(Error::Option {
            location,
            option: shown(option),
        });
    }
    // pip's `break_args_options`: options begin at the first whitespace-separated word starting with `-`.
    let mut split = line.len();
    let mut previous_is_space = false;
    for (at, c) in line.char_indices() {
        if c == '-' && previous_is_space {
            split = at;
            break;
        }
        previous_is_space = c.is_whitespace();
    }
    let (requirement_text, options) = line.split_at(split);
    let requirement_text = requirement_text.trim();
    // pip reads a first word that looks like a path, archive or URL as one, whatever else it could parse as.
    let first_word = requirement_text
        .split(|c: char| c.is_whitespace() || ";[(<>=!@".contains(c))
        .next()
        .unwrap_or(requirement_text);
    if is_path_or_url(first_word) {
        return Err(Error::Path {
            location,
            requirement: shown(requirement_text),
        });
    }
    let requirement = match pep508::parse(requirement_text) {
        Ok(requirement) => requirement,
        Err(ParseError::Url { .. }) => {
            return Err(Error::Url {
                location,
                requirement: shown(requirement_text),
            });
        }
        Err(ParseError::Syntax { column, message }) => {
            return Err(Error::Syntax {
                location,
                line: shown(requirement_text),
                column,
                message,
            });
        }
    };
    let mut hashes = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let value = match word
            .strip_prefix("--hash")
            .map(|rest| (rest, rest.strip_prefix('=')))
        {
            Some(("", _)) => words.next().unwrap_or(""),
            Some((_, Some(value))) => value,
            Some((_, None)) | None => {
                return Err(Error::Option {
                    location,
                    option: shown(word.split('=').next().unwrap_or(word)),
                });
            }
        };
        let hex = value
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(hex) = hex else {
            return Err(Error::Hash {
                location,
                hash: shown(value),
            });
        };
        hashes.push(hex.to_ascii_lowercase());
    }
    Ok(RequirementLine {
        requirement,
        hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hstore_store::Hint as _;

    const FILE: Origin<'static> = Origin::File {
        file: "up:requirements.txt",
    };

    fn refused(text: &str) -> Error {
        match parse_text(FILE, text) {
            Err(error) => error,
            Ok(lines) => panic!("`{text}` should be refused, got {lines:?}"),
        }
    }

    fn line_of(error: &Error) -> usize {
        match error.location() {
            Location::Inline { line, .. } | Location::File { line, .. } => *line,
        }
    }

    #[test]
    fn comments_continuations_and_blank_lines_fold_as_pip_folds_them() {
        let text = "# header \\\nfoo==1.0 \\\n    --hash=sha256:AA \\\n\n\
                    bar # trailing comment\r\n  \nbaz\\\n# a comment ends a continuation\nqux#not-a-comment\n\
                    last \\";
        assert_eq!(
            logical_lines(text),
            vec![
                (2, "foo==1.0     --hash=sha256:AA".to_owned()),
                (5, "bar".to_owned()),
                (7, "baz".to_owned()),
                (9, "qux#not-a-comment".to_owned()),
                (10, "last".to_owned()),
            ]
        );
        assert_eq!(logical_lines("\u{feff}top\n"), vec![(1, "top".to_owned())]);
        // A comment on a continued line swallows the rest of the joined line, as in pip.
        assert_eq!(
            logical_lines("foo # note \\\nbar\nbaz"),
            vec![(1, "foo".to_owned()), (3, "baz".to_owned())]
        );
    }

    #[test]
    fn requirements_with_extras_markers_and_hashes_render_canonically() {
        let hash = "Ab".repeat(32);
        let text = format!(
            "Foo_Bar[Extra] >= 1.0 , <2 ; python_version >= '3.10' --hash=sha256:{hash} \\\n  --hash sha256:{}\n\
             top\n",
            "0".repeat(64)
        );
        let requirements =
            Requirements::parse(&[(FILE, text.as_str())]).expect("valid requirements");
        assert_eq!(
            requirements.render(),
            format!(
                "foo-bar[extra]>=1.0,<2; python_version >= \"3.10\" --hash=sha256:{} --hash=sha256:{}\ntop\n",
                hash.to_ascii_lowercase(),
                "0".repeat(64)
            )
        );
        assert!(requirements.pinned().is_none());
        // The rendering is itself valid input and renders the same.
        let again =
            Requirements::parse(&[(FILE, requirements.render().as_str())]).expect("re-parse");
        assert_eq!(again, requirements);
    }

    #[test]
    fn real_world_files_parse_including_uv_generated_hashes() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let text = format!(
            "# This file was autogenerated by uv via the following command:\n\
             #    uv pip compile requirements.in --generate-hashes\n\
             anyio==4.0.0 \\\n    --hash=sha256:{a} \\\n    --hash=sha256:{b}\n    # via starlette\n\
             numpy>=1.21; python_version >= \"3.8\"\n\
             torch==2.1.0+cu121\n\
             uvicorn[standard]>=0.20\n\
             typing_extensions>=4.0.0 ; python_version<'3.11'\n\
             Django~=4.2.0\n\
             tensorflow-io-gcs-filesystem>=0.23.1; platform_machine != \"arm64\" or platform_system != \"Darwin\"\n\
             pydantic>=1.10.0,!=1.10.3,<3.0.0\n\
             colorama; os_name == \"nt\"  # Windows only\n\
             scipy>=1.5 ; python_full_version >= \"3.7.1\"\n"
        );
        let requirements = Requirements::parse(&[(FILE, text.as_str())]).expect("valid");
        assert_eq!(
            requirements.render(),
            format!(
                "anyio==4.0.0 --hash=sha256:{a} --hash=sha256:{b}\n\
                 numpy>=1.21; python_version >= \"3.8\"\n\
                 torch==2.1.0+cu121\n\
                 uvicorn[standard]>=0.20\n\
                 typing-extensions>=4.0.0; python_version < \"3.11\"\n\
                 django~=4.2.0\n\
                 tensorflow-io-gcs-filesystem>=0.23.1; platform_machine != \"arm64\" or platform_system != \"Darwin\"\n\
                 pydantic>=1.10.0,!=1.10.3,<3.0.0\n\
                 colorama; os_name == \"nt\"\n\
                 scipy>=1.5; python_full_version >= \"3.7.1\"\n"
            )
        );
    }

    #[test]
    fn hashed_exact_pins_are_recognized_and_ranges_are_not() {
        let (a, b) = ("a".repeat(64), "B".repeat(64));
        let text = format!(
            "# pinned\nfoo==1.0 \\\n    --hash=sha256:{a} --hash=sha256:{b}\nBar_Baz==2.0 --hash=sha256:{a}\n"
        );
        let pinned = Requirements::parse(&[(FILE, text.as_str())])
            .expect("valid")
            .pinned()
            .expect("pre-pinned");
        assert_eq!(
            pinned,
            vec![
                (
                    "foo".to_owned(),
                    "1.0".to_owned(),
                    vec![a.clone(), b.to_ascii_lowercase()]
                ),
                ("bar-baz".to_owned(), "2.0".to_owned(), vec![a.clone()]),
            ]
        );
        for unpinned in [
            format!("foo>=1.0 --hash=sha256:{a}"),
            "foo==1.0".to_owned(),
            format!("foo==1.* --hash=sha256:{a}"),
            format!("foo==1.0; os_name == 'nt' --hash=sha256:{a}"),
            String::new(),
        ] {
            let parsed = Requirements::parse(&[(FILE, unpinned.as_str())]).expect("valid");
            assert!(parsed.pinned().is_none(), "{unpinned}");
        }
    }

    #[test]
    fn every_option_is_refused_naming_file_line_and_option() {
        for (text, option) in [
            ("-r /etc/shadow", "-r"),
            ("--requirement=/etc/shadow", "--requirement"),
            ("-c constraints.txt", "-c"),
            ("-e .", "-e"),
            ("--editable git+https://example.invalid/x", "--editable"),
            ("-i http://127.0.0.1:1/simple", "-i"),
            ("--index-url=http://127.0.0.1:1/simple", "--index-url"),
            (
                "--extra-index-url http://127.0.0.1:1/simple",
                "--extra-index-url",
            ),
            ("-f /tmp/wheels", "-f"),
            ("--find-links=/tmp/wheels", "--find-links"),
            ("--trusted-host example.invalid", "--trusted-host"),
            ("--no-index", "--no-index"),
            ("--pre", "--pre"),
            ("--only-binary :none:", "--only-binary"),
            ("-rrequirements.txt", "-rrequirements.txt"),
            ("foo==1.0 --config-settings x=y", "--config-settings"),
            ("foo==1.0 --global-option=--x", "--global-option"),
            ("foo==1.0 -r other.txt", "-r"),
        ] {
            let error = refused(&format!("top\n\n{text}\n"));
            assert_eq!(line_of(&error), 3, "{text}");
            match &error {
                Error::Option { option: found, .. } => assert_eq!(found, option, "{text}"),
                other => panic!("`{text}`: {other}"),
            }
            let message = error.to_string();
            assert!(
                message.contains("line 3 of requirements file `up:requirements.txt`"),
                "{message}"
            );
            assert!(error.hint().is_some());
        }
        assert!(
            refused("--extra-index-url http://x/simple")
                .hint()
                .is_some_and(|hint| hint.contains("index = "))
        );
        assert!(
            refused("-r other.txt")
                .hint()
                .is_some_and(|hint| hint.contains("requirements_file"))
        );
    }

    #[test]
    fn environment_references_urls_and_paths_are_refused() {
        let error =
            refused("top\n--extra-index-url http://127.0.0.1:9/${AWS_SECRET_ACCESS_KEY}/simple");
        assert!(
            matches!(&error, Error::EnvironmentReference { reference, .. } if reference == "${AWS_SECRET_ACCESS_KEY}"),
            "{error}"
        );
        assert_eq!(line_of(&error), 2);
        assert!(matches!(
            refused("foo==${VERSION}"),
            Error::EnvironmentReference { .. }
        ));
        assert!(
            matches!(refused("foo; os_name == \"$HOME\""), Error::EnvironmentReference { reference, .. } if reference == "$HOME\"")
        );
        for url in [
            "pkg @ https://example.invalid/pkg-1.0-py3-none-any.whl",
            "pkg@ file:///etc/shadow",
            "pkg[extra] @ git+https://example.invalid/pkg",
        ] {
            assert!(matches!(refused(url), Error::Url { .. }), "{url}");
        }
        for path in [
            "./vendor/pkg",
            "/etc/shadow",
            "~/pkg",
            "pkg-1.0-py3-none-any.whl",
            "vendor/pkg.tar.gz",
            "git+https://example.invalid/pkg",
            "https://example.invalid/pkg.zip",
            "file:pkg",
        ] {
            assert!(matches!(refused(path), Error::Path { .. }), "{path}");
        }
    }

    #[test]
    fn hashes_and_syntax_errors_name_what_was_found() {
        for hash in [
            "--hash=md5:00".to_owned(),
            "--hash=sha256:abc".to_owned(),
            "--hash=sha256:".to_owned(),
            "--hash".to_owned(),
            format!("--hash=sha256:{}", "g".repeat(64)),
        ] {
            let error = refused(&format!("foo==1.0 {hash}"));
            assert!(matches!(error, Error::Hash { .. }), "{hash}: {error}");
        }
        let error = refused("ok\nfoo >> 1");
        assert_eq!(line_of(&error), 2);
        let message = error.to_string();
        assert!(
            message.contains("invalid requirement `foo >> 1`"),
            "{message}"
        );
        assert!(message.contains("column 6"), "{message}");
        // Terminal escapes in hostile text are shown escaped.
        let message = refused("foo\u{1b}]0;owned\u{7}").to_string();
        assert!(
            !message.contains('\u{1b}') && message.contains("\\u{1b}"),
            "{message}"
        );
    }

    #[test]
    fn inline_lines_are_located_by_recipe_and_source() {
        let inline = Origin::Inline {
            recipe: "pyapp",
            source: "py",
        };
        let error = Requirements::parse(&[(inline, "top\n-r /etc/shadow"), (FILE, "leaf")])
            .expect_err("refused");
        assert_eq!(
            error.location(),
            &Location::Inline {
                recipe: "pyapp".into(),
                source: "py".into(),
                line: 2
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("line 2 of the inline `requirements` of recipe `pyapp`, source `py`: found the option `-r`"),
            "{error}"
        );
        let both = Requirements::parse(&[(inline, "top"), (FILE, "leaf<2")]).expect("valid");
        assert_eq!(both.render(), "top\nleaf<2\n");
    }
}
