#!/usr/bin/env bash
# Memory per open hold: RSS growth of a durable server while N holds are
# made on one hot SKU through POST /v1/reservations:batch (256 per
# request), over every copy the server keeps (actor, read model,
# checkpointer, log buffers).
#
# Usage: scripts/memory-per-hold.sh [N]      (default 1000000)
# Env: SURGE_PORT (default: a free port). Needs python3 and curl.
set -euo pipefail
holds=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
port=${SURGE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
. "$root/scripts/lib.sh"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$server/status"; }

# Long holds, no snapshot during the run: what stays in memory is the holds.
start_surge SURGE_HOLD_TTL_MS_MAX=86400000 SURGE_SNAPSHOT_EVERY_EVENTS=100000000
base=http://127.0.0.1:$port
curl -fs -X PUT "$base/v1/warehouses/w1" -H 'content-type: application/json' \
  -d '{"name":"w1","location":{"lat":50,"lon":8},"priority":1}' >/dev/null
curl -fs -X PUT "$base/v1/skus/hot" -H 'content-type: application/json' -d '{"name":"hot"}' >/dev/null
curl -fs -X POST "$base/v1/stock/adjustments" -H 'content-type: application/json' \
  -d "{\"sku\":\"hot\",\"warehouse\":\"w1\",\"delta\":$holds,\"reason\":\"receipt\"}" >/dev/null
before=$(rss_kb)
python3 - "$port" "$holds" <<'PY'
import http.client, json, sys
port, holds = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
item = {"sku": "hot", "qty": 1, "ttl_ms": 86400000}
made = 0
while made < holds:
    n = min(256, holds - made)
    conn.request("POST", "/v1/reservations:batch", json.dumps({"reservations": [item] * n}),
                  {"content-type": "application/json"})
    r = conn.getresponse()
    body = json.loads(r.read())
    ok = sum(1 for x in body["results"] if x["status"] == 201)
    if r.status != 200 or ok != n:
        sys.exit(f"batch refused: {r.status} {ok}/{n}")
    made += n
PY
after=$(rss_kb)
stop_surge
awk -v b="$before" -v a="$after" -v n="$holds" 'BEGIN {
  printf "%d open holds on one SKU: RSS %.1f MiB -> %.1f MiB, %.0f bytes per hold\n", n, b / 1024, a / 1024, (a - b) * 1024 / n
}'
