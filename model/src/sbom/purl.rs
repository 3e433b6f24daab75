//! Package URLs (<https://github.com/package-url/purl-spec>) for locked artifacts, one rule per [`Artifact`] kind,
//! encoded by the `packageurl` crate (percent-encoding, lowercased GitHub names, sorted qualifiers).
//!
//! | kind | purl |
//! |---|---|
//! | `crate` | `pkg:cargo/NAME@VERSION`; another registry adds `repository_url=INDEX`, a git crate `vcs_url=git+URL@COMMIT` |
//! | `wheel` | `pkg:pypi/NAME@VERSION?file_name=WHEEL` (the purl-spec `pypi` qualifier naming the file) |
//! | `git` on github.com | `pkg:github/OWNER/REPO@COMMIT` |
//! | `git` elsewhere | `pkg:generic/REPO@COMMIT?vcs_url=git+URL@COMMIT` |
//! | `url`, `xmake_archive` | `pkg:generic/NAME[@VERSION]?checksum=sha256:HEX&download_url=URL` |
//! | `rust_toolchain` | `pkg:generic/rust@VERSION?arch=HOST` |
//! | `path` | `pkg:generic/DIRECTORY` (no download: the tree is local) |
//!
//! Qualifier values are percent-encoded as `packageurl` does it (`/` as `%2F`, `:` kept), which decodes to the
//! same URL as the purl-spec examples' unencoded form.
//!
//! The match over kinds is exhaustive: a new kind does not compile until it has a rule here.

use packageurl::PackageUrl;

use crate::lockfile::{
    Artifact, CrateArtifact, GitArtifact, PathArtifact, RustToolchainArtifact, UrlArtifact,
    WheelArtifact, XmakeArchiveArtifact,
};

/// The crates.io index as Cargo.lock names it.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// The last path segment of a URL or path, without a `.git` suffix (`InfiniCore` for `…/InfiniCore.git`).
pub fn last_segment(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    last.strip_suffix(".git").unwrap_or(last)
}

/// `git+URL@COMMIT`: the purl `vcs_url` form and SPDX's `downloadLocation` form of a commit.
pub fn vcs_location(url: &str, commit: &str) -> String {
    if url.starts_with("git+") {
        format!("{url}@{commit}")
    } else {
        format!("git+{url}@{commit}")
    }
}

/// The GitHub owner and repository of a `https://github.com/OWNER/REPO[.git]` URL.
fn github(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git://github.com/"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (owner, repository) = rest.split_once('/')?;
    (!owner.is_empty() && !repository.is_empty() && !repository.contains('/'))
        .then_some((owner, repository))
}

/// A `pkg:generic/…` name: never empty.
fn generic_name(candidate: &str) -> &str {
    if candidate.is_empty() {
        "unnamed"
    } else {
        candidate
    }
}

/// The purl of a Rust toolchain `VERSION-HOST`, the version and host as the recipe gave them.
pub fn rust_toolchain(version: &str, host: &str) -> Result<String, packageurl::Error> {
    let mut purl = PackageUrl::new("generic", "rust")?;
    purl.with_version(version)?;
    if !host.is_empty() {
        purl.add_qualifier("arch", host)?;
    }
    Ok(purl.to_string())
}

