#!/usr/bin/env bash
# Benchmark: a shared cache on a local three-node Garage cluster (replication factor 3) against a bundle file, in one
# run, on the same closure: push vs `hstore export -o FILE`, pull into an empty store vs `hstore import FILE`, and a
# no-op push (the cache already holds everything).
#
# Closure: the real InfiniLM-SVC lockfile (./lockfile.json: 1 git repository + 246 crates), fetched through the
# InfiniLM-SVC git mirror when there is one (SVC_MIRROR), else from GitHub, and crates.io. If that fetch fails, the
# bench falls back to `CLOSURE=self` (hstore's own committed source tree, much smaller) and says so loudly;
# `CLOSURE=self` picks it on purpose.
#
# Goals (issue 24): push ≤ 1.25× export; pull ≤ 1.1× import; no-op push ≤ 0.2 s. Printed as ratios at the end.
#
# Usage: bench/cache.sh   (needs `garage` on PATH or in ~/.cargo/bin, and a release build of hstore)
# Env:   BENCH_DIR (scratch, default /tmp/hstore-cache-bench), HSTORE (a prebuilt binary), SVC_MIRROR (a bare git
#        repo of InfiniLM-SVC; used only if it exists), CLOSURE (svc | self), BENCH_STORE (keep the fetched closure in
#        this store between runs), RUNS (default 3; medians), HSTORE_CACHE_PROFILE=1 (print push/pull phase timings),
#        CACHE_URL (bench this cache instead of starting Garage, e.g. file:///mnt/nfs/cache; each run under a new subpath),
#        BASELINE (another hstore binary whose push, no-op push and pull are timed in the same runs, for before/after)
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
# CPU seconds (user + system) the Garage nodes have used so far: with HSTORE_CACHE_PROFILE=1 each cache command's
# share of the machine is printed beside hstore's own.
garage_cpu() {
  local total=0 pid
  for pid in "${pids[@]}"; do
    [[ -r /proc/$pid/stat ]] && total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat") ))
  done
  echo "$total / $(getconf CLK_TCK)" | bc -l
}
# `profiled NAME COMMAND…`: runs COMMAND under `secs`, with the cache crate's phase timings and hstore's and Garage's
# CPU seconds kept in $W/profile-NAME.log when HSTORE_CACHE_PROFILE is set.
profiled() {
  local name=$1; shift
  if [[ -z "${HSTORE_CACHE_PROFILE:-}" ]]; then secs "$@"; return; fi
  local before; before=$(garage_cpu)
  secs env RUST_LOG=hstore_cache=debug NO_COLOR=1 /usr/bin/time -f 'hstore CPU: %U s user, %S s system' "$@"
  { grep -a 'phase\|hstore CPU' "$W/last.err" || true
    echo "garage CPU: $(echo "$(garage_cpu) - $before" | bc -l | xargs printf '%.2f') s (all three nodes)"; } > "$W/profile-$name.log"
}

# -- the closure -----------------------------------------------------------------------------------------------------
# BENCH_STORE keeps the fetched closure between runs (fetching 246 crates takes minutes); without it the store lives in
# the scratch directory and is fetched afresh. The closure kind is remembered beside it (`$BENCH_STORE.closure`).
export HSTORE_CACHE="$W/hcache"
STORE_A=${BENCH_STORE:-$W/store-a}
export HSTORE_STORE="$STORE_A"
CLOSURE=${CLOSURE:-svc}
LOCKFILE="$repo/lockfile.json"
SELF_LOCKFILE="$STORE_A.lockfile.json"
self_closure() {
  # The committed source tree (`git archive HEAD`), not the working directory: no build outputs (target/ can be
  # gigabytes), and the same closure on every machine at the same commit.
  local addr
  rm -rf "$W/self"; mkdir -p "$W/self"
  git -C "$repo" archive HEAD | tar -x -C "$W/self"
  addr=$("$HSTORE" store add "$W/self" 2>/dev/null)
  printf '{"version":1,"recipes":[],"artifacts":[{"kind":"path","id":"path+self","path":"self","address":"%s","size":0}]}\n' \
    "$addr" > "$SELF_LOCKFILE"
}
if [[ -n "${BENCH_STORE:-}" && -s "$STORE_A.closure" && "$(cat "$STORE_A.closure")" == "$CLOSURE" ]]; then
  [[ "$CLOSURE" == self ]] && LOCKFILE=$SELF_LOCKFILE
  echo "closure: $CLOSURE, reused from BENCH_STORE=$STORE_A (delete it to refetch)"
