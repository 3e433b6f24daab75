#!/usr/bin/env bash
# Benchmark of the store against the reference tools, side by side in one run (not a test).
#
#   bench/store.sh [TREE]        TREE defaults to the Rust toolchain directory (~1.3 GB, ~50k files)
#
# Measures, with hyperfine (mean of RUNS runs, page cache warm for every tool alike):
#   add:  `hstore store add TREE` into a cold store  vs  `nix-store --add TREE` into a fresh local store
#         vs  `tar -c TREE | zstd -3 -T0 > file`
#   warm: `hstore store add TREE` again (the stat cache knows every file)  vs  the cold add
#   dump: `hstore store dump ADDR > /dev/null`  vs  `nix-store --dump TREE > /dev/null`
# and peak RSS (`/usr/bin/time -f %M`) of `hstore store add` of a 4 GiB file, incompressible and compressible.
# With SCALE=N (e.g. 500000): a generated tree of N small files: cold add, warm add, verify, gc, peak RSS, and
# the cost per file (it must stay flat as N grows: run it with two N to compare).
# Goals (issues 2, 13): add >= 1x tar|zstd and >= 3x nix-store --add; warm add >= 20x the cold add;
# dump >= nix-store --dump (0.6x when decompressing); RSS <= 64 MB. The machine is shared and noisy, so read the
# ratios (and CPU time), not the absolute figures. On ext4 without a journal (this machine's disk), leave a few
# minutes after deleting many files (another run's cleanup at exit, a test suite) before a run: creating files
# skips inodes freed in the last minutes (see `aside` below), which slows every tool that creates files (hstore,
# nix-store) and not `tar | zstd`.
#
# Environment: HSTORE (binary; default $CARGO_TARGET_DIR/release/hstore or target/release/hstore), RUNS (default 3),
# BENCH_DIR (scratch directory on the same disk as TREE's page cache; default a new dir under /tmp),
# BIG_SIZE (default 4G; 0 skips), SCALE (default 0: skipped), SCALE_ONLY (1: only the scale part). Needs: hyperfine, nix-bin, zstd, tar, python3, GNU time. Everything is removed at exit.
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

# SCALE_ONLY=1 runs only the scale part below (it needs none of the toolchain figures).
if [[ ${SCALE_ONLY:-0} != 1 ]]; then
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$tree" -type f | wc -l)
echo "tree: $tree  ($((bytes / 1000000)) MB in $files files)  hstore: $hstore  runs: $runs"
echo "cpus: $(nproc)  $(nix-store --version)  $(zstd --version | head -1)"
find "$tree" -type f -exec cat {} + >/dev/null # warm the page cache for every tool alike

# A previous run's store is moved aside, not deleted, before the next cold add (all is deleted at exit): on ext4
# without a journal (this machine's disk), files created within a minute of deleting tens of thousands make the inode
# allocator skip each recently deleted inode (`recently_deleted` under `ext4_create`: 15-18% of a cold add's CPU in
# `perf`), a cost of the benchmark's own cleanup that `tar | zstd`, writing one file, never pays.
mkdir -p "$work/old"
aside() { echo "[ ! -e $1 ] || mv $1 \$(mktemp -d $work/old/run.XXXXXX)/"; }

echo; echo "== add (cold store each run) =="
hyperfine --runs "$runs" --style basic --export-json "$work/add.json" \
    --prepare "$(aside "$work/hs")" -n hstore-add "$hstore --store $work/hs store add $tree" \
    --prepare "$(aside "$work/nix")" -n nix-store-add \
        "nix-store --store 'local?root=$work/nix' --add $tree" \
    --prepare "rm -f $work/t.tar.zst" -n tar-zstd "tar -C $tree -cf - . | zstd -3 -T0 -q -o $work/t.tar.zst"

# Leave one store in place for the warm add and dump.
eval "$(aside "$work/hs")"
address=$("$hstore" --store "$work/hs" store add "$tree")

echo; echo "== warm add (unchanged tree, same store: the stat cache) =="
hyperfine --runs "$runs" --warmup 1 --style basic --export-json "$work/warm.json" \
    -n hstore-add-warm "$hstore --store $work/hs store add $tree"
store_bytes=$(du -sbc "$work/hs/objects-v1" $([[ -d $work/hs/packs-v1 ]] && echo "$work/hs/packs-v1") | tail -1 | cut -f1)
tar_bytes=$(stat -c %s "$work/t.tar.zst")

echo; echo "== dump to /dev/null (decompressing objects, then reading the materialized-tree cache) =="
hyperfine --runs "$runs" --warmup 1 --style basic --export-json "$work/dump.json" \
    -n hstore-dump "$hstore --store $work/hs store dump $address > /dev/null" \
    -n nix-store-dump "nix-store --dump $tree > /dev/null"
"$hstore" --store "$work/hs" store dump "$address" | cmp - <(nix-store --dump "$tree") && echo "dump: byte-identical to nix-store --dump"
# Fill the tree cache the way a build does (a checkout under trees-v1/<hex>), then dump again.
"$hstore" --store "$work/hs" store materialize "$address" "$work/hs/trees-v1/${address#b3:}"
hyperfine --runs "$runs" --warmup 1 --style basic --export-json "$work/dump-cached.json" \
    -n hstore-dump-cached "$hstore --store $work/hs store dump $address > /dev/null" \
    -n nix-store-dump "nix-store --dump $tree > /dev/null"
