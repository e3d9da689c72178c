//! Rule gaps, rate limits and overload: anonymous holds on limited SKUs,
//! partial SKU updates, canonical ids, 429 with `Retry-After`, and 503
//! `overloaded` from a SKU actor that is stuck.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use surge::auth::{hash_hex, KeyConfig};
use surge::core::SkuId;

fn order(customer: &str, lines: Value) -> Value {
    json!({"channel": "web", "customer_id": customer, "ship_to": {"lat": 50.0, "lon": 8.0}, "lines": lines})
}

/// Polls `f` until it holds, for at most ten seconds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_anonymous_hold_on_a_limited_sku_is_refused_single_and_batch() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("limited", Some(2), &[("w1", 100)]).await;
    srv.sku("open", None, &[("w1", 100)]).await;
    // The probe that found the gap: 50 units held anonymously on a limit of 2.
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "limited", "qty": 50}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "customer_required");
    assert_eq!(e["limit"], 2);
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "limited", "qty": 1}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("customer_required"))
    );
    // With a customer: the limit, at its edge.
    let (s, e) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "limited", "qty": 2, "customer_id": "c1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let (s, e) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "limited", "qty": 1, "customer_id": "c1"}),
        )
        .await;
    assert_eq!(e["code"], "purchase_limit_exceeded", "{s} {e}");
    // No limit: no customer needed.
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "open", "qty": 50}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A batch answers each item on its own.
    let (s, b) = srv
        .post(
            "/v1/reservations:batch",
            json!({"reservations": [
                {"sku": "limited", "qty": 1},
                {"sku": "limited", "qty": 1, "customer_id": "c2"},
                {"sku": "open", "qty": 1},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = &b["results"];
    assert_eq!(r[0]["status"], 422, "{b}");
    assert_eq!(r[0]["error"]["code"], "customer_required");
    assert_eq!(r[1]["status"], 201, "{b}");
    assert_eq!(r[2]["status"], 201, "{b}");
    // Nothing anonymous was held on the limited SKU.
    assert_eq!(srv.stock("limited").await["reserved"], 3);
    // An order always names its customer, so the limit counts it.
    let (s, o) = srv
        .post(
            "/v1/orders",
            order("c3", json!([{"sku": "limited", "qty": 2}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
}

#[tokio::test]
async fn anonymous_holds_on_limited_skus_are_allowed_when_the_rule_is_off() {
    let srv = Srv::start_with(|c| c.require_customer_on_limited_skus = false);
    srv.warehouse("w1", 1).await;
    srv.sku("limited", Some(2), &[("w1", 100)]).await;
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "limited", "qty": 50}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
}

#[tokio::test]
async fn holds_logged_before_the_rule_replay_unchanged() {
    // Held anonymously with the rule off, restarted with it on: the hold is
    // still there (replay never judges), and new anonymous ones are refused.
    let mut srv = Srv::start_with(|c| c.require_customer_on_limited_skus = false);
    srv.warehouse("w1", 1).await;
    srv.sku("limited", Some(2), &[("w1", 100)]).await;
    let (s, h) = srv
        .post("/v1/reservations", json!({"sku": "limited", "qty": 50}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    srv.config.require_customer_on_limited_skus = true;
    let srv = srv.restart();
    let (s, r) = srv
        .get(&format!("/v1/reservations/{}", h["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{r}"
    );
    assert_eq!(srv.stock("limited").await["reserved"], 50);
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "limited", "qty": 1}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("customer_required"))
    );
}

#[tokio::test]
async fn patch_changes_only_the_fields_present_and_put_replaces() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", Some(2), &[("w1", 10)]).await;
    let patch = |body: Value| srv.send(reqwest::Method::PATCH, "/v1/skus/tee", Some(body), None);
    // Only the name: the limit stays.
    let (s, b) = patch(json!({"name": "Tee, black"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].as_u64()),
        (Some("Tee, black"), Some(2))
    );
    assert_eq!(
        b["on_hand"], 10,
        "the answer is the whole SKU with its stock: {b}"
    );
    // Only the limit: the name stays.
    let (_, b) = patch(json!({"per_customer_limit": 5})).await;
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].as_u64()),
        (Some("Tee, black"), Some(5))
    );
    // An empty patch changes nothing.
    let (s, b) = patch(json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].as_u64()),
        (Some("Tee, black"), Some(5))
    );
    // null clears.
    let (_, b) = patch(json!({"per_customer_limit": null})).await;
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].clone()),
        (Some("Tee, black"), Value::Null)
    );
    let (_, b) = patch(json!({"name": null, "per_customer_limit": 3})).await;
    assert_eq!(
        (b["name"].clone(), b["per_customer_limit"].as_u64()),
        (Value::Null, Some(3))
    );
    // Refused: unknown fields, a limit of 0, a wrong type, an unknown SKU.
    let (s, e) = patch(json!({"nme": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = patch(json!({"per_customer_limit": 0})).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("per_customer_limit"))
    );
    let (s, _) = patch(json!({"per_customer_limit": "3"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, e) = srv
        .send(
            reqwest::Method::PATCH,
            "/v1/skus/nope",
            Some(json!({"name": "x"})),
            None,
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("sku_not_found"))
    );
    let (s, _) = srv.get("/v1/skus/nope/stock").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a PATCH never creates a SKU");
    // PUT replaces the whole SKU: a field left out is cleared, and the
    // answer says so.
    let (s, b) = srv.put("/v1/skus/tee", json!({"name": "Tee"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].clone()),
        (Some("Tee"), Value::Null)
    );
    // Patches survive a restart: the merged result is what was logged.
    patch(json!({"per_customer_limit": 4})).await;
    let srv = srv.restart();
    let b = srv.stock("tee").await;
    assert_eq!(
        (b["name"].as_str(), b["per_customer_limit"].as_u64()),
        (Some("Tee"), Some(4))
    );
}

#[tokio::test]
async fn ids_are_read_only_in_their_canonical_form() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (s, h) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = h["id"].as_str().unwrap().to_owned();
    let n = id.strip_prefix("res_").unwrap();
    let (s, _) = srv.get(&format!("/v1/reservations/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    for other in [
        format!("res_0{n}"),
        format!("res_000{n}"),
        format!("res_+{n}"),
        format!("res_%20{n}"),
        format!("res_{n}%20"),
    ] {
        let (s, e) = srv.get(&format!("/v1/reservations/{other}")).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("reservation_not_found")),
            "{other}"
        );
        let (s, e) = srv.delete(&format!("/v1/reservations/{other}")).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("reservation_not_found")),
            "{other}"
        );
    }
    // Still held: no other spelling released it.
    assert_eq!(srv.stock("tee").await["reserved"], 1);
    let (s, o) = srv
        .post("/v1/orders", order("c1", json!([{"sku": "tee", "qty": 1}])))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let oid = o["id"].as_str().unwrap();
    let on = oid.strip_prefix("ord_").unwrap();
    let (s, e) = srv.get(&format!("/v1/orders/ord_0{on}")).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found"))
    );
    let (s, e) = srv
        .post(&format!("/v1/orders/ord_00{on}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("order_not_found"))
    );
    let (s, b) = srv.get(&format!("/v1/orders/{oid}")).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    // In an order line a non-canonical reservation id is an invalid field.
    let (s, e) = srv
        .post(
            "/v1/orders",
            order(
                "c1",
                json!([{"sku": "tee", "qty": 1, "reservation_id": format!("res_0{n}")}]),
            ),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("lines[0].reservation_id")),
        "{e}"
    );
}

