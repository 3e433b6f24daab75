//! The CUDA toolkit from PyPI wheels end to end (`recipes/cuda-toolkit.toml`): NVIDIA's real x86_64 wheels of the
//! recipe's compile set, served by a loopback PEP 691 index ([`TestIndex`]), lock as the recipe pins them, the
//! toolkit is assembled in the sandbox, and `--check` reproduces it byte for byte. Then a small xmake CUDA project (a
//! kernel, `cudaMalloc`, a cub reduction; two files named `kernel.cu`) builds in the sandbox, network cut and `HOME`
//! empty, with the pinned xmake (built from the fixture's git repositories, as in `xmake.rs`) against the toolkit from the store,
//! for sm_80 and sm_90; the toolkit's own `cuobjdump` finds both in the executable, and `--check` reproduces it too.
//!
//! The wheels (~105 MB) are not in the repository: `scripts/cuda-wheels.sh` (run by `scripts/test-deps.sh`, so by
//! `.ci/run`) downloads them once, pinned by sha256, into a kept cache directory. A missing or different file fails
//! these tests, naming that command: they are never skipped. Nothing here talks to anything but `127.0.0.1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hstore_test_support::{TestEnv, TestIndex, sha256_hex};

use crate::xmake::{XmakeGitFixture, exited};

/// The repository root (this package's manifest directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `scripts/cuda-wheels.sh` keeps the wheels: `$HSTORE_CUDA_WHEELS`, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/hstore-ci/cuda-wheels`.
fn wheel_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("HSTORE_CUDA_WHEELS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache.join("hstore-ci/cuda-wheels")
}

/// One `name==version --hash=sha256:…` line of the recipe.
struct Pin {
    project: String,
    version: String,
    sha256: Vec<String>,
}

/// The `requirements` lines of `recipes/cuda-toolkit.toml`, read from its text.
fn recipe_pins(recipe: &str) -> Vec<Pin> {
    recipe
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('"') && line.contains("--hash=sha256:"))
        .map(|line| {
            let line = line.trim_end_matches(',').trim_matches('"');
            let mut words = line.split_whitespace();
            let (project, version) = words
                .next()
                .and_then(|pin| pin.split_once("=="))
                .unwrap_or_else(|| panic!("not `name==version`: {line}"));
            let sha256 = words
                .map(|word| {
                    word.strip_prefix("--hash=sha256:")
                        .unwrap_or_else(|| panic!("not a hash: {word}"))
                        .to_owned()
                })
                .collect();
            Pin {
                project: project.to_owned(),
                version: version.to_owned(),
                sha256,
            }
        })
        .collect()
}

/// The cached x86_64 wheel of each pin: (project, file name, bytes). Panics naming `scripts/cuda-wheels.sh` when one
/// is missing or its sha256 is not one the recipe pins.
fn cached_wheels(pins: &[Pin]) -> Vec<(String, String, Vec<u8>)> {
    let dir = wheel_cache();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    pins.iter()
        .map(|pin| {
            let stem = format!("{}-{}-", pin.project.replace('-', "_"), pin.version);
            let Some(name) = names
                .iter()
                .find(|name| name.starts_with(&stem) && name.ends_with("_x86_64.whl"))
            else {
                panic!(
                    "the x86_64 wheel of `{}=={}` is not in `{}`: run `scripts/cuda-wheels.sh` (scripts/test-deps.sh \
                     and .ci/run do) to download the pinned CUDA wheels once",
                    pin.project,
                    pin.version,
                    dir.display()
                );
            };
            let bytes = std::fs::read(dir.join(name)).expect("read a cached wheel");
            let sha256 = sha256_hex(&bytes);
            assert!(
                pin.sha256.contains(&sha256),
                "`{}` in `{}` has sha256 {sha256}, which recipes/cuda-toolkit.toml does not pin: run \
                 `scripts/cuda-wheels.sh` again (it replaces a file whose sha256 differs)",
                name,
                dir.display()
            );
            (pin.project.clone(), name.clone(), bytes)
        })
        .collect()
}