elif [[ "$CLOSURE" == svc ]]; then
  # The InfiniLM-SVC repository comes through a local git mirror when one is given (SVC_MIRROR, a bare repo; the
  # default is where this project's machines keep one) and from GitHub otherwise; crates come from crates.io.
  SVC_MIRROR=${SVC_MIRROR:-/work/.mirror/Ceng23333+InfiniLM-SVC/repo}
  mirror=()
  if [[ -d "$SVC_MIRROR" ]]; then
    mirror=(--mirror "https://github.com/Ceng23333/InfiniLM-SVC.git=file://$SVC_MIRROR")
    source_note="through the git mirror $SVC_MIRROR"
  else
    source_note="from GitHub (no git mirror at SVC_MIRROR=$SVC_MIRROR)"
  fi
  if "$HSTORE" fetch --lockfile "$LOCKFILE" "${mirror[@]}" >/dev/null 2>"$W/fetch.err"; then
    echo "closure: InfiniLM-SVC (./lockfile.json, fetched $source_note)"
    [[ -n "${BENCH_STORE:-}" ]] && echo svc > "$STORE_A.closure"
  else
    echo "NOTE: the InfiniLM-SVC fetch failed ($source_note); falling back to CLOSURE=self," \
      "hstore's own source tree, which is much smaller: these figures are not the issue's closure:" >&2
    tail -3 "$W/fetch.err" >&2
    CLOSURE=self
  fi
fi
if [[ "$CLOSURE" == self && "$LOCKFILE" != "$SELF_LOCKFILE" ]]; then
  self_closure
  LOCKFILE=$SELF_LOCKFILE
  [[ -n "${BENCH_STORE:-}" ]] && echo self > "$STORE_A.closure"
  echo "closure: hstore's own source tree (CLOSURE=self)"
