#!/usr/bin/env bash
# Builds faultline-node and runs a local cluster in the foreground: node i on 127.0.0.(10+i),
# client API on port 8000+i, peers on 7000+i, data and logs under ./cluster-data/.
# Ctrl-C stops every node (by pid). Usage: scripts/cluster.sh [NODES=3] [extra node flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-3}
shift || true
cargo build --release -p faultline-node
bin=target/release/faultline-node
data=cluster-data
mkdir -p "$data"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  echo "cluster stopped; data and logs kept in $data/"
}
trap stop EXIT INT TERM

for i in $(seq 1 "$nodes"); do
  peers=()
  for j in $(seq 1 "$nodes"); do
    [ "$j" = "$i" ] || peers+=("n$j=127.0.0.$((10 + j)):$((7000 + j))")
  done
  "$bin" --id "n$i" --client-addr "127.0.0.$((10 + i)):$((8000 + i))" \
    --peer-addr "127.0.0.$((10 + i)):$((7000 + i))" \
    --peers "$(IFS=,; echo "${peers[*]}")" --data-dir "$data/n$i" "$@" \
    2>>"$data/n$i.log" &
  pids+=($!)
  echo "n$i: http://127.0.0.$((10 + i)):$((8000 + i))  (log: $data/n$i.log)"
done
echo "try: curl -L -X PUT -d '{\"value\": 1}' http://127.0.0.11:8001/kv/hello; curl -L http://127.0.0.11:8001/kv/hello"
wait
