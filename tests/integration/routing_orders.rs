//! Orders and holds routed by the rule chain over HTTP: nearest beats
//! priority, splits and `split: forbid`, a channel's own chain, capacity
//! per local day, racing orders, simulation, and replay after a restart.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use surge::clock::ManualClock;
use surge::wal::store::MemStore;

pub(crate) const PARIS: (f64, f64) = (48.8566, 2.3522);
pub(crate) const BERLIN: (f64, f64) = (52.52, 13.405);

/// A warehouse at `at` with routing attributes `extra` (may be `{}`).
pub(crate) async fn warehouse(srv: &Srv, id: &str, at: (f64, f64), priority: i32, extra: Value) {
    let mut body =
        json!({"name": id, "location": {"lat": at.0, "lon": at.1}, "priority": priority});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, b) = srv.put(&format!("/v1/warehouses/{id}"), body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// Berlin (priority 1, preferred by priority) and Paris (priority 2).
pub(crate) async fn berlin_and_paris(srv: &Srv, paris: Value) {
    warehouse(srv, "berlin", BERLIN, 1, json!({})).await;
    warehouse(srv, "paris", PARIS, 2, paris).await;
}

pub(crate) fn order(channel: &str, lines: Value) -> Value {
    json!({
        "channel": channel, "customer_id": "c1",
        "ship_to": {"lat": PARIS.0, "lon": PARIS.1, "country": "FR"},
        "lines": lines,
    })
}

/// The order's shipments as (warehouse, [(sku, qty)]), sorted.
pub(crate) fn shipments(order: &Value) -> Vec<(String, Vec<(String, u64)>)> {
    let mut out: Vec<(String, Vec<(String, u64)>)> = order["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let lines = s["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["sku"].as_str().unwrap().to_owned(),
                        l["qty"].as_u64().unwrap(),
                    )
                })
                .collect();
            (s["warehouse"].as_str().unwrap().to_owned(), lines)
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn from(wh: &str, sku: &str, qty: u64) -> (String, Vec<(String, u64)>) {
    (wh.to_owned(), vec![(sku.to_owned(), qty)])
}

