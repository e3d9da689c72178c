//! The order lifecycle end to end: payments, holds, fulfilment by
//! warehouses (partial shipments, rejection and re-route), partial
//! cancellation, returns with restock, unpaid expiry; the stock numbers
//! checked at every step.

use crate::common::Srv;
use crate::holds::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use surge::clock::{Clock, ManualClock, SystemClock};
use surge::config::ChannelLifecycleConfig;

/// A channel `web` whose orders wait for payment, expiring unpaid after
/// `expiry_ms` (0: never).
fn pay_first(config: &mut surge::config::Config, expiry_ms: u64) {
    config.lifecycle.channels.insert(
        "web".into(),
        ChannelLifecycleConfig {
            payment_required: Some(true),
            unpaid_expiry_ms: Some(expiry_ms),
        },
    );
    config.lifecycle.expiry_sweep_ms = 20;
}

/// Every row of the SKU: `on_hand = available + reserved + allocated +
/// safety_stock` (nothing in flight in these tests), and its numbers.
async fn row(srv: &Srv, sku: &str, wh: &str) -> (u64, u64, u64, u64) {
    let st = srv.stock(sku).await;
    let rows = st["warehouses"].as_array().unwrap();
    for r in rows {
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(
            n("on_hand"),
            n("available") + n("reserved") + n("allocated") + n("safety_stock"),
            "{sku}@{}: {r}",
            r["warehouse"]
        );
    }
    let r = rows.iter().find(|r| r["warehouse"] == wh).unwrap();
    let n = |k: &str| r[k].as_u64().unwrap();
    (n("on_hand"), n("available"), n("reserved"), n("allocated"))
}

async fn ok(srv: &Srv, path: &str, body: Value) -> Value {
    let (s, b) = srv.post(path, body).await;
    assert_eq!(s, StatusCode::OK, "{path}: {b}");
    b
}

async fn refused(srv: &Srv, path: &str, body: Value, status: StatusCode, code: &str) -> Value {
    let (s, b) = srv.post(path, body).await;
    assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{path}: {b}");
    b
}

