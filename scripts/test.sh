#!/usr/bin/env bash
# hstore's test command (README "Test"): installs what the suite needs (scripts/test-deps.sh: only what is missing,
# saying what), then runs every test of the workspace. Extra arguments go to `cargo test` (e.g. `-- cache::`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh
# Where test-deps.sh links uv for a user without root; the tests look for their tools on PATH.
export PATH="$HOME/.local/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
exec cargo test --workspace --locked "$@"
