//! [`Git`]: git repositories through the `git` command line (like cargo's `net.git-fetch-with-cli`; no libgit2).
//!
//! Invariants:
//! - Bare repositories are cached under `<cache>/git-v1/<first 16 hex of sha256(canonical URL)>`, one per canonical
//!   URL whatever mirror served it. Each fetch into one holds an exclusive file lock on `<repo>.lock`, so two hstore
//!   processes never race on git's `shallow.lock`.
//! - The user's git configuration is ignored (`GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`), prompts are off
//!   (`GIT_TERMINAL_PROMPT=0`), and `protocol.file.allow=always` lets `file://` submodules work.
//! - Only what is needed is fetched: `git fetch --depth 1 URL COMMIT` first (servers that allow wanting any reachable
//!   commit, which GitHub and protocol v2 do), falling back to fetching every branch and tag.
//! - The tree of a commit is written from the object database with `git ls-tree` + `git cat-file --batch`, never
//!   through a checkout: blob bytes land exactly as committed (no `.gitattributes` eol/ident/filter conversion, no LFS
//!   smudge, `export-ignore` ignored), mode 100755 gives an executable file, 120000 a symlink with the blob as target,
//!   and nothing of `.git` is written. Every path component is validated before anything is created.
//! - Submodules (when asked): `.gitmodules` is read at the commit, gitlinks come from the tree, `update = none` is
//!   skipped (its directory stays empty, as git leaves it), relative URLs resolve against the parent's canonical URL,
//!   and each submodule's tree is written at its path, recursively. A submodule that cannot be fetched (its commit
//!   absent upstream or from the mirror, a corrupt repository, an unreachable server) is an
//!   [`Error::SubmoduleUnavailable`] naming its path, the pinned commit, the canonical URL and the URL tried, with
//!   git's text as the cause.
#![allow(
    clippy::unused_self,
    reason = "git operations stay methods of `Git` so they share its cache and offline settings as they grow"
)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hstore_store::{Digest, PathComponent, Store};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::lockfile::LockedSubmodule;
use crate::mirrors::Mirrors;
use hstore_model::CommitId;

/// Store metadata namespace: which commit (and submodule choice) gave which tree.
pub const META_NAMESPACE: &str = "git-commit";

/// The commit records' kind, listed by the registry of record namespaces ([`crate::kinds::records`]).
pub const RECORDS: hstore_store::RecordKind = hstore_store::RecordKind {
    namespace: META_NAMESPACE,
    travels: false,
    check: |_key, value| {
        let record: CommitRecord = hstore_store::RecordKind::parse(value)?;
        Ok(vec![record.address])
    },
};

/// The store metadata recorded per commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// Canonical URL it was fetched for.
    pub url: String,
    /// The tree address.
    pub address: Digest,
    /// Total file bytes.
    pub size: u64,
    /// Submodules in place, sorted by path.
    pub submodules: Vec<LockedSubmodule>,
}

/// A commit's tree, in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitTree {
    /// The tree address.
    pub address: Digest,
    /// Total file bytes.
    pub size: u64,
    /// Submodules in place, sorted by path.
    pub submodules: Vec<LockedSubmodule>,
}

/// Git access with a repository cache.
#[derive(Clone, Debug)]
pub struct Git {
    cache: PathBuf,
    mirrors: Mirrors,
    offline: bool,
}