async fn order(srv: &Srv, id: &str) -> Value {
    let (s, b) = srv.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

fn priced_order(lines: Value) -> Value {
    json!({"channel": "web", "customer_id": "c1", "currency": "EUR",
           "ship_to": {"lat": 50.0, "lon": 8.0, "country": "DE"}, "lines": lines})
}

#[tokio::test]
async fn one_order_from_cart_to_return_moves_the_stock_exactly_as_it_goes() {
    let srv = Srv::start_with(|c| pay_first(c, 0));
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    srv.sku("cap", None, &[("w1", 4)]).await;

    // Cart: a hold on three tees.
    let (s, hold) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 3, "customer_id": "c1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    assert_eq!(row(&srv, "tee", "w1").await, (10, 7, 3, 0));

    // Order: the held tees and two caps, priced.
    let (s, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([
                {"sku": "tee", "qty": 3, "reservation_id": hold["id"], "unit_price": 1500},
                {"sku": "cap", "qty": 2, "unit_price": 500}
            ])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let opath = format!("/v1/orders/{id}");
    assert_eq!(o["status"], "pending_payment");
    assert_eq!(o["payment_status"], "pending");
    assert_eq!(o["totals"]["ordered"], 5500);
    assert_eq!(row(&srv, "tee", "w1").await, (10, 7, 0, 3));
    assert_eq!(row(&srv, "cap", "w1").await, (4, 2, 0, 2));
    let fulfillments = o["fulfillments"].as_array().unwrap();
    assert_eq!(fulfillments.len(), 1, "{o}");
    let f = fulfillments[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(fulfillments[0]["status"], "pending");
    let fpath = |step: &str| format!("/v1/fulfillments/{f}/{step}");

    // Not paid yet: no warehouse may start.
    refused(
        &srv,
        &fpath("accept"),
        json!({}),
        StatusCode::CONFLICT,
        "awaiting_payment",
    )
    .await;

    // Authorize, idempotently.
    let pay = format!("{opath}/payments");
    let auth = json!({"kind": "authorize", "amount": 5500, "reference": "psp-auth-1"});
    let o = ok(&srv, &pay, auth.clone()).await;
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("ready"), Some("authorized"))
    );
    let again = ok(&srv, &pay, auth).await;
    assert_eq!(
        again["totals"]["authorized"], 5500,
        "one reference, one effect"
    );
    refused(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 10, "reference": "psp-auth-1"}),
        StatusCode::CONFLICT,
        "payment_refused",
    )
    .await;
    // Capture: never more than authorized.
    let e = refused(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 5501, "reference": "psp-cap-1"}),
        StatusCode::CONFLICT,
        "payment_refused",
    )
    .await;
    assert_eq!(e["max"], 5500);
    refused(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 5500, "reference": "psp-cap-1", "currency": "USD"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;
    let o = ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 5500, "reference": "psp-cap-1"}),
    )
    .await;
    assert_eq!(o["payment_status"], "captured");
    // A void after a capture is refused.
    refused(
        &srv,
        &pay,
        json!({"kind": "void", "amount": 5500, "reference": "psp-void-1"}),
        StatusCode::CONFLICT,
        "payment_refused",
    )
    .await;

    // The warehouse works: accept, pick, pack.
    for (step, status) in [
        ("accept", "accepted"),
        ("pick", "picked"),
        ("pack", "packed"),
    ] {
        let fv = ok(&srv, &fpath(step), json!({})).await;
        assert_eq!(fv["status"], status);
    }
    assert_eq!(order(&srv, &id).await["status"], "in_fulfillment");
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (10, 7, 0, 3),
        "nothing moves before shipping"
    );

    // Ship one tee, then the rest.
    let ship = |lines: Option<Value>, tracking: &str| {
        let mut b = json!({"carrier": "dhl", "tracking": tracking});
        if let Some(l) = lines {
            b["lines"] = l;
        }
        b
    };
    refused(
        &srv,
        &fpath("ship"),
        ship(Some(json!([{"sku": "tee", "qty": 4}])), "t0"),
        StatusCode::CONFLICT,
        "quantity_unavailable",
    )
    .await;
    let fv = ok(
        &srv,
        &fpath("ship"),
        ship(Some(json!([{"sku": "tee", "qty": 1}])), "t1"),
    )
    .await;
    assert_eq!(fv["status"], "partially_shipped");
    assert_eq!(order(&srv, &id).await["status"], "partially_shipped");
    assert_eq!(row(&srv, "tee", "w1").await, (9, 7, 0, 2));
    assert_eq!(row(&srv, "cap", "w1").await, (4, 2, 0, 2));
    let fv = ok(&srv, &fpath("ship"), ship(None, "t2")).await;
    assert_eq!(fv["status"], "shipped");
    assert_eq!(fv["parcels"].as_array().unwrap().len(), 2, "{fv}");
    assert_eq!(row(&srv, "tee", "w1").await, (7, 7, 0, 0));
    assert_eq!(row(&srv, "cap", "w1").await, (2, 2, 0, 0));
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "shipped");
    // Shipped units cannot ship again, nor be cancelled.
    refused(
        &srv,
        &fpath("ship"),
        ship(None, "t3"),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let e = refused(
        &srv,
        &format!("{opath}/cancel"),
        json!({}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_eq!(e["status"], "shipped");

    let fv = ok(&srv, &fpath("deliver"), json!({})).await;
    assert_eq!(fv["status"], "delivered", "{fv}");
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "delivered", "{o}");

    // Return two tees: never more than shipped.
    let rpath = format!("{opath}/returns");
    refused(
        &srv,
        &rpath,
        json!({"lines": [{"sku": "tee", "qty": 4}], "reason": "too big"}),
        StatusCode::CONFLICT,
        "quantity_unavailable",
    )
    .await;
    let (s, r) = srv
        .post(
            &rpath,
            json!({"lines": [{"sku": "tee", "qty": 2}], "reason": "too big"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "requested");
    // The third tee may still be asked back, not a fourth.
    refused(
        &srv,
        &rpath,
        json!({"lines": [{"sku": "tee", "qty": 2}], "reason": "again"}),
        StatusCode::CONFLICT,
        "quantity_unavailable",
    )
    .await;
    let ret = r["id"].as_str().unwrap().to_owned();
    refused(
        &srv,
        &format!("/v1/returns/{ret}/receive"),
        json!({"restock": true}),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    let r = ok(
        &srv,
        &format!("/v1/returns/{ret}/receive"),
        json!({"restock": true, "warehouse": "w1"}),
    )
    .await;
    assert_eq!(r["status"], "received");
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (9, 9, 0, 0),
        "restocked exactly what came back"
    );
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "partially_returned");

    // Refund: never more than captured.
    let o = ok(
        &srv,
        &pay,
        json!({"kind": "refund", "amount": 3000, "reference": "psp-ref-1"}),
    )
    .await;
    assert_eq!(o["payment_status"], "partially_refunded");
    let e = refused(
        &srv,
        &pay,
        json!({"kind": "refund", "amount": 2501, "reference": "psp-ref-2"}),
        StatusCode::CONFLICT,
        "payment_refused",
    )
    .await;
    assert_eq!(e["max"], 2500);
    let r = ok(&srv, &format!("/v1/returns/{ret}/close"), json!({})).await;
    assert_eq!(r["status"], "closed");
    refused(
        &srv,
        &format!("/v1/returns/{ret}/decline"),
        json!({}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;

    // Replay gives the same order and the same stock.
    let before = order(&srv, &id).await;
    let stock = (srv.stock("tee").await, srv.stock("cap").await);
    let srv = srv.restart();
    assert_eq!(order(&srv, &id).await, before);
    assert_eq!((srv.stock("tee").await, srv.stock("cap").await), stock);
}

#[tokio::test]
async fn a_partial_cancel_releases_exactly_the_cancelled_units_and_shows_the_refund_due() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (s, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 5, "unit_price": 1000}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(
        o["status"], "ready",
        "web does not wait for payment by default"
    );
    let pay = format!("/v1/orders/{id}/payments");
    ok(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 5000, "reference": "a"}),
    )
    .await;
    ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 5000, "reference": "c"}),
    )
    .await;
    let cancel = format!("/v1/orders/{id}/cancel");
    // `null` is not taken for "every line".
    refused(
        &srv,
        &cancel,
        json!({"lines": null}),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    refused(
        &srv,
        &cancel,
        json!({"lines": [{"sku": "tee", "qty": 6}]}),
        StatusCode::CONFLICT,
        "quantity_unavailable",
    )
    .await;
    refused(
        &srv,
        &cancel,
        json!({"lines": [{"sku": "cap", "qty": 1}]}),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    let o = ok(
        &srv,
        &cancel,
        json!({"lines": [{"sku": "tee", "qty": 2}], "reason": "changed mind"}),
    )
    .await;
    assert_eq!(o["status"], "ready");
    assert_eq!(o["items"][0]["cancelled"], 2);
    assert_eq!(o["totals"]["cancelled"], 2000);
    assert_eq!(o["totals"]["refund_due"], 2000);
    assert_eq!(row(&srv, "tee", "w1").await, (10, 7, 0, 3));
    // The rest: the order is cancelled, every unit back.
    let o = ok(&srv, &cancel, json!({})).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(row(&srv, "tee", "w1").await, (10, 10, 0, 0));
    let e = refused(
        &srv,
        &cancel,
        json!({}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_eq!(e["status"], "cancelled");
}

#[tokio::test]
async fn a_rejected_fulfilment_moves_to_the_next_warehouse_or_puts_the_order_on_hold() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 3), ("w2", 3)]).await;
    let place = |qty: u64| {
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0},
               "lines": [{"sku": "tee", "qty": qty}]})
    };
    let (s, o) = srv.post("/v1/orders", place(2)).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(o["fulfillments"][0]["warehouse"], "w1");
    let f1 = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();
    // A warehouse list shows it as work to do.
    let (_, list) = srv.get("/v1/warehouses/w1/fulfillments").await;
    assert_eq!(list["fulfillments"][0]["id"], f1.as_str(), "{list}");
    ok(&srv, &format!("/v1/fulfillments/{f1}/accept"), json!({})).await;
    let fv = ok(
        &srv,
        &format!("/v1/fulfillments/{f1}/reject"),
        json!({"reason": "damaged stock"}),
    )
    .await;
    assert_eq!(
        (fv["status"].as_str(), fv["reason"].as_str()),
        (Some("rejected"), Some("damaged stock"))
    );
    let o = order(&srv, &id).await;
    let fs = o["fulfillments"].as_array().unwrap();
    assert_eq!(fs.len(), 2, "{o}");
    assert_eq!(
        (fs[1]["warehouse"].as_str(), fs[1]["status"].as_str()),
        (Some("w2"), Some("pending"))
    );
    assert_eq!(o["status"], "ready");
    assert_eq!(row(&srv, "tee", "w1").await, (3, 3, 0, 0));
    assert_eq!(row(&srv, "tee", "w2").await, (3, 1, 0, 2));
    let (_, list) = srv.get("/v1/warehouses/w1/fulfillments").await;
    assert_eq!(
        list["fulfillments"],
        json!([]),
        "no work left at w1: {list}"
    );
    let (_, list) = srv
        .get("/v1/warehouses/w1/fulfillments?status=rejected")
        .await;
    assert_eq!(list["fulfillments"][0]["id"], f1.as_str());

    // w2 rejects too: nobody else has the stock, the order is held.
    let f2 = fs[1]["id"].as_str().unwrap().to_owned();
    ok(&srv, &format!("/v1/fulfillments/{f2}/reject"), json!({})).await;
    let o = order(&srv, &id).await;
    assert_eq!(
        (o["status"].as_str(), o["hold_reason"].as_str()),
        (Some("on_hold"), Some("out_of_stock")),
        "{o}"
    );
    assert_eq!(
        row(&srv, "tee", "w2").await,
        (3, 1, 0, 2),
        "the units stay where they were"
    );
}

