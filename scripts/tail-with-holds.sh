#!/usr/bin/env bash
# Reservation tail latency on a hot SKU with millions of open holds, against
# the same SKU empty, in the same run: "a hot SKU with 5 million open holds:
# reservation p99 within 20 % of an empty SKU's".
#
# Usage: scripts/tail-with-holds.sh [HOLDS] [SECONDS]
#   HOLDS    open holds made on the hot SKU between the two runs (default 5000000)
#   SECONDS  length of each measuring run (default 10)
# Env: SURGE_PORT (default: a free port); TAIL_BIN (default: this tree's
#      release build), to measure another build the same way. Needs python3
#      and curl.
#
# A durable release server on fresh data. Run 1: one reservation per request,
# 50 connections, on the empty hot SKU. Then HOLDS day-long holds through the
# batch endpoint (256 per request). Run 2: the same load on the same SKU.
# Snapshots are off, so a checkpoint of millions of holds does not share the
# 2 cores with run 2: the question is what the holds cost the request path.
# (Run 1's own holds, about SECONDS x throughput, stay open too; the loadgen's
# oversell check is not meaningful for the runs after the first and is not
# read.)
set -euo pipefail
holds=${1:-5000000}
seconds=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
port=${SURGE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
. "$root/scripts/lib.sh"
surge=${TAIL_BIN:-$surge}

start_surge SURGE_HOLD_TTL_MS_MAX=86400000 SURGE_SNAPSHOT_EVERY_EVENTS=1000000000
target=http://127.0.0.1:$port
run_id=tail$$

# measure NAME -> "p50 p99 p99.9 max reservations_per_s"
measure() {
  "$surge" loadgen --target "$target" --run-id "$run_id" --connections 50 \
    --duration-s "$seconds" --mode reserve --stock 100000000 --quiet \
    --json "$work/$1.json" >/dev/null || true
  python3 - "$work/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = next(iter(r["latency"].values()))
print(f'{lat["p50"]:.3f} {lat["p99"]:.3f} {lat["p999"]:.3f} {lat["max"]:.3f} {r["items_per_s"]:.0f}')
PY
}

rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }

read -r e50 e99 e999 emax erate <<<"$(measure empty)"
echo "empty hot SKU: p50 $e50 ms, p99 $e99 ms, p99.9 $e999 ms, max $emax ms, $erate reservations/s (RSS $(rss_mib) MiB)" >&2

start=$(date +%s)
"$surge" loadgen --target "$target" --run-id "$run_id" --connections 4 --duration-s 100000 \
  --requests $(( (holds + 255) / 256 )) --mode batch --batch 256 --ttl-ms 86400000 \
  --stock "$holds" --quiet --json "$work/fill.json" >/dev/null || true
open=$(curl -fs "$target/v1/skus/$run_id-s0/stock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reserved"])')
echo "filled: $open units reserved on $run_id-s0 in $(( $(date +%s) - start )) s (RSS $(rss_mib) MiB)" >&2

read -r f50 f99 f999 fmax frate <<<"$(measure full)"
echo "with holds:    p50 $f50 ms, p99 $f99 ms, p99.9 $f999 ms, max $fmax ms, $frate reservations/s (RSS $(rss_mib) MiB)" >&2
stop_surge

awk -v h="$open" -v a="$e99" -v b="$f99" -v ea="$erate" -v fb="$frate" 'BEGIN {
  printf "reservation p99: empty %.3f ms, with %d open holds %.3f ms, ratio %.2f (throughput %d -> %d/s)\n", a, h, b, b / a, ea, fb
}'
