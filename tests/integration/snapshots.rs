//! Snapshots and log truncation: restart = snapshot + tail gives the same
//! state, and the log stays bounded under a steady load.

use crate::common::Srv;
use crate::holds::eventually;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use surge::wal::store::MemStore;

async fn everything(srv: &Srv, holds: &[String], orders: &[String]) -> Vec<Value> {
    let mut out = vec![
        srv.stock("a").await,
        srv.stock("b").await,
        srv.get("/v1/warehouses").await.1,
    ];
    for h in holds {
        out.push(srv.get(&format!("/v1/reservations/{h}")).await.1);
    }
    for o in orders {
        out.push(srv.get(&format!("/v1/orders/{o}")).await.1);
    }
    out
}

#[tokio::test]
async fn restart_from_snapshot_and_tail_rebuilds_the_same_state_and_the_log_stays_bounded() {
    let store = MemStore::new();
    let every = 40u64;
    let srv = Srv::start_mem(store.clone(), |c| {
        c.snapshot_every_events = every;
        c.snapshot_chunk_entries = 7;
    });
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("a", Some(50), &[("w1", 500), ("w2", 500)]).await;
    srv.sku("b", None, &[("w2", 500)]).await;
    let (mut holds, mut orders) = (vec![], vec![]);
    for round in 0..6 {
        let keys: Vec<String> = (0..30).map(|i| format!("r{round}-{i}")).collect();
        let rs = join_all(keys.iter().enumerate().map(|(i, key)| {
            srv.post_idem("/v1/reservations", json!({"sku": if i % 2 == 0 { "a" } else { "b" }, "qty": 1, "customer_id": format!("c{}", i % 5)}), key)
        }))
        .await;
        holds.extend(
            rs.iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, b)| b["id"].as_str().unwrap().to_string()),
        );
        let os = join_all((0..10).map(|i| {
            srv.post("/v1/orders", json!({"channel": "web", "customer_id": format!("d{i}"), "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}))
        }))
        .await;
        orders.extend(
            os.iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, b)| b["id"].as_str().unwrap().to_string()),
        );
        srv.post(
            &format!("/v1/orders/{}/cancel", orders[orders.len() - 1]),
            json!({}),
        )
        .await;
        srv.delete(&format!("/v1/reservations/{}", holds[holds.len() - 1]))
            .await;
    }
    let surge = srv.bg().surge.clone();
    let seq = surge.durable_seq();
    let stats = surge.checkpoint_stats();
    // The checkpointer catches up to within one interval of the log's end
    // and truncates behind itself.
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .last_seq
            .load(Ordering::Acquire)
            + every
            > seq)
        .await,
        "no recent snapshot: last at {}, log at {seq}",
        stats.last_seq.load(Ordering::Acquire)
    );
    assert!(stats.snapshots.load(Ordering::Acquire) >= 2);
    assert!(
        store.records() as u64 <= every + 5,
        "log not truncated: {} records",
        store.records()
    );

    // A few more writes go to the tail, after the snapshot.
    let (_, tail_hold) = srv
        .post("/v1/reservations", json!({"sku": "b", "qty": 3}))
        .await;
    holds.push(tail_hold["id"].as_str().unwrap().to_string());
    let before = everything(&srv, &holds, &orders).await;
    drop(srv);
    drop(surge);

    let srv = Srv::start_mem(store.reopen(), |c| c.snapshot_every_events = every);
    assert_eq!(everything(&srv, &holds, &orders).await, before);
    // Idempotency keys came back from the snapshot too.
    let (s, again) = srv
        .post_idem(
            "/v1/reservations",
            json!({"sku": "a", "qty": 1, "customer_id": "c0"}),
            "r0-0",
        )
        .await;
    assert_eq!(
        (s, again["id"].as_str()),
        (StatusCode::OK, Some(holds[0].as_str()))
    );
    // Purchase limits too: c0 holds some of a; the limit counts them.
    let live = srv
        .bg()
        .surge
        .inspect_sku(&surge::core::SkuId::parse("a").unwrap())
        .await
        .unwrap();
    live.check_invariants().unwrap();
    assert!(live.usage.values().sum::<u64>() > 0);
}

#[tokio::test]
async fn a_damaged_snapshot_refuses_to_start() {
    use surge::wal::store::LogStore;
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| c.snapshot_every_events = 5);
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 10)]).await;
    for _ in 0..5 {
        srv.post("/v1/reservations", json!({"sku": "a", "qty": 1}))
            .await;
    }
    let stats = srv.bg().surge.checkpoint_stats();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .snapshots
            .load(Ordering::Acquire)
            >= 1)
        .await
    );
    drop(srv);
    let copy = store.reopen();
    let meta = copy.snapshot_meta().unwrap().unwrap();
    let mut bad = meta.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    copy.commit_snapshot(u64::MAX, &bad).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = surge::server::Background::start(
        crate::common::test_config(dir.path()),
        std::sync::Arc::new(surge::clock::SystemClock::default()),
        std::sync::Arc::new(copy),
    )
    .err()
    .expect("started on a damaged snapshot");
    assert!(err.to_string().contains("snapshot is damaged"), "{err}");
}
