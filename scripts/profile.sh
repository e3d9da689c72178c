#!/usr/bin/env bash
# Where the server's CPU goes under the flash-sale load: `perf record` of
# the server alone (not the load generator) while `surge loadgen` drives it.
#
# Usage: scripts/profile.sh [BINARY] [SECONDS] [MODE] [TOP]
#   BINARY   the server to profile (default: this tree's release build)
#   SECONDS  length of the load run (default 10); the profile covers its
#            middle, skipping the first second
#   MODE     reserve (one reservation per request, default), batch (16), or
#            order (placement: 1,000 SKUs, 8 warehouses, 3 lines per order,
#            as `MODE=order scripts/compare-builds.sh` runs it)
#   TOP      lines of each report (default 40)
# Env: CALL_GRAPH=fp|dwarf|lbr|none (default fp: cheap, but frames without
#      frame pointers end early), LOADGEN=binary that drives the load
#      (default BINARY), KEEP=dir to keep perf.data there, DELAY=seconds
#      from the start of the load to the start of the recording (default 1;
#      order mode creates its SKUs and warehouses first, so give it more).
# Prints the top symbols by self time (`perf report --no-children`), the
# same split by thread name, and where each thread's time goes by DSO
# (kernel vs ours vs libc). durability=fsync, 50 connections, one hot SKU,
# a fresh server on a free port and an empty data directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
seconds=${2:-10}
mode=${3:-reserve}
top=${4:-40}
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 2; }
perf record -o /dev/null -- true >/dev/null 2>&1 || { echo "perf record does not work here (perf_event_paranoid, or no permission)"; exit 2; }
[ -n "$bin" ] && surge_bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
loadgen=${LOADGEN:-$surge}
cg=()
case ${CALL_GRAPH:-fp} in
  none) ;;
  dwarf) cg=(--call-graph dwarf,16384) ;;
  *) cg=(--call-graph "${CALL_GRAPH:-fp}") ;;
esac
extra=()
case $mode in
  batch) extra=(--batch 16) ;;
  order) extra=(--skus 1000 --warehouses 8 --lines 3) ;;
esac
delay=${DELAY:-1}
if [ "$delay" -ge "$seconds" ]; then
  echo "DELAY ($delay) must be below SECONDS ($seconds): the recording would start after the load" >&2
  exit 2
fi
port=$(free_port)
start_surge SURGE_DURABILITY=fsync
"$loadgen" loadgen --target "http://127.0.0.1:$port" --connections 50 --duration-s "$seconds" \
  --mode "$mode" "${extra[@]}" --stock 100000000 --quiet --json "$work/report.json" >/dev/null &
lg=$!
sleep "$delay"
record_s=$((seconds > delay + 2 ? seconds - delay - 1 : 1))
perf record -q -F 2999 "${cg[@]}" -p "$server" -o "$work/perf.data" -- sleep "$record_s" 2>/dev/null
wait "$lg" || true
stop_surge
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"load: {r['items_per_s']:.0f} items/s over {r['requests']} requests, check {'ok' if r['check']['ok'] else 'FAILED'}")
PY
# report LINES ARGS...: the first LINES entries of a self-time report.
report() {
  local lines=$1
  shift
  perf report -i "$work/perf.data" --no-children --percent-limit 0.3 --stdio "$@" 2>/dev/null >"$work/report.txt" || true
  grep -v -e '^$' -e '^#' "$work/report.txt" | sed -E 's/([[:space:]]+-)*[[:space:]]*$//' | head -n "$lines" || true
}
echo "== top symbols by self time (all server threads)"
report "$top" -g none --sort symbol
echo "== by thread"
report 20 -g none --sort comm
echo "== by thread and DSO"
report "$top" -g none --sort comm,dso
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$work/perf.data" "$KEEP/" && echo "perf.data kept in $KEEP (perf report -i $KEEP/perf.data)"
fi
