#!/usr/bin/env bash
# How reliably and how fast does a default run catch each bug of the zoo, and does it ever
# flag the correct node? Runs, one after another:
#   - every bug the node knows (`faultline-node --help` lists them) RUNS times, as a user
#     would: `faultline test --bug B --time-limit 30s`, everything else default;
#   - the correct node CORRECT_RUNS times, taking turns over the default mix and every
#     single fault (`--nemesis kill`, `--nemesis power-loss`, ...).
# Prints a Markdown table: per bug, runs caught / RUNS and the median time to detection (from
# the start of the run to the first anomaly, as the summary's `detected` line gives it); for
# the correct node, the runs flagged and under which nemesis.
#
# Usage: scripts/detection-rate.sh [RUNS=20] [CORRECT_RUNS=50] [TIME_LIMIT=30s]
# Environment: BUGS="stale-read no-fsync" measures only those; DETECTION_STORE=DIR keeps the
# runs there (else a temp dir, removed at the end); NEMESIS=LIST runs every bug and every
# correct run with `--nemesis LIST` instead (e.g. the default mix plus faults it leaves out);
# BIN_DIR=DIR takes `faultline` and `faultline-node` from DIR instead of building them (a copy
# of a build, so that work on the tree can go on while the runs take an hour).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
correct_runs=${2:-50}
limit=${3:-30s}
if [ -n "${BIN_DIR:-}" ]; then
  faultline=$BIN_DIR/faultline
  node=$BIN_DIR/faultline-node
else
  cargo build --release -p faultline -p faultline-node >/dev/null
  faultline=target/release/faultline
  node=target/release/faultline-node
fi

store=${DETECTION_STORE:-}
if [ -z "$store" ]; then
  store=$(mktemp -d /tmp/faultline-detection.XXXXXX)
  trap 'rm -rf "$store"' EXIT
fi
mkdir -p "$store"
log="$store/runs.txt"
: >"$log"

bugs=${BUGS:-$("$node" --help | sed -n 's/^ *- \([a-z-]*\): .*/\1/p')}
# Every fault the harness knows, from the message that lists them.
faults=$({ "$faultline" test --nemesis '?' 2>&1 || true; } |
  sed -n 's/.*valid names (comma-separated): //p' | tr ',' '\n' | tr -d ' ' | grep -vxE 'none|all')

# One run; prints "<exit code> <seconds to detection or -> <anomaly, dashed, or ->".
run() {
  local out code seconds anomaly
  out=$("$faultline" test --node-binary "$node" --store "$store" --time-limit "$limit" "$@" 2>&1) &&
    code=0 || code=$?
  seconds=$(printf '%s\n' "$out" | sed -n 's/^ *detected *after \([0-9.]*\) s.*/\1/p' | head -1)
  anomaly=$(printf '%s\n' "$out" | sed -n 's/^ *detected *after [0-9.]* s: \([a-z ]*\).*/\1/p' |
    head -1 | sed 's/ *$//; s/ /-/g')
  printf '%s %s %s\n' "$code" "${seconds:--}" "${anomaly:--}"
  printf '%s | exit %s | detected %s | %s\n' "$*" "$code" "${seconds:--}" "${anomaly:--}" >>"$log"
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "Detection rate, $(date -u +%Y-%m-%d): \`scripts/detection-rate.sh $runs $correct_runs $limit\`"
echo
echo "| bug | caught | median time to detection | first anomaly (runs) | errors |"
echo "|---|---|---|---|---|"
for bug in $bugs; do
  caught=0 errors=0 times=() anomalies=()
  for _ in $(seq 1 "$runs"); do
    read -r code seconds anomaly < <(run --bug "$bug" ${NEMESIS:+--nemesis "$NEMESIS"})
    case $code in
      1)
        caught=$((caught + 1))
        [ "$seconds" != - ] && times+=("$seconds")
        anomalies+=("$anomaly")
        ;;
      3) errors=$((errors + 1)) ;;
    esac
  done
  med=$(printf '%s\n' "${times[@]}" | { grep -v '^$' || true; } | median)
  [ "$med" = - ] || med="$med s"
  kinds=$(printf '%s\n' "${anomalies[@]}" | { grep -v '^$' || true; } | sort | uniq -c |
    sort -rn | awk '{ gsub("-", " ", $2); printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')
  echo "| \`$bug\` | $caught/$runs | $med | ${kinds:--} | $errors |"
done

flagged=0 errors=0 which=()
nemeses=(default $faults)
[ -z "${NEMESIS:-}" ] || nemeses=("$NEMESIS")
for i in $(seq 0 $((correct_runs - 1))); do
  nemesis=${nemeses[$((i % ${#nemeses[@]}))]}
  if [ "$nemesis" = default ]; then
    read -r code _ < <(run)
  else
    read -r code _ < <(run --nemesis "$nemesis")
  fi
  case $code in
    0) ;;
    3) errors=$((errors + 1)) ;;
    *) flagged=$((flagged + 1)); which+=("$nemesis (exit $code)") ;;
  esac
done
under="default mix and each fault in turn"
[ -z "${NEMESIS:-}" ] || under="\`--nemesis $NEMESIS\`"
echo "| correct node, $under | flagged $flagged/$correct_runs | - | ${which[*]:--} | $errors |"
if [ -n "${DETECTION_STORE:-}" ]; then
  echo
  echo "Every run: $log"
fi
