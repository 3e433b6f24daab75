#!/usr/bin/env bash
# Benchmark: hstore export/import against `nix-store --export | nix-store --import` and `tar | zstd -3`, in one run.
#
# Data (≥ 1 GB, large and small objects): the Rust toolchain's bin/ and lib/ (large .so/.rlib files) and three doc
# trees (~4,000 small files), plus a 384 MiB incompressible file and a 256 MiB compressible one. Then the peak RSS
# of importing a bundle that holds one 4 GiB object.
#
# Usage: bench/bundle.sh            (builds `hstore` in release mode; needs nix-bin, zstd, GNU time; run as root)
# Env:   BENCH_DIR (default /tmp/hstore-bench), HSTORE (a prebuilt binary), TOOLCHAIN (a rustup toolchain dir)
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CARGO_TARGET_DIR:=target}"
if [[ -z "${HSTORE:-}" ]]; then
  cargo build --release --quiet
  HSTORE="$CARGO_TARGET_DIR/release/hstore"
fi
HSTORE=$(realpath "$HSTORE")
TOOLCHAIN=$(realpath "${TOOLCHAIN:-$HOME/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu}")
W=${BENCH_DIR:-/tmp/hstore-bench}
rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT

# -- data -------------------------------------------------------------------------------------------------------
D="$W/data"; mkdir -p "$D/big" "$D/toolchain/share"
cp -a "$TOOLCHAIN/bin" "$TOOLCHAIN/lib" "$D/toolchain/"
for doc in std src book; do mkdir -p "$D/toolchain/share/$doc"; cp -a "$TOOLCHAIN/share/doc/rust/html/$doc/." "$D/toolchain/share/$doc/"; done
head -c $((384 << 20)) /dev/urandom > "$D/big/noise.bin"
set +o pipefail # head closes the pipe early on purpose
for _ in $(seq 1 64); do cat "$TOOLCHAIN/share/doc/rust/html/std/index.html" "$TOOLCHAIN/lib/rustlib/multirust-channel-manifest.toml"; done \
  | head -c $((4 << 20)) > "$W/chunk"
set -o pipefail
for _ in $(seq 1 64); do cat "$W/chunk"; done > "$D/big/text.bin"; rm "$W/chunk"
BYTES=$(du -sb "$D" | cut -f1)
FILES=$(find "$D" -type f | wc -l)
MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')
echo "data: $MB MiB in $FILES files ($(nproc) cores, $(uname -r))"

secs() { /usr/bin/time -f %e -o "$W/t" "$@" >/dev/null; cat "$W/t"; }   # wall seconds of one command
rss() { /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null; cat "$W/t"; } # wall seconds and peak RSS (KiB)
rate() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%7.1f MiB/s", b / 1048576 / s }'; }
row() { printf "  %-44s %7.2f s  %s  %s\n" "$1" "$2" "$(rate "$2")" "${3:-}"; }

# -- hstore ------------------------------------------------------------------------------------------------------
export HSTORE_STORE="$W/hs-src"
T_ADD=$(secs bash -c "$HSTORE store add $D/toolchain > $W/a1 && $HSTORE store add $D/big > $W/a2")
A1=$(cat "$W/a1"); A2=$(cat "$W/a2")
printf '{"version":1,"recipes":[],"artifacts":[{"kind":"path","id":"path+big","path":"big","address":"%s","size":0},{"kind":"path","id":"path+toolchain","path":"toolchain","address":"%s","size":0}]}\n' "$A2" "$A1" > "$W/lockfile.json"
sync
T_HEX=$(secs "$HSTORE" export --lockfile "$W/lockfile.json" -o "$W/b.hsb")
read -r T_HIM HIM_RSS < <(rss "$HSTORE" --store "$W/hs-dst" import "$W/b.hsb")
T_HPIPE=$(secs bash -c "$HSTORE export --lockfile $W/lockfile.json -o - | $HSTORE --store $W/hs-pipe import -")
HS_BUNDLE=$(stat -c %s "$W/b.hsb")
"$HSTORE" --store "$W/hs-dst" store verify >/dev/null 2>&1 && VERIFY=clean || VERIFY=FAILED
rm -rf "$W/hs-dst" "$W/hs-pipe" "$W/b.hsb"

