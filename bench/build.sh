#!/usr/bin/env bash
# Benchmarks of `hstore build` (run by hand, not a test). Goals from issue 5:
#
#   1. sandbox overhead: the same build in and out of the sandbox         goal ≤ 1.05×
#   2. a no-op (cache-hit) `hstore build`                                  goal ≤ 0.3 s
#   3. (optional) the vendor directory of a Cargo.lock's crates (~250) ready
#      inside the sandbox, against a warm `cargo vendor`                   goal ≤ 0.2×
#   4. a no-op `hstore build` of a three-recipe chain (issue 9)           goal ≤ 0.05 s
#   5. (optional) the no-op build of the real InfiniLM-SVC recipe with the
#      toolchain from the store (issue 9; BENCH_SVC_STORE, BENCH_SVC_CHECKOUT)  goal ≤ 0.05 s
#
# Usage: bench/build.sh [RUNS]            (default 5 runs per measurement; hyperfine is used when installed)
#   HSTORE=/path/to/hstore               the binary to measure (default: build it with `cargo build --release`)
#   BENCH_KEEP=1                          keep the work directory (printed) for a closer look
#   BENCH_C_FILES=40                      size of the generated C program of benchmark 1
#   BENCH_VENDOR_PROJECT=DIR              enables benchmark 3: a cargo workspace with its Cargo.lock (the real
#                                           InfiniLM-SVC: `git archive HEAD rust | tar -x` from a clone; ~250 crates)
#   BENCH_VENDOR_STORE=DIR                … a store kept between runs that holds its crates
#   BENCH_ALLOW_NETWORK=1                 … lets `hstore lock`/`fetch` fill that store (else they run --offline);
#                                           for cargo's side, run `cargo fetch --locked` in DIR once
#
# Nothing talks to the network unless BENCH_ALLOW_NETWORK=1: benchmark 3 runs `cargo vendor --offline`, and hstore
# builds have none. Prints the commands, per-run means and the ratios.
set -euo pipefail

runs=${1:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${HSTORE:-} ]]; then
    echo "==> building hstore (release)" >&2
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin hstore
    HSTORE="${CARGO_TARGET_DIR:-$repo/target}/release/hstore"
