//! Each warehouse's workload against its capacity: what
//! `GET /v1/warehouses` answers and what the feed's `orders` snapshot
//! carries, as orders are routed, after a restart and on a new local day.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use surge::clock::ManualClock;
use surge::feedclient;
use surge::wal::store::MemStore;

const PARIS: (f64, f64) = (48.8566, 2.3522);
const BERLIN: (f64, f64) = (52.52, 13.405);
/// 2026-11-27 22:30 UTC: 23:30 in Paris.
const LATE_EVENING_MS: u64 = 1_795_818_600_000;

/// Paris (capacity 2 a day, counted in Paris time) and Berlin (unlimited,
/// counted in UTC), with the capacity rule in the chain and stock in both.
async fn paris_and_berlin(srv: &Srv) {
    for (id, at, extra) in [
        (
            "paris",
            PARIS,
            json!({"capacity_per_day": 2, "cutoff": {"time": "15:00", "tz": "Europe/Paris"}}),
        ),
        ("berlin", BERLIN, json!({})),
    ] {
        let mut body = json!({"name": id, "location": {"lat": at.0, "lon": at.1}, "priority": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = srv.put(&format!("/v1/warehouses/{id}"), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, r) = srv
        .put(
            "/v1/routing/rules",
            json!({"rules": ["enabled", "capacity", "nearest", "priority"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    srv.sku("tee", None, &[("paris", 10), ("berlin", 10)]).await;
}

/// Places one order of one tee shipped to Paris; returns its warehouses.
async fn order_to_paris(srv: &Srv) -> Vec<String> {
    let (s, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c1",
                   "ship_to": {"lat": PARIS.0, "lon": PARIS.1, "country": "FR"},
                   "lines": [{"sku": "tee", "qty": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["warehouse"].as_str().unwrap().to_owned())
        .collect()
}

/// Each warehouse's `workload` in `GET /v1/warehouses`, by id; checks
/// `GET /v1/warehouses/{id}` answers the same.
async fn workloads(srv: &Srv) -> Value {
    let (s, list) = srv.get("/v1/warehouses").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let mut out = serde_json::Map::new();
    for w in list["warehouses"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap();
        let (s, one) = srv.get(&format!("/v1/warehouses/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{one}");
        assert_eq!(one, *w, "one warehouse as listed");
        out.insert(id.to_owned(), w["workload"].clone());
    }
    Value::Object(out)
}

/// The `workload` of a fresh `orders` snapshot.
async fn snapshot_workload(srv: &Srv) -> Value {
    let mut ws = feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), feedclient::next_json(&mut ws))
            .await
            .expect("a feed message in time")
            .unwrap()
            .expect("the connection is open");
        if m["type"] == "snapshot" {
            assert_eq!(m["topic"], "orders");
            return m["data"]["workload"].clone();
        }
    }
}

fn workload(day: &str, routed: u64, capacity: Option<u64>, full: bool) -> Value {
    json!({"day": day, "routed": routed, "capacity_per_day": capacity, "at_capacity": full})
}

#[tokio::test]
async fn each_warehouse_answers_its_workload_today_and_again_after_a_restart() {
    let clock = Arc::new(ManualClock::new(LATE_EVENING_MS));
    let store = MemStore::new();
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |_| {});
    paris_and_berlin(&srv).await;
    assert_eq!(
        workloads(&srv).await,
        json!({"paris": workload("2026-11-27", 0, Some(2), false),
               "berlin": workload("2026-11-27", 0, None, false)})
    );
    // Nothing routed yet: the snapshot has no figures.
    assert_eq!(snapshot_workload(&srv).await, json!({}));

    assert_eq!(order_to_paris(&srv).await, ["paris"]);
    assert_eq!(
        workloads(&srv).await["paris"],
        workload("2026-11-27", 1, Some(2), false)
    );
    assert_eq!(order_to_paris(&srv).await, ["paris"]);
    // Paris is full: the next one goes to Berlin, which has no limit.
    assert_eq!(order_to_paris(&srv).await, ["berlin"]);
    let today = json!({"paris": workload("2026-11-27", 2, Some(2), true),
                       "berlin": workload("2026-11-27", 1, None, false)});
    assert_eq!(workloads(&srv).await, today);
    // Nothing in flight: the feed's figures are the same.
    assert_eq!(snapshot_workload(&srv).await, today);

    // A restart counts them again from the orders.
    drop(srv);
    let srv = Srv::start_custom(Arc::new(store.reopen()), clock.clone(), |_| {});
    assert_eq!(workloads(&srv).await, today);
    assert_eq!(snapshot_workload(&srv).await, today);

    // 00:01 in Paris (23:01 UTC): a new day there, not yet in Berlin.
    clock.advance(31 * 60 * 1000);
    assert_eq!(
        workloads(&srv).await,
        json!({"paris": workload("2026-11-28", 0, Some(2), false),
               "berlin": workload("2026-11-27", 1, None, false)})
    );
    // The snapshot keeps the last day each had orders (a client compares
    // it with the local date) until an order on the new day starts it over.
    assert_eq!(snapshot_workload(&srv).await, today);
    assert_eq!(order_to_paris(&srv).await, ["paris"]);
    let next = json!({"paris": workload("2026-11-28", 1, Some(2), false),
                      "berlin": workload("2026-11-27", 1, None, false)});
    assert_eq!(workloads(&srv).await, next);
    assert_eq!(snapshot_workload(&srv).await, next);
}

/// The snapshot's figure is as of its seq: it counts exactly the orders
/// the snapshot lists, and the `order_created` events after it are the
/// others, whatever was being placed while it was taken.
#[tokio::test]
async fn the_orders_snapshot_and_the_events_after_it_add_up() {
    let clock = Arc::new(ManualClock::new(LATE_EVENING_MS));
    let srv = Srv::start_custom(Arc::new(MemStore::new()), clock, |_| {});
    paris_and_berlin(&srv).await;
    assert_eq!(order_to_paris(&srv).await, ["paris"]);
    let mut ws = feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    let mut snapshot: Option<(Vec<String>, u64)> = None;
    let mut fed: Vec<String> = Vec::new();
    // Orders placed while the connection takes its snapshot and after.
    let placing = async {
        for _ in 0..3 {
            order_to_paris(&srv).await;
        }
    };
    let reading = async {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), feedclient::next_json(&mut ws))
                .await
                .expect("a feed message in time")
                .unwrap()
                .expect("the connection is open");
            match m["type"].as_str().unwrap() {
                "snapshot" => {
                    let w = &m["data"]["workload"];
                    let routed = w["paris"]["routed"].as_u64().unwrap_or(0)
                        + w["berlin"]["routed"].as_u64().unwrap_or(0);
                    let ids = m["data"]["recent"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| o["id"].as_str().unwrap().to_owned())
                        .collect();
                    snapshot = Some((ids, routed));
                }
                "event" if m["event"] == "order_created" => {
                    assert_eq!(m["order"]["shipments"].as_array().unwrap().len(), 1);
                    fed.push(m["order"]["id"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
            if snapshot.as_ref().map_or(0, |(ids, _)| ids.len()) + fed.len() >= 4 {
                return;
            }
        }
    };
    tokio::join!(placing, reading);
    let (listed, routed) = snapshot.unwrap();
    // Single-shipment orders: the snapshot counts one per order it lists,
    // and no order it lists comes again as an event.
    assert_eq!(routed, listed.len() as u64, "{listed:?}");
    assert!(
        fed.iter().all(|id| !listed.contains(id)),
        "{listed:?} {fed:?}"
    );
    assert_eq!(listed.len() + fed.len(), 4);
    let w = workloads(&srv).await;
    let total = w["paris"]["routed"].as_u64().unwrap() + w["berlin"]["routed"].as_u64().unwrap();
    assert_eq!(total, 4, "{w}");
}

/// A cancelled order leaves its warehouse's count and a re-routed one
/// moves it, in the API, in the snapshot and in the events that say so;
/// and after a restart.
#[tokio::test]
async fn cancelling_or_rerouting_an_order_moves_its_workload() {
    let clock = Arc::new(ManualClock::new(LATE_EVENING_MS));
    let store = MemStore::new();
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |_| {});
    paris_and_berlin(&srv).await;
    let place = async || {
        let (s, o) = srv
            .post(
                "/v1/orders",
                json!({"channel": "web", "customer_id": "c1",
                       "ship_to": {"lat": PARIS.0, "lon": PARIS.1, "country": "FR"},
                       "lines": [{"sku": "tee", "qty": 1}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        o["id"].as_str().unwrap().to_owned()
    };
    let (a, b) = (place().await, place().await);
    let mut ws = feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    let mut next_event = async || loop {
        let m = tokio::time::timeout(Duration::from_secs(20), feedclient::next_json(&mut ws))
            .await
            .expect("a feed message in time")
            .unwrap()
            .expect("the connection is open");
        if m["type"] == "event" {
            return m;
        }
    };
    assert_eq!(
        workloads(&srv).await["paris"],
        workload("2026-11-27", 2, Some(2), true)
    );

    let (s, r) = srv.post(&format!("/v1/orders/{a}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let one_left = workload("2026-11-27", 1, Some(2), false);
    assert_eq!(workloads(&srv).await["paris"], one_left);
    let ev = next_event().await;
    assert_eq!(
        (ev["event"].as_str(), &ev["workload"]),
        (Some("order_status_changed"), &json!({"paris": one_left}))
    );

    let (s, r) = srv
        .post(
            &format!("/v1/orders/{b}/reroute"),
            json!({"exclude": ["paris"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let now = json!({"paris": workload("2026-11-27", 0, Some(2), false),
                     "berlin": workload("2026-11-27", 1, None, false)});
    assert_eq!(workloads(&srv).await, now);
    let ev = loop {
        let ev = next_event().await;
        if ev["event"] == "order_rerouted" {
            break ev;
        }
    };
    assert_eq!(ev["workload"], now);
    assert_eq!(snapshot_workload(&srv).await, now);

    drop(srv);
    let srv = Srv::start_custom(Arc::new(store.reopen()), clock, |_| {});
    assert_eq!(workloads(&srv).await, now);
    // The snapshot lists the warehouses that have orders (Paris has none
    // left: it shows 0).
    assert_eq!(
        snapshot_workload(&srv).await,
        json!({"berlin": now["berlin"]})
    );
}
