//! Idempotency and restarts: what was acknowledged survives, retries have
//! one effect, storage failure stops writes without losing anything.

use crate::common::Srv;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use surge::wal::store::MemStore;

fn order_body(customer: &str) -> serde_json::Value {
    json!({"channel": "web", "customer_id": customer, "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "tee", "qty": 2}]})
}

#[tokio::test]
async fn idempotent_replay_returns_the_same_order_also_after_restart() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (s, first) = srv.post_idem("/v1/orders", order_body("c1"), "key-1").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, again) = srv.post_idem("/v1/orders", order_body("c1"), "key-1").await;
    assert_eq!((s, &again["id"]), (StatusCode::OK, &first["id"]));
    assert_eq!(
        srv.stock("tee").await["allocated"].as_u64(),
        Some(2),
        "no second effect"
    );
    let (s, e) = srv.post_idem("/v1/orders", order_body("c2"), "key-1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );

    // Concurrent retries of a new key: one effect, everyone sees the same id
    // or is told the key is in flight.
    let tries =
        join_all((0..20).map(|_| srv.post_idem("/v1/orders", order_body("c3"), "key-2"))).await;
    let ids: std::collections::HashSet<_> = tries
        .iter()
        .filter(|(s, _)| s.is_success())
        .map(|(_, b)| b["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(tries
        .iter()
        .all(|(s, b)| s.is_success() || b["code"] == "idempotency_key_in_flight"));
    assert_eq!(srv.stock("tee").await["allocated"].as_u64(), Some(4));

    // Reservations are keyed separately from orders.
    let (s, r1) = srv
        .post_idem("/v1/reservations", json!({"sku": "tee", "qty": 1}), "key-1")
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let srv = srv.restart();
    let (s, after) = srv.post_idem("/v1/orders", order_body("c1"), "key-1").await;
    assert_eq!((s, &after["id"]), (StatusCode::OK, &first["id"]));
    let (s, r2) = srv
        .post_idem("/v1/reservations", json!({"sku": "tee", "qty": 1}), "key-1")
        .await;
    assert_eq!((s, &r2["id"]), (StatusCode::OK, &r1["id"]));
    assert_eq!(srv.stock("tee").await["allocated"].as_u64(), Some(4));
    assert_eq!(srv.stock("tee").await["reserved"].as_u64(), Some(1));
    let (s, e) = srv
        .send(
            reqwest::Method::POST,
            "/v1/reservations",
            Some(json!({"sku": "tee", "qty": 1})),
            Some(&"k".repeat(256)),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    let (s, _) = srv
        .send(
            reqwest::Method::POST,
            "/v1/reservations",
            Some(json!({"sku": "tee", "qty": 1})),
            Some(&"k".repeat(255)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn restart_keeps_every_accepted_reservation_and_order() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("a", Some(5), &[("w1", 50), ("w2", 50)]).await;
    srv.sku("b", None, &[("w2", 30)]).await;
    let holds = join_all((0..30).map(|i| {
        srv.post(
            "/v1/reservations",
            json!({"sku": "a", "qty": 1 + i % 3, "customer_id": format!("c{}", i % 7)}),
        )
    }))
    .await;
    let orders = join_all((0..20).map(|i| {
        srv.post("/v1/orders", json!({"channel": "web", "customer_id": format!("d{i}"), "ship_to": {"lat": 1.0, "lon": 1.0},
            "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}))
    }))
    .await;
    let (_, cancelled) = srv
        .post(
            &format!("/v1/orders/{}/cancel", orders[0].1["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    let before = (srv.stock("a").await, srv.stock("b").await);
    let srv = srv.restart();
    assert_eq!((srv.stock("a").await, srv.stock("b").await), before);
    // Updating a SKU after a restart keeps its stock (its actor starts from
    // the durable state, not empty).
    let (s, st) = srv.put("/v1/skus/b", json!({"name": "B2"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (st["on_hand"].as_u64(), st["name"].as_str()),
        (before.1["on_hand"].as_u64(), Some("B2"))
    );
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "b", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let live = srv
        .bg()
        .surge
        .inspect_sku(&surge::core::SkuId::parse("b").unwrap())
        .await
        .unwrap();
    assert_eq!(live.totals().on_hand, before.1["on_hand"].as_u64().unwrap());
    for (s, h) in holds.iter().filter(|(s, _)| *s == StatusCode::CREATED) {
        let (gs, got) = srv
            .get(&format!("/v1/reservations/{}", h["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            (gs, &got["status"], &got["qty"]),
            (StatusCode::OK, &h["status"], &h["qty"]),
            "{s}"
        );
    }
    for (s, o) in orders.iter().filter(|(s, _)| *s == StatusCode::CREATED) {
        let (_, got) = srv
            .get(&format!("/v1/orders/{}", o["id"].as_str().unwrap()))
            .await;
        if got["id"] == cancelled["id"] {
            assert_eq!(got, cancelled);
        } else {
            assert_eq!(&got, o, "{s}");
        }
    }
    // Ids keep growing after a restart.
    let (_, h) = srv
        .post("/v1/reservations", json!({"sku": "b", "qty": 1}))
        .await;
    let num = |v: &serde_json::Value| -> u64 {
        v["id"].as_str().unwrap()["res_".len()..].parse().unwrap()
    };
    let max_before = holds
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, h)| num(h))
        .max()
        .unwrap();
    assert!(num(&h) > max_before);
    // The purchase limit remembers what customers already hold.
    let limited = join_all((0..7).map(|c| {
        srv.post(
            "/v1/reservations",
            json!({"sku": "a", "qty": 5, "customer_id": format!("c{c}")}),
        )
    }))
    .await;
    assert!(limited
        .iter()
        .all(|(s, b)| *s == StatusCode::UNPROCESSABLE_ENTITY
            && b["code"] == "purchase_limit_exceeded"));
}

#[tokio::test]
async fn storage_failure_stops_writes_and_loses_nothing_acknowledged() {
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |_| {});
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (s, ok) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 2}))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    store.faults.fail_sync.store(true, Ordering::SeqCst);
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 3}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable"))
    );
    // Even with the disk back, the server stays stopped for writes: its
    // memory may differ from the log.
    store.faults.fail_sync.store(false, Ordering::SeqCst);
    for (path, body) in [
        ("/v1/reservations", json!({"sku": "tee", "qty": 1})),
        ("/v1/orders", order_body("c1")),
        (
            "/v1/stock/adjustments",
            json!({"sku": "tee", "warehouse": "w1", "delta": 1, "reason": "x"}),
        ),
    ] {
        let (s, e) = srv.post(path, body).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
            "{path}"
        );
    }
    let (s, _) = srv
        .delete(&format!("/v1/reservations/{}", ok["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    // Reads still work and show only durable state.
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["reserved"].as_u64(), st["available"].as_u64()),
        (Some(2), Some(8))
    );
    let (s, h) = srv.get("/healthz").await;
    assert_eq!(
        (s, h["storage"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("failed"))
    );
    drop(srv);

    // What a restart sees: everything acknowledged, nothing refused.
    let srv = Srv::start_mem(store.reopen(), |_| {});
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["on_hand"].as_u64(), st["reserved"].as_u64()),
        (Some(10), Some(2))
    );
    let (_, h) = srv
        .get(&format!("/v1/reservations/{}", ok["id"].as_str().unwrap()))
        .await;
    assert_eq!(h["status"], "active");
}

async fn reserve_n(srv: &Srv, n: usize) {
    for _ in 0..n {
        let (s, b) = srv
            .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
}

async fn setup(srv: &Srv) {
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 1000)]).await;
}

#[tokio::test]
async fn durability_modes_sync_as_promised() {
    use surge::wal::Durability;
    // fsync: one sync per acknowledged sequential write.
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| c.durability = Durability::Fsync);
    setup(&srv).await;
    let before = store.faults.syncs.load(Ordering::SeqCst);
    reserve_n(&srv, 10).await;
    assert_eq!(store.faults.syncs.load(Ordering::SeqCst) - before, 10);
    drop(srv);

    // none: acknowledged without any sync (unsafe, load tests only).
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| c.durability = Durability::None);
    setup(&srv).await;
    reserve_n(&srv, 10).await;
    assert_eq!(store.faults.syncs.load(Ordering::SeqCst), 0);
    assert_eq!(srv.get("/healthz").await.1["durability"], "none");
    drop(srv);

    // batch: a lone write is not held back for the group delay (an hour
    // here: waiting for it would time the test out), and still syncs.
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| {
        c.durability = Durability::Batch;
        c.wal_group_delay_us_max = 3_600_000_000;
    });
    let lone = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        setup(&srv).await;
        reserve_n(&srv, 5).await;
    });
    lone.await.expect("a lone write waited for the group delay");
    assert!(store.faults.syncs.load(Ordering::SeqCst) >= 5);
    drop(srv);

    // batch under concurrency: everything acknowledged is synced.
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| {
        c.durability = Durability::Batch;
        c.wal_group_delay_us_max = 500;
    });
    setup(&srv).await;
    let results =
        join_all((0..100).map(|_| srv.post("/v1/reservations", json!({"sku": "tee", "qty": 1}))))
            .await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::CREATED));
    drop(srv);
    let srv = Srv::start_mem(store.reopen(), |_| {});
    assert_eq!(
        srv.stock("tee").await["reserved"].as_u64(),
        Some(100),
        "all acknowledged writes were synced"
    );
}

