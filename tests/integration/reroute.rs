//! Re-routing placed orders over HTTP: `POST /v1/orders/{id}/reroute`
//! moves an order's allocation to the next best plan without the excluded
//! warehouses, atomically, logged, fed and replayed; what cannot move is
//! refused and changes nothing; the workload moves with the order; and
//! disabling a warehouse moves its orders.

use crate::common::Srv;
use crate::holds::eventually;
use crate::routing_orders::{
    available, berlin_and_paris, from, order, place, shipments, warehouse, with_capacity, PARIS,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use surge::clock::ManualClock;
use surge::feedclient;
use surge::wal::store::MemStore;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

async fn reroute(srv: &Srv, id: &Value, body: Value) -> (StatusCode, Value) {
    let id = id.as_str().unwrap();
    srv.post(&format!("/v1/orders/{id}/reroute"), body).await
}

async fn get_order(srv: &Srv, id: &Value) -> Value {
    let (s, o) = srv
        .get(&format!("/v1/orders/{}", id.as_str().unwrap()))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    o
}

/// The first feed message whose `field` is `value`.
async fn first(ws: &mut feedclient::Ws, field: &str, value: &str) -> Value {
    loop {
        let m = timeout(WAIT, feedclient::next_json(ws))
            .await
            .expect("a feed message in time")
            .unwrap()
            .expect("the connection is open");
        if m[field] == value {
            return m;
        }
    }
}

/// (on_hand, allocated, available) of a SKU in one warehouse.
async fn row(srv: &Srv, sku: &str, wh: &str) -> (u64, u64, u64) {
    let st = srv.stock(sku).await;
    let r = st["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["warehouse"] == wh)
        .cloned()
        .unwrap_or_else(|| json!({"on_hand": 0, "allocated": 0, "available": 0}));
    let n = |k: &str| r[k].as_u64().unwrap();
    (n("on_hand"), n("allocated"), n("available"))
}

#[tokio::test]
async fn a_rerouted_order_leaves_the_excluded_warehouse_with_its_stock_logged_and_fed() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    srv.sku("cap", None, &[("paris", 5)]).await;
    let o = place(
        &srv,
        order(
            "web",
            json!([{"sku": "tee", "qty": 2}, {"sku": "cap", "qty": 1}]),
        ),
    )
    .await;
    assert_eq!(
        shipments(&o),
        vec![("paris".into(), vec![("cap".into(), 1), ("tee".into(), 2)])]
    );
    let mut ws = feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    first(&mut ws, "type", "subscribed").await;

    // Nothing may come from Paris, and only Paris has the cap: refused,
    // naming the cap's line, and the order stays as it is.
    let (s, e) = reroute(&srv, &o["id"], json!({"exclude": ["paris"]})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "insufficient_stock");
    assert_eq!(e["lines"], json!([{"index": 1, "sku": "cap", "qty": 1}]));
    assert_eq!(get_order(&srv, &o["id"]).await["shipments"], o["shipments"]);
    assert_eq!(row(&srv, "tee", "paris").await, (10, 2, 8));
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 0, 10));

    // With the cap's stock in Berlin too, the whole order moves there.
    srv.sku("cap", None, &[("berlin", 5)]).await;
    let (s, moved) = reroute(
        &srv,
        &o["id"],
        json!({"exclude": ["paris"], "reason": "3pl rejected"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(
        shipments(&moved),
        vec![("berlin".into(), vec![("cap".into(), 1), ("tee".into(), 2)])]
    );
    assert_eq!(moved["status"], "ready");
    let trace = &moved["routing"];
    assert_eq!(
        trace["candidates"][0]["shipments"][0]["warehouse"], "berlin",
        "{trace}"
    );
    assert!(
        !trace.to_string().contains("\"paris\""),
        "an excluded warehouse is no candidate: {trace}"
    );
    // The old allocation is released, the new one taken: exactly.
    assert_eq!(row(&srv, "tee", "paris").await, (10, 0, 10));
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 2, 8));
    assert_eq!(row(&srv, "cap", "paris").await, (5, 0, 5));
    assert_eq!(row(&srv, "cap", "berlin").await, (5, 1, 4));
    assert_eq!(get_order(&srv, &o["id"]).await, moved);

    // Fed once durable, with the reason and where the lines came from.
    let ev = first(&mut ws, "event", "order_rerouted").await;
    assert_eq!(ev["order_id"], o["id"]);
    assert_eq!(ev["from"], json!(["paris"]));
    assert_eq!(ev["reason"], "3pl rejected");
    assert_eq!(ev["shipments"], moved["shipments"]);
    assert_eq!(ev["routing"], moved["routing"]);

    // Re-routing again away from Paris: it is not there, Berlin is still
    // best, nothing changes.
    let (s, again) = reroute(&srv, &o["id"], json!({"exclude": ["paris"]})).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again, moved);
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 2, 8));

    // Replayed after a restart: the same order, the same stock.
    let srv = srv.restart();
    assert_eq!(get_order(&srv, &o["id"]).await, moved);
    assert_eq!(row(&srv, "tee", "paris").await, (10, 0, 10));
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 2, 8));
    assert_eq!(row(&srv, "cap", "berlin").await, (5, 1, 4));
    // And cancelling it gives back what it has now.
    let (s, c) = srv
        .post(
            &format!("/v1/orders/{}/cancel", o["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 0, 10));
    assert_eq!(row(&srv, "cap", "berlin").await, (5, 0, 5));
    assert_eq!(row(&srv, "cap", "paris").await, (5, 0, 5));
}

#[tokio::test]
async fn a_reroute_that_cannot_be_done_is_refused_with_its_code_and_changes_nothing() {
    let srv = Srv::start_with(|c| c.warehouses_max = 3);
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 2}]))).await;
    let id = o["id"].as_str().unwrap();

    let (s, e) = srv
        .post("/v1/orders/ord_999/reroute", json!({"exclude": ["paris"]}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found")),
        "{e}"
    );
    let (s, e) = reroute(&srv, &o["id"], json!({"exclude": ["lyon"]})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("warehouse_not_found")),
        "{e}"
    );
    for bad in [
        json!({"exclude": ["no spaces"]}),
        json!({"exclude": "paris"}),
        json!({"exclude": ["paris"], "why": "x"}),
        json!({"exclude": ["paris", "paris", "paris", "paris"]}),
        json!({"reason": "x".repeat(10_000)}),
    ] {
        let (s, e) = reroute(&srv, &o["id"], bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {e}");
        assert_eq!(e["code"], "invalid_field", "{bad} -> {e}");
    }
    // At the edge: as many as warehouses_max.
    let (s, e) = reroute(
        &srv,
        &o["id"],
        json!({"exclude": ["paris", "paris", "paris"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let res = reqwest::Client::new()
        .post(srv.url(&format!("/v1/orders/{id}/reroute")))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{\"exclude\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["code"], "malformed_json", "{e}");

    let (s, _) = srv
        .post(&format!("/v1/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = reroute(&srv, &o["id"], json!({"exclude": ["paris"]})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "order_not_reroutable");
    assert_eq!(e["status"], "cancelled");
    assert_eq!(row(&srv, "tee", "paris").await, (10, 0, 10));
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 0, 10));
}

#[tokio::test]
async fn a_rerouted_order_no_longer_counts_toward_its_old_warehouse_capacity() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({"capacity_per_day": 1})).await;
    with_capacity(&srv).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let line = json!([{"sku": "tee", "qty": 1}]);
    let first = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&first), vec![from("paris", "tee", 1)]);
    // Paris is full today...
    let second = place(&srv, order("web", line.clone())).await;
    assert_eq!(shipments(&second), vec![from("berlin", "tee", 1)]);
    // ...until its one order moves to Berlin.
    let (s, moved) = reroute(&srv, &first["id"], json!({"exclude": ["paris"]})).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(shipments(&moved), vec![from("berlin", "tee", 1)]);
    let third = place(&srv, order("web", line)).await;
    assert_eq!(shipments(&third), vec![from("paris", "tee", 1)]);
}

#[tokio::test]
async fn a_reroute_racing_orders_for_the_last_unit_never_oversells() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    for round in 0..8 {
        let sku = format!("tee{round}");
        // Berlin has one unit; the order in Paris wants to move there
        // while Berlin orders want it too.
        srv.sku(&sku, None, &[("berlin", 1), ("paris", 5)]).await;
        let o = place(&srv, order("web", json!([{"sku": sku, "qty": 1}]))).await;
        assert_eq!(shipments(&o), vec![from("paris", &sku, 1)]);
        let berlin_order = json!({
            "channel": "web", "customer_id": "c2",
            "ship_to": {"lat": 52.52, "lon": 13.405, "country": "DE"},
            "lines": [{"sku": sku, "qty": 1}],
        });
        let (a, b, c) = tokio::join!(
            reroute(&srv, &o["id"], json!({"exclude": ["paris"]})),
            srv.post("/v1/orders", berlin_order.clone()),
            srv.post("/v1/orders", berlin_order),
        );
        let (on_hand, allocated, avail) = row(&srv, &sku, "berlin").await;
        assert_eq!((on_hand, on_hand - allocated), (1, avail));
        assert!(allocated <= 1);
        let in_berlin = [&a, &b, &c]
            .iter()
            .filter(|(s, _)| s.is_success())
            .filter(|(_, o)| shipments(o).iter().any(|s| s.0 == "berlin"))
            .count();
        assert_eq!(in_berlin as u64, allocated, "{a:?} {b:?} {c:?}");
        assert_eq!(allocated, 1, "someone got Berlin's unit");
        // Whatever happened to the re-route, the stock adds up: 3 units
        // ordered, 3 allocated.
        let (_, paris_allocated, _) = row(&srv, &sku, "paris").await;
        assert_eq!(allocated + paris_allocated, 3, "{a:?} {b:?} {c:?}");
        if a.0 != StatusCode::OK {
            assert_eq!(a.1["code"], "insufficient_stock", "{a:?}");
            assert_eq!(get_order(&srv, &o["id"]).await["shipments"], o["shipments"]);
        }
        assert_eq!((b.0, c.0), (StatusCode::CREATED, StatusCode::CREATED));
        // Nothing left pending in the SKU's actor, and its live state
        // agrees with itself.
        let live = srv
            .bg()
            .surge
            .inspect_sku(&surge::core::SkuId::parse(&sku).unwrap())
            .await
            .unwrap();
        assert_eq!(live.pending_orders(), 0);
        live.check_invariants().unwrap();
    }
}

