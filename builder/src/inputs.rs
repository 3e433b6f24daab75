//! Phase-2 shapes of inputs: how each locked source appears inside the sandbox.
//!
//! - [`InputShape::Tree`]: a git commit, a local path or an unpacked download — the tree's materialized copy from the
//!   store's read-only cache, bound at `/src/<name>` and exported as `$src_<name>`.
//! - [`InputShape::File`]: a plain download kept as a blob — a one-file tree `{file_name: blob}` is built in the store
//!   (no bytes copied), so it is bound like a tree; `$src_<name>` is the directory and `$src_<name>_file` the file.
//! - [`InputShape::CargoVendor`]: every crate of a Cargo.lock — a vendor tree `{<name>-<version>: crate tree}` is
//!   assembled from directory nodes alone (the crates are already stored as vendored trees with their
//!   `.cargo-checksum.json`), materialized once into the cache and bound at `/src/<name>`. A cargo config with the
//!   source replacement (crates.io, plus one stanza per git source and per other registry, as `cargo vendor` prints
//!   them) is written to `$CARGO_HOME/config.toml`, so
//!   `cargo build --offline --frozen` works with no further setup. Building the vendor tree costs one directory node;
//!   the cache makes every later build bind it instantly instead of unpacking per build.
//! - [`InputShape::Wheelhouse`]: a `requirements` source for the build's target — a tree of the target's wheel blobs
//!   (by file name) plus `requirements.txt` with one `name==version --hash=sha256:…` line per wheel, so
//!   `pip install --no-index --find-links "$src_<name>" --require-hashes -r "$src_<name>/requirements.txt"` and
//!   `uv pip install --offline` install exactly the locked set. Only the small `requirements.txt` blob and one
//!   directory node are written; the wheels are the stored blobs.
//! - [`InputShape::LocalTree`]: a local directory given with `hstore build --override-input RECIPE.SOURCE=DIR` in
//!   place of the locked source (the seed's `--infinicore-src`), stored through the stat cache and bound like a
//!   tree. Its key text says `local-tree`, so a build from a local checkout never shares a key (and a record) with
//!   the build of the pinned commit, even when the two trees are identical.
//! - [`InputShape::XmakePackages`]: an `xmake_requires` source for the build's target — a tree `{repo: the locked
//!   xmake-repo tree (no `.git`), archives: {<file name xmake looks for>: archive blob}}` assembled from directory
//!   nodes (no bytes copied), bound read-only at `/src/<name>`. Before the script runs, `XMAKE_GLOBALDIR` (under
//!   `/build`) gets a `.xmake/xmake.conf` with `network = "private"` and `pkg_searchdirs` = the archives directory;
//!   `XMAKE_MAIN_REPO`, `XMAKE_PKG_INSTALLDIR`/`XMAKE_PKG_CACHEDIR`/`XMAKE_TMPDIR` (under `/build`),
//!   `XMAKE_STATS=false`, `XMAKE_ROOT=y` and `$xmake_options` (the target's options, joined by spaces) are set, and
//!   the pinned xmake's `bin` leads `PATH`. The build log starts with one line per package saying whether it comes
//!   from the store (with its file name) or from the host system. A missing archive fails before the build starts,
//!   naming the package, version and the file names xmake accepts ([`InputShape::check_xmake_archives`]).
//! - [`InputShape::Output`]: another recipe's build output (a `recipe` source), bound like a tree once that build
//!   has finished. Its key text is the dependency's build *key*, not its output address, so a dependent's key is
//!   known before the dependency runs, and changes exactly when the dependency's does.

use std::fmt::Write as _;

use hstore_store::{Digest, Directory, Node, PathComponent, Store};
use serde::{Deserialize, Serialize};

use super::error::{BuildError as Error, Result};

/// One recipe source, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The source's name in the recipe (`[sources.<name>]`).
    pub name: String,
    /// How it appears inside.
    pub shape: InputShape,
}

