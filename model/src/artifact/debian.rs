//! The `debian` kind's model: its source spec ([`DebianSpec`], `[sources.NAME] debian = "bookworm"`), and its
//! artifacts: each pinned binary package ([`DebArtifact`], a blob), and the base tree they unpack to
//! ([`DebianBaseArtifact`]).

use hstore_store::Digest;
use packageurl::PackageUrl;
use serde::{Deserialize, Serialize};

use super::{ArtifactKind, ComponentType, Description, Query, SourceFacts, shared_fields, short};
use crate::ids::{ArtifactId, Sha256};

/// The archive `debian` sources read by default: Debian's own, as this project's machines' apt is configured.
pub const DEFAULT_ARCHIVE: &str = "http://deb.debian.org/debian";
/// The keyring `lock` verifies the archive's `InRelease` with by default (Debian's `debian-archive-keyring`).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A `debian` source: packages of one suite of a signed archive, for one architecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSpec {
    /// The suite or codename (`bookworm`, `trixie`): `dists/SUITE/InRelease`.
    pub suite: String,
    /// The archive's root URL, canonical (mirrors rewrite it).
    pub archive: String,
    /// The Debian architecture (`amd64`, `arm64`); `all` packages come with it.
    pub architecture: String,
    /// The components whose `Packages` indexes are read, in priority order (`main`).
    pub components: Vec<String>,
    /// The packages asked for (`gcc`, or `gcc=4:12.2.0-3` for one version); their dependency closure and every
    /// `Essential: yes` package are locked.
    pub packages: Vec<String>,
    /// The OpenPGP keyring on the locking machine that `InRelease` must be signed by.
    pub keyring: String,
}

impl DebianSpec {
    /// Checks and completes a recipe's table; the error is the reason, for the recipe's `InvalidSource`.
    pub fn new(
        suite: String,
        archive: Option<String>,
        architecture: Option<String>,
        components: Option<Vec<String>>,
        packages: Vec<String>,
        keyring: Option<String>,
    ) -> Result<Self, String> {
        let word = |text: &str| {
            !text.is_empty()
                && !text.starts_with(['.', '-'])
                && text.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b'~')
                })
        };
        if !word(&suite) {
            return Err(format!(
                "has `debian = \"{suite}\"`; expected a suite or codename such as \"bookworm\""
            ));
        }
        let architecture = architecture.unwrap_or_else(|| default_architecture().to_owned());
        if !word(&architecture) || architecture == "all" {
            return Err(format!(
                "has `architecture = \"{architecture}\"`; expected a Debian architecture such as \"amd64\" or \"arm64\""
            ));
        }
        let components = components.unwrap_or_else(|| vec!["main".to_owned()]);
        if components.is_empty() || components.iter().any(|component| !word(component)) {
            return Err(format!(
                "has `components = {components:?}`; expected archive components such as [\"main\"]"
            ));
        }
        if packages.is_empty() {
            return Err(
                "is a `debian` source without `packages`; list what the base needs, e.g. `packages = [\"gcc\", \"make\"]`"
                    .into(),
            );
        }
        if let Some(package) = packages.iter().find(|package| {
            let name = package
                .split_once('=')
                .map_or(package.as_str(), |(name, _)| name);
            !word(name) || name.contains(['_', '~'])
        }) {
            return Err(format!(
                "lists package `{package}`; expected a Debian package name, optionally `=VERSION`"
            ));
        }
        let archive = archive.map_or_else(
            || DEFAULT_ARCHIVE.to_owned(),
            |archive| archive.trim_end_matches('/').to_owned(),
        );
        if !(archive.starts_with("http://") || archive.starts_with("https://")) {
            return Err(format!(
                "has `archive = \"{archive}\"`; expected an http(s) URL such as \"{DEFAULT_ARCHIVE}\""
            ));
        }
        let mut packages = packages;
        packages.sort();
        packages.dedup();
        Ok(DebianSpec {
            suite,
            archive,
            architecture,
            components,
            packages,
            keyring: keyring.unwrap_or_else(|| DEFAULT_KEYRING.to_owned()),
        })
    }
}

