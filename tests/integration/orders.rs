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

/// `GET /v1/orders`: newest first, each filter alone and together, pages
/// that cover every order once while new orders come in, and bad queries
/// refused with the field they name.
#[tokio::test]
async fn orders_are_listed_newest_first_filtered_and_paged() {
    let srv = Srv::start_with(|c| {
        c.orders_page_max = 3;
        c.orders_page_default = 2;
    });
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("a", None, &[("w1", 100)]).await;
    srv.sku("b", None, &[("w2", 100)]).await;
    let place = |channel: &'static str, customer: &'static str, sku: &'static str| {
        let srv = &srv;
        async move {
            let (s, o) = srv
                .post(
                    "/v1/orders",
                    json!({"channel": channel, "customer_id": customer,
                           "ship_to": {"lat": 1.0, "lon": 1.0},
                           "lines": [{"sku": sku, "qty": 1}]}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{o}");
            o["id"].as_str().unwrap().to_owned()
        }
    };
    let mut ids = Vec::new();
    for (ch, cu, sku) in [
        ("web", "c1", "a"),
        ("app", "c2", "b"),
        ("web", "c2", "a"),
        ("app", "c1", "a"),
        ("web", "c1", "b"),
    ] {
        ids.push(place(ch, cu, sku).await);
    }
    let (s, _) = srv
        .post(&format!("/v1/orders/{}/cancel", ids[1]), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let list = |q: String| {
        let srv = &srv;
        async move {
            let (s, page) = srv.get(&format!("/v1/orders{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {page}");
            let got: Vec<String> = page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect();
            (got, page["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let pick = |i: &[usize]| i.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>();

    // The default page size, newest first.
    assert_eq!(list(String::new()).await.0, pick(&[4, 3]));
    for (q, want) in [
        ("?status=cancelled", vec![1]),
        ("?status=ready&limit=3", vec![4, 3, 2, 0]),
        ("?status=shipped", vec![]),
        ("?channel=web&limit=3", vec![4, 2, 0]),
        ("?customer_id=c2", vec![2, 1]),
        ("?warehouse=w2", vec![4, 1]),
        ("?channel=web&customer_id=c1&warehouse=w1", vec![0]),
        ("?channel=none", vec![]),
    ] {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let q = match &cursor {
                None => q.to_owned(),
                Some(c) => format!("{q}&cursor={c}"),
            };
            let (page, next) = list(q).await;
            got.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(got, pick(&want), "{q}");
    }
    // Time bounds: at or after, and before, the third order's creation
    // (orders may share a millisecond: expected from their own times).
    let mut created = Vec::new();
    for id in &ids {
        let (_, o) = srv.get(&format!("/v1/orders/{id}")).await;
        created.push(o["created_at"].as_u64().unwrap());
    }
    let t = created[2];
    let newest_first = |keep: &dyn Fn(u64) -> bool| -> Vec<String> {
        (0..ids.len())
            .rev()
            .filter(|&i| keep(created[i]))
            .take(3)
            .map(|i| ids[i].clone())
            .collect()
    };
    let (after, _) = list(format!("?created_after={t}&limit=3")).await;
    assert_eq!(after, newest_first(&|c| c >= t));
    let (before, _) = list(format!("?created_before={t}&limit=3")).await;
    assert_eq!(before, newest_first(&|c| c < t));
    let (none, next) = list(format!("?created_after={}", t + 3_600_000)).await;
    assert!(none.is_empty() && next.is_none());

    // Paging while orders come in: every order there was at the first page
    // is seen exactly once, and the new ones are not in the later pages.
    let (first, mut cursor) = list("?limit=2".into()).await;
    let mut seen = first;
    for sku in ["a", "b", "a"] {
        place("web", "c9", sku).await;
        let (page, next) = list(format!("?limit=2&cursor={}", cursor.unwrap())).await;
        seen.extend(page);
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    while let Some(c) = cursor {
        let (page, next) = list(format!("?limit=2&cursor={c}")).await;
        seen.extend(page);
        cursor = next;
    }
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(seen, want);

    // Bad queries name their field.
    for (q, field) in [
        ("?limit=0", "limit"),
        ("?limit=4", "limit"),
        ("?status=placed", "status"),
        ("?status=shipping", "status"),
        ("?channel=a%20b", "channel"),
        ("?cursor=zzz", "cursor"),
        ("?cursor=o", "cursor"),
        ("?cursor=o%2B1", "cursor"),
        ("?cursor=o0", "cursor"),
        ("?cursor=o01", "cursor"),
        ("?cursor=oA", "cursor"),
        ("?limit=abc", "limit"),
        ("?limit=", "limit"),
        ("?created_after=-1", "created_after"),
        ("?created_before=1.5", "created_before"),
        ("?created_after=5&created_before=5", "created_before"),
        ("?nope=1", "query"),
    ] {
        let (s, e) = srv.get(&format!("/v1/orders{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert_eq!(e["code"], "invalid_field", "{q}: {e}");
        assert_eq!(e["field"], field, "{q}: {e}");
    }
    // The largest page is allowed.
    assert_eq!(list("?limit=3".into()).await.0.len(), 3);
}

/// A page looks at `orders_scan_max` orders at most: a filter that matches
/// none of them answers an empty page that still goes on, and the pages
/// together find the match. Ids refused placements used up are not looked
/// at.
#[tokio::test]
async fn a_page_looks_at_a_bounded_number_of_orders() {
    let srv = Srv::start_with(|c| c.orders_scan_max = 2);
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 100)]).await;
    for (customer, qty) in [("rare", 1), ("c", 1000), ("c", 1000), ("c", 1000)]
        .into_iter()
        .chain([("c", 1); 4])
    {
        let (s, o) = srv
            .post(
                "/v1/orders",
                json!({"channel": "web", "customer_id": customer,
                       "ship_to": {"lat": 1.0, "lon": 1.0},
                       "lines": [{"sku": "a", "qty": qty}]}),
            )
            .await;
        let placed = if qty == 1 {
            StatusCode::CREATED
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(s, placed, "{o}");
    }
    let mut pages = Vec::new();
    let mut q = "/v1/orders?customer_id=rare".to_owned();
    loop {
        let (s, page) = srv.get(&q).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        pages.push(page["orders"].as_array().unwrap().len());
        match page["next_cursor"].as_str() {
            Some(c) => q = format!("/v1/orders?customer_id=rare&cursor={c}"),
            None => break,
        }
    }
    // Four orders after the refusals, two a page, then the match.
    assert_eq!(pages, vec![0, 0, 1]);
}

/// Paging while orders are placed concurrently: every order acknowledged
/// before the first page is listed exactly once, and no order twice.
#[tokio::test]
async fn paging_while_orders_are_placed_lists_each_order_once() {
    let srv = Srv::start_with(|c| c.orders_page_max = 7);
    srv.warehouse("w1", 1).await;
    let skus = ["a", "b", "c", "d"];
    for sku in skus {
        srv.sku(sku, None, &[("w1", 10_000)]).await;
    }
    let place = |client: reqwest::Client, url: String, i: usize| async move {
        let sku = ["a", "b", "c", "d"][i % 4];
        let res = client
            .post(url)
            .json(&json!({"channel": "web", "customer_id": format!("c{i}"),
                "ship_to": {"lat": 1.0, "lon": 1.0},
                "lines": [{"sku": sku, "qty": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let o: serde_json::Value = res.json().await.unwrap();
        o["id"].as_str().unwrap().to_owned()
    };
    let url = srv.url("/v1/orders");
    let mut before = Vec::new();
    for i in 0..300 {
        before.push(place(srv.client.clone(), url.clone(), i).await);
    }
    // One page finds the one match far down, past the ids read under one
    // lock of the index.
    let (s, page) = srv.get("/v1/orders?customer_id=c1").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["orders"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["orders"][0]["id"].as_str(), Some(before[1].as_str()));
    assert!(page["next_cursor"].is_null(), "{page}");
    // Placements run on their own tasks, several at once, while the pages
    // are read.
    let placing: Vec<_> = (300..360)
        .map(|i| tokio::spawn(place(srv.client.clone(), url.clone(), i)))
        .collect();
    let mut seen = Vec::new();
    let mut q = "/v1/orders?limit=7".to_owned();
    loop {
        let (s, page) = srv.get(&q).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for o in page["orders"].as_array().unwrap() {
            seen.push(o["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => q = format!("/v1/orders?limit=7&cursor={c}"),
            None => break,
        }
    }
    let mut during = Vec::new();
    for p in placing {
        during.push(p.await.unwrap());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an order in two pages: {seen:?}");
    for id in &before {
        assert!(
            seen.contains(id),
            "{id} acknowledged before paging is missing"
        );
    }
    assert!(seen
        .iter()
        .all(|id| before.contains(id) || during.contains(id)));
}

/// Orders the scale test places before it pages: the 10,000.
/// `orders_scan_max` is lowered from its default 10,000 to
/// `SCALE_SCAN_MAX` so that filtered pages stop at the scan bound and go
/// on from their cursor many times over, as they would over a store ten
/// times larger with the default.
const SCALE_ORDERS: usize = 10_000;
/// Orders one page looks at, at most, in the scale test.
const SCALE_SCAN_MAX: usize = 1_000;
/// Placements the scale test has in flight at once.
const SCALE_IN_FLIGHT: usize = 64;
/// Placements at most while the pages are read.
const SCALE_DURING_MAX: usize = 1_000;

/// One placed order as the scale test knows it.
#[derive(Clone, Debug)]
struct Placed {
    id: String,
    channel: &'static str,
    customer: String,
    warehouse: String,
    created_at: u64,
}

/// Places order `i` of the scale test: channel, customer and SKU (so the
/// warehouse) follow from `i` with different periods, so every
/// combination occurs.
async fn place_scaled(client: &reqwest::Client, url: &str, i: usize) -> Placed {
    let channel = ["web", "app"][i % 2];
    let customer = format!("c{}", i % 7);
    let sku = if i % 3 == 0 { "b" } else { "a" };
    let res = client
        .post(url)
        .json(&json!({"channel": channel, "customer_id": customer,
            "ship_to": {"lat": 1.0, "lon": 1.0},
            "lines": [{"sku": sku, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let o: serde_json::Value = res.json().await.unwrap();
    Placed {
        id: o["id"].as_str().unwrap().to_owned(),
        channel,
        customer,
        warehouse: o["fulfillments"][0]["warehouse"]
            .as_str()
            .unwrap()
            .to_owned(),
        created_at: o["created_at"].as_u64().unwrap(),
    }
}

/// Reads every page of `GET /v1/orders?limit={limit}&{query}`; the ids
/// in the order they came.
async fn all_pages(srv: &Srv, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let first = match query {
        "" => format!("/v1/orders?limit={limit}"),
        _ => format!("/v1/orders?limit={limit}&{query}"),
    };
    let mut q = first.clone();
    // Each page moves the cursor past at least one order: bounded by the
    // orders there can be.
    for _ in 0..=(SCALE_ORDERS + SCALE_DURING_MAX) {
        let (s, page) = srv.get(&q).await;
        assert_eq!(s, StatusCode::OK, "{q}: {page}");
        for o in page["orders"].as_array().unwrap() {
            seen.push(o["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => q = format!("{first}&cursor={c}"),
            None => return seen,
        }
    }
    panic!("{query}: more pages than orders");
}

/// The case at scale: `SCALE_ORDERS` orders, placed concurrently,
/// paged through with a small `limit` while more are placed: each order
/// acknowledged before the first page is listed exactly once and none
/// twice; filters combined (status, channel, customer, warehouse and a
/// time window) give exactly the matching orders, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_over_thousands_of_orders_lists_each_once_and_filters_combine() {
    let srv = Srv::start_with(|c| {
        c.rate_limit_customer_per_sec = 0;
        c.orders_scan_max = SCALE_SCAN_MAX;
    });
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    let stock = (2 * (SCALE_ORDERS + SCALE_DURING_MAX)) as i64;
    srv.sku("a", None, &[("w1", stock)]).await;
    srv.sku("b", None, &[("w2", stock)]).await;
    let url = srv.url("/v1/orders");

    // A fixed number of tasks take the next index until all are placed.
    let started = std::time::Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let placers: Vec<_> = (0..SCALE_IN_FLIGHT)
        .map(|_| {
            let (client, url, next) = (srv.client.clone(), url.clone(), next.clone());
            tokio::spawn(async move {
                let mut placed = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= SCALE_ORDERS {
                        return placed;
                    }
                    placed.push((i, place_scaled(&client, &url, i).await));
                }
            })
        })
        .collect();
    let mut placed: Vec<(usize, Placed)> = Vec::with_capacity(SCALE_ORDERS);
    for p in placers {
        placed.extend(p.await.unwrap());
    }
    println!(
        "placed {SCALE_ORDERS} orders, {SCALE_IN_FLIGHT} at a time, in {:?}",
        started.elapsed()
    );
    placed.sort_by_key(|(i, _)| *i);
    let mut before: Vec<Placed> = placed.into_iter().map(|(_, p)| p).collect();

    // Every 25th is cancelled (25 is prime to the periods of channel,
    // customer and SKU, so the cancelled ones have every combination).
    for p in before.iter().step_by(25) {
        let (s, b) = srv
            .post(&format!("/v1/orders/{}/cancel", p.id), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let cancelled: std::collections::HashSet<String> =
        before.iter().step_by(25).map(|p| p.id.clone()).collect();

    // Pages of 20 while placements go on, on their own tasks.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let during_next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let during_placers: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (srv.client.clone(), url.clone());
            let (stop, next) = (stop.clone(), during_next.clone());
            tokio::spawn(async move {
                let mut placed = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= SCALE_DURING_MAX {
                        break;
                    }
                    placed.push(place_scaled(&client, &url, SCALE_ORDERS + i).await.id);
                }
                placed
            })
        })
        .collect();
    let paging = std::time::Instant::now();
    let seen = all_pages(&srv, "", 20).await;
    stop.store(true, Ordering::Relaxed);
    let mut during = std::collections::HashSet::new();
    for p in during_placers {
        during.extend(p.await.unwrap());
    }
    println!(
        "paged {} orders in {:?} while {} more were placed",
        seen.len(),
        paging.elapsed(),
        during.len()
    );
    assert!(!during.is_empty(), "placements ran while paging");
    let mut times: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for id in &seen {
        *times.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "orders in two pages: {twice:?}");
    for p in &before {
        assert_eq!(
            times.get(p.id.as_str()),
            Some(&1),
            "{} acknowledged before paging",
            p.id
        );
    }
    let known: std::collections::HashSet<&str> = before.iter().map(|p| p.id.as_str()).collect();
    assert!(seen
        .iter()
        .all(|id| known.contains(id.as_str()) || during.contains(id)));

    // Filters combined over the mix: a time window from the middle of the
    // placements, both statuses.
    before.sort_by_key(|p| std::cmp::Reverse(id_number(&p.id)));
    let after = before[SCALE_ORDERS * 3 / 4].created_at;
    let until = before[SCALE_ORDERS / 4].created_at;
    assert!(after < until, "the placements spread over time");
    for (status, channel, customer, warehouse) in [
        ("ready", "web", "c3", "w1"),
        ("ready", "app", "c5", "w2"),
        ("cancelled", "web", "c2", "w1"),
        ("cancelled", "app", "c0", "w2"),
    ] {
        let want: Vec<String> = before
            .iter()
            .filter(|p| {
                cancelled.contains(&p.id) == (status == "cancelled")
                    && p.channel == channel
                    && p.customer == customer
                    && p.warehouse == warehouse
                    && p.created_at >= after
                    && p.created_at < until
            })
            .map(|p| p.id.clone())
            .collect();
        assert!(
            !want.is_empty(),
            "{status} {channel} {customer} {warehouse}"
        );
        let q = format!(
            "status={status}&channel={channel}&customer_id={customer}&warehouse={warehouse}\
             &created_after={after}&created_before={until}"
        );
        assert_eq!(all_pages(&srv, &q, 20).await, want, "{q}");
    }
}
