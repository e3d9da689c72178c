#!/usr/bin/env bash
# Server CPU and context switches per durable reservation, per thread.
#
# Usage: scripts/cpu-per-request.sh [BINARY] [SECONDS] [ROUNDS]
#   BINARY   the server to measure (default: this tree's release build)
#   SECONDS  length of each load run (default 10)
#   ROUNDS   runs of each case; medians reported when more than one (default 1)
# Env: LOADGEN=binary whose `surge loadgen` drives the load (default BINARY),
#      PERF=0 to skip `perf stat` (syscalls per request),
#      DURABILITY=fsync|batch (default fsync; `batch` lets a group commit wait
#      up to wal_group_delay_us_max for more writers).
#
# For each case (50 keep-alive connections, one hot SKU, durability=fsync or
# DURABILITY; `reserve`: one reservation per request, `batch`: 16 per
# request) it starts a fresh server (free port, empty data directory), reads
# its threads' counters from /proc before and after a `surge loadgen` run,
# and divides by what the load generator completed:
#   - µs of server CPU per reservation: utime+stime of /proc/PID/stat (every
#     thread of the server, those that exited included; the load generator is
#     another process and is not counted);
#   - context switches (voluntary + involuntary, summed over
#     /proc/PID/task/*/status) per request and per reservation;
#   - syscalls per request, from `perf stat -e raw_syscalls:sys_enter -p PID`
#     when perf works here (it is skipped, and said so, when it does not),
#     and group commits (the log's fdatasync calls), so each thread's cost
#     is also shown per group commit;
#   - bytes the server wrote to disk (/proc/PID/io write_bytes) per reservation;
#   - the same by thread name: CPU from /proc/PID/task/*/schedstat (ns), or
#     from task stat ticks where schedstat is missing; `sled-io-N` threads
#     summed as `sled-io-*`, threads sharing a name told apart by start order
#     (today's server starts the actor arbiters, then the HTTP workers: all
#     `actix-rt|system`, the name cut to 15 characters by the kernel).
# The window is the whole loadgen run (its setup and final check are a few
# requests) plus 0.3 s after it, so work deferred past the last reply (the
# checkpointer's) is counted. Targets: <= 30 µs CPU per reservation, <= 0.5
# context switches per request.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
seconds=${2:-10}
rounds=${3:-1}
[ -n "$bin" ] && surge_bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
# shellcheck source=lib.sh
. "$root/scripts/lib.sh"
loadgen=${LOADGEN:-$surge}
durability=${DURABILITY:-fsync}
perf_ok=0
if [ "${PERF:-1}" != 0 ] && command -v perf >/dev/null &&
  perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  perf_ok=1
fi

# snapshot PID: one line per thread "tid<TAB>name<TAB>cpu_ns<TAB>switches",
# then "total<TAB>-<TAB>cpu_ns<TAB>switches" (CPU of the whole process).
snapshot() {
  python3 - "$1" <<'PY'
import os, sys
pid = sys.argv[1]
tck = os.sysconf("SC_CLK_TCK")
def ticks_ns(stat):
    f = stat[stat.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) * 1_000_000_000 // tck
switches_all = 0
for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
    d = f"/proc/{pid}/task/{tid}"
    try:
        name = open(f"{d}/comm").read().strip()
        st = open(f"{d}/status").read().split("\n")
        sw = sum(int(l.split()[1]) for l in st if "ctxt_switches:" in l)
        try:
            ns = int(open(f"{d}/schedstat").read().split()[0])
        except OSError:
            ns = ticks_ns(open(f"{d}/stat").read())
    except OSError:
        continue
    switches_all += sw
    print(f"{tid}\t{name}\t{ns}\t{sw}")
print(f"total\t-\t{ticks_ns(open(f'/proc/{pid}/stat').read())}\t{switches_all}")
io = dict(l.split(": ") for l in open(f"/proc/{pid}/io").read().split("\n") if ": " in l)
print(f"disk\t-\t{io['write_bytes']}\t0")
PY
}

# measure MODE ROUND: one run; prints a summary line to stdout, the detail to stderr.
measure() {
  local mode=$1 round=$2 extra=""
  [ "$mode" = batch ] && extra="--batch 16"
  port=$(free_port)
  start_surge SURGE_DURABILITY="$durability"
  # Setup traffic (warehouse, SKU, stock) is part of the loadgen run; the
  # server is idle before it.
  snapshot "$server" >"$work/before"
  local perf_pid=""
  if [ "$perf_ok" = 1 ]; then
    perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_futex \
      -p "$server" -o "$work/perf" &
    perf_pid=$!
  fi
  "$loadgen" loadgen --target "http://127.0.0.1:$port" --connections 50 --duration-s "$seconds" \
    --mode "$mode" $extra --stock 100000000 --quiet --json "$work/report.json" >/dev/null || true
  sleep 0.3
  snapshot "$server" >"$work/after"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  stop_surge
  python3 - "$work" "$mode" "$round" "$perf_ok" <<'PY'
import json, re, sys
work, mode, rnd, perf_ok = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
def load(path):
    rows = {}
    for line in open(path):
        tid, name, ns, sw = line.rstrip("\n").split("\t")
        rows[tid] = (name, int(ns), int(sw))
    return rows
before, after = load(f"{work}/before"), load(f"{work}/after")
r = json.load(open(f"{work}/report.json"))
reqs, items = r["requests"], r["items"]
cpu_ns = after["total"][1] - before["total"][1]
# Switches: per thread, a thread started during the run counts from zero.
groups, order, gone = {}, [], []
seen = {}
for tid, (name, ns, sw) in after.items():
    if tid in ("total", "disk"):
        continue
    b = before.get(tid, (name, 0, 0))
    if re.fullmatch(r"sled-io-\d+", name):
        key = "sled-io-*"
    else:
        seen[name] = seen.get(name, 0) + 1
        key = name if seen[name] == 1 else f"{name} #{seen[name]}"
    g = groups.setdefault(key, [0, 0, 0])
    if key not in order:
        order.append(key)
    g[0] += ns - b[1]; g[1] += sw - b[2]; g[2] += 1
gone = [t for t in before if t not in ("total", "disk") and t not in after]
disk_bytes = after["disk"][1] - before["disk"][1]
switches = sum(g[1] for g in groups.values())
counts = {}
if perf_ok:
    try:
        for line in open(f"{work}/perf"):
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].isdigit():
                counts[parts[2]] = int(parts[0])
    except OSError:
        pass
