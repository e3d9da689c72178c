//! The HTTP API end to end: every route, its happy path and its errors.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn warehouses_put_get_list() {
    let srv = Srv::start();
    srv.warehouse("b", 2).await;
    srv.warehouse("a", 1).await;
    let (s, mut w) = srv.get("/v1/warehouses/a").await;
    assert_eq!(s, StatusCode::OK);
    // Nothing routed to it today, no limit.
    let workload = w.as_object_mut().unwrap().remove("workload").unwrap();
    assert_eq!(
        (
            &workload["routed"],
            &workload["capacity_per_day"],
            &workload["at_capacity"]
        ),
        (&json!(0), &json!(null), &json!(false)),
        "{workload}"
    );
    assert_eq!(
        w,
        json!({"id": "a", "name": "a", "location": {"lat": 50.0, "lon": 8.0}, "priority": 1,
               "enabled": true, "countries": [], "channels": [], "capacity_per_day": null,
               "cutoff": null, "shipping_cost": null})
    );
    let (_, list) = srv.get("/v1/warehouses").await;
    let ids: Vec<&str> = list["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"], "listed by priority");
    // Update in place.
    let (s, w) = srv
        .put(
            "/v1/warehouses/a",
            json!({"name": "A2", "location": {"lat": 1.0, "lon": 2.0}, "priority": 5}),
        )
        .await;
    assert_eq!((s, w["name"].as_str()), (StatusCode::OK, Some("A2")));
    let (s, e) = srv.get("/v1/warehouses/zz").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("warehouse_not_found"))
    );
    let (s, e) = srv
        .put(
            "/v1/warehouses/a",
            json!({"name": "x", "location": {"lat": 91.0, "lon": 0.0}}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (s, e) = srv
        .put(
            "/v1/warehouses/bad%20id",
            json!({"name": "x", "location": {"lat": 1.0, "lon": 0.0}}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
}

#[tokio::test]
async fn stock_adjustments_and_compare_and_set() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["on_hand"].as_u64(), st["available"].as_u64()),
        (Some(10), Some(10))
    );

    // Safety stock reduces available only.
    let (s, st) = srv
        .post(
            "/v1/stock/adjustments",
            json!({"sku": "tee", "warehouse": "w1", "set_safety_stock": 3, "reason": "buffer"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            st["on_hand"].as_u64(),
            st["available"].as_u64(),
            st["safety_stock"].as_u64()
        ),
        (Some(10), Some(7), Some(3))
    );

    // Compare-and-set: a stale expectation is refused, a fresh one applies.
    let (s, e) = srv.post("/v1/stock/adjustments", json!({"sku": "tee", "warehouse": "w1", "set_on_hand": 4, "expected_on_hand": 9, "reason": "count"})).await;
    assert_eq!(
        (s, e["code"].as_str(), e["on_hand"].as_u64()),
        (StatusCode::CONFLICT, Some("stock_changed"), Some(10))
    );
    let (s, st) = srv.post("/v1/stock/adjustments", json!({"sku": "tee", "warehouse": "w1", "set_on_hand": 4, "expected_on_hand": 10, "reason": "count"})).await;
    assert_eq!((s, st["on_hand"].as_u64()), (StatusCode::OK, Some(4)));

    // Below what is held: refused, nothing applied.
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = srv
        .post(
            "/v1/stock/adjustments",
            json!({"sku": "tee", "warehouse": "w1", "delta": -4, "reason": "damage"}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("stock_below_committed"))
    );
    assert_eq!(srv.stock("tee").await["on_hand"].as_u64(), Some(4));

    // Shape errors.
    for (body, code, status) in [
        (
            json!({"sku": "tee", "warehouse": "w1", "delta": 0, "reason": "x"}),
            "invalid_field",
            400,
        ),
        (
            json!({"sku": "tee", "warehouse": "w1", "delta": 1, "set_on_hand": 1, "reason": "x"}),
            "invalid_field",
            400,
        ),
        (
            json!({"sku": "tee", "warehouse": "w1", "reason": "x"}),
            "invalid_field",
            400,
        ),
        (
            json!({"sku": "tee", "warehouse": "w1", "delta": 1, "reason": ""}),
            "invalid_field",
            400,
        ),
        (
            json!({"sku": "tee", "warehouse": "nowhere", "delta": 1, "reason": "x"}),
            "warehouse_not_found",
            404,
        ),
        (
            json!({"sku": "nosuch", "warehouse": "w1", "delta": 1, "reason": "x"}),
            "sku_not_found",
            404,
        ),
        (
            json!({"sku": "tee", "warehouse": "w1", "delta": "1", "reason": "x"}),
            "invalid_field",
            400,
        ),
    ] {
        let (s, e) = srv.post("/v1/stock/adjustments", body.clone()).await;
        assert_eq!(
            (s.as_u16(), e["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    assert_eq!(srv.stock("tee").await["on_hand"].as_u64(), Some(4));
    let (s, e) = srv.get("/v1/skus/nosuch/stock").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("sku_not_found"))
    );
}

#[tokio::test]
async fn reservations_lifecycle() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 2), ("w2", 5)]).await;

    let (s, r) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 3, "customer_id": "c1", "channel": "web", "ttl_ms": 60000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        r["warehouse"], "w2",
        "w1 cannot cover 3, so the next by priority does"
    );
    assert_eq!(r["status"], "active");
    assert_eq!(
        r["expires_at"].as_u64().unwrap() - r["created_at"].as_u64().unwrap(),
        60000
    );
    let id = r["id"].as_str().unwrap().to_string();

    let (s, got) = srv.get(&format!("/v1/reservations/{id}")).await;
    assert_eq!((s, &got["id"]), (StatusCode::OK, &r["id"]));
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["reserved"].as_u64(), st["available"].as_u64()),
        (Some(3), Some(4))
    );

    let (s, ext) = srv
        .post(
            &format!("/v1/reservations/{id}/extend"),
            json!({"ttl_ms": 120000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(ext["expires_at"].as_u64() > r["expires_at"].as_u64());

    let (s, rel) = srv.delete(&format!("/v1/reservations/{id}")).await;
    assert_eq!(
        (s, rel["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    assert_eq!(srv.stock("tee").await["available"].as_u64(), Some(7));
    let (s, e) = srv.delete(&format!("/v1/reservations/{id}")).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("reservation_not_active"))
    );
    let (s, e) = srv
        .post(
            &format!("/v1/reservations/{id}/extend"),
            json!({"ttl_ms": 1000}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("reservation_not_active"))
    );

    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 6}))
        .await;
    assert_eq!(
        (s, e["code"].as_str(), e["available"].as_u64()),
        (StatusCode::CONFLICT, Some("insufficient_stock"), Some(5))
    );
    let (s, e) = srv.get("/v1/reservations/res_999").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("reservation_not_found"))
    );
    let (s, e) = srv.get("/v1/reservations/garbage").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("reservation_not_found"))
    );
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "nosuch", "qty": 1}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("sku_not_found"))
    );
    for bad in [
        json!({"sku": "tee", "qty": 0}),
        json!({"sku": "tee", "qty": -1}),
        json!({"sku": "tee"}),
        json!({"sku": "tee", "qty": 1, "extra": true}),
    ] {
        let (s, e) = srv.post("/v1/reservations", bad.clone()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn orders_place_get_cancel() {
    let srv = Srv::start();
    srv.warehouse("near", 1).await;
    srv.warehouse("far", 2).await;
    srv.sku("a", None, &[("near", 5), ("far", 5)]).await;
    srv.sku("b", None, &[("far", 5)]).await;

    // Only "far" has both: the order ships whole from there.
    let body = json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 48.1, "lon": 11.6, "country": "DE"},
                      "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]});
    let (s, o) = srv.post("/v1/orders", body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["status"], "ready");
    assert_eq!(
        o["shipments"],
        json!([{"warehouse": "far", "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}])
    );
    let id = o["id"].as_str().unwrap().to_string();
    let (s, got) = srv.get(&format!("/v1/orders/{id}")).await;
    assert_eq!((s, &got), (StatusCode::OK, &o));
    assert_eq!(srv.stock("a").await["allocated"].as_u64(), Some(2));

    // A line with a hold consumes it; the hold pins its warehouse.
    let (_, h) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "a", "qty": 2, "customer_id": "c2"}),
        )
        .await;
    assert_eq!(h["warehouse"], "near");
    let (s, o2) = srv
        .post(
            "/v1/orders",
            json!({"channel": "app", "customer_id": "c2", "ship_to": {"lat": 1.0, "lon": 1.0},
                                  "lines": [{"sku": "a", "qty": 1, "reservation_id": h["id"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o2}");
    assert_eq!(o2["shipments"][0]["warehouse"], "near");
    let (_, h_after) = srv
        .get(&format!("/v1/reservations/{}", h["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (h_after["status"].as_str(), &h_after["order_id"]),
        (Some("consumed"), &o2["id"])
    );
    let st = srv.stock("a").await;
    assert_eq!(
        (
            st["reserved"].as_u64(),
            st["allocated"].as_u64(),
            st["available"].as_u64()
        ),
        (Some(0), Some(3), Some(7))
    );

    // Someone else's hold, or a hold used twice, is refused.
    let (_, h2) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "a", "qty": 1, "customer_id": "c3"}),
        )
        .await;
    let other = json!({"channel": "web", "customer_id": "c4", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1, "reservation_id": h2["id"]}]});
    let (s, e) = srv.post("/v1/orders", other).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("reservation_mismatch")
        )
    );
    let (s, e) = srv.post("/v1/orders", json!({"channel": "web", "customer_id": "c4", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1, "reservation_id": "res_9999"}]})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("reservation_not_found")
        )
    );

    // Cancel returns the stock; a second cancel is refused.
    let (s, c) = srv
        .post(
            &format!("/v1/orders/{id}/cancel"),
            json!({"reason": "customer asked"}),
        )
        .await;
    assert_eq!(
        (s, c["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(srv.stock("b").await["available"].as_u64(), Some(5));
    let (s, e) = srv
        .post(&format!("/v1/orders/{id}/cancel"), json!({}))
        .await;
    // Cancelled already: the lifecycle table refuses a second cancel.
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    assert_eq!(
        (&e["subject"], &e["status"], &e["command"]),
        (&json!("order"), &json!("cancelled"), &json!("cancel")),
        "{e}"
    );
    let (s, e) = srv.get("/v1/orders/ord_12345").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found"))
    );
    let (s, e) = srv.post("/v1/orders/ord_12345/cancel", json!({})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found"))
    );

    // Shape errors.
    for bad in [
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": []}),
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 100.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1}]}),
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 1.0, "lon": 1.0, "country": "Germany"}, "lines": [{"sku": "a", "qty": 1}]}),
        json!({"channel": "web", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 1}]}),
        json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": [{"sku": "a", "qty": 0}]}),
    ] {
        let (s, e) = srv.post("/v1/orders", bad.clone()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn malformed_and_unknown_requests() {
    let srv = Srv::start();
    let res = srv
        .client
        .post(srv.url("/v1/reservations"))
        .header("content-type", "application/json")
        .body("{\"sku\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["code"],
        "malformed_json"
    );
    let res = srv
        .client
        .post(srv.url("/v1/reservations"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, e) = srv.get("/v2/nothing").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, h) = srv.get("/healthz").await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let res = srv
        .client
        .post(srv.url("/v1/orders/ord_1/cancel"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
