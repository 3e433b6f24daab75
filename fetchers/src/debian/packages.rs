//! A binary `Packages` index ([`parse_packages`]) as [`Package`] records, and the relationship fields they carry
//! (`Depends`, `Pre-Depends`, `Provides`: [`parse_relations`], [`Relation`]).
//!
//! The index is plain deb822 (the caller decompresses `Packages.xz`/`.gz` and checks its sha256 against the
//! verified `Release` first). Each paragraph MUST have `Package`, `Version`, `Architecture`, `Filename`, `Size` and
//! `SHA256`; fields hstore does not use are ignored.
//!
//! Relationship syntax (Debian Policy §7.1): a comma-separated list of groups, each a `|`-separated list of
//! alternatives `name[:archqual] [(op version)] [[arch …]] [<profile …> …]`, with `op` one of `<<`, `<=`, `=`,
//! `>=`, `>>` (the obsolete `<` and `>` mean `<=` and `>=`, as dpkg reads them). Architecture restriction lists and
//! build-profile formulas only occur in source packages; they are parsed and kept, and [`Relation::applies`] says
//! whether an alternative counts for an architecture with no build profile active. `Provides` may only carry `=`.

use std::fmt;

use hstore_model::ids::Sha256;

use super::control::{self, Error, Paragraph};
use super::version::Version;

/// One binary package of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: Version,
    /// `Architecture` (`amd64`, `all`…).
    pub architecture: String,
    /// `Multi-Arch`.
    pub multi_arch: MultiArch,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority` (`required`, `important`, `optional`…), if given.
    pub priority: Option<String>,
    /// `Depends`.
    pub depends: Vec<Vec<Relation>>,
    /// `Pre-Depends`.
    pub pre_depends: Vec<Vec<Relation>>,
    /// `Provides`: the virtual names (with an exact version, if given) the package stands for.
    pub provides: Vec<Relation>,
    /// `Filename`: the path of the `.deb` below the archive root (`pool/main/g/gcc-12/…`).
    pub filename: String,
    /// `Size` of the `.deb` in bytes.
    pub size: u64,
    /// `SHA256` of the `.deb`.
    pub sha256: Sha256,
    /// `Source`: the source package's name, and its version when it differs from the binary's.
    pub source: Option<Source>,
    /// `Section`, if given.
    pub section: Option<String>,
    /// `Homepage`, if given.
    pub homepage: Option<String>,
}

impl Package {
    /// `name version architecture`, for messages.
    pub fn id(&self) -> String {
        format!("{} {} {}", self.name, self.version, self.architecture)
    }
}

/// The `Source` field: `name` or `name (version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source package's name.
    pub name: String,
    /// Its version, when it differs from the binary package's.
    pub version: Option<Version>,
}

/// `Multi-Arch` (<https://wiki.ubuntu.com/MultiarchSpec>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// Absent or `no`.
    #[default]
    No,
    /// `same`: co-installable with itself of other architectures.
    Same,
    /// `foreign`: satisfies dependencies of packages of any architecture.
    Foreign,
    /// `allowed`: satisfies `name:any` dependencies.
    Allowed,
}

/// A version comparison in a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<<`
    Earlier,
    /// `<=` (and the obsolete `<`)
    EarlierOrEqual,
    /// `=`
    Equal,
    /// `>=` (and the obsolete `>`)
    LaterOrEqual,
    /// `>>`
    Later,
}

impl Comparison {
    /// Whether `version` stands in this relation to `bound`.
    pub fn holds(self, version: &Version, bound: &Version) -> bool {
        let ordering = version.cmp(bound);
        match self {
            Comparison::Earlier => ordering.is_lt(),
            Comparison::EarlierOrEqual => ordering.is_le(),
            Comparison::Equal => ordering.is_eq(),
            Comparison::LaterOrEqual => ordering.is_ge(),
            Comparison::Later => ordering.is_gt(),
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::Earlier => "<<",
            Comparison::EarlierOrEqual => "<=",
            Comparison::Equal => "=",
            Comparison::LaterOrEqual => ">=",
            Comparison::Later => ">>",
        }
    }
}

/// The architecture qualifier after a name: `name:any`, `name:native`, `name:amd64`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArchQualifier {
    /// No qualifier.
    #[default]
    None,
    /// `:any`
    Any,
    /// `:native`
    Native,
    /// `:ARCH`
    Named(String),
}

