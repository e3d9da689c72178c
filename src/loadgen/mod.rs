//! `surge loadgen`: a flash-sale simulator that drives a running server
//! over HTTP and checks it never oversold.
//!
//! It sets up its own warehouses, SKUs and stock (ids prefixed by a run id,
//! so runs never collide), runs the scenario on N keep-alive connections
//! (closed loop, or open loop at a target rate with latency measured from
//! the intended send time), then reads every SKU's stock back and checks
//! the accounting: what the server says is reserved and allocated equals
//! what it acknowledged, on hand is untouched, and a SKU reported sold out
//! has nothing left. `--mode journey` takes orders all the way (payment,
//! shipment, delivery, cancels and returns) and checks every stock row:
//! on hand is what was put there less what shipped plus what came back,
//! allocated is what is ordered and not shipped or cancelled, reserved is
//! what open holds keep.

pub mod channels;
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
    /// One customer's whole journey per unit of work: a hold, a priced
    /// order consuming it, authorize and capture, then each fulfilment
    /// accepted, shipped and delivered; `--cancel-share` of the orders are
    /// cancelled instead of paid, `--return-share` are returned after
    /// delivery (asked back, received, restocked). `--requests` bounds the
    /// journeys.
    Journey,
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
    /// Share of journeys (`--mode journey`) whose order is returned after
    /// delivery and restocked; with `--cancel-share`, at most 1.
    #[arg(long, default_value_t = 0.1)]
    pub return_share: f64,
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
    /// Sales channels, comma-separated: `name` (sells from the common
    /// remainder), `name:share:F` or `name:fixed:N` (a pool of each SKU's
    /// stock: share F of it, or N units). Each request picks one at
    /// random, and the check covers every pool. None: orders name the
    /// channel `loadgen`, holds none.
    #[arg(long)]
    pub channels: Option<String>,
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
            ("return-share", self.return_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("--{name} must be from 0 to 1"));
            }
        }
        if self.mode == Mode::Journey && self.cancel_share + self.return_share > 1.0 {
            return Err("--cancel-share plus --return-share cannot exceed 1".into());
        }
        if self.duration_s.is_nan() || self.duration_s <= 0.0 {
            return Err("--duration-s must be positive".into());
        }
        crate::feed::Topic::parse(&self.subscribe_topic.replace("{sku}", "s0"))?;
        if let Some(c) = &self.channels {
            channels::parse(c)?;
        }
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
    /// Units acknowledged as shipped (`--mode journey`).
    #[serde(default)]
    pub shipped: u64,
    /// Units acknowledged as received back into stock (`--mode journey`).
    #[serde(default)]
    pub restocked: u64,
}

/// The accounting of one stock row (a SKU in one warehouse) after a run
/// of `--mode journey`: what the run expects from what the server
/// acknowledged, and what the server says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowCheck {
    pub sku: String,
    pub warehouse: String,
    /// Units put there at setup.
    pub initial: u64,
    /// Units acknowledged as shipped from there.
    pub shipped: u64,
    /// Units acknowledged as received back into stock there.
    pub restocked: u64,
    /// Units of acknowledged holds still open there.
    pub expected_reserved: i64,
    /// Units acknowledged as ordered there, neither shipped nor cancelled.
    pub expected_allocated: i64,
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
}

