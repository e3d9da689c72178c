//! The dashboard in a real browser: headless Chromium opens `/`, the test
//! makes reservations through the API and reads the page's DOM over the
//! DevTools protocol until it shows the new numbers.
//!
//! Without Chromium the test says it was skipped; with
//! `SURGE_REQUIRE_BROWSER=1` (CI) a missing Chromium is a failure.

use crate::common::Srv;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

fn chromium() -> Option<String> {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    std::env::var("SURGE_CHROMIUM")
        .ok()
        .into_iter()
        .chain(candidates.iter().map(|s| s.to_string()))
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Kills the browser when the test ends, however it ends, then removes
/// its profile directory.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts headless Chromium; returns it and its DevTools port.
fn launch(bin: &str) -> (Browser, u16) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                let _ = tx.send(port);
            }
        }
    });
    let browser = Browser {
        child,
        _profile: profile,
    };
    let port = rx
        .recv_timeout(WAIT)
        .expect("Chromium announces its DevTools port");
    (browser, port)
}

struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn open(port: u16) -> Page {
        let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { ws, next_id: 0 }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("DevTools answers")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    return v;
                }
            }
        }
    }

    async fn text(&mut self, selector: &str) -> Option<String> {
        let expr = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.textContent : null; }})()",
            serde_json::to_string(selector).unwrap()
        );
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await;
        r["result"]["result"]["value"].as_str().map(String::from)
    }

    /// Polls the DOM until `selector` shows `want` (the page updates on its
    /// own schedule; this waits for it, bounded).
    async fn shows(&mut self, selector: &str, want: &str) -> Result<(), String> {
        self.shows_that(selector, want, |t| t == want).await
    }

    /// Polls the DOM until `selector` shows a text that `ok` accepts
    /// (`what` says which, for the error).
    async fn shows_that(
        &mut self,
        selector: &str,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < WAIT {
            last = self.text(selector).await;
            if last.as_deref().is_some_and(&ok) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{selector} shows {last:?}, not {what:?}"))
    }
}

/// Chromium, or `None` (and the test says it was skipped) where it is not
/// installed and not required.
fn chromium_or_skip(test: &str) -> Option<String> {
    let bin = chromium();
    if bin.is_none() {
        assert!(
            std::env::var("SURGE_REQUIRE_BROWSER").is_err(),
            "SURGE_REQUIRE_BROWSER is set but Chromium is not installed"
        );
        eprintln!("SKIPPED {test}: Chromium is not installed (apt-get install -y chromium)");
    }
    bin
}

#[tokio::test]
async fn the_dashboard_shows_live_numbers_in_a_browser() {
    let Some(bin) = chromium_or_skip("the_dashboard_shows_live_numbers_in_a_browser") else {
        return;
    };
    let srv = Srv::start();
    let url = srv.url("/");
    shows_live_numbers(&bin, &srv, &url).await;
}

/// With keys, the browser logs in as a user would at the Basic prompt (the
/// key as the password, here given in the URL the test opens), then sends
/// those credentials with the feed's WebSocket handshake by itself.
#[tokio::test]
async fn the_dashboard_works_in_a_browser_with_keys() {
    let Some(bin) = chromium_or_skip("the_dashboard_works_in_a_browser_with_keys") else {
        return;
    };
    use surge::auth::{hash_hex, KeyConfig};
    const ADMIN: &str = "k-admin";
    const DASHBOARD: &str = "k-dashboard";
    let mut srv = Srv::start_with(|c| {
        c.keys = vec![
            KeyConfig {
                name: "ops".into(),
                sha256: hash_hex(ADMIN),
                scopes: vec!["admin".into()],
            },
            KeyConfig {
                name: "dashboard".into(),
                sha256: hash_hex(DASHBOARD),
                scopes: vec!["feed".into()],
            },
        ]
    });
    // The test's own API calls use the admin key.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN}").parse().unwrap(),
    );
    srv.client = reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .build()
        .unwrap();
    let url = srv
        .url("/")
        .replacen("http://", &format!("http://dash:{DASHBOARD}@"), 1);
    shows_live_numbers(&bin, &srv, &url).await;
}