/// One alternative of a relationship: a name with optional qualifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// `:any`, `:native`, `:ARCH`.
    pub arch_qualifier: ArchQualifier,
    /// `(op version)`.
    pub version: Option<(Comparison, Version)>,
    /// `[amd64 !i386]`: `(negated, architecture)`; empty when absent.
    pub architectures: Vec<(bool, String)>,
    /// `<!nocheck> <stage1 cross>`: formulas, each a conjunction of `(negated, profile)`; empty when absent.
    pub profiles: Vec<Vec<(bool, String)>>,
}

impl Relation {
    /// Whether `version` satisfies the version constraint (true when there is none).
    pub fn accepts(&self, version: &Version) -> bool {
        self.version
            .as_ref()
            .is_none_or(|(comparison, bound)| comparison.holds(version, bound))
    }

    /// Whether this alternative counts on `architecture` with no build profile active: its architecture list (if
    /// any) admits `architecture`, and one of its profile formulas (if any) holds when every profile is inactive.
    pub fn applies(&self, architecture: &str) -> bool {
        let architectures_admit = if self.architectures.is_empty() {
            true
        } else if self.architectures.iter().all(|(negated, _)| *negated) {
            !self
                .architectures
                .iter()
                .any(|(_, pattern)| architecture_matches(pattern, architecture))
        } else {
            self.architectures
                .iter()
                .any(|(negated, pattern)| !negated && architecture_matches(pattern, architecture))
        };
        let profiles_admit = self.profiles.is_empty()
            || self
                .profiles
                .iter()
                .any(|formula| formula.iter().all(|(negated, _)| *negated));
        architectures_admit && profiles_admit
    }
}

/// Whether a Debian architecture wildcard (`amd64`, `any`, `linux-any`, `any-amd64`) matches `architecture` (a
/// Linux architecture name).
fn architecture_matches(pattern: &str, architecture: &str) -> bool {
    pattern == architecture
        || pattern == "any"
        || pattern == "linux-any"
        || pattern == format!("any-{architecture}")
        || pattern == format!("linux-{architecture}")
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch_qualifier {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Named(architecture) => write!(f, ":{architecture}")?,
        }
        if let Some((comparison, version)) = &self.version {
            write!(f, " ({} {version})", comparison.symbol())?;
        }
        if !self.architectures.is_empty() {
            let list: Vec<String> = self
                .architectures
                .iter()
                .map(|(negated, name)| format!("{}{name}", if *negated { "!" } else { "" }))
                .collect();
            write!(f, " [{}]", list.join(" "))?;
        }
        for formula in &self.profiles {
            let list: Vec<String> = formula
                .iter()
                .map(|(negated, name)| format!("{}{name}", if *negated { "!" } else { "" }))
                .collect();
            write!(f, " <{}>", list.join(" "))?;
        }
        Ok(())
    }
}

/// Writes a group of alternatives as `a | b (>= 1)`.
pub fn display_group(group: &[Relation]) -> String {
    group
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Package names: lowercase letters, digits, `+ - .`, at least two characters, starting alphanumeric (Policy
/// §5.6.1). One character is accepted too: no archive has one, but nothing breaks.
fn valid_package_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"+-.".contains(&byte)
        })
}

