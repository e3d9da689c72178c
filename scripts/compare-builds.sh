#!/usr/bin/env bash
# Two builds of Surge side by side on the same hot-SKU flash sale, rounds
# interleaved, in one run: did a change move reservation throughput or p99?
#
# Usage: scripts/compare-builds.sh OLD_BINARY [NEW_BINARY] [ROUNDS] [SECONDS]
#   OLD_BINARY  e.g. a release build of the previous commit
#   NEW_BINARY  default: this tree's release build
#   ROUNDS      rounds of each case and build; medians reported (default 5)
#   SECONDS     length of each run (default 10)
# Cases (50 connections, one hot SKU, durability=fsync): `reserve` (one
# reservation per request) and `batch` (batches of 16). Each server gets a
# free port and a fresh data directory.
#
# NEW_KEYED=1: the new build runs with an API key configured (so every
# request is authenticated and checked against its scopes) and the load
# generator sends it on every request, to both builds (a build without
# keys ignores the header): the cost of authentication, side by side.
#
# OLD_ENV / NEW_ENV: settings for one build's server only, as space-separated
# NAME=VALUE (e.g. OLD_ENV=SURGE_METRICS_HTTP=false to run one build with
# request counting off). Copy a binary under another name to compare one
# build with itself.
#
# MODE=order: instead of the two reservation cases, order placement:
# `--mode order --skus 1000 --warehouses 8 --lines 3` (50 connections), so
# placement with routing against priority-only placement (`x/old`) is one
# command; items are order lines. MODE=all runs the three cases.
# ALSO=BINARY: a third build, interleaved with the other two in every round
# (e.g. the previous commit's release build), reported against OLD too.
set -euo pipefail
old=${1:?usage: compare-builds.sh OLD_BINARY [NEW_BINARY] [ROUNDS] [SECONDS]}
root=$(cd "$(dirname "$0")/.." && pwd)
new=${2:-}
rounds=${3:-5}
seconds=${4:-10}
if [ -z "$new" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  new=$root/target/release/surge
fi
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
case ${MODE:-reserve} in
  order) modes=(order) ;;
  all) modes=(reserve batch order) ;;
  *) modes=(reserve batch) ;;
esac
builds=(old new)
declare -A bin=([old]=$old [new]=$new)
if [ -n "${ALSO:-}" ]; then
  builds+=(also)
  bin[also]=$ALSO
fi
key=""; keys_new=""
if [ "${NEW_KEYED:-0}" = 1 ]; then
  key=$(python3 -c 'import secrets; print("sk_" + secrets.token_hex(24))')
  hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  keys_new="[{ name = \"bench\", sha256 = \"$hash\", scopes = [\"admin\"] }]"
fi

# run BINARY MODE -> "items_per_s p50 p99 check"
run() {
  local port; port=$(free_port)
  rm -rf "$work/data"
  # Only the new build is given the key: an older build refuses unknown
  # settings.
  local env=()
  [ "$1" = "$new" ] && [ -n "$keys_new" ] && env=("SURGE_KEYS=$keys_new")
  local side=${OLD_ENV:-}
  [ "$1" = "$new" ] && side=${NEW_ENV:-}
  # shellcheck disable=SC2206 # split on spaces on purpose
  [ -n "$side" ] && env+=($side)
  env SURGE_LOG=warn "${env[@]}" "$1" serve --data-dir "$work/data" --listen "127.0.0.1:$port" &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local extra=""
  [ "$2" = batch ] && extra="--batch 16"
  [ "$2" = order ] && extra="--skus 1000 --warehouses 8 --lines 3"
  [ -n "$key" ] && extra="$extra --key $key"
  local cpu0; cpu0=$(cpu_ticks "$server")
  "$new" loadgen --target "http://127.0.0.1:$port" --connections 50 --duration-s "$seconds" \
    --mode "$2" $extra --stock 100000000 --quiet --json "$work/report.json" >/dev/null || true
  local cpu1; cpu1=$(cpu_ticks "$server")
  kill -TERM "$server"; wait "$server" || true; server=""
  python3 - "$work/report.json" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = next(iter(r["latency"].values()))
cpu_us = int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / max(r["items"], 1)
print(f'{r["items_per_s"]:.0f} {lat["p50"]:.3f} {lat["p99"]:.3f} {cpu_us:.2f} {"ok" if r["check"]["ok"] else "OVERSOLD"}')
PY
}
# User + system CPU a process has used, in clock ticks.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A res
echo "before: $(uptime)" >&2
for mode in "${modes[@]}"; do
  for r in $(seq 1 "$rounds"); do
    line="round $r $mode:"
    for b in "${builds[@]}"; do
      res[$mode,$b,$r]=$(run "${bin[$b]}" "$mode")
      line="$line $b ${res[$mode,$b,$r]} |"
    done
    echo "${line% |}" >&2
  done
done
after=$(uptime)
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); medians of $rounds interleaved rounds of ${seconds} s"
echo "load after the runs: ${after##*load }"
for b in "${builds[@]}"; do echo "$b: ${bin[$b]}"; done
echo "items/s: reservations, or order lines (3 per order: orders/s = items/s / 3)"
echo "cpu_us: the server's user + system CPU per item decided (less noisy than throughput on a shared machine)"
printf '%-8s %-5s %10s %8s %8s %8s %7s %7s %s\n' mode build items/s p50_ms p99_ms cpu_us x/old cpu_x/o checks
for mode in "${modes[@]}"; do
  col() { for r in $(seq 1 "$rounds"); do echo "${res[$mode,$1,$r]}" | cut -d' ' -f"$2"; done | median; }
  o=$(col old 1); oc=$(col old 4)
  for b in "${builds[@]}"; do
    checks=$(for r in $(seq 1 "$rounds"); do echo "${res[$mode,$b,$r]##* }"; done | sort -u | xargs)
    n=$(col "$b" 1); nc=$(col "$b" 4)
    printf '%-8s %-5s %10s %8s %8s %8s %7s %7s %s\n' "$mode" "$b" "$n" "$(col "$b" 2)" "$(col "$b" 3)" "$nc" \
      "$(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.2f", a / b }')" \
      "$(awk -v a="$nc" -v b="$oc" 'BEGIN { printf "%.2f", a / b }')" "$checks"
  done
done
