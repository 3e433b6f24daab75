//! The closure of Debian packages a set of requests needs ([`resolve`]): what `apt-get install` would unpack onto
//! an empty system, chosen from parsed `Packages` indexes without running apt.
//!
//! Rules (they matched `apt-get -s` with an empty status on every set ARCHITECTURE.md §11 tried):
//! - Only packages of the requested architecture or `all` are candidates; the indexes are given in priority order,
//!   and for one name and version the first index's record wins.
//! - The roots are the requests (`name` or `name=version`) and, unless turned off, every `Essential: yes` package.
//! - `Pre-Depends` and `Depends` are followed (alternatives whose architecture list or build profiles exclude the
//!   target are dropped; `Recommends` and `Suggests` are not followed, as with `--no-install-recommends`).
//! - A group already satisfied by a chosen package (by name and version, or by what it `Provides`) adds nothing.
//!   Otherwise a real package of the wanted name is taken at its highest version that satisfies the relation; a
//!   virtual name is satisfied by a provider, preferring one named in [`ResolveOptions::prefer`], then a requested
//!   one, then the one of highest `Priority` (apt's tie-break: `mawk`, required, over `gawk`, optional), then the
//!   first by name.
//! - Groups that leave a choice (alternatives, or several providers) are decided after every group without a choice
//!   is done, so what the definite dependencies pull in is "already chosen" when a choice is made: an alternative
//!   named in [`ResolveOptions::prefer`] wins, else the first that can be satisfied.
//! - One version per name: a relation the chosen version does not satisfy is an error naming the chain that needs
//!   it. `Conflicts`, `Breaks` and `Replaces` are not checked (no closure tried so far had one), and nothing
//!   backtracks.
//!
//! The result is sorted by name, so the same indexes and requests give the same closure on every machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use super::packages::{ArchQualifier, Comparison, Package, Relation};
use super::version::{Version, VersionError};

/// A requested package: `name` or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The package name.
    pub name: String,
    /// The exact version wanted, if pinned.
    pub version: Option<Version>,
}

impl FromStr for Request {
    type Err = VersionError;
    /// Parses `name` or `name=version` (as `apt-get install` takes them).
    fn from_str(text: &str) -> Result<Self, VersionError> {
        let text = text.trim();
        Ok(match text.split_once('=') {
            Some((name, version)) => Request {
                name: name.to_owned(),
                version: Some(Version::parse(version)?),
            },
            None => Request {
                name: text.to_owned(),
                version: None,
            },
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}={version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// How to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// The Debian architecture (`amd64`, `arm64`); `all` packages always count.
    pub architecture: String,
    /// Package names to take whenever a choice allows (`usr-is-merged` over `usrmerge`, which pulls in perl).
    pub prefer: Vec<String>,
    /// Whether every `Essential: yes` package is a root (true by default: a base system needs them).
    pub essential: bool,
}

impl ResolveOptions {
    /// Options for `architecture`, with essential packages and no preferences.
    pub fn new(architecture: impl Into<String>) -> Self {
        ResolveOptions {
            architecture: architecture.into(),
            prefer: Vec::new(),
            essential: true,
        }
    }
}

/// Why a package is in the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// It was requested.
    Requested,
    /// It is `Essential: yes`.
    Essential,
    /// A chosen package depends on it.
    Dependency {
        /// The package whose `Depends`/`Pre-Depends` it satisfies.
        of: String,
        /// The group it satisfies, as written (`libmpc3 (>= 1.1)`, `awk | mawk`).
        relation: String,
    },
}

/// The closure: each chosen package with why it is there, by name.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    chosen: BTreeMap<&'a str, (&'a Package, Reason)>,
}

impl<'a> Resolution<'a> {
    /// The chosen packages, sorted by name.
    pub fn packages(&self) -> impl Iterator<Item = &'a Package> + '_ {
        self.chosen.values().map(|(package, _)| *package)
    }

    /// How many packages were chosen.
    pub fn len(&self) -> usize {
        self.chosen.len()
    }

    /// Whether nothing was chosen.
    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty()
    }

