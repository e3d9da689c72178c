//! Crash tests on the real binary: drive concurrent reservations, orders,
//! cancellations and releases, and orders through their lifecycle
//! (payments, acceptance, partial and whole shipments, delivery, a return
//! received back into stock, a refund); SIGKILL the server at a random
//! moment; restart on the same data and check that every acknowledged
//! operation is there exactly once, nothing else is, the stock adds up,
//! and retrying in-doubt requests with their idempotency keys or payment
//! references gives exactly one effect. The last round stops the server
//! with SIGTERM instead and expects a clean exit.
//! The seed is printed; rerun one with SURGE_TEST_SEED=<seed>.

use crate::child::{spawn, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 5;
const WORKERS: usize = 12;
const OPS_PER_WORKER: usize = 40;
/// Workers that each take one order at a time through its lifecycle.
const LIFE_WORKERS: usize = 4;
/// Lifecycle requests one of them sends in a round at most.
const LIFE_STEPS_PER_ROUND: usize = 40;
/// Units each SKU of the lifecycle orders starts with per warehouse: far
/// more than the rounds can place, so no placement is refused for stock.
const LIFE_STOCK: u64 = 1000;

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
        // A slow machine may take a while to catch the ledger up after a
        // restart: reads wait for it rather than answer `ledger_behind`.
        ("SURGE_LEDGER__READ_WAIT_MS", "20000"),
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
    /// Per lifecycle worker, the orders it took through their lifecycle;
    /// the last one may still be under way.
    lives: Vec<Vec<Life>>,
}

/// The steps of one order's lifecycle, in the order they are taken.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Place,
    Authorize,
    CaptureFirst,
    CaptureRest,
    Accept,
    ShipPart,
    ShipRest,
    Deliver,
    Return,
    Receive,
    Refund,
}

const STEPS: [Step; 11] = [
    Step::Place,
    Step::Authorize,
    Step::CaptureFirst,
    Step::CaptureRest,
    Step::Accept,
    Step::ShipPart,
    Step::ShipRest,
    Step::Deliver,
    Step::Return,
    Step::Receive,
    Step::Refund,
];

/// A lifecycle order's lines: (SKU, quantity, unit price). Its total is
/// `LIFE_TOTAL`.
const LIFE_LINES: [(&str, u64, u64); 2] = [("c", 2, 700), ("d", 3, 300)];
const LIFE_TOTAL: u64 = 2 * 700 + 3 * 300;
const CAPTURE_FIRST: u64 = 1000;
const REFUND: u64 = 600;
/// The first shipment: one `d`; the second ships the rest.
const SHIP_PART: (&str, u64) = ("d", 1);
/// Asked back and received into stock at the fulfilment's warehouse.
const RETURNED: (&str, u64) = ("d", 2);

/// One order taken through its lifecycle, and what the server acknowledged
/// of it.
#[derive(Clone, Debug)]
struct Life {
    /// The placement's idempotency key.
    key: String,
    customer: String,
    /// Index into `STEPS` of the next step to take.
    next: usize,
    /// The last attempt at `STEPS[next]` got no answer (the server died or
    /// answered 503): settled after the restart.
    in_doubt: bool,
    id: Option<String>,
    /// The order's one fulfilment and its warehouse.
    fulfillment: Option<(String, String)>,
    ret: Option<String>,
    authorized: u64,
    captured: u64,
    refunded: u64,
    shipped: BTreeMap<String, u64>,
    parcels: usize,
    restocked: u64,
}

impl Life {
    fn new(key: String, customer: String) -> Life {
        Life {
            key,
            customer,
            next: 0,
            in_doubt: false,
            id: None,
            fulfillment: None,
            ret: None,
            authorized: 0,
            captured: 0,
            refunded: 0,
            shipped: BTreeMap::new(),
            parcels: 0,
            restocked: 0,
        }
    }

    fn done(&self) -> bool {
        self.next == STEPS.len()
    }

    fn id(&self) -> &str {
        self.id.as_deref().expect("placed before its later steps")
    }

    fn ful(&self) -> &str {
        &self.fulfillment.as_ref().expect("placed").0
    }

    fn warehouse(&self) -> &str {
        &self.fulfillment.as_ref().expect("placed").1
    }

