#!/usr/bin/env bash
# hstore's main job, end to end, on the built-in example (examples/hello: a small Rust program + its crates.io crates).
#
#   connected side:  lock → fetch → export (one bundle file)
#   air-gapped side: import into a second, empty store → build in the sandbox, network cut
#
# The air-gapped side runs under `unshare --net` (a network namespace with no interfaces), so a leak would fail loudly.
# Needs, on the connected side only: the Rust toolchain 1.95.0 installed by rustup (the recipe takes it into the store
# as a `rust_toolchain` source) and access to crates.io (or its mirror). The air-gapped side runs with HOME pointed at an
# empty directory: no rustup, the compiler comes from the bundle. Also: gcc, git, util-linux `unshare`. Prints where the
# output is.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${HSTORE_DEMO_DIR:-$(mktemp -d /tmp/hstore-demo.XXXXXX)}
mkdir -p "$work"

echo "==> building hstore (release)"
cargo build --release --locked --manifest-path "$repo/Cargo.toml" --quiet
hstore="${CARGO_TARGET_DIR:-$repo/target}/release/hstore"

connected="$work/connected-store"
airgapped="$work/airgapped-store"
lockfile="$work/lockfile.json"
bundle="$work/hello.hsbundle"
recipes="$repo/examples/hello/recipes"

echo "==> [connected] hstore lock"
"$hstore" --store "$connected" lock --recipes "$recipes" --lockfile "$lockfile"
echo "==> [connected] hstore fetch"
"$hstore" --store "$connected" fetch --lockfile "$lockfile"
echo "==> [connected] hstore export"
"$hstore" --store "$connected" export --lockfile "$lockfile" -o "$bundle"
ls -l "$bundle"

# Cut the network with a namespace of our own. Root needs no user namespace for that, and should not take one: in
# the host's user namespace a root hstore runs each build as a leased build user, never as uid 0.
if [[ $(id -u) == 0 ]]; then
    airgap=(unshare --net)
else
    airgap=(unshare --map-root-user --net)
fi
echo "==> [air-gapped, no network] hstore import"
"${airgap[@]}" "$hstore" --store "$airgapped" import "$bundle"
echo "==> [air-gapped, no network] hstore fetch --offline (everything is already there)"
"${airgap[@]}" "$hstore" --store "$airgapped" fetch --offline --lockfile "$lockfile"
echo "==> [air-gapped, no network, empty HOME] hstore build --target cpu"
mkdir -p "$work/empty-home"
output=$(HOME="$work/empty-home" "${airgap[@]}" "$hstore" --store "$airgapped" build --recipes "$recipes" \
    --lockfile "$lockfile" --target cpu --out-link "$work/result")
echo "==> [air-gapped] the output"
echo "output address: $output"
echo "output path:    $work/result -> $(readlink "$work/result")"
"$work/result/bin/hello-hstore"