#[tokio::test]
async fn an_order_on_hold_is_not_fulfilled_until_released() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 3)]).await;
    let (_, o) = srv
        .post("/v1/orders", json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0}, "lines": [{"sku": "tee", "qty": 1}]}))
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();
    let o = ok(
        &srv,
        &format!("/v1/orders/{id}/hold"),
        json!({"reason": "fraud_review"}),
    )
    .await;
    assert_eq!(
        (o["status"].as_str(), o["hold_reason"].as_str()),
        (Some("on_hold"), Some("fraud_review"))
    );
    let e = refused(
        &srv,
        &format!("/v1/fulfillments/{f}/accept"),
        json!({}),
        StatusCode::CONFLICT,
        "order_on_hold",
    )
    .await;
    assert_eq!(e["reason"], "fraud_review");
    refused(
        &srv,
        &format!("/v1/orders/{id}/hold"),
        json!({"reason": "again"}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let o = ok(&srv, &format!("/v1/orders/{id}/release"), json!({})).await;
    assert_eq!(
        (o["status"].as_str(), &o["hold_reason"]),
        (Some("ready"), &Value::Null)
    );
    refused(
        &srv,
        &format!("/v1/orders/{id}/release"),
        json!({}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    // Steps take no fields: one sent is refused, not ignored.
    refused(
        &srv,
        &format!("/v1/fulfillments/{f}/accept"),
        json!({"lines": [{"sku": "tee", "qty": 1}]}),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    ok(&srv, &format!("/v1/fulfillments/{f}/accept"), json!({})).await;
    // A tracking number with a control character is refused.
    refused(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        json!({"carrier": "dhl", "tracking": "1\n2"}),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    // The return of an order that does not exist is not found as a return.
    refused(
        &srv,
        "/v1/returns/ret_999999_1/close",
        json!({}),
        StatusCode::NOT_FOUND,
        "return_not_found",
    )
    .await;
    refused(
        &srv,
        "/v1/fulfillments/ful_999999_1/accept",
        json!({}),
        StatusCode::NOT_FOUND,
        "fulfillment_not_found",
    )
    .await;
}

#[tokio::test]
async fn unpaid_orders_expire_on_the_injected_clock_and_release_their_stock() {
    let clock = Arc::new(ManualClock::new(SystemClock::default().now_ms()));
    let store = Arc::new(surge::wal::store::MemStore::new());
    let srv = Srv::start_custom(store, clock.clone(), |c| pay_first(c, 60_000));
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (_, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 2, "unit_price": 100}])),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(o["status"], "pending_payment");
    assert_eq!(o["pay_by"], o["created_at"].as_u64().unwrap() + 60_000);
    // A paid order never expires.
    let (_, paid) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 1, "unit_price": 100}])),
        )
        .await;
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    ok(
        &srv,
        &format!("/v1/orders/{paid_id}/payments"),
        json!({"kind": "authorize", "amount": 100, "reference": "p"}),
    )
    .await;
    assert_eq!(row(&srv, "tee", "w1").await, (5, 2, 0, 3));

    clock.advance(59_000);
    // Not yet: a payment still goes through.
    assert_eq!(order(&srv, &id).await["status"], "pending_payment");
    clock.advance(1_001);
    assert!(
        eventually(Duration::from_secs(10), async || order(&srv, &id).await
            ["status"]
            == "cancelled")
        .await,
        "expired"
    );
    let o = order(&srv, &id).await;
    assert_eq!(o["payment_status"], "expired");
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (5, 4, 0, 1),
        "its stock is back"
    );
    assert_eq!(order(&srv, &paid_id).await["status"], "ready");
    refused(
        &srv,
        &format!("/v1/orders/{id}/payments"),
        json!({"kind": "authorize", "amount": 200, "reference": "late"}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
}

#[tokio::test]
async fn an_order_that_ran_out_of_time_while_the_server_was_down_expires_at_start() {
    let srv = Srv::start_with(|c| pay_first(c, 60_000));
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (_, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 2, "unit_price": 100}])),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(row(&srv, "tee", "w1").await, (5, 3, 0, 2));
    // Back two minutes later.
    let later = SystemClock::default().now_ms() + 120_000;
    let srv = srv.restart_with_clock(Arc::new(ManualClock::new(later)));
    assert!(
        eventually(Duration::from_secs(10), async || order(&srv, &id).await
            ["status"]
            == "cancelled")
        .await,
        "expired at start"
    );
    assert_eq!(row(&srv, "tee", "w1").await, (5, 5, 0, 0));
}

