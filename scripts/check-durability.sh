#!/usr/bin/env bash
# Proves that every acknowledged write reached stable storage: runs the
# server under strace, makes N sequential reservations, and checks that each
# one was followed by an fdatasync of the log (sled's own flush only issues
# sync_file_range, which does not flush the disk cache or metadata).
#
# Usage: scripts/check-durability.sh [N]      (needs strace: apt-get install strace)
set -euo pipefail
n=${1:-20}
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)"; exit 2; }
cargo build --quiet --bin surge
bin=target/debug/surge
tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
strace -f -qq -e trace=fdatasync,fsync,sync_file_range -o "$tmp/trace" \
  "$bin" serve --data-dir "$tmp/data" --listen "127.0.0.1:$port" >"$tmp/log" 2>&1 &
pid=$!
# Signal the server itself (strace's child): SIGINT to strace would only detach it.
cleanup() {
  pkill -INT -P "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "$base/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "server did not start"; cat "$tmp/log"; exit 1; }
json=(-sf -H 'content-type: application/json')
curl "${json[@]}" -X PUT "$base/v1/warehouses/w1" -d '{"name":"W1","location":{"lat":1,"lon":1}}' >/dev/null
curl "${json[@]}" -X PUT "$base/v1/skus/s1" -d '{}' >/dev/null
curl "${json[@]}" -X POST "$base/v1/stock/adjustments" -d "{\"sku\":\"s1\",\"warehouse\":\"w1\",\"delta\":$n,\"reason\":\"check\"}" >/dev/null
before=$(grep -c 'fdatasync(' "$tmp/trace" || true)
for _ in $(seq "$n"); do
  curl "${json[@]}" -X POST "$base/v1/reservations" -d '{"sku":"s1","qty":1}' >/dev/null
done
after=$(grep -c 'fdatasync(' "$tmp/trace" || true)
ranges=$(grep -c 'sync_file_range(' "$tmp/trace" || true)
synced=$((after - before))
echo "acknowledged writes: $n; fdatasync calls during them: $synced; sync_file_range calls in all: $ranges"
if [ "$synced" -lt "$n" ]; then
  echo "FAIL: an acknowledged write was not followed by fdatasync"
  exit 1
fi
echo "ok: every acknowledged write was fdatasync'ed before its reply"