    /// The chosen package named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&'a Package> {
        self.chosen.get(name).map(|(package, _)| *package)
    }

    /// Why `name` was chosen.
    pub fn reason(&self, name: &str) -> Option<&Reason> {
        self.chosen.get(name).map(|(_, reason)| reason)
    }

    /// The chain from a root to `name` (`["gcc", "cpp-12", "libmpc3"]`; a root that is there for being essential
    /// reads `dash [essential]`); empty when `name` was not chosen.
    pub fn chain(&self, name: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut current = name;
        while let Some((package, reason)) = self.chosen.get(current) {
            match reason {
                Reason::Requested => chain.push(package.name.clone()),
                Reason::Essential => chain.push(format!("{} [essential]", package.name)),
                Reason::Dependency { of, .. } => {
                    chain.push(package.name.clone());
                    // Parents are chosen before their dependencies, so this walk ends at a root.
                    if chain.len() <= self.chosen.len() {
                        current = of;
                        continue;
                    }
                }
            }
            break;
        }
        chain.reverse();
        chain
    }

    /// The sum of the chosen `.deb` files' sizes in bytes.
    pub fn download_size(&self) -> u64 {
        self.packages().map(|package| package.size).sum()
    }
}

/// Why no closure could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A requested name is neither a package nor provided by one.
    #[error("no package named `{name}` for architecture `{architecture}` is in the indexes")]
    UnknownPackage {
        /// The name asked for.
        name: String,
        /// The architecture.
        architecture: String,
        /// Known names close to it, best first.
        similar: Vec<String>,
        /// Architectures the name exists for (when it exists only for others).
        other_architectures: Vec<String>,
    },
    /// A request pins a version the indexes do not have.
    #[error(
        "`{request}` is not in the indexes, which have {}",
        versions_note(available)
    )]
    NoSuchVersion {
        /// The request (`gcc-12=12.2.0-13`).
        request: String,
        /// The versions of that name the indexes have.
        available: Vec<String>,
    },
    /// A dependency group cannot be satisfied.
    #[error("cannot satisfy `{}`: {}", chain.join(" -> "), notes.join("; "))]
    Unsatisfiable {
        /// From a root to the group that fails (`gcc`, `cpp-12`, `libmpc3 (>= 1.1)`).
        chain: Vec<String>,
        /// For each alternative of the group: what the indexes and the closure hold of it.
        notes: Vec<String>,
    },
}

fn versions_note(available: &[String]) -> String {
    if available.is_empty() {
        "no version of it".to_owned()
    } else {
        available.join(", ")
    }
}

impl hstore_store::Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::UnknownPackage { similar, .. } if !similar.is_empty() => Some(format!(
                "did you mean {}?",
                similar
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Error::UnknownPackage { other_architectures, .. } if !other_architectures.is_empty() => Some(format!(
                "it exists for {}: check the target's architecture",
                other_architectures.join(", ")
            )),
            Error::UnknownPackage { .. } => {
                Some("check the name, and that the suite and component that hold it are listed".into())
            }
            Error::NoSuchVersion { .. } => Some(
                "the archive keeps only current versions: pin one it has, or drop the `=version` to take the newest"
                    .into(),
            ),
            Error::Unsatisfiable { .. } => Some(
                "add the suite or component that holds it (e.g. `bookworm-updates`), or pin the package that needs \
                 it to a version the indexes can satisfy"
                    .into(),
            ),
        }
    }
}