/// Parses one alternative.
fn parse_relation(text: &str) -> Result<Relation, String> {
    let mut rest = text.trim();
    let name_end = rest
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(rest.len());
    let (name_part, after) = rest.split_at(name_end);
    rest = after.trim_start();
    let (name, arch_qualifier) = match name_part.split_once(':') {
        Some((name, "any")) => (name, ArchQualifier::Any),
        Some((name, "native")) => (name, ArchQualifier::Native),
        Some((name, architecture)) if valid_package_name(architecture) => {
            (name, ArchQualifier::Named(architecture.to_owned()))
        }
        Some(_) => {
            return Err(format!(
                "`{name_part}` has an invalid architecture qualifier"
            ));
        }
        None => (name_part, ArchQualifier::None),
    };
    if !valid_package_name(name) {
        return Err(format!("`{name}` is not a valid package name"));
    }
    let mut relation = Relation {
        name: name.to_owned(),
        arch_qualifier,
        version: None,
        architectures: Vec::new(),
        profiles: Vec::new(),
    };
    if let Some(inner) = rest.strip_prefix('(') {
        let (constraint, after) = inner
            .split_once(')')
            .ok_or_else(|| format!("`{text}` has an unclosed `(`"))?;
        rest = after.trim_start();
        let constraint = constraint.trim();
        let (comparison, version) = [
            ("<<", Comparison::Earlier),
            ("<=", Comparison::EarlierOrEqual),
            (">=", Comparison::LaterOrEqual),
            (">>", Comparison::Later),
            ("=", Comparison::Equal),
            ("<", Comparison::EarlierOrEqual),
            (">", Comparison::LaterOrEqual),
        ]
        .into_iter()
        .find_map(|(symbol, comparison)| {
            constraint
                .strip_prefix(symbol)
                .map(|version| (comparison, version))
        })
        .ok_or_else(|| format!("`({constraint})` does not start with << <= = >= >>"))?;
        let version = Version::parse(version).map_err(|error| error.to_string())?;
        relation.version = Some((comparison, version));
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let (list, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("`{text}` has an unclosed `[`"))?;
        rest = after.trim_start();
        relation.architectures = negatable_list(list);
        if relation.architectures.is_empty() {
            return Err(format!("`{text}` has an empty architecture list"));
        }
    }
    while let Some(inner) = rest.strip_prefix('<') {
        let (list, after) = inner
            .split_once('>')
            .ok_or_else(|| format!("`{text}` has an unclosed `<`"))?;
        rest = after.trim_start();
        let formula = negatable_list(list);
        if formula.is_empty() {
            return Err(format!("`{text}` has an empty build-profile formula"));
        }
        relation.profiles.push(formula);
    }
    if !rest.is_empty() {
        return Err(format!("unexpected `{rest}` after `{name_part}`"));
    }
    Ok(relation)
}

fn negatable_list(list: &str) -> Vec<(bool, String)> {
    list.split_whitespace()
        .map(|item| match item.strip_prefix('!') {
            Some(name) => (true, name.to_owned()),
            None => (false, item.to_owned()),
        })
        .collect()
}

/// Parses a relationship field (`Depends`, `Pre-Depends`…) into groups of alternatives. Newlines count as
/// whitespace; an empty field is an empty list. The error says which part is malformed.
pub fn parse_relations(text: &str) -> Result<Vec<Vec<Relation>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|group| {
            if group.trim().is_empty() {
                return Err("an empty entry between commas".to_owned());
            }
            group.split('|').map(parse_relation).collect()
        })
        .collect()
}

fn relations_field(
    paragraph: &Paragraph,
    field: &'static str,
    origin: &str,
) -> Result<Vec<Vec<Relation>>, Error> {
    let value = paragraph.get(field).unwrap_or_default();
    parse_relations(value)
        .map_err(|reason| paragraph.invalid(origin, field, &control::excerpt(value, 200), reason))
}