fi
OBJECTS=$("$HSTORE" store ls | wc -l)
echo "objects: $OBJECTS, $(du -sh "$STORE_A" | cut -f1) in the store ($(nproc) cores)"

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
# Each run pushes to a fresh prefix (a cold cache), pulls into an empty store with no index cached (a fresh node), and
# times export/import on the same closure in between, so the ratios compare like with like on a machine whose load
# shifts. With RUNS > 1 the figures are medians. HSTORE_CACHE_PROFILE=1 adds each command's phase timings (the
# cache crate's debug events) to $W/profile-*.log and prints them.
RUNS=${RUNS:-3}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { echo "$1 / $2" | bc -l; }
# `cache_runs BIN TAG STORE`: cold push, no-op push, pull into an empty STORE (no index cached): "push noop pull".
cache_runs() {
  local bin=$1 tag=$2 store=$3 url="$CACHE/run-$run-$RANDOM" push noop pull
  rm -rf "$store" "$HSTORE_CACHE/cache-indexes-v1"
  push=$(profiled "push$tag-$run" "$bin" cache push "$url" --lockfile "$LOCKFILE")
  noop=$(profiled "noop$tag-$run" "$bin" cache push "$url" --lockfile "$LOCKFILE")
  rm -rf "$HSTORE_CACHE/cache-indexes-v1"   # a fresh node: no index cached yet
  pull=$(profiled "pull$tag-$run" "$bin" --store "$store" cache pull "$url" --lockfile "$LOCKFILE")
  "$bin" --store "$store" store verify >/dev/null 2>&1 || echo "run $run: the store $bin pulled FAILED verification" >&2
  echo "$push $noop $pull"
}
declare -a E P N I L BP BN BL
VERIFY=clean
for run in $(seq 1 "$RUNS"); do
  rm -rf "$W/store-b" "$W/b.hsb"
  sync
  E+=("$(profiled "export-$run" "$HSTORE" export --lockfile "$LOCKFILE" -o "$W/b.hsb")")
  read -r p n l < <(cache_runs "$HSTORE" "" "$W/store-c")
  P+=("$p"); N+=("$n"); L+=("$l")
  I+=("$(profiled "import-$run" "$HSTORE" --store "$W/store-b" import "$W/b.hsb")")
  "$HSTORE" --store "$W/store-c" store verify >/dev/null 2>&1 || VERIFY=FAILED
  awk -v r="$run" -v e="${E[-1]}" -v p="$p" -v n="$n" -v i="${I[-1]}" -v l="$l" 'BEGIN {
    printf "run %d: export %.2f s, push %.2f s (%.2fx), no-op push %.2f s, import %.2f s, pull %.2f s (%.2fx)\n",
      r, e, p, p / e, n, i, l, l / i }'
  if [[ -n "${BASELINE:-}" ]]; then
    read -r p n l < <(cache_runs "$BASELINE" "-baseline" "$W/store-d")
    BP+=("$p"); BN+=("$n"); BL+=("$l")
    awk -v r="$run" -v e="${E[-1]}" -v p="$p" -v n="$n" -v i="${I[-1]}" -v l="$l" 'BEGIN {
      printf "run %d, BASELINE: push %.2f s (%.2fx), no-op push %.2f s, pull %.2f s (%.2fx)\n", r, p, p / e, n, l, l / i }'
  fi
  if [[ -n "${HSTORE_CACHE_PROFILE:-}" ]]; then
    for phase in export push noop import pull ${BASELINE:+push-baseline noop-baseline pull-baseline}; do
      echo "  $phase:"; sed 's/^ *DEBUG //; s/^/    /' "$W/profile-$phase-$run.log"
    done
  fi
done
T_EXPORT=$(printf '%s\n' "${E[@]}" | median); T_PUSH=$(printf '%s\n' "${P[@]}" | median)
T_NOOP=$(printf '%s\n' "${N[@]}" | median); T_IMPORT=$(printf '%s\n' "${I[@]}" | median)
T_PULL=$(printf '%s\n' "${L[@]}" | median)
R_PUSH=$(for k in "${!E[@]}"; do ratio "${P[$k]}" "${E[$k]}"; done | median)
R_PULL=$(for k in "${!I[@]}"; do ratio "${L[$k]}" "${I[$k]}"; done | median)
echo "closure: $CLOSURE, $OBJECTS objects; bundle $(( $(stat -c %s "$W/b.hsb") >> 20 )) MiB; medians of $RUNS runs:"
printf '  %-52s %7.2f s\n' "hstore export -o FILE" "$T_EXPORT" \
  "hstore cache push $CACHE (cold)" "$T_PUSH" \
  "hstore import FILE (empty store)" "$T_IMPORT" \
  "hstore cache pull (empty store; verify: $VERIFY)" "$T_PULL" \
  "hstore cache push (no-op: cache has everything)" "$T_NOOP"
awk -v p="$R_PUSH" -v l="$R_PULL" -v n="$T_NOOP" 'BEGIN {
  printf "ratios (median of per-run ratios): push/export %.2fx (goal <= 1.25), pull/import %.2fx (goal <= 1.1), no-op push %.2f s (goal <= 0.2)\n",
    p, l, n }'
if [[ -n "${BASELINE:-}" ]]; then
  awk -v p="$(for k in "${!E[@]}"; do ratio "${BP[$k]}" "${E[$k]}"; done | median)" \
      -v l="$(for k in "${!I[@]}"; do ratio "${BL[$k]}" "${I[$k]}"; done | median)" \
      -v n="$(printf '%s\n' "${BN[@]}" | median)" 'BEGIN {
    printf "BASELINE (%s), same runs: push/export %.2fx, pull/import %.2fx, no-op push %.2f s\n", ENVIRON["BASELINE"], p, l, n }'
fi
