//! Incoming stock (receipts announced and received) and low-stock
//! thresholds, through the HTTP API and the feed: incoming is never
//! sellable, receipts add to `on_hand`, limits hold at their edge,
//! `low_stock` / `stock_recovered` fire once per crossing, and receipts and
//! thresholds survive a restart from the log and from a snapshot.

use crate::common::Srv;
use crate::holds::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use surge::wal::store::MemStore;

async fn setup(srv: &Srv) {
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
}

async fn expect(srv: &Srv, sku: &str, wh: &str, qty: u64) -> (StatusCode, Value) {
    srv.post(
        "/v1/stock/incoming",
        json!({"sku": sku, "warehouse": wh, "qty": qty, "expected_at": 1_900_000_000_000u64, "reference": "PO-7"}),
    )
    .await
}

async fn receive(srv: &Srv, id: &str, qty: u64) -> (StatusCode, Value) {
    srv.post(
        &format!("/v1/stock/incoming/{id}/receive"),
        json!({"qty": qty}),
    )
    .await
}

fn row<'a>(stock: &'a Value, wh: &str) -> &'a Value {
    stock["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["warehouse"] == wh)
        .unwrap()
}

/// The feed's events of these kinds so far, as JSON.
async fn fed(srv: &Srv, kinds: &[&str]) -> Vec<Value> {
    let surge = &srv.bg().surge;
    surge.caught_up().await.unwrap();
    match surge.feed().read(1, 100_000, |_| true) {
        surge::feed::Read::Msgs(msgs, _) => msgs
            .iter()
            .map(|m| serde_json::from_str::<Value>(&m.json()).unwrap())
            .filter(|v| kinds.iter().any(|k| v["event"] == *k))
            .collect(),
        surge::feed::Read::Gone { .. } => panic!("the window is large enough"),
    }
}

#[tokio::test]
async fn a_receipt_counts_as_incoming_until_received_and_is_never_sellable() {
    let srv = Srv::start();
    setup(&srv).await;
    let (s, r) = expect(&srv, "tee", "w1", 50).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["id"], "tee~1");
    assert_eq!(
        (
            &r["status"],
            &r["qty"],
            &r["received"],
            &r["outstanding"],
            &r["reference"]
        ),
        (
            &json!("open"),
            &json!(50),
            &json!(0),
            &json!(50),
            &json!("PO-7")
        )
    );
    // A receipt into a warehouse without stock makes its row.
    let (s, r2) = expect(&srv, "tee", "w2", 5).await;
    assert_eq!((s, r2["id"].as_str()), (StatusCode::CREATED, Some("tee~2")));

    let stock = srv.stock("tee").await;
    assert_eq!(
        (&stock["on_hand"], &stock["available"], &stock["incoming"]),
        (&json!(10), &json!(10), &json!(55))
    );
    assert_eq!(
        (
            &row(&stock, "w1")["incoming"],
            &row(&stock, "w1")["available"]
        ),
        (&json!(50), &json!(10))
    );
    assert_eq!(
        (
            &row(&stock, "w2")["incoming"],
            &row(&stock, "w2")["on_hand"]
        ),
        (&json!(5), &json!(0))
    );

    // Incoming is not sellable: a hold for more than on hand fails.
    let (s, b) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 11}))
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_stock"))
    );
    // Nor can an order take it.
    let (s, _) = srv
        .post("/v1/orders", json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0}, "lines": [{"sku": "tee", "qty": 11}]}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A partial receipt: on_hand grows by exactly it, incoming shrinks.
    let (s, r) = receive(&srv, "tee~1", 20).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["received"], &r["outstanding"], &r["status"]),
        (&json!(20), &json!(30), &json!("open"))
    );
    let stock = srv.stock("tee").await;
    assert_eq!(
        (
            &row(&stock, "w1")["on_hand"],
            &row(&stock, "w1")["incoming"],
            &stock["available"]
        ),
        (&json!(30), &json!(30), &json!(30))
    );
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 11}))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Over-receipt is refused and changes nothing.
    let (s, b) = receive(&srv, "tee~1", 31).await;
    assert_eq!(
        (s, b["code"].as_str(), &b["outstanding"]),
        (StatusCode::CONFLICT, Some("over_receipt"), &json!(30))
    );
    // The rest closes it.
    let (s, r) = receive(&srv, "tee~1", 30).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&r["status"], &r["outstanding"]),
        (&json!("closed"), &json!(0))
    );
    assert!(r["closed_at"].as_u64().is_some());
    let (s, b) = receive(&srv, "tee~1", 1).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("incoming_closed"))
    );
    let (s, g) = srv.get("/v1/stock/incoming/tee~1").await;
    assert_eq!((s, g), (StatusCode::OK, r));
    let stock = srv.stock("tee").await;
    assert_eq!(
        (&row(&stock, "w1")["on_hand"], &stock["incoming"]),
        (&json!(60), &json!(5))
    );

    // The feed told of both receipts and the units received.
    let fed = fed(&srv, &["incoming_expected", "incoming_received"]).await;
    let kinds: Vec<&str> = fed.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "incoming_expected",
            "incoming_expected",
            "incoming_received",
            "incoming_received"
        ]
    );
    assert_eq!(
        (&fed[3]["qty"], &fed[3]["receipt"]["status"]),
        (&json!(30), &json!("closed"))
    );
}