pub(crate) async fn available(srv: &Srv, sku: &str, wh: &str) -> u64 {
    let st = srv.stock(sku).await;
    st["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["warehouse"] == wh)
        .map_or(0, |w| w["available"].as_u64().unwrap())
}

pub(crate) async fn place(srv: &Srv, body: Value) -> Value {
    let (s, o) = srv.post("/v1/orders", body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o
}

#[tokio::test]
async fn a_paris_order_ships_from_paris_though_berlin_has_the_better_priority() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let body = order("web", json!([{"sku": "tee", "qty": 2}]));

    // What-if first: nothing changes.
    let (s, sim) = srv.post("/v1/routing/simulate", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{sim}");
    assert_eq!(sim["routable"], true);
    assert_eq!(sim["unplaced_lines"], json!([]));
    assert_eq!(
        sim["shipments"],
        json!([{"warehouse": "paris", "lines": [{"index": 0, "sku": "tee", "qty": 2}]}])
    );
    assert_eq!(available(&srv, "tee", "paris").await, 10);

    let o = place(&srv, body).await;
    assert_eq!(shipments(&o), vec![from("paris", "tee", 2)]);
    let trace = &o["routing"];
    assert_eq!(trace["deciding_rule"], "nearest", "{trace}");
    assert_eq!(trace["attempts"], 1);
    assert_eq!(
        trace["candidates"][0]["shipments"][0]["warehouse"], "paris",
        "the chosen plan comes first: {trace}"
    );
    let km = trace["candidates"][0]["shipments"][0]["distance_km"]
        .as_f64()
        .unwrap();
    assert!(km < 1.0, "{km}");
    // The simulated plan is the plan the order got, on unchanged stock.
    assert_eq!(sim["routing"], o["routing"]);
    assert_eq!(available(&srv, "tee", "paris").await, 8);
    assert_eq!(available(&srv, "tee", "berlin").await, 10);

    // GET shows the same trace.
    let id = o["id"].as_str().unwrap();
    let (s, got) = srv.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["routing"], o["routing"]);
}

#[tokio::test]
async fn an_order_splits_when_no_warehouse_has_it_all_and_is_refused_under_split_forbid() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 2), ("paris", 2)]).await;
    srv.sku("cap", None, &[("berlin", 5)]).await;

    let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 3}]))).await;
    assert_eq!(
        shipments(&o),
        vec![from("berlin", "tee", 1), from("paris", "tee", 2)],
        "the nearer warehouse gives all it has"
    );

    let (s, r) = srv
        .put(
            "/v1/routing/rules",
            json!({"channel": "strict", "rules": ["enabled", "nearest"], "split": "forbid"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // 1 tee is left (in Berlin): nobody ships 2; the cap line fits.
    let body = order(
        "strict",
        json!([{"sku": "cap", "qty": 1}, {"sku": "tee", "qty": 2}]),
    );
    let (s, sim) = srv.post("/v1/routing/simulate", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{sim}");
    assert_eq!(sim["routable"], false);
    assert_eq!(sim["shipments"], json!([]));
    let (s, e) = srv.post("/v1/orders", body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "insufficient_stock");
    assert_eq!(e["lines"], sim["unplaced_lines"]);
    assert_eq!(
        e["lines"],
        json!([{"index": 1, "sku": "tee", "qty": 2}]),
        "{e}"
    );
    // Nothing was taken.
    assert_eq!(available(&srv, "tee", "berlin").await, 1);
    assert_eq!(available(&srv, "tee", "paris").await, 0);
    assert_eq!(available(&srv, "cap", "berlin").await, 5);
}

#[tokio::test]
async fn a_channel_with_a_chain_of_its_own_routes_by_it() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let (s, r) = srv
        .put(
            "/v1/routing/rules",
            json!({"channel": "wholesale", "rules": ["enabled", "priority"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let line = json!([{"sku": "tee", "qty": 1}]);
    let web = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&web), vec![from("paris", "tee", 1)]);
    let wholesale = place(&srv, order("wholesale", line)).await;
    assert_eq!(shipments(&wholesale), vec![from("berlin", "tee", 1)]);
    assert_eq!(
        wholesale["routing"]["rules"],
        json!(["enabled", "priority"])
    );
}

/// The default chain with the capacity filter.
pub(crate) async fn with_capacity(srv: &Srv) {
    let (s, r) = srv
        .put(
            "/v1/routing/rules",
            json!({"rules": ["enabled", "serves_destination", "serves_channel", "capacity",
                             "fewest_shipments", "nearest", "priority"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

#[tokio::test]
async fn capacity_moves_orders_elsewhere_and_resets_at_local_midnight() {
    // 2026-11-27 22:30 UTC: 23:30 in Paris.
    let clock = Arc::new(ManualClock::new(1_795_818_600_000));
    let srv = Srv::start_custom(Arc::new(MemStore::new()), clock.clone(), |_| {});
    berlin_and_paris(
        &srv,
        json!({"capacity_per_day": 1, "cutoff": {"time": "15:00", "tz": "Europe/Paris"}}),
    )
    .await;
    with_capacity(&srv).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let line = json!([{"sku": "tee", "qty": 1}]);

    let first = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&first), vec![from("paris", "tee", 1)]);
    let second = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&second), vec![from("berlin", "tee", 1)]);
    assert!(
        second["routing"]["excluded"]
            .as_array()
            .unwrap()
            .contains(&json!({"warehouse": "paris", "rule": "capacity"})),
        "{}",
        second["routing"]
    );
    // 23:59 in Paris: still the same day.
    clock.advance(29 * 60 * 1000);
    let third = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&third), vec![from("berlin", "tee", 1)]);
    // 00:01 in Paris (23:01 UTC, still yesterday in UTC): a new day there.
    clock.advance(2 * 60 * 1000);
    let fourth = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&fourth), vec![from("paris", "tee", 1)]);
    let fifth = place(&srv, order("web", line)).await;
    assert_eq!(shipments(&fifth), vec![from("berlin", "tee", 1)]);
}

#[tokio::test]
async fn concurrent_orders_for_the_last_units_nearby_are_all_routed_or_cleanly_refused() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 6), ("paris", 2)]).await;
    let n = 8;
    let orders = (0..n).map(|_| {
        srv.post(
            "/v1/orders",
            order("web", json!([{"sku": "tee", "qty": 1}])),
        )
    });
    let results = futures_util::future::join_all(orders).await;
    let mut from_paris = 0;
    let mut placed = 0;
    for (s, o) in &results {
        match *s {
            StatusCode::CREATED => {
                placed += 1;
                let sh = shipments(o);
                assert_eq!(sh.len(), 1, "{o}");
                if sh[0].0 == "paris" {
                    from_paris += 1;
                }
                let attempts = o["routing"]["attempts"].as_u64().unwrap();
                // A re-plan happens only when Paris ran out under the plan.
                if attempts > 1 {
                    assert_eq!(sh[0].0, "berlin", "{o}");
                }
                assert!((1..=4).contains(&attempts), "{o}");
            }
            StatusCode::CONFLICT => assert_eq!(o["code"], "insufficient_stock", "{o}"),
            _ => panic!("{s}: {o}"),
        }
    }
    // 8 units in all: with re-planning, every order finds one.
    assert_eq!(placed, n, "{results:?}");
    assert_eq!(from_paris, 2, "never oversold, the nearest used first");
    assert_eq!(available(&srv, "tee", "paris").await, 0);
    assert_eq!(available(&srv, "tee", "berlin").await, 0);
}

