//! PEP 508 dependency specifiers (name-based form only) and PEP 440 versions, parsed as data and rendered back in
//! one canonical form.
//!
//! Why a parser here and not a crate: `pep508_rs`/`pep440_rs` are stale (their development moved into uv, whose
//! `uv-pep508` needs rustc ≥ 1.97), pull a dozen crates (regex, boxcar, itertools, version-ranges…) into a
//! security boundary, expand `${VAR}` inside URLs (the very behaviour refused here), and still leave the
//! requirements-file layer (`--hash`, continuations, options) to write. The grammar is small; this follows it
//! exactly (<https://peps.python.org/pep-0508/#grammar>) with `packaging`'s specifier rules for versions
//! (<https://packaging.python.org/en/latest/specifications/version-specifiers/>), and is fuzzed
//! (`fuzz/fuzz_targets/requirements_parse.rs`: every accepted line re-renders to text that parses to the same value).
//!
//! Invariants of [`Requirement`]'s `Display` (what uv is given), which MUST hold for every parsed value:
//! - it starts with a letter or digit and holds no `$`, `#`, `\`, quote other than the `"` around marker strings,
//!   control character or non-ASCII character, so no requirements-file syntax (options, comments, continuations,
//!   `${VAR}`) can appear in it;
//! - whitespace appears only around marker operators and keywords and after `;`, never before a `-`;
//! - parsing the rendering gives the same [`Requirement`].
//!
//! URL (`name @ https://…`) and path requirements are not part of this grammar: [`ParseError::Url`] reports the
//! first so the caller can refuse it by name.

use std::fmt;

use hstore_model::python::normalize_name;

/// Parentheses nest at most this deep in a marker (a bound on recursion for hostile input).
pub const MAX_MARKER_DEPTH: usize = 32;

/// The marker variables of PEP 508, canonical spellings ([`MARKER_ALIASES`] maps the legacy ones).
pub const MARKER_VARIABLES: &[&str] = &[
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

/// `packaging`'s legacy spellings of marker variables, read as the canonical name (and rendered as it).
pub const MARKER_ALIASES: &[(&str, &str)] = &[
    ("os.name", "os_name"),
    ("sys.platform", "sys_platform"),
    ("platform.version", "platform_version"),
    ("platform.machine", "platform_machine"),
    (
        "platform.python_implementation",
        "platform_python_implementation",
    ),
    ("python_implementation", "platform_python_implementation"),
];

/// One name-based requirement: `name[extras] specifiers; marker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// PEP 503-normalized name.
    pub name: String,
    /// PEP 685-normalized extras, sorted, without duplicates.
    pub extras: Vec<String>,
    /// Version specifiers, in the order written.
    pub specifiers: Vec<Specifier>,
    /// The environment marker, if any.
    pub marker: Option<Marker>,
}

/// One version clause: an operator and a normalized version (`1.0`, `1.0.*`, `2!1.0rc1.post2.dev3+local.1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Specifier {
    /// The comparison.
    pub operator: Operator,
    /// The normalized version (with `.*` for a prefix match; as written for `===`).
    pub version: String,
}

/// A PEP 440 comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `~=`
    Compatible,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `<=`
    LessEqual,
    /// `>=`
    GreaterEqual,
    /// `<`
    Less,
    /// `>`
    Greater,
    /// `===`
    Arbitrary,
}

impl Operator {
    /// Longest first, so `===` is not read as `==` followed by `=`.
    const ALL: [(&'static str, Operator); 8] = [
        ("===", Operator::Arbitrary),
        ("==", Operator::Equal),
        ("!=", Operator::NotEqual),
        ("<=", Operator::LessEqual),
        (">=", Operator::GreaterEqual),
        ("~=", Operator::Compatible),
        ("<", Operator::Less),
        (">", Operator::Greater),
    ];

    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Compatible => "~=",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
            Operator::LessEqual => "<=",
            Operator::GreaterEqual => ">=",
            Operator::Less => "<",
            Operator::Greater => ">",
            Operator::Arbitrary => "===",
        }
    }
}

/// An environment marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `left operator right`: one side a variable, the other a quoted string.
    Compare {
        /// Left operand.
        left: MarkerValue,
        /// The comparison.
        operator: MarkerOperator,
        /// Right operand.
        right: MarkerValue,
    },
    /// Every clause holds (two or more).
    And(Vec<Marker>),
    /// Some clause holds (two or more).
    Or(Vec<Marker>),
}