/// `recipes/cuda-toolkit.toml` for the loopback index: `index` is the test's and the aarch64 target (whose wheels the
/// index does not serve) is left out; the pins and the build script are the committed ones.
fn toolkit_recipe_for(index: &TestIndex) -> String {
    let recipe = std::fs::read_to_string(repo_root().join("recipes/cuda-toolkit.toml"))
        .expect("read recipes/cuda-toolkit.toml");
    let aarch64 = "[targets.aarch64]\npython = { version = \"3.11\", platform = \"manylinux_2_28_aarch64\" }\n";
    assert!(recipe.contains(aarch64), "{recipe}");
    let requirements = "[sources.wheels]\nrequirements = [";
    assert!(recipe.contains(requirements), "{recipe}");
    recipe.replace(aarch64, "").replace(
        requirements,
        &format!(
            "[sources.wheels]\nindex = \"{}\"\nrequirements = [",
            index.index_url()
        ),
    )
}

/// A project directory holding the toolkit recipe (against `index`) and the xmake recipe (pinned to `xmake_git`).
struct CudaProject {
    env: TestEnv,
    index: TestIndex,
    xmake_git: XmakeGitFixture,
}

impl CudaProject {
    fn new() -> Self {
        let recipe = std::fs::read_to_string(repo_root().join("recipes/cuda-toolkit.toml"))
            .expect("read recipes/cuda-toolkit.toml");
        let pins = recipe_pins(&recipe);
        let projects: Vec<&str> = pins.iter().map(|pin| pin.project.as_str()).collect();
        assert_eq!(
            projects,
            [
                "nvidia-cuda-nvcc",
                "nvidia-nvvm",
                "nvidia-cuda-crt",
                "nvidia-cuda-runtime",
                "nvidia-cuda-cccl",
                "nvidia-cuda-cuobjdump"
            ]
        );
        let index = TestIndex::start();
        for (project, name, bytes) in cached_wheels(&pins) {
            index.wheel_file(&project, &name, &bytes);
        }
        let env = TestEnv::new();
        let xmake_git = XmakeGitFixture::new(env.root());
        let project = CudaProject {
            env,
            index,
            xmake_git,
        };
        project.write(
            "recipes/cuda-toolkit.toml",
            &toolkit_recipe_for(&project.index),
        );
        project.write("recipes/xmake.toml", &project.xmake_git.recipe);
        project
    }

    fn dir(&self) -> PathBuf {
        self.env.root().join("project")
    }

    /// Writes `project/<relative>`.
    fn write(&self, relative: &str, contents: &str) {
        let path = self.dir().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        std::fs::write(&path, contents).expect("write project file");
    }

    /// Runs `hstore ARGS` in the project directory.
    fn hstore(&self, args: &[&str]) -> Output {
        self.env
            .command(env!("CARGO_BIN_EXE_hstore"))
            .current_dir(self.dir())
            .env("NO_PROXY", "*")
            .args(args)
            .output()
            .expect("run hstore")
    }

    /// `hstore lock`, xmake's repositories through their mirrors.
    fn lock(&self) -> String {
        exited(&self.hstore(&self.xmake_git.with_mirrors(&["lock"])), 0).1
    }
}

/// Runs `program` with a cleared environment; returns stdout (asserting success).
fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run `{}`: {error}", program.display()));
    exited(&output, 0).0
}

