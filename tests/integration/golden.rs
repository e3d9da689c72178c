//! Golden data directories: what released builds left on disk
//! (`tests/golden/<version>-*`, written by `scripts/make-golden.sh`) must
//! load, replay and serve in every later build. For each: start on a copy
//! at the recorded time, check every answer recorded with it, replay its
//! idempotency keys, write something new, and check it all again after a
//! restart (old and new records mixed) and after a snapshot of the new
//! format taken from it.
//!
//! Views may gain fields as the API grows: an answer matches when it has
//! every recorded field with the recorded value.

use crate::common::test_config;
use crate::holds::eventually;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use surge::clock::ManualClock;
use surge::config::Config;
use surge::server::Background;

fn golden_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Copies a directory tree (a golden data directory into a scratch one).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `actual` has every field of `expected` with the same value (objects may
/// have more fields; arrays match item by item; numbers by value, as the
/// recording's `jq` writes 2.0 as 2).
fn assert_matches(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}: field `{k}` missing in {actual}"));
                assert_matches(av, ev, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{at}: {actual} vs {expected}");
            for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                assert_matches(av, ev, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(e)) if a.is_f64() || e.is_f64() => {
            assert_eq!(a.as_f64(), e.as_f64(), "{at}");
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

struct Server {
    bg: Option<Background>,
    config: Config,
    clock: Arc<ManualClock>,
    client: reqwest::Client,
}

impl Server {
    fn start(config: Config, clock: Arc<ManualClock>) -> Server {
        let store = surge::server::open_store(&config).unwrap();
        let bg = Background::start(config.clone(), clock.clone(), store).unwrap();
        Server {
            bg: Some(bg),
            config,
            clock,
            client: reqwest::Client::new(),
        }
    }

    fn restart(mut self, tune: impl FnOnce(&mut Config)) -> Server {
        self.bg.take().unwrap().stop().unwrap();
        tune(&mut self.config);
        Server::start(self.config.clone(), self.clock.clone())
    }

    fn bg(&self) -> &Background {
        self.bg.as_ref().unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self.client.request(method.clone(), self.bg().url(path));
        if let Some(b) = body {
            req = req.json(b);
        } else if crate::common::json_method(&method) {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let replayed = res
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.json().await.unwrap_or(Value::Null);
        (status, replayed, body)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, _, body) = self.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value, want: StatusCode) -> Value {
        let (status, _, body) = self.call(Method::POST, path, Some(&body), None).await;
        assert_eq!(status, want, "POST {path}: {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(bg) = self.bg.take() {
            let _ = bg.stop();
        }
    }
}

/// Every recorded answer, and every recorded idempotency key replayed.
async fn check_recorded(srv: &Server, expected: &Value, name: &str) {
    assert_matches(
        &srv.get("/v1/warehouses").await,
        &expected["warehouses"],
        &format!("{name}: warehouses"),
    );
    // From v4 on: the rule chains set at run time.
    if let Some(want) = expected.get("routing_rules") {
        assert_matches(
            &srv.get("/v1/routing/rules").await,
            want,
            &format!("{name}: routing rules"),
        );
    }
    for (sku, want) in expected["stock"].as_object().unwrap() {
        let got = srv.get(&format!("/v1/skus/{sku}/stock")).await;
        assert_matches(&got, want, &format!("{name}: stock of {sku}"));
    }
    for (id, want) in expected["reservations"].as_object().unwrap() {
        let got = srv.get(&format!("/v1/reservations/{id}")).await;
        assert_matches(&got, want, &format!("{name}: reservation {id}"));
    }
    for (id, want) in expected["orders"].as_object().unwrap() {
        let got = srv.get(&format!("/v1/orders/{id}")).await;
        assert_matches(&got, want, &format!("{name}: order {id}"));
    }
    // With incoming stock: each receipt, open or closed.
    if let Some(receipts) = expected.get("incoming") {
        for (id, want) in receipts.as_object().unwrap() {
            let got = srv.get(&format!("/v1/stock/incoming/{id}")).await;
            assert_matches(&got, want, &format!("{name}: receipt {id}"));
        }
    }
    for i in expected["idempotency"].as_array().unwrap() {
        let key = i["key"].as_str().unwrap();
        let (status, replayed, body) = srv
            .call(
                Method::POST,
                i["path"].as_str().unwrap(),
                Some(&i["body"]),
                Some(key),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: replay of {key}: {body}");
        assert_eq!(replayed.as_deref(), Some("true"), "{name}: replay of {key}");
        let target = i["target"].as_str().unwrap();
        let (kind, id) = target.rsplit_once('/').unwrap();
        let recorded = if kind.ends_with("reservations") {
            &expected["reservations"][id]
        } else if kind.ends_with("incoming") {
            &expected["incoming"][id]
        } else {
            &expected["orders"][id]
        };
        assert!(recorded.is_object(), "{name}: {target} was not recorded");
        assert_matches(&body, recorded, &format!("{name}: replay of {key}"));
    }
}

/// The highest id number among the keys of a recorded map of answers.
fn max_id(answers: &Value) -> u64 {
    answers
        .as_object()
        .unwrap()
        .keys()
        .map(|k| id_number(k))
        .max()
        .unwrap_or(0)
}

fn id_number(id: &str) -> u64 {
    id.rsplit('_').next().unwrap().parse().unwrap()
}

/// A new reservation, an order consuming it and its cancellation, on data
/// an older build wrote. Returns what they must show from now on.
async fn write_new(srv: &Server, expected: &Value, name: &str) -> Vec<(String, Value)> {
    let (sku, before) = expected["stock"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| s["available"].as_u64().unwrap() >= 1)
        .unwrap_or_else(|| panic!("{name}: no sku with stock to reserve"));
    let hold = srv
        .post(
            "/v1/reservations",
            json!({"sku": sku, "qty": 1, "customer_id": "golden-new", "ttl_ms": 60000}),
            StatusCode::CREATED,
        )
        .await;
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    let max_hold = max_id(&expected["reservations"]);
    assert!(
        id_number(&hold_id) > max_hold,
        "{name}: {hold_id} reuses an old id"
    );
    let stock = srv.get(&format!("/v1/skus/{sku}/stock")).await;
    assert_eq!(
        stock["reserved"].as_u64().unwrap(),
        before["reserved"].as_u64().unwrap() + 1,
        "{name}: {stock}"
    );
    let order = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "golden-new", "ship_to": {"lat": 1.0, "lon": 1.0},
                   "lines": [{"sku": sku, "qty": 1, "reservation_id": hold_id}]}),
            StatusCode::CREATED,
        )
        .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let max_order = max_id(&expected["orders"]);
    assert!(
        id_number(&order_id) > max_order,
        "{name}: {order_id} reuses an old id"
    );
    assert_eq!(
        srv.get(&format!("/v1/reservations/{hold_id}")).await["status"],
        "consumed"
    );
    let stock = srv.get(&format!("/v1/skus/{sku}/stock")).await;
    assert_eq!(
        stock["allocated"].as_u64().unwrap(),
        before["allocated"].as_u64().unwrap() + 1,
        "{name}: {stock}"
    );
    let cancelled = srv
        .post(
            &format!("/v1/orders/{order_id}/cancel"),
            json!({"reason": "golden"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    // Everything went back: the SKU shows what was recorded.
    assert_matches(
        &srv.get(&format!("/v1/skus/{sku}/stock")).await,
        before,
        &format!("{name}: stock of {sku} after the cancel"),
    );
    vec![
        (
            format!("/v1/reservations/{hold_id}"),
            srv.get(&format!("/v1/reservations/{hold_id}")).await,
        ),
        (format!("/v1/orders/{order_id}"), cancelled),
    ]
}

async fn check_new(srv: &Server, new: &[(String, Value)], name: &str) {
    for (path, want) in new {
        assert_eq!(&srv.get(path).await, want, "{name}: {path}");
    }
}

/// A directory named `vN-…` holds log records (and a snapshot meta, if
/// any) of format N: it pins what it says it pins.
fn check_format(config: &Config, name: &str) {
    let version: u8 = name
        .strip_prefix('v')
        .and_then(|n| n.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: golden directories are named v<format>-<what>"));
    let store = surge::server::open_store(config).unwrap();
    let mut records = 0;
    store
        .scan_from(0, &mut |key, bytes| {
            assert_eq!(bytes[0], version, "{name}: record {key}");
            records += 1;
            true
        })
        .unwrap();
    assert!(records > 0, "{name}: no log records");
    if let Some(meta) = store.snapshot_meta().unwrap() {
        assert_eq!(meta[0], version, "{name}: snapshot meta");
    }
    assert_eq!(
        store.snapshot_meta().unwrap().is_some(),
        name.ends_with("-snapshot"),
        "{name}: a snapshot is there exactly when the name says so"
    );
}

#[tokio::test]
async fn every_golden_data_directory_loads_replays_and_serves() {
    let dirs = golden_dirs();
    assert!(
        dirs.iter()
            .any(|d| d.file_name().unwrap().to_str().unwrap().starts_with("v1-")),
        "the v1 golden directories are missing: {dirs:?}"
    );
    for dir in dirs {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&dir.join("data"), &tmp.path().join("data"));
        let mut config = test_config(&tmp.path().join("data"));
        check_format(&config, &name);
        // No snapshot until asked for below.
        config.snapshot_every_events = u64::MAX;
        config.snapshot_every_ms = u64::MAX / 4;
        let clock = Arc::new(ManualClock::new(expected["now_ms"].as_u64().unwrap()));

        let srv = Server::start(config, clock);
        check_recorded(&srv, &expected, &name).await;
        let new = write_new(&srv, &expected, &name).await;
        check_recorded(&srv, &expected, &name).await;

        // Old-format records and new ones, mixed.
        let srv = srv.restart(|_| {});
        check_recorded(&srv, &expected, &format!("{name} after a restart")).await;
        check_new(&srv, &new, &format!("{name} after a restart")).await;

        // A snapshot in the new format of it all, then a start from it.
        let srv = srv.restart(|c| c.snapshot_every_events = 1);
        let stats = srv.bg().surge.checkpoint_stats();
        assert!(
            eventually(Duration::from_secs(20), async || stats
                .snapshots
                .load(Ordering::Acquire)
                >= 1)
            .await,
            "{name}: no snapshot was taken"
        );
        let srv = srv.restart(|c| c.snapshot_every_events = u64::MAX);
        let label = format!("{name} from a new snapshot");
        check_recorded(&srv, &expected, &label).await;
        check_new(&srv, &new, &label).await;
    }
}

/// The golden directories stay small: they live in the repository.
#[test]
fn golden_directories_are_small() {
    for dir in golden_dirs() {
        let mut total = 0u64;
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    total += e.metadata().unwrap().len();
                }
            }
        }
        assert!(total < 4 << 20, "{}: {total} bytes", dir.display());
    }
}

/// Stock ledger entries as version 1 wrote them (`tests/golden/ledger-v1`,
/// written once with `SURGE_WRITE_LEDGER_GOLDEN=1`, never again) decode in
/// every later build to the same view. Each line: seq, index, the value in
/// hex, the entry's JSON view.
#[test]
fn ledger_v1_entries_still_decode() {
    use surge::core::ledger::{Balance, Bucket, Entry, Reason, Ref};
    use surge::core::lifecycle::{FulfillmentId, ReturnId};
    use surge::core::{HoldId, OrderId, SkuId, WarehouseId};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ledger-v1/entries.txt");
    let sku = SkuId::parse("tee").unwrap();
    if std::env::var_os("SURGE_WRITE_LEDGER_GOLDEN").is_some() && !path.exists() {
        let wh = WarehouseId::parse("w-1").unwrap();
        let order = OrderId(7);
        let refs = [
            (Reason::Opening, Ref::None, Bucket::OnHand, 10),
            (
                Reason::Adjustment,
                Ref::Adjustment("cycle count"),
                Bucket::OnHand,
                -2,
            ),
            (
                Reason::SafetyStock,
                Ref::Adjustment("policy"),
                Bucket::SafetyStock,
                1,
            ),
            (Reason::Hold, Ref::Hold(HoldId(3)), Bucket::Reserved, 2),
            (Reason::Expiry, Ref::Hold(HoldId(3)), Bucket::Reserved, -2),
            (Reason::Order, Ref::Order(order), Bucket::Allocated, 4),
            (
                Reason::Shipment,
                Ref::Fulfillment(FulfillmentId { order, n: 1 }),
                Bucket::OnHand,
                -4,
            ),
            (
                Reason::Return,
                Ref::Return(ReturnId { order, n: 1 }),
                Bucket::OnHand,
                1,
            ),
            (Reason::Incoming, Ref::Receipt(2), Bucket::Incoming, 50),
            (Reason::Receipt, Ref::Receipt(2), Bucket::Incoming, -20),
        ];
        let mut out = String::new();
        let mut buf = Vec::new();
        for (i, (reason, reference, bucket, delta)) in refs.into_iter().enumerate() {
            let seq = 100 + i as u64;
            let e = Entry {
                at: 1_767_225_600_000 + i as u64,
                seq,
                sku: &sku,
                warehouse: &wh,
                bucket,
                delta,
                reason,
                reference,
                after: Balance {
                    on_hand: 8,
                    reserved: 1,
                    allocated: 4,
                    safety_stock: 1,
                    incoming: 30,
                },
            };
            surge::wal::ledger::encode(&e, &mut buf);
            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            let stored = surge::wal::ledger::decode(seq, 0, &buf).unwrap();
            let view =
                serde_json::to_string(&surge::wire::LedgerEntryView::new(&sku, &stored)).unwrap();
            out.push_str(&format!("{seq} 0 {hex} {view}\n"));
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, out).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let seq: u64 = parts.next().unwrap().parse().unwrap();
        let index: u32 = parts.next().unwrap().parse().unwrap();
        let hex = parts.next().unwrap();
        let expected: Value = serde_json::from_str(parts.next().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let stored = surge::wal::ledger::decode(seq, index, &bytes).unwrap();
        let view = serde_json::to_value(surge::wire::LedgerEntryView::new(&sku, &stored)).unwrap();
        assert_eq!(view, expected, "{line}");
        n += 1;
    }
    assert_eq!(n, 10, "every kind of reference and reason");
}
