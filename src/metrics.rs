//! Counters and histograms the hot paths update, and their Prometheus text
//! rendering.
//!
//! Everything a request or the log writer touches is a relaxed atomic in a
//! structure made once: no lock, no allocation, no label lookup per event.
//! Labels are bounded by construction: a route is a pattern of the route
//! table (or `unmatched`), a status a number below 600, an error code a
//! variant of `ErrorCode`. Gauges that describe state (holds open, orders
//! by status, feed clients, snapshot age) are read at scrape time from
//! their owners and handed to [`render`] in a [`Gauges`]. The exporter
//! crate (`prometheus-client`) only encodes, at scrape time.

use crate::api::error::ErrorCode;
use crate::ratelimit::LimitKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency buckets, in seconds (request latency, log
/// sync latency): 50 µs to 10 s.
pub const LATENCY_BUCKETS_S: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the group-size buckets, in entries per group commit.
pub const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// A fixed-bucket histogram of atomics: `observe` is a short scan over the
/// bounds and two relaxed adds.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in the unit observed (ns for latencies).
    bounds: Box<[u64]>,
    /// Bounds in the exported unit (seconds, entries).
    bounds_exported: &'static [f64],
    /// One count per bound plus one for +Inf; not cumulative.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// Multiplies `sum` into the exported unit.
    scale: f64,
}

impl Histogram {
    /// Observes durations; exported in seconds.
    pub fn latency() -> Self {
        Self::new(LATENCY_BUCKETS_S, 1e9)
    }

    /// Observes plain numbers (sizes).
    pub fn sizes(bounds: &'static [f64]) -> Self {
        Self::new(bounds, 1.0)
    }

    fn new(bounds_exported: &'static [f64], per_unit: f64) -> Self {
        Self {
            bounds: bounds_exported
                .iter()
                .map(|b| (b * per_unit).round() as u64)
                .collect(),
            bounds_exported,
            counts: (0..=bounds_exported.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0),
            scale: 1.0 / per_unit,
        }
    }

    pub fn observe(&self, value: u64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// (sum in the exported unit, count, buckets each with its own count:
    /// the encoder makes them cumulative).
    fn export(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            let bound = self
                .bounds_exported
                .get(i)
                .copied()
                .unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 * self.scale;
        (sum, count, buckets)
    }
}

/// Requests of one (method, route pattern): counts by status, latency.
#[derive(Debug)]
pub struct RouteStats {
    /// Indexed by status - 100.
    statuses: Box<[AtomicU64]>,
    latency: Histogram,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
            latency: Histogram::latency(),
        }
    }
}

impl RouteStats {
    pub fn record(&self, status: u16, elapsed: Duration) {
        let i = usize::from(status.clamp(100, 599) - 100);
        self.statuses[i].fetch_add(1, Ordering::Relaxed);
        self.latency.observe_duration(elapsed);
    }

    /// Requests answered with `status`.
    pub fn count(&self, status: u16) -> u64 {
        self.statuses
            .get(usize::from(status.saturating_sub(100)))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// The routes the hot path takes, with their stats fixed at start: looked
/// up by a string compare, never through the route table.
pub const HOT_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/reservations"),
    ("POST", "/v1/reservations:batch"),
];

/// Request stats by (method, route pattern).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    hot: [RouteStats; 2],
    /// Every other route, added on its first request. The keys are route
    /// patterns and a bounded set of methods, so this stays small.
    other: RwLock<HashMap<(&'static str, String), Arc<RouteStats>>>,
}

impl HttpMetrics {
    /// The stats of a hot route, by its index in [`HOT_ROUTES`].
    pub fn hot(&self, i: usize) -> Option<&RouteStats> {
        self.hot.get(i)
    }

    /// The stats of any other route (a read lock once it exists).
    pub fn route(&self, method: &'static str, pattern: &str) -> Arc<RouteStats> {
        let read = self.other.read().unwrap_or_else(|p| p.into_inner());
        // A `(&str, String)` key cannot be borrowed as `(&str, &str)`:
        // find it by a scan of the few routes instead of allocating.
        if let Some(s) = read
            .iter()
            .find(|((m, p), _)| *m == method && p == pattern)
            .map(|(_, s)| s.clone())
        {
            return s;
        }
        drop(read);
        self.other
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method, pattern.to_owned()))
            .or_default()
            .clone()
    }

    fn each(&self, mut f: impl FnMut(&str, &str, &RouteStats)) {
        for ((method, pattern), stats) in HOT_ROUTES.iter().zip(&self.hot) {
            f(method, pattern, stats);
        }
        let other = self.other.read().unwrap_or_else(|p| p.into_inner());
        let mut routes: Vec<_> = other.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for ((method, pattern), stats) in routes {
            f(method, pattern, stats);
        }
    }
}

