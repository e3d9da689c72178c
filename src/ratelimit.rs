//! Token buckets (GCRA, from `governor`) per client and per customer,
//! without HTTP: the API asks [`RateLimits`] and turns a [`Limited`] into
//! 429 `rate_limited` with `Retry-After`.
//!
//! *Clients.* An API key is one client, whatever routes it calls (keyed by
//! the key's name); with no keys configured, a remote address is one client
//! (only reachable when protected mode is off); a loopback client without
//! a key is not limited (the machine's own tools, load tests).
//!
//! *Customers.* Every reservation (each item of a batch) and every order
//! naming a `customer_id` takes one token from that customer's bucket, so
//! one shopper or bot cannot hammer a hot SKU whatever key or address it
//! comes from.
//!
//! *Memory.* Each limiter tracks at most `rate_limit_tracked_max` keys. A
//! bucket that has refilled is indistinguishable from a new one and is
//! dropped by a sweep (`retain_recent`), run at most every
//! `rate_limit_sweep_ms` by whichever request comes next. While the table
//! is full,
//! clients and customers it does not know yet are let through untracked
//! (the table does not grow; the ones it tracks stay limited).

use crate::config::Config;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Which limit refused a request (the `limit` label and body field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The bucket of an API key.
    Key,
    /// The bucket of a remote address (no keys configured).
    ClientIp,
    /// The bucket of a `customer_id`.
    Customer,
}

impl LimitKind {
    pub const ALL: [LimitKind; 3] = [LimitKind::Key, LimitKind::ClientIp, LimitKind::Customer];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Key => "key",
            LimitKind::ClientIp => "client_ip",
            LimitKind::Customer => "customer",
        }
    }
}