async fn orders_in_paris_and_disable(reroute_on_disable: bool) -> (Srv, Vec<Value>) {
    let srv = Srv::start_with(|c| c.routing.reroute_on_disable = reroute_on_disable);
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 2}]))).await;
        assert_eq!(shipments(&o), vec![from("paris", "tee", 2)]);
        placed.push(o);
    }
    let (s, c) = srv
        .post(
            &format!("/v1/orders/{}/cancel", placed[2]["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    warehouse(&srv, "paris", PARIS, 2, json!({"enabled": false})).await;
    (srv, placed)
}

#[tokio::test]
async fn disabling_a_warehouse_moves_its_placed_orders_elsewhere() {
    let (srv, placed) = orders_in_paris_and_disable(true).await;
    for o in &placed[..2] {
        let moved = eventually(WAIT, async || {
            shipments(&get_order(&srv, &o["id"]).await) == vec![from("berlin", "tee", 2)]
        })
        .await;
        assert!(moved, "{}", get_order(&srv, &o["id"]).await);
    }
    // The cancelled one stays cancelled where it was.
    let c = get_order(&srv, &placed[2]["id"]).await;
    assert_eq!(
        (c["status"].as_str(), shipments(&c)),
        (Some("cancelled"), vec![from("paris", "tee", 2)])
    );
    assert_eq!(available(&srv, "tee", "paris").await, 10);
    assert_eq!(available(&srv, "tee", "berlin").await, 6);
}

#[tokio::test]
async fn with_reroute_on_disable_off_a_disabled_warehouse_keeps_its_orders() {
    let (srv, placed) = orders_in_paris_and_disable(false).await;
    // A re-route asked for by hand moves one; the other stays in Paris.
    let (s, moved) = reroute(&srv, &placed[0]["id"], json!({})).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(shipments(&moved), vec![from("berlin", "tee", 2)]);
    let kept = get_order(&srv, &placed[1]["id"]).await;
    assert_eq!(shipments(&kept), vec![from("paris", "tee", 2)]);
    assert_eq!(available(&srv, "tee", "paris").await, 8);
    assert_eq!(available(&srv, "tee", "berlin").await, 8);
}

#[tokio::test]
async fn a_reroute_after_a_sku_actor_stopped_starts_a_new_one_and_goes_on() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 2}]))).await;
    srv.bg()
        .surge
        .stop_sku_actor(&surge::core::SkuId::parse("tee").unwrap())
        .await
        .unwrap();
    let (s, moved) = timeout(WAIT, reroute(&srv, &o["id"], json!({"exclude": ["paris"]})))
        .await
        .expect("answered without waiting on itself");
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(shipments(&moved), vec![from("berlin", "tee", 2)]);
    assert_eq!(row(&srv, "tee", "berlin").await, (10, 2, 8));
}

