#!/usr/bin/env bash
# Same machine, same load generator, same shape of load: a 3-node etcd (Debian's etcd-server,
# JSON gateway) and a 3-node faultline-node cluster, both on loopback with fsync on, each
# driven by wrk with 32 connections against its leader: random PUTs over 1,000 keys, then
# linearizable reads. Prints throughput and latency for both, and faultline/etcd ratios.
#
# Usage: scripts/bench-vs-etcd.sh [SECONDS=10] [REPEATS=3]   (needs root for apt-get)
# Everything it starts is stopped by pid at exit; data lives in a temp dir that is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
repeats=${2:-3}

if ! command -v etcd >/dev/null || ! command -v wrk >/dev/null; then
  apt-get install -y etcd-server wrk >/dev/null
fi
cargo build --release -p faultline-node
node_bin=$PWD/target/release/faultline-node

work=$(mktemp -d /tmp/faultline-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# wrk scripts: random keys among 1,000; the etcd ones send base64 keys to the JSON gateway.
cat >"$work/common.lua" <<'LUA'
local b = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  return ((data:gsub('.', function(x)
    local r, byte = '', x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
counter = 0
LUA
cat >"$work/faultline-put.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/kv/key" .. math.random(1, 1000), {["Content-Type"] = "application/json"},
    '{"value":' .. counter .. '}')
end
LUA
cat >"$work/faultline-get.lua" <<'LUA'
request = function()
  return wrk.format("GET", "/kv/key" .. math.random(1, 1000))
end
LUA
{ cat "$work/common.lua"; cat <<'LUA'
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"},
    '{"key":"' .. b64("key" .. math.random(1, 1000)) .. '","value":"' .. b64(tostring(counter)) .. '"}')
end
LUA
} >"$work/etcd-put.lua"
{ cat "$work/common.lua"; cat <<'LUA'
request = function()
  return wrk.format("POST", "/v3/kv/range", {["Content-Type"] = "application/json"},
    '{"key":"' .. b64("key" .. math.random(1, 1000)) .. '"}')
end
LUA
} >"$work/etcd-get.lua"

# run_wrk URL SCRIPT -> "requests/s p50_ms p99_ms"
run_wrk() {
  wrk -t2 -c32 -d"${seconds}s" --latency -s "$2" "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# measure NAME URL SCRIPT: repeats runs, prints each and the medians; sets MED_RPS MED_P99
measure() {
  local rps=() p99=() line
  for r in $(seq 1 "$repeats"); do
    line=$(run_wrk "$2" "$3")
    echo "  $1 run $r: $(awk '{ printf "%8d req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d", $1, $2, $3, $4 }' <<<"$line")"
    rps+=("$(cut -d' ' -f1 <<<"$line")")
    p99+=("$(cut -d' ' -f3 <<<"$line")")
  done
  MED_RPS=$(printf '%s\n' "${rps[@]}" | median)
  MED_P99=$(printf '%s\n' "${p99[@]}" | median)
  echo "  $1 median: $MED_RPS req/s, p99 $MED_P99 ms"
}

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 nodes on 127.0.0.21-23"
cluster=""
for i in 1 2 3; do cluster+="e$i=http://127.0.0.2$i:2380,"; done
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$work/e$i" --log-level error \
    --listen-client-urls "http://127.0.0.2$i:2379" --advertise-client-urls "http://127.0.0.2$i:2379" \
    --listen-peer-urls "http://127.0.0.2$i:2380" --initial-advertise-peer-urls "http://127.0.0.2$i:2380" \
    --initial-cluster "${cluster%,}" --initial-cluster-state new 2>"$work/e$i.log" &
  pids+=($!)
done
etcd_leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    s=$(curl -s -m 1 -X POST "http://127.0.0.2$i:2379/v3/maintenance/status" -d '{}' || true)
    lead=$(sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p' <<<"$s")
    me=$(sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p' <<<"$s")
    if [ -n "$lead" ] && [ "$lead" = "$me" ]; then etcd_leader="http://127.0.0.2$i:2379"; fi
  done
  [ -n "$etcd_leader" ] && break
  sleep 0.2
done
[ -n "$etcd_leader" ] || { echo "etcd elected no leader"; exit 1; }
measure "etcd writes" "$etcd_leader" "$work/etcd-put.lua"; etcd_w=$MED_RPS; etcd_w99=$MED_P99
measure "etcd linearizable reads" "$etcd_leader" "$work/etcd-get.lua"; etcd_r=$MED_RPS
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

echo "== faultline-node: 3 nodes on 127.0.0.11-13"
for i in 1 2 3; do
  peers=()
  for j in 1 2 3; do [ "$j" = "$i" ] || peers+=("n$j=127.0.0.1$j:700$j"); done
  "$node_bin" --id "n$i" --client-addr "127.0.0.1$i:800$i" --peer-addr "127.0.0.1$i:700$i" \
    --peers "$(IFS=,; echo "${peers[*]}")" --data-dir "$work/n$i" 2>"$work/n$i.log" &
  pids+=($!)
done
node_leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    curl -s -m 1 "http://127.0.0.1$i:800$i/status" | grep -q '"role":"leader"' && node_leader="http://127.0.0.1$i:800$i"
  done
  [ -n "$node_leader" ] && break
  sleep 0.2
done
[ -n "$node_leader" ] || { echo "faultline-node elected no leader"; exit 1; }
measure "faultline writes" "$node_leader" "$work/faultline-put.lua"; fl_w=$MED_RPS; fl_w99=$MED_P99
measure "faultline linearizable reads" "$node_leader" "$work/faultline-get.lua"; fl_r=$MED_RPS

echo "== faultline / etcd (medians of $repeats runs of ${seconds}s, 32 connections)"
awk -v a="$fl_w" -v b="$etcd_w" -v p="$fl_w99" -v q="$etcd_w99" \
  'BEGIN { printf "writes: %.2fx (%d vs %d req/s), p99 %.2f ms vs %.2f ms\n", a / b, a, b, p, q }'
awk -v a="$fl_r" -v b="$etcd_r" 'BEGIN { printf "linearizable reads: %.2fx (%d vs %d req/s)\n", a / b, a, b }'
