//! `surge loadgen`: a flash-sale simulator that drives a running server
//! over HTTP and checks it never oversold.
//!
//! It sets up its own warehouses, SKUs and stock (ids prefixed by a run id,
//! so runs never collide), runs the scenario on N keep-alive connections
//! (closed loop, or open loop at a target rate with latency measured from
//! the intended send time), then reads every SKU's stock back and checks
//! the accounting: what the server says is reserved and allocated equals
//! what it acknowledged, on hand is untouched, and a SKU reported sold out
//! has nothing left.

pub mod client;
pub mod feed;

use client::{ClientError, Conn};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One reservation per request.
    Reserve,
    /// `--batch` reservations per request (POST /v1/reservations:batch).
    Batch,
    /// A reservation, then an order that consumes it.
    HoldOrder,
    /// Orders of `--lines` lines, without a reservation first.
    Order,
}

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Options {
    /// Server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Requests per second over all connections; 0 = closed loop (each
    /// connection sends as soon as its previous answer arrives).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Stop after this many requests (0 = no bound but the duration).
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
    #[arg(long, value_enum, default_value_t = Mode::Reserve)]
    pub mode: Mode,
    /// SKUs in the sale.
    #[arg(long, default_value_t = 1)]
    pub skus: usize,
    /// Share of picks that go to the first (hot) SKU; the rest are uniform
    /// over all SKUs.
    #[arg(long, default_value_t = 1.0)]
    pub hot_share: f64,
    /// Units of each SKU at the start, spread over the warehouses.
    #[arg(long, default_value_t = 10_000_000)]
    pub stock: u64,
    #[arg(long, default_value_t = 1)]
    pub warehouses: usize,
    /// Units per reservation or order line.
    #[arg(long, default_value_t = 1)]
    pub qty: u64,
    /// Lines per order (`--mode order`), on distinct SKUs.
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Reservations per request in `--mode batch`.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Share of placed orders cancelled right after.
    #[arg(long, default_value_t = 0.0)]
    pub cancel_share: f64,
    /// Distinct customers (orders always name one; reservations do when > 0).
    #[arg(long, default_value_t = 0)]
    pub customers: u64,
    /// Hold lifetime asked for; longer than the run, so holds do not expire
    /// during it and the accounting stays exact.
    #[arg(long, default_value_t = 3_600_000)]
    pub ttl_ms: u64,
    /// WebSocket feed subscribers (GET /v1/feed) during the run; their
    /// delivery lag is reported.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// The topic the subscribers follow; `{sku}` stands for a SKU of the
    /// sale, subscriber i taking SKU i mod --skus (product pages).
    #[arg(long, default_value = "stock")]
    pub subscribe_topic: String,
    /// Subscribers ask for conflated stock values, at most every this many
    /// ms (0 = every change).
    #[arg(long, default_value_t = 0)]
    pub subscribe_conflate_ms: u64,
    /// Worker threads of the load generator itself.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the pseudo-random picks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefix of every id created; default: derived from the time.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    #[serde(skip)]
    pub json: Option<std::path::PathBuf>,
    /// No progress line.
    #[arg(long)]
    #[serde(skip)]
    pub quiet: bool,
    /// API key sent as `Authorization: Bearer` on every request and feed
    /// connection (the key `admin`: the run creates its warehouses and SKUs). Never
    /// written to the report.
    #[arg(long)]
    #[serde(skip)]
    pub key: Option<String>,
}