#[tokio::test]
async fn a_reroute_does_not_count_the_order_against_its_own_warehouse() {
    let srv = Srv::start();
    berlin_and_paris(&srv, json!({"capacity_per_day": 2})).await;
    with_capacity(&srv).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let line = json!([{"sku": "tee", "qty": 1}]);
    place(&srv, order("web", line.clone())).await;
    let b = place(&srv, order("web", line)).await;
    assert_eq!(shipments(&b), vec![from("paris", "tee", 1)]);
    // Paris is full with this very order in it: staying is still a plan.
    let (s, same) = reroute(&srv, &b["id"], json!({"exclude": ["berlin"]})).await;
    assert_eq!(s, StatusCode::OK, "{same}");
    assert_eq!(same, b, "nothing moves");
    let (s, same) = reroute(&srv, &b["id"], json!({})).await;
    assert_eq!(s, StatusCode::OK, "{same}");
    assert_eq!(shipments(&same), vec![from("paris", "tee", 1)]);
    // Still full: a new order goes to Berlin.
    let c = place(&srv, order("web", json!([{"sku": "tee", "qty": 1}]))).await;
    assert_eq!(shipments(&c), vec![from("berlin", "tee", 1)]);
}

/// An order re-routed on a later local day than it was placed counts at
/// its new warehouse on that day, live, on the feed and after a restart;
/// cancelled, it frees that day's slot.
#[tokio::test]
async fn a_reroute_on_a_later_day_counts_on_that_day_everywhere() {
    // 2026-11-27 22:30 UTC.
    let clock = Arc::new(ManualClock::new(1_795_818_600_000));
    let store = MemStore::new();
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |_| {});
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 1}]))).await;
    assert_eq!(shipments(&o), vec![from("paris", "tee", 1)]);
    // 00:30 UTC the next day.
    clock.advance(2 * 3600 * 1000);
    let (s, moved) = reroute(&srv, &o["id"], json!({"exclude": ["paris"]})).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    let berlin = |w: &Value| {
        w["warehouses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == "berlin")
            .unwrap()["workload"]
            .clone()
    };
    let today =
        json!({"day": "2026-11-28", "routed": 1, "capacity_per_day": null, "at_capacity": false});
    assert_eq!(berlin(&srv.get("/v1/warehouses").await.1), today);
    let srv = {
        drop(srv);
        Srv::start_custom(Arc::new(store.reopen()), clock.clone(), |_| {})
    };
    assert_eq!(
        berlin(&srv.get("/v1/warehouses").await.1),
        today,
        "after a restart"
    );
    let mut ws = feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    let snapshot = first(&mut ws, "type", "snapshot").await;
    assert_eq!(snapshot["data"]["workload"]["berlin"], today);
    let (s, c) = srv
        .post(
            &format!("/v1/orders/{}/cancel", o["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        berlin(&srv.get("/v1/warehouses").await.1)["routed"],
        0,
        "the cancelled order's slot is free"
    );
}

#[tokio::test]
async fn orders_a_disabled_warehouse_still_has_move_after_a_restart() {
    let clock = Arc::new(ManualClock::new(1_795_818_600_000));
    let store = MemStore::new();
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |c| {
        c.routing.reroute_on_disable = false
    });
    berlin_and_paris(&srv, json!({})).await;
    srv.sku("tee", None, &[("berlin", 10), ("paris", 10)]).await;
    let o = place(&srv, order("web", json!([{"sku": "tee", "qty": 2}]))).await;
    warehouse(&srv, "paris", PARIS, 2, json!({"enabled": false})).await;
    assert_eq!(
        shipments(&get_order(&srv, &o["id"]).await),
        vec![from("paris", "tee", 2)]
    );
    drop(srv);
    let srv = Srv::start_custom(Arc::new(store.reopen()), clock, |c| {
        c.routing.reroute_on_disable = true
    });
    let moved = eventually(WAIT, async || {
        shipments(&get_order(&srv, &o["id"]).await) == vec![from("berlin", "tee", 2)]
    })
    .await;
    assert!(moved, "{}", get_order(&srv, &o["id"]).await);
    assert_eq!(available(&srv, "tee", "paris").await, 10);
}