# -- nix-store (local store under a temp root, no daemon) ----------------------------------------------------------
NIX_SRC="local?root=$W/nix-src"
T_NADD=$(secs bash -c "nix-store --store '$NIX_SRC' --add $D/toolchain $D/big > $W/np")
mapfile -t NP < "$W/np"
sync
T_NEX=$(secs bash -c "nix-store --store '$NIX_SRC' --export ${NP[*]} > $W/n.export")
read -r T_NIM NIM_RSS < <(rss bash -c "nix-store --store 'local?root=$W/nix-dst' --import < $W/n.export")
T_NPIPE=$(secs bash -c "nix-store --store '$NIX_SRC' --export ${NP[*]} | nix-store --store 'local?root=$W/nix-pipe' --import")
NIX_BUNDLE=$(stat -c %s "$W/n.export")
chmod -R u+w "$W"/nix-* 2>/dev/null || true; rm -rf "$W"/nix-* "$W/n.export"

# -- tar | zstd -3 -----------------------------------------------------------------------------------------------
T_TEX=$(secs bash -c "tar -C $D -cf - toolchain big | zstd -q -3 > $W/t.tar.zst")
mkdir -p "$W/tar-dst" "$W/tar-pipe"
read -r T_TIM TIM_RSS < <(rss bash -c "zstd -q -d < $W/t.tar.zst | tar -C $W/tar-dst -xf -")
T_TPIPE=$(secs bash -c "tar -C $D -cf - toolchain big | zstd -q -3 | zstd -q -d | tar -C $W/tar-pipe -xf -")
TAR_BUNDLE=$(stat -c %s "$W/t.tar.zst")
rm -rf "$W"/tar-* "$W/t.tar.zst"

echo "export (content MiB/s):"
row "hstore export -o FILE" "$T_HEX" "bundle $((HS_BUNDLE >> 20)) MiB"
row "nix-store --export > FILE" "$T_NEX" "export $((NIX_BUNDLE >> 20)) MiB"
row "tar -c | zstd -3 > FILE" "$T_TEX" "archive $((TAR_BUNDLE >> 20)) MiB"
echo "import:"
row "hstore import FILE (verify: $VERIFY)" "$T_HIM" "peak RSS $((HIM_RSS / 1024)) MiB"
row "nix-store --import < FILE" "$T_NIM" "peak RSS $((NIM_RSS / 1024)) MiB"
row "zstd -d < FILE | tar -x" "$T_TIM" "peak RSS (tar) $((TIM_RSS / 1024)) MiB"
echo "piped round trip:"
row "hstore export -o - | hstore import -" "$T_HPIPE"
row "nix-store --export | nix-store --import" "$T_NPIPE"
row "tar -c | zstd -3 | zstd -d | tar -x" "$T_TPIPE"
echo "ingest (not compared): hstore store add ${T_ADD}s, nix-store --add ${T_NADD}s"
awk -v h="$T_HIM" -v n="$T_NIM" -v t="$T_TIM" -v hp="$T_HPIPE" -v np="$T_NPIPE" -v tp="$T_TPIPE" 'BEGIN {
  printf "ratios: import hstore/nix %.1fx, hstore/tar %.2fx; round trip hstore/nix %.1fx, hstore/tar %.2fx\n",
    n / h, t / h, np / hp, tp / hp }'
rm -rf "$D" "$W/hs-src"

# -- one 4 GiB object --------------------------------------------------------------------------------------------
mkdir -p "$W/one"
head -c $((64 << 20)) /dev/urandom > "$W/chunk"
for _ in $(seq 1 64); do cat "$W/chunk"; done > "$W/one/four-gib.bin"; rm "$W/chunk"
export HSTORE_STORE="$W/hs-one"
A=$("$HSTORE" store add "$W/one")
rm -rf "$W/one"
printf '{"version":1,"recipes":[],"artifacts":[{"kind":"path","id":"path+one","path":"one","address":"%s","size":0}]}\n' "$A" > "$W/lockfile.json"
read -r T_E1 E1_RSS < <(rss "$HSTORE" export --lockfile "$W/lockfile.json" -o "$W/one.hsb")
read -r T_I1 I1_RSS < <(rss "$HSTORE" --store "$W/hs-one-dst" import "$W/one.hsb")
echo "one 4 GiB object: export ${T_E1}s peak RSS $((E1_RSS / 1024)) MiB; import ${T_I1}s peak RSS $((I1_RSS / 1024)) MiB (goal ≤ 64 MiB)"