/// This machine's Debian architecture, the default of `architecture`.
pub fn default_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// A Debian binary package, pinned by the archive's signed index and stored as a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebArtifact {
    /// `deb+<architecture>/<package>@<version>` (one version of a package is one file per architecture in an
    /// archive, whatever the suite).
    pub id: ArtifactId,
    /// The package name.
    pub package: String,
    /// Its Debian version (`2.36-9+deb12u10`).
    pub version: String,
    /// `amd64`, `arm64`, or `all`.
    pub architecture: String,
    /// The suite whose index listed it (`bookworm`).
    pub suite: String,
    /// Canonical URL: the archive's root plus the index's `Filename`.
    pub url: String,
    /// The `SHA256` of the signed `Packages` index (upstream integrity).
    pub sha256: Sha256,
    /// Address of the blob.
    pub address: Digest,
    /// Size of the file.
    pub size: u64,
}

/// The root file system a `debian` source's packages make: their data members unpacked into one tree, plus what
/// the skipped maintainer scripts would have made that a build needs (docs/recipes.md, "A Debian base").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianBaseArtifact {
    /// `debian-base+<suite>/<architecture>#<first 16 hex of the package set's hash>`.
    pub id: ArtifactId,
    /// The suite (`bookworm`).
    pub suite: String,
    /// The architecture (`amd64`).
    pub architecture: String,
    /// How many packages it holds (the source's `deb` artifacts).
    pub packages: usize,
    /// The `Date` of the signed `InRelease` the packages were resolved from.
    pub release_date: String,
    /// The assembler's format version: a change in what the tree holds beyond the packages' files bumps it.
    pub layout: u32,
    /// Address of the tree.
    pub address: Digest,
    /// Total file bytes of the tree.
    pub size: u64,
}

impl ArtifactKind for DebArtifact {
    shared_fields!("deb");

    fn identity(&self) -> (String, String) {
        (
            format!("{}/{}", self.architecture, self.package),
            self.version.clone(),
        )
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.names(&self.package, &self.version)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        let mut purl = PackageUrl::new("deb", self.package.as_str())?;
        purl.with_namespace("debian")?
            .with_version(self.version.as_str())?;
        purl.add_qualifier("arch", self.architecture.as_str())?;
        purl.add_qualifier("distro", format!("debian-{}", self.suite))?;
        Ok(purl.to_string())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(self.package.as_str());
        description.version = Some(self.version.clone());
        description.sha256 = Some(self.sha256.as_str().to_owned());
        description.download = Some(self.url.clone());
        description.properties = vec![("hstore:architecture".into(), self.architecture.clone())];
        Ok(description)
    }
}

impl ArtifactKind for DebianBaseArtifact {
    shared_fields!("debian_base");

    fn tree(&self) -> Option<Digest> {
        Some(self.address)
    }

    fn identity(&self) -> (String, String) {
        (
            format!("debian {}/{}", self.suite, self.architecture),
            format!(
                "{} packages, {}",
                self.packages,
                short(&self.address.to_string(), 15)
            ),
        )
    }

    fn answers_to(&self, query: &Query<'_>) -> bool {
        query.text == format!("debian:{}", self.suite) || query.names("debian", &self.suite)
    }

    fn purl(&self, _: &SourceFacts<'_>) -> Result<String, packageurl::Error> {
        let mut purl = PackageUrl::new("generic", "debian-base")?;
        purl.with_version(self.suite.as_str())?;
        purl.add_qualifier("arch", self.architecture.as_str())?;
        Ok(purl.to_string())
    }

    fn describe(&self, _: &SourceFacts<'_>) -> Result<Description, packageurl::Error> {
        let mut description = Description::named(format!("debian-{}-base", self.suite));
        description.component = ComponentType::Application;
        description.version = Some(self.suite.clone());
        description.properties = vec![
            ("hstore:architecture".into(), self.architecture.clone()),
            ("hstore:packages".into(), self.packages.to_string()),
        ];
        Ok(description)
    }
}
