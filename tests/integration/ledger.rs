//! The stock ledger through the HTTP API: an entry for each kind of change
//! with its reason and reference, paging by cursor, the warehouse filter,
//! limits at their edges, restart, snapshot and log truncation, retention,
//! and the `ledger_behind` / `ledger_disabled` answers.

use crate::common::Srv;
use crate::holds::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::clock::ManualClock;

/// Every entry of `sku` (only `warehouse`'s if given), page by page.
async fn entries(srv: &Srv, sku: &str, warehouse: Option<&str>, limit: u64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/skus/{sku}/ledger?limit={limit}");
        if let Some(w) = warehouse {
            path.push_str(&format!("&warehouse={w}"));
        }
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (s, page) = srv.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["sku"], sku);
        let got = page["entries"].as_array().unwrap();
        assert!(got.len() as u64 <= limit);
        all.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// Each row's buckets summed over the entries.
fn sums(entries: &[Value]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for e in entries {
        let k = (
            e["warehouse"].as_str().unwrap().to_owned(),
            e["bucket"].as_str().unwrap().to_owned(),
        );
        *out.entry(k).or_default() += e["delta"].as_i64().unwrap();
    }
    out
}

/// The ledger of `sku` sums to its stock rows as `GET .../stock` shows
/// them (`incoming` included).
async fn sums_match_stock(srv: &Srv, sku: &str) -> Vec<Value> {
    let all = entries(srv, sku, None, 500).await;
    let sums = sums(&all);
    let stock = srv.stock(sku).await;
    for r in stock["warehouses"].as_array().unwrap() {
        let w = r["warehouse"].as_str().unwrap();
        for b in [
            "on_hand",
            "reserved",
            "allocated",
            "safety_stock",
            "incoming",
        ] {
            let sum = sums
                .get(&(w.to_owned(), b.to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(sum, r[b].as_i64().unwrap_or(0), "{sku}@{w} {b}: {r}");
        }
    }
    all
}

async fn ok(srv: &Srv, path: &str, body: Value) -> Value {
    let (s, b) = srv.post(path, body).await;
    assert!(s.is_success(), "{path}: {s} {b}");
    b
}

/// `(reason, bucket, delta, ref kind, ref id)` of each entry.
fn summary(entries: &[Value]) -> Vec<(String, String, i64, String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_owned(),
                e["bucket"].as_str().unwrap().to_owned(),
                e["delta"].as_i64().unwrap(),
                e["ref"]["kind"].as_str().unwrap_or("").to_owned(),
                e["ref"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn has(list: &[(String, String, i64, String, String)], want: (&str, &str, i64, &str, &str)) {
    assert!(
        list.iter()
            .any(|(r, b, d, k, i)| (r.as_str(), b.as_str(), *d, k.as_str(), i.as_str()) == want),
        "no entry {want:?} in {list:#?}"
    );
}

#[tokio::test]
async fn every_kind_of_change_is_an_entry_with_its_reason_and_reference() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    ok(
        &srv,
        "/v1/stock/adjustments",
        json!({"sku": "tee", "warehouse": "w1", "set_safety_stock": 2, "reason": "policy"}),
    )
    .await;
    // A hold released, one left to expire, one consumed by an order.
    let h1 = ok(&srv, "/v1/reservations", json!({"sku": "tee", "qty": 2})).await;
    let h1 = h1["id"].as_str().unwrap().to_owned();
    let (s, _) = srv.delete(&format!("/v1/reservations/{h1}")).await;
    assert_eq!(s, StatusCode::OK);
    let h2 = ok(
        &srv,
        "/v1/reservations",
        json!({"sku": "tee", "qty": 1, "ttl_ms": 1}),
    )
    .await;
    let h2 = h2["id"].as_str().unwrap().to_owned();
    let h3 = ok(&srv, "/v1/reservations", json!({"sku": "tee", "qty": 3})).await;
    let h3 = h3["id"].as_str().unwrap().to_owned();
    let o = ok(
        &srv,
        "/v1/orders",
        json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 50.0, "lon": 8.0},
               "lines": [{"sku": "tee", "qty": 3, "reservation_id": h3}]}),
    )
    .await;
    let oid = o["id"].as_str().unwrap().to_owned();
    let f = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();
    for step in ["accept", "pick", "pack"] {
        ok(&srv, &format!("/v1/fulfillments/{f}/{step}"), json!({})).await;
    }
    ok(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        json!({"carrier": "dhl", "tracking": "t1"}),
    )
    .await;
    ok(&srv, &format!("/v1/fulfillments/{f}/deliver"), json!({})).await;
    let r = ok(
        &srv,
        &format!("/v1/orders/{oid}/returns"),
        json!({"lines": [{"sku": "tee", "qty": 1}], "reason": "too big"}),
    )
    .await;
    let ret = r["id"].as_str().unwrap().to_owned();
    ok(
        &srv,
        &format!("/v1/returns/{ret}/receive"),
        json!({"restock": true, "warehouse": "w2"}),
    )
    .await;
    // An order cancelled.
    let o2 = ok(
        &srv,
        "/v1/orders",
        json!({"channel": "web", "customer_id": "c2", "ship_to": {"lat": 50.0, "lon": 8.0},
               "lines": [{"sku": "tee", "qty": 1}]}),
    )
    .await;
    let o2 = o2["id"].as_str().unwrap().to_owned();
    ok(&srv, &format!("/v1/orders/{o2}/cancel"), json!({})).await;
    // Incoming stock announced, then partly received.
    let (s, rc) = srv
        .post(
            "/v1/stock/incoming",
            json!({"sku": "tee", "warehouse": "w2", "qty": 5, "expected_at": 1_900_000_000_000u64, "reference": "PO-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rc}");
    ok(&srv, "/v1/stock/incoming/tee~1/receive", json!({"qty": 2})).await;
    // The rest never comes: closed short.
    ok(
        &srv,
        "/v1/stock/incoming/tee~1/close",
        json!({"reason": "vendor shipped 2"}),
    )
    .await;
    // An order re-routed to the other warehouse: allocated moves rows.
    let o4 = ok(
        &srv,
        "/v1/orders",
        json!({"channel": "web", "customer_id": "c4", "ship_to": {"lat": 50.0, "lon": 8.0},
               "lines": [{"sku": "tee", "qty": 1}]}),
    )
    .await;
    let o4id = o4["id"].as_str().unwrap().to_owned();
    let from = o4["shipments"][0]["warehouse"].clone();
    let moved = ok(
        &srv,
        &format!("/v1/orders/{o4id}/reroute"),
        json!({"exclude": [from.clone()], "reason": "closed"}),
    )
    .await;
    assert_ne!(moved["shipments"][0]["warehouse"], from, "{moved}");
    // The short hold expires by itself.
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (_, h) = srv.get(&format!("/v1/reservations/{h2}")).await;
            h["status"] == "expired"
        })
        .await
    );

    let all = sums_match_stock(&srv, "tee").await;
    let list = summary(&all);
    has(
        &list,
        ("adjustment", "on_hand", 10, "adjustment", "receipt"),
    );
    has(
        &list,
        ("safety_stock", "safety_stock", 2, "adjustment", "policy"),
    );
    has(&list, ("hold", "reserved", 2, "hold", &h1));
    has(&list, ("release", "reserved", -2, "hold", &h1));
    has(&list, ("expiry", "reserved", -1, "hold", &h2));
    // Consuming a hold: two buckets of one row, two entries of one event.
    has(&list, ("order", "reserved", -3, "order", &oid));
    has(&list, ("order", "allocated", 3, "order", &oid));
    has(&list, ("shipment", "allocated", -3, "fulfillment", &f));
    has(&list, ("shipment", "on_hand", -3, "fulfillment", &f));
    has(&list, ("return", "on_hand", 1, "return", &ret));
    has(&list, ("order", "allocated", 1, "order", &o2));
    has(&list, ("cancellation", "allocated", -1, "order", &o2));
    has(&list, ("incoming", "incoming", 5, "receipt", "tee~1"));
    has(&list, ("receipt", "incoming", -2, "receipt", "tee~1"));
    has(&list, ("receipt", "on_hand", 2, "receipt", "tee~1"));
    has(
        &list,
        ("receipt_closed", "incoming", -3, "receipt", "tee~1"),
    );
    has(&list, ("reroute", "allocated", -1, "order", &o4id));
    has(&list, ("reroute", "allocated", 1, "order", &o4id));
    let order_entries: Vec<&Value> = all
        .iter()
        .filter(|e| e["reason"] == "order" && e["ref"]["id"] == oid.as_str())
        .collect();
    assert_eq!(order_entries[0]["seq"], order_entries[1]["seq"]);
    assert_eq!(
        order_entries[1]["after"],
        json!({"on_hand": 10, "reserved": 0, "allocated": 3, "safety_stock": 2, "incoming": 0})
    );
    // In log order, each once.
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    let at = all[0]["at"].as_u64().unwrap();
    assert!(at > 1_700_000_000_000, "dated by the clock: {at}");
}