impl RowCheck {
    /// What is wrong with this row. Oversell is always checked; the
    /// expected numbers only when `exact` (no request was left without an
    /// answer, so every effect on the server is known).
    pub fn problems(&self, exact: bool) -> Vec<String> {
        let mut p = Vec::new();
        let at = format!("{} at {}", self.sku, self.warehouse);
        let committed = self.reserved.saturating_add(self.allocated);
        if committed > self.on_hand {
            p.push(format!(
                "{at}: OVERSOLD: reserved {} + allocated {} > on_hand {}",
                self.reserved, self.allocated, self.on_hand
            ));
        }
        let expected_on_hand =
            i128::from(self.initial) - i128::from(self.shipped) + i128::from(self.restocked);
        if expected_on_hand < 0 {
            p.push(format!(
                "{at}: OVERSOLD: {} units shipped of {} (+{} restocked)",
                self.shipped, self.initial, self.restocked
            ));
        }
        if !exact {
            return p;
        }
        if i128::from(self.on_hand) != expected_on_hand {
            p.push(format!(
                "{at}: on_hand {} != initial {} - shipped {} + restocked {}",
                self.on_hand, self.initial, self.shipped, self.restocked
            ));
        }
        if i128::from(self.allocated) != i128::from(self.expected_allocated) {
            p.push(format!(
                "{at}: allocated {} != {} units ordered and not shipped or cancelled",
                self.allocated, self.expected_allocated
            ));
        }
        if i128::from(self.reserved) != i128::from(self.expected_reserved) {
            p.push(format!(
                "{at}: reserved {} != {} units in open holds",
                self.reserved, self.expected_reserved
            ));
        }
        p
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// No oversell and exact accounting.
    pub ok: bool,
    pub problems: Vec<String>,
    /// SKUs whose stock is all gone.
    pub sold_out: usize,
    pub skus: Vec<SkuCheck>,
    /// One per stock row (`--mode journey`; empty otherwise).
    #[serde(default)]
    pub rows: Vec<RowCheck>,
    /// One per SKU and channel (`--channels`; empty otherwise).
    #[serde(default)]
    pub pools: Vec<channels::PoolCheck>,
}

/// The steps of a journey, in order.
pub const JOURNEY_STEPS: [&str; 10] = [
    "hold",
    "order",
    "cancel",
    "authorize",
    "capture",
    "accept",
    "ship",
    "deliver",
    "return",
    "receive",
];

/// Throughput and latency of one step of `--mode journey`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepStats {
    pub step: String,
    /// Requests sent (answered, whatever the status).
    pub requests: u64,
    /// Requests that succeeded (2xx).
    pub ok: u64,
    /// Requests per second over the run.
    pub per_s: f64,
    /// Latency in milliseconds.
    pub p50: f64,
    pub p99: f64,
}

/// How the journeys of `--mode journey` ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journeys {
    pub started: u64,
    /// Delivered and kept.
    pub delivered: u64,
    /// Cancelled after ordering.
    pub cancelled: u64,
    /// Delivered, returned and restocked.
    pub returned: u64,
    /// Ended early by a refusal (e.g. sold out) or a failure.
    pub stopped: u64,
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
    /// Per step, in journey order (`--mode journey`; empty otherwise).
    pub steps: Vec<StepStats>,
    /// How the journeys ended (`--mode journey`).
    pub journeys: Option<Journeys>,
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
        if let Some(j) = &self.journeys {
            let _ = writeln!(
                s,
                "journeys {}: delivered {}, cancelled {}, returned {}, stopped {}",
                j.started, j.delivered, j.cancelled, j.returned, j.stopped
            );
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "step", "requests", "ok", "req/s", "p50 ms", "p99 ms"
            );
            for st in &self.steps {
                let _ = writeln!(
                    s,
                    "{:<12} {:>9} {:>9} {:>9.0} {:>9.3} {:>9.3}",
                    st.step, st.requests, st.ok, st.per_s, st.p50, st.p99
                );
            }
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
        if !self.check.pools.is_empty() {
            let mut by_channel: BTreeMap<&str, (i64, Option<u64>)> = BTreeMap::new();
            for k in &self.check.pools {
                let e = by_channel.entry(&k.channel).or_insert((0, None));
                e.0 += k.acknowledged;
                if let Some(p) = k.pool {
                    e.1 = Some(e.1.unwrap_or(0) + p);
                }
            }
            for (name, (sold, pool)) in by_channel {
                let _ = match pool {
                    Some(p) => writeln!(s, "channel {name}: {sold} units of pools of {p} in all"),
                    None => writeln!(s, "channel {name}: {sold} units from the common remainder"),
                };
            }
        }
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
    /// The run's warehouse ids, in setup order.
    warehouses: Vec<String>,
    /// Per SKU, then per warehouse (`--mode journey`).
    rows: Vec<Vec<RowTally>>,
    journeys: JourneyCounters,
    /// `--channels`, parsed (empty without it).
    channels: Vec<channels::ChannelArg>,
    /// Per SKU, then per channel: units acknowledged, net of cancels.
    by_channel: Vec<Vec<AtomicI64>>,
    /// Per SKU, then per channel: its pool's size at setup.
    pools: Vec<Vec<Option<u64>>>,
}

/// What the server acknowledged for one stock row, in units.
#[derive(Default)]
struct RowTally {
    held: AtomicI64,
    allocated: AtomicI64,
    shipped: AtomicU64,
    restocked: AtomicU64,
}