#[tokio::test]
async fn a_warehouse_pages_through_its_work_list_oldest_first() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (s, o) = srv
            .post("/v1/orders", json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0}, "lines": [{"sku": "tee", "qty": 1}]}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        ids.push(o["fulfillments"][0]["id"].as_str().unwrap().to_owned());
    }
    // The second one ships (once accepted: shipping what nobody took is
    // refused): no longer work to do.
    refused(
        &srv,
        &format!("/v1/fulfillments/{}/ship", ids[1]),
        json!({"carrier": "ups", "tracking": "1Z"}),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    ok(
        &srv,
        &format!("/v1/fulfillments/{}/accept", ids[1]),
        json!({}),
    )
    .await;
    ok(
        &srv,
        &format!("/v1/fulfillments/{}/ship", ids[1]),
        json!({"carrier": "ups", "tracking": "1Z"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/warehouses/w1/fulfillments?limit=2".to_owned(),
            Some(c) => format!("/v1/warehouses/w1/fulfillments?limit=2&cursor={c}"),
        };
        let (s, page) = srv.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for f in page["fulfillments"].as_array().unwrap() {
            assert_eq!(f["warehouse"], "w1");
            seen.push(f["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let open: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(seen, open);
    let (_, shipped) = srv
        .get("/v1/warehouses/w1/fulfillments?status=shipped")
        .await;
    assert_eq!(shipped["fulfillments"][0]["id"], ids[1].as_str());
    for bad in ["status=lost", "limit=0", "cursor=zz"] {
        let (s, e) = srv
            .get(&format!("/v1/warehouses/w1/fulfillments?{bad}"))
            .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{bad}"
        );
    }
    let (s, e) = srv.get("/v1/warehouses/nope/fulfillments").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("warehouse_not_found"))
    );
    let (s, e) = srv.get("/v1/fulfillments/ful_999_1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("fulfillment_not_found"))
    );
}

#[tokio::test]
async fn prices_need_a_currency_one_price_per_sku_and_a_total_that_fits() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let body = |lines: Value, currency: Option<&str>| {
        let mut b = json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0}, "lines": lines});
        if let Some(c) = currency {
            b["currency"] = json!(c);
        }
        b
    };
    for (b, status, code) in [
        (
            body(json!([{"sku": "tee", "qty": 1, "unit_price": 5}]), None),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            body(
                json!([{"sku": "tee", "qty": 1, "unit_price": 5}]),
                Some("eur"),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            body(
                json!([{"sku": "tee", "qty": 1, "unit_price": 5}, {"sku": "tee", "qty": 1, "unit_price": 6}]),
                Some("EUR"),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            body(
                json!([{"sku": "tee", "qty": 2, "unit_price": u64::MAX / 2 + 1}]),
                Some("EUR"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_overflow",
        ),
    ] {
        let (s, e) = srv.post("/v1/orders", b.clone()).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{b}: {e}");
    }
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (10, 10, 0, 0),
        "nothing placed"
    );
}

#[tokio::test]
async fn payments_parcels_and_returns_per_order_are_bounded_by_config() {
    let srv = Srv::start_with(|c| {
        c.lifecycle.payments_per_order_max = 2;
        c.lifecycle.parcels_per_fulfillment_max = 2;
        c.lifecycle.returns_per_order_max = 1;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (_, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 5, "unit_price": 100}])),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();
    let pay = format!("/v1/orders/{id}/payments");
    ok(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 500, "reference": "a"}),
    )
    .await;
    ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 200, "reference": "c1"}),
    )
    .await;
    // The same reference again is the same effect, not a new one.
    ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 200, "reference": "c1"}),
    )
    .await;
    let e = refused(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 300, "reference": "c2"}),
        StatusCode::CONFLICT,
        "entity_limit_reached",
    )
    .await;
    assert_eq!(
        (e["entity"].as_str(), e["limit"].as_u64()),
        (Some("payments"), Some(2))
    );
    ok(&srv, &format!("/v1/fulfillments/{f}/accept"), json!({})).await;
    let ship = |q: u64, t: &str| json!({"carrier": "dhl", "tracking": t, "lines": [{"sku": "tee", "qty": q}]});
    ok(&srv, &format!("/v1/fulfillments/{f}/ship"), ship(1, "p1")).await;
    // The last parcel the limit allows must carry every unit left, so none
    // is stranded where no parcel can reach it.
    let e = refused(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        ship(3, "p2"),
        StatusCode::CONFLICT,
        "entity_limit_reached",
    )
    .await;
    assert_eq!(
        (
            e["entity"].as_str(),
            e["limit"].as_u64(),
            e["left"].as_u64()
        ),
        (Some("parcels"), Some(2), Some(4))
    );
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (9, 5, 0, 4),
        "the refused parcel moved nothing"
    );
    ok(&srv, &format!("/v1/fulfillments/{f}/ship"), ship(4, "p2")).await;
    let e = refused(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        ship(1, "p3"),
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_eq!(e["status"].as_str(), Some("shipped"), "{e}");
    assert_eq!(row(&srv, "tee", "w1").await, (5, 5, 0, 0));
    let r = format!("/v1/orders/{id}/returns");
    let (s, _) = srv
        .post(
            &r,
            json!({"lines": [{"sku": "tee", "qty": 1}], "reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let e = refused(
        &srv,
        &r,
        json!({"lines": [{"sku": "tee", "qty": 1}], "reason": "y"}),
        StatusCode::CONFLICT,
        "entity_limit_reached",
    )
    .await;
    assert_eq!(
        (e["entity"].as_str(), e["limit"].as_u64()),
        (Some("returns"), Some(1))
    );
}

/// `GET /v1/orders` filters by payment status, alone and with the other
/// filters; an unknown payment status is refused.
#[tokio::test]
async fn orders_are_listed_by_payment_status() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, o) = srv
            .post(
                "/v1/orders",
                priced_order(json!([{"sku": "tee", "qty": 1, "unit_price": 100}])),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        ids.push(o["id"].as_str().unwrap().to_owned());
    }
    // ids[0] captured, ids[1] authorized, ids[2] pending.
    for (id, kinds) in [
        (&ids[0], &["authorize", "capture"][..]),
        (&ids[1], &["authorize"][..]),
    ] {
        for k in kinds {
            ok(
                &srv,
                &format!("/v1/orders/{id}/payments"),
                json!({"kind": k, "amount": 100, "reference": format!("{id}-{k}")}),
            )
            .await;
        }
    }
    let listed = |q: &'static str| {
        let srv = &srv;
        async move {
            let (s, page) = srv.get(&format!("/v1/orders?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {page}");
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("payment_status=captured").await,
        vec![ids[0].clone()]
    );
    assert_eq!(
        listed("payment_status=authorized").await,
        vec![ids[1].clone()]
    );
    assert_eq!(listed("payment_status=pending").await, vec![ids[2].clone()]);
    assert_eq!(
        listed("payment_status=pending&status=ready&channel=web").await,
        vec![ids[2].clone()]
    );
    assert!(listed("payment_status=captured&status=cancelled")
        .await
        .is_empty());
    let (s, e) = srv.get("/v1/orders?payment_status=paid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("invalid_field"), Some("payment_status"))
    );
}

/// A lifecycle POST with an `Idempotency-Key`: status, whether the answer
/// is a replay, body.
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

/// Every state-changing lifecycle POST takes `Idempotency-Key` as placing
/// an order does: a retry has no second effect and answers 200 with
/// `Idempotent-Replayed: true`; the same key with another request (another
/// body, or another fulfilment) is 422; a malformed key is 400; the key
/// survives a restart, logged with its effect.
#[tokio::test]
async fn lifecycle_commands_take_idempotency_keys() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 20)]).await;
    let (_, o) = srv
        .post(
            "/v1/orders",
            priced_order(json!([{"sku": "tee", "qty": 6, "unit_price": 100}])),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();

    // A payment retried under its key: one authorization, though the
    // retry names another reference.
    let pay = format!("/v1/orders/{id}/payments");
    let (s, r, _) = keyed(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 600, "reference": "a1"}),
        "pay-1",
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, false));
    let (s, _, e) = keyed(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 100, "reference": "a2"}),
        "pay-1",
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (s, r, body) = keyed(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 600, "reference": "a1"}),
        "pay-1",
    )
    .await;
    assert_eq!((s, r), (StatusCode::OK, true));
    assert_eq!(body["totals"]["authorized"], 600, "{body}");

    // Steps without a body.
    let accept = format!("/v1/fulfillments/{f}/accept");
    assert!(!keyed(&srv, &accept, json!({}), "acc").await.1);
    let (s, r, fv) = keyed(&srv, &accept, json!({}), "acc").await;
    assert_eq!(
        (s, r, fv["status"].as_str()),
        (StatusCode::OK, true, Some("accepted"))
    );

    // A retried shipment ships once.
    let ship = format!("/v1/fulfillments/{f}/ship");
    let parcel =
        |q: u64| json!({"carrier": "dhl", "tracking": "t1", "lines": [{"sku": "tee", "qty": q}]});
    assert_eq!(
        keyed(&srv, &ship, parcel(2), "ship-1").await.0,
        StatusCode::OK
    );
    let (s, r, fv) = keyed(&srv, &ship, parcel(2), "ship-1").await;
    assert_eq!((s, r), (StatusCode::OK, true));
    assert_eq!(fv["parcels"].as_array().unwrap().len(), 1, "{fv}");
    let (s, _, e) = keyed(&srv, &ship, parcel(3), "ship-1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    assert_eq!(
        row(&srv, "tee", "w1").await,
        (18, 14, 0, 4),
        "two units shipped, once"
    );

    // A partial cancel retried: cancelled once.
    let cancel = format!("/v1/orders/{id}/cancel");
    let one = json!({"lines": [{"sku": "tee", "qty": 1}]});
    assert_eq!(
        keyed(&srv, &cancel, one.clone(), "cx").await.0,
        StatusCode::OK
    );
    let (s, r, ov) = keyed(&srv, &cancel, one.clone(), "cx").await;
    assert_eq!((s, r), (StatusCode::OK, true));
    assert_eq!(ov["items"][0]["cancelled"], 1, "{ov}");
    assert_eq!(row(&srv, "tee", "w1").await, (18, 15, 0, 3));

    // A return retried: one return, the same one answered.
    let rets = format!("/v1/orders/{id}/returns");
    let back = json!({"lines": [{"sku": "tee", "qty": 1}], "reason": "size"});
    let (s, r, first) = keyed(&srv, &rets, back.clone(), "ret-1").await;
    assert_eq!((s, r), (StatusCode::CREATED, false));
    let (s, r, again) = keyed(&srv, &rets, back.clone(), "ret-1").await;
    assert_eq!((s, r, &again["id"]), (StatusCode::OK, true, &first["id"]));
    assert_eq!(
        order(&srv, &id).await["returns"].as_array().unwrap().len(),
        1
    );

    // A malformed key is refused before anything happens.
    let (s, _, e) = keyed(&srv, &cancel, one.clone(), "bad key").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    assert_eq!(row(&srv, "tee", "w1").await, (18, 15, 0, 3));

    // After a restart the keys are still there.
    let srv = srv.restart();
    let (s, r, fv) = keyed(&srv, &ship, parcel(2), "ship-1").await;
    assert_eq!(
        (s, r, fv["parcels"].as_array().unwrap().len()),
        (StatusCode::OK, true, 1)
    );
    let (s, r, again) = keyed(&srv, &rets, back, "ret-1").await;
    assert_eq!((s, r, &again["id"]), (StatusCode::OK, true, &first["id"]));
    assert_eq!(row(&srv, "tee", "w1").await, (18, 15, 0, 3));
    // The same key on another fulfilment's route is another request.
    let other = format!(
        "/v1/fulfillments/ful_{}_9/ship",
        id.trim_start_matches("ord_")
    );
    let (s, _, e) = keyed(&srv, &other, parcel(2), "ship-1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );

    // A whole cancellation retried answers the cancelled order again.
    let (s, r, first) = keyed(&srv, &cancel, json!({}), "all").await;
    assert_eq!((s, r), (StatusCode::OK, false));
    let (s, r, ov) = keyed(&srv, &cancel, json!({}), "all").await;
    assert_eq!(
        (s, r, &ov["status"]),
        (StatusCode::OK, true, &first["status"])
    );
    assert_eq!(row(&srv, "tee", "w1").await, (18, 18, 0, 0));
}

