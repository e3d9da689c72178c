#!/usr/bin/env bash
# Writes golden data directories: what a given `surge` binary leaves on disk
# after every kind of event, with the state it must show. They are checked
# in under tests/golden/ and loaded by tests/integration/golden.rs forever,
# so a later build that cannot read them fails CI. Run it once per on-disk
# format version, with the binary that writes that version, into a new
# directory name (v1-*, v2-*, ...); never regenerate an existing one.
#
#   <name>-log/       the log only (no snapshot)
#   <name>-snapshot/  a snapshot, then more events as a log tail after it
#
# Each holds data/ (the sled directory) and expected.json:
#   now_ms       a time at which every open hold is still open
#   warehouses   GET /v1/warehouses
#   stock        sku -> GET /v1/skus/{sku}/stock
#   reservations id -> GET /v1/reservations/{id} (open and closed)
#   orders       id -> GET /v1/orders/{id} (placed and cancelled)
#   idempotency  [{path, key, body, target}]: POSTing body to path with
#                Idempotency-Key: key again answers 200 with GET target
#   routing_rules GET /v1/routing/rules (from v4 on; absent before)
#
# Usage: scripts/make-golden.sh BINARY NAME     e.g. /tmp/surge-base v1
#
# From v3 on holds and orders record the API key that created them: give
# the server a key in SURGE_KEYS and the same key in GOLDEN_KEY (sent
# as a bearer token with every request), e.g.
#   SURGE_KEYS='[{ name = "golden", sha256 = "<sha256 of k>", scopes = ["admin"] }]' \
#   GOLDEN_KEY=k scripts/make-golden.sh target/debug/surge v3
# v4 was written without keys: idempotency keys are scoped to the API key
# that sent them, and tests/integration/golden.rs replays them without one.
# From v4 on (a binary that serves /v1/routing/rules) warehouses carry
# routing attributes and the run changes the rule chains at run time; with
# a binary that re-routes orders, orders are re-routed too (v4-reroute).
# From v5 on (a binary that serves the order lifecycle) orders are also
# paid, held, partly cancelled, shipped in parcels, delivered, returned,
# rejected by a warehouse and re-routed. With a binary that serves incoming
# stock (v6-incoming on), receipts are announced (one with an idempotency
# key), received in part and in full, and low-stock thresholds are set.
# With a binary that closes receipts short (v6-incoming-close on), one
# receipt is closed short with a key in the run and one in the log tail.
# Needs curl, jq and python3 (to find a free port).
set -euo pipefail
bin=${1:?usage: make-golden.sh BINARY NAME}
name=${2:?usage: make-golden.sh BINARY NAME}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/tests/golden
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Snapshots off unless the caller's environment asks for them.
no_snapshots=(SURGE_SNAPSHOT_EVERY_MS=86400000 SURGE_SNAPSHOT_EVERY_EVENTS=1000000000)

# start DATA_DIR LOG [VAR=value ...]: a server on a free port; returns once
# /healthz answers. Sets $base.
start() {
  local dir=$1 log=$2
  shift 2
  local port
  port=$(free_port)
  base="http://127.0.0.1:$port"
  env SURGE_LOG=info "$@" "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >>"$log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do
    curl -fs "$base/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.05
  done
  echo "surge did not start" >&2
  cat "$log" >&2
  exit 1
}

stop() {
  kill -TERM "$server"
  wait "$server" || { echo "surge exited with an error" >&2; exit 1; }
  server=""
}

# call METHOD PATH BODY EXPECTED_STATUS [IDEMPOTENCY_KEY]: prints the body.
call() {
  local method=$1 path=$2 body=$3 want=$4 key=${5:-}
  local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" -H 'content-type: application/json')
  [ -n "$key" ] && args+=(-H "Idempotency-Key: $key")
  [ -n "${GOLDEN_KEY:-}" ] && args+=(-H "Authorization: Bearer $GOLDEN_KEY")
  [ -n "$body" ] && args+=(-d "$body")
  local got
  got=$(curl "${args[@]}" "$base$path")
  if [ "$got" != "$want" ]; then
    echo "$method $path: status $got, expected $want: $(cat "$work/body")" >&2
    exit 1
  fi
  cat "$work/body"
}

