#!/usr/bin/env bash
# Benchmark: how big a bundle of a real closure is, and what `hstore export --level N` buys on a slow air-gap link,
# against `tar -c | zstd -19 --long` of the same files, in one run.
#
# The closure is whatever LOCKFILE pins (for hstore's own ./lockfile.json: InfiniLM-SVC's git tree, its 246 crates,
# the Rust toolchain and the wheels), fetched into a fresh store. The "same files" for tar are that closure
# materialized (`hstore store materialize` of every address the lockfile's root holds). For each way of packing:
# the time to write it, its size, and the time to import it into an empty store. Ratios are against
# `tar -c | zstd -19 --long -T0`; timings on a shared machine are noisy, sizes are exact.
#
# Usage: bench/bundle-levels.sh LOCKFILE [hstore fetch options…]
#   e.g. bench/bundle-levels.sh lockfile.json \
#          --mirror https://github.com/Ceng23333/InfiniLM-SVC.git=file:///srv/git/InfiniLM-SVC.git
# Env:   BENCH_DIR (default /tmp/hstore-levels-bench), HSTORE (a prebuilt binary), LEVELS (default "3 9 19")
set -euo pipefail
[[ $# -ge 1 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
LOCKFILE=$(realpath "$1"); shift
cd "$(dirname "$0")/.."

: "${CARGO_TARGET_DIR:=target}"
if [[ -z "${HSTORE:-}" ]]; then
  cargo build --release --quiet --bin hstore
  HSTORE="$CARGO_TARGET_DIR/release/hstore"
fi
HSTORE=$(realpath "$HSTORE")
W=${BENCH_DIR:-/tmp/hstore-levels-bench}
rm -rf "$W"; mkdir -p "$W"
trap 'chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"' EXIT
export HSTORE_STORE="$W/store"

secs() { /usr/bin/time -f %e -o "$W/t" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }; cat "$W/t"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

"$HSTORE" -q fetch --lockfile "$LOCKFILE" "$@"
root=$("$HSTORE" store roots --json | python3 -c '
import json, sys
roots = [r for r in json.load(sys.stdin) if r["name"].startswith("lockfile-")]
print(" ".join(roots[0]["addresses"]))')
mkdir -p "$W/files"
n=0; for address in $root; do n=$((n + 1)); "$HSTORE" -q store materialize "$address" "$W/files/$n"; done
CONTENT=$(du -sb "$W/files" | cut -f1)
echo "closure: $(basename "$LOCKFILE"), $("$HSTORE" store ls | wc -l) objects, $(mib "$CONTENT") MiB of files ($(nproc) cores)"
sync

T_TAR=$(secs bash -c "tar -C '$W/files' -cf - . | zstd -q -19 --long -T0 > '$W/t.tar.zst'")
TAR=$(stat -c %s "$W/t.tar.zst")
mkdir -p "$W/untar"
T_UNTAR=$(secs bash -c "zstd -q -d --long < '$W/t.tar.zst' | tar -C '$W/untar' -xf -")
rm -rf "$W/untar" "$W/t.tar.zst"
T_TAR3=$(secs bash -c "tar -C '$W/files' -cf - . | zstd -q -3 -T0 > '$W/t3.tar.zst'")
TAR3=$(stat -c %s "$W/t3.tar.zst")
rm -rf "$W/t3.tar.zst" "$W/files"

printf "%-40s %9s %9s %9s %10s\n" "" "write s" "MiB" "import s" "size/tar19"
row() { printf "%-40s %9.2f %9s %9s %10.2f\n" "$1" "$2" "$(mib "$3")" "$4" "$(awk -v a="$3" -v b="$TAR" 'BEGIN { print a / b }')"; }
row "tar -c | zstd -19 --long -T0" "$T_TAR" "$TAR" "$T_UNTAR"
row "tar -c | zstd -3 -T0" "$T_TAR3" "$TAR3" "-"
for level in default ${LEVELS:-3 9 19}; do
  flag=(); [[ "$level" == default ]] || flag=(--level "$level")
  T_EX=$(secs "$HSTORE" export --lockfile "$LOCKFILE" "${flag[@]}" -o "$W/b.hsb")
  SIZE=$(stat -c %s "$W/b.hsb")
  T_IM=$(secs "$HSTORE" --store "$W/dst" import "$W/b.hsb")
  "$HSTORE" -q --store "$W/dst" store verify >/dev/null
  rm -rf "$W/dst" "$W/b.hsb"
  row "hstore export ${flag[*]:-(stored frames)}" "$T_EX" "$SIZE" "$T_IM"
done