#[derive(Default)]
struct JourneyCounters {
    started: AtomicU64,
    delivered: AtomicU64,
    cancelled: AtomicU64,
    returned: AtomicU64,
    stopped: AtomicU64,
}

impl JourneyCounters {
    fn snapshot(&self) -> Journeys {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Journeys {
            started: l(&self.started),
            delivered: l(&self.delivered),
            cancelled: l(&self.cancelled),
            returned: l(&self.returned),
            stopped: l(&self.stopped),
        }
    }
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
    /// Successful requests per kind (journey steps).
    ok: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: BTreeMap::new(),
            ok: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, op: &'static str, since: Instant) {
        let us = since.elapsed().as_micros().max(1) as u64;
        let h = self.latency.entry(op).or_insert_with(histogram);
        let _ = h.record(us.min(LATENCY_US_MAX));
    }

    fn succeeded(&mut self, op: &'static str) {
        *self.ok.entry(op).or_insert(0) += 1;
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
        for (k, v) in other.ok {
            *self.ok.entry(k).or_insert(0) += v;
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
    let mix = match &opts.channels {
        Some(c) => channels::parse(c).map_err(LoadgenError::Options)?,
        None => Vec::new(),
    };
    let pools = setup(&opts, &addr, &run_id, &skus, &mix).await?;
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
        warehouses: (0..opts.warehouses)
            .map(|w| warehouse_id(&run_id, w))
            .collect(),
        rows: (0..opts.skus)
            .map(|_| (0..opts.warehouses).map(|_| RowTally::default()).collect())
            .collect(),
        journeys: JourneyCounters::default(),
        by_channel: (0..opts.skus)
            .map(|_| mix.iter().map(|_| AtomicI64::new(0)).collect())
            .collect(),
        pools,
        channels: mix,
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
    let journey = opts.mode == Mode::Journey;
    let steps = if journey {
        step_stats(&tally, elapsed)
    } else {
        Vec::new()
    };
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
        steps,
        journeys: journey.then(|| shared.journeys.snapshot()),
        errors: tally.errors,
        feed,
        check,
        options: opts,
    })
}

/// Throughput and latency of each journey step, in journey order.
fn step_stats(tally: &Tally, elapsed_s: f64) -> Vec<StepStats> {
    JOURNEY_STEPS
        .iter()
        .map(|name| {
            let l = tally.latency.get(name).map(Latency::of);
            let requests = l.as_ref().map_or(0, |l| l.count);
            StepStats {
                step: (*name).to_owned(),
                requests,
                ok: tally.ok.get(name).copied().unwrap_or(0),
                per_s: requests as f64 / elapsed_s,
                p50: l.as_ref().map_or(0.0, |l| l.p50),
                p99: l.as_ref().map_or(0.0, |l| l.p99),
            }
        })
        .collect()
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

/// The id of the run's warehouse `w`.
fn warehouse_id(run_id: &str, w: usize) -> String {
    format!("{run_id}-w{w}")
}

/// Units of each SKU put into warehouse `w` of `warehouses` at setup.
fn row_stock(stock: u64, warehouses: u64, w: u64) -> u64 {
    stock / warehouses + u64::from(w < stock % warehouses)
}

/// Creates the run's warehouses and SKUs, stocks them and sets their
/// channel pools; returns each SKU's pool sizes, per channel of `mix`.
async fn setup(
    opts: &Options,
    addr: &str,
    run_id: &str,
    skus: &[String],
    mix: &[channels::ChannelArg],
) -> Result<Vec<Vec<Option<u64>>>, LoadgenError> {
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
            &format!("/v1/warehouses/{}", warehouse_id(run_id, w)),
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
        let mix = mix.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut sizes = Vec::new();
            for sku in mine {
                let body = format!(r#"{{"name":"{sku}"}}"#);
                expect_ok(&mut conn, "PUT", &format!("/v1/skus/{sku}"), body).await?;
                for w in 0..warehouses {
                    let share = row_stock(stock, warehouses, w);
                    let wh = warehouse_id(&run_id, w as usize);
                    let body = format!(
                        r#"{{"sku":"{sku}","warehouse":"{wh}","delta":{share},"reason":"loadgen"}}"#
                    );
                    expect_ok(&mut conn, "POST", "/v1/stock/adjustments", body).await?;
                }
                if mix.iter().any(|c| c.pool.is_some()) {
                    let path = format!("/v1/skus/{sku}/channels");
                    expect_ok(&mut conn, "PUT", &path, channels::pools_body(&mix)).await?;
                    sizes.push((sku, pool_sizes(&mut conn, &path, &mix).await?));
                } else {
                    sizes.push((sku, mix.iter().map(|_| None).collect()));
                }
            }
            Ok::<_, LoadgenError>(sizes)
        }));
    }
    let mut by_sku = BTreeMap::new();
    for t in tasks {
        by_sku.extend(t.await.map_err(|e| LoadgenError::Setup(e.to_string()))??);
    }
    Ok(skus
        .iter()
        .map(|s| by_sku.remove(s).unwrap_or_default())
        .collect())
}

