#!/usr/bin/env bash
# Durability soak: does the bundled node keep every acknowledged write through CYCLES cycles of
# every node killed (SIGKILL) or, where FUSE can be used, losing power, in the middle of writes?
# `faultline test` runs of the process lane alone: each cycle is a fault of SOAK_INTERVAL
# (nodes down) then a calm of SOAK_INTERVAL (nodes back, clients writing). A run is sized for the
# cycles still missing, and runs follow one another until CYCLES cycles have happened. At the end
# of each run every list key is read back (the run's final reads) and checked for lost writes,
# and every key for linearizability.
#
# Prints, for each run and in all, the cycles that happened (from the history), the acknowledged
# appends and the lost ones; exits as the first `faultline test` that does not pass does (1 a
# violation, 2 unknown, 3 error), else 0.
#
# Usage: scripts/soak.sh [CYCLES=100]
# Environment: SOAK_INTERVAL (default 1s), SOAK_STORE=DIR keeps the runs (else a temp dir,
# removed at the end), SOAK_FAULTS overrides the faults (default kill-all, plus power-loss where
# FUSE can be used).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "soak: needs jq (apt-get install jq)" >&2; exit 3; }
cycles=${1:-100}
interval=${SOAK_INTERVAL:-1s}
cargo build --release -p faultline -p faultline-node >/dev/null
faultline=target/release/faultline

store=${SOAK_STORE:-}
if [ -z "$store" ]; then
  store=$(mktemp -d /tmp/faultline-soak.XXXXXX)
  trap 'rm -rf "$store"' EXIT
fi
mkdir -p "$store"

faults=${SOAK_FAULTS:-}
if [ -z "$faults" ]; then
  # Power loss needs FUSE: root with /dev/fuse, or fusermount3 as a user.
  if [ -e /dev/fuse ] && { [ "$(id -u)" = 0 ] || command -v fusermount3 >/dev/null; }; then
    faults=kill-all,power-loss
  else
    faults=kill-all
    echo "soak: no FUSE here, so no power-loss cycles: kill-all only" >&2
  fi
fi

seconds=$(printf '%s\n' "$interval" | sed -n 's/^\([0-9.]*\)s$/\1/p')
if [ -z "$seconds" ]; then
  echo "soak: SOAK_INTERVAL must be in seconds, like 1s or 0.5s (got $interval)" >&2
  exit 3
fi

# A cycle takes longer than its two intervals (nodes take time to die, remount and start), so
# one run gives fewer cycles than asked: runs follow one another, each for the cycles still
# missing, until the cycles that happened add up to CYCLES. Each run reads back its own writes.
done_cycles=0 acknowledged=0 lost=0 runs=0 code=0
while [ "$done_cycles" -lt "$cycles" ]; do
  runs=$((runs + 1))
  missing=$((cycles - done_cycles))
  # The process lane starts half an interval in; one more interval lets the last cycle's
  # nodes come back before the final phase.
  limit=$(awk -v c="$missing" -v s="$seconds" 'BEGIN { printf "%.1fs", (2 * c + 1) * s }')
  echo "soak: run $runs: $missing cycles of $faults, ${interval} down and ${interval} up, in $limit"
  summary="$store/summary-$runs.txt"
  "$faultline" test --store "$store" --name "soak-$runs" --time-limit "$limit" \
    --nemesis "$faults" --nemesis-interval "$interval" >"$summary" 2>&1 || code=$?
  run="$store/latest"
  if [ ! -f "$run/results.json" ]; then
    cat "$summary" >&2
    echo "soak: run $runs left no results (exit $code)" >&2
    [ "$code" = 0 ] && code=3
    exit "$code"
  fi
  happened=$(grep -c '"process":"nemesis".*"f":"\(kill-all\|power-loss\)"' "$run/history.jsonl" || true)
  run_acknowledged=$(jq '.lost_writes.acknowledged // 0' "$run/results.json")
  run_lost=$(jq '.lost_writes.lost // 0' "$run/results.json")
  valid=$(jq -r '.valid' "$run/results.json")
  echo "soak: run $runs: $happened cycles happened; $run_acknowledged acknowledged appends, $run_lost lost; valid: $valid"
  grep -E '^ *(detected|CRASHED|lost|verdict)' "$summary" || true
  done_cycles=$((done_cycles + happened))
  acknowledged=$((acknowledged + run_acknowledged))
  lost=$((lost + run_lost))
  if [ "$code" != 0 ]; then
    echo "soak: run $runs exited $code; stopping" >&2
    break
  fi
  if [ "$happened" = 0 ]; then
    echo "soak: run $runs had no cycle at all; stopping" >&2
    code=3
    break
  fi
done
echo "soak: $done_cycles cycles in $runs runs; $acknowledged acknowledged appends, $lost lost"
if [ -n "${SOAK_STORE:-}" ]; then
  echo "soak: the runs are in $store"
fi
exit "$code"