# What the state must show, collected as the run goes.
: >"$work/skus"
: >"$work/holds"
: >"$work/orders"
: >"$work/idem"
: >"$work/receipts"

remember_idem() { # PATH KEY BODY TARGET
  jq -cn --arg path "$1" --arg key "$2" --argjson body "$3" --arg target "$4" \
    '{path: $path, key: $key, body: $body, target: $target}' >>"$work/idem"
}

reserve() { # BODY [KEY]: prints the hold id
  local id
  id=$(call POST /v1/reservations "$1" 201 "${2:-}" | jq -r .id)
  echo "$id" >>"$work/holds"
  if [ -n "${2:-}" ]; then remember_idem /v1/reservations "$2" "$1" "/v1/reservations/$id"; fi
  echo "$id"
}

order() { # BODY [KEY]: prints the order id
  local id
  id=$(call POST /v1/orders "$1" 201 "${2:-}" | jq -r .id)
  echo "$id" >>"$work/orders"
  if [ -n "${2:-}" ]; then remember_idem /v1/orders "$2" "$1" "/v1/orders/$id"; fi
  echo "$id"
}

long=86400000

# Every event type, on entities named with prefix $1. Leaves open holds
# (long ttl), closed ones (released, expired, consumed), placed and
# cancelled orders. Writes "OPEN_HOLD PLACED_ORDER" to $work/carry for a
# later phase.
drive() {
  local p=$1
  local w1=$p-w1 w2=$p-w2 a=$p-a b=$p-b
  call PUT "/v1/warehouses/$w1" '{"name":"North","location":{"lat":53.55,"lon":9.99},"priority":1}' 200 >/dev/null
  call PUT "/v1/warehouses/$w2" '{"name":"South","location":{"lat":48.14,"lon":11.58},"priority":2}' 200 >/dev/null
  # Upserted twice: the second one changes the name.
  call PUT "/v1/warehouses/$w2" '{"name":"South 2","location":{"lat":48.14,"lon":11.58},"priority":2}' 200 >/dev/null
  call PUT "/v1/skus/$a" '{"name":"Tee black M","per_customer_limit":5}' 200 >/dev/null
  call PUT "/v1/skus/$b" '{"name":"Mug"}' 200 >/dev/null
  printf '%s\n%s\n' "$a" "$b" >>"$work/skus"
  for row in "$a $w1 100" "$a $w2 50" "$b $w1 20" "$b $w2 30"; do
    set -- $row
    call POST /v1/stock/adjustments "{\"sku\":\"$1\",\"warehouse\":\"$2\",\"delta\":$3,\"reason\":\"receipt\"}" 200 >/dev/null
  done
  call POST /v1/stock/adjustments "{\"sku\":\"$a\",\"warehouse\":\"$w2\",\"set_on_hand\":48,\"expected_on_hand\":50,\"reason\":\"count\"}" 200 >/dev/null
  call POST /v1/stock/adjustments "{\"sku\":\"$a\",\"warehouse\":\"$w1\",\"set_safety_stock\":5,\"reason\":\"buffer\"}" 200 >/dev/null
  if [ "$routing" = 1 ]; then
    # Routing attributes (every one), then changed; rule chains set at run
    # time for a channel and for the default, one of them set back.
    call PUT "/v1/warehouses/$p-w3" '{"name":"West","location":{"lat":50.94,"lon":6.96},"priority":3,"enabled":false,"countries":["de","AT"],"channels":["web","app"],"capacity_per_day":500,"cutoff":{"time":"15:00","tz":"Europe/Berlin"},"shipping_cost":{"fixed":500,"per_km":2,"by_country":{"DE":{"fixed":300,"per_km":1}}}}' 200 >/dev/null
    call PUT "/v1/warehouses/$p-w3" '{"name":"West","location":{"lat":50.94,"lon":6.96},"priority":3,"enabled":true,"countries":["DE","AT","CH"],"channels":["web"],"capacity_per_day":800,"cutoff":{"time":"16:30","tz":"Europe/Berlin"},"shipping_cost":{"fixed":450,"per_km":2,"by_country":{"CH":{"fixed":900,"per_km":3}}}}' 200 >/dev/null
    call PUT "/v1/warehouses/$w1" '{"name":"North","location":{"lat":53.55,"lon":9.99},"priority":1,"countries":["DE"],"cutoff":{"time":"14:00","tz":"America/New_York"}}' 200 >/dev/null
    call PUT /v1/routing/rules "{\"channel\":\"$p-web\",\"rules\":[\"enabled\",\"serves_destination\",\"same_day\",\"nearest\"],\"split\":\"max_shipments:2\"}" 200 >/dev/null
    call PUT /v1/routing/rules "{\"channel\":\"$p-app\",\"rules\":[\"capacity:rank\",\"lowest_cost\"],\"split\":\"forbid\"}" 200 >/dev/null
    call DELETE "/v1/routing/rules?channel=$p-app" "" 200 >/dev/null
    call PUT /v1/routing/rules '{"rules":["enabled","fewest_shipments","balance_stock","priority"],"split":"allow"}' 200 >/dev/null
  fi

  # A hold that expires: a short ttl, then wait until the server says so.
  local expiring
  expiring=$(reserve "{\"sku\":\"$b\",\"qty\":1,\"channel\":\"web\",\"ttl_ms\":300}")

  local h_open h_plain h_released h_for_order
  h_open=$(reserve "{\"sku\":\"$a\",\"qty\":2,\"customer_id\":\"$p-c1\",\"channel\":\"web\",\"ttl_ms\":$long}" "$p-hold-key")
  h_plain=$(reserve "{\"sku\":\"$b\",\"qty\":3,\"ttl_ms\":$long}")
  h_released=$(reserve "{\"sku\":\"$a\",\"qty\":1,\"customer_id\":\"$p-c2\",\"ttl_ms\":$long}")
  h_for_order=$(reserve "{\"sku\":\"$a\",\"qty\":2,\"customer_id\":\"$p-c3\",\"ttl_ms\":$long}")
  call POST "/v1/reservations/$h_open/extend" "{\"ttl_ms\":$long}" 200 >/dev/null
  call DELETE "/v1/reservations/$h_released" "" 200 >/dev/null

  # A batch, one item with its own idempotency key.
  local item batch
  item="{\"sku\":\"$b\",\"qty\":1,\"customer_id\":\"$p-c7\",\"channel\":\"app\",\"ttl_ms\":$long}"
  batch=$(call POST '/v1/reservations:batch' "{\"reservations\":[{\"sku\":\"$a\",\"qty\":1,\"customer_id\":\"$p-c9\",\"ttl_ms\":$long},$(jq -c --arg k "$p-batch-key" '. + {idempotency_key: $k}' <<<"$item")]}" 200)
  jq -r '.results[].reservation.id' <<<"$batch" >>"$work/holds"
  remember_idem /v1/reservations "$p-batch-key" "$item" "/v1/reservations/$(jq -r '.results[1].reservation.id' <<<"$batch")"

  # Orders: multi-line (b split over both warehouses), one consuming a
  # hold, one with an idempotency key, one cancelled.
  local o_multi o_cancel
  o_multi=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-c4\",\"ship_to\":{\"lat\":52.52,\"lon\":13.40,\"country\":\"DE\"},\"lines\":[{\"sku\":\"$a\",\"qty\":3},{\"sku\":\"$b\",\"qty\":35}]}")
  order "{\"channel\":\"web\",\"customer_id\":\"$p-c3\",\"ship_to\":{\"lat\":50.11,\"lon\":8.68},\"lines\":[{\"sku\":\"$a\",\"qty\":2,\"reservation_id\":\"$h_for_order\"}]}" >/dev/null
  order "{\"channel\":\"app\",\"customer_id\":\"$p-c5\",\"ship_to\":{\"lat\":48.86,\"lon\":2.35,\"country\":\"FR\"},\"lines\":[{\"sku\":\"$b\",\"qty\":1}]}" "$p-order-key" >/dev/null
  o_cancel=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-c6\",\"ship_to\":{\"lat\":51.51,\"lon\":-0.13},\"lines\":[{\"sku\":\"$a\",\"qty\":1}]}")
  call POST "/v1/orders/$o_cancel/cancel" '{"reason":"customer changed their mind"}' 200 >/dev/null

  # Large writes (from v2 on, records are bounded in bytes): a batch of 256
  # reservations on one SKU (one log entry, several records) and an order
  # over 24 SKUs (one event longer than a record: stored in parts).
  local bulk=$p-bulk items ids lines i s
  call PUT "/v1/skus/$bulk" '{"name":"Bulk"}' 200 >/dev/null
  echo "$bulk" >>"$work/skus"
  call POST /v1/stock/adjustments "{\"sku\":\"$bulk\",\"warehouse\":\"$w1\",\"delta\":1000,\"reason\":\"receipt\"}" 200 >/dev/null
  items=$(jq -cn --arg s "$bulk" --argjson t "$long" '[range(256) | {sku: $s, qty: 1, customer_id: ("bulk-customer-" + (. | tostring)), ttl_ms: $t}]')
  ids=$(call POST '/v1/reservations:batch' "{\"reservations\":$items}" 200 | jq -r '.results[].reservation.id')
  [ "$(wc -l <<<"$ids")" = 256 ] || { echo "bulk batch not all reserved" >&2; exit 1; }
  head -1 <<<"$ids" >>"$work/holds"
  tail -1 <<<"$ids" >>"$work/holds"
  lines=""
  for i in $(seq 1 24); do
    s=$p-wide-sku-with-a-long-name-$i
    call PUT "/v1/skus/$s" '{"name":"Wide"}' 200 >/dev/null
    call POST /v1/stock/adjustments "{\"sku\":\"$s\",\"warehouse\":\"$w2\",\"delta\":5,\"reason\":\"receipt\"}" 200 >/dev/null
    echo "$s" >>"$work/skus"
    lines="$lines${lines:+,}{\"sku\":\"$s\",\"qty\":2}"
  done
  order "{\"channel\":\"web\",\"customer_id\":\"$p-c8\",\"ship_to\":{\"lat\":47.37,\"lon\":8.54,\"country\":\"CH\"},\"lines\":[$lines]}" >/dev/null

  # From a binary that re-routes: an order moved off the warehouse it was
  # routed to.
  local o_moved=""
  if [ "$reroute" = 1 ]; then
    o_moved=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-c10\",\"ship_to\":{\"lat\":53.55,\"lon\":9.99,\"country\":\"DE\"},\"lines\":[{\"sku\":\"$a\",\"qty\":2}]}")
    move_away "$o_moved" "3pl rejected"
  fi

  # From a binary that serves the lifecycle: orders paid, held, partly
  # cancelled, fulfilled in two parcels, delivered, returned with restock,
  # a return declined, a rejected fulfilment re-routed.
  local o_life=""
  if [ "$lifecycle" = 1 ]; then
    o_life=$(lifecycle_phase "$p" "$a" "$b")
  fi

  # From a binary that serves incoming stock: receipts and thresholds.
  local receipt=""
  if [ "$incoming" = 1 ]; then
    receipt=$(incoming_phase "$p" "$a" "$b" "$w1" "$w2")
  fi

  local status=""
  for _ in $(seq 1 400); do
    status=$(call GET "/v1/reservations/$expiring" "" 200 | jq -r .status)
    [ "$status" = expired ] && break
    sleep 0.05
  done
  [ "$status" = expired ] || { echo "hold $expiring never expired" >&2; exit 1; }
  echo "$h_plain $o_multi ${o_moved:--} ${o_life:--} ${receipt:--}" >"$work/carry"
}

