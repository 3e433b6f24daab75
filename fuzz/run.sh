#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, seeded from the inputs the tests use, and prints one line per
# target (runs, corpus size, crashes). A crash leaves its input in fuzz/artifacts/<target>/ and makes this exit 1:
# turn each into a regression unit test next to the code it broke.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET…]      (default 60 s, every target)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`), and the hstore binary
# (`cargo build`; HSTORE_BIN overrides its path) to make the seed bundle and directory nodes.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(directory_decode bundle_import lockfile_parse recipe_parse archive_unpack requirements_parse)
fi
hstore=${HSTORE_BIN:-$PWD/../target/debug/hstore}
[ -x "$hstore" ] || { echo "error: no hstore binary at $hstore (run \`cargo build\` first)" >&2; exit 2; }

# Seeds: what the tests feed these parsers, made fresh (nothing binary is committed).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p corpus/{directory_decode,bundle_import,lockfile_parse,recipe_parse,archive_unpack,requirements_parse}
mkdir -p "$work/tree/src/deep"
printf 'a tree for bundle tests\n%.0s' {1..20} > "$work/tree/README"
printf 'pub fn f() -> u32 { 42 }\n%.0s' {1..50} > "$work/tree/src/lib.rs"
head -c 3000 /dev/urandom > "$work/tree/src/deep/data.bin"
ln -s src/lib.rs "$work/tree/link"
chmod +x "$work/tree/README"
(
    cd "$work"
    HSTORE_STORE="$work/store" "$hstore" store add --root seed tree > address
    address=$(cat address)
    printf '{"version":1,"recipes":[],"artifacts":[{"kind":"path","id":"path+tree","path":"tree","address":"%s","size":0}]}\n' \
        "$address" > lockfile.json
    HSTORE_STORE="$work/store" "$hstore" export -o seed.hsb 2>/dev/null
)
cp "$work/seed.hsb" corpus/bundle_import/seed.hsb
# Directory nodes: loose `.dir` files, and those inside packs (format code 3; see store/src/pack.rs for the layout).
for node in "$work"/store/objects-v1/*/*.dir; do [ -f "$node" ] && cp "$node" corpus/directory_decode/; done
python3 - "$work"/store/packs-v1 <<'PY'
import pathlib, struct, sys
for pack in sorted(pathlib.Path(sys.argv[1]).glob("*.pack")):
    data = pack.read_bytes()
    count, index = struct.unpack_from("<QQ", data, len(data) - 16)
    for entry in range(count):
        digest = data[index + entry * 49:index + entry * 49 + 32]
        code, offset, length = struct.unpack_from("<BQQ", data, index + entry * 49 + 32)
        if code == 3:
            pathlib.Path(f"corpus/directory_decode/{digest.hex()}.dir").write_bytes(data[offset:offset + length])
PY
cp "$work/lockfile.json" corpus/lockfile_parse/tiny.json
cp ../lockfile.json corpus/lockfile_parse/repo.json
for recipe in ../recipes/*.toml ../examples/*/recipes/*.toml; do
    [ -f "$recipe" ] && cp "$recipe" "corpus/recipe_parse/$(basename "$(dirname "$(dirname "$recipe")")")-$(basename "$recipe")"
done
# Requirements: the inline lines of the repository's recipes, and lines of every shape the parser takes or refuses.
python3 - ../recipes ../examples <<'PY'
import pathlib, sys, tomllib
lines = []
for root in sys.argv[1:]:
    for recipe in sorted(pathlib.Path(root).rglob("*.toml")):
        try:
            data = tomllib.loads(recipe.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        for source in data.get("sources", {}).values():
            if isinstance(source, dict):
                lines += [line for line in source.get("requirements", []) if isinstance(line, str)]
pathlib.Path("corpus/requirements_parse/recipes.txt").write_text("\n".join(lines) + "\n")
PY
printf '%s\n' '# pinned' 'foo==1.0 \' "    --hash=sha256:$(printf 'a%.0s' {1..64})" \
    'Bar_Baz[Extra, other] >= 1.0 , <2 ; python_version >= "3.8" and (os_name == "posix" or sys_platform != "win32")' \
    'x~=1.4.5; platform_machine not in "arm64"' 'y===1.0-Weird' 'z (==1.0.*)' 'v!=2!1.0rc1.post2.dev3+local.7' \
    > corpus/requirements_parse/valid.txt
seed=0
for line in '-r /etc/shadow' '--extra-index-url http://127.0.0.1:1/${SECRET}/simple' 'pkg @ https://x/p.whl' \
    './vendor/pkg' 'foo==1.0 --hash=md5:00' 'foo; os.nam == "nt"' 'foo; os.name == "nt" and (extra == "a" and extra == "b")' 'foo; os_name == "a b"' 'foo >> 1'; do
    printf '%s\n' "$line" > "corpus/requirements_parse/line-$((seed += 1))"
done

# Archives: the first byte picks the format (index into [tar, tar.gz, tar.xz, tar.zst, zip]).
tar -C "$work" -cf "$work/t.tar" tree
{ printf '\x00'; cat "$work/t.tar"; } > corpus/archive_unpack/tar
{ printf '\x01'; gzip -c "$work/t.tar"; } > corpus/archive_unpack/tar.gz
{ printf '\x02'; xz -c "$work/t.tar"; } > corpus/archive_unpack/tar.xz
{ printf '\x03'; zstd -q -c "$work/t.tar"; } > corpus/archive_unpack/tar.zst
# A bomb in miniature: 2 MiB of zeros in a few KB, over the target's 1 MiB cap.
head -c 2097152 /dev/zero > "$work/zeros" && tar -C "$work" -cf - zeros | { printf '\x01'; gzip -9; } > corpus/archive_unpack/bomb.tar.gz
python3 - "$work" <<'PY'
import sys, zipfile, io
work = sys.argv[1]
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("pkg/README", "hello\n")
    archive.writestr("pkg/bin/tool", "#!/bin/sh\n")
open("corpus/archive_unpack/zip", "wb").write(b"\x04" + buffer.getvalue())
PY

status=0
for target in "${targets[@]}"; do
    log="$work/$target.log"
    if cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 > "$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
        tail -40 "$log" >&2
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    echo "$target: $result, ${runs:-?} runs in ${seconds}s, corpus $(ls "corpus/$target" | wc -l) inputs"
done
exit "$status"
