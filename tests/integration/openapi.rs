//! `GET /v1/openapi.json` against the server's real answers: a request to
//! every operation, each answer validated against the schema the document
//! gives for its operation and status (a JSON Schema validator), and
//! checked to have no field the schema does not declare.

use crate::common::Srv;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use surge::feedclient;

struct Doc(Value);

impl Doc {
    async fn fetch(srv: &Srv) -> Doc {
        let res = srv
            .client
            .get(srv.url("/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let doc: Value = res.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        Doc(doc)
    }

    /// The schema `method template` documents for `status` (or its
    /// `default` answer).
    fn schema(&self, method: &Method, template: &str, status: StatusCode) -> &Value {
        let op = &self.0["paths"][template][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let responses = &op["responses"];
        let response = responses
            .get(status.as_str())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| panic!("{method} {template}: {status} is not documented"));
        &response["content"]["application/json"]["schema"]
    }

    /// Checks a real answer against the document.
    fn check(&self, method: Method, template: &str, status: StatusCode, body: &Value) {
        if let Err(e) = self.verify(&method, template, status, body) {
            panic!("{method} {template} {status}: {e}\nbody: {body}");
        }
    }

    /// Whether `body` matches the schema documented for the answer, and
    /// has no field the document does not declare.
    fn verify(
        &self,
        method: &Method,
        template: &str,
        status: StatusCode,
        body: &Value,
    ) -> Result<(), String> {
        self.validate(self.schema(method, template, status), body)
    }

    /// Whether `body` matches `schema` (resolved in this document) and has
    /// no field the document does not declare.
    fn validate(&self, schema: &Value, body: &Value) -> Result<(), String> {
        let mut root = schema.clone();
        root["components"] = self.0["components"].clone();
        let validator = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(format!("{errors:?}"));
        }
        self.declared(schema, body, "")
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            schema = &self.0["components"]["schemas"][name];
        }
        schema
    }