# fulfillment ORDER N: the id of the order's Nth fulfilment (from 0).
fulfillment() {
  call GET "/v1/orders/$1" "" 200 | jq -r ".fulfillments[$2].id"
}

# lifecycle_phase PREFIX SKU_A SKU_B: prints an order left in fulfilment
# (accepted, nothing shipped) for a later phase.
lifecycle_phase() {
  local p=$1 a=$2 b=$3 o f r wh
  # Paid, shipped in two parcels, delivered, one unit returned and
  # restocked, refunded; a second return declined.
  o=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-l1\",\"currency\":\"EUR\",\"ship_to\":{\"lat\":53.5,\"lon\":10.0,\"country\":\"DE\"},\"lines\":[{\"sku\":\"$a\",\"qty\":3,\"unit_price\":1990},{\"sku\":\"$b\",\"qty\":1,\"unit_price\":500}]}")
  call POST "/v1/orders/$o/payments" '{"kind":"authorize","amount":6470,"reference":"psp-a1"}' 200 >/dev/null
  # Keyed lifecycle commands: the log keeps each key with its event (a
  # build before lifecycle keys ignores the header).
  call POST "/v1/orders/$o/payments" '{"kind":"capture","amount":6470,"reference":"psp-c1"}' 200 "$p-capture" >/dev/null
  remember_idem "/v1/orders/$o/payments" "$p-capture" '{"kind":"capture","amount":6470,"reference":"psp-c1"}' "/v1/orders/$o"
  f=$(fulfillment "$o" 0)
  wh=$(call GET "/v1/fulfillments/$f" "" 200 | jq -r .warehouse)
  for step in accept pick pack; do call POST "/v1/fulfillments/$f/$step" "" 200 >/dev/null; done
  call POST "/v1/fulfillments/$f/ship" "{\"carrier\":\"dhl\",\"tracking\":\"$p-t1\",\"lines\":[{\"sku\":\"$a\",\"qty\":1}]}" 200 "$p-ship1" >/dev/null
  call POST "/v1/fulfillments/$f/ship" "{\"carrier\":\"dhl\",\"tracking\":\"$p-t2\"}" 200 >/dev/null
  call POST "/v1/fulfillments/$f/deliver" "" 200 >/dev/null
  r=$(call POST "/v1/orders/$o/returns" "{\"lines\":[{\"sku\":\"$a\",\"qty\":1}],\"reason\":\"too small\"}" 201 "$p-return1" | jq -r .id)
  call POST "/v1/returns/$r/receive" "{\"restock\":true,\"warehouse\":\"$wh\"}" 200 >/dev/null
  call POST "/v1/orders/$o/payments" '{"kind":"refund","amount":1990,"reference":"psp-r1"}' 200 >/dev/null
  call POST "/v1/returns/$r/close" "" 200 >/dev/null
  r=$(call POST "/v1/orders/$o/returns" "{\"lines\":[{\"sku\":\"$b\",\"qty\":1}],\"reason\":\"changed mind\"}" 201 | jq -r .id)
  call POST "/v1/returns/$r/decline" "" 200 >/dev/null
  # Held and released, a unit cancelled, a failed payment, then an
  # authorization, voided.
  o=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-l2\",\"currency\":\"EUR\",\"ship_to\":{\"lat\":48.1,\"lon\":11.6,\"country\":\"DE\"},\"lines\":[{\"sku\":\"$a\",\"qty\":2,\"unit_price\":1000}]}")
  call POST "/v1/orders/$o/hold" '{"reason":"fraud_review"}' 200 >/dev/null
  call POST "/v1/orders/$o/release" "" 200 >/dev/null
  call POST "/v1/orders/$o/cancel" "{\"lines\":[{\"sku\":\"$a\",\"qty\":1}],\"reason\":\"out of budget\"}" 200 >/dev/null
  call POST "/v1/orders/$o/payments" '{"kind":"fail","amount":1000,"reference":"psp-f1"}' 200 >/dev/null
  call POST "/v1/orders/$o/payments" '{"kind":"authorize","amount":1000,"reference":"psp-a2"}' 200 >/dev/null
  call POST "/v1/orders/$o/payments" '{"kind":"void","amount":1000,"reference":"psp-v1"}' 200 >/dev/null
  # Rejected by its warehouse, re-routed to the next one.
  o=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-l3\",\"ship_to\":{\"lat\":53.5,\"lon\":10.0},\"lines\":[{\"sku\":\"$b\",\"qty\":1}]}")
  call POST "/v1/fulfillments/$(fulfillment "$o" 0)/reject" '{"reason":"3pl out of stock"}' 200 >/dev/null
  # Held by hand and left so.
  o=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-l4\",\"ship_to\":{\"lat\":53.5,\"lon\":10.0},\"lines\":[{\"sku\":\"$b\",\"qty\":1}]}")
  call POST "/v1/orders/$o/hold" '{"reason":"address_check"}' 200 >/dev/null
  # Accepted, nothing shipped: a later phase ships part of it.
  o=$(order "{\"channel\":\"web\",\"customer_id\":\"$p-l5\",\"ship_to\":{\"lat\":53.5,\"lon\":10.0},\"lines\":[{\"sku\":\"$a\",\"qty\":2}]}")
  call POST "/v1/fulfillments/$(fulfillment "$o" 0)/accept" "" 200 >/dev/null
  echo "$o"
}

