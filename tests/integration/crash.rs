//! Crash tests on the real binary: drive concurrent reservations, orders,
//! cancellations and releases; SIGKILL the server at a random moment;
//! restart on the same data and check that every acknowledged operation is
//! there, nothing else is, the stock adds up, and retrying in-doubt requests
//! with their idempotency keys gives exactly one effect. The last round
//! stops the server with SIGTERM instead and expects a clean exit.
//! The seed is printed; rerun one with SURGE_TEST_SEED=<seed>.

use crate::child::{spawn, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 5;
const WORKERS: usize = 12;
const OPS_PER_WORKER: usize = 40;

/// splitmix64: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The server under test: two HTTP workers, actor threads per core, and
/// snapshots with log truncation during the rounds too.
fn start(dir: &std::path::Path) -> Server {
    let env = [
        ("SURGE_HTTP_WORKERS", "2"),
        ("SURGE_ACTOR_THREADS", "0"),
        ("SURGE_SNAPSHOT_EVERY_EVENTS", "50"),
    ];
    spawn(&dir.join("data"), dir, &env, None)
}

#[derive(Clone, Debug)]
enum Op {
    Reserve { key: String, body: Value },
    Order { key: String, body: Value },
    Cancel(String),
    Release(String),
}

#[derive(Default)]
struct Ledger {
    holds: HashMap<String, (String, u64)>,
    orders: HashMap<String, Vec<(String, u64)>>,
    cancelled: HashSet<String>,
    released: HashSet<String>,
    in_doubt: Vec<Op>,
}

enum Answer {
    Done(StatusCode, Value),
    InDoubt,
}

async fn call(client: &reqwest::Client, base: &str, op: &Op) -> Answer {
    let req = match op {
        Op::Reserve { key, body } => client
            .post(format!("{base}/v1/reservations"))
            .header("Idempotency-Key", key)
            .json(body),
        Op::Order { key, body } => client
            .post(format!("{base}/v1/orders"))
            .header("Idempotency-Key", key)
            .json(body),
        Op::Cancel(id) => client
            .post(format!("{base}/v1/orders/{id}/cancel"))
            .json(&json!({"reason": "test"})),
        Op::Release(id) => client.delete(format!("{base}/v1/reservations/{id}")),
    };
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            match r.json::<Value>().await {
                Ok(v) => Answer::Done(status, v),
                Err(_) => Answer::InDoubt,
            }
        }
        Err(_) => Answer::InDoubt,
    }
}

/// Records what an answer proves. 503s are in doubt too: retried later.
fn record(ledger: &mut Ledger, op: &Op, answer: Answer) {
    let (status, v) = match answer {
        Answer::Done(s, v) if s != StatusCode::SERVICE_UNAVAILABLE => (s, v),
        _ => {
            ledger.in_doubt.push(op.clone());
            return;
        }
    };
    match op {
        Op::Reserve { body, .. } if status.is_success() => {
            let id = v["id"].as_str().unwrap().to_string();
            ledger.holds.insert(
                id,
                (
                    body["sku"].as_str().unwrap().into(),
                    body["qty"].as_u64().unwrap(),
                ),
            );
        }
        Op::Order { body, .. } if status.is_success() => {
            let id = v["id"].as_str().unwrap().to_string();
            let lines = body["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["sku"].as_str().unwrap().to_string(),
                        l["qty"].as_u64().unwrap(),
                    )
                })
                .collect();
            ledger.orders.insert(id, lines);
        }
        Op::Cancel(id) if status.is_success() => {
            ledger.cancelled.insert(id.clone());
        }
        Op::Release(id) if status.is_success() => {
            ledger.released.insert(id.clone());
        }
        _ => assert!(status.is_client_error(), "{op:?} answered {status}: {v}"),
    }
}

fn next_op(rng: &mut Rng, round: usize, worker: usize, i: usize, ledger: &Mutex<Ledger>) -> Op {
    let key = format!("{round}-{worker}-{i}");
    let customer = format!("c{}", rng.below(20));
    let pick = |rng: &mut Rng, ids: Vec<String>| -> Option<String> {
        (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize].clone())
    };
    match rng.below(10) {
        0 => {
            let ids: Vec<String> = ledger.lock().unwrap().orders.keys().cloned().collect();
            if let Some(id) = pick(rng, ids) {
                return Op::Cancel(id);
            }
        }
        1 => {
            let ids: Vec<String> = ledger.lock().unwrap().holds.keys().cloned().collect();
            if let Some(id) = pick(rng, ids) {
                return Op::Release(id);
            }
        }
        2..=4 => {
            let mut lines = vec![json!({"sku": "a", "qty": 1 + rng.below(2)})];
            if rng.below(2) == 0 {
                lines.push(json!({"sku": "b", "qty": 1}));
            }
            return Op::Order {
                key: format!("o-{key}"),
                body: json!({"channel": "web", "customer_id": customer, "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": lines}),
            };
        }
        _ => {}
    }
    let sku = if rng.below(2) == 0 { "a" } else { "b" };
    Op::Reserve {
        key: format!("r-{key}"),
        body: json!({"sku": sku, "qty": 1 + rng.below(2), "customer_id": customer, "ttl_ms": 3_600_000}),
    }
}

