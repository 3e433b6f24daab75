//! [`GitRepo`]: real git repositories with reproducible commit ids, for fetcher tests.
//!
//! Every git command runs with a fixed identity, fixed dates (one minute apart per commit, from a fixed epoch), no
//! global or system config and `init.defaultBranch=main`, so the same sequence of calls gives the same commit ids on
//! any machine. (A superproject's ids still depend on its submodules' `file://` URLs, which contain temp paths.)

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds since the epoch of the first commit (2023-11-14T22:13:20Z).
const EPOCH: u64 = 1_700_000_000;

/// A git working tree under a test's control.
#[derive(Debug)]
pub struct GitRepo {
    dir: PathBuf,
    commits: Cell<u64>,
}

impl GitRepo {
    /// Runs `git init` in `dir` (created if missing), on branch `main`.
    pub fn init(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).expect("create repo dir");
        let repo = GitRepo {
            dir,
            commits: Cell::new(0),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `file:///…` URL of the repository, for cloning and submodules.
    pub fn file_url(&self) -> String {
        let path = self.dir.canonicalize().expect("canonicalize repo");
        format!("file://{}", path.display())
    }

    /// A `git` command in this repository with the deterministic environment.
    pub fn command(&self) -> Command {
        let date = format!("@{} +0000", EPOCH + 60 * self.commits.get());
        let mut command = Command::new("git");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(&self.dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "hstore test")
            .env("GIT_AUTHOR_EMAIL", "test@hstore.invalid")
            .env("GIT_COMMITTER_NAME", "hstore test")
            .env("GIT_COMMITTER_EMAIL", "test@hstore.invalid")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args([
                "-c",
                "protocol.file.allow=always",
                "-c",
                "core.autocrlf=false",
            ])
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]);
        command
    }

    /// Runs git with `args` and returns its trimmed stdout; panics with stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("run git");
        assert!(
            output.status.success(),
            "git {args:?} failed in {}:\n{}",
            self.dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn prepare(&self, path: &str) -> PathBuf {
        let full = self.dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create parent dirs");
        full
    }

    /// Writes a regular (non-executable) file.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let full = self.prepare(path);
        std::fs::write(&full, contents).expect("write file");
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        self
    }

    /// Writes an executable file.
    pub fn write_executable(&self, path: &str, contents: impl AsRef<[u8]>) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let full = self.prepare(path);
        std::fs::write(&full, contents).expect("write file");
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    /// Creates a symlink `path -> target`.
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        let full = self.prepare(path);
        std::os::unix::fs::symlink(target, full).expect("symlink");
        self
    }

    /// Stages everything and commits; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.commits.set(self.commits.get() + 1);
        self.head()
    }

    /// The commit id of `HEAD`.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Creates branch `name` at `HEAD` (stays on the current branch).
    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["branch", name]);
        self
    }

    /// Switches to an existing branch.
    pub fn checkout(&self, name: &str) -> &Self {
        self.git(&["checkout", "--quiet", name]);
        self
    }

    /// Creates a lightweight tag at `HEAD`.
    pub fn tag(&self, name: &str) -> &Self {
        self.git(&["tag", name]);
        self
    }

    /// Creates an annotated tag at `HEAD` (a tag object that peels to the commit).
    pub fn annotated_tag(&self, name: &str, message: &str) -> &Self {
        self.git(&["tag", "-a", name, "-m", message]);
        self
    }

    /// Adds `url` as a submodule at `path` (staged, not committed).
    pub fn add_submodule(&self, path: &str, url: &str) -> &Self {
        self.git(&["submodule", "--quiet", "add", url, path]);
        self
    }
}