syscalls = counts.get("raw_syscalls:sys_enter")
# One fdatasync of the log per group commit (snapshots add a few).
commits = counts.get("syscalls:sys_enter_fdatasync")
futex = counts.get("syscalls:sys_enter_futex")
errs = sum(r["errors"].values())
lat = next(iter(r["latency"].values()), {"p50": 0, "p99": 0})
us_res = cpu_ns / 1000 / max(items, 1)
sw_req = switches / max(reqs, 1)
sw_res = switches / max(items, 1)
sc_req = syscalls / max(reqs, 1) if syscalls is not None else float("nan")
print(f"{mode} round {rnd}: {r['items_per_s']:.0f} reservations/s, {reqs} requests, {items} reservations, "
      f"{errs} errors, p50 {lat['p50']:.2f} p99 {lat['p99']:.2f} ms, check {'ok' if r['check']['ok'] else 'FAILED'}",
      file=sys.stderr)
print(f"  server CPU {cpu_ns / 1e9:.2f} s = {us_res:.1f} µs per reservation; "
      f"context switches {switches} = {sw_req:.2f} per request, {sw_res:.3f} per reservation; "
      + (f"syscalls {sc_req:.1f} per request" if syscalls is not None else "syscalls: not measured")
      + f"; {disk_bytes / max(items, 1):.0f} bytes written to disk per reservation",
      file=sys.stderr)
if commits:
    print(f"  group commits (fdatasync calls) {commits} = {items / commits:.1f} reservations, "
          f"{reqs / commits:.1f} requests each; futex calls {futex / max(reqs, 1):.2f} per request",
          file=sys.stderr)
per_commit = f" {'µs/commit':>9} {'sw/commit':>9}" if commits else ""
print(f"  {'thread':<20} {'threads':>7} {'µs CPU/res':>10} {'share':>6} {'switches/req':>12}{per_commit}", file=sys.stderr)
tot_threads_ns = sum(g[0] for g in groups.values()) or 1
for key in sorted(order, key=lambda k: -groups[k][0]):
    ns, sw, n = groups[key]
    if ns == 0 and sw == 0:
        continue
    pc = f" {ns / 1000 / commits:>9.1f} {sw / commits:>9.2f}" if commits else ""
    print(f"  {key:<20} {n:>7} {ns / 1000 / max(items, 1):>10.2f} {100 * ns / tot_threads_ns:>5.1f}% "
          f"{sw / max(reqs, 1):>12.3f}{pc}", file=sys.stderr)
if gone:
    print(f"  ({len(gone)} threads exited during the run: their switches are not counted)", file=sys.stderr)
# Summary for medians: reservations/s, µs/res, switches/req, switches/res, syscalls/req, ok
print(f"{r['items_per_s']:.0f} {us_res:.2f} {sw_req:.3f} {sw_res:.4f} {sc_req:.2f} "
      f"{'ok' if r['check']['ok'] and errs == 0 else 'FAILED'}")
PY
}

echo "server: $surge; load: $loadgen; ${seconds} s per run, $rounds round(s); $(nproc) cores" >&2
[ "$perf_ok" = 1 ] || echo "perf stat is not usable here: syscalls per request are not measured" >&2
declare -A res
for mode in reserve batch; do
  for r in $(seq 1 "$rounds"); do
    res[$mode,$r]=$(measure "$mode" "$r")
  done
done
echo
echo "medians of $rounds run(s), durability=$durability, 50 connections, one hot SKU (targets: <= 30 µs CPU per reservation, <= 0.5 switches per request)"
printf '%-8s %14s %12s %13s %13s %13s %s\n' mode reservations/s µs_cpu/res switches/req switches/res syscalls/req checks
for mode in reserve batch; do
  col() { for r in $(seq 1 "$rounds"); do echo "${res[$mode,$r]}" | cut -d' ' -f"$1"; done | median; }
  checks=$(for r in $(seq 1 "$rounds"); do echo "${res[$mode,$r]##* }"; done | sort -u | xargs)
  printf '%-8s %14s %12s %13s %13s %13s %s\n' "$mode" "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$checks"
done
