#!/usr/bin/env bash
# Benchmarks of a Debian base (`debian` sources, `[build] base`; issue 22), run by hand, not a test. It talks to the
# Debian archive this machine's apt uses (deb.debian.org), like `hstore lock` of a real recipe does.
#
#   1. lock of a base, cold (fresh store): packages resolved, .debs downloaded and unpacked, against `apt-get
#      download` of the same package list (what a user would otherwise run, without verifying or unpacking)
#   2. its size: the .debs, the tree in the store, a bundle of it, against `tar | zstd -19` of the tree
#   3. sandbox start-up: the same trivial build (`true`) on the base and on the host's root      goal ≤ 1.05×
#   4. a no-op (cache-hit) `hstore build` on the base                                             goal ≤ 10 ms
#   5. the built-in example (examples/hello: cargo + rustc from the store) on the base and on the host root
#
# Usage: bench/debian-base.sh [RUNS] [PACKAGES…]   (default 10 runs; packages default: gcc libc6-dev)
#   HSTORE=/path/to/hstore    the binary to measure (default: `cargo build --release`)
#   BENCH_KEEP=1              keep the work directory (printed)
# Prints the commands' wall times and the ratios.
set -euo pipefail

runs=${1:-10}
shift || true
packages=("$@")
[[ ${#packages[@]} -gt 0 ]] || packages=(gcc libc6-dev)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${HSTORE:-} ]]; then
    echo "==> building hstore (release)" >&2
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin hstore
    HSTORE="${CARGO_TARGET_DIR:-$repo/target}/release/hstore"
fi
work=$(mktemp -d /tmp/hstore-bench-base.XXXXXX)
[[ -n ${BENCH_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
export HSTORE_STORE="$work/store" NO_COLOR=1
echo "work directory: $work" >&2
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }
quoted=$(printf '"%s", ' "${packages[@]}")

# Two recipes, the same script: one on the base, one on the host's root.
mkdir -p "$work/recipes"
cat > "$work/recipes/onbase.toml" <<TOML
[recipe]
name = "onbase"
[sources.base]
debian = "bookworm"
packages = [${quoted%, }]
[targets.cpu]
[build]
base = "base"
script = "true > \$out/done"
TOML
cat > "$work/recipes/onhost.toml" <<TOML
[recipe]
name = "onhost"
[targets.cpu]
[build]
script = "true > \$out/done"
TOML

echo "== 1. lock of the base (cold store): ${packages[*]}"
start=$(now)
"$HSTORE" lock --recipes "$work/recipes" --lockfile "$work/lockfile.json" >/dev/null 2>&1
lock_s=$(elapsed "$start" "$(now)")
read -r count deb_bytes tree_bytes < <(python3 - "$work/lockfile.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
debs = [a for a in lock["artifacts"] if a["kind"] == "deb"]
base = [a for a in lock["artifacts"] if a["kind"] == "debian_base"][0]
print(len(debs), sum(a["size"] for a in debs), base["size"])
PY
)
python3 - "$work/lockfile.json" > "$work/names" <<'PY'
import json, sys
for a in json.load(open(sys.argv[1]))["artifacts"]:
    if a["kind"] == "deb":
        print(f'{a["package"]}={a["version"]}')
PY
mkdir -p "$work/apt"
start=$(now)
(cd "$work/apt" && xargs apt-get download -q=2 < "$work/names") >/dev/null 2>&1 || echo "   (apt-get download failed: versions superseded?)"
apt_s=$(elapsed "$start" "$(now)")
echo "   hstore lock: $count packages, $((deb_bytes / 1000000)) MB of .debs, tree $((tree_bytes / 1048576)) MiB: ${lock_s}s"
echo "   apt-get download (same list, no verify, no unpack): ${apt_s}s; ratio $(echo "scale=2; $lock_s / $apt_s" | bc)×"

echo "== 2. sizes"
base=$(python3 -c "import json,sys; print([a['address'] for a in json.load(open(sys.argv[1]))['artifacts'] if a['kind']=='debian_base'][0])" "$work/lockfile.json")
"$HSTORE" export --lockfile "$work/lockfile.json" -o "$work/base.hsbundle" >/dev/null 2>&1
"$HSTORE" store materialize "$base" "$work/tree" >/dev/null 2>&1
tar -C "$work/tree" -cf - . | zstd -19 -T0 -q > "$work/tree.tar.zst"
echo "   store: $(du -sm "$work/store" | cut -f1) MiB; bundle (debs + tree): $(( $(stat -c %s "$work/base.hsbundle") / 1048576 )) MiB; tar|zstd -19 of the tree alone: $(( $(stat -c %s "$work/tree.tar.zst") / 1048576 )) MiB"

echo "== 3. sandbox start-up, $runs runs each (build --check reruns the build)"
"$HSTORE" build --recipes "$work/recipes" --lockfile "$work/lockfile.json" --target cpu onbase onhost >/dev/null 2>&1
for recipe in onbase onhost; do
    start=$(now)
    for _ in $(seq "$runs"); do
        "$HSTORE" build --recipes "$work/recipes" --lockfile "$work/lockfile.json" --target cpu --check "$recipe" >/dev/null 2>&1
    done
    eval "${recipe}_s=$(echo "scale=4; ($(now) - $start) / $runs" | bc)"
done
echo "   on the base: ${onbase_s}s per build; on the host root: ${onhost_s}s; ratio $(echo "scale=3; $onbase_s / $onhost_s" | bc)×"

echo "== 4. no-op build on the base, $runs runs"
start=$(now)
for _ in $(seq "$runs"); do
    "$HSTORE" build --recipes "$work/recipes" --lockfile "$work/lockfile.json" --target cpu onbase >/dev/null 2>&1
done
echo "   $(echo "scale=4; ($(now) - $start) / $runs * 1000" | bc) ms per no-op build"

echo "== 5. the built-in example on the base and on the host root"
cp -R "$repo/examples/hello" "$work/hello"
sed -i "s#^path = \"..\"#path = \"$work/hello\"#" "$work/hello/recipes/hello.toml"
mkdir -p "$work/hello-host/recipes"
sed -e '/^\[sources.base\]/,/^packages/d' -e '/^base = "base"/d' "$work/hello/recipes/hello.toml" > "$work/hello-host/recipes/hello.toml"
for variant in hello hello-host; do
    "$HSTORE" lock --recipes "$work/$variant/recipes" --lockfile "$work/$variant.json" >/dev/null 2>&1
    "$HSTORE" build --recipes "$work/$variant/recipes" --lockfile "$work/$variant.json" --target cpu >/dev/null 2>&1
    start=$(now)
    out=$("$HSTORE" build --recipes "$work/$variant/recipes" --lockfile "$work/$variant.json" --target cpu --check 2>/dev/null)
    echo "   $variant: $(elapsed "$start" "$(now)")s, output $out"
done