/// A marker operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkerValue {
    /// One of [`MARKER_VARIABLES`].
    Variable(&'static str),
    /// A quoted string's contents (a restricted character set; see [`is_marker_string_char`]).
    Text(String),
}

/// A marker comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerOperator {
    /// A version comparison.
    Version(Operator),
    /// `in`
    In,
    /// `not in`
    NotIn,
}

/// Why a requirement did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not PEP 508: what was expected and found, at a 1-based column.
    Syntax {
        /// 1-based character column.
        column: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// A direct URL requirement (`name @ URL`): the URL as written.
    Url {
        /// Everything after the `@`, trimmed.
        url: String,
    },
}

/// Parses one requirement (no requirements-file options, no comment). Surrounding spaces and tabs are allowed.
pub fn parse(text: &str) -> Result<Requirement, ParseError> {
    let mut cursor = Cursor { text, at: 0 };
    cursor.skip_whitespace();
    let name = cursor.identifier("a package name")?;
    cursor.skip_whitespace();
    let mut extras = Vec::new();
    if cursor.eat("[") {
        cursor.skip_whitespace();
        if !cursor.eat("]") {
            loop {
                cursor.skip_whitespace();
                extras.push(normalize_name(&cursor.identifier("an extra name")?));
                cursor.skip_whitespace();
                if cursor.eat("]") {
                    break;
                }
                if !cursor.eat(",") {
                    return Err(cursor.expected("`,` or `]`"));
                }
            }
        }
        extras.sort();
        extras.dedup();
        cursor.skip_whitespace();
    }
    if cursor.peek() == Some('@') {
        return Err(ParseError::Url {
            url: text[cursor.at + 1..].trim().to_owned(),
        });
    }
    let mut specifiers = Vec::new();
    if cursor.eat("(") {
        specifiers = cursor.specifiers()?;
        cursor.skip_whitespace();
        if !cursor.eat(")") {
            return Err(cursor.expected("`,` or `)`"));
        }
    } else if cursor.peek().is_some_and(|c| "<>=!~".contains(c)) {
        specifiers = cursor.specifiers()?;
    }
    cursor.skip_whitespace();
    let marker = if cursor.eat(";") {
        let marker = cursor.marker_or(0)?;
        cursor.skip_whitespace();
        if !cursor.at_end() {
            return Err(cursor.expected("`and`, `or` or the end of the requirement"));
        }
        Some(marker)
    } else if cursor.at_end() {
        None
    } else if specifiers.is_empty() {
        return Err(cursor.expected("`[`, a version specifier, `;` or the end of the requirement"));
    } else {
        return Err(cursor.expected("`,`, `;` or the end of the requirement"));
    };
    Ok(Requirement {
        name: normalize_name(&name),
        extras,
        specifiers,
        marker,
    })
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.extras.is_empty() {
            write!(f, "[{}]", self.extras.join(","))?;
        }
        for (index, specifier) in self.specifiers.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}", specifier.operator.as_str(), specifier.version)?;
        }
        if let Some(marker) = &self.marker {
            write!(f, "; {marker}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::Compare {
                left,
                operator,
                right,
            } => write!(f, "{left} {operator} {right}"),
            Marker::And(clauses) => {
                for (index, clause) in clauses.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" and ")?;
                    }
                    match clause {
                        Marker::Or(_) => write!(f, "({clause})")?,
                        Marker::Compare { .. } | Marker::And(_) => write!(f, "{clause}")?,
                    }
                }
                Ok(())
            }
            Marker::Or(clauses) => {
                for (index, clause) in clauses.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{clause}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for MarkerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarkerValue::Variable(name) => f.write_str(name),
            MarkerValue::Text(text) => write!(f, "\"{text}\""),
        }
    }
}

impl fmt::Display for MarkerOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarkerOperator::Version(operator) => f.write_str(operator.as_str()),
            MarkerOperator::In => f.write_str("in"),
            MarkerOperator::NotIn => f.write_str("not in"),
        }
    }
}