"$hstore" --store "$work/hs" store dump "$address" | cmp - <(nix-store --dump "$tree") && echo "dump (cached): byte-identical to nix-store --dump"

rss_random=- secs_random=- rss_text=- secs_text=- big_bytes=-
if [[ $big_size != 0 ]]; then
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
rm -f "$work/random.bin" "$work/compressible.bin"
fi

echo; echo "== summary =="
python3 - "$work/add.json" "$work/dump.json" "$work/warm.json" "$work/dump-cached.json" "$bytes" "$store_bytes" "$tar_bytes" \
    "$rss_random" "$secs_random" "$rss_text" "$secs_text" "$big_bytes" <<'PY'
import json, sys
warm_results = json.load(open(sys.argv[3]))["results"]
results = json.load(open(sys.argv[1]))["results"] + json.load(open(sys.argv[2]))["results"] + warm_results
add = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
dump = {r["command"]: r["mean"] for r in json.load(open(sys.argv[2]))["results"]}
warm = {r["command"]: r["mean"] for r in warm_results}
cpu = {r["command"]: r["user"] + r["system"] for r in results}
cached_results = json.load(open(sys.argv[4]))["results"]
results += cached_results
cached = {r["command"]: r["mean"] for r in cached_results}
cpu_cached = {r["command"]: r["user"] + r["system"] for r in cached_results}
size, store_bytes, tar_bytes = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
rss_random, secs_random, rss_text, secs_text, big = sys.argv[8:13]
mb = lambda s: size / s / 1e6
for name, mean in {**add, **warm, **dump}.items():
    print(f"{name:16} {mean:8.2f} s  {mb(mean):8.1f} MB/s   cpu {cpu[name]:7.2f} s")
# On a shared machine wall time includes waiting for other tenants; CPU time (user+sys) is the steadier comparison.
print(f"add  ratio hstore/nix-store (cpu time):   {cpu['nix-store-add'] / cpu['hstore-add']:.2f}x")
print(f"dump ratio hstore/nix-store (cpu time):   {cpu['nix-store-dump'] / cpu['hstore-dump']:.2f}x")
print(f"add  ratio hstore/nix-store (throughput): {add['nix-store-add'] / add['hstore-add']:.2f}x   (goal >= 3)")
print(f"add  ratio hstore/tar-zstd  (throughput): {add['tar-zstd'] / add['hstore-add']:.2f}x   (goal >= 1)")
print(f"add  ratio hstore/tar-zstd  (cpu time):   {cpu['tar-zstd'] / cpu['hstore-add']:.2f}x")
print(f"warm add speed-up over cold add (wall):   {add['hstore-add'] / warm['hstore-add-warm']:.1f}x   (goal >= 20)")
print(f"{'hstore-dump-cached':16} {cached['hstore-dump-cached']:8.2f} s  {mb(cached['hstore-dump-cached']):8.1f} MB/s   cpu {cpu_cached['hstore-dump-cached']:7.2f} s   (nix-store-dump alongside: {cached['nix-store-dump']:.2f} s)")
print(f"dump ratio hstore/nix-store (throughput): {dump['nix-store-dump'] / dump['hstore-dump']:.2f}x   (goal >= 0.6, decompressing)")
print(f"dump ratio hstore/nix-store (throughput): {cached['nix-store-dump'] / cached['hstore-dump-cached']:.2f}x   (goal >= 1, tree cached)")
print(f"size on disk: hstore objects {store_bytes / 1e6:.0f} MB, tar.zst {tar_bytes / 1e6:.0f} MB, tree {size / 1e6:.0f} MB")
if big != "-":
    rss_random, secs_random, rss_text, secs_text, big = int(rss_random), float(secs_random), int(rss_text), float(secs_text), int(big)
    print(f"peak RSS add {big / 2**30:.0f} GiB incompressible: {rss_random / 1024:.1f} MB ({big / secs_random / 1e6:.0f} MB/s)   (goal <= 64)")
    print(f"peak RSS add {big / 2**30:.0f} GiB compressible:   {rss_text / 1024:.1f} MB ({big / secs_text / 1e6:.0f} MB/s)   (goal <= 64)")
PY

fi # SCALE_ONLY

scale=${SCALE:-0}
if [[ $scale != 0 ]]; then
    echo; echo "== scale: $scale small files (cost per file must stay flat) =="
    gen="$work/scale-tree"
    # 1000 directories of N/1000 files, 10-200 bytes each, distinct contents (no dedup shortcut).
    python3 - "$gen" "$scale" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = 1000
for i in range(n):
    d = os.path.join(root, f"d{i % per:03}", f"s{(i // per) % 10}")
    if i < per * 10:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "w") as f:
        f.write(f"file {i} " * (1 + i % 20))
PY
    sleep 3 # let the files age past the stat cache's racy window (2 s), as any real tree has
    timed() { local label=$1; shift; /usr/bin/time -f "$label %e s wall, %U+%S s cpu, %M KB peak RSS" "$@" >/dev/null; }
    rm -rf "$work/scale-store"
    timed "add (cold):" "$hstore" --store "$work/scale-store" store add "$gen"
    timed "add (warm):" "$hstore" --store "$work/scale-store" store add "$gen"
    timed "verify:    " "$hstore" --store "$work/scale-store" store verify
    timed "gc (all):  " "$hstore" --store "$work/scale-store" store gc   # no root: everything goes
fi
