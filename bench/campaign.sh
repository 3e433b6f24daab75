#!/usr/bin/env bash
# The kill and concurrency campaign of issue 8, long version (run by hand, not a test; CI runs a handful of trials in
# tests/it/campaign.rs).
#
#   1. kill: SIGKILL at a random moment of `fetch`, `store add`, `import`, `cache pull` (from a `file://` cache),
#      `build` and `gc`, TRIALS times each
#      (default 50), then `store verify` (0 partial objects, 0 bad records or roots) and a re-run that must succeed
#      and give the same result as an uninterrupted run.
#   2. concurrency: 8 processes mixing fetch, import, add, cache pull, build and gc on one store for SECONDS (default 60);
#      every command must succeed or fail cleanly (exit 2 with an `error:` line), every build of one key must report
#      the same output, and the store must verify clean at the end.
#
# Usage: bench/campaign.sh                 TRIALS=50 SECONDS_CONCURRENT=60 HSTORE=/path/to/hstore BENCH_KEEP=1
# Prints one line per command and a summary; exits 1 if any check failed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
trials=${TRIALS:-50}
concurrent_seconds=${SECONDS_CONCURRENT:-60}
if [[ -z ${HSTORE:-} ]]; then
    echo "==> building hstore (debug)" >&2
    cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin hstore
    HSTORE="${CARGO_TARGET_DIR:-$repo/target}/debug/hstore"
fi
work=$(mktemp -d /tmp/hstore-campaign.XXXXXX)
[[ -n ${BENCH_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
echo "work directory: $work" >&2
export NO_COLOR=1
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The project: a 12 MiB source tree (path source), a recipe whose build takes a moment, its lockfile, a bundle.
project=$work/project
mkdir -p "$project/src/sub" "$project/recipes"
for i in $(seq 0 23); do head -c $((512 * 1024)) /dev/urandom > "$project/src/f$i"; done
for i in $(seq 0 199); do echo "small file $i" > "$project/src/sub/s$i"; done
cat > "$project/recipes/app.toml" <<'EOF'
[recipe]
name = "app"

[sources.code]
path = "../src"

[targets.cpu]

[build]
script = '''
mkdir -p $out/bin
for i in $(seq 1 40); do cat $src_code/f* | head -c 1000000 > $out/bin/part$i; done
cat $src_code/variant > $out/variant
'''
EOF
echo 0 > "$project/src/variant"
h() { (cd "$project" && "$HSTORE" "$@"); }
HSTORE_STORE=$work/seed h lock >/dev/null 2>&1
HSTORE_STORE=$work/seed h fetch >/dev/null 2>&1
HSTORE_STORE=$work/seed h export -o "$work/bundle.hsb" >/dev/null 2>&1
mkdir -p "$work/cache"
HSTORE_STORE=$work/seed h cache push "file://$work/cache" --lockfile lockfile.json >/dev/null 2>&1

# verify STORE WHAT: the store verifies clean; counts problems by kind otherwise.
partial=0
bad_records=0
verify() {
    local output
    if ! output=$(HSTORE_STORE=$1 "$HSTORE" store verify 2>&1); then
        fail "$2: verify: $output"
        partial=$((partial + $(grep -c 'corrupt' <<<"$output" || true)))
        bad_records=$((bad_records + $(grep -cE 'record|gc root' <<<"$output" || true)))
    fi
}

# kill_at STORE MAX_MS COMMAND…: runs COMMAND, SIGKILLs it after a random delay in [0, MAX_MS); 1 if it was killed.
kill_at() {
    local store=$1 max_ms=$2
    shift 2
    (cd "$project" && HSTORE_STORE=$store exec "$HSTORE" "$@") >/dev/null 2>&1 &
    local pid=$!
    local delay_ms=$((RANDOM % max_ms))
    sleep "$(printf '0.%03d' "$delay_ms")"
    if kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        return 0
    fi
    wait "$pid" 2>/dev/null || true
    return 1
}

# duration_ms COMMAND…: how long one uninterrupted run takes, to spread the kills over it (capped at 999 ms).
duration_ms() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    local ms=$(((end - start) / 1000000 + 1))
    ((ms > 999)) && ms=999
    echo "$ms"
}

expected_ls=$(HSTORE_STORE=$work/seed "$HSTORE" store ls | sort)
report() {
    printf '%-10s %3d trials, %3d killed mid-run, %d failed checks\n' "$1" "$trials" "$2" "$3"
}

# 1a. store add / import / fetch / cache pull: a fresh store each trial; after the kill, verify, re-run, verify, compare.
for command in add import fetch pull; do
    case $command in
    add) args=(store add --root campaign src) ;;
    import) args=(import "$work/bundle.hsb") ;;
    fetch) args=(fetch) ;;
    pull) args=(cache pull "file://$work/cache" --lockfile lockfile.json) ;;
    esac
    max=$(duration_ms env HSTORE_STORE="$work/calibrate-$command" bash -c "cd '$project' && '$HSTORE' ${args[*]}")
    killed=0
    before=$failures
    for trial in $(seq 1 "$trials"); do
        store=$work/$command-$trial
        kill_at "$store" "$max" "${args[@]}" && killed=$((killed + 1))
        verify "$store" "$command trial $trial after the kill"
        (cd "$project" && HSTORE_STORE=$store "$HSTORE" "${args[@]}") >/dev/null 2>&1 ||
            fail "$command trial $trial: the re-run failed"
        verify "$store" "$command trial $trial after the re-run"
        if [[ $command != add ]]; then
            [[ $(HSTORE_STORE=$store "$HSTORE" store ls | sort) == "$expected_ls" ]] ||
                fail "$command trial $trial: the store differs from an uninterrupted run"
        fi
        rm -rf "$store"
    done
    report "$command" "$killed" $((failures - before))