/// The candidates: packages of the architecture (or `all`), by name and by what they provide.
struct Universe<'a> {
    architecture: String,
    /// By name: highest version first; equal versions in index priority order.
    by_name: HashMap<&'a str, Vec<&'a Package>>,
    /// By provided name: `(provider, what it provides)`, in index order.
    providers: HashMap<&'a str, Vec<(&'a Package, &'a Relation)>>,
    /// Every name of every architecture, with its architectures (for suggestions).
    names: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Universe<'a> {
    fn new(indexes: &[&'a [Package]], architecture: &str) -> Self {
        let mut universe = Universe {
            architecture: architecture.to_owned(),
            by_name: HashMap::new(),
            providers: HashMap::new(),
            names: BTreeMap::new(),
        };
        for package in indexes.iter().flat_map(|index| index.iter()) {
            universe
                .names
                .entry(&package.name)
                .or_default()
                .insert(&package.architecture);
            if package.architecture != architecture && package.architecture != "all" {
                continue;
            }
            universe
                .by_name
                .entry(&package.name)
                .or_default()
                .push(package);
            for provided in &package.provides {
                universe
                    .providers
                    .entry(&provided.name)
                    .or_default()
                    .push((package, provided));
            }
        }
        for versions in universe.by_name.values_mut() {
            // Stable: equal versions keep index priority order.
            versions.sort_by(|a, b| b.version.cmp(&a.version));
        }
        universe
    }

    /// Whether `relation` can name a package of this architecture at all (`:any`, `:native`, `:ARCH`).
    fn qualifier_fits(&self, relation: &Relation) -> bool {
        match &relation.arch_qualifier {
            ArchQualifier::None | ArchQualifier::Any | ArchQualifier::Native => true,
            ArchQualifier::Named(architecture) => {
                *architecture == self.architecture || architecture == "all"
            }
        }
    }

    fn versions(&self, name: &str) -> &[&'a Package] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

struct State<'u, 'a> {
    universe: &'u Universe<'a>,
    options: &'u ResolveOptions,
    requested: BTreeSet<&'u str>,
    chosen: BTreeMap<&'a str, (&'a Package, Reason)>,
    queue: VecDeque<&'a Package>,
}

impl<'a> State<'_, 'a> {
    fn satisfied_by(package: &Package, relation: &Relation) -> bool {
        (package.name == relation.name && relation.accepts(&package.version))
            || package.provides.iter().any(|provided| {
                provided.name == relation.name
                    && match (&relation.version, &provided.version) {
                        (None, _) => true,
                        (Some(_), Some((_, version))) => relation.accepts(version),
                        // An unversioned Provides never satisfies a versioned relation (Policy §7.5).
                        (Some(_), None) => false,
                    }
            })
    }

    fn is_satisfied(&self, relation: &Relation) -> bool {
        if !self.universe.qualifier_fits(relation) {
            return false;
        }
        if let Some((package, _)) = self.chosen.get(relation.name.as_str())
            && Self::satisfied_by(package, relation)
        {
            return true;
        }
        self.universe
            .providers
            .get(relation.name.as_str())
            .into_iter()
            .flatten()
            .any(|(provider, _)| {
                self.chosen
                    .get(provider.name.as_str())
                    .is_some_and(|(chosen, _)| Self::satisfied_by(chosen, relation))
            })
    }

    /// The packages that could satisfy `relation` now, best first: the real package at its highest satisfying
    /// version, else the providers (one per name) ordered by preference, request, `Priority`, name.
    fn options(&self, relation: &Relation) -> Vec<&'a Package> {
        if !self.universe.qualifier_fits(relation) {
            return Vec::new();
        }
        // A chosen name whose version does not fit can only be helped by a provider.
        if !self.chosen.contains_key(relation.name.as_str())
            && let Some(package) = self
                .universe
                .versions(&relation.name)
                .iter()
                .find(|package| relation.accepts(&package.version))
        {
            return vec![*package];
        }
        let mut providers: Vec<&'a Package> = Vec::new();
        for (provider, _) in self
            .universe
            .providers
            .get(relation.name.as_str())
            .into_iter()
            .flatten()
        {
            if self.chosen.contains_key(provider.name.as_str())
                || !Self::satisfied_by(provider, relation)
                || providers.iter().any(|known| known.name == provider.name)
            {
                continue;
            }
            // The provider's name at its highest version that still provides the relation.
            if let Some(best) = self
                .universe
                .versions(&provider.name)
                .iter()
                .find(|candidate| Self::satisfied_by(candidate, relation))
            {
                providers.push(best);
            }
        }
        providers.sort_by_key(|package| {
            (
                self.preference(&package.name),
                !self.requested.contains(package.name.as_str()),
                priority_rank(package.priority.as_deref()),
                package.name.clone(),
            )
        });
        providers
    }

    /// The rank of `name` in [`ResolveOptions::prefer`] (unlisted names last).
    fn preference(&self, name: &str) -> usize {
        self.options
            .prefer
            .iter()
            .position(|preferred| preferred == name)
            .unwrap_or(usize::MAX)
    }

    fn choose(&mut self, package: &'a Package, reason: Reason) {
        if !self.chosen.contains_key(package.name.as_str()) {
            self.chosen.insert(&package.name, (package, reason));
            self.queue.push_back(package);
        }
    }

    /// The chain to a chosen package, then `tail`.
    fn chain(&self, parent: &Package, tail: String) -> Vec<String> {
        let resolution = Resolution {
            chosen: self.chosen.clone(),
        };
        let mut chain = resolution.chain(&parent.name);
        chain.push(tail);
        chain
    }

    /// What the indexes and the closure hold of each alternative of `group`, for an error.
    fn notes(&self, group: &[&Relation]) -> Vec<String> {
        group
            .iter()
            .map(|relation| {
                if let Some((package, reason)) = self.chosen.get(relation.name.as_str()) {
                    let why = match reason {
                        Reason::Requested => "requested".to_owned(),
                        Reason::Essential => "essential".to_owned(),
                        Reason::Dependency { of, relation } => format!("for `{of}`: `{relation}`"),
                    };
                    return format!(
                        "`{}` {} is already chosen ({why})",
                        package.name, package.version
                    );
                }
                if !self.universe.qualifier_fits(relation) {
                    return format!(
                        "`{relation}` names another architecture than `{}`",
                        self.universe.architecture
                    );
                }
                let versions: Vec<String> = self
                    .universe
                    .versions(&relation.name)
                    .iter()
                    .map(|package| package.version.to_string())
                    .collect();
                let providers: BTreeSet<String> = self
                    .universe
                    .providers
                    .get(relation.name.as_str())
                    .into_iter()
                    .flatten()
                    .map(|(provider, provided)| {
                        format!("{} {} ({provided})", provider.name, provider.version)
                    })
                    .collect();
                match (versions.is_empty(), providers.is_empty()) {
                    (true, true) => format!(
                        "no package of architecture `{}` or `all` is named `{}` or provides it",
                        self.universe.architecture, relation.name
                    ),
                    (false, true) => format!(
                        "the indexes have `{}` {}",
                        relation.name,
                        versions.join(", ")
                    ),
                    (true, false) => format!(
                        "`{}` is provided by {}",
                        relation.name,
                        providers.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    (false, false) => format!(
                        "the indexes have `{}` {}, and it is provided by {}",
                        relation.name,
                        versions.join(", "),
                        providers.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                }
            })
            .collect()
    }

    /// Satisfies `group` (not yet satisfied) for `parent`, or fails naming the chain.
    fn satisfy(&mut self, parent: &'a Package, group: &[&'a Relation]) -> Result<(), Error> {
        let options: Vec<Vec<&'a Package>> = group
            .iter()
            .map(|relation| self.options(relation))
            .collect();
        let preferred = options
            .iter()
            .flatten()
            .filter(|package| self.preference(&package.name) != usize::MAX)
            .min_by_key(|package| self.preference(&package.name));
        let choice = preferred.or_else(|| options.iter().find_map(|options| options.first()));
        let Some(&package) = choice else {
            let text = group
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(Error::Unsatisfiable {
                chain: self.chain(parent, text),
                notes: self.notes(group),
            });
        };
        let relation = group
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
        self.choose(
            package,
            Reason::Dependency {
                of: parent.name.clone(),
                relation,
            },
        );
        Ok(())
    }
}

