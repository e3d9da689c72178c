//! Routing's state over HTTP: warehouse attributes and the rule chains in
//! force, stored, validated, served, and kept across restarts and
//! snapshots.

use crate::common::Srv;
use crate::holds::eventually;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use surge::auth::{hash_hex, KeyConfig};
use surge::wal::store::MemStore;

fn base() -> Value {
    json!({"name": "Berlin", "location": {"lat": 52.5, "lon": 13.4}, "priority": 1})
}

fn with(extra: Value) -> Value {
    let mut body = base();
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn full() -> Value {
    with(json!({
        "enabled": false,
        "countries": ["de", "AT", "DE"],
        "channels": ["web", "app", "web"],
        "capacity_per_day": 500,
        "cutoff": {"time": "15:00", "tz": "Europe/Berlin"},
        "shipping_cost": {"fixed": 500, "per_km": 2, "by_country": {"de": {"fixed": 300, "per_km": 1}}},
    }))
}

/// What `full()` is stored as: codes upper-cased, lists sorted and
/// deduplicated.
fn full_view() -> Value {
    json!({
        "id": "berlin", "name": "Berlin", "location": {"lat": 52.5, "lon": 13.4}, "priority": 1,
        "enabled": false, "countries": ["AT", "DE"], "channels": ["app", "web"],
        "capacity_per_day": 500, "cutoff": {"time": "15:00", "tz": "Europe/Berlin"},
        "shipping_cost": {"fixed": 500, "per_km": 2, "by_country": {"DE": {"fixed": 300, "per_km": 1}}},
    })
}

/// A warehouse as `GET` answers it, less its workload (a figure of the
/// day, checked in `workload.rs`).
fn without_workload(mut w: Value) -> Value {
    assert!(w["workload"].is_object(), "{w}");
    w.as_object_mut().unwrap().remove("workload");
    w
}

#[tokio::test]
async fn warehouse_attributes_are_stored_normalised_and_served() {
    let srv = Srv::start();
    let (s, w) = srv.put("/v1/warehouses/berlin", full()).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w, full_view());
    assert_eq!(
        without_workload(srv.get("/v1/warehouses/berlin").await.1),
        full_view()
    );
    assert_eq!(
        without_workload(srv.get("/v1/warehouses").await.1["warehouses"][0].clone()),
        full_view()
    );
    // An old body (no attributes) still works, and means the defaults.
    let (s, w) = srv.put("/v1/warehouses/berlin", base()).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(
        w,
        json!({
            "id": "berlin", "name": "Berlin", "location": {"lat": 52.5, "lon": 13.4}, "priority": 1,
            "enabled": true, "countries": [], "channels": [], "capacity_per_day": null,
            "cutoff": null, "shipping_cost": null,
        })
    );
    // null is the same as absent.
    let (s, w) = srv
        .put(
            "/v1/warehouses/berlin",
            with(json!({"capacity_per_day": null, "cutoff": null, "shipping_cost": null, "countries": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["capacity_per_day"], Value::Null);
}

#[tokio::test]
async fn every_bad_attribute_is_a_400_naming_its_field() {
    let srv = Srv::start();
    let cases = [
        (json!({"enabled": "yes"}), None),
        (json!({"countries": ["DEU"]}), Some("countries")),
        (json!({"countries": ["D"]}), Some("countries")),
        (json!({"countries": ["1A"]}), Some("countries")),
        (json!({"countries": ["dé"]}), Some("countries")),
        (json!({"countries": "DE"}), None),
        (json!({"channels": ["no spaces"]}), Some("channels")),
        (json!({"channels": [""]}), Some("channels")),
        (json!({"capacity_per_day": 0}), Some("capacity_per_day")),
        (json!({"capacity_per_day": -1}), None),
        (
            json!({"cutoff": {"time": "25:00", "tz": "Europe/Berlin"}}),
            Some("cutoff.time"),
        ),
        (
            json!({"cutoff": {"time": "15:60", "tz": "Europe/Berlin"}}),
            Some("cutoff.time"),
        ),
        (
            json!({"cutoff": {"time": "3:00", "tz": "Europe/Berlin"}}),
            Some("cutoff.time"),
        ),
        (
            json!({"cutoff": {"time": "15:00:00", "tz": "Europe/Berlin"}}),
            Some("cutoff.time"),
        ),
        (
            json!({"cutoff": {"time": "15:00", "tz": "Europe/Atlantis"}}),
            Some("cutoff.tz"),
        ),
        (
            json!({"cutoff": {"time": "15:00", "tz": "+02:00"}}),
            Some("cutoff.tz"),
        ),
        (json!({"cutoff": {"time": "15:00"}}), None),
        (
            json!({"cutoff": {"time": "15:00", "tz": "UTC", "day": 1}}),
            None,
        ),
        (json!({"shipping_cost": {"fixed": -5}}), None),
        (json!({"shipping_cost": {"fixed": 1, "per_mile": 1}}), None),
        (
            json!({"shipping_cost": {"by_country": {"Germany": {"fixed": 1}}}}),
            Some("shipping_cost.by_country"),
        ),
        (
            json!({"shipping_cost": {"by_country": {"de": {"fixed": 1}, "DE": {"fixed": 2}}}}),
            Some("shipping_cost.by_country"),
        ),
    ];
    for (extra, field) in cases {
        let (s, b) = srv.put("/v1/warehouses/berlin", with(extra.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {b}");
        assert_eq!(b["code"], "invalid_field", "{extra}: {b}");
        if let Some(field) = field {
            assert_eq!(b["field"], field, "{extra}: {b}");
        }
    }
    // Nothing was stored.
    assert_eq!(
        srv.get("/v1/warehouses/berlin").await.0,
        StatusCode::NOT_FOUND
    );
    // A real zone other than Europe's, and the last minute of the day.
    let (s, b) = srv
        .put(
            "/v1/warehouses/berlin",
            with(json!({"cutoff": {"time": "23:59", "tz": "America/Argentina/Buenos_Aires"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn attribute_lists_are_bounded_by_config_at_the_edge() {
    let srv = Srv::start_with(|c| {
        c.routing.warehouse_countries_max = 2;
        c.routing.warehouse_channels_max = 2;
        c.routing.shipping_cost_countries_max = 2;
    });
    let ok = [
        json!({"countries": ["DE", "AT"]}),
        json!({"channels": ["web", "app"]}),
        json!({"shipping_cost": {"by_country": {"DE": {}, "AT": {}}}}),
    ];
    for extra in ok {
        let (s, b) = srv.put("/v1/warehouses/w", with(extra.clone())).await;
        assert_eq!(s, StatusCode::OK, "{extra}: {b}");
    }
    let over = [
        (json!({"countries": ["DE", "AT", "FR"]}), "countries"),
        (json!({"channels": ["web", "app", "pos"]}), "channels"),
        (
            json!({"shipping_cost": {"by_country": {"DE": {}, "AT": {}, "FR": {}}}}),
            "shipping_cost.by_country",
        ),
    ];
    for (extra, field) in over {
        let (s, b) = srv.put("/v1/warehouses/w", with(extra.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {b}");
        assert_eq!(b["field"], field, "{b}");
        assert!(b["message"].as_str().unwrap().contains("at most 2"), "{b}");
    }
}

fn default_rules() -> Value {
    json!({
        "rules": ["enabled", "serves_destination", "serves_channel", "fewest_shipments", "nearest", "priority"],
        "split": "allow", "source": "config",
    })
}

#[tokio::test]
async fn rules_are_configured_overridden_at_run_time_and_reset() {
    let srv = Srv::start_with(|c| {
        c.routing.channels.insert(
            "wholesale".into(),
            surge::config::ChannelChainConfig {
                rules: vec!["enabled".into(), "lowest_cost".into()],
                split: "forbid".into(),
            },
        );
    });
    let wholesale =
        json!({"rules": ["enabled", "lowest_cost"], "split": "forbid", "source": "config"});
    let (s, b) = srv.get("/v1/routing/rules").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"default": default_rules(), "channels": {"wholesale": wholesale}})
    );

    // A channel of its own, at run time.
    let (s, b) = srv
        .put(
            "/v1/routing/rules",
            json!({"channel": "web", "rules": ["enabled", "nearest"], "split": "max_shipments:2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let web =
        json!({"rules": ["enabled", "nearest"], "split": "max_shipments:2", "source": "runtime"});
    assert_eq!(b["channels"]["web"], web);
    // The default chain, at run time; split defaults to allow.
    let (s, b) = srv
        .put("/v1/routing/rules", json!({"rules": ["priority"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let default = json!({"rules": ["priority"], "split": "allow", "source": "runtime"});
    assert_eq!(b["default"], default);
    // A configured channel, overridden.
    let (s, b) = srv
        .put("/v1/routing/rules", json!({"channel": "wholesale", "rules": ["capacity:rank", "priority"], "split": "allow"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["channels"]["wholesale"]["source"], "runtime");
    let surge = srv.bg().surge.clone();
    let in_force = surge.routing_rules();
    assert_eq!(in_force.default.rules.len(), 1);
    assert_eq!(in_force.channels.len(), 2);
    drop(surge);

    // All of it survives a restart (replayed from the log).
    let before = srv.get("/v1/routing/rules").await.1;
    let srv = srv.restart();
    assert_eq!(srv.get("/v1/routing/rules").await.1, before);

    // Back to what config says: DELETE, or PUT with rules null.
    let (s, b) = srv.delete("/v1/routing/rules?channel=wholesale").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["channels"]["wholesale"], wholesale);
    let (s, b) = srv
        .put(
            "/v1/routing/rules",
            json!({"channel": "web", "rules": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["channels"].get("web").is_none(), "{b}");
    let (s, b) = srv.delete("/v1/routing/rules").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let back = json!({"default": default_rules(), "channels": {"wholesale": wholesale}});
    assert_eq!(b, back);
    let srv = srv.restart();
    assert_eq!(srv.get("/v1/routing/rules").await.1, back);
}

#[tokio::test]
async fn bad_rules_are_a_400_and_change_nothing() {
    let srv = Srv::start();
    let cases = [
        (
            json!({"rules": ["nearest", "closest"]}),
            "rules",
            "unknown routing rule \"closest\"",
        ),
        (
            json!({"rules": ["nearest", "nearest"]}),
            "rules",
            "more than once",
        ),
        (
            json!({"rules": ["capacity", "capacity:rank"]}),
            "rules",
            "more than once",
        ),
        (
            json!({"rules": ["nearest"], "split": "max_shipments:0"}),
            "split",
            "at least 1",
        ),
        (
            json!({"rules": ["nearest"], "split": "sometimes"}),
            "split",
            "max_shipments:N",
        ),
        (
            json!({"channel": "no spaces", "rules": ["nearest"]}),
            "channel",
            "",
        ),
        (json!({"channel": "web"}), "rules", "required"),
    ];
    for (body, field, says) in cases {
        let (s, b) = srv.put("/v1/routing/rules", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(b["code"], "invalid_field", "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
        assert!(b["message"].as_str().unwrap().contains(says), "{body}: {b}");
    }
    let (s, b) = srv
        .put(
            "/v1/routing/rules",
            json!({"rules": ["nearest"], "extra": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = srv.delete("/v1/routing/rules?channel=no%20spaces").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        srv.get("/v1/routing/rules").await.1,
        json!({"default": default_rules(), "channels": {}})
    );
}

#[tokio::test]
async fn only_admin_changes_rules_and_readers_read_them() {
    let key = |name: &str, secret: &str, scopes: &[&str]| KeyConfig {
        name: name.into(),
        sha256: hash_hex(secret),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let srv = Srv::start_with(|c| {
        c.keys = vec![
            key("ops", "k-admin", &["admin"]),
            key("web", "k-web", &["storefront"]),
            key("reader", "k-read", &["read"]),
        ];
    });
    let call = |bearer: &'static str, method: Method, path: &'static str, body: Option<Value>| {
        let mut req = srv
            .client
            .request(method, srv.url(path))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        } else {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let body = || Some(json!({"rules": ["priority"]}));
    for k in ["k-web", "k-read"] {
        let (s, b) = call(k, Method::PUT, "/v1/routing/rules", body()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{k}: {b}");
        assert_eq!(b["code"], "forbidden");
        let (s, b) = call(k, Method::DELETE, "/v1/routing/rules", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{k}: {b}");
    }
    let (s, b) = call("k-web", Method::GET, "/v1/routing/rules", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = call("k-read", Method::GET, "/v1/routing/rules", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["default"]["source"], "config");
    let (s, b) = call("k-admin", Method::PUT, "/v1/routing/rules", body()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["default"]["source"], "runtime");
}

#[tokio::test]
async fn attributes_and_rules_survive_a_restart_and_a_snapshot() {
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |c| c.snapshot_every_events = 4);
    let (s, b) = srv.put("/v1/warehouses/berlin", full()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = srv
        .put(
            "/v1/routing/rules",
            json!({"channel": "web", "rules": ["enabled", "same_day"], "split": "forbid"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Enough more writes for a snapshot to cover the two above.
    for i in 0..8 {
        srv.warehouse(&format!("w{i}"), i).await;
    }
    let surge = srv.bg().surge.clone();
    let stats = surge.checkpoint_stats();
    assert!(
        eventually(Duration::from_secs(20), async || stats
            .last_seq
            .load(Ordering::Acquire)
            >= 3)
        .await,
        "no snapshot"
    );
    drop(surge);
    let rules = srv.get("/v1/routing/rules").await.1;
    drop(srv);
    let srv = Srv::start_mem(store.reopen(), |c| c.snapshot_every_events = 4);
    assert_eq!(
        without_workload(srv.get("/v1/warehouses/berlin").await.1),
        full_view()
    );
    assert_eq!(srv.get("/v1/routing/rules").await.1, rules);
    assert_eq!(rules["channels"]["web"]["source"], "runtime");
}
