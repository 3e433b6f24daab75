//! Tests of recipe parsing, validation, variants and the graph checks, on recipe text written inline.
use super::*;

const EXAMPLE: &str = r#"
[recipe]
name = "infinilm-svc"

[sources.svc]
git = "https://github.com/Ceng23333/InfiniLM-SVC.git"
ref = "main"

[sources.crates]
cargo_lock = "svc:rust/Cargo.lock"

[sources.tool]
url = "https://example.org/tool-1.0.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
unpack = true

[sources.self]
path = ".."

[targets.cpu]
[targets.cuda]
host_paths = ["/usr/local/cuda"]
host_tools = ["nvcc --version"]
env = { CUDA_HOME = "/usr/local/cuda" }

[build]
script = "echo hi"
"#;

#[test]
fn parses_the_documented_example() {
    let recipe = Recipe::parse(EXAMPLE, Path::new("recipes/x.toml")).unwrap();
    assert_eq!(recipe.name, "infinilm-svc");
    assert_eq!(recipe.sources.len(), 4);
    assert!(
        matches!(&recipe.sources["svc"], SourceSpec::Git { submodules: true, reference, .. } if reference == "main")
    );
    assert!(
        matches!(&recipe.sources["crates"], SourceSpec::CargoLock { source, path } if source == "svc" && path == "rust/Cargo.lock")
    );
    assert_eq!(
        recipe.targets["cuda"].host_paths,
        vec![PathBuf::from("/usr/local/cuda")]
    );
    assert_eq!(recipe.build.unwrap().script, "echo hi");
}

#[test]
fn every_kind_is_listed_once_and_classified_from_its_key() {
    let mut names: Vec<&str> = SourceKind::ALL.map(SourceKind::name).to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SourceKind::ALL.len());
    let recipe = Recipe::parse(EXAMPLE, Path::new("r.toml")).unwrap();
    let kinds: Vec<SourceKind> = recipe.sources.values().map(SourceSpec::kind).collect();
    assert_eq!(
        kinds,
        [
            SourceKind::CargoLock,
            SourceKind::Path,
            SourceKind::Git,
            SourceKind::Url
        ]
    );
    assert_eq!(recipe.sources["crates"].reads(), ["svc"]);
    assert!(recipe.sources["svc"].reads().is_empty());
}

// See: issue 23 ("every `InvalidSource` gets the same list of kinds as its hint").
#[test]
fn an_invalid_source_hint_fits_the_failure() {
    use hstore_store::Hint;
    let hint_of = |text: &str| {
        let error = Recipe::parse(text, Path::new("r.toml")).unwrap_err();
        assert!(matches!(error, Error::InvalidSource { .. }), "{error}");
        (error.to_string(), error.hint().unwrap_or_default())
    };
    let (error, hint) = hint_of("[recipe]\nname='a'\n[sources.t]\nurl='http://x/y'\n");
    assert!(error.contains("without `sha256`"), "{error}");
    assert!(
        hint.starts_with("a `url` source is `url = URL` + `sha256`"),
        "{hint}"
    );
    assert!(!hint.contains("git"), "{hint}");

    let (error, hint) = hint_of("[recipe]\nname='a'\n[sources.t]\nexclude=['x']\n");
    assert!(
        error.contains("names no kind (expected one of `git`, `cargo_lock`"),
        "{error}"
    );
    for kind in SourceKind::ALL {
        assert!(hint.contains(kind.keys()), "{kind} missing from {hint}");
    }

    let (error, _) = hint_of("[recipe]\nname='a'\n[sources.t]\npath='.'\nsha256='00'\n");
    assert!(
        error.contains("sets `sha256`, which a `path` source does not take"),
        "{error}"
    );
}

#[test]
fn rejects_mistakes_with_named_errors() {
    let typo = EXAMPLE.replace("ref = \"main\"", "rev = \"main\"");
    let error = Recipe::parse(&typo, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("r.toml") && error.contains("rev"), "{error}");

    let unpinned = "[recipe]\nname='a'\n[sources.t]\nurl='http://x/y'\n";
    let error = Recipe::parse(unpinned, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("without `sha256`"), "{error}");

    let two = "[recipe]\nname='a'\n[sources.t]\nurl='http://x/y'\npath='.'\n";
    assert!(
        Recipe::parse(two, Path::new("r.toml"))
            .unwrap_err()
            .to_string()
            .contains("several kinds")
    );

    let dangling = "[recipe]\nname='a'\n[sources.c]\ncargo_lock='nope:Cargo.lock'\n";
    assert!(
        Recipe::parse(dangling, Path::new("r.toml"))
            .unwrap_err()
            .to_string()
            .contains("`nope`")
    );
}

