//! API keys, scopes and protected mode, over real HTTP.

use crate::common::Srv;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use surge::auth::{hash_hex, KeyConfig};
use surge::config::Config;

const ADMIN: &str = "k-admin";
const WEB: &str = "k-web";
const BERLIN: &str = "k-berlin";
const READER: &str = "k-read";
const SKU_FEED: &str = "k-sku-feed";

fn key(name: &str, key: &str, scopes: &[&str]) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        sha256: hash_hex(key),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn keyed(c: &mut Config) {
    c.keys = vec![
        key("ops", ADMIN, &["admin"]),
        key("web", WEB, &["storefront"]),
        key("berlin", BERLIN, &["warehouse:berlin"]),
        key("reader", READER, &["read"]),
        key("sku-feed", SKU_FEED, &["feed:sku:a"]),
    ];
}

async fn call(
    srv: &Srv,
    bearer: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = srv.client.request(method.clone(), srv.url(path));
    if let Some(k) = bearer {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    } else if crate::common::json_method(&method) {
        req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A keyed server with warehouses berlin and paris and SKU `a` in both.
async fn keyed_server() -> Srv {
    let srv = Srv::start_with(keyed);
    for (w, p) in [("berlin", 1), ("paris", 2)] {
        let (s, b) = call(
            &srv,
            Some(ADMIN),
            Method::PUT,
            &format!("/v1/warehouses/{w}"),
            Some(json!({"name": w, "location": {"lat": 50.0, "lon": 8.0}, "priority": p})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = call(
        &srv,
        Some(ADMIN),
        Method::PUT,
        "/v1/skus/a",
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    srv
}

fn adjustment(warehouse: &str, delta: i64) -> Value {
    json!({"sku": "a", "warehouse": warehouse, "delta": delta, "reason": "receipt"})
}

#[tokio::test]
async fn no_key_or_an_unknown_key_is_401_and_health_stays_open() {
    let srv = keyed_server().await;
    for bearer in [None, Some("k-nope"), Some(&hash_hex(ADMIN)[..])] {
        let (s, b) = call(&srv, bearer, Method::GET, "/v1/warehouses", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bearer:?}: {b}");
        assert_eq!(b["code"], "unauthenticated");
    }
    // Not a bearer token at all.
    let res = srv
        .client
        .get(srv.url("/v1/warehouses"))
        .basic_auth("ops", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    // Unknown routes are refused before they are looked up.
    let (s, _) = call(&srv, None, Method::GET, "/v1/nope", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = call(&srv, None, Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = call(&srv, Some(ADMIN), Method::GET, "/v1/warehouses", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_storefront_key_reserves_but_cannot_adjust_stock_or_change_the_catalogue() {
    let srv = keyed_server().await;
    let (s, b) = call(
        &srv,
        Some(ADMIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("berlin", 10)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        &srv,
        Some(WEB),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("berlin", 1000)),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["code"], "forbidden");
    assert!(b["message"].as_str().unwrap().contains("web"), "{b}");
    for (m, path, body) in [
        (Method::PUT, "/v1/skus/a", json!({"name": "free"})),
        (
            Method::PUT,
            "/v1/warehouses/x",
            json!({"name": "x", "location": {"lat": 1.0, "lon": 1.0}, "priority": 1}),
        ),
    ] {
        let (s, b) = call(&srv, Some(WEB), m, path, Some(body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {b}");
    }
    let (s, b) = call(
        &srv,
        Some(WEB),
        Method::POST,
        "/v1/reservations",
        Some(json!({"sku": "a", "qty": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    let (s, b) = call(&srv, Some(WEB), Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["on_hand"], 10, "the refused adjustment changed nothing");
    assert_eq!(b["reserved"], 2);
    let (s, _) = call(
        &srv,
        Some(WEB),
        Method::DELETE,
        &format!("/v1/reservations/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_read_key_reads_but_writes_nothing() {
    let srv = keyed_server().await;
    for path in ["/v1/warehouses", "/v1/skus/a/stock", "/v1/feed/stats"] {
        let (s, b) = call(&srv, Some(READER), Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }
    let (s, b) = call(
        &srv,
        Some(READER),
        Method::POST,
        "/v1/reservations",
        Some(json!({"sku": "a", "qty": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // The feed has a scope of its own.
    let (s, _) = call(&srv, Some(READER), Method::GET, "/v1/feed", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_warehouse_key_touches_its_own_warehouse_only() {
    let srv = keyed_server().await;
    let (s, b) = call(
        &srv,
        Some(BERLIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("berlin", 5)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        &srv,
        Some(BERLIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("paris", 5)),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["code"], "forbidden");
    let (s, b) = call(&srv, Some(ADMIN), Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::OK);
    let rows = b["warehouses"].as_array().unwrap();
    let on_hand = |w: &str| {
        rows.iter()
            .find(|r| r["warehouse"] == w)
            .map_or(0, |r| r["on_hand"].as_u64().unwrap())
    };
    assert_eq!((on_hand("berlin"), on_hand("paris")), (5, 0), "{b}");
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        "/v1/warehouses/berlin",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        "/v1/warehouses/paris",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::POST,
        "/v1/reservations",
        Some(json!({"sku": "a", "qty": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// A warehouse key works its own warehouse's fulfilments only, and
/// receives (and restocks) only what its own warehouse shipped.
#[tokio::test]
async fn a_warehouse_key_works_its_own_fulfilments_and_returns_only() {
    let srv = keyed_server().await;
    for w in ["berlin", "paris"] {
        let (s, b) = call(
            &srv,
            Some(ADMIN),
            Method::POST,
            "/v1/stock/adjustments",
            Some(adjustment(w, 5)),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // Berlin first (priority), then paris for what berlin lacks.
    let (s, o) = call(
        &srv,
        Some(ADMIN),
        Method::POST,
        "/v1/orders",
        Some(
            json!({"channel": "web", "customer_id": "c", "ship_to": {"lat": 50.0, "lon": 8.0},
                     "lines": [{"sku": "a", "qty": 7}]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let ful = |w: &str| {
        o["fulfillments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["warehouse"] == w)
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (berlin, paris) = (ful("berlin"), ful("paris"));
    let post = |path: String, body: Value| {
        let srv = &srv;
        async move { call(srv, Some(BERLIN), Method::POST, &path, Some(body)).await }
    };
    let (s, b) = post(format!("/v1/fulfillments/{paris}/accept"), json!({})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{b}"
    );
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        &format!("/v1/fulfillments/{paris}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        "/v1/warehouses/paris/fulfillments",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, list) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        "/v1/warehouses/berlin/fulfillments",
        None,
    )
    .await;
    assert_eq!(
        (s, list["fulfillments"][0]["id"].as_str()),
        (StatusCode::OK, Some(berlin.as_str()))
    );
    for step in ["accept", "ship"] {
        let body = if step == "ship" {
            json!({"carrier": "dhl", "tracking": "t"})
        } else {
            json!({})
        };
        let (s, b) = post(format!("/v1/fulfillments/{berlin}/{step}"), body).await;
        assert_eq!(s, StatusCode::OK, "{step}: {b}");
    }
    // Paris ships its part too (admin), then both come back.
    for (step, body) in [
        ("accept", json!({})),
        ("ship", json!({"carrier": "ups", "tracking": "u"})),
    ] {
        let (s, b) = call(
            &srv,
            Some(ADMIN),
            Method::POST,
            &format!("/v1/fulfillments/{paris}/{step}"),
            Some(body),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, r) = call(
        &srv,
        Some(ADMIN),
        Method::POST,
        &format!("/v1/orders/{id}/returns"),
        Some(json!({"lines": [{"sku": "a", "qty": 2}], "reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let receive = format!("/v1/returns/{}/receive", r["id"].as_str().unwrap());
    // Into paris: not berlin's to receive.
    let (s, _) = post(
        receive.clone(),
        json!({"restock": true, "warehouse": "paris"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = post(receive.clone(), json!({"restock": true})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = post(receive, json!({"restock": true, "warehouse": "berlin"})).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("received")),
        "{b}"
    );
}

#[tokio::test]
async fn a_feed_key_is_held_to_its_topic_prefixes() {
    use surge::feedclient;
    let srv = keyed_server().await;
    let base = srv.url("");
    // Allowed: a topic under the prefix, at connect.
    let mut ws = feedclient::connect_with_key(&base, "topics=sku:a", Some(SKU_FEED))
        .await
        .unwrap();
    let mut subscribed = false;
    while let Some(m) = feedclient::next_json(&mut ws).await.unwrap() {
        if m["type"] == "subscribed" {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed);
    // Refused in-band: a topic outside it.
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"op": "subscribe", "topics": ["all"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let m = loop {
        let m = feedclient::next_json(&mut ws).await.unwrap().unwrap();
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(m["code"], "forbidden", "{m}");
    // Refused at connect, before the upgrade.
    for topics in ["topics=orders", "topics=sku:a,stock", "topics=sku:b"] {
        let (s, b) = call(
            &srv,
            Some(SKU_FEED),
            Method::GET,
            &format!("/v1/feed?{topics}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{topics}: {b}");
    }
    assert!(
        feedclient::connect_with_key(&base, "topics=orders", Some(SKU_FEED))
            .await
            .is_err()
    );
    // Without a key, and with a key without a feed scope.
    assert!(feedclient::connect(&base, "topics=sku:a").await.is_err());
    assert!(
        feedclient::connect_with_key(&base, "topics=sku:a", Some(WEB))
            .await
            .is_err()
    );
    // An admin key may follow everything.
    assert!(
        feedclient::connect_with_key(&base, "topics=all", Some(ADMIN))
            .await
            .is_ok()
    );
    // A feed key cannot use the HTTP API.
    let (s, _) = call(&srv, Some(SKU_FEED), Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// Every route the API registers (walked from `api::register`'s route
/// table) has a row in `api::auth::ROUTES`, so a new route cannot be left
/// out (it would be admin-only until it is added).
#[test]
fn every_registered_route_has_a_row_in_the_scope_table() {
    let config = Config::default_config();
    let mut table = Vec::new();
    let _app = actix_web::App::new().configure(|cfg| table = surge::api::register(cfg, &config));
    assert!(table.len() >= 15, "routes not found: {table:?}");
    let missing: Vec<_> = table
        .iter()
        .filter(|r| !surge::api::auth::has_row(r.method.as_str(), &r.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in api::auth::ROUTES: {missing:?}"
    );
}

#[tokio::test]
async fn the_dashboard_files_need_any_key() {
    let srv = keyed_server().await;
    for path in ["/", "/assets/dashboard.js"] {
        let (s, _) = call(&srv, None, Method::GET, path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        let (s, _) = call(&srv, Some(READER), Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
}

/// `surge keys new` prints a key, then TOML that configures it.
#[tokio::test]
async fn keys_new_prints_a_key_and_config_lines_that_work() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(["keys", "new", "--name", "ops", "--scope", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (key, toml) = text.split_once('\n').unwrap();
    assert!(key.starts_with("surge_") && key.len() == 70, "{key}");
    assert!(!toml.contains(key), "the key is printed once");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("surge.toml");
    std::fs::write(&file, toml).unwrap();
    let config = Config::load(
        Some(&file),
        &Default::default(),
        &surge::config::Overrides::default(),
    )
    .unwrap();
    assert_eq!(config.keys.len(), 1);
    assert_eq!(config.keys[0].sha256, hash_hex(key));
    let srv = Srv::start_with(|c| c.keys = config.keys.clone());
    let (s, b) = call(
        &srv,
        Some(key),
        Method::PUT,
        "/v1/skus/a",
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = call(&srv, None, Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(["keys", "new", "--name", "x", "--scope", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));
}

#[test]
fn keys_come_from_the_environment_and_a_keys_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, key("b", "kb", &["read"]).to_toml()).unwrap();
    let env = [
        (
            "SURGE_KEYS".to_string(),
            format!("[{}]", key("a", "ka", &["admin"]).to_inline_toml()),
        ),
        ("SURGE_KEYS_FILE".to_string(), file.display().to_string()),
    ]
    .into();
    let c = Config::load(None, &env, &Default::default()).unwrap();
    let names: Vec<&str> = c.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let bad = [("SURGE_KEYS".to_string(), "web".to_string())].into();
    assert!(Config::load(None, &bad, &Default::default()).is_err());
    let bad = [(
        "SURGE_KEYS".to_string(),
        "[{ name = \"a\", sha256 = \"00\", scopes = [\"admin\"] }]".to_string(),
    )]
    .into();
    let e = Config::load(None, &bad, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("64 hex"), "{e}");
}

#[tokio::test]
async fn loadgen_runs_against_a_keyed_server_with_key() {
    let srv = Srv::start_with(keyed);
    let mut o = surge::loadgen::Options::new(&srv.url(""));
    o.connections = 4;
    o.requests = 50;
    o.stock = 40;
    o.subscribers = 1;
    o.duration_s = 20.0;
    o.quiet = true;
    let refused = surge::loadgen::run(o.clone()).await;
    assert!(refused.is_err(), "no key: the setup is refused");
    o.key = Some(ADMIN.into());
    let r = surge::loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    assert_eq!(r.units_acknowledged, 40, "{}", r.table());
}

/// Without keys, a server on loopback serves loopback clients as before.
#[tokio::test]
async fn protected_mode_serves_loopback_clients() {
    let srv = Srv::start();
    let (s, b) = srv.get("/v1/warehouses").await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// `surge serve` on a non-loopback address without keys stops at once,
/// before it binds or opens anything.
#[test]
fn serve_refuses_a_non_loopback_listen_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_surge"));
    cmd.args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data);
    // The test's own SURGE_* switches are not server settings.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SURGE_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("allow_non_loopback_without_keys") && err.contains("surge keys new"),
        "{err}"
    );
    assert!(!data.exists(), "nothing opened");
}

/// A non-loopback address the test adds, removed on drop: on a dummy
/// interface of its own, or, where the kernel has no dummy driver, on `lo`
/// (an address outside 127.0.0.0/8 is not loopback wherever it lives).
struct TestAddr {
    ip: std::net::Ipv4Addr,
    /// The dummy interface, when one was made.
    dummy: Option<String>,
}

fn ip_cmd(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestAddr {
    /// The reason when none can be made (not root, no `ip`).
    fn create() -> Result<TestAddr, String> {
        let pid = std::process::id();
        // 198.18.0.0/15 is for benchmarking, never routed publicly; the
        // process id keeps parallel runs apart.
        let ip = std::net::Ipv4Addr::new(198, 18, (pid >> 8) as u8, (pid as u8).max(1));
        let cidr = format!("{ip}/32");
        let name = format!("sgauth{}", pid % 100_000);
        let dummy = match ip_cmd(&["link", "add", &name, "type", "dummy"]) {
            Ok(()) => Some(name),
            Err(why) => {
                eprintln!("no dummy interface ({why}); adding {ip} to lo instead");
                None
            }
        };
        let addr = TestAddr { ip, dummy };
        match &addr.dummy {
            Some(name) => {
                ip_cmd(&["addr", "add", &cidr, "dev", name])?;
                ip_cmd(&["link", "set", name, "up"])?;
            }
            None => ip_cmd(&["addr", "add", &cidr, "dev", "lo"])?,
        }
        Ok(addr)
    }
}

impl Drop for TestAddr {
    fn drop(&mut self) {
        let _ = match &self.dummy {
            Some(name) => ip_cmd(&["link", "del", name]),
            None => ip_cmd(&["addr", "del", &format!("{}/32", self.ip), "dev", "lo"]),
        };
    }
}

/// Protected mode refuses a client that is not on loopback: the server
/// listens on a non-loopback address the test adds ([`TestAddr`]), and the
/// test connects to it, so the client's address is that one too. Needs
/// root; skipped otherwise unless `SURGE_REQUIRE_NETNS=1`.
#[tokio::test]
async fn protected_mode_refuses_a_non_loopback_client_and_keys_let_it_in() {
    let addr = match TestAddr::create() {
        Ok(x) => x,
        Err(why) => {
            assert!(
                std::env::var("SURGE_REQUIRE_NETNS").as_deref() != Ok("1"),
                "SURGE_REQUIRE_NETNS=1 but no test address: {why}"
            );
            eprintln!("SKIPPED protected_mode_refuses_a_non_loopback_client: {why}");
            return;
        }
    };
    let listen = format!("{}:0", addr.ip);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    {
        let srv = Srv::start_with(|c| {
            c.listen = listen.clone();
            c.allow_non_loopback_without_keys = true;
        });
        let get = |path: &str| client.get(srv.url(path)).send();
        let res = get("/v1/warehouses").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let b: Value = res.json().await.unwrap();
        assert_eq!(b["code"], "unauthenticated");
        assert!(
            b["message"].as_str().unwrap().contains("surge keys new"),
            "{b}"
        );
        assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    }
    {
        let srv = Srv::start_with(|c| {
            c.listen = listen.clone();
            keyed(c);
        });
        let url = srv.url("/v1/warehouses");
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = client.get(&url).bearer_auth(READER).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    drop(addr);
}

const APP: &str = "k-app";

/// `keyed`, plus a second storefront key.
fn two_storefronts(c: &mut Config) {
    keyed(c);
    c.keys.push(key("app", APP, &["storefront"]));
}

async fn stocked(srv: &Srv) {
    let (s, b) = call(
        srv,
        Some(ADMIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("berlin", 20)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

fn order_body(reservation: Option<&str>) -> Value {
    let mut line = json!({"sku": "a", "qty": 1});
    if let Some(r) = reservation {
        line["reservation_id"] = json!(r);
    }
    json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 50.0, "lon": 8.0},
           "lines": [line]})
}

/// A storefront key reads, extends, releases and orders from its own holds
/// only, and reads and cancels its own orders only: another key's are 404,
/// exactly like ids that do not exist. Admin and read keys see all, with
/// `created_by`.
#[tokio::test]
async fn a_storefront_key_sees_only_its_own_holds_and_orders() {
    let srv = Srv::start_with(two_storefronts);
    for (w, p) in [("berlin", 1), ("paris", 2)] {
        let (s, _) = call(
            &srv,
            Some(ADMIN),
            Method::PUT,
            &format!("/v1/warehouses/{w}"),
            Some(json!({"name": w, "location": {"lat": 50.0, "lon": 8.0}, "priority": p})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = call(
        &srv,
        Some(ADMIN),
        Method::PUT,
        "/v1/skus/a",
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    stocked(&srv).await;
    let reserve = |bearer: &'static str| {
        call(
            &srv,
            Some(bearer),
            Method::POST,
            "/v1/reservations",
            Some(json!({"sku": "a", "qty": 1})),
        )
    };
    let (s, hold) = reserve(WEB).await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["created_by"], "web", "{hold}");
    let id = hold["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/reservations/{id}");
    let unknown = "/v1/reservations/res_999999";

    // Another storefront key: 404, the same answer as for no such hold.
    for p in [path.as_str(), unknown] {
        let (s, b) = call(&srv, Some(APP), Method::GET, p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
        assert_eq!(b["code"], "reservation_not_found");
        let (s, b) = call(
            &srv,
            Some(APP),
            Method::POST,
            &format!("{p}/extend"),
            Some(json!({"ttl_ms": 60_000})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
        let (s, b) = call(&srv, Some(APP), Method::DELETE, p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
    }
    for r in [id.as_str(), "res_999999"] {
        let (s, b) = call(
            &srv,
            Some(APP),
            Method::POST,
            "/v1/orders",
            Some(order_body(Some(r))),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}: {b}");
        assert_eq!(b["code"], "reservation_not_found", "{b}");
    }
    // Nothing happened to it; admin and read keys see it, and who made it.
    for k in [ADMIN, READER, WEB] {
        let (s, b) = call(&srv, Some(k), Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["status"], "active");
        assert_eq!(b["created_by"], "web");
    }
    // Its own key extends it and orders from it.
    let (s, b) = call(
        &srv,
        Some(WEB),
        Method::POST,
        &format!("{path}/extend"),
        Some(json!({"ttl_ms": 60_000})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, order) = call(
        &srv,
        Some(WEB),
        Method::POST,
        "/v1/orders",
        Some(order_body(Some(&id))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(order["created_by"], "web");
    let order_path = format!("/v1/orders/{}", order["id"].as_str().unwrap());
    for p in [order_path.as_str(), "/v1/orders/ord_999999"] {
        let (s, b) = call(&srv, Some(APP), Method::GET, p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
        assert_eq!(b["code"], "order_not_found");
        let (s, b) = call(
            &srv,
            Some(APP),
            Method::POST,
            &format!("{p}/cancel"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {b}");
        assert_eq!(b["code"], "order_not_found");
    }
    for k in [ADMIN, READER, WEB] {
        let (s, b) = call(&srv, Some(k), Method::GET, &order_path, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["status"], "ready", "not cancelled by the other key");
        assert_eq!(b["created_by"], "web");
    }
    // Listed likewise: to every key that may read it, not to the other
    // storefront.
    for (k, seen) in [(ADMIN, 1), (READER, 1), (WEB, 1), (APP, 0)] {
        let (s, b) = call(&srv, Some(k), Method::GET, "/v1/orders", None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["orders"].as_array().unwrap().len(), seen, "{b}");
    }
    let (s, b) = call(
        &srv,
        Some(WEB),
        Method::POST,
        &format!("{order_path}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "cancelled");

    // A hold an admin key made is not a storefront's either.
    let (s, b) = reserve(ADMIN).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["created_by"], "ops");
    let admins = format!("/v1/reservations/{}", b["id"].as_str().unwrap());
    let (s, _) = call(&srv, Some(WEB), Method::GET, &admins, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&srv, Some(WEB), Method::DELETE, &admins, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = call(&srv, Some(ADMIN), Method::DELETE, &admins, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "released");

    // Idempotency keys are per API key: the same key sent by another API
    // key is a new request of its own (neither replays the other's hold
    // nor is refused because the other used it first), and each key's
    // retry replays its own.
    let body = json!({"sku": "a", "qty": 1});
    let mut ids = Vec::new();
    for k in [WEB, APP, WEB, APP] {
        let res = srv
            .client
            .post(srv.url("/v1/reservations"))
            .bearer_auth(k)
            .header("idempotency-key", "same-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let b: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{status} {b}");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1], "another key's request replayed a hold");
    assert_eq!((&ids[2], &ids[3]), (&ids[0], &ids[1]), "retries replay");
    // The same in a batch.
    let batch = json!({"reservations": [{"sku": "a", "qty": 1, "idempotency_key": "same-key"}]});
    let (s, b) = call(
        &srv,
        Some(APP),
        Method::POST,
        "/v1/reservations:batch",
        Some(batch),
    )
    .await;
    assert!(s.is_success(), "{b}");
    assert_eq!(b["results"][0]["reservation"]["id"], ids[1].as_str(), "{b}");
}

/// Creators survive a restart (they are in the log and in snapshots).
#[tokio::test]
async fn creators_survive_a_restart() {
    let srv = keyed_server().await;
    stocked(&srv).await;
    let (s, hold) = call(
        &srv,
        Some(WEB),
        Method::POST,
        "/v1/reservations",
        Some(json!({"sku": "a", "qty": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, order) = call(
        &srv,
        Some(WEB),
        Method::POST,
        "/v1/orders",
        Some(order_body(None)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let srv = srv.restart();
    for path in [
        format!("/v1/reservations/{}", hold["id"].as_str().unwrap()),
        format!("/v1/orders/{}", order["id"].as_str().unwrap()),
    ] {
        let (s, b) = call(&srv, Some(READER), Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["created_by"], "web", "{path}: {b}");
        let (s, _) = call(&srv, Some(WEB), Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
}

/// Without keys nothing is recorded, and the views have no `created_by`.
#[tokio::test]
async fn without_keys_no_creator_is_recorded() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("a", None, &[("w1", 5)]).await;
    let (s, b) = srv
        .post("/v1/reservations", json!({"sku": "a", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(b.get("created_by").is_none(), "{b}");
    let (s, b) = srv
        .get(&format!("/v1/reservations/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.get("created_by").is_none(), "{b}");
}

/// A warehouse key's adjustment answers with its own warehouse's row only,
/// totals over that row; it cannot read or change another warehouse.
#[tokio::test]
async fn a_warehouse_key_sees_nothing_of_other_warehouses() {
    let srv = keyed_server().await;
    let (s, b) = call(
        &srv,
        Some(ADMIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("paris", 7)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["warehouses"].as_array().unwrap().len(), 1);
    let (s, b) = call(
        &srv,
        Some(BERLIN),
        Method::POST,
        "/v1/stock/adjustments",
        Some(adjustment("berlin", 3)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rows = b["warehouses"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{b}");
    assert_eq!(rows[0]["warehouse"], "berlin");
    assert_eq!(
        (b["on_hand"].as_u64(), b["available"].as_u64()),
        (Some(3), Some(3)),
        "{b}"
    );
    assert!(!b.to_string().contains("paris"), "{b}");
    // The admin sees both.
    let (s, b) = call(&srv, Some(ADMIN), Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["on_hand"], 10, "{b}");
    // Nothing else of paris: not its record, not its stock, not the list.
    for (m, path, body) in [
        (Method::GET, "/v1/warehouses/paris", None),
        (Method::GET, "/v1/warehouses", None),
        (Method::GET, "/v1/skus/a/stock", None),
        (
            Method::POST,
            "/v1/stock/adjustments",
            Some(adjustment("paris", -1)),
        ),
        (
            Method::PUT,
            "/v1/warehouses/paris",
            Some(json!({"name": "p", "location": {"lat": 1.0, "lon": 1.0}, "priority": 0})),
        ),
        (Method::GET, "/v1/feed/stats", None),
    ] {
        let (s, b) = call(&srv, Some(BERLIN), m, path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {b}");
        assert!(!b.to_string().contains("\"on_hand\""), "{b}");
    }
    let (s, _) = call(
        &srv,
        Some(BERLIN),
        Method::GET,
        "/v1/feed?topics=warehouse:paris",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(&srv, Some(ADMIN), Method::GET, "/v1/skus/a/stock", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["on_hand"], 10,
        "the refused adjustment changed nothing: {b}"
    );
}

fn basic(user: &str, key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"))
    )
}

/// With keys, `/` asks a browser to log in (HTTP Basic, the key as the
/// password); with the credentials the page and the feed's WebSocket work.
/// No other route takes Basic.
#[tokio::test]
async fn the_dashboard_logs_in_with_basic_and_its_feed_follows() {
    let srv = keyed_server().await;
    for path in ["/", "/assets/dashboard.js"] {
        let res = srv.client.get(srv.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(r#"Basic realm="surge""#),
            "{path}: {challenge}"
        );
        let res = srv
            .client
            .get(srv.url(path))
            .header("authorization", basic("anyone", "k-wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let res = srv
            .client
            .get(srv.url(path))
            .header("authorization", basic("me", SKU_FEED))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    // The API takes Bearer only (a browser would resend Basic to any
    // request, cross-site ones too).
    for (m, path) in [
        (Method::GET, "/v1/warehouses"),
        (Method::POST, "/v1/orders/ord_1/cancel"),
    ] {
        let res = srv
            .client
            .request(m, srv.url(path))
            .header("authorization", basic("ops", ADMIN))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
    // The feed: the handshake with Basic, as a browser resends it.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let handshake = |key: &str, topics: &str| {
        let mut request = surge::feedclient::feed_url(&srv.url(""), topics)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", basic("me", key).parse().unwrap());
        tokio_tungstenite::connect_async_with_config(
            request,
            Some(surge::feedclient::ws_config()),
            true,
        )
    };
    let (mut ws, _) = handshake(ADMIN, "topics=stock").await.unwrap();
    let m = surge::feedclient::next_json(&mut ws)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m["type"], "hello", "{m}");
    // Scopes still hold: a feed key's prefixes, a key with no feed scope.
    assert!(handshake(SKU_FEED, "topics=sku:a").await.is_ok());
    assert!(handshake(SKU_FEED, "topics=orders").await.is_err());
    assert!(handshake(READER, "topics=stock").await.is_err());
    assert!(handshake("k-wrong", "topics=stock").await.is_err());
}

/// Each request on a kept-alive connection is judged by its own key, also
/// when the connection presented another key before (the server remembers
/// the last key a connection presented).
#[tokio::test]
async fn one_connection_changing_keys_is_judged_by_each_request_key() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let srv = keyed_server().await;
    let addr = srv.url("").trim_start_matches("http://").to_owned();
    let mut conn = BufReader::new(tokio::net::TcpStream::connect(&addr).await.unwrap());
    let body = r#"{"name":"Lyon","location":{"lat":45.7,"lon":4.8},"priority":3}"#;
    // A refused request with a body closes its connection: the refusals
    // here have none.
    let steps: [(&str, &str, &str, u16); 7] = [
        ("PUT", "lyon", ADMIN, 200),
        ("GET", "lyon", BERLIN, 403),
        ("GET", "lyon", "k-unknown", 401),
        ("GET", "lyon", READER, 200),
        ("PUT", "lyon", ADMIN, 200),
        ("GET", "berlin", BERLIN, 200),
        ("GET", "paris", BERLIN, 403),
    ];
    for (method, wh, bearer, want) in steps {
        let body = if method == "PUT" { body } else { "" };
        let req = format!(
            "{method} /v1/warehouses/{wh} HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut status = String::new();
        conn.read_line(&mut status).await.unwrap();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
                assert!(
                    !(k.eq_ignore_ascii_case("connection") && v.trim() == "close"),
                    "{method} with {bearer}: the connection was closed"
                );
            }
        }
        let mut payload = vec![0; len];
        conn.read_exact(&mut payload).await.unwrap();
        let code: u16 = status.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(
            code,
            want,
            "{method} with {bearer}: {}",
            String::from_utf8_lossy(&payload)
        );
    }
}
