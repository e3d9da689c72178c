//! Order placement as a process: once the order is durable the client hears
//! 201 and the order can be cancelled, whatever happens to an actor between
//! the phases; and closed orders, holds and keys leave memory after their
//! retention in every copy of the state, by one rule.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use surge::clock::ManualClock;
use surge::core::SkuId;
use surge::projection::Projection;
use surge::wal::snapshot;
use surge::wal::store::MemStore;

#[tokio::test]
async fn an_order_durable_before_its_sku_actor_stopped_is_placed_and_cancellable() {
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |_| {});
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 10)]).await;
    srv.sku("b", None, &[("w1", 10)]).await;

    // Phase one runs; the order's record is being synced while the store's
    // sync hangs.
    store.faults.hang_sync.store(true, Ordering::SeqCst);
    let placing = {
        let (client, url) = (srv.client.clone(), srv.url("/v1/orders"));
        tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0},
                    "lines": [{"sku": "a", "qty": 3}, {"sku": "b", "qty": 2}]}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap())
        })
    };
    assert!(
        crate::holds::eventually(Duration::from_secs(30), async || {
            store.faults.sync_hung.load(Ordering::SeqCst)
        })
        .await,
        "the order's record reached the sync"
    );
    // Between the phases, SKU a's actor goes away with its pending part.
    let surge = srv.bg().surge.clone();
    surge
        .stop_sku_actor(&SkuId::parse("a").unwrap())
        .await
        .unwrap();
    // A reservation for more than the order leaves must not get the stock
    // the order was promised, whichever actor answers it.
    let grabbing = {
        let (client, url) = (srv.client.clone(), srv.url("/v1/reservations"));
        tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({"sku": "a", "qty": 8}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap())
        })
    };
    store.faults.hang_sync.store(false, Ordering::SeqCst);

    let (status, order) = placing.await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, grabbed) = grabbing.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{grabbed}");
    assert_eq!(grabbed["code"], "insufficient_stock");
    let id = order["id"].as_str().unwrap().to_string();
    let stock = srv.stock("a").await;
    assert_eq!(stock["allocated"], 3, "{stock}");
    // The live actor (a new one) agrees with the durable state.
    let live = surge
        .inspect_sku(&SkuId::parse("a").unwrap())
        .await
        .unwrap();
    assert_eq!(live.totals().allocated, 3);
    assert_eq!(live.totals().available(), 7);

    let (status, cancelled) = srv
        .post(&format!("/v1/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    for sku in ["a", "b"] {
        let stock = srv.stock(sku).await;
        assert_eq!(stock["allocated"], 0, "{stock}");
        assert_eq!(stock["available"], 10, "{stock}");
        let live = surge
            .inspect_sku(&SkuId::parse(sku).unwrap())
            .await
            .unwrap();
        assert_eq!(live.totals().available(), 10, "{sku}");
    }
}

const RETAIN_MS: u64 = 60_000;

