#!/usr/bin/env bash
# Benchmark of `requirements` sources (issue 10), run by hand (it talks to the real index), not a test:
#
#   1. cold `hstore lock` (resolve + download + store) and `hstore fetch` of the combined InfiniLM-SVC Python
#      requirement sets for two targets (cpu: cp311 manylinux_2_28_x86_64; metax: cp310 manylinux_2_28_aarch64),
#      against what a user would otherwise run: `uv pip compile` + `pip download` for the same two targets
#      (pip needs each manylinux level listed; it does not expand them downward)     goal ≤ 0.5×
#   2. warm `hstore lock` (nothing changed) and warm `hstore fetch`                 goal ≤ 0.1 s each
#
# Usage: bench/wheels.sh [RUNS]              (RUNS for the warm means, default 5)
#   HSTORE=/path/to/hstore                   the binary (default: `cargo build --release`)
#   SVC_REPO=DIR|URL                         InfiniLM-SVC: a git dir, or a URL cloned (depth 1) into the work directory
#                                            (default: https://github.com/Ceng23333/InfiniLM-SVC.git)
#   BENCH_INDEX=URL                          the index (default https://pypi.org/simple); pip uses its own config
#   BENCH_KEEP=1                             keep the work directory
# Both sides start with empty caches (uv's and pip's caches live in the work directory) and resolve against the
# same snapshot (`--exclude-newer`). Prints each command's wall time and the ratios.
set -euo pipefail

runs=${1:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
svc=${SVC_REPO:-https://github.com/Ceng23333/InfiniLM-SVC.git}
index=${BENCH_INDEX:-https://pypi.org/simple}
snapshot=2026-11-20T00:00:00Z
if [[ -z ${HSTORE:-} ]]; then
    echo "==> building hstore (release)" >&2
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin hstore
    HSTORE="${CARGO_TARGET_DIR:-$repo/target}/release/hstore"
fi
command -v uv >/dev/null || { echo "error: uv is needed (pip install uv==0.13.9)" >&2; exit 2; }
work=$(mktemp -d /tmp/hstore-bench-wheels.XXXXXX)
[[ -n ${BENCH_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
echo "work directory: $work" >&2
if [[ ! -d "$svc" ]]; then
    git clone --quiet --bare --depth 1 "$svc" "$work/svc.git"
    svc="$work/svc.git"
fi

# The combined requirement sets: the SVC repository's root requirements.txt and the metax case's two files, plus
# the build tools the seed installed.
mkdir -p "$work/project/reqs" "$work/project/recipes"
{
    for file in requirements.txt \
        deployment/cases/infinilm-metax-deployment/requirements-infinicore-infinilm.txt \
        deployment/cases/infinilm-metax-deployment/requirements-embeddings.txt; do
        git --git-dir "$svc" show "HEAD:$file"
        echo
    done
    printf 'setuptools\nwheel\n'
} > "$work/project/reqs/requirements.txt"
cat > "$work/project/recipes/svc-python.toml" <<TOML
[recipe]
name = "svc-python"

[sources.reqs]
path = "../reqs"

[sources.py]
requirements_file = "reqs:requirements.txt"
index = "$index"
exclude_newer = "$snapshot"

[targets.cpu]
python = { version = "3.11", platform = "manylinux_2_28_x86_64" }

[targets.metax]
python = { version = "3.10", platform = "manylinux_2_28_aarch64" }
TOML

seconds() { # seconds COMMAND…: runs it, prints its wall time
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; echo "error: $* failed" >&2; exit 2; }
    end=$(date +%s%N)
    awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

export HSTORE_STORE="$work/store" HSTORE_CACHE="$work/cache" NO_COLOR=1
cd "$work/project"
lock=$(seconds "$HSTORE" lock)
fetch_store="$work/fetch-store"
fetch=$(seconds "$HSTORE" --store "$fetch_store" fetch)
wheels=$(grep -c '"kind": "wheel"' lockfile.json)

uv_pip() {
    local version=$1 platform=$2 arch=$3 tag=$4 glibc=$5
    uv pip compile reqs/requirements.txt --quiet --no-config --no-header --no-annotate --only-binary :all: \
        --python-version "$version" --python-platform "$platform" --exclude-newer "$snapshot" --index-url "$index" \
        --cache-dir "$work/uv-cache-$tag" -o "$work/pins-$tag.txt"
    local platforms=() minor
    for minor in $(seq "$glibc" -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
    platforms+=(--platform "manylinux2014_$arch")
    pip download --quiet --no-deps --only-binary :all: --implementation cp --python-version "$version" \
        "${platforms[@]}" --cache-dir "$work/pip-cache" -d "$work/download-$tag" -r "$work/pins-$tag.txt"
}
export -f uv_pip
export work snapshot index
pair=$(seconds bash -c 'uv_pip 3.11 x86_64-manylinux_2_28 x86_64 cpu 28 && uv_pip 3.10 aarch64-manylinux_2_28 aarch64 metax 28')
theirs=$(cat "$work"/pins-*.txt | grep -c '==')

warm_lock=0; warm_fetch=0
for _ in $(seq "$runs"); do
    warm_lock=$(awk -v a="$warm_lock" -v b="$(seconds "$HSTORE" lock)" 'BEGIN { print a + b }')
    warm_fetch=$(awk -v a="$warm_fetch" -v b="$(seconds "$HSTORE" fetch)" 'BEGIN { print a + b }')
done

echo "wheels locked by hstore: $wheels (two targets); pins from uv pip compile: $theirs"
echo "cold hstore lock (resolve + download + store):   $lock s"
echo "cold hstore fetch into an empty store:            $fetch s"
echo "uv pip compile + pip download, both targets:      $pair s"
awk -v l="$lock" -v p="$pair" 'BEGIN { printf "ratio cold lock / (uv + pip):                    %.2fx   (goal <= 0.5x)\n", l / p }'
awk -v l="$lock" -v f="$fetch" -v p="$pair" 'BEGIN { printf "ratio cold (lock + fetch) / (uv + pip):          %.2fx\n", (l + f) / p }'
awk -v t="$warm_lock" -v n="$runs" 'BEGIN { printf "warm hstore lock (mean of %d):                    %.3f s (goal <= 0.1 s)\n", n, t / n }'
awk -v t="$warm_fetch" -v n="$runs" 'BEGIN { printf "warm hstore fetch (mean of %d):                   %.3f s (goal <= 0.1 s)\n", n, t / n }'
