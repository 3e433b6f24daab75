#!/usr/bin/env bash
# Downloads, once, the real NVIDIA wheels the CUDA test (`tests/it/cuda.rs`) serves from its loopback index: the
# x86_64 files of `recipes/cuda-toolkit.toml`'s compile set plus cuobjdump (~105 MB), each pinned by sha256. They go
# into a kept cache directory, `$HSTORE_CUDA_WHEELS` or `${XDG_CACHE_HOME:-$HOME/.cache}/hstore-ci/cuda-wheels`, which
# the test reads; a file already there with the right sha256 is not downloaded again. `scripts/test-deps.sh` runs it.
#
# The list MUST match the recipe's pins (the test checks every file's sha256 against the recipe's `--hash` values).
set -euo pipefail

dir="${HSTORE_CUDA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/hstore-ci/cuda-wheels}"
files=https://files.pythonhosted.org/packages
# sha256, then the URL path under files.pythonhosted.org/packages/.
WHEELS=(
  "56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03 71/8b/a546c12881fffeba927d810598987df25d74b8b241788c7db8dfc93b0173/nvidia_cuda_nvcc-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
  "c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0 15/b0/ee41e6d1108d959b5097163e7190c2d0f7857dea75606ce358f0275891b4/nvidia_nvvm-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl"
  "2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4 05/69/a1ec4d9f0747d85964206feb47bf359f48a2d6af74c0add8abba6efe3dda/nvidia_cuda_crt-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
  "422a38f7c739ecbdd3a4b6ec7ed0a1d74db43d8e9bc26685f3d845638922b178 b1/1d/9ea7b0d420efcae3c546feb3ca14334c0d710ac19c156ac48fce07c3d6ae/nvidia_cuda_runtime-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
  "e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649 ab/fb/0384bb2129bed6b1b39f8e44471c615ab5ab29b7e55817538a1d390d8f84/nvidia_cuda_cccl-13.0.85-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
  "95c69d3ddf0c2c1f535ec44c3433a66aeee19f588d9d22f73356e20b25f12b50 a9/2c/af21e3b8eecbf1e9c373967fe517fd5236d061646664a98277de7d21c420/nvidia_cuda_cuobjdump-13.2.51-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
)

say() { printf 'cuda-wheels: %s\n' "$*" >&2; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$dir"
present=0
for entry in "${WHEELS[@]}"; do
  sha256=${entry%% *}
  path=${entry#* }
  name=${path##*/}
  if [[ -f "$dir/$name" && "$(sha256_of "$dir/$name")" == "$sha256" ]]; then
    present=$((present + 1))
    continue
  fi
  say "downloading $name into $dir"
  curl --fail --silent --show-error --location --retry 3 -o "$dir/$name.partial" "$files/$path"
  computed=$(sha256_of "$dir/$name.partial")
  if [[ "$computed" != "$sha256" ]]; then
    rm -f "$dir/$name.partial"
    say "$name: sha256 mismatch"$'\n'"expected: $sha256"$'\n'"computed: $computed"
    exit 1
  fi
  mv "$dir/$name.partial" "$dir/$name"
done
say "${#WHEELS[@]} wheels in $dir ($present already present)"
