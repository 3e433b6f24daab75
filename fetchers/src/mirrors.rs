//! [`Mirrors`]: URL prefix rewrites, like git's `url.<base>.insteadOf`.
//!
//! A mirror changes where bytes come from, never what they must hash to: callers keep the canonical URL for the
//! lockfile and ask [`Mirrors::rewrite`] only for the URL they actually request. The longest matching `FROM` prefix
//! wins; at most one rewrite applies (the result is not rewritten again), so rules cannot loop.
//!
//! Sources of rules, in order of precedence (a `--mirror` for the same `FROM` replaces a file rule):
//! `--mirror FROM=TO` on the command line, then the `[mirrors]` table of `hstore.toml` (the CLI looks in the current
//! directory, then in the parent of the recipes directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why mirror rules are invalid.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--mirror` value without `=`, or with an empty side.
    #[error(
        "invalid mirror `{value}`: expected FROM=TO, e.g. `https://github.com/=file:///srv/git/`"
    )]
    Syntax {
        /// The value as given.
        value: String,
    },
    /// `hstore.toml` could not be read or parsed.
    #[error("invalid config `{}`: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A set of prefix rewrites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    rules: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    mirrors: BTreeMap<String, String>,
}

impl Mirrors {
    /// No rewrites.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the rule `from` → `to`.
    pub fn add(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.rules.insert(from.into(), to.into());
    }

    /// Parses and adds a `FROM=TO` rule.
    pub fn add_spec(&mut self, value: &str) -> Result<(), Error> {
        match value.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                self.add(from, to);
                Ok(())
            }
            _ => Err(Error::Syntax {
                value: value.to_owned(),
            }),
        }
    }

    /// Adds the `[mirrors]` table of the `hstore.toml` at `path` (other tables are ignored: they belong to other
    /// commands). A missing file adds nothing.
    pub fn add_config_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    message: error.to_string(),
                });
            }
        };
        let config: ConfigFile = toml::from_str(&text).map_err(|error| Error::Config {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        for (from, to) in config.mirrors {
            self.rules.entry(from).or_insert(to);
        }
        Ok(())
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Where to fetch `url` from: the longest matching prefix replaced, or `url` itself.
    pub fn rewrite(&self, url: &str) -> String {
        self.rules
            .iter()
            .filter(|(from, _)| url.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len())
            .map_or_else(
                || url.to_owned(),
                |(from, to)| format!("{to}{}", &url[from.len()..]),
            )
    }

    /// `Some(rewritten)` when a rule applies.
    pub fn rewritten(&self, url: &str) -> Option<String> {
        let rewritten = self.rewrite(url);
        (rewritten != url).then_some(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_applies_once() {
        let mut mirrors = Mirrors::new();
        mirrors
            .add_spec("https://github.com/=file:///srv/git/")
            .unwrap();
        mirrors
            .add_spec("https://github.com/org/=http://127.0.0.1:1/org-mirror/")
            .unwrap();
        mirrors
            .add_spec("file:///srv/=https://github.com/")
            .unwrap();
        assert_eq!(
            mirrors.rewrite("https://github.com/a/b.git"),
            "file:///srv/git/a/b.git"
        );
        assert_eq!(
            mirrors.rewrite("https://github.com/org/b.git"),
            "http://127.0.0.1:1/org-mirror/b.git"
        );
        assert_eq!(
            mirrors.rewrite("https://example.org/x"),
            "https://example.org/x"
        );
        assert!(mirrors.add_spec("nope").is_err());
        assert!(mirrors.add_spec("=x").is_err());
    }
}