# receipt BODY [KEY]: announces incoming stock; prints the receipt's id.
receipt() {
  local id
  id=$(call POST /v1/stock/incoming "$1" 201 "${2:-}" | jq -r .id)
  echo "$id" >>"$work/receipts"
  if [ -n "${2:-}" ]; then remember_idem /v1/stock/incoming "$2" "$1" "/v1/stock/incoming/$id"; fi
  echo "$id"
}

# incoming_phase PREFIX SKU_A SKU_B W1 W2: receipts received in part and in
# full, thresholds on a SKU and a row; prints an open receipt for a later
# phase.
incoming_phase() {
  local p=$1 a=$2 b=$3 w1=$4 w2=$5 r full
  r=$(receipt "{\"sku\":\"$a\",\"warehouse\":\"$w1\",\"qty\":10,\"expected_at\":1900000000000,\"reference\":\"PO-$p-1\"}" "$p-po-key")
  # A keyed receipt of goods.
  call POST "/v1/stock/incoming/$r/receive" '{"qty":4}' 200 "$p-recv-key" >/dev/null
  remember_idem "/v1/stock/incoming/$r/receive" "$p-recv-key" '{"qty":4}' "/v1/stock/incoming/$r"
  full=$(receipt "{\"sku\":\"$b\",\"warehouse\":\"$w2\",\"qty\":5,\"expected_at\":1900000000000,\"reference\":\"ASN-$p-2\"}")
  call POST "/v1/stock/incoming/$full/receive" '{"qty":5}' 200 >/dev/null
  if [ "$incoming_close" = 1 ]; then
    # Received in part, then closed short with a key.
    local cut
    cut=$(receipt "{\"sku\":\"$b\",\"warehouse\":\"$w1\",\"qty\":6,\"expected_at\":1900000000000,\"reference\":\"PO-$p-3\"}")
    call POST "/v1/stock/incoming/$cut/receive" '{"qty":2}' 200 >/dev/null
    call POST "/v1/stock/incoming/$cut/close" '{"reason":"vendor shipped 2"}' 200 "$p-close-key" >/dev/null
    remember_idem "/v1/stock/incoming/$cut/close" "$p-close-key" '{"reason":"vendor shipped 2"}' "/v1/stock/incoming/$cut"
  fi
  call PATCH "/v1/skus/$a" "{\"low_stock_threshold\":500,\"low_stock_thresholds\":{\"$w1\":60}}" 200 >/dev/null
  call PATCH "/v1/skus/$b" '{"low_stock_threshold":3}' 200 >/dev/null
  echo "$r"
}

