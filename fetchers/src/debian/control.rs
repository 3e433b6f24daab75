//! deb822 control data: the paragraph format of Debian's `Packages` and `Release` files ([`parse`]), and
//! [`Error`], the one error for index data that is not what Debian publishes (bad syntax, a missing or malformed
//! field), naming the file and the line.
//!
//! Rules (Debian Policy §5.1, <https://www.debian.org/doc/debian-policy/ch-controlfields.html>), enforced strictly
//! because the input is machine-written and a surprise means the wrong file:
//! - A paragraph is a run of field lines; paragraphs are separated by one or more blank lines (empty, or only
//!   spaces and tabs).
//! - A field line is `Name: value`. The name MUST be non-empty, printable ASCII without spaces or `:`, and MUST NOT
//!   start with `#` or `-`; names compare case-insensitively, and one paragraph MUST NOT hold a name twice.
//! - A line starting with a space or tab continues the previous field; it MUST NOT come first in a paragraph.
//!   The value keeps its continuation lines, each on its own line with its leading and trailing whitespace removed
//!   (a `Description`'s ` .` line becomes `.`), so a folded field (`Depends`) reads as one list once newlines count
//!   as whitespace, and a multiline one (`SHA256`) reads line by line.
//! - `\r\n` line ends are accepted (an InRelease's signed text is CRLF-normalized).

use std::fmt;

/// One paragraph: its fields in file order and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    line: usize,
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The 1-based line of the paragraph's first field.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The value of field `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of field `name`, or [`Problem::MissingField`] naming the paragraph.
    pub fn required(&self, name: &'static str, origin: &str) -> Result<&str, Error> {
        self.get(name).ok_or_else(|| Error {
            origin: origin.to_owned(),
            line: self.line,
            problem: Problem::MissingField { field: name },
        })
    }

    /// The fields as `(name, value)`, names as written, in file order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// An [`Error`] about field `field` of this paragraph: its value is not what the format allows.
    pub fn invalid(
        &self,
        origin: &str,
        field: &'static str,
        value: &str,
        reason: impl Into<String>,
    ) -> Error {
        Error {
            origin: origin.to_owned(),
            line: self.line,
            problem: Problem::InvalidField {
                field,
                value: value.to_owned(),
                reason: reason.into(),
            },
        }
    }
}

/// Index data that is not well-formed deb822, or lacks what its format requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian control data in `{origin}` at line {line}: {problem}")]
pub struct Error {
    /// The file or URL the data came from.
    pub origin: String,
    /// The 1-based line (for a field problem, the line its paragraph starts on).
    pub line: usize,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with control data, see [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A continuation line (leading space or tab) opens a paragraph.
    #[error("a continuation line comes before any field")]
    ContinuationFirst,
    /// A line is neither a field, a continuation nor blank.
    #[error("expected `Name: value`, found `{line}`")]
    NotAField {
        /// The line (cut to 80 characters).
        line: String,
    },
    /// A field name holds a character names cannot hold.
    #[error("`{name}` is not a valid field name")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// A paragraph holds a field twice.
    #[error("field `{name}` appears twice in one paragraph")]
    DuplicateField {
        /// The name as written the second time.
        name: String,
    },
    /// The bytes are not UTF-8.
    #[error("the text is not UTF-8")]
    NotUtf8,
    /// A paragraph lacks a field its file type requires.
    #[error("the paragraph has no `{field}` field")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field's value is malformed.
    #[error("field `{field}` has the invalid value `{value}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Its value (cut to 200 characters).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        Some(
            "the file is not the index Debian publishes: check the URL (a mirror's error page?), and that a \
             compressed index was decompressed"
                .into(),
        )
    }
}

/// Cuts `text` to `max` characters for an error message.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b':')
}

/// `bytes` as text, or [`Problem::NotUtf8`] at the line of the first bad byte.
pub fn utf8<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|error| Error {
        origin: origin.to_owned(),
        line: bytes[..error.valid_up_to()]
            .split(|&byte| byte == b'\n')
            .count(),
        problem: Problem::NotUtf8,
    })
}