    /// The request of the next step: path, body and idempotency key.
    fn request(&self) -> (String, Value, Option<String>) {
        let id = || self.id().to_owned();
        let pay = |kind: &str, amount: u64, reference: &str| {
            (
                format!("/v1/orders/{}/payments", id()),
                json!({"kind": kind, "amount": amount, "reference": format!("{}-{reference}", id())}),
                None,
            )
        };
        let ful = |step: &str, body: Value| {
            (
                format!("/v1/fulfillments/{}/{step}", self.ful()),
                body,
                None,
            )
        };
        match STEPS[self.next] {
            Step::Place => {
                let lines: Vec<Value> = LIFE_LINES
                    .iter()
                    .map(|(sku, qty, price)| json!({"sku": sku, "qty": qty, "unit_price": price}))
                    .collect();
                (
                    "/v1/orders".into(),
                    json!({"channel": "web", "customer_id": self.customer, "currency": "EUR",
                           "ship_to": {"lat": 1.0, "lon": 1.0}, "lines": lines}),
                    Some(self.key.clone()),
                )
            }
            Step::Authorize => pay("authorize", LIFE_TOTAL, "auth"),
            Step::CaptureFirst => pay("capture", CAPTURE_FIRST, "cap-1"),
            Step::CaptureRest => pay("capture", LIFE_TOTAL - CAPTURE_FIRST, "cap-2"),
            Step::Refund => pay("refund", REFUND, "refund"),
            Step::Accept => ful("accept", json!({})),
            Step::ShipPart => ful(
                "ship",
                json!({"carrier": "dhl", "tracking": "t1",
                       "lines": [{"sku": SHIP_PART.0, "qty": SHIP_PART.1}]}),
            ),
            Step::ShipRest => ful("ship", json!({"carrier": "dhl", "tracking": "t2"})),
            Step::Deliver => ful("deliver", json!({})),
            Step::Return => (
                format!("/v1/orders/{}/returns", id()),
                json!({"lines": [{"sku": RETURNED.0, "qty": RETURNED.1}], "reason": "too small"}),
                None,
            ),
            Step::Receive => (
                format!(
                    "/v1/returns/{}/receive",
                    self.ret.as_ref().expect("requested")
                ),
                json!({"restock": true, "warehouse": self.warehouse()}),
                None,
            ),
        }
    }