/// Untrusted text for a message: printable ASCII as it is, control characters as Rust escapes (`\t`, `\u{1b}`), any
/// other character as `\u{…}`, so no terminal escape, bidi override or look-alike letter reaches the terminal.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            escaped.push(c);
        } else if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.extend(c.escape_unicode());
        }
    }
    escaped
}

/// The characters a marker string may hold: enough for every PEP 508 variable's values, and nothing that the
/// requirements-file layer of pip or uv reads (no whitespace, `#`, `$`, `\`, `;`, quotes or control characters).
pub fn is_marker_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-+*!~@%^&|<>=:,/()[]{}?".contains(c)
}

/// Appends `marker` to the clauses of an `and` (`conjunction`) or `or`, splicing in a parenthesized group of the
/// same kind: `a and (b and c)` is `a and b and c`, so the rendering (which drops those parentheses) parses back to
/// the same value.
fn push_flat(clauses: &mut Vec<Marker>, marker: Marker, conjunction: bool) {
    match marker {
        Marker::And(inner) if conjunction => clauses.extend(inner),
        Marker::Or(inner) if !conjunction => clauses.extend(inner),
        Marker::Compare { .. } | Marker::And(_) | Marker::Or(_) => clauses.push(marker),
    }
}

struct Cursor<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.at == self.text.len()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.rest().starts_with(literal) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    /// PEP 508 `wsp`: spaces and tabs.
    fn skip_whitespace(&mut self) {
        while let Some(c @ (' ' | '\t')) = self.peek() {
            self.at += c.len_utf8();
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.at;
        while let Some(c) = self.peek().filter(|c| keep(*c)) {
            self.at += c.len_utf8();
        }
        &self.text[start..self.at]
    }

    fn column(&self, at: usize) -> usize {
        self.text[..at].chars().count() + 1
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the requirement".to_owned(),
            Some(c) => format!("`{}`", escape(c.encode_utf8(&mut [0; 4]))),
        }
    }

    fn expected(&self, what: &str) -> ParseError {
        ParseError::Syntax {
            column: self.column(self.at),
            message: format!("expected {what}, found {}", self.found()),
        }
    }

    fn error_at(&self, at: usize, message: String) -> ParseError {
        ParseError::Syntax {
            column: self.column(at),
            message,
        }
    }

    /// PEP 508 `identifier`: letters and digits, with `-`, `_`, `.` inside.
    fn identifier(&mut self, what: &str) -> Result<String, ParseError> {
        let start = self.at;
        if !self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(self.expected(what));
        }
        let name = self
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .to_owned();
        if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(self.error_at(
                start,
                format!("{what} `{name}` must end with a letter or digit"),
            ));
        }
        Ok(name)
    }

    fn operator(&mut self) -> Option<Operator> {
        for (text, operator) in Operator::ALL {
            if self.eat(text) {
                return Some(operator);
            }
        }
        None
    }

    /// `version_one (wsp* ',' version_one)*`.
    fn specifiers(&mut self) -> Result<Vec<Specifier>, ParseError> {
        let mut specifiers = Vec::new();
        loop {
            self.skip_whitespace();
            let Some(operator) = self.operator() else {
                return Err(self.expected("a version operator (`==`, `>=`, `~=`…)"));
            };
            self.skip_whitespace();
            let start = self.at;
            let version = self.take_while(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '+' | '!')
            });
            if version.is_empty() {
                return Err(self.expected(&format!("a version after `{}`", operator.as_str())));
            }
            let version = specifier_version(operator, version)
                .map_err(|message| self.error_at(start, message))?;
            specifiers.push(Specifier { operator, version });
            let before_comma = self.at;
            self.skip_whitespace();
            if !self.eat(",") {
                self.at = before_comma;
                return Ok(specifiers);
            }
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.starts_with(word)
            && !rest[word.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn marker_or(&mut self, depth: usize) -> Result<Marker, ParseError> {
        self.marker_chain(depth, "or", Self::marker_and)
    }

    fn marker_and(&mut self, depth: usize) -> Result<Marker, ParseError> {
        self.marker_chain(depth, "and", Self::marker_expression)
    }

    /// `operand (keyword operand)*`, flattened: one operand is itself, more an `Or` (`or`) or an `And` (`and`).
    fn marker_chain(
        &mut self,
        depth: usize,
        keyword: &str,
        operand: fn(&mut Self, usize) -> Result<Marker, ParseError>,
    ) -> Result<Marker, ParseError> {
        let conjunction = keyword == "and";
        let mut clauses = Vec::new();
        push_flat(&mut clauses, operand(self, depth)?, conjunction);
        loop {
            let before = self.at;
            self.skip_whitespace();
            if self.keyword(keyword) {
                push_flat(&mut clauses, operand(self, depth)?, conjunction);
            } else {
                self.at = before;
                break;
            }
        }
        Ok(if clauses.len() == 1 {
            clauses.remove(0)
        } else if conjunction {
            Marker::And(clauses)
        } else {
            Marker::Or(clauses)
        })
    }

    fn marker_expression(&mut self, depth: usize) -> Result<Marker, ParseError> {
        self.skip_whitespace();
        let start = self.at;
        if self.eat("(") {
            if depth >= MAX_MARKER_DEPTH {
                return Err(self.error_at(
                    start,
                    format!("markers nest deeper than {MAX_MARKER_DEPTH} parentheses"),
                ));
            }
            let marker = self.marker_or(depth + 1)?;
            self.skip_whitespace();
            if !self.eat(")") {
                return Err(self.expected("`and`, `or` or `)`"));
            }
            return Ok(marker);
        }
        let left = self.marker_value()?;
        self.skip_whitespace();
        let operator = if let Some(operator) = self.operator() {
            MarkerOperator::Version(operator)
        } else if self.keyword("in") {
            MarkerOperator::In
        } else if self.keyword("not") {
            self.skip_whitespace();
            if !self.keyword("in") {
                return Err(self.expected("`in` after `not`"));
            }
            MarkerOperator::NotIn
        } else {
            return Err(self.expected("a marker operator (`==`, `>=`, `in`, `not in`…)"));
        };
        self.skip_whitespace();
        let right = self.marker_value()?;
        match (&left, &right) {
            (MarkerValue::Variable(_), MarkerValue::Text(_))
            | (MarkerValue::Text(_), MarkerValue::Variable(_)) => Ok(Marker::Compare {
                left,
                operator,
                right,
            }),
            (MarkerValue::Variable(_), MarkerValue::Variable(_))
            | (MarkerValue::Text(_), MarkerValue::Text(_)) => Err(self.error_at(
                start,
                "a marker compares one variable with one quoted string".to_owned(),
            )),
        }
    }

    fn marker_value(&mut self) -> Result<MarkerValue, ParseError> {
        let start = self.at;
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.at += 1;
                let text = self
                    .take_while(|c| c != quote && is_marker_string_char(c))
                    .to_owned();
                if !self.eat(if quote == '"' { "\"" } else { "'" }) {
                    return Err(match self.peek() {
                        None => self.error_at(start, "unterminated quoted string".to_owned()),
                        Some(_) => ParseError::Syntax {
                            column: self.column(self.at),
                            message: format!(
                                "{} is not allowed in a marker string (letters, digits and `{}` only)",
                                self.found(),
                                "._-+*!~@%^&|<>=:,/()[]{}?"
                            ),
                        },
                    });
                }
                Ok(MarkerValue::Text(text))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let written =
                    self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
                let name = MARKER_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == written)
                    .map_or(written, |(_, canonical)| *canonical);
                match MARKER_VARIABLES.iter().find(|known| **known == name) {
                    Some(known) => Ok(MarkerValue::Variable(known)),
                    None => Err(self.error_at(
                        start,
                        format!(
                            "unknown marker variable `{name}` (expected one of {})",
                            MARKER_VARIABLES.join(", ")
                        ),
                    )),
                }
            }
            Some(_) | None => Err(self.expected("a marker variable or a quoted string")),
        }
    }
}