#[test]
fn the_cuda_toolkit_assembles_from_pinned_wheels_in_the_sandbox_and_reproduces() {
    let project = CudaProject::new();
    project.lock();
    let lockfile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.dir().join("lockfile.json")).expect("read lockfile"),
    )
    .expect("lockfile JSON");
    let source = lockfile["recipes"]
        .as_array()
        .expect("recipes")
        .iter()
        .find(|recipe| recipe["name"] == "cuda-toolkit")
        .expect("cuda-toolkit is locked")["sources"][0]
        .clone();
    // Every line is `name==version --hash=…`: taken as it is, no resolver.
    assert_eq!(source["resolution"]["resolver"], "pinned", "{source}");
    assert_eq!(source["artifacts"].as_array().expect("artifacts").len(), 6);

    let build = [
        "build",
        "cuda-toolkit",
        "--target",
        "x86_64",
        "--out-link",
        "cuda",
    ];
    let (_, stderr) = exited(&project.hstore(&build), 0);
    assert!(stderr.contains("Built"), "{stderr}");
    let cuda = project.dir().join("cuda");

    // /usr/local/cuda's shape: nvcc runs, lib64 is lib, unversioned library names, the driver stub, no .metadata.
    let version = run(&cuda.join("bin/nvcc"), &["--version"]);
    assert!(version.contains("release 13.0, V13.0.88"), "{version}");
    for path in [
        "bin/nvcc.profile",
        "bin/cuobjdump",
        "nvvm/bin/cicc",
        "nvvm/libdevice/libdevice.10.bc",
        "include/cuda_runtime.h",
        "include/crt/host_config.h",
        "include/cccl/cub/cub.cuh",
        "lib64/libcudart.so.13",
        "lib64/libcudadevrt.a",
        "lib64/stubs/libcuda.so",
    ] {
        assert!(cuda.join(path).is_file(), "`{path}` is not in the toolkit");
    }
    assert_eq!(
        std::fs::read_link(cuda.join("lib64")).expect("lib64 is a link"),
        Path::new("lib")
    );
    assert_eq!(
        std::fs::read_link(cuda.join("lib/libcudart.so")).expect("libcudart.so is a link"),
        Path::new("libcudart.so.13")
    );
    assert!(!cuda.join(".metadata").exists());
    let stub = std::fs::read(cuda.join("lib/stubs/libcuda.so")).expect("read the stub");
    assert!(
        stub.windows(b"libcuda.so.1\0".len())
            .any(|window| window == b"libcuda.so.1\0"),
        "the stub's soname is libcuda.so.1"
    );
    for symbol in [
        "cuInit",
        "cuCtxCreate_v4",
        "cuMemAlloc_v2",
        "cuLaunchKernel",
    ] {
        let name = format!("{symbol}\0");
        assert!(
            stub.windows(name.len())
                .any(|window| window == name.as_bytes()),
            "`{symbol}` is not in the stub"
        );
    }

    let (_, stderr) = exited(
        &project.hstore(&["build", "cuda-toolkit", "--target", "x86_64", "--check"]),
        0,
    );
    assert!(stderr.contains("Checked"), "{stderr}");
}

/// The xmake CUDA project: two `.cu` files with the same base name (so each needs its own `-frandom-seed`, as
/// InfiniCore's do), `-objtemp` so nvcc's intermediate file names do not carry its pid, and sm_80 + sm_90 through
/// `add_cugencodes` (which xmake also gives the device link).
const APP_XMAKE_LUA: &str = r#"add_rules("mode.release")
set_defaultmode("release")

target("app")
    set_kind("binary")
    set_languages("cxx17")
    set_toolchains("cuda")
    add_files("src/main.cu", {cuflags = "-frandom-seed=src/main.cu"})
    add_files("src/scale/kernel.cu", {cuflags = "-frandom-seed=src/scale/kernel.cu"})
    add_files("src/sum/kernel.cu", {cuflags = "-frandom-seed=src/sum/kernel.cu"})
    add_cuflags("-objtemp")
    add_cugencodes("sm_80", "sm_90")
    add_links("cudart")
"#;

const APP_MAIN: &str = r#"#include <cstdio>
#include <cuda_runtime.h>

void scale(float *data, float factor, int n);
float sum(const float *data, int n);

int main() {
    const int n = 1 << 20;
    float *data = nullptr;
    if (cudaMalloc(&data, n * sizeof(float)) != cudaSuccess) {
        std::puts("no CUDA device");
        return 0;
    }
    cudaMemset(data, 0, n * sizeof(float));
    scale(data, 2.0f, n);
    std::printf("sum %.0f\n", sum(data, n));
    cudaFree(data);
    return 0;
}
"#;

const APP_SCALE: &str = r"__global__ void scale_kernel(float *data, float factor, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        data[i] = data[i] * factor + 1.0f;
    }
}

void scale(float *data, float factor, int n) {
    scale_kernel<<<(n + 255) / 256, 256>>>(data, factor, n);
}
";

const APP_SUM: &str = r"#include <cub/device/device_reduce.cuh>
#include <cuda_runtime.h>