impl Options {
    /// Defaults, as the command line has them.
    pub fn new(target: &str) -> Options {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            o: Options,
        }
        let mut o = Wrap::parse_from(["loadgen"]).o;
        o.target = target.to_owned();
        o
    }

    fn check(&self) -> Result<(), String> {
        let positive = [
            ("connections", self.connections as u64),
            ("skus", self.skus as u64),
            ("warehouses", self.warehouses as u64),
            ("qty", self.qty),
            ("lines", self.lines as u64),
            ("batch", self.batch as u64),
            ("threads", self.threads as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("--{name} must be at least 1"));
            }
        }
        if self.lines > self.skus {
            return Err("--lines cannot exceed --skus (lines are on distinct SKUs)".into());
        }
        for (name, v) in [
            ("hot-share", self.hot_share),
            ("cancel-share", self.cancel_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("--{name} must be from 0 to 1"));
            }
        }
        if self.duration_s.is_nan() || self.duration_s <= 0.0 {
            return Err("--duration-s must be positive".into());
        }
        crate::feed::Topic::parse(&self.subscribe_topic.replace("{sku}", "s0"))?;
        if self.stock < self.warehouses as u64 {
            return Err("--stock must be at least --warehouses".into());
        }
        Ok(())
    }

    fn addr(&self) -> String {
        self.target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Latency of one kind of request, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The accounting of one SKU after the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkuCheck {
    pub sku: String,
    pub stock: u64,
    /// Units the server acknowledged as held or ordered, net of cancels.
    pub acknowledged: i64,
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub available: u64,
    pub sold_out_seen: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// No oversell and exact accounting.
    pub ok: bool,
    pub problems: Vec<String>,
    /// SKUs whose stock is all gone.
    pub sold_out: usize,
    pub skus: Vec<SkuCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub options: Options,
    pub elapsed_s: f64,
    /// HTTP requests completed (any status).
    pub requests: u64,
    pub requests_per_s: f64,
    /// Reservations and order lines decided (accepted or refused); a batch
    /// request counts each of its items.
    pub items: u64,
    pub items_per_s: f64,
    /// Units acknowledged (held or ordered, net of cancels).
    pub units_acknowledged: i64,
    /// Latency per kind of request.
    pub latency: BTreeMap<String, Latency>,
    /// Refusals and failures by error code (`io` = no answer).
    pub errors: BTreeMap<String, u64>,
    /// What the feed subscribers saw, if there were any.
    pub feed: Option<feed::FeedStats>,
    pub check: Check,
}

impl Report {
    /// A human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let o = &self.options;
        let _ = writeln!(
            s,
            "surge loadgen {:?}: {} connections, {} SKUs (hot share {}), {} warehouses, stock {} per SKU",
            o.mode, o.connections, o.skus, o.hot_share, o.warehouses, o.stock
        );
        let _ = writeln!(
            s,
            "elapsed {:.2} s   requests {} ({:.0}/s)   items {} ({:.0}/s)   units acknowledged {}",
            self.elapsed_s,
            self.requests,
            self.requests_per_s,
            self.items,
            self.items_per_s,
            self.units_acknowledged
        );
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for (k, l) in &self.latency {
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                k, l.count, l.p50, l.p90, l.p99, l.p999, l.max
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(s, "errors: none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "errors: {}", list.join(", "));
        }
        if let Some(f) = &self.feed {
            let _ = writeln!(
                s,
                "feed: {} subscribers on {}, {} events received, lag ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}; out of order {}, gaps {}, dropped {}",
                f.subscribers, f.topic, f.events, f.lag.p50, f.lag.p90, f.lag.p99, f.lag.max, f.out_of_order, f.gaps, f.dropped
            );
        }
        let _ = writeln!(
            s,
            "oversell check: {} ({} of {} SKUs sold out)",
            if self.check.ok { "OK" } else { "FAILED" },
            self.check.sold_out,
            self.check.skus.len()
        );
        for p in &self.check.problems {
            let _ = writeln!(s, "  {p}");
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("setup failed: {0}")]
    Setup(String),
}

/// Shared counters of a run.
struct Shared {
    opts: Options,
    addr: String,
    skus: Vec<String>,
    acknowledged: Vec<AtomicI64>,
    sold_out_seen: Vec<AtomicBool>,
    started: Instant,
    deadline: Instant,
    budget: AtomicU64,
    requests: AtomicU64,
    items: AtomicU64,
    failures: AtomicU64,
    next_customer: AtomicU64,
}

impl Shared {
    /// Takes one request from the budget; false when the run is over.
    fn take(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        self.opts.requests == 0 || self.budget.fetch_add(1, Ordering::Relaxed) < self.opts.requests
    }
}

/// xorshift64*: small, fast, seeded; enough for picking SKUs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Longest latency recorded, in µs (an hour).
const LATENCY_US_MAX: u64 = 3_600_000_000;

#[allow(clippy::expect_used)] // constant bounds, valid by construction
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Per-connection results, merged at the end.
struct Tally {
    latency: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, op: &'static str, since: Instant) {
        let us = since.elapsed().as_micros().max(1) as u64;
        let h = self.latency.entry(op).or_insert_with(histogram);
        let _ = h.record(us.min(LATENCY_US_MAX));
    }

    fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_insert(0) += 1;
    }

    fn merge(&mut self, other: Tally) {
        for (k, h) in other.latency {
            match self.latency.get_mut(k) {
                Some(mine) => {
                    let _ = mine.add(&h);
                }
                None => {
                    self.latency.insert(k, h);
                }
            }
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct BatchReply {
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    status: u16,
    error: Option<ErrorBody>,
}

fn code_of(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.code)
        .unwrap_or_else(|_| "unreadable_error".into())
}

/// Runs the scenario against `opts.target` and checks the result.
pub async fn run(opts: Options) -> Result<Report, LoadgenError> {
    opts.check().map_err(LoadgenError::Options)?;
    let run_id = opts.run_id.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("lg{ms}")
    });
    let addr = opts.addr();
    let skus: Vec<String> = (0..opts.skus).map(|i| format!("{run_id}-s{i}")).collect();
    setup(&opts, &addr, &run_id, &skus).await?;
    let subscribers = if opts.subscribers > 0 {
        Some(
            feed::Subscribers::start(
                opts.key.as_deref(),
                &opts.target,
                opts.subscribers,
                |i| opts.subscribe_topic.replace("{sku}", &skus[i % skus.len()]),
                opts.subscribe_conflate_ms,
            )
            .await
            .map_err(|e| LoadgenError::Setup(format!("feed subscribers: {e}")))?,
        )
    } else {
        None
    };

    let started = Instant::now();
    let shared = Arc::new(Shared {
        addr: addr.clone(),
        acknowledged: skus.iter().map(|_| AtomicI64::new(0)).collect(),
        sold_out_seen: skus.iter().map(|_| AtomicBool::new(false)).collect(),
        skus,
        started,
        deadline: started + Duration::from_secs_f64(opts.duration_s),
        budget: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        items: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        next_customer: AtomicU64::new(0),
        opts: opts.clone(),
    });
    let progress = (!opts.quiet).then(|| tokio::spawn(progress(shared.clone())));
    let workers: Vec<_> = (0..opts.connections)
        .map(|i| tokio::spawn(worker(shared.clone(), i)))
        .collect();
    let mut tally = Tally::new();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let feed = match subscribers {
        Some(s) => Some(s.finish(feed_head(&addr, opts.key.as_deref()).await?).await),
        None => None,
    };
    let mut check = check(&shared, &mut tally).await?;
    if let Some(f) = &feed {
        if f.out_of_order > 0 || f.gaps > 0 || f.dropped > 0 {
            check.ok = false;
            check.problems.push(format!(
                "feed: {} out of order, {} gaps, {} subscribers dropped",
                f.out_of_order, f.gaps, f.dropped
            ));
        }
    }
    let requests = shared.requests.load(Ordering::Relaxed);
    let items = shared.items.load(Ordering::Relaxed);
    Ok(Report {
        run_id,
        elapsed_s: elapsed,
        requests,
        requests_per_s: requests as f64 / elapsed,
        items,
        items_per_s: items as f64 / elapsed,
        units_acknowledged: shared
            .acknowledged
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum(),
        latency: tally
            .latency
            .iter()
            .map(|(k, h)| ((*k).to_owned(), Latency::of(h)))
            .collect(),
        errors: tally.errors,
        feed,
        check,
        options: opts,
    })
}