    /// `schema` and every schema it combines (`allOf`, `oneOf`, `anyOf`,
    /// nested), each resolved.
    fn combined<'a>(&'a self, schema: &'a Value, out: &mut Vec<&'a Value>) {
        let schema = self.resolve(schema);
        out.push(schema);
        for k in ["allOf", "oneOf", "anyOf"] {
            for branch in schema
                .get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.combined(branch, out);
            }
        }
    }

    /// Each property of `schema` and of the schemas it combines.
    fn properties<'a>(&'a self, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        let mut all = Vec::new();
        self.combined(schema, &mut all);
        for s in all {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                out.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
            }
        }
    }

    /// The schemas of a map's values (`additionalProperties`).
    fn map_values<'a>(&'a self, schema: &'a Value, out: &mut Vec<&'a Value>) {
        let mut all = Vec::new();
        self.combined(schema, &mut all);
        out.extend(
            all.into_iter()
                .filter_map(|s| s.get("additionalProperties").filter(|v| v.is_object())),
        );
    }

    fn items<'a>(&'a self, schema: &'a Value, out: &mut Vec<&'a Value>) {
        let mut all = Vec::new();
        self.combined(schema, &mut all);
        out.extend(all.into_iter().filter_map(|s| s.get("items")));
    }

    /// Every field of `value` is declared by `schema` (the views allow
    /// extra fields, so the validator alone would not notice a field the
    /// document does not know).
    fn declared(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        match value {
            Value::Object(map) => {
                let mut props = Vec::new();
                self.properties(schema, &mut props);
                for (key, v) in map {
                    let here = format!("{at}/{key}");
                    let mut candidates = props.iter().filter(|(k, _)| k == key).peekable();
                    if candidates.peek().is_none() {
                        // A map: any key, each value as its schema says.
                        let mut values = Vec::new();
                        self.map_values(schema, &mut values);
                        if values.iter().any(|s| self.declared(s, v, &here).is_ok()) {
                            continue;
                        }
                        return Err(format!("{here} is not in the document"));
                    }
                    let mut first = None;
                    if !candidates.any(|(_, s)| match self.declared(s, v, &here) {
                        Ok(()) => true,
                        Err(e) => {
                            first.get_or_insert(e);
                            false
                        }
                    }) {
                        return Err(first.unwrap_or_default());
                    }
                }
                Ok(())
            }
            Value::Array(values) => {
                let mut items = Vec::new();
                self.items(schema, &mut items);
                for (i, v) in values.iter().enumerate() {
                    let here = format!("{at}/{i}");
                    let ok = items.iter().any(|s| self.declared(s, v, &here).is_ok());
                    if !ok {
                        let first = items.first().map(|s| self.declared(s, v, &here));
                        return Err(match first {
                            Some(Err(e)) => e,
                            _ => format!("{here}: the document has no item schema"),
                        });
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Sends a request and checks the answer against the document.
async fn call(
    srv: &Srv,
    doc: &Doc,
    method: Method,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, answer) = srv.send(method.clone(), path, body, None).await;
    doc.check(method, template, status, &answer);
    (status, answer)
}

#[tokio::test]
async fn real_answers_match_the_document() {
    let srv = Srv::start();
    let doc = Doc::fetch(&srv).await;
    let d = &doc;
    let s = &srv;
    let (st, _) = call(s, d, Method::GET, "/healthz", "/healthz", None).await;
    assert_eq!(st, StatusCode::OK);

    let wh = json!({"name": "Main", "location": {"lat": 50.0, "lon": 8.0}, "priority": 1});
    let (st, _) = call(
        s,
        d,
        Method::PUT,
        "/v1/warehouses/{id}",
        "/v1/warehouses/w1",
        Some(wh),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    call(
        s,
        d,
        Method::GET,
        "/v1/warehouses/{id}",
        "/v1/warehouses/w1",
        None,
    )
    .await;
    let (st, list) = call(s, d, Method::GET, "/v1/warehouses", "/v1/warehouses", None).await;
    assert_eq!(
        (st, list["warehouses"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (st, _) = call(
        s,
        d,
        Method::GET,
        "/v1/warehouses/{id}",
        "/v1/warehouses/nope",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let sku = json!({"name": "Tee", "per_customer_limit": 5});
    let (st, _) = call(
        s,
        d,
        Method::PUT,
        "/v1/skus/{sku}",
        "/v1/skus/tee",
        Some(sku),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let adj = json!({"sku": "tee", "warehouse": "w1", "delta": 10, "reason": "receipt"});
    let (st, _) = call(
        s,
        d,
        Method::POST,
        "/v1/stock/adjustments",
        "/v1/stock/adjustments",
        Some(adj),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, stock) = call(
        s,
        d,
        Method::GET,
        "/v1/skus/{sku}/stock",
        "/v1/skus/tee/stock",
        None,
    )
    .await;
    assert_eq!(
        (st, stock["available"].as_u64()),
        (StatusCode::OK, Some(10))
    );
    let cas = json!({"sku": "tee", "warehouse": "w1", "set_on_hand": 3, "expected_on_hand": 99, "reason": "count"});
    let (st, e) = call(
        s,
        d,
        Method::POST,
        "/v1/stock/adjustments",
        "/v1/stock/adjustments",
        Some(cas),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("stock_changed"))
    );

    let hold =
        json!({"sku": "tee", "qty": 2, "customer_id": "c1", "channel": "web", "ttl_ms": 60000});
    let (st, r) = call(
        s,
        d,
        Method::POST,
        "/v1/reservations",
        "/v1/reservations",
        Some(hold),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let id = r["id"].as_str().unwrap().to_owned();
    let one = format!("/v1/reservations/{id}");
    call(s, d, Method::GET, "/v1/reservations/{id}", &one, None).await;
    let (st, _) = call(
        s,
        d,
        Method::POST,
        "/v1/reservations/{id}/extend",
        &format!("{one}/extend"),
        Some(json!({"ttl_ms": 120000})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(s, d, Method::DELETE, "/v1/reservations/{id}", &one, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = call(s, d, Method::DELETE, "/v1/reservations/{id}", &one, None).await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("reservation_not_active"))
    );
    let (st, _) = call(
        s,
        d,
        Method::GET,
        "/v1/reservations/{id}",
        "/v1/reservations/res_999999",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let too_many = json!({"sku": "tee", "qty": 6, "customer_id": "c1"});
    let (st, e) = call(
        s,
        d,
        Method::POST,
        "/v1/reservations",
        "/v1/reservations",
        Some(too_many),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("purchase_limit_exceeded")
        )
    );
    let (st, e) = call(
        s,
        d,
        Method::POST,
        "/v1/reservations",
        "/v1/reservations",
        Some(json!({"sku": "tee"})),
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );

    let batch = json!({"reservations": [
        {"sku": "tee", "qty": 1, "customer_id": "c2"},
        {"sku": "tee", "qty": 9, "customer_id": "c3"},
        {"sku": "nope", "qty": 1},
    ]});
    let (st, b) = call(
        s,
        d,
        Method::POST,
        "/v1/reservations:batch",
        "/v1/reservations:batch",
        Some(batch),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let statuses: Vec<u64> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 422, 404], "{b}");
    let held = b["results"][0]["reservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let order = json!({
        "channel": "web", "customer_id": "c2",
        "ship_to": {"lat": 50.1, "lon": 8.6, "country": "DE"},
        "lines": [{"sku": "tee", "qty": 1, "reservation_id": held}],
    });
    let (st, o) = call(s, d, Method::POST, "/v1/orders", "/v1/orders", Some(order)).await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    assert_eq!(o["shipments"].as_array().unwrap().len(), 1, "{o}");
    let oid = o["id"].as_str().unwrap().to_owned();
    // The consumed reservation carries its order.
    let (_, r) = call(
        s,
        d,
        Method::GET,
        "/v1/reservations/{id}",
        &format!("/v1/reservations/{held}"),
        None,
    )
    .await;
    assert_eq!(r["order_id"].as_str(), Some(oid.as_str()));
    call(
        s,
        d,
        Method::GET,
        "/v1/orders/{id}",
        &format!("/v1/orders/{oid}"),
        None,
    )
    .await;
    let cancel = format!("/v1/orders/{oid}/cancel");
    let (st, _) = call(
        s,
        d,
        Method::POST,
        "/v1/orders/{id}/cancel",
        &cancel,
        Some(json!({"reason": "changed mind"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = call(s, d, Method::POST, "/v1/orders/{id}/cancel", &cancel, None).await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    assert_eq!(e["status"], "cancelled", "{e}");
    let list = "/v1/orders?status=cancelled&channel=web&limit=1";
    let (st, page) = call(s, d, Method::GET, "/v1/orders", list, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        page["orders"][0]["id"].as_str(),
        Some(oid.as_str()),
        "{page}"
    );
    let (st, e) = call(s, d, Method::GET, "/v1/orders", "/v1/orders?limit=0", None).await;
    assert_eq!(
        (st, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (st, _) = call(
        s,
        d,
        Method::GET,
        "/v1/orders/{id}",
        "/v1/orders/ord_999999",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, _) = call(s, d, Method::GET, "/v1/feed/stats", "/v1/feed/stats", None).await;
    assert_eq!(st, StatusCode::OK);
    // Without an upgrade the feed answers its documented error.
    let (st, e) = call(s, d, Method::GET, "/v1/feed", "/v1/feed?topics=stock", None).await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("websocket_required"))
    );
    let (st, e) = call(
        s,
        d,
        Method::GET,
        "/v1/feed",
        "/v1/feed?topics=nope:x",
        None,
    )
    .await;
    assert_eq!(
        (st, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
}

/// The checks above catch a disagreement: a field the document does not
/// declare, a missing required field, a wrong type.
#[tokio::test]
async fn the_checks_catch_a_shape_that_disagrees() {
    let srv = Srv::start();
    let doc = Doc::fetch(&srv).await;
    let view = json!({"id": "w1", "name": "W", "location": {"lat": 1.0, "lon": 2.0}, "priority": 0,
                      "enabled": true, "countries": [], "channels": [], "capacity_per_day": null,
                      "cutoff": null, "shipping_cost": null,
                      "workload": {"day": "2026-11-28", "routed": 0, "capacity_per_day": null,
                                   "at_capacity": false}});
    let check = |v: Value| {
        doc.verify(&Method::GET, "/v1/warehouses/{id}", StatusCode::OK, &v)
            .is_ok()
    };
    assert!(check(view.clone()));
    let mut extra = view.clone();
    extra["location"]["alt"] = json!(3);
    assert!(!check(extra), "an undeclared nested field");
    let mut missing = view.clone();
    missing.as_object_mut().unwrap().remove("priority");
    assert!(!check(missing), "a missing required field");
    let mut wrong = view;
    wrong["priority"] = json!("high");
    assert!(!check(wrong), "a field of the wrong type");
}

/// The feed is documented as a WebSocket upgrade with its query
/// parameters, and the messages it sends as a schema.
#[tokio::test]
async fn the_feed_is_documented_as_an_upgrade() {
    let srv = Srv::start();
    let doc = Doc::fetch(&srv).await;
    let feed = &doc.0["paths"]["/v1/feed"]["get"];
    assert!(feed["responses"]["101"].is_object(), "{feed}");
    let params: Vec<(&str, &str)> = feed["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
        .collect();
    for name in ["topics", "since", "epoch", "conflate_ms"] {
        assert!(params.contains(&(name, "query")), "{name}: {params:?}");
    }
    assert!(doc.0["components"]["schemas"]["ServerMsg"].is_object());
}

/// Every kind of message the feed sent while a SKU was held, extended,
/// released, ordered and cancelled matches the document's `ServerMsg`.
#[tokio::test]
async fn feed_messages_match_the_document() {
    let srv = Srv::start();
    let doc = Doc::fetch(&srv).await;
    let server_msg = json!({"$ref": "#/components/schemas/ServerMsg"});
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let topics = "all,stock,holds,orders,sku:tee,warehouse:w1,order:ord_1";
    let mut ws = feedclient::connect(&srv.url(""), &format!("topics={topics}"))
        .await
        .unwrap();
    let (st, r) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 10, "customer_id": "c1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let hold = format!("/v1/reservations/{}", r["id"].as_str().unwrap());
    let (st, _) = srv
        .post(&format!("{hold}/extend"), json!({"ttl_ms": 60000}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(srv.delete(&hold).await.0, StatusCode::OK);
    let order = json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 48.1, "lon": 11.5},
                       "lines": [{"sku": "tee", "qty": 10}]});
    let (st, o) = srv.post("/v1/orders", order).await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    let cancel = format!("/v1/orders/{}/cancel", o["id"].as_str().unwrap());
    assert_eq!(srv.post(&cancel, json!({})).await.0, StatusCode::OK);
    let mut kinds = BTreeSet::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), feedclient::next_json(&mut ws))
            .await
            .expect("a feed message in time")
            .unwrap()
            .expect("the connection is open");
        if let Err(e) = doc.validate(&server_msg, &msg) {
            panic!("a feed message disagrees with ServerMsg: {e}\n{msg}");
        }
        let kind = match msg["type"].as_str().unwrap() {
            "event" => msg["event"].as_str().unwrap().to_owned(),
            other => other.to_owned(),
        };
        let done = kind == "order_status_changed";
        kinds.insert(kind);
        if done {
            break;
        }
    }
    for kind in [
        "hello",
        "snapshot",
        "hold_created",
        "hold_extended",
        "hold_released",
        "stock_changed",
        "sold_out",
        "back_in_stock",
        "order_created",
        "order_routed",
    ] {
        assert!(kinds.contains(kind), "no {kind} seen: {kinds:?}");
    }
}