# move_away ORDER REASON: re-routes the order off every warehouse it ships
# from now.
move_away() {
  local exclude
  exclude=$(call GET "/v1/orders/$1" "" 200 | jq -c '[.shipments[].warehouse]')
  call POST "/v1/orders/$1/reroute" "{\"exclude\":$exclude,\"reason\":\"$2\"}" 200 >/dev/null
}

# Events on what an earlier phase left: they land in the log tail and must
# apply to state loaded from a snapshot.
touch_earlier() { # OPEN_HOLD PLACED_ORDER SKU WAREHOUSE [MOVED_ORDER] [LIFE_ORDER] [RECEIPT] ('-': none)
  call DELETE "/v1/reservations/$1" "" 200 >/dev/null
  call POST "/v1/orders/$2/cancel" "" 200 >/dev/null
  call POST /v1/stock/adjustments "{\"sku\":\"$3\",\"warehouse\":\"$4\",\"delta\":-7,\"reason\":\"damaged\"}" 200 >/dev/null
  if [ -n "${5:-}" ] && [ "$5" != - ]; then move_away "$5" "moved back"; fi
  if [ -n "${6:-}" ] && [ "$6" != - ]; then
    call POST "/v1/fulfillments/$(fulfillment "$6" 0)/ship" "{\"carrier\":\"ups\",\"tracking\":\"tail-1\",\"lines\":[{\"sku\":\"$3\",\"qty\":1}]}" 200 >/dev/null
  fi
  if [ -n "${7:-}" ] && [ "$7" != - ]; then
    call POST "/v1/stock/incoming/$7/receive" '{"qty":1}' 200 >/dev/null
    if [ "$incoming_close" = 1 ]; then
      call POST "/v1/stock/incoming/$7/close" '{"reason":"rest cancelled"}' 200 >/dev/null
    fi
  fi
}

