//! Helpers: a real server on port 0 with its own data directory, and a JSON
//! client.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use surge::clock::SystemClock;
use surge::config::Config;
use surge::server::Background;
use surge::wal::store::{LogStore, MemStore};

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default_config();
    c.listen = "127.0.0.1:0".into();
    c.data_dir = dir.to_path_buf();
    c.http_workers = 2;
    c.actor_threads = 2;
    c.log = "warn".into();
    c
}

/// Whether the server insists on `Content-Type: application/json` for
/// `method` even without a body.
pub fn json_method(method: &reqwest::Method) -> bool {
    [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ]
    .contains(method)
}

pub struct Srv {
    pub bg: Option<Background>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub client: reqwest::Client,
}

impl Srv {
    pub fn start() -> Srv {
        Self::start_with(|_| {})
    }

    pub fn start_with(tune: impl FnOnce(&mut Config)) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tune(&mut config);
        let store = surge::server::open_store(&config).unwrap();
        Self::boot(dir, config, store)
    }

    /// A server on an in-memory store the test keeps a handle on.
    pub fn start_mem(store: MemStore, tune: impl FnOnce(&mut Config)) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tune(&mut config);
        Self::boot(dir, config, Arc::new(store))
    }

    /// A server on any store, with any clock.
    pub fn start_custom(
        store: Arc<dyn LogStore>,
        clock: Arc<dyn surge::clock::Clock>,
        tune: impl FnOnce(&mut Config),
    ) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tune(&mut config);
        Self::boot_with(dir, config, store, clock)
    }

    fn boot(dir: tempfile::TempDir, config: Config, store: Arc<dyn LogStore>) -> Srv {
        Self::boot_with(dir, config, store, Arc::new(SystemClock::default()))
    }

    fn boot_with(
        dir: tempfile::TempDir,
        config: Config,
        store: Arc<dyn LogStore>,
        clock: Arc<dyn surge::clock::Clock>,
    ) -> Srv {
        let bg = Background::start(config.clone(), clock, store).unwrap();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        Srv {
            bg: Some(bg),
            dir,
            config,
            client,
        }
    }

    /// Stops gracefully and starts again on the same data directory.
    pub fn restart(self) -> Srv {
        self.restart_with_clock(Arc::new(SystemClock::default()))
    }

    /// Restarts with another clock, e.g. one set later than the real time.
    pub fn restart_with_clock(mut self, clock: Arc<dyn surge::clock::Clock>) -> Srv {
        self.bg.take().unwrap().stop().unwrap();
        let store = surge::server::open_store(&self.config).unwrap();
        self.bg = Some(Background::start(self.config.clone(), clock, store).unwrap());
        self
    }

    pub fn bg(&self) -> &Background {
        self.bg.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.bg().url(path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        } else if json_method(&method) {
            // The server takes writes as JSON only, body or not.
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body), None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body), None)
            .await
    }
    pub async fn post_idem(&self, path: &str, body: Value, key: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body), Some(key))
            .await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None, None).await
    }

    /// Creates a warehouse; panics unless it worked.
    pub async fn warehouse(&self, id: &str, priority: i32) {
        let (s, b) = self
            .put(&format!("/v1/warehouses/{id}"), serde_json::json!({"name": id, "location": {"lat": 50.0, "lon": 8.0}, "priority": priority}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Creates a SKU with stock in the given warehouses.
    pub async fn sku(&self, sku: &str, limit: Option<u64>, stock: &[(&str, i64)]) {
        let (s, b) = self
            .put(
                &format!("/v1/skus/{sku}"),
                serde_json::json!({"name": sku, "per_customer_limit": limit}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for (wh, qty) in stock {
            let (s, b) = self
                .post("/v1/stock/adjustments", serde_json::json!({"sku": sku, "warehouse": wh, "delta": qty, "reason": "receipt"}))
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    }

    pub async fn stock(&self, sku: &str) -> Value {
        let (s, b) = self.get(&format!("/v1/skus/{sku}/stock")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(bg) = self.bg.take() {
            let _ = bg.stop();
        }
    }
}