#[tokio::test]
async fn bad_receipts_are_refused_with_their_codes() {
    let srv = Srv::start();
    setup(&srv).await;
    let code = |r: &(StatusCode, Value)| (r.0, r.1["code"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        code(&expect(&srv, "nope", "w1", 5).await),
        (StatusCode::NOT_FOUND, "sku_not_found".into())
    );
    assert_eq!(
        code(&expect(&srv, "tee", "w9", 5).await),
        (StatusCode::NOT_FOUND, "warehouse_not_found".into())
    );
    assert_eq!(
        code(&expect(&srv, "tee", "w1", 0).await),
        (StatusCode::BAD_REQUEST, "invalid_field".into())
    );
    let max = srv.config.qty_max;
    assert_eq!(
        code(&expect(&srv, "tee", "w1", max + 1).await),
        (StatusCode::BAD_REQUEST, "invalid_field".into())
    );
    let (s, b) = srv
        .post(
            "/v1/stock/incoming",
            json!({"sku": "tee", "warehouse": "w1", "qty": 1, "expected_at": 0, "reference": " "}),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reference"))
    );
    let long = "x".repeat(srv.config.text_len_max + 1);
    let (s, b) = srv
        .post(
            "/v1/stock/incoming",
            json!({"sku": "tee", "warehouse": "w1", "qty": 1, "expected_at": 0, "reference": long}),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reference"))
    );
    // Unknown receipts, well formed or not, and of unknown SKUs.
    for id in ["tee~9", "tee", "tee~0", "nope~1", "~1"] {
        assert_eq!(
            code(&srv.get(&format!("/v1/stock/incoming/{id}")).await).0,
            StatusCode::NOT_FOUND,
            "{id}"
        );
        assert_eq!(
            code(&receive(&srv, id, 1).await),
            (StatusCode::NOT_FOUND, "incoming_not_found".into()),
            "{id}"
        );
    }
    let (_, r) = expect(&srv, "tee", "w1", 3).await;
    let id = r["id"].as_str().unwrap();
    assert_eq!(
        code(&receive(&srv, id, 0).await),
        (StatusCode::BAD_REQUEST, "invalid_field".into())
    );
    // Nothing above changed the stock.
    let stock = srv.stock("tee").await;
    assert_eq!(
        (&stock["on_hand"], &stock["incoming"]),
        (&json!(10), &json!(3))
    );
}

#[tokio::test]
async fn open_receipts_closed_ones_kept_and_pages_are_bounded_at_their_edge() {
    let srv = Srv::start_with(|c| {
        c.incoming.open_max = 2;
        c.incoming.closed_kept_max = 1;
        c.incoming.page_max = 2;
    });
    setup(&srv).await;
    assert_eq!(expect(&srv, "tee", "w1", 1).await.0, StatusCode::CREATED);
    assert_eq!(expect(&srv, "tee", "w2", 1).await.0, StatusCode::CREATED);
    let (s, b) = expect(&srv, "tee", "w1", 1).await;
    assert_eq!(
        (s, b["code"].as_str(), &b["max"]),
        (
            StatusCode::CONFLICT,
            Some("incoming_limit_reached"),
            &json!(2)
        )
    );
    // Closing one makes room for exactly one more.
    assert_eq!(receive(&srv, "tee~1", 1).await.0, StatusCode::OK);
    assert_eq!(expect(&srv, "tee", "w1", 1).await.1["id"], "tee~3");
    assert_eq!(
        expect(&srv, "tee", "w1", 1).await.1["code"],
        "incoming_limit_reached"
    );
    // One closed receipt is kept: closing a second forgets the first.
    assert_eq!(srv.get("/v1/stock/incoming/tee~1").await.0, StatusCode::OK);
    assert_eq!(receive(&srv, "tee~2", 1).await.0, StatusCode::OK);
    assert_eq!(
        srv.get("/v1/stock/incoming/tee~1").await.1["code"],
        "incoming_not_found"
    );
    assert_eq!(
        srv.get("/v1/stock/incoming/tee~2").await.1["status"],
        "closed"
    );

    // Pages: tee~2 (closed) and tee~3 (open), then the other SKU's.
    srv.sku("cap", None, &[]).await;
    assert_eq!(expect(&srv, "cap", "w2", 4).await.1["id"], "cap~1");
    let ids = |v: &Value| -> Vec<String> {
        v["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, p1) = srv.get("/v1/stock/incoming?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    assert_eq!(ids(&p1), ["cap~1", "tee~2"]);
    let (_, p2) = srv
        .get(&format!(
            "/v1/stock/incoming?after={}",
            p1["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (ids(&p2), &p2["next_cursor"]),
        (vec!["tee~3".to_owned()], &Value::Null)
    );
    let (_, by_sku) = srv.get("/v1/stock/incoming?sku=tee&warehouse=w1").await;
    assert_eq!(ids(&by_sku), ["tee~3"]);
    let (s, b) = srv.get("/v1/stock/incoming?limit=3").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    assert_eq!(
        srv.get("/v1/stock/incoming?limit=0").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        srv.get("/v1/stock/incoming?sku=nope").await.1["code"],
        "sku_not_found"
    );
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_same_receipt() {
    let srv = Srv::start();
    setup(&srv).await;
    let body =
        json!({"sku": "tee", "warehouse": "w1", "qty": 4, "expected_at": 5, "reference": "ASN-1"});
    let (s, first) = srv
        .post_idem("/v1/stock/incoming", body.clone(), "k1")
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, again) = srv.post_idem("/v1/stock/incoming", body, "k1").await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let (s, b) = srv
        .post_idem("/v1/stock/incoming", json!({"sku": "tee", "warehouse": "w1", "qty": 5, "expected_at": 5, "reference": "ASN-1"}), "k1")
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    assert_eq!(srv.stock("tee").await["incoming"], 4);
}

#[tokio::test]
async fn low_stock_fires_once_per_crossing_at_the_edge() {
    let srv = Srv::start();
    setup(&srv).await;
    // Threshold 5 on the total; available is 10.
    let (s, v) = srv
        .put(
            "/v1/skus/tee",
            json!({"name": "tee", "low_stock_threshold": 5}),
        )
        .await;
    assert_eq!((s, &v["low_stock_threshold"]), (StatusCode::OK, &json!(5)));
    let hold = async |qty: u64| {
        let (s, b) = srv
            .post("/v1/reservations", json!({"sku": "tee", "qty": qty}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_str().unwrap().to_owned()
    };
    let kinds = ["low_stock", "stock_recovered"];
    let h1 = hold(4).await; // 6 left: one above
    assert!(fed(&srv, &kinds).await.is_empty());
    let h2 = hold(1).await; // 5 left: exactly at it
    let got = fed(&srv, &kinds).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            &got[0]["event"],
            &got[0]["available"],
            &got[0]["threshold"],
            &got[0]["warehouse"]
        ),
        (&json!("low_stock"), &json!(5), &json!(5), &Value::Null)
    );
    let h3 = hold(1).await; // 4 left: one below, still low: nothing more
    assert_eq!(fed(&srv, &kinds).await.len(), 1);
    srv.delete(&format!("/v1/reservations/{h3}")).await; // 5: still low
    assert_eq!(fed(&srv, &kinds).await.len(), 1);
    srv.delete(&format!("/v1/reservations/{h2}")).await; // 6: recovered
    let got = fed(&srv, &kinds).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        (&got[1]["event"], &got[1]["available"]),
        (&json!("stock_recovered"), &json!(6))
    );
    srv.delete(&format!("/v1/reservations/{h1}")).await; // 10: no repeat
    assert_eq!(fed(&srv, &kinds).await.len(), 2);

    // A row's threshold, on the row's available; a receipt crosses back.
    let (s, _) = srv
        .send(
            reqwest::Method::PATCH,
            "/v1/skus/tee",
            Some(json!({"low_stock_thresholds": {"w1": 10}})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = fed(&srv, &kinds).await;
    assert_eq!(
        got.len(),
        3,
        "setting a threshold at available is low at once"
    );
    assert_eq!(
        (&got[2]["event"], &got[2]["warehouse"]),
        (&json!("low_stock"), &json!("w1"))
    );
    let (_, r) = expect(&srv, "tee", "w1", 5).await;
    assert_eq!(
        fed(&srv, &kinds).await.len(),
        3,
        "incoming is not available"
    );
    receive(&srv, r["id"].as_str().unwrap(), 1).await;
    let got = fed(&srv, &kinds).await;
    assert_eq!(got.len(), 4);
    assert_eq!(
        (&got[3]["event"], &got[3]["warehouse"], &got[3]["available"]),
        (&json!("stock_recovered"), &json!("w1"), &json!(11))
    );
    // Clearing a threshold that is not low says nothing.
    let (s, v) = srv
        .send(
            reqwest::Method::PATCH,
            "/v1/skus/tee",
            Some(json!({"low_stock_threshold": null})),
            None,
        )
        .await;
    assert_eq!(
        (s, &v["low_stock_threshold"]),
        (StatusCode::OK, &Value::Null)
    );
    assert_eq!(fed(&srv, &kinds).await.len(), 4);
    // Errors: a threshold in an unknown warehouse, one too large.
    let (s, b) = srv
        .send(
            reqwest::Method::PATCH,
            "/v1/skus/tee",
            Some(json!({"low_stock_thresholds": {"w9": 1}})),
            None,
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("warehouse_not_found"))
    );
    let too_big = srv.config.on_hand_max + 1;
    let (s, _) = srv
        .put("/v1/skus/tee", json!({"low_stock_threshold": too_big}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // An old body keeps working (PUT replaces: the thresholds go).
    let (s, v) = srv.put("/v1/skus/tee", json!({"name": "T"})).await;
    assert_eq!(
        (
            s,
            &v["low_stock_threshold"],
            &row(&v, "w1")["low_stock_threshold"]
        ),
        (StatusCode::OK, &Value::Null, &Value::Null)
    );
}

/// What a restart must bring back: receipts, their numbers and keys, and
/// thresholds.
async fn state(srv: &Srv) -> Vec<Value> {
    vec![
        srv.stock("tee").await,
        srv.get("/v1/stock/incoming").await.1,
        srv.get("/v1/stock/incoming/tee~1").await.1,
        srv.get("/v1/stock/incoming/tee~3").await.1,
    ]
}

async fn history(srv: &Srv) {
    setup(srv).await;
    srv.put(
        "/v1/skus/tee",
        json!({"name": "tee", "low_stock_threshold": 3, "low_stock_thresholds": {"w2": 1}}),
    )
    .await;
    let body =
        json!({"sku": "tee", "warehouse": "w1", "qty": 9, "expected_at": 7, "reference": "PO-1"});
    assert_eq!(
        srv.post_idem("/v1/stock/incoming", body, "key-1").await.0,
        StatusCode::CREATED
    );
    expect(srv, "tee", "w2", 6).await;
    expect(srv, "tee", "w2", 2).await;
    receive(srv, "tee~1", 9).await;
    receive(srv, "tee~2", 4).await;
    // The vendor ships none of receipt 3: closed short, with a key.
    let (s, closed) = srv
        .post_idem(
            "/v1/stock/incoming/tee~3/close",
            json!({"reason": "vendor cancelled"}),
            "close-3",
        )
        .await;
    assert_eq!((s, &closed["short"]), (StatusCode::OK, &json!(2)));
}

#[tokio::test]
async fn receipts_and_thresholds_survive_a_restart_from_the_log() {
    let srv = Srv::start();
    history(&srv).await;
    let before = state(&srv).await;
    let srv = srv.restart();
    assert_eq!(state(&srv).await, before);
    // Numbers go on; the key still answers; the live SKU equals replay.
    assert_eq!(expect(&srv, "tee", "w1", 1).await.1["id"], "tee~4");
    let (s, again) = srv
        .post_idem("/v1/stock/incoming", json!({"sku": "tee", "warehouse": "w1", "qty": 9, "expected_at": 7, "reference": "PO-1"}), "key-1")
        .await;
    assert_eq!((s, again["id"].as_str()), (StatusCode::OK, Some("tee~1")));
    let live = srv
        .bg()
        .surge
        .inspect_sku(&surge::core::SkuId::parse("tee").unwrap())
        .await
        .unwrap();
    live.check_invariants().unwrap();
    // Open: receipt 2 (partly received) and the new 4; 3 closed short.
    assert_eq!(live.incoming.open.len(), 2);
    // The close's key still answers, and closes nothing more.
    let (s, again) = srv
        .post_idem(
            "/v1/stock/incoming/tee~3/close",
            json!({"reason": "vendor cancelled"}),
            "close-3",
        )
        .await;
    assert_eq!((s, &again["short"]), (StatusCode::OK, &json!(2)));
}

#[tokio::test]
async fn receipts_and_thresholds_survive_a_restart_from_a_snapshot() {
    let store = MemStore::new();
    // Every 3 events, and by time too: a tail of fewer than 3 events is
    // snapshotted as well.
    let srv = Srv::start_mem(store.clone(), |c| {
        c.snapshot_every_events = 3;
        c.snapshot_every_ms = 50;
    });
    history(&srv).await;
    let surge = srv.bg().surge.clone();
    let seq = surge.durable_seq();
    let stats = surge.checkpoint_stats();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .last_seq
            .load(Ordering::Acquire)
            >= seq)
        .await,
        "no snapshot of the whole log"
    );
    let before = state(&srv).await;
    drop(srv);
    drop(surge);
    let srv = Srv::start_mem(store.reopen(), |_| {});
    assert_eq!(state(&srv).await, before);
    assert_eq!(expect(&srv, "tee", "w1", 1).await.1["id"], "tee~4");
    let (s, again) = srv
        .post_idem("/v1/stock/incoming", json!({"sku": "tee", "warehouse": "w1", "qty": 9, "expected_at": 7, "reference": "PO-1"}), "key-1")
        .await;
    assert_eq!((s, again["id"].as_str()), (StatusCode::OK, Some("tee~1")));
    // A receipt after the restart still lands in on_hand.
    let (s, r) = receive(&srv, "tee~2", 2).await;
    assert_eq!((s, &r["status"]), (StatusCode::OK, &json!("closed")));
}

/// A POST with an `Idempotency-Key`: status, whether the answer is a
/// replay, body.
async fn keyed(srv: &Srv, path: &str, body: Value, key: &str) -> (StatusCode, bool, Value) {
    let res = srv
        .client
        .post(srv.url(path))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, res.json().await.unwrap())
}

/// `on_hand` and `incoming` of a row of `tee`.
async fn tee_row(srv: &Srv, wh: &str) -> (Value, Value) {
    let v = srv.stock("tee").await;
    let r = row(&v, wh);
    (r["on_hand"].clone(), r["incoming"].clone())
}

/// Receives 4 of 10 on `tee~1` with key `r1`, then checks that retries of it
/// receive nothing more.
async fn received_once_with_a_key(srv: &Srv) {
    let path = "/v1/stock/incoming/tee~1/receive";
    let (s, replayed, first) = keyed(srv, path, json!({"qty": 4}), "r1").await;
    assert_eq!((s, replayed), (StatusCode::OK, false), "{first}");
    assert_eq!(tee_row(srv, "w1").await, (json!(14), json!(6)));
    retries_receive_nothing(srv, &first).await;
}

async fn retries_receive_nothing(srv: &Srv, first: &Value) {
    let path = "/v1/stock/incoming/tee~1/receive";
    let (s, replayed, again) = keyed(srv, path, json!({"qty": 4}), "r1").await;
    assert_eq!((s, replayed, &again), (StatusCode::OK, true, first));
    assert_eq!(tee_row(srv, "w1").await, (json!(14), json!(6)));
    // The same key with another body, or on another receipt, is another
    // request.
    let (s, _, b) = keyed(srv, path, json!({"qty": 5}), "r1").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (s, _, b) = keyed(
        srv,
        "/v1/stock/incoming/tee~2/receive",
        json!({"qty": 4}),
        "r1",
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    assert_eq!(tee_row(srv, "w1").await, (json!(14), json!(6)));
}

#[tokio::test]
async fn a_retried_receipt_of_goods_adds_its_units_once() {
    let srv = Srv::start();
    setup(&srv).await;
    expect(&srv, "tee", "w1", 10).await;
    expect(&srv, "tee", "w2", 5).await;
    received_once_with_a_key(&srv).await;
    let (s, _, b) = keyed(
        &srv,
        "/v1/stock/incoming/tee~1/receive",
        json!({"qty": 1}),
        "bad key",
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    // Another key receives again.
    let (s, replayed, b) = keyed(
        &srv,
        "/v1/stock/incoming/tee~1/receive",
        json!({"qty": 4}),
        "r2",
    )
    .await;
    assert_eq!(
        (s, replayed, &b["received"]),
        (StatusCode::OK, false, &json!(8))
    );
    // A replay answers the receipt as it is now.
    let (s, replayed, b) = keyed(
        &srv,
        "/v1/stock/incoming/tee~1/receive",
        json!({"qty": 4}),
        "r1",
    )
    .await;
    assert_eq!(
        (s, replayed, &b["received"]),
        (StatusCode::OK, true, &json!(8))
    );
    assert_eq!(tee_row(&srv, "w1").await, (json!(18), json!(2)));
}

#[tokio::test]
async fn a_receive_key_survives_a_restart_from_the_log() {
    let srv = Srv::start();
    setup(&srv).await;
    expect(&srv, "tee", "w1", 10).await;
    expect(&srv, "tee", "w2", 5).await;
    received_once_with_a_key(&srv).await;
    let first = srv.get("/v1/stock/incoming/tee~1").await.1;
    let srv = srv.restart();
    retries_receive_nothing(&srv, &first).await;
}

#[tokio::test]
async fn a_receive_key_survives_a_restart_from_a_snapshot() {
    let store = MemStore::new();
    // Every 3 events, and by time too: a tail of fewer than 3 events is
    // snapshotted as well.
    let srv = Srv::start_mem(store.clone(), |c| {
        c.snapshot_every_events = 3;
        c.snapshot_every_ms = 50;
    });
    setup(&srv).await;
    expect(&srv, "tee", "w1", 10).await;
    expect(&srv, "tee", "w2", 5).await;
    received_once_with_a_key(&srv).await;
    let first = srv.get("/v1/stock/incoming/tee~1").await.1;
    let surge = srv.bg().surge.clone();
    let seq = surge.durable_seq();
    let stats = surge.checkpoint_stats();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .last_seq
            .load(Ordering::Acquire)
            >= seq)
        .await,
        "no snapshot of the whole log"
    );
    drop(srv);
    drop(surge);
    let srv = Srv::start_mem(store.reopen(), |_| {});
    retries_receive_nothing(&srv, &first).await;
}

#[tokio::test]
async fn a_receipt_forgotten_as_it_closes_is_still_announced() {
    let srv = Srv::start_with(|c| c.incoming.closed_kept_max = 0);
    setup(&srv).await;
    expect(&srv, "tee", "w1", 3).await;
    let (s, r) = receive(&srv, "tee~1", 3).await;
    assert_eq!((s, &r["status"]), (StatusCode::OK, &json!("closed")));
    assert_eq!(
        srv.get("/v1/stock/incoming/tee~1").await.1["code"],
        "incoming_not_found"
    );
    let got = fed(&srv, &["incoming_received"]).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["qty"], 3);
    assert_eq!(got[0]["receipt"], r);
}

#[tokio::test]
async fn a_receipt_closed_short_leaves_incoming_and_takes_no_more() {
    let srv = Srv::start();
    setup(&srv).await;
    let (_, r) = expect(&srv, "tee", "w1", 10).await;
    let id = r["id"].as_str().unwrap().to_owned();
    receive(&srv, &id, 4).await;
    let close = format!("/v1/stock/incoming/{id}/close");
    let code = |r: &(StatusCode, Value)| (r.0, r.1["code"].as_str().unwrap_or("").to_owned());
    // Bad bodies first: nothing changes.
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "  "}),
        json!({}),
        json!({"reason": "x", "qty": 1}),
    ] {
        assert_eq!(
            code(&srv.post(&close, bad.clone()).await),
            (StatusCode::BAD_REQUEST, "invalid_field".into()),
            "{bad}"
        );
    }
    assert_eq!(
        code(
            &srv.post("/v1/stock/incoming/tee~99/close", json!({"reason": "x"}))
                .await
        ),
        (StatusCode::NOT_FOUND, "incoming_not_found".into())
    );
    assert_eq!(
        code(
            &srv.post("/v1/stock/incoming/nope~1/close", json!({"reason": "x"}))
                .await
        ),
        (StatusCode::NOT_FOUND, "incoming_not_found".into())
    );
    assert_eq!(tee_row(&srv, "w1").await, (json!(14), json!(6)));

    let (s, r) = srv
        .post(&close, json!({"reason": "vendor shipped 4"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["status"], &r["received"], &r["outstanding"], &r["short"]),
        (&json!("closed"), &json!(4), &json!(0), &json!(6))
    );
    assert!(r["closed_at"].is_u64());
    // The 6 units left `incoming`; what came stays on hand.
    assert_eq!(tee_row(&srv, "w1").await, (json!(14), json!(0)));
    assert_eq!(srv.stock("tee").await["incoming"], 0);
    // A closed receipt takes nothing more, and closes once.
    assert_eq!(
        code(&receive(&srv, &id, 1).await),
        (StatusCode::CONFLICT, "incoming_closed".into())
    );
    assert_eq!(
        code(&srv.post(&close, json!({"reason": "again"})).await),
        (StatusCode::CONFLICT, "incoming_closed".into())
    );
    assert_eq!(tee_row(&srv, "w1").await, (json!(14), json!(0)));
    let fed = fed(&srv, &["incoming_closed"]).await;
    assert_eq!(fed.len(), 1);
    assert_eq!(
        (
            &fed[0]["short"],
            &fed[0]["reason"],
            &fed[0]["receipt"]["id"]
        ),
        (&json!(6), &json!("vendor shipped 4"), &json!(id))
    );
    let live = srv
        .bg()
        .surge
        .inspect_sku(&surge::core::SkuId::parse("tee").unwrap())
        .await
        .unwrap();
    live.check_invariants().unwrap();
    assert!(live.incoming.open.is_empty());
}

#[tokio::test]
async fn a_receipt_closed_short_frees_its_place_under_open_max() {
    let srv = Srv::start_with(|c| c.incoming.open_max = 1);
    setup(&srv).await;
    let (_, r) = expect(&srv, "tee", "w1", 5).await;
    let (s, b) = expect(&srv, "tee", "w1", 5).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("incoming_limit_reached"))
    );
    let close = format!("/v1/stock/incoming/{}/close", r["id"].as_str().unwrap());
    assert_eq!(
        srv.post(&close, json!({"reason": "cut"})).await.0,
        StatusCode::OK
    );
    assert_eq!(expect(&srv, "tee", "w1", 5).await.0, StatusCode::CREATED);
}