seq_now() { call GET /healthz "" 200 | jq -r .seq; }

# Writes expected.json for the running server into $1.
record() {
  local dir=$1 now_ms
  now_ms=$(date +%s%3N)
  {
    echo "{\"now_ms\": $now_ms,"
    echo "\"warehouses\": $(call GET /v1/warehouses "" 200),"
    echo '"stock": {'
    local first=1
    while read -r s; do
      [ $first = 1 ] || echo ","
      first=0
      echo "\"$s\": $(call GET "/v1/skus/$s/stock" "" 200)"
    done <"$work/skus"
    echo '}, "reservations": {'
    first=1
    while read -r h; do
      [ $first = 1 ] || echo ","
      first=0
      echo "\"$h\": $(call GET "/v1/reservations/$h" "" 200)"
    done <"$work/holds"
    echo '}, "orders": {'
    first=1
    while read -r o; do
      [ $first = 1 ] || echo ","
      first=0
      echo "\"$o\": $(call GET "/v1/orders/$o" "" 200)"
    done <"$work/orders"
    echo "}, \"idempotency\": $(jq -s . "$work/idem")"
    if [ "$incoming" = 1 ]; then
      echo ', "incoming": {'
      first=1
      while read -r r; do
        [ $first = 1 ] || echo ","
        first=0
        echo "\"$r\": $(call GET "/v1/stock/incoming/$r" "" 200)"
      done <"$work/receipts"
      echo '}'
    fi
    if [ "$routing" = 1 ]; then echo ", \"routing_rules\": $(call GET /v1/routing/rules "" 200)"; fi
    echo "}"
  } | jq -S . >"$dir/expected.json"
  # Every recorded replay answers as promised, with this binary too.
  jq -c '.idempotency[]' "$dir/expected.json" | while read -r i; do
    local got want
    got=$(call POST "$(jq -r .path <<<"$i")" "$(jq -c .body <<<"$i")" 200 "$(jq -r .key <<<"$i")")
    want=$(call GET "$(jq -r .target <<<"$i")" "" 200)
    [ "$(jq -S . <<<"$got")" = "$(jq -S . <<<"$want")" ] || { echo "replay of $i answered $got" >&2; exit 1; }
  done
  # The open holds stay open at now_ms.
  jq -e --argjson now "$now_ms" '[.reservations[] | select(.status == "active" and .expires_at <= $now)] | length == 0' \
    "$dir/expected.json" >/dev/null || { echo "an open hold expires before now_ms" >&2; exit 1; }
}