/// The purl of `artifact`. `toolchain` splits a `rust_toolchain` name into version and host (from the source
/// that locked it); other kinds ignore it.
pub fn of(
    artifact: &Artifact,
    toolchain: Option<(&str, &str)>,
) -> Result<String, packageurl::Error> {
    match artifact {
        Artifact::Crate(CrateArtifact {
            name,
            version,
            source,
            commit,
            ..
        }) => {
            let mut purl = PackageUrl::new("cargo", name.as_str())?;
            purl.with_version(version.as_str())?;
            if let Some(commit) = commit {
                let url = source.strip_prefix("git+").unwrap_or(source);
                let url = url.split(['?', '#']).next().unwrap_or(url);
                purl.add_qualifier("vcs_url", vcs_location(url, commit.as_str()))?;
            } else if source != CRATES_IO {
                // Cargo.lock's `registry+URL` or `sparse+URL`; a sparse index keeps its prefix, as cargo names it.
                let index = source.strip_prefix("registry+").unwrap_or(source);
                purl.add_qualifier("repository_url", index)?;
            }
            Ok(purl.to_string())
        }
        Artifact::Wheel(WheelArtifact {
            name,
            version,
            filename,
            ..
        }) => {
            let mut purl = PackageUrl::new("pypi", name.as_str())?;
            purl.with_version(version.as_str())?;
            purl.add_qualifier("file_name", filename.as_str())?;
            Ok(purl.to_string())
        }
        Artifact::Git(GitArtifact { url, commit, .. }) => {
            if let Some((owner, repository)) = github(url) {
                let mut purl = PackageUrl::new("github", repository)?;
                purl.with_namespace(owner)?.with_version(commit.as_str())?;
                return Ok(purl.to_string());
            }
            let mut purl = PackageUrl::new("generic", generic_name(last_segment(url)))?;
            purl.with_version(commit.as_str())?;
            purl.add_qualifier("vcs_url", vcs_location(url, commit.as_str()))?;
            Ok(purl.to_string())
        }
        Artifact::Url(UrlArtifact { url, sha256, .. }) => {
            let mut purl = PackageUrl::new("generic", generic_name(last_segment(url)))?;
            purl.add_qualifier("download_url", url.as_str())?;
            purl.add_qualifier("checksum", format!("sha256:{}", sha256.as_str()))?;
            Ok(purl.to_string())
        }
        Artifact::XmakeArchive(XmakeArchiveArtifact {
            package,
            version,
            url,
            sha256,
            ..
        }) => {
            let mut purl = PackageUrl::new("generic", generic_name(package))?;
            if !version.is_empty() {
                purl.with_version(version.as_str())?;
            }
            purl.add_qualifier("download_url", url.as_str())?;
            purl.add_qualifier("checksum", format!("sha256:{}", sha256.as_str()))?;
            Ok(purl.to_string())
        }
        Artifact::RustToolchain(RustToolchainArtifact {
            toolchain: name, ..
        }) => match toolchain {
            Some((version, host)) => rust_toolchain(version, host),
            None => rust_toolchain(name, ""),
        },
        Artifact::Path(PathArtifact { path, .. }) => {
            let name = last_segment(path);
            let name = if name.is_empty() || name == "." || name == ".." {
                path.as_str()
            } else {
                name
            };
            Ok(PackageUrl::new("generic", generic_name(name))?.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CommitId, Sha256};
    use hstore_store::Digest;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn github_and_other_git_hosts() {
        let git = |url: &str| {
            Artifact::Git(GitArtifact {
                id: format!("git+{url}#{COMMIT}").into(),
                url: url.to_owned(),
                commit: CommitId::new(COMMIT).unwrap(),
                submodules: Vec::new(),
                address: Digest::of_bytes(b""),
                size: 0,
            })
        };
        assert_eq!(
            of(&git("https://github.com/Ceng23333/InfiniLM-SVC.git"), None).unwrap(),
            format!("pkg:github/ceng23333/infinilm-svc@{COMMIT}")
        );
        assert_eq!(
            of(&git("https://gitlab.example/group/tool.git"), None).unwrap(),
            format!(
                "pkg:generic/tool@{COMMIT}?vcs_url=git%2Bhttps:%2F%2Fgitlab.example%2Fgroup%2Ftool.git%40{COMMIT}"
            )
        );
    }

    #[test]
    fn downloads_carry_url_and_checksum() {
        let sha = "ab".repeat(32);
        let url = Artifact::Url(UrlArtifact {
            id: "url+https://example.org/dl/tool-1.0.tar.gz".into(),
            url: "https://example.org/dl/tool-1.0.tar.gz".into(),
            sha256: Sha256::new(sha.clone()).unwrap(),
            unpack: true,
            strip_components: 1,
            address: Digest::of_bytes(b""),
            size: 0,
        });
        assert_eq!(
            of(&url, None).unwrap(),
            format!(
                "pkg:generic/tool-1.0.tar.gz?checksum=sha256:{sha}&download_url=https:%2F%2Fexample.org%2Fdl%2Ftool-1.0.tar.gz"
            )
        );
        let path = Artifact::Path(PathArtifact {
            id: "path+../src/app".into(),
            path: "../src/app".into(),
            address: Digest::of_bytes(b""),
            size: 0,
        });
        assert_eq!(of(&path, None).unwrap(), "pkg:generic/app");
        assert_eq!(
            rust_toolchain("1.95.0", "x86_64-unknown-linux-gnu").unwrap(),
            "pkg:generic/rust@1.95.0?arch=x86_64-unknown-linux-gnu"
        );
    }
}
