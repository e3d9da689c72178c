#!/usr/bin/env bash
# Proves that every acknowledged write reached stable storage. Runs the
# server under strace and:
#  1. makes N sequential reservations and checks that each one was followed
#     by an fdatasync of the log (sled's own flush only issues
#     sync_file_range, which does not flush the disk cache or metadata);
#  2. drives reservation batches of 256 from W concurrent clients (group
#     commits of thousands of events) while snapshots are due, then waits
#     for a snapshot;
#  3. stops the server with SIGKILL (so no shutdown sync hides anything) and
#     fails if any file in the data directory was written and not fsync'd or
#     fdatasync'd afterwards, if sled ever created a file under blobs/ (sled
#     never syncs those), if a snapshot file was renamed into place before
#     it was synced, or if a snapshot's directory was not fsync'd after its
#     files were renamed into it.
#
# Usage: scripts/check-durability.sh [N] [W] [B]   (needs strace and curl)
#        N sequential reservations, W clients sending B batches each.
#        KEEP_TRACE=1 keeps the trace and its scratch directory.
set -euo pipefail
n=${1:-20}
workers=${2:-8}
batches_per_worker=${3:-10}
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)"; exit 2; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install curl)"; exit 2; }
cargo build --quiet --bin surge
bin=target/debug/surge
# analyse TRACE DATA: checks an strace -f -y trace of a server whose data
# directory is DATA; prints what it found, fails on any violation.
analyse() {
  local trace=$1 data=$2 events="$1.events"
  # Events in completion order: "<syscall> <path>" (the fd's path, or for a
  # rename its source and target), from strace -f lines, joining calls that
  # were interrupted by another thread's ("<unfinished ...>" / "resumed>").
  awk -v data="$data" '
  function emit(call, rest,   p, q, path, path2) {
    if (rest ~ /= -1 /) return
    path = ""; path2 = ""
    if (call ~ /^rename/) {
      q = rest
      if (match(q, /"[^"]*"/)) { path = substr(q, RSTART + 1, RLENGTH - 2); q = substr(q, RSTART + RLENGTH) }
      if (match(q, /"[^"]*"/)) { path2 = substr(q, RSTART + 1, RLENGTH - 2) }
      print call, path, path2
      return
    }
    if (call == "openat") {
      if (match(rest, /"[^"]*"/)) path = substr(rest, RSTART + 1, RLENGTH - 2)
      if (rest ~ /O_CREAT/) print "create", path
      return
    }
    if (match(rest, /^[0-9]+<[^>]*>/)) {
      p = substr(rest, RSTART, RLENGTH)
      sub(/^[0-9]+</, "", p); sub(/>$/, "", p)
      print call, p
    }
  }
  {
    tid = $1
    line = $0
    sub(/^[0-9]+ +/, "", line)
    if (line ~ /<unfinished \.\.\.>$/) {
      call = line; sub(/\(.*/, "", call)
      rest = line; sub(/^[a-z0-9_]+\(/, "", rest)
      pending_call[tid] = call; pending_rest[tid] = rest
      next
    }
    if (line ~ /^<\.\.\. [a-z0-9_]+ resumed>/) {
      if (tid in pending_call) emit(pending_call[tid], pending_rest[tid] " " line)
      delete pending_call[tid]
      next
    }
    call = line; sub(/\(.*/, "", call)
    rest = line; sub(/^[a-z0-9_]+\(/, "", rest)
    emit(call, rest)
  }
' "$trace" | grep -F "$data" >"$events" || true

  # Checks over the events, in order.
  awk -v data="$data" '
  function is_data_file(p) { return index(p, data "/") == 1 }
  $1 == "create" && $2 ~ /\/blobs\// { blob[$2] = 1 }
  ($1 == "write" || $1 == "pwrite64" || $1 == "pwritev") && is_data_file($2) {
    dirty[$2] = 1; written[$2] = 1; writes++
    if ($2 ~ /\/blobs\//) blob[$2] = 1
    if ($2 ~ /\/snapshots\//) snap_writes++
  }
  $1 == "fsync" || $1 == "fdatasync" {
    dirty[$2] = 0; syncs[$1]++
    if ($2 ~ /\/snapshots$/) { dir_dirty = 0; snap_dir_syncs++ }
  }
  $1 == "sync_file_range" { ranges++ }
  $1 ~ /^rename/ && $2 ~ /\/snapshots\// {
    renames++
    if (dirty[$2]) { bad++; print "FAIL: " $2 " renamed into place before it was synced" }
    dirty[$3] = dirty[$2]; dirty[$2] = 0
    dir_dirty = 1
    if ($3 ~ /\/meta$/) { metas++; meta_pending = 1 }
  }
  $1 ~ /^(fsync|fdatasync)$/ && $2 ~ /\/snapshots$/ && meta_pending { meta_pending = 0; metas_synced++ }
  END {
    for (p in blob) { bad++; print "FAIL: sled wrote " p " (a blob: never synced by sled)" }
    for (p in dirty) if (dirty[p]) { bad++; print "FAIL: " p " was written and never synced afterwards" }
    if (dir_dirty) { bad++; print "FAIL: snapshot files renamed but their directory not fsynced" }
    if (metas == 0) { bad++; print "FAIL: no snapshot was committed during the run" }
    if (metas_synced < metas) { bad++; print "FAIL: a snapshot meta rename without a directory fsync after it" }
    nfiles = 0; for (p in written) nfiles++
    printf "trace: %d writes to %d files in the data directory, %d fdatasync, %d fsync, %d sync_file_range; %d snapshot files written, %d renames, %d snapshots committed, %d snapshot directory fsyncs; %d blob files\n", writes, nfiles, syncs["fdatasync"], syncs["fsync"], ranges, snap_writes, renames, metas, snap_dir_syncs, length(blob)
    exit bad > 0
  }
' "$events"
}

# The checker itself, on a made-up trace: a sled blob, a write completed
# after the sync that should have covered it, a snapshot file renamed before
# its sync. Each must be reported.
selftest=$(mktemp)
cat >"$selftest" <<'TRACE'
100 openat(AT_FDCWD</x>, "/d/data/blobs/5", O_RDWR|O_CREAT|O_CLOEXEC, 0666) = 9</d/data/blobs/5>
100 pwrite64(9</d/data/blobs/5>, "abc", 3, 0) = 3
100 pwrite64(4</d/data/db>, "abc", 3, 0 <unfinished ...>
101 fdatasync(4</d/data/db>) = 0
100 <... pwrite64 resumed>) = 3
102 write(7</d/data/snapshots/1-1.chunk.tmp>, "abc", 3) = 3
102 rename("/d/data/snapshots/1-1.chunk.tmp", "/d/data/snapshots/1-1.chunk") = 0
TRACE
if found=$(analyse "$selftest" /d/data); then
  echo "FAIL: the checker passed a bad trace"; exit 1
fi
for want in "blobs/5" "data/db was written" "renamed into place before"; do
  grep -q "$want" <<<"$found" || { echo "FAIL: the checker missed: $want"; echo "$found"; exit 1; }
done
rm -f "$selftest" "$selftest.events"
echo "checker self-test: a made-up trace's blob, late write and early rename are all caught"

tmp=$(mktemp -d)
data="$tmp/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
SURGE_SNAPSHOT_EVERY_EVENTS=5000 SURGE_SNAPSHOT_CHUNK_ENTRIES=1000 \
  strace -f -qq -y -e trace=openat,write,pwrite64,pwritev,fsync,fdatasync,sync_file_range,rename,renameat,renameat2 \
  -o "$tmp/trace" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$tmp/log" 2>&1 &
pid=$!
server_pid() { pgrep -P "$pid" | head -1; }
# Signal the server itself (strace's child): a signal to strace would only
# detach it.
cleanup() {
  local s
  s=$(server_pid || true)
  [ -n "$s" ] && kill -KILL "$s" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -n "${KEEP_TRACE:-}" ]; then echo "trace kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "$base/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "server did not start"; cat "$tmp/log"; exit 1; }
json=(-sf -H 'content-type: application/json')
total=$((n + workers * batches_per_worker * 256))
curl "${json[@]}" -X PUT "$base/v1/warehouses/w1" -d '{"name":"W1","location":{"lat":1,"lon":1}}' >/dev/null
curl "${json[@]}" -X PUT "$base/v1/skus/s1" -d '{}' >/dev/null
curl "${json[@]}" -X POST "$base/v1/stock/adjustments" -d "{\"sku\":\"s1\",\"warehouse\":\"w1\",\"delta\":$total,\"reason\":\"check\"}" >/dev/null

# 1. Sequential single reservations: one fdatasync per acknowledgement.
before=$(grep -c 'fdatasync(' "$tmp/trace" || true)
for _ in $(seq "$n"); do
  curl "${json[@]}" -X POST "$base/v1/reservations" -d '{"sku":"s1","qty":1}' >/dev/null
done
after=$(grep -c 'fdatasync(' "$tmp/trace" || true)
synced=$((after - before))
echo "sequential: $n acknowledged reservations, $synced fdatasync calls during them"
if [ "$synced" -lt "$n" ]; then
  echo "FAIL: an acknowledged write was not followed by fdatasync"
  exit 1
fi

# 2. Concurrent batches of 256.
{
  printf '{"reservations":['
  for i in $(seq 256); do
    [ "$i" -gt 1 ] && printf ','
    printf '{"sku":"s1","qty":1}'
  done
  printf ']}'
} >"$tmp/batch.json"
for w in $(seq "$workers"); do
  (
    for b in $(seq "$batches_per_worker"); do
      curl "${json[@]}" -X POST "$base/v1/reservations:batch" --data-binary @"$tmp/batch.json" \
        -o "$tmp/reply-$w-$b.json"
    done
  ) &
done
wait_failed=0
for job in $(jobs -p); do
  [ "$job" = "$pid" ] && continue
  wait "$job" || wait_failed=1
done
[ "$wait_failed" = 0 ] || { echo "FAIL: a batch request failed"; exit 1; }
acked=$(cat "$tmp"/reply-*.json | grep -o '"status":201' | wc -l)
echo "concurrent: $workers clients x $batches_per_worker batches of 256: $acked reservations acknowledged"
[ "$acked" -eq $((workers * batches_per_worker * 256)) ] || { echo "FAIL: not every batch item was acknowledged"; exit 1; }

# 3. A snapshot, then quiet, then SIGKILL.
for _ in $(seq 100); do
  grep -q 'snapshots/meta>' "$tmp/trace" && grep -q 'rename.*snapshots/meta"' "$tmp/trace" && break
  sleep 0.1
done
lines=-1
for _ in $(seq 50); do
  now=$(wc -l <"$tmp/trace")
  [ "$now" = "$lines" ] && break
  lines=$now
  sleep 0.6
done
kill -KILL "$(server_pid)"
wait "$pid" 2>/dev/null || true

analyse "$tmp/trace" "$data" || { echo "strace excerpt:"; grep -E 'snapshots|blobs' "$tmp/trace" | head -20; exit 1; }
echo "strace excerpt (a snapshot commit):"
grep -E 'snapshots' "$tmp/trace" | grep -E 'fdatasync|fsync|rename' | tail -6
echo "ok: every acknowledged write was fdatasync'ed before its reply; every file written was synced; no blobs; snapshot files and their directory synced"