fresh() { # DIR
  local dir=$out/$1
  if [ -e "$dir" ]; then
    echo "$dir exists: golden directories are never regenerated; pick a new name" >&2
    exit 1
  fi
  mkdir -p "$work/$1"
  : >"$work/skus"; : >"$work/holds"; : >"$work/orders"; : >"$work/idem"; : >"$work/receipts"
}

finish() { # DIR
  mkdir -p "$out/$1"
  cp -r "$work/$1/data" "$out/$1/data"
  cp "$work/$1/expected.json" "$out/$1/expected.json"
  du -sh "$out/$1"
}

# 1. The log only.
fresh "$name-log"
start "$work/$name-log/data" "$work/$name-log.server.log" "${no_snapshots[@]}"
routing=0
if curl -fs -o /dev/null ${GOLDEN_KEY:+-H "Authorization: Bearer $GOLDEN_KEY"} "$base/v1/routing/rules"; then routing=1; fi
# A binary that re-routes answers an unknown order's re-route with
# order_not_found (one without the route: not_found).
reroute=0
if curl -s -X POST -H 'content-type: application/json' -d '{}' ${GOLDEN_KEY:+-H "Authorization: Bearer $GOLDEN_KEY"} \
  "$base/v1/orders/ord_1/reroute" | grep -q '"order_not_found"'; then reroute=1; fi