/// Validates and normalizes the version of one specifier, with `packaging`'s rules for which forms each operator
/// takes: `.*` only after `==`/`!=` and a bare release; a local label only with `==`/`!=`; `~=` needs two release
/// numbers; `===` takes any version-like text as written.
fn specifier_version(operator: Operator, text: &str) -> Result<String, String> {
    match operator {
        Operator::Arbitrary => {
            if text.contains('*') {
                return Err(format!("`===` takes a literal version, found `{text}`"));
            }
            Ok(text.to_owned())
        }
        Operator::Equal | Operator::NotEqual => {
            if let Some(prefix) = text.strip_suffix(".*") {
                let version = Version::parse(prefix)?;
                if !version.is_release_only() {
                    return Err(format!(
                        "`{text}`: a `.*` prefix match takes a release only (e.g. `1.2.*`)"
                    ));
                }
                Ok(format!("{version}.*"))
            } else {
                Ok(Version::parse(text)?.to_string())
            }
        }
        Operator::Compatible
        | Operator::LessEqual
        | Operator::GreaterEqual
        | Operator::Less
        | Operator::Greater => {
            let version = Version::parse(text)?;
            if version.local.is_some() {
                return Err(format!(
                    "`{text}`: a local version label (`+…`) is allowed only with `==` and `!=`"
                ));
            }
            if operator == Operator::Compatible && version.release.len() < 2 {
                return Err(format!(
                    "`~={text}` needs at least two release numbers (e.g. `~=1.4`)"
                ));
            }
            Ok(version.to_string())
        }
    }
}