float sum(const float *data, int n) {
    float *total = nullptr;
    cudaMalloc(&total, sizeof(float));
    void *scratch = nullptr;
    size_t bytes = 0;
    cub::DeviceReduce::Sum(scratch, bytes, data, total, n);
    cudaMalloc(&scratch, bytes);
    cub::DeviceReduce::Sum(scratch, bytes, data, total, n);
    float result = 0.0f;
    cudaMemcpy(&result, total, sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(scratch);
    cudaFree(total);
    return result;
}
";

/// The project's recipe: the toolkit and xmake from the store (`recipe` sources), the project as a `path` source.
/// xmake's `find_cuda` takes `--cuda=DIR` (DIR/bin/nvcc, DIR/include, DIR/lib64); the toolkit is at `/src/cuda` in
/// every build, so the SDK path compiled into the objects is fixed.
const APP_RECIPE: &str = r#"[recipe]
name = "cudaapp"

[sources.cuda]
recipe = "cuda-toolkit"

[sources.xmake]
recipe = "xmake"
target = "cpu"

[sources.proj]
path = "../app"

[targets.x86_64]

[build]
script = '''
set -eu
export PATH="$src_xmake/bin:$PATH" XMAKE_ROOT=y XMAKE_STATS=false
export XMAKE_GLOBALDIR=/build/.xmake-global XMAKE_TMPDIR=/build/.xmake-tmp
cp -R "$src_proj" /build/app
chmod -R u+w /build/app
cd /build/app
xmake f --cuda="$src_cuda" -y
xmake -y -v
mkdir -p "$out/bin"
cp build/linux/x86_64/release/app "$out/bin/app"
'''
"#;

#[test]
fn an_xmake_cuda_project_builds_offline_against_the_toolkit_from_the_store_for_sm_80_and_sm_90() {
    let project = CudaProject::new();
    project.write("app/xmake.lua", APP_XMAKE_LUA);
    project.write("app/src/main.cu", APP_MAIN);
    project.write("app/src/scale/kernel.cu", APP_SCALE);
    project.write("app/src/sum/kernel.cu", APP_SUM);
    project.write("recipes/cudaapp.toml", APP_RECIPE);
    project.lock();
    let served = project.index.requests().len();

    // One command builds the chain in the sandbox: xmake, the toolkit, then the project.
    let (_, stderr) = exited(
        &project.hstore(&[
            "build",
            "cudaapp",
            "--target",
            "x86_64",
            "--out-link",
            "app-out",
        ]),
        0,
    );
    for built in [
        "xmake for target cpu",
        "cuda-toolkit for target x86_64",
        "cudaapp for target x86_64",
    ] {
        assert!(stderr.contains(built), "`{built}` not in:\n{stderr}");
    }
    assert_eq!(
        project.index.requests().len(),
        served,
        "the builds must not download"
    );
    let (log, _) = exited(
        &project.hstore(&["log", "cudaapp", "--target", "x86_64"]),
        0,
    );
    assert!(log.contains("/src/cuda/bin/nvcc"), "{log}");
    assert!(
        log.contains("-gencode arch=compute_80,code=sm_80")
            && log.contains("-gencode arch=compute_90,code=sm_90"),
        "{log}"
    );

    // The toolkit's own cuobjdump: the executable holds cubins for both architectures.
    exited(
        &project.hstore(&[
            "build",
            "cuda-toolkit",
            "--target",
            "x86_64",
            "--out-link",
            "cuda",
        ]),
        0,
    );
    let app = project.dir().join("app-out/bin/app");
    let listing = run(
        &project.dir().join("cuda/bin/cuobjdump"),
        &["--list-elf", app.to_str().expect("utf-8 path")],
    );
    for arch in ["sm_80", "sm_90"] {
        assert!(listing.contains(arch), "no {arch} in:\n{listing}");
    }

    // -objtemp and the per-file seeds make the objects, and so the executable, reproducible.
    let (_, stderr) = exited(
        &project.hstore(&["build", "cudaapp", "--target", "x86_64", "--check"]),
        0,
    );
    assert!(stderr.contains("Checked"), "{stderr}");
}
