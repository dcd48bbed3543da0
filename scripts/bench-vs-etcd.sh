#!/usr/bin/env bash
# Same machine, same load generator, same shape of load: a 3-node etcd (Debian's etcd-server,
# JSON gateway) and a 3-node faultline-node cluster, both on loopback with fsync on, each
# driven by wrk with 32 connections against its leader: random PUTs over 1,000 keys, then
# linearizable reads. Both clusters run side by side and the runs alternate, so that noise from
# a shared machine hurts both alike. Prints every run, the medians and faultline/etcd ratios.
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

# One run of each system after the other, repeated, so that a noisy neighbour hurts both alike.
# compare WHAT ETCD_SCRIPT FAULTLINE_SCRIPT: prints each run and the medians; sets E_RPS E_P99 F_RPS F_P99
compare() {
  local e_rps=() e_p99=() f_rps=() f_p99=() line
  for r in $(seq 1 "$repeats"); do
    line=$(run_wrk "$etcd_leader" "$2")
    echo "  etcd      $1 run $r: $(fmt_line "$line")"
    e_rps+=("$(cut -d' ' -f1 <<<"$line")"); e_p99+=("$(cut -d' ' -f3 <<<"$line")")
    line=$(run_wrk "$node_leader" "$3")
    echo "  faultline $1 run $r: $(fmt_line "$line")"
    f_rps+=("$(cut -d' ' -f1 <<<"$line")"); f_p99+=("$(cut -d' ' -f3 <<<"$line")")
  done
  E_RPS=$(printf '%s\n' "${e_rps[@]}" | median); E_P99=$(printf '%s\n' "${e_p99[@]}" | median)
  F_RPS=$(printf '%s\n' "${f_rps[@]}" | median); F_P99=$(printf '%s\n' "${f_p99[@]}" | median)
  awk -v a="$F_RPS" -v b="$E_RPS" -v p="$F_P99" -v q="$E_P99" -v what="$1" \
    'BEGIN { printf "  %s medians: faultline %d req/s (p99 %.2f ms), etcd %d req/s (p99 %.2f ms): %.2fx\n", what, a, p, b, q, a / b }'
}
fmt_line() { awk '{ printf "%8d req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d", $1, $2, $3, $4 }' <<<"$1"; }

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

echo "== $repeats runs of ${seconds}s each, 32 connections, alternating"
compare "writes" "$work/etcd-put.lua" "$work/faultline-put.lua"
compare "linearizable reads" "$work/etcd-get.lua" "$work/faultline-get.lua"