/// See the module docs. Serialized (as a provenance statement's record of each input, [`crate::provenance`]) with
/// the variant named as in [`InputShape::key_text`] (`tree`, `cargo-vendor`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputShape {
    /// A stored tree.
    Tree(Digest),
    /// A local directory standing in for the locked source (`--override-input`), stored as a tree.
    LocalTree(Digest),
    /// A stored blob, shown as one file.
    File {
        /// The blob.
        digest: Digest,
        /// Its file name inside the input directory.
        file_name: String,
    },
    /// Vendored crates.
    CargoVendor {
        /// The crates, each a vendored tree.
        crates: Vec<VendoredCrate>,
    },
    /// A wheelhouse: one target's wheels and their hashed `requirements.txt`.
    Wheelhouse {
        /// `(file name, blob)` of each wheel.
        wheels: Vec<(String, Digest)>,
        /// The `requirements.txt` text.
        requirements: String,
    },
    /// The xmake packages of one target: the xmake-repo tree and the archives under the names xmake looks for.
    XmakePackages {
        /// The locked xmake-repo tree.
        repo: Digest,
        /// The target's archives.
        archives: Vec<XmakeArchiveInput>,
        /// `(package, version, origin)` of each package xmake takes from the host, for the build log.
        host_packages: Vec<(String, String, String)>,
        /// The target's `xmake_options`.
        options: Vec<String>,
        /// The input holding the pinned xmake (`bin/xmake`), a `recipe` source.
        xmake_input: String,
    },
    /// Another recipe's output.
    Output {
        /// The dependency's recipe.
        recipe: String,
        /// The target it is built for.
        target: String,
        /// Its build key.
        key: Digest,
        /// Its output tree, once built (filled in by the graph just before the dependent starts).
        output: Option<Digest>,
    },
}

/// One crate of a vendor directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendoredCrate {
    /// Directory name in the vendor tree (`<name>-<version>`).
    pub dir_name: String,
    /// The vendored crate's tree.
    pub tree: Digest,
    /// For crates from git, the source-replacement stanza cargo needs.
    pub git: Option<GitReplacement>,
    /// For crates from a registry other than crates.io, its Cargo.lock source id (`sparse+https://…/` or
    /// `registry+https://…`), which needs its own replacement stanza.
    pub registry: Option<String>,
}

/// One archive of an [`InputShape::XmakePackages`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct XmakeArchiveInput {
    /// The file name it appears under in the archives directory.
    pub file_name: String,
    /// The package.
    pub package: String,
    /// Its version.
    pub version: String,
    /// Every file name xmake accepts for it.
    pub search_names: Vec<String>,
    /// The archive blob.
    pub digest: Digest,
}

/// What an [`InputShape::XmakePackages`] input needs set up around the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmakeSetup {
    /// Environment for the build (`PATH` already leads with the pinned xmake's `bin`).
    pub env: Vec<(String, String)>,
    /// `XMAKE_GLOBALDIR`'s `.xmake/xmake.conf`.
    pub conf: String,
}

/// Where xmake's writable directories go, under the sandbox's `/build` (relative names).
pub(crate) const XMAKE_GLOBAL_DIR: &str = ".xmake-global";
/// See [`XMAKE_GLOBAL_DIR`].
pub(crate) const XMAKE_SCRATCH_DIRS: [(&str, &str); 3] = [
    ("XMAKE_PKG_INSTALLDIR", ".xmake-packages"),
    ("XMAKE_PKG_CACHEDIR", ".xmake-cache"),
    ("XMAKE_TMPDIR", ".xmake-tmp"),
];

/// The text of `$XMAKE_GLOBALDIR/.xmake/xmake.conf`: no network, archives from `archives_dir`.
pub fn xmake_global_conf(archives_dir: &str) -> String {
    // xmake reads this file as a Lua table; the directory is quoted as a Lua string.
    let quoted = archives_dir.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{{\n    network = \"private\",\n    pkg_searchdirs = \"{quoted}\"\n}}\n")
}

/// A `[source."git+…"]` stanza.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GitReplacement {
    /// The source id as Cargo.lock writes it, without the `#commit` fragment (`git+https://…?branch=x`).
    pub source_id: String,
    /// The repository URL.
    pub url: String,
    /// `branch`, `tag` or `rev`, with its value, if the dependency named one.
    pub reference: Option<(String, String)>,
}

