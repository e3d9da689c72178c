#!/usr/bin/env bash
# Feed delivery lag: 1,000 WebSocket subscribers on this machine while a
# flash sale runs against a durable server; lag is from "durable" on the
# server (the message's t_us) to "received" by the subscriber.
#
# Usage: scripts/bench-feed.sh [ROUNDS] [SECONDS] [RATE]
#   ROUNDS   runs of each case; medians are reported (default 3)
#   SECONDS  length of each run (default 10)
#   RATE     target reservations/s, open loop (default 10000)
# Env: SURGE_PORT (default: a free port)
#
# Cases (all: durability=fsync, 50 connections of load, 1,000 subscribers):
#   product-pages  1,000 SKUs, one subscriber per SKU on sku:<id>
#   fan-out-10     100 SKUs, ten subscribers per SKU on sku:<id>
#   dashboards     one hot SKU, every subscriber on `stock` with conflate_ms=100
set -euo pipefail
rounds=${1:-3}
seconds=${2:-10}
rate=${3:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
port=${SURGE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }
. "$root/scripts/lib.sh"

run() { # name, loadgen args...
  local name=$1; shift
  start_surge
  "$surge" loadgen --target "http://127.0.0.1:$port" --connections 50 --threads 2 --rate "$rate" \
    --duration-s "$seconds" --subscribers 1000 --quiet --json "$work/$name.json" "$@" >/dev/null || true
  stop_surge
  python3 - "$work/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = r["feed"]; l = r["latency"]["reserve"]
ok = r["check"]["ok"]
print(f'{r["items_per_s"]:.0f} {l["p99"]:.2f} {f["events"] / r["elapsed_s"]:.0f} {f["lag"]["p50"]:.2f} {f["lag"]["p99"]:.2f} {f["lag"]["max"]:.2f} {f["dropped"]} {"ok" if ok else "FAILED"}')
PY
}

declare -A out
cases=(product-pages fan-out-10 dashboards)
for r in $(seq 1 "$rounds"); do
  out[product-pages,$r]=$(run product-pages --skus 1000 --hot-share 0 --subscribe-topic 'sku:{sku}')
  out[fan-out-10,$r]=$(run fan-out-10 --skus 100 --hot-share 0 --subscribe-topic 'sku:{sku}')
  out[dashboards,$r]=$(run dashboards --skus 1 --subscribe-topic stock --subscribe-conflate-ms 100)
  for c in "${cases[@]}"; do echo "round $r $c: ${out[$c,$r]}" >&2; done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); target $rate reservations/s; medians of $rounds rounds"
printf '%-14s %12s %10s %14s %11s %11s %11s %8s %s\n' case reserv/s p99_ms deliveries/s lag_p50_ms lag_p99_ms lag_max_ms dropped check
for c in "${cases[@]}"; do
  col() { for r in $(seq 1 "$rounds"); do echo "${out[$c,$r]}" | cut -d' ' -f"$1"; done | median; }
  checks=$(for r in $(seq 1 "$rounds"); do echo "${out[$c,$r]##* }"; done | sort -u | xargs)
  printf '%-14s %12s %10s %14s %11s %11s %11s %8s %s\n' "$c" "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)" "$checks"
done
