//! Every configured request limit, at its edge: the last value accepted and
//! the first refused, with a clear code.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn body_size_limit() {
    let srv = Srv::start_with(|c| c.http_body_bytes_max = 200);
    srv.warehouse("w1", 1).await;
    // Pad the name so the body is exactly at, then one past, the limit.
    let body = |len: usize| {
        let base = json!({"name": "", "location": {"lat": 1.0, "lon": 1.0}})
            .to_string()
            .len();
        format!(
            r#"{{"name":"{}","location":{{"lat":1.0,"lon":1.0}}}}"#,
            "n".repeat(len - base)
        )
    };
    let send = |b: String| {
        srv.client
            .put(srv.url("/v1/warehouses/w2"))
            .header("content-type", "application/json")
            .body(b)
            .send()
    };
    let at = body(200);
    assert_eq!(at.len(), 200);
    let res = send(at).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(body(201)).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (e["code"].as_str(), e["limit"].as_u64()),
        (Some("payload_too_large"), Some(200))
    );
}

#[tokio::test]
async fn quantity_lines_ttl_and_text_limits() {
    let srv = Srv::start_with(|c| {
        c.qty_max = 5;
        c.order_lines_max = 3;
        c.hold_ttl_ms_max = 10_000;
        c.hold_ttl_ms_default = 1_000;
        c.text_len_max = 8;
        c.on_hand_max = 100;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 100)]).await;

    let reserve = |qty: u64, ttl: Option<u64>| {
        srv.post(
            "/v1/reservations",
            json!({"sku": "s", "qty": qty, "ttl_ms": ttl}),
        )
    };
    assert_eq!(reserve(5, None).await.0, StatusCode::CREATED);
    assert_eq!(reserve(6, None).await.1["code"], "invalid_field");
    assert_eq!(reserve(1, Some(10_000)).await.0, StatusCode::CREATED);
    assert_eq!(reserve(1, Some(10_001)).await.1["code"], "invalid_field");
    assert_eq!(reserve(1, Some(0)).await.1["code"], "invalid_field");
    let (_, h) = reserve(1, None).await;
    assert_eq!(
        h["expires_at"].as_u64().unwrap() - h["created_at"].as_u64().unwrap(),
        1_000,
        "default ttl"
    );

    let order = |n: usize| {
        let lines: Vec<_> = (0..n).map(|_| json!({"sku": "s", "qty": 1})).collect();
        srv.post("/v1/orders", json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": lines}))
    };
    assert_eq!(order(3).await.0, StatusCode::CREATED);
    let (s, e) = order(4).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("lines"))
    );

    let adjust = |reason: &str, delta: i64| {
        srv.post(
            "/v1/stock/adjustments",
            json!({"sku": "s", "warehouse": "w1", "delta": delta, "reason": reason}),
        )
    };
    assert_eq!(adjust("12345678", -1).await.0, StatusCode::OK);
    assert_eq!(adjust("123456789", -1).await.1["field"], "reason");
    // on_hand_max: 99 now; +1 reaches it, +2 passes it.
    let (s, e) = adjust("more", 2).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity_too_large"))
    );
    assert_eq!(adjust("more", 1).await.0, StatusCode::OK);
    assert_eq!(adjust("more", 101).await.1["code"], "invalid_field");

    let id_at = "a".repeat(64);
    let (s, _) = srv.put(&format!("/v1/skus/{id_at}"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = srv.put(&format!("/v1/skus/{id_at}b"), json!({})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
}

#[tokio::test]
async fn tiny_mailboxes_and_wal_batches_apply_backpressure_not_loss() {
    // Mailboxes of 1 and one entry per group commit: many concurrent
    // requests each complete or are refused at once with 503 `overloaded`
    // (a full SKU mailbox); retried, they all end, none is lost, none
    // oversells.
    let srv = Srv::start_with(|c| {
        c.sku_mailbox_capacity = 1;
        c.order_mailbox_capacity = 1;
        c.wal_batch_entries_max = 1;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 50)]).await;
    let mut created = 0;
    let mut sold_out = 0;
    let mut pending = 120;
    for _round in 0..200 {
        if pending == 0 {
            break;
        }
        let results = futures_util::future::join_all(
            (0..pending).map(|_| srv.post("/v1/reservations", json!({"sku": "s", "qty": 1}))),
        )
        .await;
        pending = 0;
        for (s, b) in &results {
            match (*s, b["code"].as_str()) {
                (StatusCode::CREATED, _) => created += 1,
                (_, Some("insufficient_stock")) => sold_out += 1,
                (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")) => pending += 1,
                other => panic!("unexpected {other:?}: {b}"),
            }
        }
    }
    assert_eq!(pending, 0, "retries ended");
    assert_eq!((created, sold_out), (50, 70));
    assert_eq!(srv.stock("s").await["reserved"], 50);
}
