#!/usr/bin/env bash
# Surge vs Redis+Lua on the same hot-SKU flash sale, in the same run.
#
# Usage: scripts/compare-redis.sh [ROUNDS] [SECONDS]
#   ROUNDS   runs of each case; medians are reported (default 3)
#   SECONDS  length of each Surge run (default 10)
# Env: PEERS_DIR  the peer scripts (default: ../shared/peers next to the repo)
#      SURGE_PORT, REDIS_PORT (default: free ports)
#
# Cases (50 connections, one hot SKU, everything on this machine):
#   durable    Surge durability=fsync, 1 reservation/request  vs Redis appendfsync always, no pipelining
#   unsafe     Surge durability=none,  1 reservation/request  vs Redis without persistence
#   pipelined  Surge durability=fsync, batches of 16          vs Redis appendfsync always, 16-deep pipeline
# Needs Debian's redis-server and redis-tools, and python3 (to read JSON).
set -euo pipefail
rounds=${1:-3}
seconds=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS_DIR:-$root/../shared/peers}
port=${SURGE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
# The peer script starts Redis on REDIS_PORT: a free one unless given.
export REDIS_PORT=${REDIS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
[ -x "$peers/redis-reserve-bench.sh" ] || [ -f "$peers/redis-reserve-bench.sh" ] || {
  echo "peer scripts not found in $peers (set PEERS_DIR)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install -y redis-server redis-tools)" >&2; exit 2; }

. "$root/scripts/lib.sh"

# surge_run DURABILITY MODE -> "items_per_s p50 p99 check"
surge_run() {
  start_surge "SURGE_DURABILITY=$1"
  local extra=""
  [ "$2" = batch ] && extra="--batch 16"
  "$surge" loadgen --target "http://127.0.0.1:$port" --connections 50 --duration-s "$seconds" \
    --mode "$2" $extra --stock 100000000 --quiet --json "$work/report.json" >/dev/null || true
  stop_surge
  python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = next(iter(r["latency"].values()))
print(f'{r["items_per_s"]:.0f} {lat["p50"]:.3f} {lat["p99"]:.3f} {"ok" if r["check"]["ok"] else "OVERSOLD"}')
PY
}

# redis_run MODE PIPELINE REQUESTS -> "rps p50 p99 check"
redis_run() {
  bash "$peers/redis-reserve-bench.sh" "$1" "$2" "$3" \
    | awk -F, '{ split($NF, c, "="); printf "%.0f %s %s %s\n", $5, $8, $10, c[2] }'
}

declare -A results
run_case() { # name surge-durability surge-mode redis-mode pipeline requests
  for r in $(seq 1 "$rounds"); do
    results[$1,surge,$r]=$(surge_run "$2" "$3")
    results[$1,redis,$r]=$(redis_run "$4" "$5" "$6")
    echo "round $r $1: surge ${results[$1,surge,$r]} | redis ${results[$1,redis,$r]}" >&2
  done
}

run_case durable   fsync reserve always    1  600000
run_case unsafe    none  reserve nopersist 1  1000000
run_case pipelined fsync batch   always    16 6000000

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); medians of $rounds rounds"
printf '%-10s %14s %9s %9s %14s %9s %9s %7s %s\n' case surge/s p50_ms p99_ms redis/s p50_ms p99_ms ratio checks
for c in durable unsafe pipelined; do
  col() { for r in $(seq 1 "$rounds"); do echo "${results[$c,$1,$r]}" | cut -d' ' -f"$2"; done | median; }
  checks=$(for r in $(seq 1 "$rounds"); do echo "${results[$c,surge,$r]##* }/${results[$c,redis,$r]##* }"; done | sort -u | xargs)
  s=$(col surge 1); rd=$(col redis 1)
  printf '%-10s %14s %9s %9s %14s %9s %9s %7s %s\n' "$c" "$s" "$(col surge 2)" "$(col surge 3)" \
    "$rd" "$(col redis 2)" "$(col redis 3)" "$(awk -v a="$s" -v b="$rd" 'BEGIN { printf "%.2f", a / b }')" "$checks"
done
