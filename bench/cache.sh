#!/usr/bin/env bash
# Benchmark: a shared cache on a local three-node Garage cluster (replication factor 3) against a bundle file, in one
# run, on the same closure: push vs `hstore export -o FILE`, pull into an empty store vs `hstore import FILE`, and a
# no-op push (the cache already holds everything).
#
# Closure: the real InfiniLM-SVC lockfile (./lockfile.json: 1 git repository + 246 crates), fetched through the
# InfiniLM-SVC git mirror (crates.io through this machine's configured registry mirror). If that fetch fails,
# `CLOSURE=self` benches hstore's own source tree instead, and says so.
#
# Goals (issue 12): pull ≤ 2× import; push ≤ 2× export; no-op push ≤ 0.5 s.
#
# Usage: bench/cache.sh   (needs `garage` on PATH or in ~/.cargo/bin, and a release build of hstore)
# Env:   BENCH_DIR (default /tmp/hstore-cache-bench), HSTORE (a prebuilt binary), SVC_MIRROR (a bare git repo),
#        CACHE_URL (bench this cache instead of starting Garage, e.g. file:///mnt/nfs/cache)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

: "${CARGO_TARGET_DIR:=target}"
if [[ -z "${HSTORE:-}" ]]; then
  cargo build --release --quiet --bin hstore
  HSTORE="$CARGO_TARGET_DIR/release/hstore"
fi
HSTORE=$(realpath "$HSTORE")
GARAGE=$(command -v garage || echo "$HOME/.cargo/bin/garage")
[[ -n "${CACHE_URL:-}" || -x "$GARAGE" ]] || { echo "garage is not installed: cargo install garage --locked" >&2; exit 2; }
W=${BENCH_DIR:-/tmp/hstore-cache-bench}
rm -rf "$W"; mkdir -p "$W"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

now() { date +%s.%N; }
secs() { local start; start=$(now); "$@" >/dev/null 2>"$W/last.err" || { cat "$W/last.err" >&2; return 1; }; echo "$(now) - $start" | bc; }

# -- the closure -----------------------------------------------------------------------------------------------------
export HSTORE_STORE="$W/store-a" HSTORE_CACHE="$W/hcache"
SVC_MIRROR=${SVC_MIRROR:-/work/.mirror/Ceng23333+InfiniLM-SVC/repo}
CLOSURE=${CLOSURE:-svc}
LOCKFILE="$repo/lockfile.json"
if [[ "$CLOSURE" == svc ]] && "$HSTORE" fetch --lockfile "$LOCKFILE" \
     --mirror "https://github.com/Ceng23333/InfiniLM-SVC.git=file://$SVC_MIRROR" >/dev/null 2>"$W/fetch.err"; then
  echo "closure: InfiniLM-SVC (./lockfile.json, fetched through $SVC_MIRROR)"
else
  [[ "$CLOSURE" == svc ]] && { echo "InfiniLM-SVC fetch failed; benching hstore's own tree instead:" >&2; tail -3 "$W/fetch.err" >&2; }
  addr=$("$HSTORE" store add "$repo" 2>/dev/null)
  LOCKFILE="$W/lockfile.json"
  printf '{"version":1,"recipes":[],"artifacts":[{"kind":"path","id":"path+self","path":"self","address":"%s","size":0}]}\n' "$addr" > "$LOCKFILE"
  echo "closure: hstore's own source tree (CLOSURE=self)"
fi
echo "objects: $("$HSTORE" store ls | wc -l), $(du -sh "$W/store-a/objects-v1" | cut -f1) in the store ($(nproc) cores)"

# -- a three-node Garage cluster on 127.0.0.1 ------------------------------------------------------------------------
if [[ -z "${CACHE_URL:-}" ]]; then
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for n in 0 1 2; do
  mkdir -p "$W/g$n/meta" "$W/g$n/data"
  rpc=$(port); s3=$(port); echo "$s3" > "$W/g$n/s3port"
  cat > "$W/g$n/garage.toml" <<TOML
metadata_dir = "$W/g$n/meta"
data_dir = "$W/g$n/data"
db_engine = "sqlite"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
TOML
  RUST_LOG=garage=warn "$GARAGE" -c "$W/g$n/garage.toml" server >"$W/g$n/log" 2>&1 &
  pids+=($!)
done
g() { local n=$1; shift; for _ in $(seq 1 240); do "$GARAGE" -c "$W/g$n/garage.toml" "$@" 2>/dev/null && return 0; sleep 0.25; done; "$GARAGE" -c "$W/g$n/garage.toml" "$@"; }
ids=(); for n in 0 1 2; do ids+=("$(g "$n" node id -q)"); done
g 0 node connect "${ids[1]}" >/dev/null; g 0 node connect "${ids[2]}" >/dev/null
for id in "${ids[@]}"; do g 0 layout assign -z dc1 -c 10GB "${id:0:16}" >/dev/null; done
g 0 layout apply --version 1 >/dev/null
g 0 bucket create hstore-cache >/dev/null
key_id=GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'); key_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
g 0 key import --yes -n bench "$key_id" "$key_secret" >/dev/null
g 0 bucket allow --read --write --owner hstore-cache --key bench >/dev/null
export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$W/g0/s3port")" AWS_REGION=garage
export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret
CACHE=s3://hstore-cache/bench
else
  CACHE=$CACHE_URL
fi

# -- side by side ----------------------------------------------------------------------------------------------------
sync
T_EXPORT=$(secs "$HSTORE" export --lockfile "$LOCKFILE" -o "$W/b.hsb")
T_PUSH=$(secs "$HSTORE" cache push "$CACHE" --lockfile "$LOCKFILE")
T_NOOP=$(secs "$HSTORE" cache push "$CACHE" --lockfile "$LOCKFILE")
T_IMPORT=$(secs "$HSTORE" --store "$W/store-b" import "$W/b.hsb")
rm -rf "$HSTORE_CACHE/cache-indexes-v1"   # a fresh node: no index cached yet
T_PULL=$(secs "$HSTORE" --store "$W/store-c" cache pull "$CACHE" --lockfile "$LOCKFILE")
"$HSTORE" --store "$W/store-c" store verify >/dev/null 2>&1 && VERIFY=clean || VERIFY=FAILED
printf '  %-52s %7.2f s\n' "hstore export -o FILE ($(( $(stat -c %s "$W/b.hsb") >> 20 )) MiB)" "$T_EXPORT" \
  "hstore cache push $CACHE (cold)" "$T_PUSH" \
  "hstore import FILE (empty store)" "$T_IMPORT" \
  "hstore cache pull (empty store; verify: $VERIFY)" "$T_PULL" \
  "hstore cache push (no-op: cache has everything)" "$T_NOOP"
awk -v e="$T_EXPORT" -v p="$T_PUSH" -v i="$T_IMPORT" -v l="$T_PULL" -v n="$T_NOOP" 'BEGIN {
  printf "ratios: push/export %.2fx (goal <= 2), pull/import %.2fx (goal <= 2), no-op push %.2f s (goal <= 0.5)\n",
    p / e, l / i, n }'