#[test]
fn a_long_name_is_told_its_length_not_its_letters() {
    let long = "a".repeat(65);
    let text = format!("[recipe]\nname = \"{long}\"\n[build]\nscript = \"true\"\n");
    let error = Recipe::parse(&text, Path::new("r.toml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid recipe `r.toml`: name `{long}` is 65 characters long; at most 64 are allowed"
        )
    );
    let error = Recipe::parse(
        "[recipe]\nname = \"Big\"\n[build]\nscript = \"true\"\n",
        Path::new("r.toml"),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("must be lowercase letters"),
        "{error}"
    );
    assert!(is_valid_name(&"a".repeat(64)));
}

#[test]
fn a_variant_takes_its_base_targets_and_build_with_its_own_sources() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "lm.toml",
        "[recipe]\nname = \"lm\"\n[sources.lm]\ngit = \"https://example.org/lm.git\"\nref = \"main\"\n\
         [sources.deps]\nrequirements = [\"wheel\"]\n\
         [targets.cpu]\npython = { version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }\n\
         [build]\nscript = \"make\"\n",
    );
    write(
        "lm-216.toml",
        "[recipe]\nname = \"lm-216\"\nextends = \"lm\"\n\
         [sources.lm]\ngit = \"https://example.org/lm.git\"\nref = \"issue/216\"\n\
         [sources.extra]\nrequirements = [\"setuptools\"]\n",
    );
    let recipes = Recipe::load_dir(dir.path()).unwrap();
    let (base, variant) = (&recipes[0], &recipes[1]);
    assert_eq!(
        (base.name.as_str(), variant.name.as_str()),
        ("lm", "lm-216")
    );
    assert_eq!(variant.extends.as_deref(), Some("lm"));
    assert_eq!(variant.targets, base.targets);
    assert_eq!(variant.build, base.build);
    assert_eq!(variant.sources["deps"], base.sources["deps"]);
    assert!(
        matches!(&variant.sources["lm"], SourceSpec::Git { reference, .. } if reference == "issue/216")
    );
    // The variant's own requirements source locks wheels for the base's targets.
    assert!(
        matches!(&variant.sources["extra"], SourceSpec::Requirements { targets, .. } if targets.contains_key("cpu"))
    );

    write(
        "lm-x.toml",
        "[recipe]\nname = \"lm-x\"\nextends = \"lm-216\"\n",
    );
    let error = Recipe::load_dir(dir.path()).unwrap_err();
    assert!(
        error.to_string().contains("`lm-216` is itself a variant"),
        "{error}"
    );
    write(
        "lm-x.toml",
        "[recipe]\nname = \"lm-x\"\nextends = \"nope\"\n",
    );
    let error = Recipe::load_dir(dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no recipe is named `nope`; recipes: lm"),
        "{error}"
    );
    write(
        "lm-x.toml",
        "[recipe]\nname = \"lm-x\"\nextends = \"lm\"\n[build]\nscript = \"true\"\n",
    );
    let error = Recipe::load_dir(dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("takes its `[targets.*]` and `[build]`"),
        "{error}"
    );
}

fn recipe(name: &str, targets: &[&str], sources: &str) -> Recipe {
    let targets = targets
        .iter()
        .map(|t| format!("[targets.{t}]"))
        .collect::<Vec<_>>()
        .join("\n");
    Recipe::parse(
        &format!("[recipe]\nname = \"{name}\"\n{sources}\n{targets}"),
        Path::new(&format!("recipes/{name}.toml")),
    )
    .unwrap()
}

#[test]
fn the_recipe_graph_is_checked_for_unknown_names_missing_targets_and_cycles() {
    let dir = Path::new("recipes");
    let xmake = recipe("xmake", &["cpu"], "");
    let core = recipe(
        "core",
        &["cpu", "cuda"],
        "[sources.xmake]\nrecipe = \"xmake\"\ntarget = \"cpu\"",
    );
    let app = recipe("app", &["cuda"], "[sources.core]\nrecipe = \"core\"");
    check_graph(&[xmake.clone(), core.clone(), app.clone()], dir).unwrap();
    assert_eq!(
        core.sources["xmake"],
        SourceSpec::Recipe {
            recipe: "xmake".into(),
            target: Some("cpu".into()),
            runtime: false,
        }
    );

    let error = check_graph(&[core.clone(), app.clone()], dir)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("core.toml") && error.contains("`xmake`"),
        "{error}"
    );

    let cpu_app = recipe("app", &["cpu", "rocm"], "[sources.core]\nrecipe = \"core\"");
    let error = check_graph(&[xmake.clone(), core.clone(), cpu_app], dir)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("target `rocm`") && error.contains("core.toml"),
        "{error}"
    );

    let looping = recipe(
        "xmake",
        &["cpu"],
        "[sources.app]\nrecipe = \"app\"\ntarget = \"cuda\"",
    );
    let error = check_graph(&[looping, core, app], dir).unwrap_err();
    let Error::Cycle { chain, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(
        chain.join(" → "),
        "app (cuda) [source `core`] → core (cuda) [source `xmake`] → xmake (cpu) [source `app`] → app (cuda)"
    );
}