async fn expect_ok(
    conn: &mut Conn,
    method: &str,
    path: &str,
    body: String,
) -> Result<(), LoadgenError> {
    let r = conn
        .request(method, path, Some(body.as_bytes()))
        .await
        .map_err(|e| LoadgenError::Setup(format!("{method} {path}: {e}")))?;
    if r.status != 200 && r.status != 201 {
        return Err(LoadgenError::Setup(format!(
            "{method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )));
    }
    Ok(())
}

/// Creates the run's warehouses and SKUs and stocks them.
async fn setup(
    opts: &Options,
    addr: &str,
    run_id: &str,
    skus: &[String],
) -> Result<(), LoadgenError> {
    let connect = || async {
        Conn::connect(addr, opts.key.as_deref())
            .await
            .map_err(|e| LoadgenError::Setup(format!("cannot connect to {addr}: {e}")))
    };
    let mut conn = connect().await?;
    for w in 0..opts.warehouses {
        let body = format!(
            r#"{{"name":"loadgen {w}","location":{{"lat":{},"lon":{}}},"priority":{w}}}"#,
            48.0 + w as f64 * 0.5,
            2.0 + w as f64
        );
        expect_ok(
            &mut conn,
            "PUT",
            &format!("/v1/warehouses/{run_id}-w{w}"),
            body,
        )
        .await?;
    }
    // A few connections in parallel: catalogues can be large.
    let lanes = opts.connections.clamp(1, 8);
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mine: Vec<String> = skus.iter().skip(lane).step_by(lanes).cloned().collect();
        let mut conn = connect().await?;
        let (stock, warehouses, run_id) = (opts.stock, opts.warehouses as u64, run_id.to_owned());
        tasks.push(tokio::spawn(async move {
            for sku in mine {
                let body = format!(r#"{{"name":"{sku}"}}"#);
                expect_ok(&mut conn, "PUT", &format!("/v1/skus/{sku}"), body).await?;
                for w in 0..warehouses {
                    let share = stock / warehouses + u64::from(w < stock % warehouses);
                    let body = format!(
                        r#"{{"sku":"{sku}","warehouse":"{run_id}-w{w}","delta":{share},"reason":"loadgen"}}"#
                    );
                    expect_ok(&mut conn, "POST", "/v1/stock/adjustments", body).await?;
                }
            }
            Ok::<(), LoadgenError>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| LoadgenError::Setup(e.to_string()))??;
    }
    Ok(())
}

async fn progress(shared: Arc<Shared>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let n = shared.requests.load(Ordering::Relaxed);
        eprint!(
            "\r{:6.1} s  requests {:>10}  {:>8}/s  failures {:>6}   ",
            shared.started.elapsed().as_secs_f64(),
            n,
            n - last,
            shared.failures.load(Ordering::Relaxed)
        );
        last = n;
    }
}

/// What one connection does until the run is over.
async fn worker(shared: Arc<Shared>, index: usize) -> Tally {
    let opts = &shared.opts;
    let mut tally = Tally::new();
    let mut rng = Rng::new(opts.seed.wrapping_add(index as u64 * 7919));
    let mut conn: Option<Conn> = None;
    let interval = (opts.rate > 0)
        .then(|| Duration::from_secs_f64(opts.connections as f64 / opts.rate as f64));
    // Spread the connections' first sends over one interval.
    let mut next = shared.started
        + interval.map_or(Duration::ZERO, |i| {
            i * index as u32 / opts.connections as u32
        });
    while shared.take() {
        let intended = match interval {
            Some(i) => {
                tokio::time::sleep_until(next.into()).await;
                let at = next;
                next += i;
                at
            }
            None => Instant::now(),
        };
        if conn.is_none() {
            match Conn::connect(&shared.addr, shared.opts.key.as_deref()).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    tally.error("connect");
                    shared.failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = one(&shared, c, &mut rng, &mut tally, intended).await {
            tally.error(match e {
                ClientError::Malformed(_) => "malformed_response",
                _ => "io",
            });
            shared.failures.fetch_add(1, Ordering::Relaxed);
            conn = None;
        }
    }
    tally
}

fn pick(shared: &Shared, rng: &mut Rng) -> usize {
    let n = shared.skus.len();
    if n == 1 || rng.unit() < shared.opts.hot_share {
        0
    } else {
        rng.below(n)
    }
}

fn customer(shared: &Shared, rng: &mut Rng, always: bool) -> Option<String> {
    let n = shared.opts.customers;
    if n > 0 {
        Some(format!("c{}", rng.next() % n))
    } else if always {
        Some(format!(
            "c{}",
            shared.next_customer.fetch_add(1, Ordering::Relaxed)
        ))
    } else {
        None
    }
}

fn reserve_body(shared: &Shared, sku: usize, customer: &Option<String>) -> String {
    let o = &shared.opts;
    match customer {
        Some(c) => format!(
            r#"{{"sku":"{}","qty":{},"customer_id":"{c}","ttl_ms":{}}}"#,
            shared.skus[sku], o.qty, o.ttl_ms
        ),
        None => format!(
            r#"{{"sku":"{}","qty":{},"ttl_ms":{}}}"#,
            shared.skus[sku], o.qty, o.ttl_ms
        ),
    }
}

/// One unit of work of the scenario: one request, or a short sequence
/// (hold then order, order then cancel).
async fn one(
    shared: &Shared,
    conn: &mut Conn,
    rng: &mut Rng,
    tally: &mut Tally,
    intended: Instant,
) -> Result<(), ClientError> {
    let o = &shared.opts;
    let qty = o.qty as i64;
    let count = |items: u64| {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        shared.items.fetch_add(items, Ordering::Relaxed);
    };
    let refused = |tally: &mut Tally, body: &[u8], sku: Option<usize>| {
        let code = code_of(body);
        if code == "insufficient_stock" {
            if let Some(s) = sku {
                shared.sold_out_seen[s].store(true, Ordering::Relaxed);
            }
        }
        tally.error(&code);
    };
    match o.mode {
        Mode::Reserve | Mode::HoldOrder => {
            let sku = pick(shared, rng);
            let cust = customer(shared, rng, o.mode == Mode::HoldOrder);
            let body = reserve_body(shared, sku, &cust);
            let r = conn
                .request("POST", "/v1/reservations", Some(body.as_bytes()))
                .await?;
            tally.record("reserve", intended);
            count(1);
            if r.status != 201 {
                refused(tally, &r.body, Some(sku));
                return Ok(());
            }
            shared.acknowledged[sku].fetch_add(qty, Ordering::Relaxed);
            if o.mode == Mode::Reserve {
                return Ok(());
            }
            let hold = serde_json::from_slice::<Created>(&r.body)
                .map_err(|_| ClientError::Malformed("reservation body"))?
                .id;
            let body = format!(
                r#"{{"channel":"loadgen","customer_id":"{}","ship_to":{{"lat":48.1,"lon":11.5}},"lines":[{{"sku":"{}","qty":{},"reservation_id":"{hold}"}}]}}"#,
                cust.unwrap_or_default(),
                shared.skus[sku],
                o.qty
            );
            let started = Instant::now();
            let r = conn
                .request("POST", "/v1/orders", Some(body.as_bytes()))
                .await?;
            tally.record("order", started);
            count(1);
            if r.status != 201 {
                // The hold stays (and is still counted) until it expires.
                refused(tally, &r.body, None);
                return Ok(());
            }
            maybe_cancel(shared, conn, rng, tally, &r.body, &[sku]).await
        }
        Mode::Batch => {
            let picks: Vec<usize> = (0..o.batch).map(|_| pick(shared, rng)).collect();
            let items: Vec<String> = picks
                .iter()
                .map(|s| reserve_body(shared, *s, &customer(shared, rng, false)))
                .collect();
            let body = format!(r#"{{"reservations":[{}]}}"#, items.join(","));
            let r = conn
                .request("POST", "/v1/reservations:batch", Some(body.as_bytes()))
                .await?;
            tally.record("batch", intended);
            count(picks.len() as u64);
            if r.status != 200 {
                refused(tally, &r.body, None);
                return Ok(());
            }
            let reply: BatchReply = serde_json::from_slice(&r.body)
                .map_err(|_| ClientError::Malformed("batch body"))?;
            if reply.results.len() != picks.len() {
                return Err(ClientError::Malformed("batch answered another count"));
            }
            for (sku, item) in picks.iter().zip(reply.results) {
                match (item.status, item.error) {
                    (201, _) => {
                        shared.acknowledged[*sku].fetch_add(qty, Ordering::Relaxed);
                    }
                    (_, Some(e)) => {
                        if e.code == "insufficient_stock" {
                            shared.sold_out_seen[*sku].store(true, Ordering::Relaxed);
                        }
                        tally.error(&e.code);
                    }
                    (_, None) => tally.error("unreadable_error"),
                }
            }
            Ok(())
        }
        Mode::Order => {
            let mut lines: Vec<usize> = Vec::with_capacity(o.lines);
            while lines.len() < o.lines {
                let s = pick(shared, rng);
                if !lines.contains(&s) {
                    lines.push(s);
                } else if lines.len() + 1 == shared.skus.len() || rng.unit() < 0.5 {
                    // Avoid spinning on the hot SKU: take any free one.
                    if let Some(free) = (0..shared.skus.len()).find(|i| !lines.contains(i)) {
                        lines.push(free);
                    }
                }
            }
            let body_lines: Vec<String> = lines
                .iter()
                .map(|s| format!(r#"{{"sku":"{}","qty":{}}}"#, shared.skus[*s], o.qty))
                .collect();
            let body = format!(
                r#"{{"channel":"loadgen","customer_id":"{}","ship_to":{{"lat":48.1,"lon":11.5}},"lines":[{}]}}"#,
                customer(shared, rng, true).unwrap_or_default(),
                body_lines.join(",")
            );
            let r = conn
                .request("POST", "/v1/orders", Some(body.as_bytes()))
                .await?;
            tally.record("order", intended);
            count(lines.len() as u64);
            if r.status != 201 {
                refused(tally, &r.body, (lines.len() == 1).then(|| lines[0]));
                return Ok(());
            }
            for s in &lines {
                shared.acknowledged[*s].fetch_add(qty, Ordering::Relaxed);
            }
            maybe_cancel(shared, conn, rng, tally, &r.body, &lines).await
        }
    }
}

async fn maybe_cancel(
    shared: &Shared,
    conn: &mut Conn,
    rng: &mut Rng,
    tally: &mut Tally,
    order: &[u8],
    lines: &[usize],
) -> Result<(), ClientError> {
    if shared.opts.cancel_share == 0.0 || rng.unit() >= shared.opts.cancel_share {
        return Ok(());
    }
    let id = serde_json::from_slice::<Created>(order)
        .map_err(|_| ClientError::Malformed("order body"))?
        .id;
    let started = Instant::now();
    let r = conn
        .request(
            "POST",
            &format!("/v1/orders/{id}/cancel"),
            Some(br#"{"reason":"loadgen"}"#),
        )
        .await?;
    tally.record("cancel", started);
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if r.status == 200 {
        for s in lines {
            shared.acknowledged[*s].fetch_sub(shared.opts.qty as i64, Ordering::Relaxed);
        }
    } else {
        tally.error(&code_of(&r.body));
    }
    Ok(())
}

/// The feed's newest seq, once the load has stopped.
async fn feed_head(addr: &str, key: Option<&str>) -> Result<u64, LoadgenError> {
    #[derive(Deserialize)]
    struct Stats {
        seq: u64,
    }
    let fail = |e: String| LoadgenError::Setup(format!("reading /v1/feed/stats: {e}"));
    let mut conn = Conn::connect(addr, key)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let r = conn
        .request("GET", "/v1/feed/stats", None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice::<Stats>(&r.body)
        .map(|s| s.seq)
        .map_err(|e| fail(e.to_string()))
}

#[derive(Deserialize)]
struct StockView {
    on_hand: u64,
    reserved: u64,
    allocated: u64,
    available: u64,
    warehouses: Vec<RowView>,
}

#[derive(Deserialize)]
struct RowView {
    available: u64,
}

/// Reads every SKU back and checks the accounting.
async fn check(shared: &Shared, tally: &mut Tally) -> Result<Check, LoadgenError> {
    let o = &shared.opts;
    let mut conn = Conn::connect(&shared.addr, o.key.as_deref())
        .await
        .map_err(|e| LoadgenError::Setup(format!("cannot connect for the check: {e}")))?;
    // Requests that got no answer may or may not have taken effect.
    let in_doubt = tally.errors.get("io").copied().unwrap_or(0)
        + tally.errors.get("malformed_response").copied().unwrap_or(0);
    let mut problems = Vec::new();
    let mut skus = Vec::new();
    for (i, sku) in shared.skus.iter().enumerate() {
        let r = conn
            .request("GET", &format!("/v1/skus/{sku}/stock"), None)
            .await
            .map_err(|e| LoadgenError::Setup(format!("reading {sku}: {e}")))?;
        let v: StockView = serde_json::from_slice(&r.body)
            .map_err(|e| LoadgenError::Setup(format!("reading {sku}: {} {e}", r.status)))?;
        let c = SkuCheck {
            sku: sku.clone(),
            stock: o.stock,
            acknowledged: shared.acknowledged[i].load(Ordering::Relaxed),
            on_hand: v.on_hand,
            reserved: v.reserved,
            allocated: v.allocated,
            available: v.available,
            sold_out_seen: shared.sold_out_seen[i].load(Ordering::Relaxed),
        };
        let committed = c.reserved.saturating_add(c.allocated);
        if c.on_hand != c.stock {
            problems.push(format!("{sku}: on_hand {} != stock {}", c.on_hand, c.stock));
        }
        if committed > c.on_hand {
            problems.push(format!(
                "{sku}: OVERSOLD: reserved {} + allocated {} > on_hand {}",
                c.reserved, c.allocated, c.on_hand
            ));
        }
        if c.acknowledged < 0 || c.acknowledged as u64 > c.stock {
            problems.push(format!(
                "{sku}: OVERSOLD: {} units acknowledged of {}",
                c.acknowledged, c.stock
            ));
        }
        if c.available != c.on_hand.saturating_sub(committed) {
            problems.push(format!("{sku}: available {} does not add up", c.available));
        }
        if in_doubt == 0 && committed as i64 != c.acknowledged {
            problems.push(format!(
                "{sku}: server holds {committed} units, {} were acknowledged",
                c.acknowledged
            ));
        }
        // Without cancels nothing comes back, so a refusal for lack of
        // stock means no warehouse has one request's worth left.
        let most = v.warehouses.iter().map(|r| r.available).max().unwrap_or(0);
        if c.sold_out_seen && o.cancel_share == 0.0 && most >= o.qty {
            problems.push(format!(
                "{sku}: refused as sold out but a warehouse still has {most} available"
            ));
        }
        skus.push(c);
    }
    let sold_out = skus.iter().filter(|c| c.available < o.qty).count();
    Ok(Check {
        ok: problems.is_empty(),
        problems,
        sold_out,
        skus,
    })
}
