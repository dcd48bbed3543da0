#!/usr/bin/env bash
# Durability soak: does the bundled node keep every acknowledged write through CYCLES cycles of
# every node killed (SIGKILL) or, where FUSE can be used, losing power, in the middle of writes?
# One `faultline test` run of the process lane alone: each cycle is a fault of SOAK_INTERVAL
# (nodes down) then a calm of SOAK_INTERVAL (nodes back, clients writing), so the run lasts
# about 2 x CYCLES x SOAK_INTERVAL. At the end every list key is read back (the run's final
# reads) and checked for lost writes, and every key for linearizability.
#
# Prints the cycles that happened (from the history), the acknowledged appends, the lost ones,
# and the verdict; exits as `faultline test` does (0 valid, 1 a violation, 2 unknown, 3 error).
#
# Usage: scripts/soak.sh [CYCLES=100]
# Environment: SOAK_INTERVAL (default 1s), SOAK_STORE=DIR keeps the run (else a temp dir,
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
# The process lane starts half an interval in; one more interval lets the last cycle's nodes
# come back before the final phase.
limit=$(awk -v c="$cycles" -v s="$seconds" 'BEGIN { printf "%.1fs", (2 * c + 1) * s }')

echo "soak: $cycles cycles of $faults, ${interval} down and ${interval} up, in one run of $limit"
code=0
"$faultline" test --store "$store" --name soak --time-limit "$limit" \
  --nemesis "$faults" --nemesis-interval "$interval" >"$store/summary.txt" 2>&1 || code=$?
run="$store/latest"
if [ ! -f "$run/results.json" ]; then
  cat "$store/summary.txt" >&2
  echo "soak: the run left no results (exit $code)" >&2
  [ "$code" = 0 ] && code=3
  exit "$code"
fi

happened=$(grep -c '"process":"nemesis".*"f":"\(kill-all\|power-loss\)"' "$run/history.jsonl" || true)
acknowledged=$(jq '.lost_writes.acknowledged // 0' "$run/results.json")
lost=$(jq '.lost_writes.lost // 0' "$run/results.json")
valid=$(jq -r '.valid' "$run/results.json")
echo "soak: $happened cycles happened; $acknowledged acknowledged appends, $lost lost; valid: $valid"
grep -E '^ *(detected|CRASHED|lost|verdict)' "$store/summary.txt" || true
if [ -n "${SOAK_STORE:-}" ]; then
  echo "soak: the run is in $run"
fi
exit "$code"