/// A refusal: which limit, and how long until one more request conforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub kind: LimitKind,
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After` in whole seconds: rounded up, at least 1.
    pub fn retry_after_s(&self) -> u64 {
        let d = self.retry_after;
        let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        s.max(1)
    }
}

/// Who a request counts against, besides its customers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Key(Arc<str>),
    Ip(IpAddr),
}

/// One keyed limiter with a bounded table.
struct Buckets<K: Hash + Eq + Clone, C: Clock> {
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    start: C::Instant,
    tracked_max: usize,
    sweep_every: Duration,
    /// Nanoseconds since `start` of the last sweep.
    swept_at: AtomicU64,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Buckets<K, C> {
    /// `None` when `per_sec` is 0 (off).
    fn new(per_sec: u32, burst: u32, config: &Config, clock: C) -> Option<Self> {
        let rate = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate); // validated: not 0
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Buckets {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            start: clock.now(),
            clock,
            tracked_max: config.rate_limit_tracked_max,
            sweep_every: Duration::from_millis(config.rate_limit_sweep_ms),
            swept_at: AtomicU64::new(0),
        })
    }

    fn elapsed_ns(&self) -> u64 {
        let d: Duration = self.clock.now().duration_since(self.start).into();
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Sweeps refilled buckets if the last sweep is `sweep_every` old; one
    /// caller at a time wins the race.
    fn maybe_sweep(&self) {
        let now = self.elapsed_ns();
        let last = self.swept_at.load(Ordering::Relaxed);
        let every = u64::try_from(self.sweep_every.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < every {
            return;
        }
        if self
            .swept_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    fn check(&self, key: &K, kind: LimitKind) -> Result<(), Limited> {
        self.maybe_sweep();
        if self.limiter.len() >= self.tracked_max {
            // Full even after any sweep due: not tracked (see the module).
            return Ok(());
        }
        self.limiter.check_key(key).map_err(|not_until| Limited {
            kind,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The rate limits of one server: per client and per customer, each off
/// when its rate is 0.
pub struct RateLimits<C: Clock = DefaultClock> {
    clients: Option<Buckets<Client, C>>,
    customers: Option<Buckets<Arc<str>, C>>,
    /// Whether keys are configured: then a request without a key (an open
    /// route such as `/healthz`) is not limited per address.
    keys_configured: bool,
}

impl RateLimits<DefaultClock> {
    pub fn from_config(config: &Config) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// With `clock` (tests pass governor's `FakeRelativeClock`).
    pub fn with_clock(config: &Config, clock: C) -> Self {
        RateLimits {
            clients: Buckets::new(
                config.rate_limit_key_per_sec,
                config.rate_limit_key_burst,
                config,
                clock.clone(),
            ),
            customers: Buckets::new(
                config.rate_limit_customer_per_sec,
                config.rate_limit_customer_burst,
                config,
                clock,
            ),
            keys_configured: !config.keys.is_empty(),
        }
    }

    /// Who a request counts against: its key's name, or (no keys
    /// configured) its remote address unless that is loopback.
    pub fn client(&self, key_name: Option<&Arc<str>>, peer: Option<IpAddr>) -> Option<Client> {
        match (key_name, peer) {
            (Some(name), _) => Some(Client::Key(name.clone())),
            (None, Some(ip)) if !self.keys_configured && !crate::api::auth::is_loopback(ip) => {
                Some(Client::Ip(ip))
            }
            _ => None,
        }
    }

    /// Takes one token from the client's bucket.
    pub fn check_client(&self, client: &Client) -> Result<(), Limited> {
        let Some(b) = &self.clients else {
            return Ok(());
        };
        let kind = match client {
            Client::Key(_) => LimitKind::Key,
            Client::Ip(_) => LimitKind::ClientIp,
        };
        b.check(client, kind)
    }

    /// Takes one token from the customer's bucket.
    pub fn check_customer(&self, customer: &str) -> Result<(), Limited> {
        let Some(b) = &self.customers else {
            return Ok(());
        };
        b.check(&Arc::from(customer), LimitKind::Customer)
    }

    /// Buckets tracked now: (clients, customers).
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.clients.as_ref().map_or(0, Buckets::len),
            self.customers.as_ref().map_or(0, Buckets::len),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn config(f: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default_config();
        c.rate_limit_key_per_sec = 2;
        c.rate_limit_key_burst = 5;
        c.rate_limit_customer_per_sec = 1;
        c.rate_limit_customer_burst = 3;
        c.rate_limit_tracked_max = 1_000;
        c.rate_limit_sweep_ms = 60_000;
        f(&mut c);
        c
    }

    #[test]
    fn a_customer_gets_its_burst_then_waits_for_a_token() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(&config(|_| {}), clock.clone());
        for _ in 0..3 {
            assert_eq!(limits.check_customer("bot"), Ok(()));
        }
        let refused = limits.check_customer("bot").unwrap_err();
        assert_eq!(refused.kind, LimitKind::Customer);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.retry_after_s(), 1);
        // Another customer has a bucket of its own.
        assert_eq!(limits.check_customer("shopper"), Ok(()));
        // One token per second comes back.
        clock.advance(Duration::from_millis(999));
        let refused = limits.check_customer("bot").unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(1));
        assert_eq!(refused.retry_after_s(), 1, "rounded up, at least 1");
        clock.advance(Duration::from_millis(1));
        assert_eq!(limits.check_customer("bot"), Ok(()));
        assert!(limits.check_customer("bot").is_err());
    }

    #[test]
    fn clients_are_keys_or_remote_addresses_never_loopback() {
        let limits = RateLimits::with_clock(&config(|_| {}), FakeRelativeClock::default());
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(limits.client(None, Some(lo)), None);
        assert_eq!(limits.client(None, Some(remote)), Some(Client::Ip(remote)));
        assert_eq!(
            limits.client(Some(&Arc::from("web")), Some(lo)),
            Some(Client::Key(Arc::from("web")))
        );
        let keyed = config(|c| {
            c.keys = vec![crate::auth::KeyConfig {
                name: "web".into(),
                sha256: "0".repeat(64),
                scopes: vec!["storefront".into()],
            }]
        });
        let limits = RateLimits::with_clock(&keyed, FakeRelativeClock::default());
        // With keys, a request without one (an open route) is not limited.
        assert_eq!(limits.client(None, Some(remote)), None);
        let c = limits.client(Some(&Arc::from("web")), None).unwrap();
        for _ in 0..5 {
            assert_eq!(limits.check_client(&c), Ok(()));
        }
        let refused = limits.check_client(&c).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Key);
        assert_eq!(refused.retry_after, Duration::from_millis(500));
    }

    #[test]
    fn a_burst_of_zero_is_refused_while_its_rate_is_on() {
        use crate::config::Overrides;
        use std::collections::HashMap;
        let load = |pairs: &[(&str, &str)]| {
            let env: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Config::load(None, &env, &Overrides::default())
        };
        let e = load(&[("SURGE_RATE_LIMIT_CUSTOMER_BURST", "0")]).unwrap_err();
        assert!(e.to_string().contains("rate_limit_customer_burst"), "{e}");
        let e = load(&[("SURGE_RATE_LIMIT_KEY_BURST", "0")]).unwrap_err();
        assert!(e.to_string().contains("rate_limit_key_burst"), "{e}");
        // Off: its burst does not matter.
        load(&[
            ("SURGE_RATE_LIMIT_CUSTOMER_PER_SEC", "0"),
            ("SURGE_RATE_LIMIT_CUSTOMER_BURST", "0"),
        ])
        .unwrap();
        load(&[("SURGE_RATE_LIMIT_CUSTOMER_BURST", "1")]).unwrap();
        assert!(load(&[("SURGE_RATE_LIMIT_TRACKED_MAX", "0")]).is_err());
        assert!(load(&[("SURGE_RATE_LIMIT_SWEEP_MS", "0")]).is_err());
        load(&[
            ("SURGE_RATE_LIMIT_TRACKED_MAX", "1"),
            ("SURGE_RATE_LIMIT_SWEEP_MS", "1"),
        ])
        .unwrap();
    }

    #[test]
    fn a_rate_of_zero_is_off() {
        let limits = RateLimits::with_clock(
            &config(|c| {
                c.rate_limit_customer_per_sec = 0;
                c.rate_limit_key_per_sec = 0;
            }),
            FakeRelativeClock::default(),
        );
        let c = Client::Key(Arc::from("k"));
        for _ in 0..1_000 {
            assert_eq!(limits.check_customer("bot"), Ok(()));
            assert_eq!(limits.check_client(&c), Ok(()));
        }
        assert_eq!(limits.tracked(), (0, 0));
    }

    #[test]
    fn the_table_is_bounded_and_refilled_buckets_are_swept() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(
            &config(|c| {
                c.rate_limit_tracked_max = 4;
                c.rate_limit_sweep_ms = 10_000;
            }),
            clock.clone(),
        );
        for i in 0..4 {
            limits.check_customer(&format!("c{i}")).unwrap();
        }
        assert_eq!(limits.tracked().1, 4);
        // At the bound: a fifth customer is let through, not tracked.
        for _ in 0..10 {
            assert_eq!(limits.check_customer("c4"), Ok(()));
        }
        assert_eq!(limits.tracked().1, 4);
        // Once their buckets refill and a sweep is due, they are dropped.
        clock.advance(Duration::from_secs(10));
        assert_eq!(limits.check_customer("c5"), Ok(()));
        assert_eq!(limits.tracked().1, 1);
        // c5 is tracked again, so limited again.
        for _ in 0..2 {
            limits.check_customer("c5").unwrap();
        }
        assert!(limits.check_customer("c5").is_err());
    }
}
