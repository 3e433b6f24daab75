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
//! Each kind's rule lives with its artifact struct (`ArtifactKind::purl` in `crate::artifact`); this table is
//! the overview. A `deb` is `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-SUITE`, a `debian_base`
//! `pkg:generic/debian-base@SUITE?arch=ARCH`.

pub use crate::artifact::rust_toolchain_purl as rust_toolchain;
use crate::artifact::{Artifact, SourceFacts};
pub use crate::artifact::{last_segment, vcs_location};

/// The purl of `artifact`. `toolchain` splits a `rust_toolchain` name into version and host (from the source
/// that locked it); other kinds ignore it.
pub fn of(
    artifact: &Artifact,
    toolchain: Option<(&str, &str)>,
) -> Result<String, packageurl::Error> {
    artifact.kind_impl().purl(&SourceFacts { toolchain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CommitId, Sha256};
    use crate::lockfile::{GitArtifact, PathArtifact, UrlArtifact};
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
    fn debian_packages_are_deb_purls_and_a_base_is_generic() {
        let deb = Artifact::Deb(crate::lockfile::DebArtifact {
            id: "deb+amd64/gcc-12@12.2.0-14".into(),
            package: "gcc-12".into(),
            version: "12.2.0-14".into(),
            architecture: "amd64".into(),
            suite: "bookworm".into(),
            url: "http://deb.debian.org/debian/pool/main/g/gcc-12/gcc-12_12.2.0-14_amd64.deb"
                .into(),
            sha256: Sha256::new("ab".repeat(32)).unwrap(),
            address: Digest::of_bytes(b""),
            size: 1,
        });
        assert_eq!(
            of(&deb, None).unwrap(),
            "pkg:deb/debian/gcc-12@12.2.0-14?arch=amd64&distro=debian-bookworm"
        );
        let base = Artifact::DebianBase(crate::lockfile::DebianBaseArtifact {
            id: "debian-base+bookworm/amd64#0123456789abcdef".into(),
            suite: "bookworm".into(),
            architecture: "amd64".into(),
            packages: 104,
            release_date: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
            layout: 1,
            address: Digest::of_bytes(b""),
            size: 1,
        });
        assert_eq!(
            of(&base, None).unwrap(),
            "pkg:generic/debian-base@bookworm?arch=amd64"
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