#[tokio::test]
async fn a_hold_with_ship_to_comes_from_the_nearest_warehouse() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 1)]).await;
    let to_paris = json!({"lat": PARIS.0, "lon": PARIS.1});
    let (s, h) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ship_to": to_paris}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["warehouse"], "paris");
    // Paris is out: the next best that has it.
    let (s, h) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ship_to": to_paris}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["warehouse"], "berlin");
    // Without ship_to: by priority, as before.
    let (s, h) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["warehouse"], "berlin");
    // A bad ship_to is refused like an order's.
    let (s, e) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ship_to": {"lat": 91.0, "lon": 0.0}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["field"], "ship_to");
    // The simulation of a hold names the warehouse it would come from.
    let (s, sim) = srv
        .post(
            "/v1/routing/simulate",
            json!({"sku": "tee", "qty": 2, "ship_to": to_paris}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sim}");
    assert_eq!(sim["shipments"][0]["warehouse"], "berlin");
    assert_eq!(sim["routing"]["split"], "forbid");
}

#[tokio::test]
async fn a_hold_without_ship_to_never_comes_from_a_disabled_warehouse_and_simulates_as_it_is_made()
{
    let srv = Srv::start();
    // Berlin has the better priority, Paris is nearer the (absent) ship_to.
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let hold = json!({"sku": "tee", "qty": 1});
    let (s, sim) = srv.post("/v1/routing/simulate", hold.clone()).await;
    assert_eq!(s, StatusCode::OK, "{sim}");
    let (s, h) = srv.post("/v1/reservations", hold.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["warehouse"], "berlin");
    assert_eq!(sim["shipments"][0]["warehouse"], h["warehouse"], "{sim}");
    // Berlin disabled: it takes nothing new, by simulation or for real.
    warehouse(&srv, "berlin", BERLIN, 1, json!({"enabled": false})).await;
    let (s, sim) = srv.post("/v1/routing/simulate", hold.clone()).await;
    assert_eq!(s, StatusCode::OK, "{sim}");
    let (s, h) = srv.post("/v1/reservations", hold).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["warehouse"], "paris");
    assert_eq!(sim["shipments"][0]["warehouse"], "paris", "{sim}");
}

#[tokio::test]
async fn a_batch_item_with_ship_to_is_routed() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let (s, b) = srv
        .post(
            "/v1/reservations:batch",
            json!({"reservations": [
                {"sku": "tee", "qty": 1, "ship_to": {"lat": PARIS.0, "lon": PARIS.1}},
                {"sku": "tee", "qty": 1},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["reservation"]["warehouse"], "paris", "{b}");
    assert_eq!(b["results"][1]["reservation"]["warehouse"], "berlin", "{b}");
}

#[tokio::test]
async fn a_restart_replays_every_routed_order_and_its_workload_identically() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({"capacity_per_day": 1})).await;
    with_capacity(&srv).await;
    srv.sku("tee", None, &[("berlin", 2), ("paris", 2)]).await;
    let split = place(&srv, order("web", json!([{"sku": "tee", "qty": 3}]))).await;
    assert_eq!(
        shipments(&split),
        vec![from("berlin", "tee", 1), from("paris", "tee", 2)]
    );
    let id = split["id"].as_str().unwrap().to_owned();
    let srv = srv.restart();
    let (s, got) = srv.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["shipments"], split["shipments"]);
    assert_eq!(got["routing"], split["routing"]);
    // Paris's one order today was counted again from the log.
    srv.sku("tee", None, &[("paris", 5)]).await;
    let next = place(&srv, order("web", json!([{"sku": "tee", "qty": 1}]))).await;
    assert_eq!(shipments(&next), vec![from("berlin", "tee", 1)]);
}