impl InputShape {
    /// Canonical text of the shape for the build key.
    pub(crate) fn key_text(&self) -> String {
        match self {
            InputShape::Tree(digest) => format!("tree {digest}"),
            InputShape::LocalTree(digest) => format!("local-tree {digest}"),
            InputShape::File { digest, file_name } => format!("file {file_name} {digest}"),
            InputShape::CargoVendor { crates } => {
                let mut text = String::from("cargo-vendor");
                let mut sorted: Vec<&VendoredCrate> = crates.iter().collect();
                sorted.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
                for krate in sorted {
                    let _ = write!(text, " {}={}", krate.dir_name, krate.tree);
                    if let Some(git) = &krate.git {
                        let _ = write!(text, "({})", git.source_id);
                    }
                    if let Some(registry) = &krate.registry {
                        let _ = write!(text, "({registry})");
                    }
                }
                text
            }
            InputShape::Wheelhouse {
                wheels,
                requirements,
            } => {
                let mut text = String::from("wheelhouse");
                let mut sorted: Vec<&(String, Digest)> = wheels.iter().collect();
                sorted.sort();
                for (file_name, digest) in sorted {
                    let _ = write!(text, " {file_name}={digest}");
                }
                let _ = write!(
                    text,
                    " requirements.txt={}",
                    Digest::of_bytes(requirements.as_bytes())
                );
                text
            }
            InputShape::XmakePackages {
                repo,
                archives,
                host_packages,
                options,
                xmake_input,
            } => {
                let mut text = format!("xmake-packages repo={repo} xmake={xmake_input} options=");
                // JSON keeps option boundaries exact (`a b` vs `a`, `b`); serializing strings cannot fail.
                text.push_str(&serde_json::to_string(options).unwrap_or_default());
                let mut sorted: Vec<&XmakeArchiveInput> = archives.iter().collect();
                sorted.sort();
                for archive in sorted {
                    let _ = write!(text, " {}={}", archive.file_name, archive.digest);
                }
                let mut hosts: Vec<&(String, String, String)> = host_packages.iter().collect();
                hosts.sort();
                for (package, version, origin) in hosts {
                    let _ = write!(text, " host:{package}@{version}({origin})");
                }
                text
            }
            InputShape::Output {
                recipe,
                target,
                key,
                ..
            } => format!("output {recipe} {target} {key}"),
        }
    }