#[test]
fn rust_toolchains_must_be_pinned_releases() {
    let parse = |value: &str| {
        Recipe::parse(
            &format!("[recipe]\nname = \"a\"\n[sources.rust]\nrust_toolchain = \"{value}\"\n"),
            Path::new("a.toml"),
        )
    };
    let recipe = parse("1.95.0").unwrap();
    assert_eq!(
        recipe.sources["rust"],
        SourceSpec::RustToolchain {
            version: "1.95.0".into(),
            host: default_rust_host()
        }
    );
    for bad in ["stable", "nightly", "../../etc", "1.95.0 ", "-x"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

/// The shape of `recipes/infinicore.toml` (issue 11): an `xmake_requires` source and per-target
/// `xmake_options`.
const XMAKE_RECIPE: &str = r#"
[recipe]
name = "infinicore"

[sources.core]
git = "https://github.com/InfiniTensor/InfiniCore.git"
ref = "issue/951"
submodules = true

[sources.xmake]
recipe = "xmake"
target = "cpu"

[sources.xrepo]
git = "https://github.com/xmake-io/xmake-repo.git"
ref = "f535c28901a687e87c9a93f2b5085de95050bbda"

[sources.xpkgs]
xmake_requires = "core"
repo = "xrepo"
xmake = "xmake"

[targets.cpu]
xmake_options = ["--cpu=y", "--omp=y"]

[targets.cuda]
xmake_options = ["--nv-gpu=y", "--cuda_arch=sm_80", "--ccl=y"]
host_paths = ["/usr/local/cuda"]

[targets.plain]

[build]
script = "xmake f $xmake_options -y"
"#;

#[test]
fn xmake_requires_carries_every_targets_options() {
    let recipe = Recipe::parse(XMAKE_RECIPE, Path::new("infinicore.toml")).unwrap();
    assert_eq!(
        recipe.sources["xpkgs"],
        SourceSpec::XmakeRequires {
            project: "core".into(),
            repo: "xrepo".into(),
            xmake: "xmake".into(),
            targets: BTreeMap::from([
                ("cpu".into(), vec!["--cpu=y".into(), "--omp=y".into()]),
                (
                    "cuda".into(),
                    vec![
                        "--nv-gpu=y".into(),
                        "--cuda_arch=sm_80".into(),
                        "--ccl=y".into()
                    ]
                ),
                ("plain".into(), vec![]),
            ]),
        }
    );
    assert_eq!(recipe.targets["cpu"].xmake_options, ["--cpu=y", "--omp=y"]);
    // The spec round-trips through the lockfile's JSON.
    let json = serde_json::to_string(&recipe.sources["xpkgs"]).unwrap();
    assert!(
        json.starts_with(r#"{"kind":"xmake_requires","project":"core""#),
        "{json}"
    );
    let back: SourceSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, recipe.sources["xpkgs"]);
}

#[test]
fn xmake_requires_references_must_exist_and_be_of_the_right_kind() {
    let error = |from: &str, to: &str| {
        let text = XMAKE_RECIPE.replace(from, to);
        Recipe::parse(&text, Path::new("infinicore.toml"))
            .unwrap_err()
            .to_string()
    };
    let message = error("xmake_requires = \"core\"", "xmake_requires = \"nope\"");
    assert_eq!(
        message,
        "invalid recipe `infinicore.toml`: source `xpkgs` has `xmake_requires = \"nope\"`, a source this \
         recipe does not define"
    );
    let message = error("repo = \"xrepo\"", "repo = \"core2\"");
    assert!(
        message.contains("`repo = \"core2\"`, a source this recipe does not define"),
        "{message}"
    );
    let message = error("repo = \"xrepo\"", "repo = \"xmake\"");
    assert!(message.contains("which is not a `git` source"), "{message}");
    let message = error("xmake = \"xmake\"", "xmake = \"xrepo\"");
    assert!(
        message.contains("which is not a `recipe` source"),
        "{message}"
    );
    let message = error("xmake_requires = \"core\"", "xmake_requires = \"xmake\"");
    assert!(
        message.contains("not a source tree known at lock time"),
        "{message}"
    );
    let message = error("repo = \"xrepo\"\n", "");
    assert!(
        message.contains("without `repo`; name the source, e.g. `repo = \"xrepo\"`"),
        "{message}"
    );
    let message = error("xmake = \"xmake\"\n", "ref = \"main\"\nxmake = \"xmake\"\n");
    assert!(
        message.contains("sets `ref`, which a `xmake_requires` source does not take"),
        "{message}"
    );
    let hint = hstore_store::Hint::hint(
        &Recipe::parse(
            &XMAKE_RECIPE.replace("repo = \"xrepo\"", "repo = \"xmake\""),
            Path::new("r.toml"),
        )
        .unwrap_err(),
    )
    .unwrap();
    assert!(hint.contains("xmake_requires = PROJECT_SOURCE"), "{hint}");
}

#[test]
fn the_repository_recipes_load_with_the_infinilm_variant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let recipes = Recipe::load_dir(&dir).unwrap();
    let names: Vec<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cuda-libraries",
            "cuda-runtime",
            "cuda-toolkit",
            "infinicore",
            "infinilm",
            "infinilm-issue-216",
            "infinilm-svc",
            "xmake"
        ]
    );
    let named = |name: &str| {
        recipes
            .iter()
            .find(|recipe| recipe.name == name)
            .expect("loaded")
    };
    let (base, variant) = (named("infinilm"), named("infinilm-issue-216"));
    assert_eq!(variant.extends.as_deref(), Some("infinilm"));
    assert_eq!(
        (&variant.targets, &variant.build),
        (&base.targets, &base.build)
    );
    // The pinned pair (docs/stack.md): the variant's InfiniLM is issue/216-1, the base's issue/214.
    assert!(
        matches!(&variant.sources["lm"], SourceSpec::Git { reference, .. }
            if reference == "4c74f34a5c73c668920a58115d6ab6a7af737492")
    );
    assert!(
        matches!(&base.sources["lm"], SourceSpec::Git { reference, .. }
            if reference == "ee59b3f590b6d49ecfb29d094d897805e9632b6f")
    );
    let infinicore = named("infinicore");
    for target in [
        "cpu",
        "cuda",
        "metax",
        "ascend",
        "cambricon",
        "iluvatar",
        "moore",
        "hygon",
        "kunlun",
    ] {
        assert!(
            !infinicore.targets[target].xmake_options.is_empty(),
            "infinicore target `{target}` has xmake options"
        );
    }
    // The whole stack builds for `cuda` with no host SDK: InfiniCore's comes from the store, the others need none.
    for name in ["infinilm-svc", "infinicore", "infinilm"] {
        let cuda = &named(name).targets["cuda"];
        assert!(cuda.host_paths.is_empty(), "{name}: {:?}", cuda.host_paths);
        assert_eq!(cuda.base.as_deref(), Some("base"), "{name}");
    }
    // The run-time CUDA libraries are installed with InfiniCore; the compiler is not.
    assert!(matches!(&infinicore.sources["cudart"],
        SourceSpec::Recipe { recipe, runtime: true, .. } if recipe == "cuda-runtime"));
    assert!(matches!(&infinicore.sources["cuda"],
        SourceSpec::Recipe { recipe, runtime: false, .. } if recipe == "cuda-libraries"));
    // xmake from git: each of its sources a pinned commit, none a branch that could move.
    for (name, source) in &named("xmake").sources {
        if let SourceSpec::Git { reference, .. } = source {
            assert!(
                reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit()),
                "xmake.{name}: {reference}"
            );
        }
    }
}

