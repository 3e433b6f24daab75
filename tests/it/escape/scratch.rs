//! Issue 20, attack 8 and a low of item 8: what a build leaves in `/build` and `$out` cannot break hstore's clean-up.
//! A tree 20,000 directories deep overflowed hstore's stack while it removed the scratch directory, leaving the tree
//! in the store's `tmp/`, where every later `store gc` overflowed again; a `chmod 000` directory left in `/build`
//! failed a successful build when hstore ran unprivileged. Each case runs as the caller (root in CI) and as
//! `nobody`, and ends with a `store gc` that must succeed and leave `tmp/` empty.

use std::path::PathBuf;

use super::{As, Attack, assert_success, both};

/// Shell that builds a chain of about `levels` nested directories named `d` at `./c`, with short relative paths only
/// (the whole path is far longer than `PATH_MAX`): a 1,000-deep chain is made with one `mkdir -p`, and each further
/// thousand is a fresh chain into whose bottom the tree so far is moved.
fn deep_chain_script(levels: u32) -> String {
    format!(
        r#"p=d; i=1; while [ $i -lt 1000 ]; do p="$p/d"; i=$((i + 1)); done
mkdir -p "c/$p"
n=1; while [ $n -lt {chains} ]; do mkdir -p "n/$p" && mv c "n/$p/" && mv n c; n=$((n + 1)); done
: > "c/$p/bottom""#,
        chains = levels / 1000
    )
}

impl Attack {
    fn tmp(&self) -> PathBuf {
        self.env.store().join("tmp")
    }

    /// The entries of the store's `tmp/`.
    fn tmp_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.tmp())
            .expect("list the store's tmp/")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// `store gc` succeeds and leaves `tmp/` empty.
    #[track_caller]
    fn assert_gc_cleans_tmp(&self) {
        assert_success(&self.run(&["store", "gc"]), "store gc");
        assert_eq!(self.tmp_entries(), Vec::<String>::new(), "tmp/ after gc");
    }
}

/// Whether the build failed cleanly: an exit status of 1 or 2 with hstore's own message, not a signal (a stack
/// overflow aborts with SIGABRT/SIGSEGV).
#[track_caller]
fn assert_failed_cleanly(output: &std::process::Output, who: As) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "as {who:?}: hstore did not fail cleanly ({}):\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("overflow"), "as {who:?}:\n{stderr}");
    stderr
}

// See: issue 20, attack 8 (20,000 nested directories in /build or $out).
#[test]
fn a_tree_20000_directories_deep_in_build_is_removed_and_gc_works_afterwards() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            &format!(
                "cd /build\n{}\necho built > \"$out/report\"",
                deep_chain_script(20_000)
            ),
        );
        assert_success(&attack.build("attack", &[]), "the deep-/build build");
        assert_eq!(attack.output_file("attack", "report"), "built\n");
        assert_eq!(attack.tmp_entries(), Vec::<String>::new(), "as {who:?}");

        // A failed build keeps its scratch directory for inspection; gc removes it, deep as it is (gc comes last:
        // it also drops the unrooted input).
        attack.recipe(
            "attack",
            "",
            &format!("cd /build\n{}\nexit 1", deep_chain_script(20_000)),
        );
        // Run directly, not through `Attack::run`: its check that nobody owns the store walks by path, and the kept
        // tree is far deeper than a path can reach.
        let failed = attack
            .command(&["build", "attack", "--target", "cpu"])
            .output()
            .expect("run the failing build");
        assert_failed_cleanly(&failed, who);
        assert_eq!(
            attack.tmp_entries().len(),
            1,
            "as {who:?}: the kept scratch"
        );
        attack.assert_gc_cleans_tmp();
    });
}

// See: issue 20, attack 8.
#[test]
fn a_tree_20000_directories_deep_in_out_fails_the_build_cleanly_and_gc_works_afterwards() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            &format!("cd \"$out\"\n{}", deep_chain_script(20_000)),
        );
        let output = attack.build("attack", &[]);
        let stderr = assert_failed_cleanly(&output, who);
        // The error names what was too deep, and stays readable (not a 40,000-byte path).
        assert!(stderr.contains("too deep"), "as {who:?}:\n{stderr}");
        assert!(
            stderr.len() < 8192,
            "as {who:?}: {} bytes of error",
            stderr.len()
        );
        assert_eq!(attack.tmp_entries(), Vec::<String>::new(), "as {who:?}");
        attack.assert_gc_cleans_tmp();
    });
}

// See: issue 20, item 8 (a `chmod 000` dir left in /build fails a successful build, as `nobody`).
#[test]
fn unreadable_directories_left_in_build_and_out_do_not_fail_a_successful_build() {
    both(|who| {
        let attack = Attack::new(who);
        attack.recipe(
            "attack",
            "",
            r#"mkdir -p /build/locked/inner /build/read-only/inner "$out/sealed/inner"
echo x > /build/locked/inner/file
echo x > /build/read-only/inner/file
echo sealed > "$out/sealed/inner/file"
chmod 000 /build/locked/inner /build/locked
chmod 555 /build/read-only/inner
chmod 444 /build/read-only
chmod 000 "$out/sealed/inner" "$out/sealed"
echo built > "$out/report""#,
        );
        assert_success(&attack.build("attack", &[]), "the build leaving 000 dirs");
        assert_eq!(attack.output_file("attack", "report"), "built\n");
        // The stored output keeps the content; the unreadable directory was made readable to store it.
        assert_eq!(
            attack.output_file("attack", "sealed/inner/file"),
            "sealed\n"
        );
        assert_eq!(attack.tmp_entries(), Vec::<String>::new(), "as {who:?}");
        attack.assert_gc_cleans_tmp();
    });
}