/// A rejection moves only what is left: after a partial shipment or a
/// partial cancel, the units neither shipped nor cancelled go to the next
/// warehouse; in a split order, what another warehouse already started on
/// stays there.
#[tokio::test]
async fn a_rejection_moves_only_the_units_left_and_leaves_started_work_in_place() {
    let srv = Srv::start();
    for (w, p) in [("w1", 1), ("w2", 2), ("w3", 3)] {
        srv.warehouse(w, p).await;
    }
    srv.sku("tee", None, &[("w1", 10), ("w2", 10)]).await;
    srv.sku("cap", None, &[("w1", 10), ("w2", 10)]).await;
    srv.sku("a", None, &[("w1", 5), ("w3", 5)]).await;
    srv.sku("b", None, &[("w2", 5)]).await;
    let place = |lines: Value| {
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0},
               "lines": lines})
    };
    let fulfillment_at = |o: &Value, wh: &str| -> Value {
        o["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["warehouse"] == wh)
            .cloned()
            .unwrap_or_else(|| panic!("no fulfilment at {wh}: {o}"))
    };

    // Two of four shipped, then the warehouse rejects: the other two move.
    let (_, o) = srv
        .post("/v1/orders", place(json!([{"sku": "tee", "qty": 4}])))
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = fulfillment_at(&o, "w1")["id"].as_str().unwrap().to_owned();
    ok(&srv, &format!("/v1/fulfillments/{f}/accept"), json!({})).await;
    ok(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        json!({"carrier": "dhl", "tracking": "t", "lines": [{"sku": "tee", "qty": 2}]}),
    )
    .await;
    ok(&srv, &format!("/v1/fulfillments/{f}/reject"), json!({})).await;
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "partially_shipped", "{o}");
    let moved = fulfillment_at(&o, "w2");
    assert_eq!(
        (moved["status"].as_str(), &moved["lines"][0]["qty"]),
        (Some("pending"), &json!(2)),
        "{o}"
    );
    assert_eq!(row(&srv, "tee", "w1").await, (8, 8, 0, 0));
    assert_eq!(row(&srv, "tee", "w2").await, (10, 8, 0, 2));

    // One of three cancelled, then a rejection: the other two move.
    let (_, o) = srv
        .post("/v1/orders", place(json!([{"sku": "cap", "qty": 3}])))
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = fulfillment_at(&o, "w1")["id"].as_str().unwrap().to_owned();
    ok(
        &srv,
        &format!("/v1/orders/{id}/cancel"),
        json!({"lines": [{"sku": "cap", "qty": 1}]}),
    )
    .await;
    ok(&srv, &format!("/v1/fulfillments/{f}/reject"), json!({})).await;
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "ready", "{o}");
    assert_eq!(fulfillment_at(&o, "w2")["lines"][0]["qty"], 2, "{o}");
    assert_eq!(row(&srv, "cap", "w1").await, (10, 10, 0, 0));
    assert_eq!(row(&srv, "cap", "w2").await, (10, 8, 0, 2));

    // A split order: w2 accepted its part, w1 rejects its own; only w1's
    // part moves (to w3), w2's stays accepted where it is.
    let (_, o) = srv
        .post(
            "/v1/orders",
            place(json!([{"sku": "a", "qty": 1}, {"sku": "b", "qty": 1}])),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let at_w1 = fulfillment_at(&o, "w1")["id"].as_str().unwrap().to_owned();
    let at_w2 = fulfillment_at(&o, "w2")["id"].as_str().unwrap().to_owned();
    ok(&srv, &format!("/v1/fulfillments/{at_w2}/accept"), json!({})).await;
    ok(&srv, &format!("/v1/fulfillments/{at_w1}/reject"), json!({})).await;
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "in_fulfillment", "{o}");
    let kept = fulfillment_at(&o, "w2");
    assert_eq!(
        (kept["id"].as_str(), kept["status"].as_str()),
        (Some(at_w2.as_str()), Some("accepted"))
    );
    assert_eq!(fulfillment_at(&o, "w3")["lines"][0]["sku"], "a", "{o}");
    assert_eq!(row(&srv, "a", "w1").await, (5, 5, 0, 0));
    assert_eq!(row(&srv, "a", "w3").await, (5, 4, 0, 1));
    assert_eq!(row(&srv, "b", "w2").await, (5, 4, 0, 1));
}

