//! POST /v1/reservations:batch: each item answered on its own and in order,
//! a bad item refuses the whole batch, per-item idempotency, no oversell
//! under concurrent batches, and the accepted items survive a restart.

use crate::common::Srv;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

const BATCH: &str = "/v1/reservations:batch";

fn statuses(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn items_are_answered_in_order_each_on_its_own_and_survive_restart() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 6)]).await;
    srv.sku("cold", None, &[("w1", 1)]).await;
    let mut items: Vec<Value> = (0..8)
        .map(|i| json!({"sku": "hot", "qty": 1, "customer_id": format!("c{i}")}))
        .collect();
    items.insert(3, json!({"sku": "cold", "qty": 1}));
    items.push(json!({"sku": "missing", "qty": 1}));
    let (s, b) = srv.post(BATCH, json!({ "reservations": items })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        statuses(&b),
        vec![201, 201, 201, 201, 201, 201, 201, 409, 409, 404],
        "{b}"
    );
    let results = b["results"].as_array().unwrap();
    assert_eq!(results[3]["reservation"]["sku"], "cold");
    assert_eq!(results[4]["reservation"]["customer_id"], "c3");
    assert_eq!(results[7]["error"]["code"], "insufficient_stock");
    assert_eq!(results[7]["error"]["available"], 0);
    assert_eq!(results[9]["error"]["code"], "sku_not_found");
    let ids: Vec<String> = results
        .iter()
        .filter_map(|r| r["reservation"]["id"].as_str().map(String::from))
        .collect();
    assert_eq!(ids.len(), 7);
    assert_eq!(srv.stock("hot").await["reserved"], 6);

    let srv = srv.restart();
    assert_eq!(srv.stock("hot").await["reserved"], 6);
    assert_eq!(srv.stock("cold").await["available"], 0);
    for id in ids {
        let (s, b) = srv.get(&format!("/v1/reservations/{id}")).await;
        assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    }
}

#[tokio::test]
async fn one_bad_item_refuses_the_whole_batch() {
    let srv = Srv::start_with(|c| c.reservation_batch_max = 4);
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 10)]).await;
    let ok = json!({"sku": "hot", "qty": 1});
    let (s, b) = srv
        .post(
            BATCH,
            json!({"reservations": [ok, ok, {"sku": "hot", "qty": 0}, ok]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        (b["code"].as_str(), b["index"].as_u64()),
        (Some("invalid_field"), Some(2))
    );
    let (s, b) = srv
        .post(
            BATCH,
            json!({"reservations": [ok, {"sku": "bad sku!", "qty": 1}]}),
        )
        .await;
    assert_eq!(
        (s, b["index"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(1)),
        "{b}"
    );
    let (s, b) = srv.post(BATCH, json!({"reservations": []})).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reservations"))
    );
    let (s, b) = srv
        .post(BATCH, json!({"reservations": [ok, ok, ok, ok, ok]}))
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reservations")),
        "{b}"
    );
    let (s, b) = srv
        .post(BATCH, json!({"reservations": [ok], "extra": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = srv
        .post_idem(BATCH, json!({"reservations": [ok]}), "k1")
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    assert_eq!(srv.stock("hot").await["reserved"], 0, "nothing applied");
    // At the limit it is accepted.
    let (s, b) = srv
        .post(BATCH, json!({"reservations": [ok, ok, ok, ok]}))
        .await;
    assert_eq!((s, statuses(&b)), (StatusCode::OK, vec![201; 4]), "{b}");
}

#[tokio::test]
async fn items_with_an_idempotency_key_are_replayed_not_repeated() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 10)]).await;
    let body = json!({"reservations": [
        {"sku": "hot", "qty": 2, "idempotency_key": "a"},
        {"sku": "hot", "qty": 3, "idempotency_key": "b"},
        {"sku": "hot", "qty": 1},
    ]});
    let (s, first) = srv.post(BATCH, body.clone()).await;
    assert_eq!((s, statuses(&first)), (StatusCode::OK, vec![201, 201, 201]));
    let (s, again) = srv.post(BATCH, body).await;
    assert_eq!((s, statuses(&again)), (StatusCode::OK, vec![200, 200, 201]));
    for i in 0..2 {
        assert_eq!(
            first["results"][i]["reservation"]["id"],
            again["results"][i]["reservation"]["id"]
        );
    }
    assert_eq!(srv.stock("hot").await["reserved"], 2 + 3 + 1 + 1);
    // The key is shared with the single endpoint; another body is refused.
    let (s, b) = srv
        .post_idem("/v1/reservations", json!({"sku": "hot", "qty": 2}), "a")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["id"], first["results"][0]["reservation"]["id"]);
    let (s, b) = srv
        .post(
            BATCH,
            json!({"reservations": [{"sku": "hot", "qty": 9, "idempotency_key": "b"}]}),
        )
        .await;
    assert_eq!((s, statuses(&b)), (StatusCode::OK, vec![422]));
    assert_eq!(b["results"][0]["error"]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn concurrent_batches_never_oversell() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("hot", None, &[("w1", 60), ("w2", 40)]).await;
    let batches = (0..20).map(|_| {
        let items: Vec<Value> = (0..10).map(|_| json!({"sku": "hot", "qty": 1})).collect();
        srv.post(BATCH, json!({ "reservations": items }))
    });
    let mut accepted = 0;
    let mut refused = 0;
    for (s, b) in join_all(batches).await {
        assert_eq!(s, StatusCode::OK, "{b}");
        for r in b["results"].as_array().unwrap() {
            match r["status"].as_u64() {
                Some(201) => accepted += 1,
                Some(409) => {
                    assert_eq!(r["error"]["code"], "insufficient_stock");
                    refused += 1
                }
                other => panic!("unexpected {other:?}: {r}"),
            }
        }
    }
    assert_eq!((accepted, refused), (100, 100));
    let st = srv.stock("hot").await;
    assert_eq!(
        (st["available"].as_u64(), st["reserved"].as_u64()),
        (Some(0), Some(100))
    );
}
