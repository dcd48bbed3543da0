#!/usr/bin/env bash
# How reliably does `faultline test` reach the expected verdict? Runs each scenario of the
# end-to-end tests RUNS times (default 10) and prints, per scenario, how many runs ended
# valid (exit 0), invalid (1), unknown (2) or in a harness error (3).
#
# Usage: scripts/detection-rate.sh [RUNS=10] [TIME_LIMIT=15s]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
limit=${2:-15s}
cargo build --release -p faultline -p faultline-node >/dev/null
store=$(mktemp -d /tmp/faultline-detection.XXXXXX)
trap 'rm -rf "$store"' EXIT

scenario() {
  local name=$1 expected=$2
  shift 2
  local counts=(0 0 0 0)
  for _ in $(seq 1 "$runs"); do
    set +e
    target/release/faultline test --store "$store" --time-limit "$limit" "$@" >/dev/null 2>&1
    local code=$?
    set -e
    counts[$code]=$((counts[code] + 1))
  done
  printf '%-44s expected %-7s  valid %2d  invalid %2d  unknown %2d  error %2d  (of %d)\n' \
    "$name" "$expected" "${counts[0]}" "${counts[1]}" "${counts[2]}" "${counts[3]}" "$runs"
}

every_2s=(--nemesis-interval 2s)
scenario "correct, kill+partition (proxy)" valid "${every_2s[@]}" --nemesis kill,partition --partition-backend proxy
scenario "correct, partition+leader+pause (auto)" valid "${every_2s[@]}" --nemesis partition,partition-leader,pause
scenario "stale-read, partition" invalid "${every_2s[@]}" --nemesis partition --bug stale-read
scenario "early-ack, partition-leader" invalid "${every_2s[@]}" --nemesis partition-leader --bug early-ack
scenario "early-ack, kill+partition-leader, 2s" invalid "${every_2s[@]}" --nemesis kill,partition-leader --bug early-ack
scenario "early-ack, kill+partition-leader, 1s (proxy)" invalid --nemesis-interval 1s --nemesis kill,partition-leader --partition-backend proxy --bug early-ack
scenario "early-ack, kill only" invalid "${every_2s[@]}" --nemesis kill --bug early-ack
