#!/usr/bin/env bash
# Runs the whole test suite N times (default 10) while two CPU-burning
# processes compete for the cores, then reports failures per test.
#
#   scripts/stress-tests.sh [N] [extra cargo test args...]
#
# A test that races the loop thread (reads a baseline or a state before the
# loop applied the change it waits for) fails here long before it fails CI.
# Exit status: 0 when every run passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
logdir=$(mktemp -d -t muduo-stress.XXXXXX)

echo "== building the suite once (cargo test --workspace --no-run, examples)"
cargo build --workspace --examples -q || exit 1
cargo test --workspace --no-run -q "$@" 2>/dev/null || cargo test --workspace --no-run "$@" || exit 1

burners=()
cleanup() {
    for p in "${burners[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
# Stop the whole run on Ctrl-C or kill (a trap that returned would only
# end the current cargo and go on with the next run).
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in 1 2; do
    (while :; do :; done) &
    burners+=($!)
done
echo "== $runs runs under load (burners: ${burners[*]}), logs in $logdir"

failed_runs=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    if cargo test --workspace --no-fail-fast "$@" >"$logdir/run-$i.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed_runs=$((failed_runs + 1))
    fi
    echo "run $i/$runs: $status ($(( $(date +%s) - start )) s)"
done

echo "== failures per test"
grep -h -E '^test .* \.\.\. FAILED$' "$logdir"/run-*.log \
    | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort | uniq -c | sort -rn
passed=$(grep -h -E '^test result:' "$logdir"/run-*.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -h -E '^test result:' "$logdir"/run-*.log | awk '{s+=$6} END {print s+0}')
echo "$runs runs: $((runs - failed_runs)) green, $failed_runs red; $passed passed, $failed failed in total"
[ "$failed_runs" -eq 0 ]