/// Reads one paragraph of a `Packages` index.
pub fn package_from_paragraph(paragraph: &Paragraph, origin: &str) -> Result<Package, Error> {
    let name = paragraph.required("Package", origin)?;
    if !valid_package_name(name) {
        return Err(paragraph.invalid(origin, "Package", name, "not a valid package name"));
    }
    let version_text = paragraph.required("Version", origin)?;
    let version = Version::parse(version_text)
        .map_err(|error| paragraph.invalid(origin, "Version", version_text, error.reason))?;
    let architecture = paragraph.required("Architecture", origin)?;
    let multi_arch = match paragraph.get("Multi-Arch") {
        None | Some("no") => MultiArch::No,
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        Some(other) => {
            return Err(paragraph.invalid(
                origin,
                "Multi-Arch",
                other,
                "expected no, same, foreign or allowed",
            ));
        }
    };
    let essential = match paragraph.get("Essential") {
        None | Some("no") => false,
        Some("yes") => true,
        Some(other) => {
            return Err(paragraph.invalid(origin, "Essential", other, "expected yes or no"));
        }
    };
    let provides_groups = relations_field(paragraph, "Provides", origin)?;
    let mut provides = Vec::new();
    for group in provides_groups {
        let [provided] = <[Relation; 1]>::try_from(group).map_err(|_| {
            paragraph.invalid(
                origin,
                "Provides",
                paragraph.get("Provides").unwrap_or_default(),
                "alternatives (`|`) are not allowed",
            )
        })?;
        if matches!(&provided.version, Some((comparison, _)) if *comparison != Comparison::Equal) {
            return Err(paragraph.invalid(
                origin,
                "Provides",
                &provided.to_string(),
                "a provided version must be exact (`=`)",
            ));
        }
        provides.push(provided);
    }
    let filename = paragraph.required("Filename", origin)?;
    if filename.starts_with('/')
        || filename
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(paragraph.invalid(
            origin,
            "Filename",
            filename,
            "must be a relative path without `.` or `..`",
        ));
    }
    let size_text = paragraph.required("Size", origin)?;
    let size = size_text
        .parse()
        .map_err(|_| paragraph.invalid(origin, "Size", size_text, "not a number of bytes"))?;
    let sha256_text = paragraph.required("SHA256", origin)?;
    let sha256 = Sha256::new(sha256_text).map_err(|_| {
        paragraph.invalid(
            origin,
            "SHA256",
            sha256_text,
            "expected 64 lowercase hex digits",
        )
    })?;
    let source = match paragraph.get("Source") {
        None => None,
        Some(text) => Some(parse_source(text).ok_or_else(|| {
            paragraph.invalid(
                origin,
                "Source",
                text,
                "expected `name` or `name (version)`",
            )
        })?),
    };
    Ok(Package {
        name: name.to_owned(),
        version,
        architecture: architecture.to_owned(),
        multi_arch,
        essential,
        priority: paragraph.get("Priority").map(str::to_owned),
        depends: relations_field(paragraph, "Depends", origin)?,
        pre_depends: relations_field(paragraph, "Pre-Depends", origin)?,
        provides,
        filename: filename.to_owned(),
        size,
        sha256,
        source,
        section: paragraph.get("Section").map(str::to_owned),
        homepage: paragraph.get("Homepage").map(str::to_owned),
    })
}

fn parse_source(text: &str) -> Option<Source> {
    let (name, version) = match text.split_once('(') {
        Some((name, rest)) => {
            let version = rest.trim().strip_suffix(')')?;
            (name.trim(), Some(Version::parse(version).ok()?))
        }
        None => (text.trim(), None),
    };
    valid_package_name(name).then(|| Source {
        name: name.to_owned(),
        version,
    })
}