/// apt's tie-break between providers: a higher `Priority` first (`required` before `important`, `standard`,
/// `optional`, `extra`, then none). It makes `mawk` (required), not `gawk` (optional), the `awk`, as apt does.
fn priority_rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

/// Levenshtein distance over bytes (package names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_byte) in a.bytes().enumerate() {
        current[0] = i + 1;
        for (j, b_byte) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_byte != *b_byte);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Up to five names of `universe` close to `name`: within a third of its length by edit distance, or containing it.
fn similar_names(universe: &Universe<'_>, name: &str) -> Vec<String> {
    let limit = (name.len() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = universe
        .names
        .keys()
        .chain(universe.providers.keys())
        .filter_map(|candidate| {
            let distance = edit_distance(name, candidate);
            if distance <= limit {
                Some((distance, *candidate))
            } else if name.len() >= 3 && candidate.contains(name) {
                Some((limit + candidate.len() - name.len(), *candidate))
            } else {
                None
            }
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by_key(|(_, candidate)| *candidate);
    scored
        .into_iter()
        .take(5)
        .map(|(_, candidate)| candidate.to_owned())
        .collect()
}

/// Chooses the closure of `requests` (plus every essential package, unless [`ResolveOptions::essential`] is off)
/// from `indexes`, given in priority order (`bookworm-security`, `bookworm-updates`, `bookworm`; each the parsed
/// `Packages` of one component).
pub fn resolve<'a>(
    indexes: &[&'a [Package]],
    requests: &[Request],
    options: &ResolveOptions,
) -> Result<Resolution<'a>, Error> {
    let universe = Universe::new(indexes, &options.architecture);
    let mut state = State {
        universe: &universe,
        options,
        requested: requests
            .iter()
            .map(|request| request.name.as_str())
            .collect(),
        chosen: BTreeMap::new(),
        queue: VecDeque::new(),
    };
    for request in requests {
        let versions = universe.versions(&request.name);
        let package = match &request.version {
            Some(version) => versions
                .iter()
                .find(|package| package.version == *version)
                .copied(),
            None => versions.first().copied(),
        };
        let package = match package {
            Some(package) => package,
            None if !versions.is_empty() => {
                return Err(Error::NoSuchVersion {
                    request: request.to_string(),
                    available: versions
                        .iter()
                        .map(|package| package.version.to_string())
                        .collect(),
                });
            }
            None => {
                // A virtual name: take a provider as a dependency would.
                let relation = Relation {
                    name: request.name.clone(),
                    arch_qualifier: ArchQualifier::None,
                    version: request
                        .version
                        .clone()
                        .map(|version| (Comparison::Equal, version)),
                    architectures: Vec::new(),
                    profiles: Vec::new(),
                };
                let Some(provider) = state.options(&relation).first().copied() else {
                    return Err(Error::UnknownPackage {
                        name: request.name.clone(),
                        architecture: options.architecture.clone(),
                        similar: similar_names(&universe, &request.name),
                        other_architectures: universe
                            .names
                            .get(request.name.as_str())
                            .map(|architectures| {
                                architectures.iter().map(|a| (*a).to_owned()).collect()
                            })
                            .unwrap_or_default(),
                    });
                };
                provider
            }
        };
        if let Some((chosen, _)) = state.chosen.get(package.name.as_str())
            && chosen.version != package.version
        {
            return Err(Error::Unsatisfiable {
                chain: vec![request.to_string()],
                notes: vec![format!(
                    "`{}` {} is requested too",
                    chosen.name, chosen.version
                )],
            });
        }
        state.choose(package, Reason::Requested);
    }
    if options.essential {
        let mut essentials: Vec<&Package> = universe
            .by_name
            .values()
            .filter_map(|versions| versions.first().copied())
            .filter(|package| package.essential)
            .collect();
        essentials.sort_by(|a, b| a.name.cmp(&b.name));
        for package in essentials {
            state.choose(package, Reason::Essential);
        }
    }
    let mut deferred: VecDeque<(&'a Package, Vec<&'a Relation>)> = VecDeque::new();
    loop {
        while let Some(package) = state.queue.pop_front() {
            for group in package.pre_depends.iter().chain(&package.depends) {
                let group: Vec<&'a Relation> = group
                    .iter()
                    .filter(|relation| relation.applies(&options.architecture))
                    .collect();
                if group.is_empty() || group.iter().any(|relation| state.is_satisfied(relation)) {
                    continue;
                }
                if let [relation] = group[..]
                    && state.options(relation).len() <= 1
                {
                    state.satisfy(package, &group)?;
                    continue;
                }
                deferred.push_back((package, group));
            }
        }
        let Some((package, group)) = deferred.pop_front() else {
            break;
        };
        if !group.iter().any(|relation| state.is_satisfied(relation)) {
            state.satisfy(package, &group)?;
        }
    }
    Ok(Resolution {
        chosen: state.chosen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::packages::parse_packages;

    /// A `Packages` paragraph: `name version arch`, then extra fields.
    fn paragraph(id: &str, fields: &[&str]) -> String {
        let mut parts = id.split_whitespace();
        let (name, version, architecture) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or("amd64"),
        );
        let mut text = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {architecture}\nFilename: pool/{name}_{version}.deb\n\
             Size: 10\nSHA256: {}\n",
            "0".repeat(64)
        );
        for field in fields {
            text.push_str(field);
            text.push('\n');
        }
        text.push('\n');
        text
    }

    fn index(paragraphs: &[String]) -> Vec<Package> {
        parse_packages(paragraphs.concat().as_bytes(), "Packages").unwrap()
    }

    fn requests(names: &[&str]) -> Vec<Request> {
        names.iter().map(|name| name.parse().unwrap()).collect()
    }

    fn names(resolution: &Resolution<'_>) -> Vec<String> {
        resolution
            .packages()
            .map(|package| format!("{} {}", package.name, package.version))
            .collect()
    }

    fn base() -> Vec<Package> {
        index(&[
            paragraph(
                "dash 0.5 amd64",
                &["Essential: yes", "Pre-Depends: libc6 (>= 2.34)"],
            ),
            paragraph("libc6 2.36 amd64", &["Depends: libgcc-s1"]),
            paragraph("libgcc-s1 12.2 amd64", &[]),
            paragraph("libc6 2.36 arm64", &["Depends: never-here"]),
            paragraph(
                "gcc 12 amd64",
                &["Depends: cpp (>= 12), binutils | binutils-multiarch, c-runtime"],
            ),
            paragraph("cpp 12 amd64", &["Depends: libmpc3 (>= 1.1)"]),
            paragraph("cpp 11 amd64", &[]),
            paragraph("libmpc3 1.3 amd64", &[]),
            paragraph("libmpc3 1.0 amd64", &[]),
            paragraph("binutils 2.40 amd64", &[]),
            paragraph("binutils-multiarch 2.40 amd64", &[]),
            paragraph("musl 1.2 amd64", &["Provides: c-runtime"]),
            paragraph("glibc-runtime 2.36 all", &["Provides: c-runtime"]),
            paragraph("docs 1 all", &[]),
        ])
    }

    #[test]
    fn closure_follows_depends_pre_depends_and_essentials() {
        let base = base();
        let resolution =
            resolve(&[&base], &requests(&["gcc"]), &ResolveOptions::new("amd64")).unwrap();
        assert_eq!(
            names(&resolution),
            [
                "binutils 2.40",
                "cpp 12",
                "dash 0.5",
                "gcc 12",
                "glibc-runtime 2.36",
                "libc6 2.36",
                "libgcc-s1 12.2",
                "libmpc3 1.3",
            ],
            "highest versions, first alternative, providers by name, no arm64 package"
        );
        assert_eq!(resolution.chain("libmpc3"), ["gcc", "cpp", "libmpc3"]);
        assert_eq!(
            resolution.chain("libgcc-s1"),
            ["dash [essential]", "libc6", "libgcc-s1"]
        );
        assert_eq!(
            resolution.reason("cpp"),
            Some(&Reason::Dependency {
                of: "gcc".into(),
                relation: "cpp (>= 12)".into()
            })
        );
        assert_eq!(resolution.download_size(), 80);
        let bare = ResolveOptions {
            essential: false,
            ..ResolveOptions::new("amd64")
        };
        let resolution = resolve(&[&base], &requests(&["docs"]), &bare).unwrap();
        assert_eq!(names(&resolution), ["docs 1"]);
    }

    #[test]
    fn choices_prefer_chosen_then_preferred_then_requested() {
        let base = base();
        let amd64 = ResolveOptions::new("amd64");
        // An alternative already chosen satisfies the group.
        let resolution =
            resolve(&[&base], &requests(&["binutils-multiarch", "gcc"]), &amd64).unwrap();
        assert!(
            resolution.get("binutils").is_none(),
            "{:?}",
            names(&resolution)
        );
        // A requested provider wins over the first by name.
        let resolution = resolve(&[&base], &requests(&["gcc", "musl"]), &amd64).unwrap();
        assert!(
            resolution.get("glibc-runtime").is_none(),
            "{:?}",
            names(&resolution)
        );
        // The preference list wins for alternatives and providers alike.
        let preferring = ResolveOptions {
            prefer: vec!["binutils-multiarch".into(), "musl".into()],
            ..ResolveOptions::new("amd64")
        };
        let resolution = resolve(&[&base], &requests(&["gcc"]), &preferring).unwrap();
        assert!(resolution.get("binutils-multiarch").is_some());
        assert!(resolution.get("binutils").is_none());
        assert!(resolution.get("musl").is_some());
        assert!(resolution.get("glibc-runtime").is_none());
    }

    #[test]
    fn definite_dependencies_decide_before_choices() {
        // `tool` needs `awk` (two providers); `lib` needs `mawk` directly: mawk must be the awk, even though the
        // choice is met first and `gawk` sorts first.
        let packages = index(&[
            paragraph("tool 1", &["Depends: awk, lib"]),
            paragraph("lib 1", &["Depends: mawk"]),
            paragraph("gawk 5", &["Provides: awk"]),
            paragraph("mawk 1.3", &["Provides: awk"]),
        ]);
        let resolution = resolve(
            &[&packages],
            &requests(&["tool"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap();
        assert_eq!(names(&resolution), ["lib 1", "mawk 1.3", "tool 1"]);
    }

    #[test]
    fn providers_tie_break_on_priority_as_apt_does() {
        let packages = index(&[
            paragraph("base-files 12", &["Pre-Depends: awk"]),
            paragraph("gawk 5", &["Provides: awk", "Priority: optional"]),
            paragraph("mawk 1.3", &["Provides: awk", "Priority: required"]),
            paragraph("aawk 1", &["Provides: awk"]),
        ]);
        let resolution = resolve(
            &[&packages],
            &requests(&["base-files"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap();
        assert_eq!(names(&resolution), ["base-files 12", "mawk 1.3"]);
    }

    #[test]
    fn versions_pins_provides_and_index_priority() {
        let updates = index(&[
            paragraph("libc6 2.36-9+deb12u4", &[]),
            paragraph("dup 1", &["Section: updates"]),
        ]);
        let main = index(&[
            paragraph("libc6 2.36-9", &[]),
            paragraph("dup 1", &["Section: main"]),
            paragraph(
                "app 1",
                &["Depends: libc6 (<< 2.36-9+deb12u1), virt (>= 2)"],
            ),
            paragraph("old-virt 1", &["Provides: virt"]),
            paragraph("new-virt 1", &["Provides: virt (= 2.5)"]),
        ]);
        let options = ResolveOptions::new("amd64");
        let resolution = resolve(&[&updates, &main], &requests(&["app", "dup"]), &options).unwrap();
        assert_eq!(
            names(&resolution),
            ["app 1", "dup 1", "libc6 2.36-9", "new-virt 1"],
            "highest *satisfying* version; only a versioned Provides meets a versioned relation"
        );
        assert_eq!(
            resolution.get("dup").unwrap().section.as_deref(),
            Some("updates"),
            "the first index wins for one name and version"
        );
        let resolution = resolve(&[&updates, &main], &requests(&["libc6"]), &options).unwrap();
        assert_eq!(names(&resolution), ["libc6 2.36-9+deb12u4"]);
        let resolution =
            resolve(&[&updates, &main], &requests(&["libc6=2.36-9"]), &options).unwrap();
        assert_eq!(names(&resolution), ["libc6 2.36-9"]);
        let error = resolve(&[&updates, &main], &requests(&["libc6=2.35"]), &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`libc6=2.35` is not in the indexes, which have 2.36-9+deb12u4, 2.36-9"
        );
        let resolution = resolve(&[&main], &requests(&["virt"]), &options).unwrap();
        assert_eq!(
            names(&resolution),
            ["new-virt 1"],
            "a requested virtual name takes a provider"
        );
    }

    #[test]
    fn unsatisfiable_names_the_chain_and_what_exists() {
        let packages = index(&[
            paragraph("gcc 12", &["Depends: cpp-12"]),
            paragraph("cpp-12 12", &["Depends: libmpc3 (>= 1.1)"]),
            paragraph("libmpc3 1.0.3-1", &[]),
        ]);
        let error = resolve(
            &[&packages],
            &requests(&["gcc"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot satisfy `gcc -> cpp-12 -> libmpc3 (>= 1.1)`: the indexes have `libmpc3` 1.0.3-1"
        );
        let packages = index(&[
            paragraph("a 1", &["Depends: b (>= 2), c"]),
            paragraph("b 1", &[]),
            paragraph("c 1", &["Depends: b (>= 2) | gone"]),
        ]);
        let error = resolve(
            &[&packages],
            &requests(&["b", "a"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot satisfy `a -> b (>= 2)`: `b` 1 is already chosen (requested)"
        );
        let packages = index(&[paragraph("c 1", &["Depends: b (>= 2) | gone"])]);
        let error = resolve(
            &[&packages],
            &requests(&["c"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot satisfy `c -> b (>= 2) | gone`: no package of architecture `amd64` or `all` is named `b` or \
             provides it; no package of architecture `amd64` or `all` is named `gone` or provides it"
        );
    }

    #[test]
    fn unknown_requests_suggest_names() {
        use hstore_store::Hint as _;
        let base = base();
        let error = resolve(
            &[&base],
            &requests(&["binutil"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no package named `binutil` for architecture `amd64` is in the indexes"
        );
        assert_eq!(
            error.hint().unwrap(),
            "did you mean `binutils`, `binutils-multiarch`?"
        );
        let arm_only = index(&[paragraph("armtool 1 arm64", &[])]);
        let error = resolve(
            &[&arm_only],
            &requests(&["armtool"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap_err();
        assert!(
            matches!(&error, Error::UnknownPackage { other_architectures, .. } if other_architectures == &["arm64"]),
            "{error:?}"
        );
    }

    #[test]
    fn restricted_alternatives_are_dropped() {
        let packages = index(&[
            paragraph(
                "a 1",
                &["Depends: b [arm64], c <stage1>, d [amd64] <!nocheck>"],
            ),
            paragraph("d 1", &[]),
        ]);
        let resolution = resolve(
            &[&packages],
            &requests(&["a"]),
            &ResolveOptions::new("amd64"),
        )
        .unwrap();
        assert_eq!(names(&resolution), ["a 1", "d 1"]);
    }
}

/// Against the real Debian archive (run with `--ignored`; the only test here that leaves 127.0.0.1).
#[cfg(test)]
mod live {
    use std::io::Read as _;

    use super::*;
    use crate::debian::packages::parse_packages;
    use crate::debian::release::verify_inrelease;

    const ARCHIVE: &str = "http://deb.debian.org/debian";

    fn get(url: &str) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = reqwest::get(url).await.unwrap().error_for_status().unwrap();
            response.bytes().await.unwrap().to_vec()
        })
    }

    #[test]
    #[ignore = "downloads ~9 MB from deb.debian.org"]
    #[expect(
        clippy::print_stderr,
        reason = "the closure is the point of running it by hand"
    )]
    fn live_bookworm_c_toolchain_closure() {
        let keyring = std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg").unwrap();
        let url = format!("{ARCHIVE}/dists/bookworm/InRelease");
        let release = verify_inrelease(&get(&url), &keyring, &url).unwrap();
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        assert!(
            release
                .signer
                .user_id
                .as_deref()
                .unwrap_or_default()
                .contains("bookworm"),
            "{:?}",
            release.signer
        );
        let listed = release.file("main/binary-amd64/Packages.xz").unwrap();
        let compressed = get(&format!(
            "{ARCHIVE}/dists/bookworm/main/binary-amd64/Packages.xz"
        ));
        assert_eq!(compressed.len() as u64, listed.size);
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&compressed)),
            listed.sha256.as_str()
        );
        let mut packages = Vec::new();
        xz2::read::XzDecoder::new(compressed.as_slice())
            .read_to_end(&mut packages)
            .unwrap();
        let index = parse_packages(&packages, "bookworm/main/binary-amd64/Packages").unwrap();
        let options = ResolveOptions {
            prefer: vec!["usr-is-merged".into()],
            ..ResolveOptions::new("amd64")
        };
        let requests: Vec<Request> = ["libc6-dev", "gcc", "g++", "make"]
            .iter()
            .map(|name| name.parse().unwrap())
            .collect();
        let resolution = resolve(&[&index], &requests, &options).unwrap();
        let names: Vec<&str> = resolution
            .packages()
            .map(|package| package.name.as_str())
            .collect();
        eprintln!(
            "{} packages, {} bytes of .debs: {}",
            resolution.len(),
            resolution.download_size(),
            names.join(" ")
        );
        assert!(
            (90..=160).contains(&resolution.len()),
            "{}",
            resolution.len()
        );
        for name in [
            "libc6",
            "gcc-12",
            "g++-12",
            "binutils",
            "make",
            "libc6-dev",
            "usr-is-merged",
            "mawk",
        ] {
            assert!(resolution.get(name).is_some(), "{name} missing");
        }
        assert!(
            resolution.get("usrmerge").is_none(),
            "the preference keeps usrmerge (and perl) out"
        );
        for package in index.iter().filter(|package| package.essential) {
            assert!(
                resolution.get(&package.name).is_some(),
                "essential {} missing",
                package.name
            );
        }
    }
}