/// The number of a server id (`ord_12` -> 12).
fn id_number(id: &str) -> u64 {
    id.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

/// Waits for the server's first snapshot and reads it into a copy.
async fn snapshot_copy(srv: &Srv, store: &MemStore) -> Projection {
    let stats = srv.bg().surge.checkpoint_stats();
    assert!(
        crate::holds::eventually(Duration::from_secs(20), async || {
            stats.snapshots.load(Ordering::Acquire) > 0
        })
        .await,
        "a snapshot was written"
    );
    let copy = Projection::new();
    snapshot::load(store, &copy).unwrap().expect("a snapshot");
    copy
}

#[tokio::test]
async fn closed_orders_holds_and_keys_leave_every_copy_after_their_retention() {
    let store = MemStore::new();
    let start = 1_700_000_000_000;
    let clock = Arc::new(ManualClock::new(start));
    let tune = |c: &mut surge::config::Config| {
        c.closed_hold_retention_ms = RETAIN_MS;
        c.closed_order_retention_ms = RETAIN_MS;
        c.idempotency_ttl_ms = RETAIN_MS;
        c.hold_ttl_ms_max = 10 * RETAIN_MS;
        c.snapshot_every_events = 1_000_000;
        // One record per step of the sweep: the smallest step there is.
        c.retention_sweep_batch_max = 1;
    };
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), tune);
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 100)]).await;
    let hold = |ttl: u64| json!({"sku": "a", "qty": 1, "ttl_ms": ttl});
    let order = json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 2}]});

    let (_, released) = srv.post("/v1/reservations", hold(5 * RETAIN_MS)).await;
    let released = released["id"].as_str().unwrap().to_string();
    srv.delete(&format!("/v1/reservations/{released}")).await;
    let (_, open_hold) = srv.post("/v1/reservations", hold(5 * RETAIN_MS)).await;
    let open_hold = open_hold["id"].as_str().unwrap().to_string();
    let (s, closed) = srv.post_idem("/v1/orders", order.clone(), "k1").await;
    assert_eq!(s, StatusCode::CREATED);
    let closed = closed["id"].as_str().unwrap().to_string();
    srv.post(&format!("/v1/orders/{closed}/cancel"), json!({}))
        .await;
    let (_, open_order) = srv.post("/v1/orders", order.clone()).await;
    let open_order = open_order["id"].as_str().unwrap().to_string();

    // Within the retention everything is remembered, live.
    let surge = srv.bg().surge.clone();
    clock.advance(RETAIN_MS / 2);
    surge.sweep_retention().await.unwrap();
    assert_eq!(
        srv.get(&format!("/v1/orders/{closed}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        srv.get(&format!("/v1/reservations/{released}")).await.0,
        StatusCode::OK
    );
    let replay = srv.post_idem("/v1/orders", order.clone(), "k1").await;
    assert_eq!(replay.0, StatusCode::OK, "the key answers with its order");
    assert_eq!(replay.1["id"], closed.as_str());

    // Past it, the closed ones are gone from the read model and from the
    // order actors; the open ones stay.
    clock.advance(RETAIN_MS);
    surge.sweep_retention().await.unwrap();
    let gone = |(s, b): (StatusCode, serde_json::Value)| {
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    };
    gone(srv.get(&format!("/v1/orders/{closed}")).await);
    gone(srv.get(&format!("/v1/reservations/{released}")).await);
    // The order's actor forgot it too (it would say "not cancellable").
    gone(
        srv.post(&format!("/v1/orders/{closed}/cancel"), json!({}))
            .await,
    );
    assert_eq!(
        srv.get(&format!("/v1/orders/{open_order}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        srv.get(&format!("/v1/reservations/{open_hold}")).await.1["status"],
        "active"
    );
    let (s, again) = srv.post_idem("/v1/orders", order.clone(), "k1").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a forgotten key places anew: {again}"
    );
    assert_ne!(again["id"], closed.as_str());

    // Replay: a restart reading the whole log, clock past the retention,
    // remembers none of them.
    let mut srv = srv;
    srv.bg.take().unwrap().stop().unwrap();
    let srv = Srv::start_custom(Arc::new(store.reopen()), clock.clone(), tune);
    gone(srv.get(&format!("/v1/orders/{closed}")).await);
    gone(srv.get(&format!("/v1/reservations/{released}")).await);
    gone(
        srv.post(&format!("/v1/orders/{closed}/cancel"), json!({}))
            .await,
    );
    assert_eq!(
        srv.get(&format!("/v1/reservations/{open_hold}")).await.1["status"],
        "active"
    );

    // The checkpointer's copy: a snapshot taken now holds none of them.
    let mut srv = srv;
    srv.bg.take().unwrap().stop().unwrap();
    let store = store.reopen();
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |c| {
        tune(c);
        c.snapshot_every_events = 1;
        c.snapshot_every_ms = 1;
    });
    srv.post("/v1/reservations", hold(RETAIN_MS)).await;
    let copy = snapshot_copy(&srv, &store).await;
    let ids = |p: &str| id_number(p);
    assert!(copy
        .orders
        .get(&surge::core::OrderId(ids(&closed)))
        .is_none());
    assert!(copy
        .orders
        .get(&surge::core::OrderId(ids(&open_order)))
        .is_some());
    assert!(copy
        .holds
        .get(&surge::core::HoldId(ids(&released)))
        .is_none());
    assert!(copy
        .holds
        .get(&surge::core::HoldId(ids(&open_hold)))
        .is_some());
    assert!(
        copy.idempotency
            .iter()
            .all(|k| k.value().at >= start + RETAIN_MS),
        "no key older than its retention"
    );
}

/// Ids are never reused: not even once the highest order and hold were
/// forgotten after their retention, a snapshot left them out and the log
/// behind it is gone.
#[tokio::test]
async fn ids_stay_unique_after_the_highest_were_forgotten_and_snapshotted() {
    let store = MemStore::new();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let tune = |c: &mut surge::config::Config| {
        c.closed_hold_retention_ms = RETAIN_MS;
        c.closed_order_retention_ms = RETAIN_MS;
        c.idempotency_ttl_ms = RETAIN_MS;
    };
    let srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), tune);
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 100)]).await;
    let order = json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1}]});
    let num = |v: &serde_json::Value| id_number(v["id"].as_str().unwrap());
    srv.post("/v1/orders", order.clone()).await;
    let (_, last_order) = srv.post("/v1/orders", order.clone()).await;
    srv.post(
        &format!("/v1/orders/{}/cancel", last_order["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    srv.post("/v1/reservations", json!({"sku": "a", "qty": 1}))
        .await;
    let (_, last_hold) = srv
        .post("/v1/reservations", json!({"sku": "a", "qty": 1}))
        .await;
    srv.delete(&format!(
        "/v1/reservations/{}",
        last_hold["id"].as_str().unwrap()
    ))
    .await;

    // Past the retention, a snapshot forgets them and the log is cut.
    clock.advance(2 * RETAIN_MS);
    let mut srv = srv;
    srv.bg.take().unwrap().stop().unwrap();
    let store = store.reopen();
    let mut srv = Srv::start_custom(Arc::new(store.clone()), clock.clone(), |c| {
        tune(c);
        c.snapshot_every_events = 1;
        c.snapshot_every_ms = 1;
    });
    let (s, _) = srv
        .post(
            "/v1/stock/adjustments",
            json!({"sku": "a", "warehouse": "w1", "delta": 1, "reason": "count"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let copy = snapshot_copy(&srv, &store).await;
    assert!(
        copy.orders.len() == 1 && copy.holds.len() == 1,
        "the closed ones are not in it"
    );

    srv.bg.take().unwrap().stop().unwrap();
    let srv = Srv::start_custom(Arc::new(store.reopen()), clock.clone(), tune);
    let (s, next_order) = srv.post("/v1/orders", order.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{next_order}");
    assert!(
        num(&next_order) > num(&last_order),
        "{next_order} after {last_order}"
    );
    let (s, next_hold) = srv
        .post("/v1/reservations", json!({"sku": "a", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{next_hold}");
    assert!(
        num(&next_hold) > num(&last_hold),
        "{next_hold} after {last_hold}"
    );
}