    /// Takes the effect of the next step, acknowledged (`answer` is its
    /// reply) or found on the server after a restart (`answer` is the
    /// order then), and moves on.
    fn took(&mut self, answer: &Value) {
        match STEPS[self.next] {
            Step::Place => {
                let fs = answer["fulfillments"].as_array().unwrap();
                assert_eq!(fs.len(), 1, "one warehouse holds the whole order: {answer}");
                self.id = Some(answer["id"].as_str().unwrap().to_owned());
                self.fulfillment = Some((
                    fs[0]["id"].as_str().unwrap().to_owned(),
                    fs[0]["warehouse"].as_str().unwrap().to_owned(),
                ));
            }
            Step::Authorize => self.authorized += LIFE_TOTAL,
            Step::CaptureFirst => self.captured += CAPTURE_FIRST,
            Step::CaptureRest => self.captured += LIFE_TOTAL - CAPTURE_FIRST,
            Step::Refund => self.refunded += REFUND,
            Step::Accept | Step::Deliver => {}
            Step::ShipPart => {
                *self.shipped.entry(SHIP_PART.0.into()).or_default() += SHIP_PART.1;
                self.parcels += 1;
            }
            Step::ShipRest => {
                // Everything not shipped yet: afterwards, every line whole.
                for (sku, qty, _) in LIFE_LINES {
                    self.shipped.insert(sku.into(), qty);
                }
                self.parcels += 1;
            }
            Step::Return => {
                self.ret = Some(answer["id"].as_str().unwrap().to_owned());
            }
            Step::Receive => self.restocked += RETURNED.1,
        }
        self.next += 1;
        self.in_doubt = false;
    }
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

/// Sends one lifecycle request; `None` when the answer never came or was
/// 503 (the server going away).
async fn send_step(
    client: &reqwest::Client,
    base: &str,
    (path, body, key): &(String, Value, Option<String>),
) -> Option<(StatusCode, Value)> {
    let mut req = client.post(format!("{base}{path}")).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.ok()?;
    let status = r.status();
    let v = r.json::<Value>().await.ok()?;
    (status != StatusCode::SERVICE_UNAVAILABLE).then_some((status, v))
}

/// Takes the orders of lifecycle worker `w` through their steps, one
/// order at a time, going on where the last round stopped; stops at the
/// first request without an answer.
async fn life_worker(
    client: reqwest::Client,
    base: String,
    round: usize,
    w: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for i in 0..LIFE_STEPS_PER_ROUND {
        let mut life = {
            let mut l = ledger.lock().unwrap();
            let lives = &mut l.lives[w];
            if lives.last().is_none_or(Life::done) {
                lives.push(Life::new(
                    format!("l-{round}-{w}-{i}"),
                    format!("l{round}-{w}-{i}"),
                ));
            }
            lives.last().unwrap().clone()
        };
        assert!(!life.in_doubt, "settled before the round");
        let req = life.request();
        let answer = send_step(&client, &base, &req).await;
        let dead = answer.is_none();
        match answer {
            Some((status, v)) => {
                assert!(
                    status.is_success(),
                    "{:?} of {life:?} answered {status}: {v}",
                    STEPS[life.next]
                );
                life.took(&v);
            }
            None => life.in_doubt = true,
        }
        *ledger.lock().unwrap().lives[w].last_mut().unwrap() = life;
        if dead {
            return;
        }
    }
}

/// Settles a lifecycle step that got no answer before the restart. A
/// payment is sent again with its reference and must be one effect; the
/// placement again with its idempotency key. Any other step is looked up:
/// it took effect once or not at all, never twice.
async fn settle_life(client: &reqwest::Client, base: &str, life: &mut Life) {
    let step = STEPS[life.next];
    if matches!(
        step,
        Step::Place | Step::Authorize | Step::CaptureFirst | Step::CaptureRest | Step::Refund
    ) {
        let (status, v) = send_step(client, base, &life.request())
            .await
            .unwrap_or_else(|| panic!("retry of {step:?} of {life:?} still in doubt"));
        assert!(status.is_success(), "retry of {step:?}: {status}: {v}");
        life.took(&v);
        return;
    }
    let o = get_ok(client, &format!("{base}/v1/orders/{}", life.id())).await;
    let f = &o["fulfillments"][0];
    let parcels = f["parcels"].as_array().unwrap().len();
    let returns = o["returns"].as_array().unwrap();
    let happened = match step {
        Step::Accept => f["status"] != "pending",
        Step::Deliver => f["status"] == "delivered",
        Step::ShipPart | Step::ShipRest => {
            assert!(
                parcels == life.parcels || parcels == life.parcels + 1,
                "{step:?} shipped twice: {o}"
            );
            parcels > life.parcels
        }
        Step::Return => {
            assert!(returns.len() <= 1, "one return asked for twice: {o}");
            !returns.is_empty()
        }
        Step::Receive => returns[0]["status"] == "received",
        _ => unreachable!("payments and placement are retried"),
    };
    println!("in doubt: {step:?} of {} happened: {happened}", life.id());
    if happened {
        let seen = if step == Step::Return {
            &returns[0]
        } else {
            &o
        };
        life.took(seen);
    } else {
        life.in_doubt = false;
    }
}

/// Checks one lifecycle order against what was acknowledged of it: its
/// payments in the totals once each, its shipments in `items` and
/// parcels once each, its return received once.
async fn verify_life(client: &reqwest::Client, base: &str, life: &Life) {
    let o = get_ok(client, &format!("{base}/v1/orders/{}", life.id())).await;
    let t = &o["totals"];
    assert_eq!(
        (
            t["authorized"].as_u64(),
            t["captured"].as_u64(),
            t["refunded"].as_u64()
        ),
        (
            Some(life.authorized),
            Some(life.captured),
            Some(life.refunded)
        ),
        "payments of {}: {o}",
        life.id()
    );
    for item in o["items"].as_array().unwrap() {
        let sku = item["sku"].as_str().unwrap();
        assert_eq!(
            item["shipped"].as_u64(),
            Some(life.shipped.get(sku).copied().unwrap_or(0)),
            "{sku} shipped of {}: {o}",
            life.id()
        );
        let returned = if sku == RETURNED.0 { life.restocked } else { 0 };
        assert_eq!(item["returned"].as_u64(), Some(returned), "{o}");
    }
    let f = &o["fulfillments"][0];
    assert_eq!(
        f["parcels"].as_array().unwrap().len(),
        life.parcels,
        "parcels of {}: {o}",
        life.id()
    );
    let returns = o["returns"].as_array().unwrap();
    assert_eq!(returns.len(), usize::from(life.ret.is_some()), "{o}");
}

/// What `setup` receives: (SKU, warehouse, units).
const INITIAL_STOCK: [(&str, &str, u64); 7] = [
    ("a", "w1", 400),
    ("b", "w1", 150),
    ("b", "w2", 150),
    ("c", "w1", LIFE_STOCK),
    ("c", "w2", LIFE_STOCK),
    ("d", "w1", LIFE_STOCK),
    ("d", "w2", LIFE_STOCK),
];

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
    for (sku, limit) in [("a", None), ("b", Some(6)), ("c", None), ("d", None)] {
        let r = client
            .put(format!("{base}/v1/skus/{sku}"))
            .json(&json!({"per_customer_limit": limit}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    for (sku, wh, qty) in INITIAL_STOCK {
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
    let mut lives: Vec<Vec<Life>> = ledger.lock().unwrap().lives.clone();
    for life in lives.iter_mut().flatten().filter(|l| l.in_doubt) {
        settle_life(client, base, life).await;
    }
    ledger.lock().unwrap().lives = lives.clone();
    let l = {
        let g = ledger.lock().unwrap();
        Ledger {
            holds: g.holds.clone(),
            orders: g.orders.clone(),
            cancelled: g.cancelled.clone(),
            released: g.released.clone(),
            in_doubt: Vec::new(),
            lives: Vec::new(),
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
        // These orders never ship (the lifecycle orders are counted
        // below): every one not cancelled still holds its stock.
        if v["status"] != "cancelled" {
            for (sku, qty) in lines {
                *allocated.entry(sku.clone()).or_default() += qty;
            }
        }
    }
    // Shipments leave `on_hand` at their warehouse and what is still to
    // ship stays allocated; restocks come back to `on_hand`.
    let mut on_hand: HashMap<(String, String), u64> = INITIAL_STOCK
        .iter()
        .map(|(sku, wh, qty)| (((*sku).to_owned(), (*wh).to_owned()), *qty))
        .collect();
    for life in lives.iter().flatten().filter(|l| l.id.is_some()) {
        verify_life(client, base, life).await;
        let wh = life.warehouse().to_owned();
        for (sku, qty, _) in LIFE_LINES {
            let shipped = life.shipped.get(sku).copied().unwrap_or(0);
            *on_hand.get_mut(&(sku.to_owned(), wh.clone())).unwrap() -= shipped;
            *allocated.entry(sku.to_owned()).or_default() += qty - shipped;
        }
        *on_hand.get_mut(&(RETURNED.0.to_owned(), wh)).unwrap() += life.restocked;
    }
    for sku in ["a", "b", "c", "d"] {
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
            let wh = row["warehouse"].as_str().unwrap().to_owned();
            assert_eq!(
                Some(n("on_hand")),
                on_hand.get(&(sku.to_owned(), wh)).copied(),
                "{sku}: shipments or restocks lost or taken twice: {row}"
            );
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
        verify_ledger(client, base, sku, &st).await;
    }
}

/// The stock ledger after a crash: every change once (no bucket of a row
/// moved twice by one event), none missing (each row's entries sum to its
/// values), and no opening balance (it followed the log from the start).
async fn verify_ledger(client: &reqwest::Client, base: &str, sku: &str, stock: &Value) {
    let mut entries: Vec<Value> = Vec::new();
    let mut after = String::new();
    loop {
        let page = get_ok(
            client,
            &format!("{base}/v1/skus/{sku}/ledger?limit=500{after}"),
        )
        .await;
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    let mut seen = HashSet::new();
    let mut sums: HashMap<(String, String), i64> = HashMap::new();
    for e in &entries {
        let (wh, bucket) = (e["warehouse"].to_string(), e["bucket"].to_string());
        assert!(
            seen.insert((e["seq"].as_u64().unwrap(), wh.clone(), bucket.clone())),
            "{sku}: a ledger entry twice: {e}"
        );
        assert_ne!(e["reason"], "opening", "{sku}: {e}");
        *sums.entry((wh, bucket)).or_default() += e["delta"].as_i64().unwrap();
    }
    for row in stock["warehouses"].as_array().unwrap() {
        let wh = row["warehouse"].to_string();
        for bucket in [
            "on_hand",
            "reserved",
            "allocated",
            "safety_stock",
            "incoming",
        ] {
            let sum = sums
                .get(&(wh.clone(), format!("\"{bucket}\"")))
                .copied()
                .unwrap_or(0);
            assert_eq!(
                sum,
                row[bucket].as_i64().unwrap_or(0),
                "{sku}@{wh} {bucket}: the ledger lost or repeated a change"
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
    let lifecycle = (0..LIFE_WORKERS).map(|w| {
        tokio::spawn(life_worker(
            client.clone(),
            base.clone(),
            round,
            w,
            ledger.clone(),
        ))
    });
    let all: Vec<_> = workers.chain(lifecycle).collect();
    for w in all {
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
    let ledger = Arc::new(Mutex::new(Ledger {
        lives: vec![Vec::new(); LIFE_WORKERS],
        ..Ledger::default()
    }));
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
    let lives: Vec<&Life> = l
        .lives
        .iter()
        .flatten()
        .filter(|l| l.id.is_some())
        .collect();
    let reached = |step: Step| {
        lives
            .iter()
            .filter(|l| STEPS[..l.next].contains(&step))
            .count()
    };
    println!(
        "lifecycle orders: {} placed, {} paid, {} partly shipped, {} shipped, {} restocked, {} refunded",
        lives.len(),
        reached(Step::Authorize),
        reached(Step::ShipPart),
        reached(Step::ShipRest),
        reached(Step::Receive),
        reached(Step::Refund),
    );
    assert!(reached(Step::Authorize) > 0 && reached(Step::ShipPart) > 0);
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