async fn setup(client: &reqwest::Client, base: &str) {
    for (id, p) in [("w1", 1), ("w2", 2)] {
        let r = client
            .put(format!("{base}/v1/warehouses/{id}"))
            .json(&json!({"name": id, "location": {"lat": 1.0, "lon": 1.0}, "priority": p}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    for (sku, limit) in [("a", None), ("b", Some(6))] {
        let r = client
            .put(format!("{base}/v1/skus/{sku}"))
            .json(&json!({"per_customer_limit": limit}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    for (sku, wh, qty) in [("a", "w1", 400), ("b", "w1", 150), ("b", "w2", 150)] {
        let r = client
            .post(format!("{base}/v1/stock/adjustments"))
            .json(&json!({"sku": sku, "warehouse": wh, "delta": qty, "reason": "receipt"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

/// GETs a resource that an acknowledgement promised exists.
async fn get_ok(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "acknowledged {url} is missing");
    r.json().await.unwrap()
}

/// Retries in-doubt operations (same keys, same bodies), then checks the
/// whole ledger against the server.
async fn settle_and_verify(client: &reqwest::Client, base: &str, ledger: &Mutex<Ledger>) {
    let in_doubt = std::mem::take(&mut ledger.lock().unwrap().in_doubt);
    println!("retrying {} in-doubt operations", in_doubt.len());
    for op in &in_doubt {
        let answer = call(client, base, op).await;
        let mut l = ledger.lock().unwrap();
        record(&mut l, op, answer);
        assert!(
            l.in_doubt.is_empty(),
            "retry of {op:?} still in doubt after restart"
        );
    }
    let l = {
        let g = ledger.lock().unwrap();
        Ledger {
            holds: g.holds.clone(),
            orders: g.orders.clone(),
            cancelled: g.cancelled.clone(),
            released: g.released.clone(),
            in_doubt: Vec::new(),
        }
    };
    let mut reserved: HashMap<String, u64> = HashMap::new();
    let mut allocated: HashMap<String, u64> = HashMap::new();
    for (id, (sku, qty)) in &l.holds {
        let v = get_ok(client, &format!("{base}/v1/reservations/{id}")).await;
        assert_eq!(
            (v["sku"].as_str().unwrap(), v["qty"].as_u64().unwrap()),
            (sku.as_str(), *qty)
        );
        if l.released.contains(id) {
            assert_eq!(v["status"], "released", "{id}");
        }
        if v["status"] == "active" {
            *reserved.entry(sku.clone()).or_default() += qty;
        }
    }
    for (id, lines) in &l.orders {
        let v = get_ok(client, &format!("{base}/v1/orders/{id}")).await;
        if l.cancelled.contains(id) {
            assert_eq!(v["status"], "cancelled", "{id}");
        }
        // Nothing ships in this test: every order not cancelled still
        // holds its stock.
        if v["status"] != "cancelled" {
            for (sku, qty) in lines {
                *allocated.entry(sku.clone()).or_default() += qty;
            }
        }
    }
    for sku in ["a", "b"] {
        let st: Value = client
            .get(format!("{base}/v1/skus/{sku}/stock"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            st["reserved"].as_u64(),
            Some(reserved.get(sku).copied().unwrap_or(0)),
            "{sku}: holds nobody was told of, or lost ones"
        );
        assert_eq!(
            st["allocated"].as_u64(),
            Some(allocated.get(sku).copied().unwrap_or(0)),
            "{sku}: orders nobody was told of, or lost ones"
        );
        for row in st["warehouses"].as_array().unwrap() {
            let n = |k: &str| row[k].as_u64().unwrap();
            assert!(
                n("reserved") + n("allocated") <= n("on_hand"),
                "{sku} oversold: {row}"
            );
            // Safety stock is counted only as far as there is stock left for it.
            let free = n("on_hand") - n("reserved") - n("allocated");
            let safety = n("safety_stock").min(free);
            assert_eq!(
                n("on_hand"),
                n("available") + n("reserved") + n("allocated") + safety,
                "{sku}: {row}"
            );
        }
    }
}

async fn workload(
    client: reqwest::Client,
    base: String,
    round: usize,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let workers = (0..WORKERS).map(|w| {
        let (client, base, ledger) = (client.clone(), base.clone(), ledger.clone());
        tokio::spawn(async move {
            let mut rng = Rng(seed ^ ((round as u64) << 32) ^ w as u64);
            for i in 0..OPS_PER_WORKER {
                let op = next_op(&mut rng, round, w, i, &ledger);
                let answer = call(&client, &base, &op).await;
                let dead = matches!(answer, Answer::InDoubt);
                record(&mut ledger.lock().unwrap(), &op, answer);
                if dead {
                    return;
                }
            }
        })
    });
    for w in workers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let seed = std::env::var("SURGE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed: {seed} (rerun with SURGE_TEST_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut server = start(dir.path());
    server.ready(&client).await;
    setup(&client, &server.base).await;

    for round in 0..=ROUNDS {
        let load = tokio::spawn(workload(
            client.clone(),
            server.base.clone(),
            round,
            seed,
            ledger.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(10 + rng.below(150))).await;
        if round < ROUNDS {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
        } else {
            // Last round: a graceful stop under load must exit 0 and lose nothing.
            let pid = server.child.id().to_string();
            assert!(Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success());
            let status = server.child.wait().unwrap();
            assert!(status.success(), "SIGTERM exit: {status}: {}", server.log());
        }
        load.await.unwrap();
        server = start(dir.path());
        server.ready(&client).await;
        settle_and_verify(&client, &server.base, &ledger).await;
    }
    let l = ledger.lock().unwrap();
    println!(
        "acknowledged: {} reservations, {} orders, {} cancels, {} releases",
        l.holds.len(),
        l.orders.len(),
        l.cancelled.len(),
        l.released.len()
    );
    assert!(!l.holds.is_empty() && !l.orders.is_empty());
    let snapshots: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .map(|log| log.matches("snapshot written").count())
        .sum();
    println!("snapshots taken during the rounds: {snapshots}");
    drop(l);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