    /// Fails before a build starts, naming the package, version and the file names xmake accepts, when an archive
    /// of an [`InputShape::XmakePackages`] input is not in the store (other shapes: nothing to check here).
    pub(crate) fn check_xmake_archives(
        &self,
        store: &Store,
        recipe: &str,
        input: &str,
    ) -> Result<()> {
        let archives = match self {
            InputShape::XmakePackages { archives, .. } => archives,
            // Listed one by one (no `_ =>`): a new shape decides whether it has store objects to check here.
            InputShape::Tree(_)
            | InputShape::LocalTree(_)
            | InputShape::File { .. }
            | InputShape::CargoVendor { .. }
            | InputShape::Wheelhouse { .. }
            | InputShape::Output { .. } => return Ok(()),
        };
        for archive in archives {
            let present = store
                .object_format(&archive.digest)
                .map_err(|source| {
                    Error::store(format!("xmake package `{}`", archive.package), source)
                })?
                .is_some();
            if !present {
                return Err(Error::MissingXmakeArchive {
                    recipe: recipe.to_owned(),
                    input: input.to_owned(),
                    package: archive.package.clone(),
                    version: archive.version.clone(),
                    names: archive
                        .search_names
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// The phase-2 setup of an [`InputShape::XmakePackages`] bound at `inside`; `path` is the `PATH` the build
    /// would have otherwise. `None` for other shapes.
    pub(crate) fn xmake_setup(
        &self,
        inside: &str,
        build_dir: &str,
        path: &str,
    ) -> Option<XmakeSetup> {
        let (options, xmake_input) = match self {
            InputShape::XmakePackages {
                options,
                xmake_input,
                ..
            } => (options, xmake_input),
            // Listed one by one (no `_ =>`): a new shape decides whether it needs a setup phase.
            InputShape::Tree(_)
            | InputShape::LocalTree(_)
            | InputShape::File { .. }
            | InputShape::CargoVendor { .. }
            | InputShape::Wheelhouse { .. }
            | InputShape::Output { .. } => return None,
        };
        let mut env = vec![
            ("XMAKE_MAIN_REPO".to_owned(), format!("{inside}/repo")),
            (
                "XMAKE_GLOBALDIR".to_owned(),
                format!("{build_dir}/{XMAKE_GLOBAL_DIR}"),
            ),
            ("XMAKE_STATS".to_owned(), "false".to_owned()),
            ("XMAKE_ROOT".to_owned(), "y".to_owned()),
            ("xmake_options".to_owned(), options.join(" ")),
            (
                "PATH".to_owned(),
                format!("{}/{xmake_input}/bin:{path}", crate::INPUTS_DIR),
            ),
        ];
        for (key, dir) in XMAKE_SCRATCH_DIRS {
            env.push((key.to_owned(), format!("{build_dir}/{dir}")));
        }
        Some(XmakeSetup {
            env,
            conf: xmake_global_conf(&format!("{inside}/archives")),
        })
    }

    /// Lines for the head of the build log about where this input's contents come from (for xmake packages: the
    /// store or the host system, one line per package); empty for the other shapes, whose origin the lockfile says.
    pub(crate) fn log_notes(&self) -> Vec<String> {
        let (archives, host_packages) = match self {
            InputShape::XmakePackages {
                archives,
                host_packages,
                ..
            } => (archives, host_packages),
            // Listed one by one (no `_ =>`): a new shape decides whether its origin needs a note.
            InputShape::Tree(_)
            | InputShape::LocalTree(_)
            | InputShape::File { .. }
            | InputShape::CargoVendor { .. }
            | InputShape::Wheelhouse { .. }
            | InputShape::Output { .. } => return Vec::new(),
        };
        let mut notes = Vec::new();
        let mut sorted: Vec<&XmakeArchiveInput> = archives.iter().collect();
        sorted.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
        for archive in sorted {
            notes.push(format!(
                "xmake package {} {} from the store ({})",
                archive.package, archive.version, archive.file_name
            ));
        }
        let mut hosts: Vec<&(String, String, String)> = host_packages.iter().collect();
        hosts.sort();
        for (package, version, origin) in hosts {
            let version = if version.is_empty() {
                "(version unknown)"
            } else {
                version
            };
            notes.push(format!(
                "xmake package {package} {version} from the host system ({origin})"
            ));
        }
        notes
    }

    /// Every store address this input needs (for the "missing inputs" check before a build starts).
    pub fn addresses(&self) -> Vec<Digest> {
        match self {
            InputShape::Tree(digest)
            | InputShape::LocalTree(digest)
            | InputShape::File { digest, .. } => vec![*digest],
            InputShape::CargoVendor { crates } => crates.iter().map(|krate| krate.tree).collect(),
            InputShape::Wheelhouse { wheels, .. } => {
                wheels.iter().map(|(_, digest)| *digest).collect()
            }
            InputShape::XmakePackages { repo, archives, .. } => std::iter::once(*repo)
                .chain(archives.iter().map(|archive| archive.digest))
                .collect(),
            InputShape::Output { output, .. } => output.iter().copied().collect(),
        }
    }

    /// The tree to bind: the input itself, or one assembled from directory nodes (no file bytes copied).
    pub(crate) fn tree(&self, store: &Store, input: &str) -> Result<Digest> {
        match self {
            InputShape::Tree(digest) | InputShape::LocalTree(digest) => Ok(*digest),
            InputShape::File { digest, file_name } => {
                let size = store
                    .open_blob(digest)
                    .map_err(|source| Error::store(format!("input `{input}`"), source))?
                    .map(|blob| blob.size)
                    .ok_or_else(|| Error::MissingInputs {
                        recipe: input.to_owned(),
                        missing: vec![(input.to_owned(), *digest)],
                    })?;
                let mut directory = Directory::new();
                directory.insert(
                    component(input, file_name)?,
                    Node::File {
                        digest: *digest,
                        size,
                        executable: false,
                    },
                );
                store
                    .put_directory(&directory)
                    .map_err(|source| Error::store(format!("input `{input}`"), source))
            }
            InputShape::CargoVendor { crates } => {
                let mut directory = Directory::new();
                for krate in crates {
                    let size = store
                        .get_directory(&krate.tree)
                        .map_err(|source| {
                            Error::store(format!("crate `{}`", krate.dir_name), source)
                        })?
                        .ok_or_else(|| Error::MissingInputs {
                            recipe: input.to_owned(),
                            missing: vec![(format!("crate {}", krate.dir_name), krate.tree)],
                        })?
                        .total_size();
                    directory.insert(
                        component(input, &krate.dir_name)?,
                        Node::Directory {
                            digest: krate.tree,
                            size,
                        },
                    );
                }
                store
                    .put_directory(&directory)
                    .map_err(|source| Error::store(format!("input `{input}`"), source))
            }
            InputShape::Wheelhouse {
                wheels,
                requirements,
            } => {
                let mut directory = Directory::new();
                for (file_name, digest) in wheels {
                    let size = store
                        .open_blob(digest)
                        .map_err(|source| Error::store(format!("wheel `{file_name}`"), source))?
                        .map(|blob| blob.size)
                        .ok_or_else(|| Error::MissingInputs {
                            recipe: input.to_owned(),
                            missing: vec![(format!("wheel {file_name}"), *digest)],
                        })?;
                    directory.insert(
                        component(input, file_name)?,
                        Node::File {
                            digest: *digest,
                            size,
                            executable: false,
                        },
                    );
                }
                let digest = store
                    .add_bytes(requirements.as_bytes())
                    .map_err(|source| Error::store(format!("input `{input}`"), source))?;
                directory.insert(
                    component(input, "requirements.txt")?,
                    Node::File {
                        digest,
                        size: requirements.len() as u64,
                        executable: false,
                    },
                );
                store
                    .put_directory(&directory)
                    .map_err(|source| Error::store(format!("input `{input}`"), source))
            }
            InputShape::XmakePackages { repo, archives, .. } => {
                let repo_size = store
                    .get_directory(repo)
                    .map_err(|source| Error::store(format!("input `{input}`"), source))?
                    .ok_or_else(|| Error::MissingInputs {
                        recipe: input.to_owned(),
                        missing: vec![(format!("{input} (xmake-repo)"), *repo)],
                    })?
                    .total_size();
                let mut directory = Directory::new();
                let mut total = 0;
                for archive in archives {
                    let size = store
                        .open_blob(&archive.digest)
                        .map_err(|source| {
                            Error::store(format!("xmake package `{}`", archive.package), source)
                        })?
                        .map(|blob| blob.size)
                        .ok_or_else(|| Error::MissingInputs {
                            recipe: input.to_owned(),
                            missing: vec![(
                                format!("xmake package {}", archive.package),
                                archive.digest,
                            )],
                        })?;
                    total += size;
                    directory.insert(
                        component(input, &archive.file_name)?,
                        Node::File {
                            digest: archive.digest,
                            size,
                            executable: false,
                        },
                    );
                }
                let put = |directory: &Directory| {
                    store
                        .put_directory(directory)
                        .map_err(|source| Error::store(format!("input `{input}`"), source))
                };
                let archives_tree = put(&directory)?;
                let mut root = Directory::new();
                root.insert(
                    component(input, "repo")?,
                    Node::Directory {
                        digest: *repo,
                        size: repo_size,
                    },
                );
                root.insert(
                    component(input, "archives")?,
                    Node::Directory {
                        digest: archives_tree,
                        size: total,
                    },
                );
                put(&root)
            }
            InputShape::Output { recipe, output, .. } => {
                output.ok_or_else(|| Error::DependencyNotBuilt {
                    recipe: recipe.clone(),
                    input: input.to_owned(),
                })
            }
        }
    }

    /// The cargo config a vendor input needs, pointing at `vendor_dir` inside the sandbox.
    pub(crate) fn cargo_config(&self, vendor_dir: &str) -> Option<String> {
        let crates = match self {
            InputShape::CargoVendor { crates } => crates,
            // Listed one by one (no `_ =>`): a new shape decides whether it needs a cargo config.
            InputShape::Tree(_)
            | InputShape::LocalTree(_)
            | InputShape::File { .. }
            | InputShape::Wheelhouse { .. }
            | InputShape::XmakePackages { .. }
            | InputShape::Output { .. } => return None,
        };
        let mut config = format!(
            "# Written by hstore: every crate comes from the vendored tree in the store.\n\
             [source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
             [source.vendored-sources]\ndirectory = \"{vendor_dir}\"\n\n\
             [net]\noffline = true\n"
        );
        let mut git: Vec<&GitReplacement> = crates
            .iter()
            .filter_map(|krate| krate.git.as_ref())
            .collect();
        git.sort();
        git.dedup();
        for replacement in git {
            let _ = write!(
                config,
                "\n[source.{}]\ngit = {}\n",
                toml_string(&replacement.source_id),
                toml_string(&replacement.url)
            );
            if let Some((kind, value)) = &replacement.reference {
                let _ = writeln!(config, "{kind} = {}", toml_string(value));
            }
            config.push_str("replace-with = \"vendored-sources\"\n");
        }
        let mut registries: Vec<&str> = crates
            .iter()
            .filter_map(|krate| krate.registry.as_deref())
            .collect();
        registries.sort_unstable();
        registries.dedup();
        for source_id in registries {
            // Cargo matches a replaced source by URL: `sparse+URL` stays whole, `registry+URL` (a git index) is URL.
            let url = source_id.strip_prefix("registry+").unwrap_or(source_id);
            let _ = write!(
                config,
                "\n[source.{}]\nregistry = {}\nreplace-with = \"vendored-sources\"\n",
                toml_string(source_id),
                toml_string(url)
            );
        }
        Some(config)
    }
}

fn component(input: &str, name: &str) -> Result<PathComponent> {
    PathComponent::try_from(name).map_err(|source| Error::InvalidInputName {
        input: input.to_owned(),
        name: name.to_owned(),
        reason: source.reason,
    })
}

/// The phase-2 `requirements.txt` for a wheel set: one `name==version --hash=sha256:…` line per wheel, sorted, so
/// `pip install --no-index --find-links DIR --require-hashes -r DIR/requirements.txt` installs exactly the set.
pub fn hashed_requirements(wheels: &[(String, String, String)]) -> String {
    let mut lines: Vec<String> = wheels
        .iter()
        .map(|(name, version, sha256)| format!("{name}=={version} --hash=sha256:{sha256}"))
        .collect();
    lines.sort();
    lines.dedup();
    let mut text =
        String::from("# Written by hstore: the locked wheels of this target, pinned by hash.\n");
    for line in lines {
        let _ = writeln!(text, "{line}");
    }
    text
}

/// A TOML basic string (quotes and backslashes escaped).
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for ch in text.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(dir_name: &str, git: Option<GitReplacement>, registry: Option<&str>) -> VendoredCrate {
        VendoredCrate {
            dir_name: dir_name.to_owned(),
            tree: Digest::of_bytes(dir_name.as_bytes()),
            git,
            registry: registry.map(str::to_owned),
        }
    }

    #[test]
    fn cargo_config_replaces_crates_io_git_and_other_registries() {
        let shape = InputShape::CargoVendor {
            crates: vec![
                krate("serde-1.0.0", None, None),
                krate(
                    "tool-0.1.0",
                    Some(GitReplacement {
                        source_id: "git+https://example.org/tool?branch=main".into(),
                        url: "https://example.org/tool".into(),
                        reference: Some(("branch".into(), "main".into())),
                    }),
                    None,
                ),
                krate(
                    "inhouse-2.0.0",
                    None,
                    Some("sparse+https://crates.corp/index/"),
                ),
                krate("old-1.0.0", None, Some("registry+https://git.corp/index")),
            ],
        };
        let config = shape.cargo_config("/src/crates").expect("a vendor input");
        for stanza in [
            "[source.crates-io]\nreplace-with = \"vendored-sources\"",
            "[source.vendored-sources]\ndirectory = \"/src/crates\"",
            "[source.\"git+https://example.org/tool?branch=main\"]\ngit = \"https://example.org/tool\"\nbranch = \"main\"\nreplace-with = \"vendored-sources\"",
            "[source.\"sparse+https://crates.corp/index/\"]\nregistry = \"sparse+https://crates.corp/index/\"\nreplace-with = \"vendored-sources\"",
            "[source.\"registry+https://git.corp/index\"]\nregistry = \"https://git.corp/index\"\nreplace-with = \"vendored-sources\"",
        ] {
            assert!(config.contains(stanza), "missing {stanza:?} in:\n{config}");
        }
        assert!(
            InputShape::Tree(Digest::of_bytes(b"x"))
                .cargo_config("/src/x")
                .is_none()
        );
    }

    #[test]
    fn the_registry_of_a_crate_is_part_of_the_key() {
        let from = |registry| InputShape::CargoVendor {
            crates: vec![krate("inhouse-2.0.0", None, registry)],
        };
        assert_ne!(
            from(None).key_text(),
            from(Some("sparse+https://crates.corp/index/")).key_text()
        );
    }

    fn xmake_shape(options: &[&str]) -> InputShape {
        InputShape::XmakePackages {
            repo: Digest::of_bytes(b"repo"),
            archives: vec![XmakeArchiveInput {
                file_name: "greet-2.1.0.tar.gz".into(),
                package: "greet".into(),
                version: "2.1.0".into(),
                search_names: vec!["greet-2.1.0.tar.gz".into(), "v2.1.0.tar.gz".into()],
                digest: Digest::of_bytes(b"greet"),
            }],
            host_packages: vec![("libm".into(), String::new(), "system".into())],
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            xmake_input: "xmake".into(),
        }
    }

    #[test]
    fn xmake_packages_set_up_xmake_offline_and_key_their_options() {
        let shape = xmake_shape(&["--shout=y"]);
        let setup = shape
            .xmake_setup("/src/xpkgs", "/build", "/usr/bin:/bin")
            .expect("an xmake input");
        let env: std::collections::BTreeMap<_, _> = setup.env.into_iter().collect();
        assert_eq!(env["XMAKE_MAIN_REPO"], "/src/xpkgs/repo");
        assert_eq!(env["XMAKE_GLOBALDIR"], "/build/.xmake-global");
        assert_eq!(env["XMAKE_PKG_INSTALLDIR"], "/build/.xmake-packages");
        assert_eq!(env["XMAKE_STATS"], "false");
        assert_eq!(env["XMAKE_ROOT"], "y");
        assert_eq!(env["xmake_options"], "--shout=y");
        assert_eq!(env["PATH"], "/src/xmake/bin:/usr/bin:/bin");
        assert_eq!(
            setup.conf,
            "{\n    network = \"private\",\n    pkg_searchdirs = \"/src/xpkgs/archives\"\n}\n"
        );
        let notes = shape.log_notes();
        assert!(
            notes.contains(
                &"xmake package greet 2.1.0 from the store (greet-2.1.0.tar.gz)".to_owned()
            ),
            "{notes:?}"
        );
        assert!(
            notes.contains(
                &"xmake package libm (version unknown) from the host system (system)".to_owned()
            ),
            "{notes:?}"
        );
        assert_ne!(shape.key_text(), xmake_shape(&["--shout=n"]).key_text());
        assert_ne!(
            xmake_shape(&["a b"]).key_text(),
            xmake_shape(&["a", "b"]).key_text()
        );
        assert!(
            InputShape::Tree(Digest::of_bytes(b"x"))
                .xmake_setup("/src/x", "/build", "/bin")
                .is_none()
        );
    }

    #[test]
    fn requirements_txt_has_one_hashed_line_per_wheel() {
        let text = hashed_requirements(&[
            ("b".into(), "2.0".into(), "22".into()),
            ("a".into(), "1.0".into(), "11".into()),
            ("a".into(), "1.0".into(), "11".into()),
        ]);
        assert!(
            text.ends_with("a==1.0 --hash=sha256:11\nb==2.0 --hash=sha256:22\n"),
            "{text}"
        );
    }
}