done

# 1b. build: one store; each trial builds a new variant (a new key), killed at a random moment, then re-run.
store=$work/build
HSTORE_STORE=$store h fetch >/dev/null 2>&1
max=$(duration_ms env HSTORE_STORE="$store" bash -c "cd '$project' && '$HSTORE' build app --target cpu")
killed=0
before=$failures
for trial in $(seq 1 "$trials"); do
    echo "$trial" > "$project/src/variant"
    HSTORE_STORE=$store h lock >/dev/null 2>&1 && HSTORE_STORE=$store h fetch >/dev/null 2>&1 ||
        fail "build trial $trial: lock/fetch failed"
    kill_at "$store" "$max" build app --target cpu && killed=$((killed + 1))
    verify "$store" "build trial $trial after the kill"
    output=$(HSTORE_STORE=$store h build app --target cpu --out-link "$work/result" 2>&1) ||
        fail "build trial $trial: the re-run failed: $output"
    [[ $(cat "$work/result/variant" 2>/dev/null) == "$trial" ]] ||
        fail "build trial $trial: the recorded output is not this variant's"
    verify "$store" "build trial $trial after the re-run"
done
report build "$killed" $((failures - before))

# 1c. gc: a store holding the rooted tree and an unrooted one; kill gc, verify, re-run gc, verify exact survivors.
killed=0
before=$failures
max=1
for trial in $(seq 1 "$trials"); do
    store=$work/gc
    HSTORE_STORE=$store "$HSTORE" import "$work/bundle.hsb" >/dev/null 2>&1
    mkdir -p "$work/loose"
    head -c $((4 << 20)) /dev/urandom > "$work/loose/a"
    for i in $(seq 0 99); do echo "loose $trial $i" > "$work/loose/s$i"; done
    HSTORE_STORE=$store "$HSTORE" store add "$work/loose" >/dev/null 2>&1
    ((trial == 1)) && max=$(duration_ms env HSTORE_STORE="$store" "$HSTORE" store gc --dry-run)
    kill_at "$store" "$((max * 2))" store gc && killed=$((killed + 1))
    verify "$store" "gc trial $trial after the kill"
    HSTORE_STORE=$store "$HSTORE" store gc >/dev/null 2>&1 || fail "gc trial $trial: the re-run failed"
    verify "$store" "gc trial $trial after the re-run"
    [[ $(HSTORE_STORE=$store "$HSTORE" store ls | sort) == "$expected_ls" ]] ||
        fail "gc trial $trial: gc kept more or less than the roots reach"
done
report gc "$killed" $((failures - before))

# 2. concurrency: 8 workers, each looping over a mix of commands on one store for a bounded time.
store=$work/shared
HSTORE_STORE=$store h fetch >/dev/null 2>&1
echo concurrent > "$project/src/variant"
HSTORE_STORE=$store h lock >/dev/null 2>&1
HSTORE_STORE=$store h fetch >/dev/null 2>&1
deadline=$(($(date +%s) + concurrent_seconds))
worker() {
    local id=$1 n=0 command output code
    while (($(date +%s) < deadline)); do
        n=$((n + 1))
        case $(((id + n) % 6)) in
        0) command=(fetch) ;;
        1) command=(import "$work/bundle.hsb") ;;
        2) command=(store add src) ;;
        3) command=(build app --target cpu) ;;
        4) command=(cache pull "file://$work/cache" --lockfile lockfile.json) ;;
        *) command=(store gc) ;;
        esac
        code=0
        output=$(cd "$project" && HSTORE_STORE=$store "$HSTORE" "${command[@]}" 2>&1) || code=$?
        echo "${command[0]} $code" >> "$work/worker-$id.log"
        if [[ $code == 0 && ${command[0]} == build ]]; then
            grep -oE 'b3:[0-9a-f]{64}' <<<"$output" | tail -1 >> "$work/build-outputs"
        fi
        if [[ $code != 0 ]] && { [[ $code != 2 ]] || ! grep -q '^error:' <<<"$output" || grep -q panicked <<<"$output"; }; then
            echo "${command[*]} exit $code: $output" >> "$work/unclean"
        fi
    done
}
for id in $(seq 1 8); do worker "$id" & done
wait
total=$(cat "$work"/worker-*.log | wc -l)
succeeded=$(awk '$2 == 0' "$work"/worker-*.log | wc -l)
clean_failures=$(awk '$2 == 2' "$work"/worker-*.log | wc -l)
[[ -s $work/unclean ]] && fail "concurrency: unclean exits: $(head -5 "$work/unclean")"
outputs=$(sort -u "$work/build-outputs" 2>/dev/null | wc -l)
((outputs <= 1)) || fail "concurrency: builds of one key reported $outputs different outputs"
verify "$store" "concurrency"
printf 'concurrent %d commands by 8 processes in %ds: %d succeeded, %d failed cleanly, %d build outputs for one key\n' \
    "$total" "$concurrent_seconds" "$succeeded" "$clean_failures" "$outputs"
for command in fetch import store build cache; do
    printf '           %-7s %d runs\n' "$command" "$(awk -v c="$command" '$1 == c' "$work"/worker-*.log | wc -l)"
done
printf 'summary: %d failed checks; %d partial objects, %d bad records or roots found by verify\n' \
    "$failures" "$partial" "$bad_records"
((failures == 0))