/// Everything counted as it happens; one per server.
#[derive(Debug)]
pub struct Metrics {
    pub http: HttpMetrics,
    /// Reservations accepted (a batch counts each item).
    pub reservations_accepted: AtomicU64,
    /// Reservations refused, by `ErrorCode` (indexed as `ErrorCode::ALL`).
    reservations_refused: Box<[AtomicU64]>,
    /// Requests (or batch items) refused by a rate limit, by limit
    /// (indexed as `LimitKind::ALL`).
    rate_limited: [AtomicU64; 3],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            http: HttpMetrics::default(),
            reservations_accepted: AtomicU64::new(0),
            reservations_refused: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            rate_limited: Default::default(),
        }
    }
}

impl Metrics {
    pub fn reservation_accepted(&self, n: u64) {
        self.reservations_accepted.fetch_add(n, Ordering::Relaxed);
    }

    pub fn reservation_refused(&self, code: ErrorCode) {
        if let Some(c) = self.reservations_refused.get(code.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reservations_refused(&self, code: ErrorCode) -> u64 {
        self.reservations_refused
            .get(code.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A request (or batch item) refused by a rate limit (429).
    pub fn rate_limit_refused(&self, kind: LimitKind) {
        self.rate_limited[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self, kind: LimitKind) -> u64 {
        self.rate_limited[kind as usize].load(Ordering::Relaxed)
    }
}

/// The log writer's group commits.
#[derive(Debug)]
pub struct WalStats {
    /// Entries (writes, each one or more events) per group commit.
    pub group_entries: Histogram,
    /// Time of one group's appends and sync, in ns.
    pub sync_latency: Histogram,
}

impl Default for WalStats {
    fn default() -> Self {
        Self {
            group_entries: Histogram::sizes(GROUP_BUCKETS),
            sync_latency: Histogram::latency(),
        }
    }
}

/// State read at scrape time from its owners.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub ready: bool,
    pub storage_failed: bool,
    pub durable_seq: u64,
    pub holds_open: u64,
    /// (status, orders in memory with it).
    pub orders: Vec<(&'static str, u64)>,
    pub snapshots: u64,
    pub snapshot_failures: u64,
    pub snapshot_age_s: f64,
    pub feed_clients: u64,
    pub feed_messages: u64,
    pub feed_cut_off_slow: u64,
    pub feed_resyncs: u64,
    /// Events the stock ledger is behind the synced log (0 when off).
    pub ledger_lag_events: u64,
    pub ledger_failures: u64,
}

/// Renders every series in the Prometheus text format (version 0.0.4).
pub fn render(metrics: &Arc<Metrics>, wal: &Arc<WalStats>, gauges: Gauges) -> String {
    let mut registry = Registry::with_prefix("surge");
    registry.register_collector(Box::new(Scrape {
        metrics: metrics.clone(),
        wal: wal.clone(),
        gauges,
    }));
    let mut out = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        // Writing to a String cannot fail; keep whatever was written.
        tracing::warn!("metrics encoding stopped early");
    }
    out
}

#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    wal: Arc<WalStats>,
    gauges: Gauges,
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge<T>(e: &mut DescriptorEncoder, name: &str, help: &str, v: T) -> std::fmt::Result
where
    ConstGauge<T>: EncodeMetric,
{
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &Histogram) -> std::fmt::Result {
    let (sum, count, buckets) = h.export();
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let m = &self.metrics;
        let g = &self.gauges;
        {
            let mut family = e.encode_descriptor(
                "http_requests",
                "HTTP requests answered, by method, route pattern and status.",
                None,
                MetricType::Counter,
            )?;
            let mut result = Ok(());
            m.http.each(|method, route, stats| {
                for (i, c) in stats.statuses.iter().enumerate() {
                    let n = c.load(Ordering::Relaxed);
                    if n == 0 || result.is_err() {
                        continue;
                    }
                    let status = (i + 100).to_string();
                    let labels = [("method", method), ("route", route), ("status", &status)];
                    result = family
                        .encode_family(&labels)
                        .and_then(|f| ConstCounter::new(n).encode(f));
                }
            });
            result?;
        }
        {
            let mut family = e.encode_descriptor(
                "http_request_duration_seconds",
                "Time from a request's head to its response, by method and route pattern.",
                None,
                MetricType::Histogram,
            )?;
            let mut result = Ok(());
            m.http.each(|method, route, stats| {
                let (sum, count, buckets) = stats.latency.export();
                if count == 0 || result.is_err() {
                    return;
                }
                let labels = [("method", method), ("route", route)];
                result = family.encode_family(&labels).and_then(|mut f| {
                    f.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        sum, count, &buckets, None,
                    )
                });
            });
            result?;
        }
        counter(
            &mut e,
            "reservations_accepted",
            "Reservations accepted (each item of a batch counts).",
            m.reservations_accepted.load(Ordering::Relaxed),
        )?;
        {
            let mut family = e.encode_descriptor(
                "reservations_refused",
                "Reservations refused, by error code (a batch refused whole counts once).",
                None,
                MetricType::Counter,
            )?;
            for code in ErrorCode::ALL {
                let n = m.reservations_refused(*code);
                if n > 0 {
                    let labels = [("code", code.as_str())];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = e.encode_descriptor(
                "rate_limited",
                "Requests (and batch items) refused by a rate limit (429), by limit.",
                None,
                MetricType::Counter,
            )?;
            for kind in LimitKind::ALL {
                let labels = [("limit", kind.as_str())];
                ConstCounter::new(m.rate_limited(kind)).encode(family.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut e,
            "holds_open",
            "Reservations open (durable).",
            g.holds_open as i64,
        )?;
        {
            let mut family = e.encode_descriptor(
                "orders",
                "Orders in memory, by status (closed ones leave after their retention).",
                None,
                MetricType::Gauge,
            )?;
            for (status, n) in &g.orders {
                let labels = [("status", *status)];
                ConstGauge::new(*n as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        histogram(
            &mut e,
            "wal_group_entries",
            "Writes per group commit of the log.",
            &self.wal.group_entries,
        )?;
        histogram(
            &mut e,
            "wal_sync_duration_seconds",
            "Time to append and sync one group commit.",
            &self.wal.sync_latency,
        )?;
        gauge(
            &mut e,
            "wal_durable_seq",
            "Seq of the last event synced.",
            g.durable_seq as i64,
        )?;
        gauge(
            &mut e,
            "storage_failed",
            "1 once storage failed and writes stopped (fail-stop).",
            i64::from(g.storage_failed),
        )?;
        gauge(
            &mut e,
            "ready",
            "1 when the server takes traffic (/readyz).",
            i64::from(g.ready),
        )?;
        counter(&mut e, "snapshots", "Snapshots written.", g.snapshots)?;
        gauge(
            &mut e,
            "ledger_lag_events",
            "Events the stock ledger is behind the synced log.",
            i64::try_from(g.ledger_lag_events).unwrap_or(i64::MAX),
        )?;
        counter(
            &mut e,
            "ledger_failures",
            "Stock ledger writes or prunes that failed (retried later).",
            g.ledger_failures,
        )?;
        counter(
            &mut e,
            "snapshot_failures",
            "Snapshots that failed (retried later).",
            g.snapshot_failures,
        )?;
        gauge(
            &mut e,
            "snapshot_age_seconds",
            "Time since the last snapshot this run wrote (or since start).",
            g.snapshot_age_s,
        )?;
        gauge(
            &mut e,
            "feed_clients",
            "Feed WebSocket connections open.",
            g.feed_clients as i64,
        )?;
        counter(
            &mut e,
            "feed_messages",
            "Feed messages published (sequenced).",
            g.feed_messages,
        )?;
        counter(
            &mut e,
            "feed_clients_cut_off",
            "Feed connections closed for falling too far behind (dropped).",
            g.feed_cut_off_slow,
        )?;
        counter(
            &mut e,
            "feed_resyncs",
            "Feed clients told to resync (their messages left the window).",
            g.feed_resyncs,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_its_bucket() {
        let h = Histogram::sizes(&[1.0, 4.0]);
        for v in [0, 1, 2, 4, 5, 100] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.export();
        assert_eq!(count, 6);
        assert_eq!(sum, 112.0);
        assert_eq!(buckets, vec![(1.0, 2), (4.0, 2), (f64::INFINITY, 2)]);
    }

    #[test]
    fn latencies_are_exported_in_seconds() {
        let h = Histogram::latency();
        h.observe_duration(Duration::from_micros(300));
        let (sum, _, buckets) = h.export();
        assert!((sum - 0.0003).abs() < 1e-12);
        let first = buckets.iter().find(|(_, n)| *n == 1).unwrap();
        assert_eq!(first.0, 0.0005);
    }

    #[test]
    fn rendering_names_every_family_with_its_labels() {
        let m = Arc::new(Metrics::default());
        m.http
            .hot(0)
            .unwrap()
            .record(201, Duration::from_micros(200));
        m.http
            .route("GET", "/v1/skus/{sku}")
            .record(404, Duration::from_micros(50));
        m.reservation_accepted(3);
        m.reservation_refused(ErrorCode::InsufficientStock);
        let text = render(&m, &Arc::new(WalStats::default()), Gauges::default());
        for line in [
            r#"surge_http_requests_total{method="POST",route="/v1/reservations",status="201"} 1"#,
            r#"surge_http_requests_total{method="GET",route="/v1/skus/{sku}",status="404"} 1"#,
            r#"surge_http_request_duration_seconds_count{method="POST",route="/v1/reservations"} 1"#,
            "surge_reservations_accepted_total 3",
            r#"surge_reservations_refused_total{code="insufficient_stock"} 1"#,
            r#"surge_rate_limited_total{limit="customer"} 0"#,
            r#"surge_rate_limited_total{limit="key"} 0"#,
            "surge_wal_group_entries_count 0",
            r#"surge_http_request_duration_seconds_bucket{method="POST",route="/v1/reservations",le="0.0001"} 0"#,
            r#"surge_http_request_duration_seconds_bucket{method="POST",route="/v1/reservations",le="0.00025"} 1"#,
            r#"surge_http_request_duration_seconds_bucket{method="POST",route="/v1/reservations",le="+Inf"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
