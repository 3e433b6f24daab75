#!/usr/bin/env bash
# Installs what hstore's test suite needs on Debian 12 (or a derivative), and nothing that is already there: it checks
# each tool first, says what it installs, and can be run any number of times. `scripts/test.sh` runs it before the
# tests; `.ci/run` runs it on a fresh CI machine. Needs root, or sudo for the apt packages.
#
# What and why:
#   apt  nix-bin (`nix-store --dump`: the NAR byte-identity oracle); zstd, xz-utils, git (archive and git fixtures);
#        iproute2, procps, util-linux, bsdutils, gcc, libc6-dev, python3 (the sandbox, build and escape tests);
#        python3-pip, python3-venv (the locked wheelhouse installs; uv's venv); make, libreadline-dev,
#        libncurses-dev, g++ (building xmake from source and the fixture C++ projects); python3-dev,
#        python3-setuptools-whl, python3-wheel-whl (the xmake chain's Python extension); nginx-core (the HTTP cache
#        backend's WebDAV server); dpkg, gnupg, debian-archive-keyring (the loopback Debian archive: `dpkg-deb`
#        builds its .debs, `gpg` signs its InRelease, `dpkg --compare-versions` is the version-order oracle, and the
#        real Debian keyring is read by the release tests)
#   uv   0.13.9 from PyPI, in its own venv (resolves `requirements` sources; the tests pin its version)
#   CUDA wheels  NVIDIA's x86_64 CUDA 13 compile-set wheels (+ cuobjdump, ~105 MB) from PyPI, pinned by sha256, into a
#        kept cache directory (scripts/cuda-wheels.sh: tests/it/cuda.rs serves them from its loopback index)
#   garage  the S3 cache backend's three-node test cluster (`cargo install garage --locked`: compiles for ~20 minutes
#        on 2 cores, once; AGPL, run as a separate server, never linked)
set -euo pipefail

UV_VERSION=0.13.9
APT_PACKAGES=(nix-bin zstd xz-utils git ca-certificates diffutils findutils iproute2 procps util-linux bsdutils gcc
  libc6-dev python3 python3-pip python3-venv make libreadline-dev libncurses-dev g++ python3-dev
  python3-setuptools-whl python3-wheel-whl nginx-core dpkg gnupg debian-archive-keyring)

say() { printf 'test-deps: %s\n' "$*" >&2; }
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root (or sudo) to run: $*"; exit 1
  fi
}

# -- apt packages ------------------------------------------------------------------------------------------------------
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all ${#APT_PACKAGES[@]} present"
fi

# -- uv, pinned --------------------------------------------------------------------------------------------------------
if [[ "$(uv --version 2>/dev/null)" == "uv $UV_VERSION"* ]]; then
  say "uv $UV_VERSION: present ($(command -v uv))"
else
  if [[ $(id -u) -eq 0 ]]; then venv=/opt/hstore-uv bin_dir=/usr/local/bin
  else venv="${XDG_DATA_HOME:-$HOME/.local/share}/hstore-test-tools/uv" bin_dir="$HOME/.local/bin"
  fi
  say "installing uv $UV_VERSION from PyPI into $venv (linked from $bin_dir/uv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "uv==$UV_VERSION"
  mkdir -p "$bin_dir"
  ln -sf "$venv/bin/uv" "$bin_dir/uv"
  [[ "$(PATH="$bin_dir:$PATH" uv --version)" == "uv $UV_VERSION"* ]] || { say "uv $UV_VERSION did not install"; exit 1; }
  [[ ":$PATH:" == *":$bin_dir:"* ]] || say "note: $bin_dir is not on PATH; scripts/test.sh adds it"
fi

# -- CUDA wheels, pinned ------------------------------------------------------------------------------------------------
"$(dirname "$0")/cuda-wheels.sh"

# -- garage ------------------------------------------------------------------------------------------------------------
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if command -v garage >/dev/null || [[ -x "$cargo_bin/garage" ]]; then
  say "garage: present"
else
  say "installing garage with cargo (compiles for several minutes, once)"
  cargo install garage --locked
fi
