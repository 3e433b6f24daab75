//! A PEP 691 (JSON simple API, v1.1) client: one project page → its files, with `hashes`, `requires-python`,
//! `yanked`, `size` and `upload-time`.
//!
//! Pages are fetched through the mirror rules (the page URL is rewritten, never the lockfile's URLs): a file URL
//! relative to its page is resolved against the *canonical* page URL, so the lockfile records where the file lives
//! upstream and a mirror only changes where bytes come from. See <https://peps.python.org/pep-0691/>.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::context::Fetcher;
use crate::error::{Error, Result};

/// The PEP 691 JSON media type.
pub const PEP691_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// Largest project page accepted (the biggest PyPI pages are a few MiB).
const PAGE_LIMIT: u64 = 64 << 20;

/// One file of a project page.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IndexFile {
    /// The file name.
    pub filename: String,
    /// Where it is, absolute (resolved against the canonical page URL).
    pub url: String,
    /// `{"sha256": "…"}`.
    #[serde(default)]
    pub hashes: BTreeMap<String, String>,
    /// The file's `Requires-Python`.
    #[serde(default, rename = "requires-python")]
    pub requires_python: Option<String>,
    /// `false`, `true` or the reason it was yanked.
    #[serde(default)]
    pub yanked: Yanked,
    /// Bytes, when the index says.
    #[serde(default)]
    pub size: Option<u64>,
    /// When it was uploaded (RFC 3339, UTC).
    #[serde(default, rename = "upload-time")]
    pub upload_time: Option<String>,
}

/// PEP 592: `yanked` is a boolean or a reason.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Yanked {
    /// `true`/`false`.
    Flag(bool),
    /// Yanked, with a reason.
    Reason(String),
}

impl Default for Yanked {
    fn default() -> Self {
        Yanked::Flag(false)
    }
}

impl Yanked {
    /// Whether the file is yanked.
    pub fn is_yanked(&self) -> bool {
        match self {
            Yanked::Flag(flag) => *flag,
            Yanked::Reason(_) => true,
        }
    }
}

#[derive(Deserialize)]
struct Page {
    files: Vec<IndexFile>,
}

/// The canonical page URL of `name` (PEP 503-normalized) on `index` (no trailing slash).
pub fn page_url(index: &str, name: &str) -> String {
    format!("{}/{name}/", index.trim_end_matches('/'))
}

/// Fetches and parses the project page of `name`.
pub async fn project_files(fetcher: &Fetcher, index: &str, name: &str) -> Result<Vec<IndexFile>> {
    let canonical = page_url(index, name);
    let fetch_url = fetcher.mirrors().rewrite(&canonical);
    let bytes = fetcher
        .downloader()
        .get_bytes_accepting(&fetch_url, Some(PEP691_JSON), PAGE_LIMIT)
        .await?;
    parse_page(&bytes, &canonical, &fetch_url)
}

/// Parses page bytes; relative file URLs are resolved against `canonical`; `fetched` names the page in errors.
pub fn parse_page(bytes: &[u8], canonical: &str, fetched: &str) -> Result<Vec<IndexFile>> {
    let invalid = |message: String| Error::IndexPage {
        url: fetched.to_owned(),
        message,
    };
    let page: Page = serde_json::from_slice(bytes)
        .map_err(|error| invalid(format!("not PEP 691 JSON: {error}")))?;
    let base = url::Url::parse(canonical).map_err(|error| invalid(error.to_string()))?;
    let mut files = page.files;
    for file in &mut files {
        let absolute = base
            .join(&file.url)
            .map_err(|error| invalid(format!("bad URL `{}`: {error}", file.url)))?;
        let mut absolute = absolute;
        // `#sha256=…` fragments duplicate `hashes`; the lockfile keeps the bare URL.
        absolute.set_fragment(None);
        file.url = absolute.to_string();
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_relative_urls_and_yank_reasons() {
        let page = br#"{"meta":{"api-version":"1.1"},"name":"a","files":[
            {"filename":"a-1.0-py3-none-any.whl","url":"../../packages/a-1.0-py3-none-any.whl#sha256=00",
             "hashes":{"sha256":"00"},"yanked":"broken","upload-time":"2025-01-01T00:00:00.000Z","size":3},
            {"filename":"a-1.1-py3-none-any.whl","url":"https://files.example/a-1.1-py3-none-any.whl",
             "hashes":{"sha256":"11"},"requires-python":">=3.9"}]}"#;
        let files = parse_page(
            page,
            "https://pypi.example/simple/a/",
            "http://mirror/simple/a/",
        )
        .expect("a valid page");
        assert_eq!(
            files[0].url,
            "https://pypi.example/packages/a-1.0-py3-none-any.whl"
        );
        assert!(files[0].yanked.is_yanked());
        assert!(!files[1].yanked.is_yanked());
        assert_eq!(files[1].requires_python.as_deref(), Some(">=3.9"));
        let error = parse_page(
            b"<html>",
            "https://pypi.example/simple/a/",
            "http://mirror/simple/a/",
        )
        .expect_err("HTML is not PEP 691");
        assert!(
            error.to_string().contains("http://mirror/simple/a/"),
            "{error}"
        );
    }
}