# A binary that serves the lifecycle answers an unknown order's payment
# with order_not_found (one without the route: not_found).
lifecycle=0
if curl -s -X POST -H 'content-type: application/json' -d '{"kind":"authorize","amount":1,"reference":"probe"}' ${GOLDEN_KEY:+-H "Authorization: Bearer $GOLDEN_KEY"} \
  "$base/v1/orders/ord_1/payments" | grep -q '"order_not_found"'; then lifecycle=1; fi
# A binary that serves incoming stock lists receipts (one without: not_found).
incoming=0
if curl -fs -o /dev/null ${GOLDEN_KEY:+-H "Authorization: Bearer $GOLDEN_KEY"} "$base/v1/stock/incoming"; then incoming=1; fi
# A binary that closes receipts short answers an unknown one's close with
# incoming_not_found (one without the route: not_found).
incoming_close=0
if curl -s -X POST -H 'content-type: application/json' -d '{"reason":"probe"}' ${GOLDEN_KEY:+-H "Authorization: Bearer $GOLDEN_KEY"} \
  "$base/v1/stock/incoming/probe~1/close" | grep -q '"incoming_not_found"'; then incoming_close=1; fi
drive p
read -r hold order_id moved life receipt <"$work/carry"
drive q
touch_earlier "$hold" "$order_id" p-a p-w1 "$moved" "$life" "$receipt"
record "$work/$name-log"
stop
if grep -q "snapshot written" "$work/$name-log.server.log"; then
  echo "a snapshot was written into the log-only directory" >&2
  exit 1
fi
finish "$name-log"

# 2. A snapshot, then a log tail.
fresh "$name-snapshot"
start "$work/$name-snapshot/data" "$work/$name-snapshot.server.log" SURGE_SNAPSHOT_EVERY_MS=100
drive p
read -r hold order_id moved life receipt <"$work/carry"
at=$(seq_now)
# The checkpointer's line for a snapshot holding everything so far.
snapshot_at() {
  sed 's/\x1b\[[0-9;]*m//g' "$work/$name-snapshot.server.log" | grep -Eq "snapshot written.*seq=$at( |$)"
}
for _ in $(seq 1 200); do
  snapshot_at && break
  sleep 0.05
done
snapshot_at || {
  echo "no snapshot at seq $at" >&2
  cat "$work/$name-snapshot.server.log" >&2
  exit 1
}
stop
start "$work/$name-snapshot/data" "$work/$name-snapshot.server.log" "${no_snapshots[@]}"
drive q
touch_earlier "$hold" "$order_id" p-a p-w1 "$moved" "$life" "$receipt"
record "$work/$name-snapshot"
stop
finish "$name-snapshot"
echo "snapshot taken at seq $at; tail after it written"