async fn metric(srv: &Srv, line_start: &str) -> f64 {
    let text = srv
        .client
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("{line_start} not in\n{text}"))
}

#[tokio::test]
async fn a_customer_past_its_burst_gets_429_with_retry_after_and_others_do_not() {
    // A rate too slow to refill during the test: the burst is the edge.
    let srv = Srv::start_with(|c| {
        c.rate_limit_customer_per_sec = 1;
        c.rate_limit_customer_burst = 3;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 1000)]).await;
    let hold = |c: &'static str| {
        srv.post(
            "/v1/reservations",
            json!({"sku": "hot", "qty": 1, "customer_id": c}),
        )
    };
    for _ in 0..3 {
        let (s, b) = hold("bot").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let res = srv
        .client
        .post(srv.url("/v1/reservations"))
        .json(&json!({"sku": "hot", "qty": 1, "customer_id": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&retry), "Retry-After {retry}");
    let b: Value = res.json().await.unwrap();
    assert_eq!(
        (b["code"].as_str(), b["limit_by"].as_str()),
        (Some("rate_limited"), Some("customer")),
        "{b}"
    );
    assert_eq!(b["retry_after_s"], retry);
    // Orders count against the same customer.
    let (s, b) = srv
        .post(
            "/v1/orders",
            order("bot", json!([{"sku": "hot", "qty": 1}])),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    // Another customer, and anonymous holds, are not affected.
    let (s, _) = hold("shopper").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A batch refuses the limited customer's items in place, not the rest.
    let (s, b) = srv
        .post(
            "/v1/reservations:batch",
            json!({"reservations": [
                {"sku": "hot", "qty": 1, "customer_id": "bot"},
                {"sku": "hot", "qty": 1, "customer_id": "other"},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["status"], 429, "{b}");
    assert_eq!(b["results"][0]["error"]["code"], "rate_limited");
    assert_eq!(b["results"][0]["error"]["limit_by"], "customer");
    assert_eq!(b["results"][1]["status"], 201, "{b}");
    // Only what was accepted is held: 3 + shopper + anonymous + other.
    assert_eq!(srv.stock("hot").await["reserved"], 6);
    assert_eq!(
        metric(&srv, r#"surge_rate_limited_total{limit="customer"}"#).await,
        3.0
    );
}

fn keyed(c: &mut surge::config::Config) {
    c.keys = vec![
        KeyConfig {
            name: "web".into(),
            sha256: hash_hex("web-key"),
            scopes: vec!["storefront".into()],
        },
        KeyConfig {
            name: "ops".into(),
            sha256: hash_hex("ops-key"),
            scopes: vec!["admin".into()],
        },
    ];
    c.rate_limit_key_per_sec = 1;
    c.rate_limit_key_burst = 4;
}

#[tokio::test]
async fn a_key_past_its_burst_gets_429_on_any_route_and_other_keys_do_not() {
    let srv = Srv::start_with(keyed);
    let get = |key: &'static str, path: &'static str| {
        srv.client.get(srv.url(path)).bearer_auth(key).send()
    };
    // The key's burst covers all routes it calls.
    for path in [
        "/v1/skus/x/stock",
        "/v1/openapi.json",
        "/v1/reservations/res_1",
        "/v1/orders/ord_1",
    ] {
        let res = get("web-key", path).await.unwrap();
        let s = res.status();
        assert!(
            s == StatusCode::OK || s == StatusCode::NOT_FOUND,
            "{path}: {s}"
        );
    }
    let res = get("web-key", "/v1/skus/x/stock").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    let b: Value = res.json().await.unwrap();
    assert_eq!(
        (b["code"].as_str(), b["limit_by"].as_str()),
        (Some("rate_limited"), Some("key")),
        "{b}"
    );
    // Another key has a bucket of its own; open routes need no key and
    // are not limited per address when keys are configured.
    let res = get("ops-key", "/v1/warehouses").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for _ in 0..10 {
        let res = srv.client.get(srv.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Auth answers first: an unknown key is 401, not 429.
    let res = get("wrong-key", "/v1/warehouses").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn loopback_clients_without_keys_are_not_limited_per_address() {
    let srv = Srv::start_with(|c| {
        c.rate_limit_key_per_sec = 1;
        c.rate_limit_key_burst = 1;
    });
    for _ in 0..20 {
        let (s, _) = srv.get("/v1/warehouses").await;
        assert_eq!(s, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_stuck_sku_actor_answers_503_overloaded_at_once_and_nothing_is_half_applied() {
    let cap = 4;
    let srv = Srv::start_with(|c| c.sku_mailbox_capacity = cap);
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 100)]).await;
    srv.sku("cold", None, &[("w1", 100)]).await;
    let surge = srv.bg().surge.clone();
    let hot = SkuId::parse("hot").unwrap();
    let (s, held) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let pause = surge.pause_sku(&hot).await.unwrap();
    // `cap` reservations wait in the mailbox: at the edge, queued.
    let mut waiting = Vec::new();
    for _ in 0..cap {
        let (client, url) = (srv.client.clone(), srv.url("/v1/reservations"));
        waiting.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({"sku": "hot", "qty": 1}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    until("the mailbox to fill", || {
        surge.sku_requests_queued(&hot) == cap
    })
    .await;
    // One past it: refused at once, while the actor is still stuck.
    let started = Instant::now();
    let (s, e) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{e}"
    );
    let (s, b) = srv
        .post(
            "/v1/reservations:batch",
            json!({"reservations": [{"sku": "hot", "qty": 1}, {"sku": "cold", "qty": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["status"], 503, "{b}");
    assert_eq!(b["results"][0]["error"]["code"], "overloaded");
    assert_eq!(b["results"][1]["status"], 201, "{b}");
    // An order over both SKUs: cold prepares, hot refuses, cold is aborted.
    let (s, e) = srv
        .post(
            "/v1/orders",
            order(
                "c1",
                json!([{"sku": "cold", "qty": 5}, {"sku": "hot", "qty": 1}]),
            ),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{e}"
    );
    let (s, e) = srv
        .delete(&format!(
            "/v1/reservations/{}",
            held["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{e}"
    );
    let (s, e) = srv
        .post(
            "/v1/stock/adjustments",
            json!({"sku": "hot", "warehouse": "w1", "delta": 1, "reason": "r"}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{e}"
    );
    let (s, e) = srv
        .send(
            reqwest::Method::PATCH,
            "/v1/skus/hot",
            Some(json!({"name": "x"})),
            None,
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusals are immediate, not queued"
    );
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "the queued ones still wait"
    );
    // Reads do not go through the actor.
    assert_eq!(srv.stock("hot").await["reserved"], 1);
    // Nothing refused left a trace: the cold SKU holds only the batch's
    // unit, nothing pending from the aborted order.
    let cold = surge
        .inspect_sku(&SkuId::parse("cold").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            cold.totals().reserved,
            cold.totals().pending,
            cold.pending_orders()
        ),
        (1, 0, 0)
    );
    cold.check_invariants().unwrap();
    // Unstuck: every queued request completes, the refused ones never ran.
    drop(pause);
    for w in waiting {
        let (s, b) = w.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let hot_state = surge.inspect_sku(&hot).await.unwrap();
    assert_eq!(hot_state.totals().reserved, 1 + cap as u64);
    assert_eq!(hot_state.totals().on_hand, 100);
    assert_eq!(hot_state.name.as_deref(), Some("hot"));
    hot_state.check_invariants().unwrap();
    assert_eq!(surge.sku_requests_queued(&hot), 0);
    let (s, r) = srv
        .get(&format!(
            "/v1/reservations/{}",
            held["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("active")));
    // And it takes requests again.
    let (s, _) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
}
