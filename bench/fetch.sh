#!/usr/bin/env bash
# Benchmark (live network, run by hand — not part of the test suite): cold `hstore fetch` of a large real Cargo.lock
# against cold `cargo vendor` with an empty CARGO_HOME, then warm `hstore fetch`. Both go to crates.io through
# whatever mirror the crates.io index config names on this machine.
#
#   bench/fetch.sh [REPO]   # InfiniLM-SVC as a git URL or a local (bare) repository; default: cloned (depth 1) from
#                           # https://github.com/Ceng23333/InfiniLM-SVC.git. Its rust/ dir (247 packages) is extracted
#                           # to a temp dir.
#
# Goals (issue 3): cold hstore fetch ≤ 0.5× cargo vendor's wall time; warm hstore fetch ≤ 0.1 s.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_repo=${1:-https://github.com/Ceng23333/InfiniLM-SVC.git}
work=$(mktemp -d /tmp/hstore-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [[ ! -d "$source_repo" ]]; then
  git clone --quiet --bare --depth 1 "$source_repo" "$work/svc.git"
  source_repo="$work/svc.git"
fi

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin hstore
hstore="${CARGO_TARGET_DIR:-$repo/target}/release/hstore"

# The project: extracted at run time, never committed.
mkdir -p "$work/project"
git -C "$source_repo" archive HEAD rust | tar -x -C "$work/project"
project="$work/project/rust"
echo "packages in Cargo.lock: $(grep -c '^\[\[package' "$project/Cargo.lock")"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

# 1. cold cargo vendor, empty CARGO_HOME.
start=$(now)
CARGO_HOME="$work/cargo-home" cargo vendor --locked --quiet --manifest-path "$project/Cargo.toml" "$work/vendor" > /dev/null
cargo_time=$(elapsed "$start" "$(now)")

# 2. lock once (into a scratch store) to get the lockfile.
mkdir -p "$work/recipes"
cat > "$work/recipes/bench.toml" <<TOML
[recipe]
name = "bench"
[sources.svc]
path = "../project/rust"
[sources.crates]
cargo_lock = "svc:Cargo.lock"
TOML
export HSTORE_CACHE="$work/cache"
"$hstore" -q --store "$work/lock-store" lock --recipes "$work/recipes" -o "$work/lockfile.json"

# 3. cold hstore fetch into an empty store.
start=$(now)
"$hstore" -q --store "$work/store" fetch --lockfile "$work/lockfile.json"
hstore_cold=$(elapsed "$start" "$(now)")

# 4. warm hstore fetch (best of 5).
hstore_warm=99
for _ in 1 2 3 4 5; do
    start=$(now)
    "$hstore" -q --store "$work/store" fetch --lockfile "$work/lockfile.json"
    t=$(elapsed "$start" "$(now)")
    if (( $(echo "$t < $hstore_warm" | bc) )); then hstore_warm=$t; fi
done

# Same bytes as cargo vendor? Compare every vendored crate directory's tree address.
mismatches=0
for dir in "$work/vendor"/*/; do
    name=$(basename "$dir")
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
    crate=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
    ours=$(python3 -c "import json,sys; print(next(a['address'] for a in json.load(open('$work/lockfile.json'))['artifacts'] if a.get('name')=='$crate' and a.get('version')=='$version'))")
    theirs=$("$hstore" --store "$work/scratch" store add "$dir")
    [ "$ours" = "$theirs" ] || { mismatches=$((mismatches + 1)); echo "differs from cargo vendor: $name"; }
done

printf 'cargo vendor (cold):  %8.2f s\n' "$cargo_time"
printf 'hstore fetch (cold):  %8.2f s   ratio %.2f (goal <= 0.5)\n' "$hstore_cold" "$(echo "$hstore_cold / $cargo_time" | bc -l)"
printf 'hstore fetch (warm):  %8.3f s   (goal <= 0.1)\n' "$hstore_warm"
echo "vendored trees differing from cargo vendor: $mismatches"