/// Whether `text` is a full 40-hex SHA-1 commit id (or 64-hex SHA-256).
pub fn is_full_commit(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves a submodule URL relative to its parent's URL the way git does (`../x.git` replaces the last component).
pub fn resolve_relative_url(base: &str, relative: &str) -> String {
    if !(relative.starts_with("./") || relative.starts_with("../")) {
        return relative.to_owned();
    }
    let mut base = base.trim_end_matches('/').to_owned();
    let mut rest = relative;
    loop {
        if let Some(tail) = rest.strip_prefix("./") {
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("../") {
            rest = tail;
            if let Some(slash) = base.rfind('/') {
                base.truncate(slash);
            }
        } else {
            break;
        }
    }
    format!("{base}/{rest}")
}

impl Git {
    /// Git access caching repositories under `cache` (the `HSTORE_CACHE` directory).
    pub fn new(cache: &Path, mirrors: Mirrors, offline: bool) -> Self {
        Self {
            cache: cache.join("git-v1"),
            mirrors,
            offline,
        }
    }

    fn command(repo: Option<&Path>) -> Command {
        let mut command = Command::new("git");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_NAMESPACE",
        ] {
            command.env_remove(var);
        }
        command
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("LC_ALL", "C")
            .args([
                "-c",
                "protocol.file.allow=always",
                "-c",
                "core.askPass=true",
            ])
            .stdin(Stdio::null());
        if let Some(repo) = repo {
            command.arg("--git-dir").arg(repo);
        }
        command
    }

    fn run(mut command: Command, action: &str, url: &str) -> Result<Vec<u8>> {
        let output = command
            .output()
            .map_err(|source| Error::GitMissing { source })?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(Error::Git {
                action: action.to_owned(),
                url: url.to_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// The cached bare repository for `url`, created if needed (atomically: init in a temp dir, then rename).
    fn repository(&self, url: &str) -> Result<PathBuf> {
        let key = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
        let repo = self.cache.join(format!("{key}.git"));
        if repo.join("objects").is_dir() {
            return Ok(repo);
        }
        fs::create_dir_all(&self.cache).map_err(Error::io("create directory", &self.cache))?;
        let staging = tempfile::Builder::new()
            .prefix(".init-")
            .tempdir_in(&self.cache)
            .map_err(Error::io("create temp directory in", &self.cache))?;
        let mut command = Self::command(None);
        command
            .args(["init", "--bare", "--quiet"])
            .arg(staging.path());
        Self::run(command, "init", url)?;
        match fs::rename(staging.path(), &repo) {
            Ok(()) => {}
            Err(_) if repo.join("objects").is_dir() => {} // another process won the race
            Err(error) => return Err(Error::io("rename into place", &repo)(error)),
        }
        Ok(repo)
    }

    fn lock(repo: &Path) -> Result<fs::File> {
        let path = repo.with_extension("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open lock file", &path))?;
        file.lock().map_err(Error::io("lock", &path))?;
        Ok(file)
    }

    /// Resolves `reference` (branch, tag, `HEAD`, full ref name, full or short commit) in `url` to a full commit id.
    pub fn resolve(&self, url: &str, reference: &str) -> Result<String> {
        if is_full_commit(reference) {
            return Ok(reference.to_ascii_lowercase());
        }
        if self.offline {
            return Err(Error::Offline {
                what: format!("ref `{reference}` of `{url}`"),
            });
        }
        let fetch_url = self.mirrors.rewrite(url);
        let mut command = Self::command(None);
        command.args(["ls-remote", "--", &fetch_url]);
        let listing = Self::run(command, "ls-remote", url)?;
        let mut refs: BTreeMap<String, String> = BTreeMap::new();
        for line in String::from_utf8_lossy(&listing).lines() {
            if let Some((oid, name)) = line.split_once('\t') {
                refs.insert(name.to_owned(), oid.to_owned());
            }
        }
        let candidates = [
            reference.to_owned(),
            format!("refs/heads/{reference}"),
            format!("refs/tags/{reference}^{{}}"),
            format!("refs/tags/{reference}"),
        ];
        // A peeled tag (`^{}`) names the commit; prefer it to the tag object.
        if let Some(commit) = candidates
            .iter()
            .filter(|name| reference != "HEAD" || name.as_str() == "HEAD")
            .find_map(|name| {
                refs.get(name.as_str())
                    .or_else(|| refs.get(&format!("{name}^{{}}")))
            })
        {
            return Ok(commit.clone());
        }
        let short = reference.len() >= 4 && reference.bytes().all(|b| b.is_ascii_hexdigit());
        if short {
            let repo = self.repository(url)?;
            let _lock = Self::lock(&repo)?;
            self.fetch_everything(&repo, url, &fetch_url)?;
            let mut command = Self::command(Some(&repo));
            command.args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{reference}^{{commit}}"),
            ]);
            if let Ok(out) = Self::run(command, "rev-parse", url) {
                let commit = String::from_utf8_lossy(&out).trim().to_owned();
                if is_full_commit(&commit) {
                    return Ok(commit);
                }
            }
        }
        Err(Error::RefNotFound {
            url: url.to_owned(),
            reference: reference.to_owned(),
        })
    }

    fn has_commit(&self, repo: &Path, commit: &str) -> bool {
        let mut command = Self::command(Some(repo));
        command
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .stderr(Stdio::null());
        command.status().is_ok_and(|status| status.success())
    }

    fn fetch_everything(&self, repo: &Path, url: &str, fetch_url: &str) -> Result<()> {
        let mut command = Self::command(Some(repo));
        command.args(["fetch", "--quiet", "--no-tags"]);
        // An earlier `--depth 1` fetch by commit left the cache shallow; fetching refs into it stays shallow, so a
        // short commit or an older commit would never be found. Take the full history this once.
        if repo.join("shallow").exists() {
            command.arg("--unshallow");
        }
        command.args([
            "--",
            fetch_url,
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ]);
        Self::run(command, "fetch", url).map(|_| ())
    }

    /// Makes sure `commit` of `url` is in the cache; returns the repository. `submodule` is the path in the
    /// top-level tree, for errors.
    pub fn ensure_commit(
        &self,
        url: &str,
        commit: &str,
        submodule: Option<&str>,
    ) -> Result<PathBuf> {
        let repo = self.repository(url)?;
        if self.has_commit(&repo, commit) {
            return Ok(repo);
        }
        if self.offline {
            let what = match submodule {
                Some(path) => format!("commit `{commit}` of `{url}` (submodule at `{path}`)"),
                None => format!("commit `{commit}` of `{url}`"),
            };
            return Err(Error::Offline { what });
        }
        let fetch_url = self.mirrors.rewrite(url);
        let _lock = Self::lock(&repo)?;
        if self.has_commit(&repo, commit) {
            return Ok(repo);
        }
        let mut shallow = Self::command(Some(&repo));
        shallow.args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth",
            "1",
            "--",
            &fetch_url,
            commit,
        ]);
        if let Err(error) = Self::run(shallow, "fetch", url) {
            tracing::debug!("shallow fetch by commit failed, fetching all refs: {error}");
        }
        if !self.has_commit(&repo, commit) {
            // A server that refuses to serve a commit by id, or a repository without it: fetch every ref. If that
            // fails too (unreachable server), git's own message is the most useful error.
            self.fetch_everything(&repo, url, &fetch_url)?;
        }
        if self.has_commit(&repo, commit) {
            Ok(repo)
        } else {
            Err(Error::CommitNotFound {
                url: url.to_owned(),
                fetched_from: (fetch_url != url).then_some(fetch_url),
                commit: commit.to_owned(),
                submodule: submodule.map(str::to_owned),
            })
        }
    }

    /// Writes the tree of `commit` (and, if asked, its submodules) into the empty directory `dest`; returns the
    /// submodules placed, sorted by path.
    pub fn checkout(
        &self,
        url: &str,
        commit: &str,
        submodules: bool,
        dest: &Path,
    ) -> Result<Vec<LockedSubmodule>> {
        let repo = self.ensure_commit(url, commit, None)?;
        let mut placed = Vec::new();
        self.write_recursive(&repo, url, commit, submodules, dest, "", &mut placed)?;
        placed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(placed)
    }

    #[expect(clippy::too_many_arguments, reason = "recursion state")]
    fn write_recursive(
        &self,
        repo: &Path,
        url: &str,
        commit: &str,
        submodules: bool,
        dest: &Path,
        prefix: &str,
        placed: &mut Vec<LockedSubmodule>,
    ) -> Result<()> {
        let gitlinks = self.write_tree(repo, url, commit, dest)?;
        if !submodules || gitlinks.is_empty() {
            return Ok(());
        }
        let modules = Self::gitmodules(repo, url, commit)?;
        for (path, sub_commit) in gitlinks {
            let Some(module) = modules
                .values()
                .find(|module| module.path.as_deref() == Some(path.as_str()))
            else {
                // A gitlink without a .gitmodules entry: git itself cannot check it out either.
                tracing::warn!(
                    "submodule at `{path}` of `{url}` has no `.gitmodules` entry; leaving it empty"
                );
                continue;
            };
            if module.update.as_deref() == Some("none") {
                continue;
            }
            let Some(sub_url) = module.url.as_deref() else {
                return Err(Error::Gitmodules {
                    url: url.to_owned(),
                    commit: commit.to_owned(),
                    reason: format!("submodule at `{path}` has no url"),
                });
            };
            let sub_url = resolve_relative_url(url, sub_url);
            let full_path = format!("{prefix}{path}");
            // git's own text (`fatal: early EOF`) names neither the submodule nor its pin: say which one failed and
            // where it was fetched from. `--offline` keeps its own error (the fix there is `hstore fetch`).
            let sub_repo = self
                .ensure_commit(&sub_url, &sub_commit, Some(&full_path))
                .map_err(|error| {
                    if error.is_offline() {
                        return error;
                    }
                    Error::SubmoduleUnavailable {
                        path: full_path.clone(),
                        commit: sub_commit.clone(),
                        tried: self.mirrors.rewrite(&sub_url),
                        url: sub_url.clone(),
                        source: Box::new(error),
                    }
                })?;
            let sub_dest = dest.join(OsStr::from_bytes(path.as_bytes()));
            placed.push(LockedSubmodule {
                path: full_path.clone(),
                url: sub_url.clone(),
                commit: CommitId::new(sub_commit.clone())?,
            });
            self.write_recursive(
                &sub_repo,
                &sub_url,
                &sub_commit,
                true,
                &sub_dest,
                &format!("{full_path}/"),
                placed,
            )?;
        }
        Ok(())
    }

    /// `.gitmodules` at `commit`, by submodule name; empty when the commit has none. One that git cannot read is
    /// an error: read as "no submodules", it would silently lock a tree with empty submodule directories.
    fn gitmodules(repo: &Path, url: &str, commit: &str) -> Result<BTreeMap<String, Module>> {
        let mut command = Self::command(Some(repo));
        command.args([
            "config",
            "-z",
            "--blob",
            &format!("{commit}:.gitmodules"),
            "--list",
        ]);
        let out = match Self::run(command, "config", url) {
            Ok(out) => out,
            Err(error) => {
                // No `.gitmodules` at this commit makes `git config` fail too: then there are no submodules.
                let mut exists = Self::command(Some(repo));
                exists
                    .args(["cat-file", "-e", &format!("{commit}:.gitmodules")])
                    .stderr(Stdio::null());
                if !exists.status().is_ok_and(|status| status.success()) {
                    return Ok(BTreeMap::new());
                }
                return Err(Error::Gitmodules {
                    url: url.to_owned(),
                    commit: commit.to_owned(),
                    reason: match error {
                        Error::Git { stderr, .. } => stderr,
                        other => other.to_string(),
                    },
                });
            }
        };
        let mut modules: BTreeMap<String, Module> = BTreeMap::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let (key, value) = record.split_once('\n').unwrap_or((&record, ""));
            let Some(rest) = key.strip_prefix("submodule.") else {
                continue;
            };
            let Some((name, var)) = rest.rsplit_once('.') else {
                continue;
            };
            let module = modules.entry(name.to_owned()).or_default();
            match var {
                "path" => module.path = Some(value.trim_end_matches('/').to_owned()),
                "url" => module.url = Some(value.to_owned()),
                "update" => module.update = Some(value.to_owned()),
                _ => {}
            }
        }
        Ok(modules)
    }

    /// Writes the files of `commit`'s tree into `dest`; returns gitlinks (path, commit).
    fn write_tree(
        &self,
        repo: &Path,
        url: &str,
        commit: &str,
        dest: &Path,
    ) -> Result<Vec<(String, String)>> {
        let mut command = Self::command(Some(repo));
        command.args(["ls-tree", "-r", "-z", "--full-tree", commit]);
        let listing = Self::run(command, "ls-tree", url)?;
        fs::create_dir_all(dest).map_err(Error::io("create directory", dest))?;
        let mut batch = Self::command(Some(repo))
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::GitMissing { source })?;
        let (Some(mut input), Some(output)) = (batch.stdin.take(), batch.stdout.take()) else {
            return Err(Error::Git {
                action: "cat-file".into(),
                url: url.to_owned(),
                stderr: "no pipes".into(),
            });
        };
        let mut output = BufReader::with_capacity(1 << 20, output);
        let mut gitlinks = Vec::new();
        let bad = |reason: String| Error::Git {
            action: "ls-tree".into(),
            url: url.to_owned(),
            stderr: reason,
        };
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let tab = entry
                .iter()
                .position(|b| *b == b'\t')
                .ok_or_else(|| bad("malformed ls-tree line".into()))?;
            let header = String::from_utf8_lossy(&entry[..tab]);
            let path_bytes = &entry[tab + 1..];
            let mut fields = header.split(' ');
            let (Some(mode), Some(_kind), Some(oid)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(format!("malformed ls-tree line `{header}`")));
            };
            for component in path_bytes.split(|b| *b == b'/') {
                PathComponent::new(component.to_vec()).map_err(|error| {
                    bad(format!(
                        "unsafe path `{}`: {error}",
                        String::from_utf8_lossy(path_bytes)
                    ))
                })?;
            }
            let path = dest.join(OsStr::from_bytes(path_bytes));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
            }
            if mode == "160000" {
                fs::create_dir_all(&path).map_err(Error::io("create directory", &path))?;
                gitlinks.push((
                    String::from_utf8_lossy(path_bytes).into_owned(),
                    oid.to_owned(),
                ));
                continue;
            }
            writeln!(input, "{oid}")
                .and_then(|()| input.flush())
                .map_err(Error::io("write to git cat-file for", &path))?;
            let mut line = String::new();
            output
                .read_line(&mut line)
                .map_err(Error::io("read git cat-file output for", &path))?;
            let size: u64 = line
                .trim_end()
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("unexpected cat-file answer `{}`", line.trim_end())))?;
            let mut body = (&mut output).take(size);
            match mode {
                "120000" => {
                    let mut target = Vec::with_capacity(size as usize);
                    body.read_to_end(&mut target)
                        .map_err(Error::io("read symlink target of", &path))?;
                    std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                        .map_err(Error::io("create symlink", &path))?;
                }
                "100644" | "100755" | "100664" => {
                    let mut file = fs::File::create(&path).map_err(Error::io("create", &path))?;
                    std::io::copy(&mut body, &mut file).map_err(Error::io("write", &path))?;
                    let mode_bits = if mode == "100755" { 0o755 } else { 0o644 };
                    file.set_permissions(fs::Permissions::from_mode(mode_bits))
                        .map_err(Error::io("set permissions of", &path))?;
                }
                other => {
                    return Err(bad(format!(
                        "unsupported mode `{other}` at `{}`",
                        path.display()
                    )));
                }
            }
            let mut newline = [0u8; 1];
            output
                .read_exact(&mut newline)
                .map_err(Error::io("read git cat-file output for", &path))?;
        }
        drop(input);
        let _ = batch.wait();
        Ok(gitlinks)
    }

    /// The tree of `commit` in the store, from store metadata when a previous run recorded it (no git, no hashing),
    /// else by checking it out into the store's `tmp/` and adding it.
    pub fn fetch_tree(
        &self,
        store: &Store,
        url: &str,
        commit: &str,
        submodules: bool,
    ) -> Result<GitTree> {
        let key = if submodules {
            format!("{commit}-submodules")
        } else {
            commit.to_owned()
        };
        if let Some(record) = store.get_meta::<CommitRecord>(META_NAMESPACE, &key)?
            && store.closure_complete(&record.address)?
        {
            return Ok(GitTree {
                address: record.address,
                size: record.size,
                submodules: record.submodules,
            });
        }
        let staging = store.temp_dir()?;
        let root = staging.path().join("tree");
        let placed = self.checkout(url, commit, submodules, &root)?;
        let (address, size) = store.add_tree(&root, &|_| false)?;
        crate::record::put(
            store,
            &RECORDS,
            &key,
            &CommitRecord {
                url: url.to_owned(),
                address,
                size,
                submodules: placed.clone(),
            },
        )?;
        Ok(GitTree {
            address,
            size,
            submodules: placed,
        })
    }
}

#[derive(Default, Debug)]
struct Module {
    path: Option<String>,
    url: Option<String>,
    update: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_resolve_like_git() {
        assert_eq!(
            resolve_relative_url("https://h/o/repo.git", "../sub.git"),
            "https://h/o/sub.git"
        );
        assert_eq!(
            resolve_relative_url("file:///srv/a/", "./b"),
            "file:///srv/a/b"
        );
        assert_eq!(
            resolve_relative_url("https://h/o/r", "../../x/y"),
            "https://h/x/y"
        );
        assert_eq!(
            resolve_relative_url("https://h/o/r", "https://other/z"),
            "https://other/z"
        );
    }

    #[test]
    fn full_commits_are_recognized() {
        assert!(is_full_commit(&"a".repeat(40)));
        assert!(!is_full_commit("main"));
        assert!(!is_full_commit("abc123"));
    }
}