// See: issue 21, item 2 (sources for some targets only).
#[test]
fn a_source_limited_to_some_targets_is_theirs_alone() {
    use hstore_store::Hint;
    let text = "[recipe]\nname = \"core\"\n[sources.code]\npath = \".\"\n\
                [sources.cuda]\nrecipe = \"cuda-toolkit\"\ntargets = [\"cuda\"]\n\
                [sources.wheels]\nrequirements = [\"numpy\"]\ntargets = [\"cuda\", \"cuda\"]\n\
                [targets.cpu]\npython = { version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }\n\
                [targets.cuda]\npython = { version = \"3.11\", platform = \"manylinux_2_28_x86_64\" }\n";
    let recipe = Recipe::parse(text, Path::new("core.toml")).unwrap();
    assert_eq!(
        recipe.source_targets["cuda"],
        BTreeSet::from(["cuda".to_owned()])
    );
    assert!(recipe.uses("code", "cpu") && recipe.uses("cuda", "cuda"));
    assert!(!recipe.uses("cuda", "cpu"));
    let cpu: Vec<&String> = recipe.sources_for("cpu").map(|(name, _)| name).collect();
    assert_eq!(cpu, ["code"]);
    // A requirements source locks wheels only for the targets that use it.
    assert!(matches!(
        &recipe.sources["wheels"],
        SourceSpec::Requirements { targets, .. } if targets.keys().eq(["cuda"])
    ));

    let error = Recipe::parse(
        &text.replace("targets = [\"cuda\"]", "targets = [\"cdua\"]"),
        Path::new("core.toml"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid recipe `core.toml`: source `cuda` has `targets` naming target `cdua`, which this recipe \
         does not declare"
    );
    assert!(error.hint().unwrap().ends_with(": cpu, cuda"), "{error:?}");

    let error = Recipe::parse(
        &text.replace("targets = [\"cuda\"]", "targets = []"),
        Path::new("core.toml"),
    )
    .unwrap_err();
    assert!(error.to_string().contains("`targets = []`"), "{error}");

    let error = Recipe::parse(
        "[recipe]\nname = \"a\"\n[sources.code]\npath = \".\"\ntarget = \"cpu\"\n[targets.cpu]\n",
        Path::new("a.toml"),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`targets = [\"T\", …]` limits a source"),
        "{error}"
    );

    let base = "[recipe]\nname = \"a\"\n[sources.base]\ndebian = \"bookworm\"\npackages = [\"gcc\"]\n\
                targets = [\"cpu\"]\n[targets.cpu]\n[targets.gpu]\n[build]\nscript = \"true\"\nbase = \"base\"\n";
    let error = Recipe::parse(base, Path::new("a.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is `[build] base`, but its `targets` leave out target `gpu`"),
        "{error}"
    );
}

#[test]
fn a_variant_checks_and_replaces_source_targets_against_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "lm.toml",
        "[recipe]\nname = \"lm\"\n[sources.a]\npath = \".\"\ntargets = [\"gpu\"]\n\
         [sources.b]\npath = \".\"\ntargets = [\"gpu\"]\n[targets.cpu]\n[targets.gpu]\n\
         [build]\nscript = \"true\"\n",
    );
    write(
        "lm-x.toml",
        "[recipe]\nname = \"lm-x\"\nextends = \"lm\"\n[sources.a]\npath = \"..\"\n\
         [sources.c]\npath = \".\"\ntargets = [\"cpu\"]\n",
    );
    let recipes = Recipe::load_dir(dir.path()).unwrap();
    let variant = &recipes[1];
    assert!(variant.uses("a", "cpu"), "the variant's `a` has no limit");
    assert!(!variant.uses("b", "cpu"), "`b` keeps the base's limit");
    assert!(!variant.uses("c", "gpu"));
    write(
        "lm-x.toml",
        "[recipe]\nname = \"lm-x\"\nextends = \"lm\"\n[sources.c]\npath = \".\"\ntargets = [\"tpu\"]\n",
    );
    let error = Recipe::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("lm-x.toml") && error.contains("target `tpu`"),
        "{error}"
    );
}

#[test]
fn a_recipe_source_for_other_targets_needs_no_dependency_target() {
    let toolkit = recipe("cuda-toolkit", &["cuda"], "");
    let core = recipe(
        "core",
        &["cpu", "cuda"],
        "[sources.cuda]\nrecipe = \"cuda-toolkit\"\ntargets = [\"cuda\"]",
    );
    check_graph(&[toolkit.clone(), core], Path::new("recipes")).unwrap();
    let everyone = recipe(
        "core",
        &["cpu", "cuda"],
        "[sources.cuda]\nrecipe = \"cuda-toolkit\"",
    );
    let error = check_graph(&[toolkit, everyone], Path::new("recipes")).unwrap_err();
    assert!(error.to_string().contains("target `cpu`"), "{error}");
}

#[test]
fn a_missing_xmake_recipe_is_the_seeds_xmake_is_not_installed_with_its_fix() {
    use hstore_store::Hint;
    let core = recipe("core", &["cpu"], "[sources.xmake]\nrecipe = \"xmake\"\n");
    let error = check_graph(&[core], Path::new("recipes")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("names recipe `xmake`, which is not in `recipes`"),
        "{error}"
    );
    assert!(error.hint().unwrap().contains("copy `recipes/xmake.toml`"));
}