#[tokio::test]
async fn a_torn_tail_is_dropped_and_mid_log_corruption_refuses_to_start() {
    use surge::wal::store::LogStore;
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |_| {});
    setup(&srv).await;
    reserve_n(&srv, 3).await;
    drop(srv);
    // Copy the log record by record; tear the last one in half.
    let mut records = Vec::new();
    store
        .scan(&mut |k, v| records.push((k, v.to_vec())))
        .unwrap();
    let torn = MemStore::new();
    for (i, (k, v)) in records.iter().enumerate() {
        let bytes = if i + 1 == records.len() {
            &v[..v.len() / 2]
        } else {
            &v[..]
        };
        torn.append(*k, bytes).unwrap();
    }
    torn.sync().unwrap();
    let srv = Srv::start_mem(torn.clone(), |_| {});
    assert_eq!(
        srv.stock("tee").await["reserved"].as_u64(),
        Some(2),
        "the torn reservation is gone, the rest stays"
    );
    reserve_n(&srv, 1).await;
    drop(srv);
    let srv = Srv::start_mem(torn.reopen(), |_| {});
    assert_eq!(srv.stock("tee").await["reserved"].as_u64(), Some(3));
    drop(srv);

    // A flipped byte in a record that has records after it: refuse to start.
    let flipped = MemStore::new();
    for (i, (k, v)) in records.iter().enumerate() {
        let mut v = v.clone();
        if i == 1 {
            let mid = v.len() / 2;
            v[mid] ^= 0x20;
        }
        flipped.append(*k, &v).unwrap();
    }
    flipped.sync().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::test_config(dir.path());
    let err = surge::server::Background::start(
        config,
        std::sync::Arc::new(surge::clock::SystemClock::default()),
        std::sync::Arc::new(flipped),
    )
    .err()
    .expect("started on a corrupt log");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("record {}", records[1].0)) && msg.contains("corrupt"),
        "{msg}"
    );
}
