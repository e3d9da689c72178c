//! Metrics and health: `/metrics` names every series and they move as
//! requests are served; `/readyz` during replay and after a storage
//! failure; request ids; JSON log lines.

use crate::child::spawn;
use crate::common::{test_config, Srv};
use crate::holds::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use surge::clock::SystemClock;
use surge::wal::store::{LogStore, MemStore, StoreError};

/// A scrape: each sample line as `name{labels}` → value.
async fn scrape(srv: &Srv) -> HashMap<String, f64> {
    let res = srv.client.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    parse(&res.text().await.unwrap())
}

fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    out
}

fn at(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn every_named_series_is_exposed_and_moves_under_load() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let before = scrape(&srv).await;
    for name in [
        "surge_reservations_accepted_total",
        r#"surge_rate_limited_total{limit="customer"}"#,
        "surge_holds_open",
        r#"surge_orders{status="placed"}"#,
        r#"surge_orders{status="cancelled"}"#,
        "surge_wal_group_entries_count",
        r#"surge_wal_group_entries_bucket{le="+Inf"}"#,
        "surge_wal_sync_duration_seconds_count",
        "surge_wal_sync_duration_seconds_sum",
        "surge_snapshot_age_seconds",
        "surge_snapshots_total",
        "surge_feed_clients",
        "surge_feed_messages_total",
        "surge_feed_clients_cut_off_total",
        "surge_feed_resyncs_total",
        "surge_storage_failed",
        "surge_ready",
    ] {
        assert!(before.contains_key(name), "{name} missing: {before:?}");
    }
    // Setting up the warehouse and the SKU went through the log.
    assert!(at(&before, "surge_wal_group_entries_count") >= 2.0);
    assert!(at(&before, "surge_wal_sync_duration_seconds_sum") > 0.0);
    assert_eq!(at(&before, "surge_ready"), 1.0);

    // 8 single reservations on 5 units: 5 accepted, 3 refused; then a
    // batch of 3, all refused; then one hold released.
    let mut holds = Vec::new();
    for _ in 0..8 {
        let (s, b) = srv
            .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
            .await;
        if s == StatusCode::CREATED {
            holds.push(b["id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(b["code"], "insufficient_stock", "{b}");
        }
    }
    assert_eq!(holds.len(), 5);
    let item = json!({"sku": "tee", "qty": 1});
    let (s, b) = srv
        .post(
            "/v1/reservations:batch",
            json!({"reservations": [item, item, item]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = srv.delete(&format!("/v1/reservations/{}", holds[0])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = srv.get(&format!("/v1/reservations/{}", holds[1])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = srv.get("/no/such/path/123").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The unit the release freed: ordered, cancelled, ordered again.
    let order = json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0},
        "lines": [{"sku": "tee", "qty": 1}]});
    let (s, o) = srv.post("/v1/orders", order.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let (s, c) = srv
        .post(
            &format!("/v1/orders/{}/cancel", o["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (s, o) = srv.post("/v1/orders", order).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");

    // Gauges read the durable read model, which follows the answers.
    let mut after = HashMap::new();
    let settled = eventually(Duration::from_secs(5), async || {
        after = scrape(&srv).await;
        at(&after, "surge_holds_open") == 4.0
            && at(&after, r#"surge_orders{status="placed"}"#) == 1.0
            && at(&after, r#"surge_orders{status="cancelled"}"#) == 1.0
    })
    .await;
    assert!(settled, "holds open, orders: {after:?}");
    let moved = |series: &str| at(&after, series) - at(&before, series);
    assert_eq!(moved("surge_reservations_accepted_total"), 5.0);
    assert_eq!(
        moved(r#"surge_reservations_refused_total{code="insufficient_stock"}"#),
        6.0,
        "3 alone and 3 in the batch"
    );
    assert_eq!(
        moved(r#"surge_http_requests_total{method="POST",route="/v1/reservations",status="201"}"#),
        5.0
    );
    assert_eq!(
        moved(r#"surge_http_requests_total{method="POST",route="/v1/reservations",status="409"}"#),
        3.0
    );
    assert_eq!(
        moved(
            r#"surge_http_requests_total{method="POST",route="/v1/reservations:batch",status="200"}"#
        ),
        1.0
    );
    // Routes are labelled by pattern, never by raw path.
    assert_eq!(
        moved(
            r#"surge_http_requests_total{method="DELETE",route="/v1/reservations/{id}",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"surge_http_requests_total{method="GET",route="/v1/reservations/{id}",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(r#"surge_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert!(
        !after
            .keys()
            .any(|k| k.contains(&holds[0]) || k.contains("/no/such")),
        "a raw path became a label"
    );
    assert_eq!(
        moved(
            r#"surge_http_request_duration_seconds_count{method="POST",route="/v1/reservations"}"#
        ),
        8.0
    );
    assert_eq!(
        moved(
            r#"surge_http_request_duration_seconds_bucket{method="POST",route="/v1/reservations",le="+Inf"}"#
        ),
        8.0
    );
    // 5 holds, 1 release: at least one group each, each synced.
    assert!(moved("surge_wal_group_entries_count") >= 6.0);
    assert!(moved("surge_wal_sync_duration_seconds_count") >= 6.0);
    assert!(moved("surge_feed_messages_total") > 0.0);

    // The counts are rebuilt from the log at start.
    let srv = srv.restart();
    let m = scrape(&srv).await;
    assert_eq!(at(&m, "surge_holds_open"), 4.0, "{m:?}");
    assert_eq!(at(&m, r#"surge_orders{status="placed"}"#), 1.0);
    assert_eq!(at(&m, r#"surge_orders{status="cancelled"}"#), 1.0);
}

#[tokio::test]
async fn metrics_http_off_counts_no_request_but_keeps_the_other_series() {
    let srv = Srv::start_with(|c| c.metrics_http = false);
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let res = srv
        .client
        .post(srv.url("/v1/reservations"))
        .json(&json!({"sku": "tee", "qty": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("x-request-id"));
    // The rest is still there and moving (gauges follow the answers).
    let mut m = HashMap::new();
    let settled = eventually(Duration::from_secs(5), async || {
        m = scrape(&srv).await;
        at(&m, "surge_holds_open") == 1.0
    })
    .await;
    assert!(settled, "{m:?}");
    assert!(at(&m, "surge_wal_group_entries_count") >= 3.0);
    assert_eq!(at(&m, "surge_reservations_accepted_total"), 1.0, "{m:?}");
    let counted: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("surge_http_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, 0.0, "{m:?}");
}

#[tokio::test]
async fn responses_carry_a_request_id_the_client_may_choose() {
    let srv = Srv::start();
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let a = srv.client.get(srv.url("/healthz")).send().await.unwrap();
    let b = srv.client.get(srv.url("/healthz")).send().await.unwrap();
    let (a, b) = (id_of(&a).unwrap(), id_of(&b).unwrap());
    assert!(!a.is_empty() && a != b, "{a} {b}");
    let mine = srv
        .client
        .get(srv.url("/v1/skus/none/stock"))
        .header("X-Request-Id", "checkout-42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&mine).as_deref(), Some("checkout-42"));
    // Too long, or not visible ASCII: replaced by a new id.
    for bad in ["x".repeat(129), "a b".to_string()] {
        let res = srv
            .client
            .get(srv.url("/healthz"))
            .header("X-Request-Id", bad.as_str())
            .send()
            .await
            .unwrap();
        let id = id_of(&res).unwrap();
        assert!(id != bad && !id.is_empty() && id.len() <= 128, "{id}");
    }
}

/// A store whose first snapshot read (the start of replay) waits until the
/// test lets it go.
struct SlowReplay {
    inner: MemStore,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl LogStore for SlowReplay {
    fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        self.inner.append(key, record)
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }
    fn scan_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.inner.scan_from(from, visit)
    }
    fn truncate_before(&self, key: u64) -> Result<(), StoreError> {
        self.inner.truncate_before(key)
    }
    fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put_chunk(generation, index, bytes)
    }
    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
        self.inner.commit_snapshot(generation, meta)
    }
    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        self.inner.snapshot_meta()
    }
    fn chunks(&self, generation: u64, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        self.inner.chunks(generation, visit)
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_log_is_replayed_then_200() {
    let (open_tx, open_rx) = std::sync::mpsc::channel();
    let store = Arc::new(SlowReplay {
        inner: MemStore::new(),
        gate: Mutex::new(Some(open_rx)),
    });
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        actix_rt::System::new().block_on(surge::server::run(
            listener,
            config,
            Arc::new(SystemClock::default()),
            store,
            async move {
                let _ = stop_rx.await;
            },
        ))
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // The replay is held at its first read: whatever answers is the
    // stand-in, and it says so.
    let (s, body) = {
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["replay"], "running");
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = client
        .post(format!("{base}/v1/reservations"))
        .json(&json!({"sku": "tee", "qty": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "starting");

    open_tx.send(()).unwrap();
    // Connections to the stand-in may be cut as it hands over.
    let mut last = Value::Null;
    let ready = eventually(Duration::from_secs(10), async || {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == StatusCode::OK => {
                last = r.json().await.unwrap();
                true
            }
            _ => false,
        }
    })
    .await;
    assert!(ready, "never ready");
    assert_eq!(
        last,
        json!({"ready": true, "replay": "done", "storage": "ok"})
    );
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();
}

#[tokio::test]
async fn readyz_is_503_once_storage_failed() {
    let store = MemStore::new();
    let srv = Srv::start_mem(store.clone(), |_| {});
    srv.warehouse("w1", 1).await;
    let (s, body) = srv.get("/readyz").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    store.faults.fail_sync.store(true, Ordering::SeqCst);
    let (s, e) = srv
        .put(
            "/v1/warehouses/w2",
            json!({"name": "w2", "location": {"lat": 1.0, "lon": 1.0}, "priority": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    let (s, body) = srv.get("/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["storage"], "failed");
    let m = scrape(&srv).await;
    assert_eq!(at(&m, "surge_storage_failed"), 1.0);
    assert_eq!(at(&m, "surge_ready"), 0.0);
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line_with_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut server = spawn(
        &dir.path().join("data"),
        logs.path(),
        &[
            ("SURGE_LOG_FORMAT", "json"),
            ("SURGE_LOG", "info,surge=debug"),
        ],
        None,
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    server.ready(&client).await;
    let r = client
        .get(format!("{}/v1/warehouses", server.base))
        .header("X-Request-Id", "probe-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut lines: Vec<Value> = Vec::new();
    let logged = eventually(Duration::from_secs(5), async || {
        lines = server
            .log()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        lines.iter().any(|l| l["span"]["request_id"] == "probe-7")
    })
    .await;
    assert!(logged, "no line of request probe-7: {lines:?}");
    let line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "probe-7")
        .unwrap();
    assert_eq!(line["span"]["path"], "/v1/warehouses");
    assert_eq!(line["fields"]["message"], "done");
    assert_eq!(line["fields"]["status"], 200);
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "surge serving"));
}

#[tokio::test]
async fn counts_and_snapshot_age_come_back_from_a_snapshot() {
    let srv = Srv::start_with(|c| c.snapshot_every_events = 1);
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    for _ in 0..3 {
        let (s, b) = srv
            .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let stats = srv.bg().surge.checkpoint_stats();
    let covered = eventually(Duration::from_secs(10), async || {
        stats.last_seq.load(Ordering::Acquire) >= 5
    })
    .await;
    assert!(covered, "no snapshot of every event");
    let m = scrape(&srv).await;
    assert!(at(&m, "surge_snapshots_total") >= 1.0);
    assert!(at(&m, "surge_snapshot_age_seconds") < 10.0, "{m:?}");
    // Started again with the log truncated: the holds come from the
    // snapshot alone.
    let srv = srv.restart();
    let m = scrape(&srv).await;
    assert_eq!(at(&m, "surge_holds_open"), 3.0, "{m:?}");
}