/// Parses `text` (from `origin`, named in errors) into its paragraphs.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Paragraph>, Error> {
    let error = |line: usize, problem: Problem| Error {
        origin: origin.to_owned(),
        line,
        problem,
    };
    let mut paragraphs = Vec::new();
    let mut current: Option<Paragraph> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim_matches([' ', '\t']).is_empty() {
            paragraphs.extend(current.take());
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.as_mut().and_then(|p| p.fields.last_mut()) else {
                return Err(error(number, Problem::ContinuationFirst));
            };
            value.push('\n');
            value.push_str(line.trim_matches([' ', '\t']));
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(error(
                number,
                Problem::NotAField {
                    line: excerpt(line, 80),
                },
            ));
        };
        if !valid_name(name) {
            return Err(error(
                number,
                Problem::InvalidName {
                    name: excerpt(name, 80),
                },
            ));
        }
        let paragraph = current.get_or_insert_with(|| Paragraph {
            line: number,
            fields: Vec::new(),
        });
        if paragraph.get(name).is_some() {
            return Err(error(
                number,
                Problem::DuplicateField {
                    name: name.to_owned(),
                },
            ));
        }
        paragraph
            .fields
            .push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    paragraphs.extend(current);
    Ok(paragraphs)
}

impl fmt::Display for Paragraph {
    /// The paragraph as deb822 text (no trailing blank line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.fields {
            let mut lines = value.split('\n');
            let first = lines.next().unwrap_or_default();
            if first.is_empty() {
                writeln!(f, "{name}:")?;
            } else {
                writeln!(f, "{name}: {first}")?;
            }
            for line in lines {
                writeln!(f, " {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n more\n .\n\t tab\n\n \t\nPackage: b\r\nsha256:\r\n x 1 p\r\n";
        let paragraphs = parse(text, "Packages").unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].line(), 1);
        assert_eq!(paragraphs[0].get("package"), Some("a"));
        assert_eq!(
            paragraphs[0].get("DESCRIPTION"),
            Some("short\nmore\n.\ntab")
        );
        assert_eq!(paragraphs[1].line(), 8);
        assert_eq!(paragraphs[1].get("SHA256"), Some("\nx 1 p"));
        assert_eq!(paragraphs[1].get("Version"), None);
        assert_eq!(
            paragraphs[1].to_string(),
            "Package: b\nsha256:\n x 1 p\n",
            "round-trips as deb822"
        );
    }

    #[test]
    fn empty_input_has_no_paragraphs() {
        assert!(parse("", "x").unwrap().is_empty());
        assert!(parse("\n\n  \n", "x").unwrap().is_empty());
    }

    #[test]
    fn strict_errors_name_file_and_line() {
        let cases = [
            (" continued\n", 1, Problem::ContinuationFirst),
            (
                "Package: a\nno colon here\n",
                2,
                Problem::NotAField {
                    line: "no colon here".into(),
                },
            ),
            (
                "Package: a\n\n#comment: x\n",
                3,
                Problem::InvalidName {
                    name: "#comment".into(),
                },
            ),
            (
                "Package: a\nBad Name: x\n",
                2,
                Problem::InvalidName {
                    name: "Bad Name".into(),
                },
            ),
            (
                "Package: a\nVersion: 1\npackage: b\n",
                3,
                Problem::DuplicateField {
                    name: "package".into(),
                },
            ),
        ];
        for (text, line, problem) in cases {
            let error = parse(text, "dists/x/Release").unwrap_err();
            assert_eq!((error.line, &error.problem), (line, &problem), "{text:?}");
            assert!(error.to_string().contains("`dists/x/Release` at line"));
        }
    }

    #[test]
    fn utf8_errors_name_the_line() {
        let error = utf8(b"Package: a\n\nPackage: \xff\n", "P").unwrap_err();
        assert_eq!((error.line, error.problem), (3, Problem::NotUtf8));
    }

    #[test]
    fn required_and_invalid_name_the_paragraph() {
        let paragraphs = parse("Package: a\n\nPackage: b\n", "P").unwrap();
        let error = paragraphs[1].required("Version", "P").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid Debian control data in `P` at line 3: the paragraph has no `Version` field"
        );
    }
}
