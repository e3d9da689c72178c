//! Concurrency: a flash sale on one hot SKU, purchase limits under
//! concurrent requests, all-or-nothing multi-line orders.

use crate::common::Srv;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn two_hundred_shoppers_one_hundred_units() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 100)]).await;
    let attempts = (0..200).map(|i| {
        srv.post(
            "/v1/reservations",
            json!({"sku": "hot", "qty": 1, "customer_id": format!("c{i}")}),
        )
    });
    let results = join_all(attempts).await;
    let accepted = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED)
        .collect();
    assert_eq!(accepted, 100);
    assert_eq!(refused.len(), 100);
    assert!(refused
        .iter()
        .all(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "insufficient_stock"));
    let st = srv.stock("hot").await;
    assert_eq!(
        (
            st["available"].as_u64(),
            st["reserved"].as_u64(),
            st["on_hand"].as_u64()
        ),
        (Some(0), Some(100), Some(100))
    );
    let live = srv
        .bg()
        .surge
        .inspect_sku(&surge::core::SkuId::parse("hot").unwrap())
        .await
        .unwrap();
    live.check_invariants().unwrap();
}

#[tokio::test]
async fn purchase_limit_holds_across_channels_under_concurrency() {
    // The purchase limit, not the customer's rate limit, is under test.
    let srv = Srv::start_with(|c| c.rate_limit_customer_per_sec = 0);
    srv.warehouse("w1", 1).await;
    srv.sku("ltd", Some(3), &[("w1", 1000)]).await;
    // 40 concurrent attempts by one customer over two channels, reservations
    // and direct orders mixed: exactly 3 units may get through.
    let attempts = (0..40).map(|i| {
        let channel = if i % 2 == 0 { "web" } else { "app" };
        if i % 3 == 0 {
            srv.post("/v1/orders", json!({"channel": channel, "customer_id": "alice", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "ltd", "qty": 1}]}))
        } else {
            srv.post("/v1/reservations", json!({"sku": "ltd", "qty": 1, "customer_id": "alice", "channel": channel}))
        }
    });
    let results = join_all(attempts).await;
    let ok = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(ok, 3);
    for (s, b) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(
            (*s, b["code"].as_str(), b["limit"].as_u64()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("purchase_limit_exceeded"),
                Some(3)
            )
        );
    }
    let st = srv.stock("ltd").await;
    assert_eq!(
        st["reserved"].as_u64().unwrap() + st["allocated"].as_u64().unwrap(),
        3
    );
    // Another customer is not affected.
    let (s, _) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "ltd", "qty": 3, "customer_id": "bob"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn an_order_that_cannot_be_filled_holds_nothing() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("a", None, &[("w1", 5)]).await;
    srv.sku("b", None, &[("w1", 2), ("w2", 2)]).await;
    srv.sku("c", None, &[("w2", 1)]).await;
    let (_, hold) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "a", "qty": 2, "customer_id": "c1"}),
        )
        .await;
    let before: Vec<_> = join_all(["a", "b", "c"].map(|s| srv.stock(s))).await;
    // a and b could be filled; c cannot (2 asked, 1 there).
    let (s, e) = srv
        .post("/v1/orders", json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0},
            "lines": [{"sku": "a", "qty": 2, "reservation_id": hold["id"]}, {"sku": "a", "qty": 3}, {"sku": "b", "qty": 4}, {"sku": "c", "qty": 2}]}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_stock"))
    );
    let after: Vec<_> = join_all(["a", "b", "c"].map(|s| srv.stock(s))).await;
    assert_eq!(before, after, "nothing may stay held or allocated");
    let (_, h) = srv
        .get(&format!(
            "/v1/reservations/{}",
            hold["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(h["status"], "active", "the hold survives a failed order");
    for sku in ["a", "b", "c"] {
        let live = srv
            .bg()
            .surge
            .inspect_sku(&surge::core::SkuId::parse(sku).unwrap())
            .await
            .unwrap();
        live.check_invariants().unwrap();
        assert_eq!(
            live.pending_orders(),
            0,
            "{sku} still holds a pending order"
        );
    }
    // The same order without c goes through, split across warehouses for b.
    let (s, o) = srv
        .post("/v1/orders", json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0},
            "lines": [{"sku": "a", "qty": 2, "reservation_id": hold["id"]}, {"sku": "a", "qty": 3}, {"sku": "b", "qty": 4}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["shipments"].as_array().unwrap().len(), 2);
    assert_eq!(srv.stock("a").await["available"].as_u64(), Some(0));
    assert_eq!(srv.stock("b").await["available"].as_u64(), Some(0));
}

#[tokio::test]
async fn concurrent_orders_never_oversell_multi_line() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("x", None, &[("w1", 30)]).await;
    srv.sku("y", None, &[("w1", 20)]).await;
    // Each order takes 1 x and 1 y: at most 20 can succeed.
    let attempts = (0..60).map(|i| {
        srv.post("/v1/orders", json!({"channel": "web", "customer_id": format!("c{i}"), "ship_to": {"lat": 1.0, "lon": 1.0},
            "lines": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 1}]}))
    });
    let results = join_all(attempts).await;
    let ok = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(ok, 20);
    let (x, y) = (srv.stock("x").await, srv.stock("y").await);
    assert_eq!(
        (x["allocated"].as_u64(), x["available"].as_u64()),
        (Some(20), Some(10))
    );
    assert_eq!(
        (y["allocated"].as_u64(), y["available"].as_u64()),
        (Some(20), Some(0))
    );
}