#[tokio::test]
async fn pages_by_cursor_filter_by_warehouse_and_hold_their_limits() {
    let srv = Srv::start_with(|c| c.ledger.page_max = 4);
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 10), ("w2", 5)]).await;
    for i in 0..4 {
        let wh = if i % 2 == 0 { "w1" } else { "w2" };
        ok(
            &srv,
            "/v1/stock/adjustments",
            json!({"sku": "tee", "warehouse": wh, "delta": 1, "reason": format!("count {i}")}),
        )
        .await;
    }
    let whole = entries(&srv, "tee", None, 4).await;
    assert_eq!(whole.len(), 6);
    for limit in 1..=4 {
        let paged = entries(&srv, "tee", None, limit).await;
        assert_eq!(paged, whole, "limit {limit}");
    }
    let w1 = entries(&srv, "tee", Some("w1"), 1).await;
    let w2 = entries(&srv, "tee", Some("w2"), 3).await;
    assert_eq!((w1.len(), w2.len()), (3, 3));
    assert!(w1.iter().all(|e| e["warehouse"] == "w1"));
    assert!(w2.iter().all(|e| e["warehouse"] == "w2"));
    // The default page is page_max.
    let (_, page) = srv.get("/v1/skus/tee/ledger").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 4);
    assert!(page["next_cursor"].is_string());
    // Limits at their edges, and malformed input.
    for (path, status, code) in [
        ("/v1/skus/tee/ledger?limit=0", 400, "invalid_field"),
        ("/v1/skus/tee/ledger?limit=5", 400, "invalid_field"),
        ("/v1/skus/tee/ledger?after=xyz", 400, "invalid_field"),
        (
            "/v1/skus/tee/ledger?warehouse=no%20such",
            400,
            "invalid_field",
        ),
        ("/v1/skus/tee/ledger?colour=red", 400, "invalid_field"),
        ("/v1/skus/nope/ledger", 404, "sku_not_found"),
    ] {
        let (s, b) = srv.get(path).await;
        assert_eq!(
            (s.as_u16(), b["code"].as_str()),
            (status, Some(code)),
            "{path}: {b}"
        );
    }
    let (s, _) = srv.get("/v1/skus/tee/ledger?limit=4").await;
    assert_eq!(s, StatusCode::OK);
    // A cursor past the end: an empty last page.
    let (s, page) = srv
        .get("/v1/skus/tee/ledger?after=ffffffffffffffffffffffff")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        page,
        json!({"sku": "tee", "entries": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn survives_restart_snapshots_and_log_truncation() {
    let every = 10u64;
    let srv = Srv::start_with(|c| {
        c.snapshot_every_events = every;
        c.ledger.read_wait_ms = 20_000;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 100)]).await;
    for i in 0..40 {
        let h = ok(&srv, "/v1/reservations", json!({"sku": "tee", "qty": 1})).await;
        if i % 2 == 0 {
            srv.delete(&format!("/v1/reservations/{}", h["id"].as_str().unwrap()))
                .await;
        }
    }
    let surge = srv.bg().surge.clone();
    let stats = surge.checkpoint_stats();
    let seq = surge.durable_seq();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .last_seq
            .load(Ordering::Acquire)
            + every
            > seq)
        .await,
        "no snapshot near the log's end"
    );
    let before = sums_match_stock(&srv, "tee").await;
    assert_eq!(before.len(), 1 + 40 + 20);
    drop(surge);
    // After a restart, the log before the snapshot is gone; the ledger
    // keeps every entry, and goes on from where it was, without a repeat.
    let srv = srv.restart();
    assert_eq!(entries(&srv, "tee", None, 500).await, before);
    ok(
        &srv,
        "/v1/stock/adjustments",
        json!({"sku": "tee", "warehouse": "w1", "delta": -5, "reason": "damaged"}),
    )
    .await;
    let after = sums_match_stock(&srv, "tee").await;
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[..before.len()], before[..]);
    let keys: BTreeSet<(u64, String, String)> = after
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["bucket"].to_string(),
                e["reason"].to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), after.len(), "no entry twice");
}