fi
work=$(mktemp -d /tmp/hstore-bench.XXXXXX)
[[ -n ${BENCH_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
export HSTORE_STORE="$work/store" NO_COLOR=1
echo "work directory: $work" >&2

# mean_seconds NAME COMMAND: the mean wall time of COMMAND over $runs runs (after one warm-up run); hyperfine if
# installed, else a loop.
mean_seconds() {
    local name=$1 command=$2
    if command -v hyperfine >/dev/null; then
        hyperfine --style none --warmup 1 --runs "$runs" --export-json "$work/$name.json" "$command" >/dev/null 2>&1 \
            || { echo "error: \`$command\` failed" >&2; bash -c "$command" >&2; exit 2; }
        jq -r '.results[0].mean' "$work/$name.json"
    else
        bash -c "$command" >/dev/null 2>&1 || { echo "error: \`$command\` failed" >&2; exit 2; }
        local total=0 start end
        for _ in $(seq "$runs"); do
            start=$(date +%s%N)
            bash -c "$command" >/dev/null 2>&1
            end=$(date +%s%N)
            total=$((total + end - start))
        done
        awk -v ns="$total" -v n="$runs" 'BEGIN { printf "%.6f\n", ns / n / 1e9 }'
    fi
}

# one_run COMMAND: prints "WALL CPU" in seconds (CPU = user + system of the command and the children it waited for).
one_run() {
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f "%U %S" -o "$work/time.out" bash -c "$1" >/dev/null 2>"$work/run.err" \
        || { echo "error: \`$1\` failed:" >&2; cat "$work/run.err" >&2; exit 2; }
    end=$(date +%s%N)
    awk -v ns=$((end - start)) '{ printf "%.4f %.4f\n", ns / 1e9, $1 + $2 }' "$work/time.out"
}

# compare NAME_A COMMAND_A NAME_B COMMAND_B: $runs runs of each, interleaved (A B A B …, so load drifting on a shared
# machine hits both alike) after one warm-up each; prints the medians of wall and CPU time and B/A ratios.
compare() {
    local name_a=$1 command_a=$2 name_b=$3 command_b=$4
    one_run "$command_a" >/dev/null
    one_run "$command_b" >/dev/null
    : >"$work/a.times"
    : >"$work/b.times"
    for _ in $(seq "$runs"); do
        one_run "$command_a" >>"$work/a.times"
        one_run "$command_b" >>"$work/b.times"
    done
    median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    local wall_a wall_b cpu_a cpu_b
    wall_a=$(cut -d' ' -f1 "$work/a.times" | median)
    wall_b=$(cut -d' ' -f1 "$work/b.times" | median)
    cpu_a=$(cut -d' ' -f2 "$work/a.times" | median)
    cpu_b=$(cut -d' ' -f2 "$work/b.times" | median)
    echo "runs (wall cpu) $name_a: $(tr '\n' ';' <"$work/a.times")"
    echo "runs (wall cpu) $name_b: $(tr '\n' ';' <"$work/b.times")"
    echo "median wall: $name_a ${wall_a}s  $name_b ${wall_b}s  ratio $(ratio "$wall_b" "$wall_a")×"
    echo "median cpu:  $name_a ${cpu_a}s  $name_b ${cpu_b}s  ratio $(ratio "$cpu_b" "$cpu_a")×"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# ---------------------------------------------------------------------------------------------------------------------
# A project: a generated C program (BENCH_C_FILES translation units, ~150 lines each) stored as a `path` source.
files=${BENCH_C_FILES:-40}
project="$work/project"
mkdir -p "$project/src" "$project/recipes"
for i in $(seq "$files"); do
    {
        echo "#include <stdint.h>"
        echo "#include <string.h>"
        for j in $(seq 12); do
            cat <<EOF
static uint64_t mix_${j}(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x + $j; }
uint64_t unit${i}_f${j}(const uint8_t *data, size_t len) {
    uint64_t h = $i;
    uint8_t buf[64];
    for (size_t k = 0; k < len; k++) {
        memcpy(buf, data, len < sizeof buf ? len : sizeof buf);
        h = mix_${j}(h ^ data[k] ^ buf[k % sizeof buf]);
        if (h % 7 == $((j % 7))) { h = h * 31 + k; } else { h = (h << 5) - h + k; }
    }
    return h;
}
EOF
        done
    } >"$project/src/unit$i.c"
done
{
    echo "#include <stdio.h>"
    echo "#include <stdint.h>"
    echo "#include <stddef.h>"
    for i in $(seq "$files"); do echo "uint64_t unit${i}_f1(const uint8_t *, size_t);"; done
    echo "int main(void) { uint64_t h = 0; const uint8_t d[] = \"hstore\";"
    for i in $(seq "$files"); do echo "  h ^= unit${i}_f1(d, sizeof d);"; done
    echo "  printf(\"%llu\\n\", (unsigned long long)h); return 0; }"
} >"$project/src/main.c"

# The same script runs in both places: inputs at $src_code, output at $out, the working directory as scratch.
script='set -eu
for f in "$src_code"/*.c; do cc -O2 -c "$f" -o "$(basename "$f" .c).o"; done
mkdir -p "$out/bin"
cc -o "$out/bin/prog" ./*.o'
cat >"$project/recipes/cprog.toml" <<EOF
[recipe]
name = "cprog"

[sources.code]
path = "../src"

[targets.cpu]

[build]
script = '''
$script
'''
EOF
address=$("$HSTORE" store add "$project/src")
size=$(cat "$project"/src/*.c | wc -c)
cat >"$project/lockfile.json" <<EOF
{"version":1,"recipes":[{"name":"cprog","sources":[{"name":"code","spec":{"kind":"path","path":"../src","exclude":[]},"artifacts":["path+src"]}]}],"artifacts":[{"kind":"path","id":"path+src","path":"src","address":"$address","size":$size}]}
EOF
cat >"$work/native.sh" <<EOF
#!/bin/sh
# The build outside the sandbox: a fresh scratch and output directory, the sandbox's PATH, a cleared environment.
scratch=\$(mktemp -d "$work/native.XXXXXX")
mkdir "\$scratch/build" "\$scratch/out" "\$scratch/home"
cd "\$scratch/build"
env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="\$scratch/home" SOURCE_DATE_EPOCH=315532800 \\
    src_code="$project/src" out="\$scratch/out" sh -c '$script'
rm -rf "\$scratch"
EOF
chmod +x "$work/native.sh"
build="cd '$project' && '$HSTORE' -q build cprog --target cpu"
eval "$build" >/dev/null

echo "## 1. sandbox overhead: compiling a $files-file C program with cc -O2, $runs runs each"
echo "native:  $work/native.sh"
echo "sandbox: $build --check      (rebuilds in the sandbox, stores the output, compares)"
compare native "$work/native.sh" sandbox "$build --check"
echo "(goal: ratio ≤ 1.05×)"
echo

echo "## 2. no-op (cache-hit) build, $((runs * 4)) runs"
echo "command: $build"
saved_runs=$runs
runs=$((runs * 4))
noop=$(mean_seconds noop "$build")
runs=$saved_runs
echo "no-op ${noop}s  (goal ≤ 0.3 s)"
echo

# ---------------------------------------------------------------------------------------------------------------------
# 4. A chain of three recipes (a C library, a program linking it, a package of both): the no-op build of the last
#    walks the graph, computes three keys (each including its dependencies') and finds three records.
chain="$work/chain"
mkdir -p "$chain/recipes" "$chain/lib-src" "$chain/prog-src"
echo 'const char *greet(void) { return "bench"; }' >"$chain/lib-src/greet.c"
printf '#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n' \
    >"$chain/prog-src/main.c"
cat >"$chain/recipes/lib.toml" <<'EOF'
[recipe]
name = "lib"
[sources.code]
path = "../lib-src"
[targets.cpu]
[build]
script = 'mkdir -p "$out/lib" && cc -shared -fPIC -o "$out/lib/libgreet.so" "$src_code/greet.c"'
EOF
cat >"$chain/recipes/prog.toml" <<'EOF'
[recipe]
name = "prog"
[sources.code]
path = "../prog-src"
[sources.lib]
recipe = "lib"
[targets.cpu]
[build]
script = '''mkdir -p "$out/bin" && cc -o "$out/bin/prog" "$src_code/main.c" -L"$src_lib/lib" -lgreet -Wl,-rpath,'$ORIGIN/../lib' '''
EOF
cat >"$chain/recipes/pkg.toml" <<'EOF'
[recipe]
name = "pkg"
[sources.lib]
recipe = "lib"
[sources.prog]
recipe = "prog"
[targets.cpu]
[build]
script = 'mkdir -p "$out/bin" "$out/lib" && cp "$src_prog/bin/prog" "$out/bin/" && cp "$src_lib/lib/libgreet.so" "$out/lib/"'
EOF
(cd "$chain" && "$HSTORE" -q lock && "$HSTORE" -q build pkg --target cpu >/dev/null)
chain_build="cd '$chain' && '$HSTORE' -q build pkg --target cpu"
echo "## 4. no-op build of a three-recipe chain, $((runs * 4)) runs"
echo "command: $chain_build"
saved_runs=$runs
runs=$((runs * 4))
chain_noop=$(mean_seconds chain-noop "$chain_build")
runs=$saved_runs
echo "no-op chain ${chain_noop}s  (goal ≤ 0.05 s; benchmark 2's single recipe: ${noop}s)"
echo

# 5. (optional) the no-op build of the real InfiniLM-SVC recipe with the toolchain from the store.
#    BENCH_SVC_STORE=DIR: a store in which `hstore build infinilm-svc --target cpu` (this repository's recipes/ and
#    lockfile.json) has run once. BENCH_SVC_CHECKOUT=DIR: a checkout of the same commit where
#    `cargo build --release --offline --frozen --bins` has run, for cargo's own no-op beside it.
if [[ -n ${BENCH_SVC_STORE:-} ]]; then
    svc_build="cd '$repo' && HSTORE_STORE='$BENCH_SVC_STORE' '$HSTORE' -q build infinilm-svc --target cpu"
    echo "## 5. no-op build of InfiniLM-SVC (toolchain from the store), $((runs * 4)) runs"
    echo "command: $svc_build"
    saved_runs=$runs
    runs=$((runs * 4))
    svc_noop=$(mean_seconds svc-noop "$svc_build")
    echo "hstore no-op ${svc_noop}s  (goal ≤ 0.05 s)"
    if [[ -n ${BENCH_SVC_CHECKOUT:-} ]]; then
        cargo_noop="cd '$BENCH_SVC_CHECKOUT/rust' && cargo build --release --offline --frozen --bins --quiet"
        cargo_noop_s=$(mean_seconds cargo-noop "$cargo_noop")
        echo "cargo no-op ${cargo_noop_s}s ($cargo_noop); ratio hstore/cargo $(ratio "$svc_noop" "$cargo_noop_s")×"
    fi
    runs=$saved_runs
    echo
else
    echo "## 5. InfiniLM-SVC no-op: skipped (set BENCH_SVC_STORE, see above)"
fi

# ---------------------------------------------------------------------------------------------------------------------
if [[ -z ${BENCH_VENDOR_PROJECT:-} ]]; then
    echo "## 3. vendor directory: skipped (set BENCH_VENDOR_PROJECT and BENCH_VENDOR_STORE, see the header)"
    exit 0
fi
: "${BENCH_VENDOR_STORE:?set BENCH_VENDOR_STORE to a store that keeps the crates between runs}"
cargo_project=$(realpath "$BENCH_VENDOR_PROJECT")
mkdir -p "$BENCH_VENDOR_STORE"
vendor_store=$(realpath "$BENCH_VENDOR_STORE")
packages=$(grep -c '^name = ' "$cargo_project/Cargo.lock")
vendor_project="$work/vendor-project"
mkdir -p "$vendor_project/recipes"
# The whole workspace is the `app` source; its Cargo.lock's crates are `crates`. The script only looks at the vendor
# directory and the cargo config: the build is "ready" when they are in place.
cat >"$vendor_project/recipes/vendor.toml" <<EOF
[recipe]
name = "vendor"

[sources.app]
path = "$cargo_project"
exclude = ["target"]

[sources.crates]
cargo_lock = "app:Cargo.lock"

[targets.cpu]

[build]
script = """
ls "\$src_crates" | wc -l > "\$out/crates"
cat "\$cargo_config" > "\$out/config.toml"
"""
EOF
offline=(--offline)
if [[ -n ${BENCH_ALLOW_NETWORK:-} ]]; then offline=(); fi
if ! (cd "$vendor_project" && HSTORE_STORE="$vendor_store" "$HSTORE" -q lock "${offline[@]}" &&
    HSTORE_STORE="$vendor_store" "$HSTORE" -q fetch "${offline[@]}"); then
    echo "error: the crates are not all in \`$vendor_store\`; fill it once on a connected machine with" \
        "BENCH_ALLOW_NETWORK=1, and run \`cargo fetch --locked\` in \`$cargo_project\` for cargo's cache" >&2
    exit 2
fi
cargo_vendor="rm -rf '$work/vendor' && cargo vendor --offline --locked --quiet --manifest-path '$cargo_project/Cargo.toml' '$work/vendor'"
vendor_build="cd '$vendor_project' && HSTORE_STORE='$vendor_store' '$HSTORE' -q build vendor --target cpu"
# Cold: the vendor tree (one directory node over the stored crates) has never been materialized in this store.
rm -rf "${vendor_store:?}/trees-v1"
start=$(date +%s%N)
eval "$vendor_build --check" >/dev/null
cold=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.3f", ns / 1e9 }')
echo "## 3. vendor directory of a $packages-package Cargo.lock ready inside the sandbox, $runs runs each"
echo "cargo vendor (warm ~/.cargo/registry): $cargo_vendor"
echo "hstore (vendor tree cached):           $vendor_build --check"
echo "first build after emptying the tree cache (vendor tree materialized from the objects): ${cold}s"
compare "cargo-vendor" "$cargo_vendor" hstore "$vendor_build --check"
echo "crates seen inside: $(cat "$(cd "$vendor_project" && HSTORE_STORE="$vendor_store" "$HSTORE" -q build vendor --target cpu --out-link "$work/vendor-result" >/dev/null && echo "$work/vendor-result/crates")")"
echo "(goal: ratio ≤ 0.2×)"