/// Parses a whole `Packages` index (decompressed) from `origin` (named in errors) into its packages, in file order.
pub fn parse_packages(bytes: &[u8], origin: &str) -> Result<Vec<Package>, Error> {
    let text = control::utf8(bytes, origin)?;
    control::parse(text, origin)?
        .iter()
        .map(|paragraph| package_from_paragraph(paragraph, origin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    const PACKAGES: &str = "\
Package: gcc-12
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14+b1
Installed-Size: 63000
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Depends: cpp-12 (= 12.2.0-14), gcc-12-base (= 12.2.0-14), libcc1-0 (>= 12.2.0-14),
 binutils (>= 2.40), libgcc-12-dev (= 12.2.0-14), libc6 (>= 2.34)
Pre-Depends: dpkg (>= 1.17.14)
Provides: c-compiler, gcc-x86-64-linux-gnu (= 12.2.0-14)
Description: GNU C compiler
 This is the GNU C compiler.
Homepage: http://gcc.gnu.org/
Section: devel
Priority: optional
Filename: pool/main/g/gcc-12/gcc-12_12.2.0-14+b1_amd64.deb
Size: 19264248
SHA256: 4b3f2b4f8e0a8c4f5e5f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5

Package: dash
Version: 0.5.12-2
Architecture: amd64
Essential: yes
Multi-Arch: foreign
Priority: required
Pre-Depends: libc6 (>= 2.34), debianutils (>= 5.6-0.1)
Filename: pool/main/d/dash/dash_0.5.12-2_amd64.deb
Size: 90740
SHA256: 0000000000000000000000000000000000000000000000000000000000000001
";

    #[test]
    fn parses_packages_fields() {
        let packages = parse_packages(PACKAGES.as_bytes(), "main/binary-amd64/Packages").unwrap();
        let [gcc, dash] = &packages[..] else {
            panic!("two packages expected: {packages:?}")
        };
        assert_eq!(gcc.name, "gcc-12");
        assert_eq!(gcc.version, version("12.2.0-14+b1"));
        assert_eq!(
            gcc.source,
            Some(Source {
                name: "gcc-12".into(),
                version: Some(version("12.2.0-14"))
            })
        );
        assert_eq!(gcc.depends.len(), 6, "a folded field reads as one list");
        assert_eq!(gcc.depends[4][0].to_string(), "libgcc-12-dev (= 12.2.0-14)");
        assert_eq!(gcc.pre_depends[0][0].name, "dpkg");
        assert_eq!(
            gcc.provides
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["c-compiler", "gcc-x86-64-linux-gnu (= 12.2.0-14)"]
        );
        assert_eq!(gcc.size, 19_264_248);
        assert_eq!(gcc.section.as_deref(), Some("devel"));
        assert_eq!(gcc.homepage.as_deref(), Some("http://gcc.gnu.org/"));
        assert!(!gcc.essential);
        assert_eq!(gcc.multi_arch, MultiArch::No);
        assert!(dash.essential);
        assert_eq!(dash.multi_arch, MultiArch::Foreign);
        assert_eq!(dash.priority.as_deref(), Some("required"));
        assert_eq!(dash.source, None);
        assert_eq!(dash.id(), "dash 0.5.12-2 amd64");
    }

    #[test]
    fn relation_syntax() {
        let groups = parse_relations(
            "a (>= 1.2) | b:any, c [amd64], d:native (<< 2~), e (>2), f:amd64 [!i386 !armhf] <!nocheck> <stage1 cross>",
        )
        .unwrap();
        let shown: Vec<String> = groups.iter().map(|group| display_group(group)).collect();
        assert_eq!(
            shown,
            [
                "a (>= 1.2) | b:any",
                "c [amd64]",
                "d:native (<< 2~)",
                "e (>= 2)",
                "f:amd64 [!i386 !armhf] <!nocheck> <stage1 cross>"
            ]
        );
        assert_eq!(groups[0][1].arch_qualifier, ArchQualifier::Any);
        assert!(groups[0][0].accepts(&version("1.2")));
        assert!(!groups[0][0].accepts(&version("1.1.9")));
        assert!(groups[2][0].accepts(&version("2~~")));
        assert!(!groups[2][0].accepts(&version("2~")));
        assert!(groups[1][0].applies("amd64"));
        assert!(!groups[1][0].applies("arm64"));
        assert!(
            groups[4][0].applies("amd64"),
            "<!nocheck> holds with no profile active"
        );
        assert!(!groups[4][0].applies("i386"));
        let staged = &parse_relations("g <stage1>").unwrap()[0][0];
        assert!(
            !staged.applies("amd64"),
            "<stage1> needs a profile that is not active"
        );
        let wildcard = &parse_relations("h [linux-any]").unwrap()[0][0];
        assert!(wildcard.applies("riscv64"));
        assert_eq!(
            parse_relations(" \n ").unwrap(),
            Vec::<Vec<Relation>>::new()
        );
    }

    #[test]
    fn relation_errors() {
        for text in [
            "a,,b", "a (>= 1", "a (~ 1)", "A", "a b", "a [amd64", "a []", "a:", "a (>= )", "a |",
        ] {
            assert!(parse_relations(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn missing_and_malformed_fields_are_errors() {
        let base = "Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\nSHA256: \
                    0000000000000000000000000000000000000000000000000000000000000000\n";
        assert!(parse_packages(base.as_bytes(), "P").is_ok());
        let cases = [
            (
                base.replace("Size: 1\n", ""),
                "the paragraph has no `Size` field",
            ),
            (
                base.replace("Size: 1", "Size: big"),
                "field `Size` has the invalid value `big`",
            ),
            (base.replace("Version: 1", "Version: 1-"), "field `Version`"),
            (
                base.replace("pool/a.deb", "pool/../a.deb"),
                "field `Filename`",
            ),
            (base.replace("SHA256: 0", "SHA256: X"), "field `SHA256`"),
            (format!("{base}Provides: b (>= 1)\n"), "must be exact"),
            (format!("{base}Depends: b (>= 1\n"), "field `Depends`"),
            (format!("{base}Essential: maybe\n"), "field `Essential`"),
        ];
        for (text, expected) in cases {
            let error = parse_packages(text.as_bytes(), "P")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "{error} should contain {expected}"
            );
            assert!(error.contains("`P` at line 1"), "{error}");
        }
    }
}