#[tokio::test]
async fn opening_balances_when_the_ledger_starts_over_existing_data() {
    let srv = Srv::start_with(|c| {
        c.ledger.enabled = false;
        c.ledger.read_wait_ms = 20_000;
        c.snapshot_every_events = 5;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 7)]).await;
    for _ in 0..6 {
        ok(&srv, "/v1/reservations", json!({"sku": "tee", "qty": 1})).await;
    }
    let (s, b) = srv.get("/v1/skus/tee/ledger").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ledger_disabled"))
    );
    let stats = srv.bg().surge.checkpoint_stats();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .snapshots
            .load(Ordering::Acquire)
            > 0)
        .await
    );
    let mut srv = srv;
    srv.config.ledger.enabled = true;
    let srv = srv.restart();
    let all = sums_match_stock(&srv, "tee").await;
    assert!(
        all.iter()
            .any(|e| e["reason"] == "opening" && e["ref"].is_null()),
        "{all:#?}"
    );
}

#[tokio::test]
async fn retention_prunes_only_entries_past_it() {
    const DAY: u64 = 86_400_000;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let srv = Srv::start_custom(
        Arc::new(surge::wal::store::MemStore::new()),
        clock.clone(),
        |c| {
            c.ledger.retention_days = 400;
            c.ledger.prune_every_ms = 1;
            c.ledger.prune_scan_max = 2;
        },
    );
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 3)]).await;
    assert_eq!(entries(&srv, "tee", None, 10).await.len(), 1);
    clock.advance(300 * DAY);
    ok(
        &srv,
        "/v1/stock/adjustments",
        json!({"sku": "tee", "warehouse": "w1", "delta": 2, "reason": "later"}),
    )
    .await;
    assert_eq!(entries(&srv, "tee", None, 10).await.len(), 2);
    // The first entry is 401 days old, the second 101.
    clock.advance(101 * DAY);
    let progress = srv.bg().surge.ledger_progress().clone();
    assert!(
        eventually(Duration::from_secs(20), async || progress
            .pruned
            .load(Ordering::Acquire)
            == 1)
        .await
    );
    let left = entries(&srv, "tee", None, 10).await;
    assert_eq!(
        summary(&left),
        vec![(
            "adjustment".into(),
            "on_hand".into(),
            2,
            "adjustment".into(),
            "later".into()
        )]
    );
    assert_eq!(progress.pruned.load(Ordering::Acquire), 1);
}

