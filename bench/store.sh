#!/usr/bin/env bash
# Benchmark of the store against the reference tools, side by side in one run (not a test).
#
#   bench/store.sh [TREE]        TREE defaults to the Rust toolchain directory (~1.3 GB, ~50k files)
#
# Measures, with hyperfine (mean of RUNS runs, page cache warm for every tool alike):
#   add:  `hstore store add TREE` into a cold store  vs  `nix-store --add TREE` into a fresh local store
#         vs  `tar -c TREE | zstd -3 -T0 > file`
#   dump: `hstore store dump ADDR > /dev/null`  vs  `nix-store --dump TREE > /dev/null`
# and peak RSS (`/usr/bin/time -f %M`) of `hstore store add` of a 4 GiB file, incompressible and compressible.
# Goals (issue 2): add >= 3x nix-store --add; dump >= nix-store --dump; RSS <= 64 MB. The machine is shared and
# noisy, so read the ratios, not the absolute figures.
#
# Environment: HSTORE (binary; default $CARGO_TARGET_DIR/release/hstore or target/release/hstore), RUNS (default 3),
# BENCH_DIR (scratch directory on the same disk as TREE's page cache; default a new dir under /tmp),
# BIG_SIZE (default 4G). Needs: hyperfine, nix-bin, zstd, tar, python3, GNU time. Everything is removed at exit.
set -euo pipefail

tree=$(realpath "${1:-$HOME/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu}")
hstore=$(realpath "${HSTORE:-${CARGO_TARGET_DIR:-target}/release/hstore}")
runs=${RUNS:-3}
big_size=${BIG_SIZE:-4G}
work=${BENCH_DIR:-$(mktemp -d /tmp/hstore-bench.XXXXXX)}
mkdir -p "$work"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for tool in hyperfine nix-store zstd tar python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install hyperfine nix-bin zstd time)" >&2; exit 2; }
done
[[ -x $hstore ]] || { echo "missing $hstore: run cargo build --release" >&2; exit 2; }

bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$tree" -type f | wc -l)
echo "tree: $tree  ($((bytes / 1000000)) MB in $files files)  hstore: $hstore  runs: $runs"
echo "cpus: $(nproc)  $(nix-store --version)  $(zstd --version | head -1)"
find "$tree" -type f -exec cat {} + >/dev/null # warm the page cache for every tool alike

echo; echo "== add (cold store each run) =="
hyperfine --runs "$runs" --style basic --export-json "$work/add.json" \
    --prepare "rm -rf $work/hs" -n hstore-add "$hstore --store $work/hs store add $tree" \
    --prepare "chmod -R u+w $work/nix 2>/dev/null; rm -rf $work/nix" -n nix-store-add \
        "nix-store --store 'local?root=$work/nix' --add $tree" \
    --prepare "rm -f $work/t.tar.zst" -n tar-zstd "tar -C $tree -cf - . | zstd -3 -T0 -q -o $work/t.tar.zst"

# Leave one store in place for dump.
rm -rf "$work/hs"
address=$("$hstore" --store "$work/hs" store add "$tree")
store_bytes=$(du -sb "$work/hs/objects-v1" | cut -f1)
tar_bytes=$(stat -c %s "$work/t.tar.zst")

echo; echo "== dump to /dev/null =="
hyperfine --runs "$runs" --warmup 1 --style basic --export-json "$work/dump.json" \
    -n hstore-dump "$hstore --store $work/hs store dump $address > /dev/null" \
    -n nix-store-dump "nix-store --dump $tree > /dev/null"
"$hstore" --store "$work/hs" store dump "$address" | cmp - <(nix-store --dump "$tree") && echo "dump: byte-identical to nix-store --dump"

echo; echo "== peak RSS of hstore store add, one $big_size file =="
# The generators die of SIGPIPE when head has enough: not an error here.
set +o pipefail
openssl enc -aes-128-ctr -nosalt -pass pass:hstore-bench </dev/zero 2>/dev/null | head -c "$big_size" >"$work/random.bin"
# Compressible: real binaries and text (the tree as tar, repeated), cut to the same size.
{ while :; do tar -C "$tree" -cf - . 2>/dev/null || break; done; } | head -c "$big_size" >"$work/compressible.bin"
set -o pipefail
rss() { rm -rf "$work/rss"; /usr/bin/time -f '%M %e' "$hstore" --store "$work/rss" store add "$1" 2>&1 >/dev/null | tail -1; }
read -r rss_random secs_random < <(rss "$work/random.bin")
read -r rss_text secs_text < <(rss "$work/compressible.bin")
big_bytes=$(stat -c %s "$work/random.bin")

echo; echo "== summary =="
python3 - "$work/add.json" "$work/dump.json" "$bytes" "$store_bytes" "$tar_bytes" \
    "$rss_random" "$secs_random" "$rss_text" "$secs_text" "$big_bytes" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"] + json.load(open(sys.argv[2]))["results"]
add = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
dump = {r["command"]: r["mean"] for r in json.load(open(sys.argv[2]))["results"]}
cpu = {r["command"]: r["user"] + r["system"] for r in results}
size, store_bytes, tar_bytes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rss_random, secs_random, rss_text, secs_text, big = int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
mb = lambda s: size / s / 1e6
for name, mean in {**add, **dump}.items():
    print(f"{name:16} {mean:8.2f} s  {mb(mean):8.1f} MB/s   cpu {cpu[name]:7.2f} s")
# On a shared machine wall time includes waiting for other tenants; CPU time (user+sys) is the steadier comparison.
print(f"add  ratio hstore/nix-store (cpu time):   {cpu['nix-store-add'] / cpu['hstore-add']:.2f}x")
print(f"dump ratio hstore/nix-store (cpu time):   {cpu['nix-store-dump'] / cpu['hstore-dump']:.2f}x")
print(f"add  ratio hstore/nix-store (throughput): {add['nix-store-add'] / add['hstore-add']:.2f}x   (goal >= 3)")
print(f"add  ratio hstore/tar-zstd  (throughput): {add['tar-zstd'] / add['hstore-add']:.2f}x")
print(f"dump ratio hstore/nix-store (throughput): {dump['nix-store-dump'] / dump['hstore-dump']:.2f}x   (goal >= 1)")
print(f"size on disk: hstore objects {store_bytes / 1e6:.0f} MB, tar.zst {tar_bytes / 1e6:.0f} MB, tree {size / 1e6:.0f} MB")
print(f"peak RSS add {big / 2**30:.0f} GiB incompressible: {rss_random / 1024:.1f} MB ({big / secs_random / 1e6:.0f} MB/s)   (goal <= 64)")
print(f"peak RSS add {big / 2**30:.0f} GiB compressible:   {rss_text / 1024:.1f} MB ({big / secs_text / 1e6:.0f} MB/s)   (goal <= 64)")
PY