/// Each channel's pool (its units left and out) on the server now, in the
/// order of `mix`; `None` for a channel without one.
async fn pool_views(
    conn: &mut Conn,
    path: &str,
    mix: &[channels::ChannelArg],
) -> Result<Vec<Option<channels::PoolView>>, LoadgenError> {
    let r = conn
        .request("GET", path, None)
        .await
        .map_err(|e| LoadgenError::Setup(format!("GET {path}: {e}")))?;
    if r.status != 200 {
        return Err(LoadgenError::Setup(format!("GET {path}: {}", r.status)));
    }
    let pools = channels::pools_of(&r.body).map_err(LoadgenError::Setup)?;
    Ok(mix
        .iter()
        .map(|c| {
            pools
                .iter()
                .find(|(n, _)| *n == c.name)
                .map(|(_, v)| v.clone())
        })
        .collect())
}

/// Each channel's pool size right after it was set (nothing taken yet).
async fn pool_sizes(
    conn: &mut Conn,
    path: &str,
    mix: &[channels::ChannelArg],
) -> Result<Vec<Option<u64>>, LoadgenError> {
    Ok(pool_views(conn, path, mix)
        .await?
        .into_iter()
        .map(|v| v.map(|v| v.left + v.out))
        .collect())
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

fn reserve_body(
    shared: &Shared,
    sku: usize,
    customer: &Option<String>,
    channel: Option<usize>,
) -> String {
    let o = &shared.opts;
    let customer = match customer {
        Some(c) => format!(r#","customer_id":"{c}""#),
        None => String::new(),
    };
    let channel = match channel {
        Some(c) => format!(r#","channel":"{}""#, shared.channels[c].name),
        None => String::new(),
    };
    format!(
        r#"{{"sku":"{}","qty":{},"ttl_ms":{}{customer}{channel}}}"#,
        shared.skus[sku], o.qty, o.ttl_ms
    )
}

/// The channel of one request: one of `--channels` at random, if any.
fn pick_channel(shared: &Shared, rng: &mut Rng) -> Option<usize> {
    (!shared.channels.is_empty()).then(|| rng.below(shared.channels.len()))
}

/// The channel an order names.
fn channel_name(shared: &Shared, channel: Option<usize>) -> &str {
    channel.map_or("loadgen", |c| shared.channels[c].name.as_str())
}

/// `units` acknowledged to (or, negative, given back by) `channel` on `sku`.
fn credit(shared: &Shared, sku: usize, channel: Option<usize>, units: i64) {
    if let Some(c) = channel {
        shared.by_channel[sku][c].fetch_add(units, Ordering::Relaxed);
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
            let ch = pick_channel(shared, rng);
            let body = reserve_body(shared, sku, &cust, ch);
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
            credit(shared, sku, ch, qty);
            if o.mode == Mode::Reserve {
                return Ok(());
            }
            let hold = serde_json::from_slice::<Created>(&r.body)
                .map_err(|_| ClientError::Malformed("reservation body"))?
                .id;
            let body = format!(
                r#"{{"channel":"{}","customer_id":"{}","ship_to":{{"lat":48.1,"lon":11.5}},"lines":[{{"sku":"{}","qty":{},"reservation_id":"{hold}"}}]}}"#,
                channel_name(shared, ch),
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
            maybe_cancel(shared, conn, rng, tally, &r.body, &[sku], ch).await
        }
        Mode::Batch => {
            let picks: Vec<(usize, Option<usize>)> = (0..o.batch)
                .map(|_| (pick(shared, rng), pick_channel(shared, rng)))
                .collect();
            let items: Vec<String> = picks
                .iter()
                .map(|(s, ch)| reserve_body(shared, *s, &customer(shared, rng, false), *ch))
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
            for ((sku, ch), item) in picks.iter().zip(reply.results) {
                match (item.status, item.error) {
                    (201, _) => {
                        shared.acknowledged[*sku].fetch_add(qty, Ordering::Relaxed);
                        credit(shared, *sku, *ch, qty);
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
            let ch = pick_channel(shared, rng);
            let body = format!(
                r#"{{"channel":"{}","customer_id":"{}","ship_to":{{"lat":48.1,"lon":11.5}},"lines":[{}]}}"#,
                channel_name(shared, ch),
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
                credit(shared, *s, ch, qty);
            }
            maybe_cancel(shared, conn, rng, tally, &r.body, &lines, ch).await
        }
        Mode::Journey => journey(shared, conn, rng, tally, intended).await,
    }
}

/// The price of one unit in a journey's order, in minor units.
const UNIT_PRICE: u64 = 1990;

#[derive(Deserialize)]
struct HoldReply {
    id: String,
    warehouse: String,
}

#[derive(Deserialize)]
struct OrderReply {
    id: String,
    fulfillments: Vec<FulfillmentReply>,
}

#[derive(Deserialize)]
struct FulfillmentReply {
    id: String,
    warehouse: String,
    lines: Vec<UnitsReply>,
}

#[derive(Deserialize)]
struct UnitsReply {
    sku: String,
    qty: u64,
}

/// One request of a journey's step: its latency is recorded from `since`;
/// a 2xx answer's body, or the error code of a refusal (counted).
#[allow(clippy::too_many_arguments)]
async fn step(
    shared: &Shared,
    conn: &mut Conn,
    tally: &mut Tally,
    op: &'static str,
    since: Instant,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Result<Vec<u8>, String>, ClientError> {
    let r = conn.request(method, path, body).await?;
    tally.record(op, since);
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if (200..300).contains(&r.status) {
        tally.succeeded(op);
        Ok(Ok(r.body))
    } else {
        let code = code_of(&r.body);
        tally.error(&code);
        Ok(Err(code))
    }
}

/// A journey's unit counters for SKU `sku` in the warehouse named `wh`.
fn row<'a>(shared: &'a Shared, sku: usize, wh: &str) -> Result<&'a RowTally, ClientError> {
    let w = shared
        .warehouses
        .iter()
        .position(|w| w == wh)
        .ok_or(ClientError::Malformed("a warehouse not of this run"))?;
    Ok(&shared.rows[sku][w])
}

/// One customer's whole journey: hold, order (priced, consuming the hold),
/// then cancel, or authorize, capture, and per fulfilment accept, ship and
/// deliver, then maybe a return received back into stock. A refusal ends
/// the journey where it is; every acknowledged effect is counted per stock
/// row for the final check.
async fn journey(
    shared: &Shared,
    conn: &mut Conn,
    rng: &mut Rng,
    tally: &mut Tally,
    intended: Instant,
) -> Result<(), ClientError> {
    let o = &shared.opts;
    let j = &shared.journeys;
    j.started.fetch_add(1, Ordering::Relaxed);
    let stopped = || {
        j.stopped.fetch_add(1, Ordering::Relaxed);
        Ok(())
    };
    let sku = pick(shared, rng);
    let sku_id = &shared.skus[sku];
    let cust = customer(shared, rng, true).unwrap_or_default();
    let qty = o.qty;
    let units = qty as i64;
    let outcome = rng.unit();
    let cancel = outcome < o.cancel_share;
    let give_back = !cancel && outcome < o.cancel_share + o.return_share;

    // Cart: a hold.
    let ch = pick_channel(shared, rng);
    let body = reserve_body(shared, sku, &Some(cust.clone()), ch);
    shared.items.fetch_add(1, Ordering::Relaxed);
    let hold = match step(
        shared,
        conn,
        tally,
        "hold",
        intended,
        "POST",
        "/v1/reservations",
        Some(body.as_bytes()),
    )
    .await?
    {
        Ok(b) => serde_json::from_slice::<HoldReply>(&b)
            .map_err(|_| ClientError::Malformed("reservation body"))?,
        Err(code) => {
            if code == "insufficient_stock" {
                shared.sold_out_seen[sku].store(true, Ordering::Relaxed);
            }
            return stopped();
        }
    };
    row(shared, sku, &hold.warehouse)?
        .held
        .fetch_add(units, Ordering::Relaxed);
    shared.acknowledged[sku].fetch_add(units, Ordering::Relaxed);
    credit(shared, sku, ch, units);

    // Checkout: a priced order taking the hold.
    let body = format!(
        r#"{{"channel":"{}","customer_id":"{cust}","currency":"EUR","ship_to":{{"lat":48.1,"lon":11.5}},"lines":[{{"sku":"{sku_id}","qty":{qty},"reservation_id":"{}","unit_price":{UNIT_PRICE}}}]}}"#,
        channel_name(shared, ch),
        hold.id
    );
    shared.items.fetch_add(1, Ordering::Relaxed);
    let order = match step(
        shared,
        conn,
        tally,
        "order",
        Instant::now(),
        "POST",
        "/v1/orders",
        Some(body.as_bytes()),
    )
    .await?
    {
        // The hold stays (and is still counted) until it expires.
        Err(_) => return stopped(),
        Ok(b) => serde_json::from_slice::<OrderReply>(&b)
            .map_err(|_| ClientError::Malformed("order body"))?,
    };
    row(shared, sku, &hold.warehouse)?
        .held
        .fetch_sub(units, Ordering::Relaxed);
    // What each fulfilment holds of the SKU.
    let mut parts: Vec<(&FulfillmentReply, u64)> = Vec::new();
    for f in &order.fulfillments {
        let mut n = 0;
        for l in &f.lines {
            if l.sku != *sku_id {
                return Err(ClientError::Malformed("an order line of another SKU"));
            }
            n += l.qty;
        }
        row(shared, sku, &f.warehouse)?
            .allocated
            .fetch_add(n as i64, Ordering::Relaxed);
        parts.push((f, n));
    }
    let id = &order.id;

    if cancel {
        let r = step(
            shared,
            conn,
            tally,
            "cancel",
            Instant::now(),
            "POST",
            &format!("/v1/orders/{id}/cancel"),
            Some(br#"{"reason":"loadgen"}"#),
        )
        .await?;
        if r.is_err() {
            return stopped();
        }
        for (f, n) in &parts {
            row(shared, sku, &f.warehouse)?
                .allocated
                .fetch_sub(*n as i64, Ordering::Relaxed);
        }
        shared.acknowledged[sku].fetch_sub(units, Ordering::Relaxed);
        credit(shared, sku, ch, -units);
        j.cancelled.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }

    // Payment.
    let amount = qty.saturating_mul(UNIT_PRICE);
    for kind in ["authorize", "capture"] {
        let body = format!(r#"{{"kind":"{kind}","amount":{amount},"reference":"{id}-{kind}"}}"#);
        let r = step(
            shared,
            conn,
            tally,
            kind,
            Instant::now(),
            "POST",
            &format!("/v1/orders/{id}/payments"),
            Some(body.as_bytes()),
        )
        .await?;
        if r.is_err() {
            return stopped();
        }
    }

    // Fulfilment, shipment by shipment.
    for (f, n) in &parts {
        let fid = &f.id;
        let path = |s: &str| format!("/v1/fulfillments/{fid}/{s}");
        if step(
            shared,
            conn,
            tally,
            "accept",
            Instant::now(),
            "POST",
            &path("accept"),
            None,
        )
        .await?
        .is_err()
        {
            return stopped();
        }
        let body = format!(r#"{{"carrier":"loadgen","tracking":"{fid}"}}"#);
        let shipped = step(
            shared,
            conn,
            tally,
            "ship",
            Instant::now(),
            "POST",
            &path("ship"),
            Some(body.as_bytes()),
        )
        .await?;
        if shipped.is_err() {
            return stopped();
        }
        let r = row(shared, sku, &f.warehouse)?;
        r.allocated.fetch_sub(*n as i64, Ordering::Relaxed);
        r.shipped.fetch_add(*n, Ordering::Relaxed);
        shared.acknowledged[sku].fetch_sub(*n as i64, Ordering::Relaxed);
        if step(
            shared,
            conn,
            tally,
            "deliver",
            Instant::now(),
            "POST",
            &path("deliver"),
            None,
        )
        .await?
        .is_err()
        {
            return stopped();
        }
    }
    if !give_back {
        j.delivered.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }

    // A return, received back into the first shipment's warehouse.
    let Some((first, _)) = parts.first() else {
        return stopped();
    };
    let body = format!(r#"{{"lines":[{{"sku":"{sku_id}","qty":{qty}}}],"reason":"loadgen"}}"#);
    let ret = match step(
        shared,
        conn,
        tally,
        "return",
        Instant::now(),
        "POST",
        &format!("/v1/orders/{id}/returns"),
        Some(body.as_bytes()),
    )
    .await?
    {
        Err(_) => return stopped(),
        Ok(b) => {
            serde_json::from_slice::<Created>(&b)
                .map_err(|_| ClientError::Malformed("return body"))?
                .id
        }
    };
    let body = format!(r#"{{"restock":true,"warehouse":"{}"}}"#, first.warehouse);
    let received = step(
        shared,
        conn,
        tally,
        "receive",
        Instant::now(),
        "POST",
        &format!("/v1/returns/{ret}/receive"),
        Some(body.as_bytes()),
    )
    .await?;
    if received.is_err() {
        return stopped();
    }
    row(shared, sku, &first.warehouse)?
        .restocked
        .fetch_add(qty, Ordering::Relaxed);
    j.returned.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn maybe_cancel(
    shared: &Shared,
    conn: &mut Conn,
    rng: &mut Rng,
    tally: &mut Tally,
    order: &[u8],
    lines: &[usize],
    channel: Option<usize>,
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
            credit(shared, *s, channel, -(shared.opts.qty as i64));
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
    warehouse: String,
    on_hand: u64,
    reserved: u64,
    allocated: u64,
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
    let journey = o.mode == Mode::Journey;
    let mut problems = Vec::new();
    let mut skus = Vec::new();
    let mut rows = Vec::new();
    let mut pools = Vec::new();
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
            shipped: shared.rows[i]
                .iter()
                .map(|r| r.shipped.load(Ordering::Relaxed))
                .sum(),
            restocked: shared.rows[i]
                .iter()
                .map(|r| r.restocked.load(Ordering::Relaxed))
                .sum(),
        };
        let committed = c.reserved.saturating_add(c.allocated);
        // Only shipments and restocks move on hand; a journey request left
        // without an answer may have done either.
        let expected_on_hand = c
            .stock
            .checked_add(c.restocked)
            .and_then(|n| n.checked_sub(c.shipped));
        if (in_doubt == 0 || !journey) && Some(c.on_hand) != expected_on_hand {
            problems.push(format!(
                "{sku}: on_hand {} != stock {} - shipped {} + restocked {}",
                c.on_hand, c.stock, c.shipped, c.restocked
            ));
        }
        if journey {
            for (w, wh) in shared.warehouses.iter().enumerate() {
                let t = &shared.rows[i][w];
                let server = v.warehouses.iter().find(|r| r.warehouse == *wh);
                let r = RowCheck {
                    sku: sku.clone(),
                    warehouse: wh.clone(),
                    initial: row_stock(o.stock, o.warehouses as u64, w as u64),
                    shipped: t.shipped.load(Ordering::Relaxed),
                    restocked: t.restocked.load(Ordering::Relaxed),
                    expected_reserved: t.held.load(Ordering::Relaxed),
                    expected_allocated: t.allocated.load(Ordering::Relaxed),
                    on_hand: server.map_or(0, |r| r.on_hand),
                    reserved: server.map_or(0, |r| r.reserved),
                    allocated: server.map_or(0, |r| r.allocated),
                };
                problems.extend(r.problems(in_doubt == 0));
                rows.push(r);
            }
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
        // Without cancels or returns nothing comes back, so a refusal for
        // lack of stock means no warehouse has one request's worth left.
        let most = v.warehouses.iter().map(|r| r.available).max().unwrap_or(0);
        let nothing_back = o.cancel_share == 0.0 && (!journey || o.return_share == 0.0);
        // A channel may be refused for lack of stock in its pool (or the
        // common remainder) while the SKU has more: pools are checked below.
        if shared.channels.is_empty() && c.sold_out_seen && nothing_back && most >= o.qty {
            problems.push(format!(
                "{sku}: refused as sold out but a warehouse still has {most} available"
            ));
        }
        if !shared.channels.is_empty() {
            let grown = c.restocked > 0;
            let (checks, common) = check_pools(shared, &mut conn, i, grown).await?;
            problems.extend(
                checks
                    .iter()
                    .flat_map(|k| k.problems(in_doubt == 0, grown, c.shipped > 0)),
            );
            problems.extend(common);
            pools.extend(checks);
        }
        skus.push(c);
    }
    let sold_out = skus.iter().filter(|c| c.available < o.qty).count();
    Ok(Check {
        ok: problems.is_empty(),
        problems,
        sold_out,
        skus,
        rows,
        pools,
    })
}

/// Each channel's accounting on SKU `i`, and whether the channels without
/// a pool took more than the common remainder the pools left at setup.
async fn check_pools(
    shared: &Shared,
    conn: &mut Conn,
    i: usize,
    grown: bool,
) -> Result<(Vec<channels::PoolCheck>, Option<String>), LoadgenError> {
    let sku = &shared.skus[i];
    let sizes = &shared.pools[i];
    let views = if sizes.iter().any(Option::is_some) {
        pool_views(conn, &format!("/v1/skus/{sku}/channels"), &shared.channels).await?
    } else {
        shared.channels.iter().map(|_| None).collect()
    };
    let mut checks = Vec::new();
    let mut common_taken = 0;
    for (c, ch) in shared.channels.iter().enumerate() {
        let acknowledged = shared.by_channel[i][c].load(Ordering::Relaxed);
        if sizes[c].is_none() {
            common_taken += acknowledged;
        }
        checks.push(channels::PoolCheck {
            sku: sku.clone(),
            channel: ch.name.clone(),
            pool: sizes[c],
            acknowledged,
            left: views[c].as_ref().map(|v| v.left),
            out: views[c].as_ref().map(|v| v.out),
        });
    }
    let fenced: u64 = sizes.iter().flatten().sum();
    let common = shared.opts.stock.saturating_sub(fenced);
    Ok((
        checks,
        channels::common_problem(sku, common_taken, common, grown),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RowCheck {
        RowCheck {
            sku: "s0".into(),
            warehouse: "w0".into(),
            initial: 10,
            shipped: 4,
            restocked: 1,
            expected_reserved: 2,
            expected_allocated: 3,
            on_hand: 7,
            reserved: 2,
            allocated: 3,
        }
    }

    #[test]
    fn a_row_that_adds_up_has_no_problem() {
        assert_eq!(row().problems(true), Vec::<String>::new());
    }

    #[test]
    fn each_mismatch_of_a_row_is_a_problem() {
        let on_hand = RowCheck {
            on_hand: 8,
            ..row()
        };
        let p = on_hand.problems(true);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("on_hand 8 != initial 10 - shipped 4 + restocked 1"));
        let allocated = RowCheck {
            expected_allocated: 2,
            ..row()
        };
        assert!(allocated.problems(true)[0].contains("allocated 3 != 2"));
        let reserved = RowCheck {
            expected_reserved: 0,
            ..row()
        };
        assert!(reserved.problems(true)[0].contains("reserved 2 != 0"));
        // Without exact knowledge, only oversell counts.
        assert!(on_hand.problems(false).is_empty());
    }

    #[test]
    fn oversell_is_a_problem_even_when_in_doubt() {
        let over = RowCheck {
            reserved: 5,
            allocated: 3,
            ..row()
        };
        assert!(over.problems(false)[0].contains("OVERSOLD: reserved 5 + allocated 3 > on_hand 7"));
        let shipped_too_much = RowCheck {
            shipped: 12,
            on_hand: 0,
            reserved: 0,
            allocated: 0,
            ..row()
        };
        assert!(shipped_too_much.problems(false)[0].contains("OVERSOLD: 12 units shipped of 10"));
    }

    #[test]
    fn journey_shares_are_bounded() {
        let mut o = Options::new("http://127.0.0.1:1");
        o.mode = Mode::Journey;
        assert_eq!(o.return_share, 0.1);
        o.cancel_share = 0.5;
        o.return_share = 0.5;
        assert!(o.check().is_ok());
        o.return_share = 0.51;
        assert!(o.check().unwrap_err().contains("cannot exceed 1"));
        o.cancel_share = 0.0;
        o.return_share = 1.01;
        assert!(o.check().unwrap_err().contains("--return-share"));
        o.return_share = 1.0;
        assert!(o.check().is_ok());
        o.return_share = -0.01;
        assert!(o.check().is_err());
    }
}