/// Opens `url` (the dashboard of `srv`) in Chromium and checks it shows
/// the live numbers as the API changes them.
async fn shows_live_numbers(bin: &str, srv: &Srv, url: &str) {
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("hot", None, &[("w1", 6), ("w2", 4)]).await;
    let (_browser, port) = launch(bin);
    let mut page = Page::open(port).await;
    page.call("Page.navigate", json!({"url": url})).await;

    let total = r#"tr.total[data-sku="hot"] td.available"#;
    page.shows(total, "10").await.unwrap();
    page.shows("#conn", "live").await.unwrap();

    for _ in 0..3 {
        let (s, b) = srv
            .post("/v1/reservations", json!({"sku": "hot", "qty": 2}))
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{b}");
    }
    let (s, order) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 48.1, "lon": 11.5},
                   "lines": [{"sku": "hot", "qty": 1}]}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{order}");
    page.shows(total, "3").await.unwrap();
    page.shows(
        r#"tr[data-sku="hot"][data-warehouse="w1"] td.reserved"#,
        "6",
    )
    .await
    .unwrap();
    let order_id = order["id"].as_str().unwrap();
    page.shows(
        &format!(r#"tr[data-order="{order_id}"] td.status"#),
        "ready",
    )
    .await
    .unwrap();
    page.shows(&format!(r#"tr[data-order="{order_id}"] td.routed"#), "w2")
        .await
        .unwrap();
    page.shows(
        r#"#warehouses tr[data-warehouse="w2"] td.workload"#,
        "1 / ∞",
    )
    .await
    .unwrap();
    page.shows(
        r#"#warehouses tr[data-warehouse="w1"] td.workload"#,
        "0 / ∞",
    )
    .await
    .unwrap();
}

/// A warehouse's orders routed today against its capacity: right when the
/// page opens (orders routed before it), live as orders are routed, after
/// a reload, and with its state when full or disabled.
#[tokio::test]
async fn the_dashboard_shows_each_warehouse_workload_against_its_capacity() {
    let Some(bin) =
        chromium_or_skip("the_dashboard_shows_each_warehouse_workload_against_its_capacity")
    else {
        return;
    };
    let srv = Srv::start();
    let warehouse = |id: &str, lat: f64, extra: Value| {
        let mut body = json!({"name": id, "location": {"lat": lat, "lon": 8.0}, "priority": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        (format!("/v1/warehouses/{id}"), body)
    };
    let (near, near_body) = warehouse("near", 48.0, json!({"capacity_per_day": 3}));
    let (far, far_body) = warehouse("far", 60.0, json!({}));
    for (path, body) in [(&near, &near_body), (&far, &far_body)] {
        let (s, b) = srv.put(path, body.clone()).await;
        assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    }
    let (s, r) = srv
        .put(
            "/v1/routing/rules",
            json!({"rules": ["enabled", "capacity", "nearest", "priority"]}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{r}");
    srv.sku("tee", None, &[("near", 10), ("far", 10)]).await;
    let order = || async {
        let (s, o) = srv
            .post(
                "/v1/orders",
                json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 48.0, "lon": 8.0},
                       "lines": [{"sku": "tee", "qty": 1}]}),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{o}");
        (
            o["shipments"][0]["warehouse"].as_str().unwrap().to_owned(),
            o["id"].as_str().unwrap().to_owned(),
        )
    };
    let to = |(wh, _): (String, String)| wh;
    // Routed before the page opens.
    let (_, first) = order().await;
    assert_eq!(order().await.0, "near");

    let (_browser, port) = launch(&bin);
    let mut page = Page::open(port).await;
    page.call("Page.navigate", json!({"url": srv.url("/")}))
        .await;
    let near_row = r#"#warehouses tr[data-warehouse="near"]"#;
    let far_row = r#"#warehouses tr[data-warehouse="far"]"#;
    page.shows(&format!("{near_row} td.workload"), "2 / 3")
        .await
        .unwrap();
    page.shows(&format!("{near_row} td.state"), "open")
        .await
        .unwrap();
    page.shows(&format!("{far_row} td.workload"), "0 / ∞")
        .await
        .unwrap();
    page.shows("#conn", "live").await.unwrap();

    // Live: the third fills it, the fourth goes elsewhere.
    assert_eq!(to(order().await), "near");
    page.shows(&format!("{near_row} td.workload"), "3 / 3")
        .await
        .unwrap();
    page.shows(&format!("{near_row} td.state"), "at capacity")
        .await
        .unwrap();
    let (wh, moved) = order().await;
    assert_eq!(wh, "far");
    page.shows(&format!("{far_row} td.workload"), "1 / ∞")
        .await
        .unwrap();

    // A warehouse disabled while the page is open.
    let mut disabled = far_body.clone();
    disabled["enabled"] = json!(false);
    let (s, b) = srv.put(&far, disabled).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    page.shows(&format!("{far_row} td.state"), "disabled")
        .await
        .unwrap();

    // A cancelled order frees its slot; a re-routed one takes it.
    let (s, b) = srv
        .post(&format!("/v1/orders/{first}/cancel"), json!({}))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    page.shows(&format!("{near_row} td.workload"), "2 / 3")
        .await
        .unwrap();
    let (s, b) = srv
        .post(
            &format!("/v1/orders/{moved}/reroute"),
            json!({"exclude": ["far"]}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{b}");
    page.shows(&format!("{near_row} td.workload"), "3 / 3")
        .await
        .unwrap();
    page.shows(&format!("{far_row} td.workload"), "0 / ∞")
        .await
        .unwrap();

    // A reload shows the same figures, from the server.
    page.call("Page.reload", json!({})).await;
    page.shows(&format!("{near_row} td.workload"), "3 / 3")
        .await
        .unwrap();
    page.shows(&format!("{far_row} td.workload"), "0 / ∞")
        .await
        .unwrap();
    page.shows(&format!("{far_row} td.state"), "disabled")
        .await
        .unwrap();
}

/// A priced order of one tee from `w1`: its id and its fulfilment's.
async fn tee_order(srv: &Srv) -> (String, String) {
    let (s, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c1", "currency": "EUR",
                   "ship_to": {"lat": 50.0, "lon": 8.0, "country": "DE"},
                   "lines": [{"sku": "tee", "qty": 1, "unit_price": 1500}]}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{o}");
    (
        o["id"].as_str().unwrap().to_owned(),
        o["fulfillments"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// POSTs `body` to `path` and expects 200.
async fn ok(srv: &Srv, path: &str, body: Value) -> Value {
    let (s, b) = srv.post(path, body).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{path}: {b}");
    b
}

/// The order funnel, each warehouse's open fulfilments and payments per
/// second: from the server when the page opens, live as an order is paid,
/// accepted, shipped and delivered, and the same after a reload.
#[tokio::test]
async fn the_dashboard_shows_the_order_funnel_and_open_fulfilments() {
    let Some(bin) = chromium_or_skip("the_dashboard_shows_the_order_funnel_and_open_fulfilments")
    else {
        return;
    };
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    // Before the page opens: one order to follow, one cancelled.
    let (id, f) = tee_order(&srv).await;
    let (gone, _) = tee_order(&srv).await;
    ok(&srv, &format!("/v1/orders/{gone}/cancel"), json!({})).await;

    let (_browser, port) = launch(&bin);
    let mut page = Page::open(port).await;
    page.call("Page.navigate", json!({"url": srv.url("/")}))
        .await;
    let stage = |s: &str| format!(r#"#funnel tr[data-stage="{s}"] td.n"#);
    let status = |s: &str| format!(r#"#statuses [data-status="{s}"] .n"#);
    let open = r#"#warehouses tr[data-warehouse="w1"] td.open"#;
    page.shows("#conn", "live").await.unwrap();
    for (s, n) in [
        ("placed", "2"),
        ("paid", "0"),
        ("shipped", "0"),
        ("delivered", "0"),
        ("cancelled", "1"),
        ("expired", "0"),
        ("returned", "0"),
    ] {
        page.shows(&stage(s), n).await.unwrap();
    }
    page.shows(open, "1").await.unwrap();
    page.shows(&status("ready"), "1").await.unwrap();
    page.shows("#payments-rate", "0.0").await.unwrap();

    // Live: paid, accepted, shipped, delivered.
    let pay = format!("/v1/orders/{id}/payments");
    ok(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 1500, "reference": "psp-a"}),
    )
    .await;
    ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 1500, "reference": "psp-c"}),
    )
    .await;
    page.shows(&stage("paid"), "1").await.unwrap();
    page.shows_that("#payments-rate", "above 0", |t| {
        t.parse::<f64>().is_ok_and(|r| r > 0.0)
    })
    .await
    .unwrap();
    ok(&srv, &format!("/v1/fulfillments/{f}/accept"), json!({})).await;
    page.shows(&status("in_fulfillment"), "1").await.unwrap();
    page.shows(open, "1").await.unwrap();
    ok(
        &srv,
        &format!("/v1/fulfillments/{f}/ship"),
        json!({"carrier": "dhl", "tracking": "t-1"}),
    )
    .await;
    page.shows(&stage("shipped"), "1").await.unwrap();
    page.shows(open, "0").await.unwrap();
    page.shows(&status("shipped"), "1").await.unwrap();
    ok(&srv, &format!("/v1/fulfillments/{f}/deliver"), json!({})).await;
    page.shows(&stage("delivered"), "1").await.unwrap();
    page.shows(&status("delivered"), "1").await.unwrap();

    // A reload shows the same numbers, from the server.
    page.call("Page.reload", json!({})).await;
    page.shows("#conn", "live").await.unwrap();
    for (s, n) in [
        ("placed", "2"),
        ("paid", "1"),
        ("shipped", "1"),
        ("delivered", "1"),
        ("cancelled", "1"),
        ("expired", "0"),
        ("returned", "0"),
    ] {
        page.shows(&stage(s), n).await.unwrap();
    }
    page.shows(open, "0").await.unwrap();
    page.shows(&status("delivered"), "1").await.unwrap();
    page.shows(&status("cancelled"), "1").await.unwrap();
}

/// The `counts` of an `orders` snapshot.
async fn order_counts(srv: &Srv) -> Value {
    let mut ws = surge::feedclient::connect(&srv.url(""), "topics=orders")
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(WAIT, surge::feedclient::next_json(&mut ws))
            .await
            .expect("a feed message in time")
            .unwrap()
            .expect("the connection is open");
        if m["type"] == "snapshot" {
            return m["data"]["counts"].clone();
        }
    }
}

/// The counts the `orders` snapshot carries are the ones a restart (a
/// snapshot of the read model, then replay of the log after it) rebuilds.
#[tokio::test]
async fn order_counts_are_the_same_after_a_restart() {
    let srv = Srv::start_with(|c| c.snapshot_every_events = 5);
    srv.warehouse("w1", 1).await;
    srv.warehouse("w2", 2).await;
    srv.sku("tee", None, &[("w1", 10)]).await;
    let (a, fa) = tee_order(&srv).await;
    let (_, _) = tee_order(&srv).await;
    let (c, _) = tee_order(&srv).await;
    let (_, fd) = tee_order(&srv).await;
    let pay = format!("/v1/orders/{a}/payments");
    ok(
        &srv,
        &pay,
        json!({"kind": "authorize", "amount": 1500, "reference": "a"}),
    )
    .await;
    ok(
        &srv,
        &pay,
        json!({"kind": "capture", "amount": 1500, "reference": "c"}),
    )
    .await;
    for step in ["accept", "ship"] {
        let body = json!({"carrier": "dhl", "tracking": "t-1"});
        let body = if step == "ship" { body } else { json!({}) };
        ok(&srv, &format!("/v1/fulfillments/{fa}/{step}"), body).await;
    }
    ok(&srv, &format!("/v1/fulfillments/{fd}/accept"), json!({})).await;
    ok(&srv, &format!("/v1/orders/{c}/cancel"), json!({})).await;

    let want = json!({
        "funnel": {"placed": 4, "paid": 1, "shipped": 1, "delivered": 0,
                   "cancelled": 1, "expired": 0, "returned": 0},
        "by_status": {"shipped": 1, "ready": 1, "in_fulfillment": 1, "cancelled": 1},
        "by_payment_status": {"captured": 1, "pending": 3},
        "open_fulfillments": {"w1": 2}
    });
    assert_eq!(order_counts(&srv).await, want);
    let srv = srv.restart();
    assert_eq!(order_counts(&srv).await, want, "after a restart");
}