/// One SKU split over two warehouses: the one that started keeps its part,
/// and the rejected part moves to a third warehouse, not counted twice
/// against the started one's stock. The order is still listed under the
/// warehouse that shipped part of it.
#[tokio::test]
async fn a_rejected_part_of_one_sku_moves_beside_the_part_kept() {
    let srv = Srv::start();
    for (w, p) in [("w1", 1), ("w2", 2), ("w3", 3)] {
        srv.warehouse(w, p).await;
    }
    srv.sku("x", None, &[("w1", 2), ("w2", 3)]).await;
    let (s, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0},
                   "lines": [{"sku": "x", "qty": 5}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let at = |o: &Value, wh: &str| -> String {
        o["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["warehouse"] == wh)
            .unwrap_or_else(|| panic!("no fulfilment at {wh}: {o}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (f1, f2) = (at(&o, "w1"), at(&o, "w2"));
    // Only now does w3 get stock: the plan that follows must use it.
    let (s, b) = srv
        .post(
            "/v1/stock/adjustments",
            json!({"sku": "x", "warehouse": "w3", "delta": 10, "reason": "receipt"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    ok(&srv, &format!("/v1/fulfillments/{f1}/accept"), json!({})).await;
    ok(
        &srv,
        &format!("/v1/fulfillments/{f1}/ship"),
        json!({"carrier": "dhl", "tracking": "t", "lines": [{"sku": "x", "qty": 1}]}),
    )
    .await;
    ok(&srv, &format!("/v1/fulfillments/{f2}/reject"), json!({})).await;
    let o = order(&srv, &id).await;
    assert_eq!(o["status"], "partially_shipped", "{o}");
    assert_eq!(at(&o, "w1"), f1);
    assert_eq!(row(&srv, "x", "w1").await, (1, 0, 0, 1));
    assert_eq!(row(&srv, "x", "w2").await, (3, 3, 0, 0));
    assert_eq!(row(&srv, "x", "w3").await, (10, 7, 0, 3));
    // Listed under w1, which shipped a unit, and w3, which has work.
    for wh in ["w1", "w3"] {
        let (_, page) = srv.get(&format!("/v1/orders?warehouse={wh}")).await;
        assert_eq!(page["orders"][0]["id"], id.as_str(), "{wh}: {page}");
    }
}

/// A crash after a rejection is durable but before its re-route is: at
/// start, the server runs the rejection's follow-up again, so the units
/// do not stay with the warehouse that rejected them. (The log is cut
/// right after the rejection's record, as such a crash leaves it.)
#[tokio::test]
async fn a_rejection_a_crash_cut_short_is_followed_up_at_start() {
    use surge::core::lifecycle::Command;
    use surge::core::Event;
    use surge::wal::store::{LogStore, MemStore};
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |_| {});
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 5), ("w2", 5)]).await;
    let (_, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0},
                   "lines": [{"sku": "tee", "qty": 2}]}),
        )
        .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let f = o["fulfillments"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(o["fulfillments"][0]["warehouse"], "w1");
    ok(&srv, &format!("/v1/fulfillments/{f}/reject"), json!({})).await;
    drop(srv);

    // The log up to and with the rejection's record, nothing after it.
    let cut = MemStore::new();
    let mut rejected = false;
    store
        .reopen()
        .scan(&mut |key, bytes| {
            if rejected {
                return;
            }
            cut.append(key, bytes).unwrap();
            let rec = surge::wal::record::decode(bytes).unwrap();
            rejected = rec.events.iter().any(|e| {
                matches!(
                    e,
                    Event::FulfillmentStaged {
                        command: Command::Reject,
                        ..
                    }
                )
            });
        })
        .unwrap();
    assert!(rejected, "the rejection is in the log");
    cut.sync().unwrap();

    let srv = Srv::start_mem(cut, |_| {});
    let moved = eventually(Duration::from_secs(10), async || {
        order(&srv, &id).await["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["warehouse"] == "w2")
    })
    .await;
    assert!(moved, "{}", order(&srv, &id).await);
    assert_eq!(order(&srv, &id).await["status"], "ready");
    assert_eq!(row(&srv, "tee", "w1").await, (5, 5, 0, 0));
    assert_eq!(row(&srv, "tee", "w2").await, (5, 3, 0, 2));
}
