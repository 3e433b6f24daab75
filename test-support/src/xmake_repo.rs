//! [`XmakeRepoFixture`]: a small xmake-repo (a real git repository) with three packages whose archives the test
//! serves from the loopback [`crate::TestRegistry`], and a C++ project that requires them.
//!
//! The packages cover the shapes an xmake package source must handle:
//! - `hdronly` 1.0.0: header-only (`set_kind("library", {headeronly = true})`), installed by copying headers;
//! - `greet` 2.1.0: a static library built by xmake with a config (`shout`), which the project sets;
//! - `fancy` 0.3.0: header-only, depending on `hdronly` (so the project pulls `hdronly` in transitively);
//! - `libm`: no archive, only an `on_fetch` script finding the C library's `libm` on the host, so xmake takes it
//!   from the host system.
//!
//! Archives are deterministic `.tar.gz` files (fixed mtime, owner, order), so their sha256 — which the package
//! definitions pin with `add_versions`, as xmake-repo does — is the same on every machine; the URLs they declare are
//! `{base_url}/xmake-archives/<name>-<version>.tar.gz`. The project prints `HELLO 43`: `greet()` with `shout` on, and
//! `fancy_answer()` = `hdronly_answer()` + 1.

use std::path::Path;

use crate::{GitRepo, deterministic_tar_gz, sha256_hex};

/// One archive the fixture repository pins.
#[derive(Clone, Debug)]
pub struct FixtureArchive {
    /// The package name.
    pub package: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The URL path to serve it at (`/xmake-archives/<name>-<version>.tar.gz`).
    pub url_path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their sha256, as the package definition pins it.
    pub sha256: String,
}

/// The xmake-repo, its archives and the project.
#[derive(Debug)]
pub struct XmakeRepoFixture {
    /// The xmake-repo working tree, committed on `main`.
    pub repo: GitRepo,
    /// The archives, in the order `hdronly`, `greet`, `fancy`.
    pub archives: Vec<FixtureArchive>,
    /// The project's files (path, contents): `xmake.lua` and `main.cpp`.
    pub project: Vec<(&'static str, String)>,
}

/// What the fixture project prints when it runs.
pub const PROJECT_OUTPUT: &str = "HELLO 43\n";

fn archive(package: &'static str, version: &'static str, files: &[(&str, &str)]) -> FixtureArchive {
    let root = format!("{package}-{version}");
    let entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(path, contents)| (format!("{root}/{path}"), contents.as_bytes().to_vec()))
        .collect();
    let bytes = deterministic_tar_gz(&entries);
    FixtureArchive {
        package,
        version,
        url_path: format!("/xmake-archives/{root}.tar.gz"),
        sha256: sha256_hex(&bytes),
        bytes,
    }
}

impl XmakeRepoFixture {
    /// Creates the xmake-repo in `dir` (committed) with package URLs under `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(dir: &Path, base_url: &str) -> Self {
        let archives = vec![
            archive(
                "hdronly",
                "1.0.0",
                &[(
                    "include/hdronly.h",
                    "#pragma once\ninline int hdronly_answer() { return 42; }\n",
                )],
            ),
            archive(
                "greet",
                "2.1.0",
                &[
                    (
                        "include/greet.h",
                        "#pragma once\nconst char *greet(void);\n",
                    ),
                    (
                        "src/greet.c",
                        "#include \"greet.h\"\n#ifdef GREET_SHOUT\nconst char *greet(void) { return \"HELLO\"; }\n\
                         #else\nconst char *greet(void) { return \"hello\"; }\n#endif\n",
                    ),
                    (
                        "xmake.lua",
                        "option(\"shout\", {default = false})\ntarget(\"greet\")\n    set_kind(\"static\")\n    \
                         add_files(\"src/greet.c\")\n    add_includedirs(\"include\", {public = true})\n    \
                         add_headerfiles(\"include/greet.h\")\n    if has_config(\"shout\") then add_defines(\"GREET_SHOUT\") end\n",
                    ),
                ],
            ),
            archive(
                "fancy",
                "0.3.0",
                &[(
                    "include/fancy.h",
                    "#pragma once\n#include <hdronly.h>\ninline int fancy_answer() { return hdronly_answer() + 1; }\n",
                )],
            ),
        ];
        let url = |name: &str| format!("{base_url}/xmake-archives/{name}-$(version).tar.gz");
        let repo = GitRepo::init(dir);
        repo.write(
            "packages/h/hdronly/xmake.lua",
            format!(
                "package(\"hdronly\")\n    set_kind(\"library\", {{headeronly = true}})\n    set_urls(\"{}\")\n    \
                 add_versions(\"1.0.0\", \"{}\")\n    on_install(function (package)\n        \
                 os.cp(\"include\", package:installdir())\n    end)\npackage_end()\n",
                url("hdronly"),
                archives[0].sha256
            ),
        );
        repo.write(
            "packages/g/greet/xmake.lua",
            format!(
                "package(\"greet\")\n    set_urls(\"{}\")\n    add_versions(\"2.1.0\", \"{}\")\n    \
                 add_configs(\"shout\", {{description = \"Shout.\", default = false, type = \"boolean\"}})\n    \
                 on_install(function (package)\n        \
                 import(\"package.tools.xmake\").install(package, {{shout = package:config(\"shout\")}})\n    \
                 end)\npackage_end()\n",
                url("greet"),
                archives[1].sha256
            ),
        );
        repo.write(
            "packages/f/fancy/xmake.lua",
            format!(
                "package(\"fancy\")\n    set_kind(\"library\", {{headeronly = true}})\n    set_urls(\"{}\")\n    \
                 add_versions(\"0.3.0\", \"{}\")\n    add_deps(\"hdronly\")\n    on_install(function (package)\n        \
                 os.cp(\"include\", package:installdir())\n    end)\npackage_end()\n",
                url("fancy"),
                archives[2].sha256
            ),
        );
        repo.write(
            "packages/l/libm/xmake.lua",
            "package(\"libm\")\n    set_kind(\"library\")\n    on_fetch(function (package, opt)\n        \
             if os.isfile(\"/usr/include/math.h\") then\n            return {links = \"m\"}\n        end\n    \
             end)\npackage_end()\n",
        );
        repo.commit("three packages and a host one");
        let project = vec![
            (
                "xmake.lua",
                "add_requires(\"greet\", {configs = {shout = true}})\nadd_requires(\"fancy\", \"libm\")\n\
                 target(\"app\")\n    set_kind(\"binary\")\n    add_files(\"main.cpp\")\n    \
                 add_packages(\"greet\", \"fancy\", \"libm\")\n"
                    .to_owned(),
            ),
            (
                "main.cpp",
                "#include <cstdio>\nextern \"C\" {\n#include <greet.h>\n}\n#include <fancy.h>\n\
                 int main() { std::printf(\"%s %d\\n\", greet(), fancy_answer()); return 0; }\n"
                    .to_owned(),
            ),
        ];
        XmakeRepoFixture {
            repo,
            archives,
            project,
        }
    }
}