/// A PEP 440 version, parsed from any of its permitted spellings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// `N!`, 0 when absent.
    pub epoch: u64,
    /// The release numbers (at least one).
    pub release: Vec<u64>,
    /// `a`, `b` or `rc` and its number.
    pub pre: Option<(&'static str, u64)>,
    /// `.postN`.
    pub post: Option<u64>,
    /// `.devN`.
    pub dev: Option<u64>,
    /// The local label, lowercased, `.`-separated.
    pub local: Option<String>,
}

impl Version {
    /// Parses `text` (case-insensitive; `v` prefix, `-`/`_`/`.` separators and implicit numbers allowed).
    pub fn parse(text: &str) -> Result<Version, String> {
        let invalid = |why: &str| format!("`{text}` is not a PEP 440 version: {why}");
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        rest = rest.strip_prefix('v').unwrap_or(rest);
        let number = |rest: &mut &str| -> Result<Option<u64>, String> {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Ok(None);
            }
            let value = rest[..digits]
                .parse::<u64>()
                .map_err(|_| invalid("a number is too large"))?;
            *rest = &rest[digits..];
            Ok(Some(value))
        };
        let first = number(&mut rest)?.ok_or_else(|| invalid("it must start with a number"))?;
        let mut epoch = 0;
        let mut release = vec![first];
        if let Some(after) = rest.strip_prefix('!') {
            epoch = first;
            rest = after;
            release = vec![number(&mut rest)?.ok_or_else(|| invalid("a release must follow `!`"))?];
        }
        while let Some(after) = rest.strip_prefix('.') {
            let mut probe = after;
            match number(&mut probe)? {
                Some(value) => {
                    release.push(value);
                    rest = probe;
                }
                None => break,
            }
        }
        fn separator(rest: &str) -> &str {
            rest.strip_prefix(['-', '_', '.']).unwrap_or(rest)
        }
        let mut pre = None;
        for (spelling, label) in [
            ("alpha", "a"),
            ("a", "a"),
            ("beta", "b"),
            ("b", "b"),
            ("preview", "rc"),
            ("pre", "rc"),
            ("rc", "rc"),
            ("c", "rc"),
        ] {
            if let Some(after) = separator(rest).strip_prefix(spelling) {
                let mut probe = separator(after);
                let value = number(&mut probe)?;
                rest = if value.is_some() { probe } else { after };
                pre = Some((label, value.unwrap_or(0)));
                break;
            }
        }
        let mut post = None;
        if let Some(after) = rest.strip_prefix('-')
            && after.starts_with(|c: char| c.is_ascii_digit())
        {
            rest = after;
            post = number(&mut rest)?;
        } else {
            for spelling in ["post", "rev", "r"] {
                if let Some(after) = separator(rest).strip_prefix(spelling) {
                    let mut probe = separator(after);
                    let value = number(&mut probe)?;
                    rest = if value.is_some() { probe } else { after };
                    post = Some(value.unwrap_or(0));
                    break;
                }
            }
        }
        let mut dev = None;
        if let Some(after) = separator(rest).strip_prefix("dev") {
            let mut probe = separator(after);
            let value = number(&mut probe)?;
            rest = if value.is_some() { probe } else { after };
            dev = Some(value.unwrap_or(0));
        }
        let mut local = None;
        if let Some(label) = rest.strip_prefix('+') {
            let parts: Vec<&str> = label.split(['-', '_', '.']).collect();
            if parts
                .iter()
                .any(|part| part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err(invalid(
                    "a local label is letters and digits separated by `.`",
                ));
            }
            local = Some(parts.join("."));
            rest = "";
        }
        if !rest.is_empty() {
            return Err(invalid(&format!("unexpected `{rest}`")));
        }
        Ok(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Whether only an epoch and release numbers were given.
    pub fn is_release_only(&self) -> bool {
        self.pre.is_none() && self.post.is_none() && self.dev.is_none() && self.local.is_none()
    }
}

impl fmt::Display for Version {
    /// The normalized form (PEP 440 "Normalization").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        for (index, number) in self.release.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            write!(f, "{number}")?;
        }
        if let Some((label, number)) = self.pre {
            write!(f, "{label}{number}")?;
        }
        if let Some(number) = self.post {
            write!(f, ".post{number}")?;
        }
        if let Some(number) = self.dev {
            write!(f, ".dev{number}")?;
        }
        if let Some(local) = &self.local {
            write!(f, "+{local}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        let requirement = parse(text).unwrap_or_else(|error| panic!("`{text}`: {error:?}"));
        let rendering = requirement.to_string();
        assert_eq!(
            parse(&rendering).as_ref(),
            Ok(&requirement),
            "`{rendering}` re-parses differently"
        );
        rendering
    }

    fn syntax(text: &str) -> (usize, String) {
        match parse(text) {
            Err(ParseError::Syntax { column, message }) => (column, message),
            other => panic!("`{text}` should be a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn names_extras_and_specifiers_render_canonically() {
        assert_eq!(rendered("top"), "top");
        assert_eq!(rendered("  Foo.Bar_baz  "), "foo-bar-baz");
        assert_eq!(
            rendered("requests[Security , socks,security]"),
            "requests[security,socks]"
        );
        assert_eq!(rendered("a[]"), "a");
        assert_eq!(rendered("leaf >= 1 , < 2"), "leaf>=1,<2");
        assert_eq!(rendered("leaf (>=1,<2)"), "leaf>=1,<2");
        assert_eq!(rendered("x==1.0.*"), "x==1.0.*");
        assert_eq!(rendered("x!=v1.0.*"), "x!=1.0.*");
        assert_eq!(rendered("x~=1.4.5"), "x~=1.4.5");
        assert_eq!(rendered("x===1.0-Weird"), "x===1.0-Weird");
        assert_eq!(rendered("x==1.0+Ubuntu-1"), "x==1.0+ubuntu.1");
    }

    #[test]
    fn versions_normalize_like_pep_440() {
        for (written, normal) in [
            ("1.0", "1.0"),
            ("v1.0", "1.0"),
            ("01.002", "1.2"),
            ("1!2.0", "1!2.0"),
            ("0!2.0", "2.0"),
            ("1.0alpha1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c3", "1.0rc3"),
            ("1.0.preview", "1.0rc0"),
            ("1.0RC1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev", "1.0.post0"),
            ("1.0r2", "1.0.post2"),
            ("1.0_post_3", "1.0.post3"),
            ("1.0.dev", "1.0.dev0"),
            ("1.0a1.post2.dev3+Local_7", "1.0a1.post2.dev3+local.7"),
        ] {
            assert_eq!(
                Version::parse(written).map(|v| v.to_string()).as_deref(),
                Ok(normal),
                "{written}"
            );
        }
        for bad in [
            "",
            "a1",
            "1..0",
            "1.0+",
            "1.0+a..b",
            "1.0foo",
            "1.0-",
            "1!",
            "99999999999999999999",
            "1.0.*",
        ] {
            assert!(Version::parse(bad).is_err(), "`{bad}` should be refused");
        }
    }

    #[test]
    fn operator_rules_follow_packaging() {
        for bad in [
            "x>=1.0.*",
            "x==1.0a1.*",
            "x~=1",
            "x>=1.0+local",
            "x~=1.0+local",
            "x===1.*",
            "x=1",
            "x=>1",
            "x>=",
        ] {
            syntax(bad);
        }
        assert_eq!(rendered("x==1.0+local"), "x==1.0+local");
        assert_eq!(rendered("x!=1.0+local"), "x!=1.0+local");
    }

    #[test]
    fn markers_parse_and_render_with_needed_parentheses_only() {
        assert_eq!(
            rendered(r#"foo; python_version>="3.8""#),
            r#"foo; python_version >= "3.8""#
        );
        assert_eq!(
            rendered(r#"foo>=1 ; (os_name == 'posix' or sys_platform=="win32") and extra=='x'"#),
            r#"foo>=1; (os_name == "posix" or sys_platform == "win32") and extra == "x""#
        );
        assert_eq!(
            rendered(r#"foo; "linux" in sys_platform and platform_machine not in 'arm64'"#),
            r#"foo; "linux" in sys_platform and platform_machine not in "arm64""#
        );
        assert_eq!(
            rendered(r#"foo; ((python_version<"3"))or(implementation_name=="pypy")"#),
            r#"foo; python_version < "3" or implementation_name == "pypy""#
        );
        assert_eq!(
            rendered(r#"foo; python_version>"3"and os_name=="nt""#),
            r#"foo; python_version > "3" and os_name == "nt""#
        );
        // Groups of the same kind flatten (the rendering drops their parentheses); legacy names become canonical.
        assert_eq!(
            rendered(
                r#"foo; os.name == "a" and (sys.platform == "b" and (python_implementation == "c"))"#
            ),
            r#"foo; os_name == "a" and sys_platform == "b" and platform_python_implementation == "c""#
        );
        assert_eq!(
            rendered(
                r#"foo; (os_name == "a" or os_name == "b") or (os_name == "c" and extra == "d")"#
            ),
            r#"foo; os_name == "a" or os_name == "b" or os_name == "c" and extra == "d""#
        );
    }

    #[test]
    fn bad_markers_are_refused_with_a_column() {
        assert_eq!(syntax("foo; os.nam == 'nt'").0, 6);
        assert!(
            syntax("foo; secret == 'x'")
                .1
                .contains("unknown marker variable `secret`")
        );
        assert!(
            syntax("foo; os_name == 'a b'")
                .1
                .contains("not allowed in a marker string")
        );
        assert!(syntax("foo; os_name == 'a#b'").1.contains("`#`"));
        assert!(syntax("foo; os_name == '${X}'").1.contains("`$`"));
        assert!(syntax("foo; os_name == 'x").1.contains("unterminated"));
        assert!(syntax("foo; 'a' == 'b'").1.contains("one variable"));
        assert!(
            syntax("foo; os_name == sys_platform")
                .1
                .contains("one variable")
        );
        assert!(
            syntax("foo; os_name not 'x'")
                .1
                .contains("`in` after `not`")
        );
        assert!(
            syntax("foo; os_name == 'x' and")
                .1
                .contains("marker variable")
        );
        assert!(
            syntax("foo; os_name == 'x' garbage")
                .1
                .contains("`and`, `or`")
        );
        assert!(syntax("foo; (os_name == 'x'").1.contains("`)`"));
        let deep = format!("foo; {}os_name == 'x'{}", "(".repeat(40), ")".repeat(40));
        assert!(syntax(&deep).1.contains("nest deeper"));
        let fine = format!("foo; {}os_name == 'x'{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(rendered(&fine), r#"foo; os_name == "x""#);
    }

    #[test]
    fn names_and_urls_are_checked() {
        assert_eq!(
            parse("pkg @ https://example.invalid/pkg.whl"),
            Err(ParseError::Url {
                url: "https://example.invalid/pkg.whl".into()
            })
        );
        assert_eq!(
            parse("pkg[x]@file:///tmp/p"),
            Err(ParseError::Url {
                url: "file:///tmp/p".into()
            })
        );
        assert!(syntax("-r x").1.contains("a package name"));
        assert!(syntax("foo-").1.contains("must end with a letter or digit"));
        assert!(syntax("foo bar").1.contains("found `b`"));
        assert!(syntax("foo==1.0 bar").1.contains("found `b`"));
        assert!(syntax("foo[a b]").1.contains("`,` or `]`"));
        assert!(syntax("foo (>=1").1.contains("`)`"));
        assert!(syntax("foo==1#x").1.contains("`#`"));
        assert!(syntax("föo").1.contains("`\\u{f6}`"));
        assert_eq!(syntax("foo ;").0, 6);
        assert!(syntax("foo\u{1b}[31m").1.contains("\\u{1b}"));
    }
}