#[tokio::test]
async fn a_ledger_behind_answers_ledger_behind_and_catches_up() {
    let srv = Srv::start_with(|c| {
        c.ledger.read_wait_ms = 3_000;
        c.ledger.lag_events_max = 3;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 3)]).await;
    let progress = srv.bg().surge.ledger_progress().clone();
    // Already lag_events_max behind before its first read of the log.
    let synced = srv.bg().surge.durable_seq();
    assert!(
        eventually(Duration::from_secs(20), async || progress
            .seq
            .load(Ordering::Acquire)
            >= synced)
        .await
    );
    assert_eq!(entries(&srv, "tee", None, 10).await.len(), 1);
    progress.paused.store(true, Ordering::Release);
    let adjust = async || {
        ok(
            &srv,
            "/v1/stock/adjustments",
            json!({"sku": "tee", "warehouse": "w1", "delta": 1, "reason": "count"}),
        )
        .await;
    };
    adjust().await;
    // Behind by one event: waits read_wait_ms, then 503.
    let started = Instant::now();
    let (s, b) = srv.get("/v1/skus/tee/ledger").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ledger_behind")),
        "{b}"
    );
    assert!(started.elapsed() >= Duration::from_millis(3_000));
    assert_eq!(b["lag_events"], 1);
    let m = srv
        .client
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("surge_ledger_lag_events 1"), "{m}");
    assert!(m.contains("surge_ledger_failures_total 0"), "{m}");
    // lag_events_max behind: 503 at once, whatever the wait.
    adjust().await;
    adjust().await;
    let started = Instant::now();
    let (s, b) = srv.get("/v1/skus/tee/ledger").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ledger_behind"))
    );
    assert_eq!(b["lag_events"], 3);
    // (Without the wait: well below read_wait_ms even on a loaded machine.)
    assert!(started.elapsed() < Duration::from_millis(3_000));
    progress.paused.store(false, Ordering::Release);
    let synced = srv.bg().surge.durable_seq();
    assert!(
        eventually(Duration::from_secs(20), async || progress
            .seq
            .load(Ordering::Acquire)
            >= synced)
        .await
    );
    let all = sums_match_stock(&srv, "tee").await;
    assert_eq!(all.len(), 4);
}

#[tokio::test]
async fn a_client_sees_its_own_change_at_once() {
    let srv = Srv::start_with(|c| c.ledger.read_wait_ms = 10_000);
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 3)]).await;
    for i in 1..=3u64 {
        ok(&srv, "/v1/reservations", json!({"sku": "tee", "qty": 1})).await;
        // No waiting by the test: the read waits for the ledger itself.
        let all = entries(&srv, "tee", None, 500).await;
        assert_eq!(all.len() as u64, 1 + i);
        assert_eq!(all.last().unwrap()["after"]["reserved"], i);
    }
}
