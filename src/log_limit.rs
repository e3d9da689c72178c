//! Log lines that clients cause, rate-limited by kind, so hostile input
//! cannot flood the log: a token bucket per [`Kind`] of at most
//! `log_client_errors_per_s` lines a second (and as many at once); a line
//! written after some were dropped says how many (`suppressed`).
//!
//! Time is an input ([`LogLimit::admit`] takes `now`), so the buckets are
//! tested without waiting; the process-wide instance ([`admit`]) reads the
//! clock.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// What a client did wrong, one bucket each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request the HTTP parser refused before it reached the app
    /// (malformed head, bad chunked encoding, a connection dropped
    /// mid-request): actix-http's own lines, written at warn.
    Malformed,
    /// A request Surge refused before any handler (media type, encoding,
    /// host, origin): written at debug.
    Refused,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Malformed, Kind::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Malformed => "malformed",
            Kind::Refused => "refused",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Malformed => 0,
            Kind::Refused => 1,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// Lines that may be written now, in millionths of a line.
    tokens_micro: u64,
    last: Instant,
    suppressed: u64,
}

/// Token buckets of log lines, one per [`Kind`].
#[derive(Debug)]
pub struct LogLimit {
    per_s: u64,
    buckets: [Mutex<Bucket>; 2],
}

const MICRO: u64 = 1_000_000;

impl LogLimit {
    /// At most `per_s` lines a second of each kind, `per_s` at once
    /// (0 = none at all).
    pub fn new(per_s: u32, now: Instant) -> Self {
        let per_s = u64::from(per_s);
        let bucket = || {
            Mutex::new(Bucket {
                tokens_micro: per_s * MICRO,
                last: now,
                suppressed: 0,
            })
        };
        Self {
            per_s,
            buckets: [bucket(), bucket()],
        }
    }

    /// Whether a line of `kind` may be written at `now`: `Some(n)` with the
    /// lines of that kind dropped since the last one written, or `None`
    /// (dropped, and counted).
    pub fn admit(&self, kind: Kind, now: Instant) -> Option<u64> {
        let Ok(mut b) = self.buckets[kind.index()].lock() else {
            return None;
        };
        let cap = self.per_s * MICRO;
        let elapsed_us = now.saturating_duration_since(b.last).as_micros();
        let refill =
            u64::try_from(elapsed_us.saturating_mul(u128::from(self.per_s))).unwrap_or(u64::MAX);
        b.tokens_micro = b.tokens_micro.saturating_add(refill).min(cap);
        b.last = now.max(b.last);
        if b.tokens_micro >= MICRO {
            b.tokens_micro -= MICRO;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed += 1;
            None
        }
    }
}

static GLOBAL: OnceLock<LogLimit> = OnceLock::new();

/// Sets the process-wide limit; the first call wins (later ones, e.g. a
/// second server in one test process, keep it).
pub fn init(per_s: u32) {
    let _ = GLOBAL.set(LogLimit::new(per_s, Instant::now()));
}

/// [`LogLimit::admit`] on the process-wide buckets (10 lines a second per
/// kind if [`init`] was never called).
pub fn admit(kind: Kind) -> Option<u64> {
    GLOBAL
        .get_or_init(|| LogLimit::new(10, Instant::now()))
        .admit(kind, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn at_most_the_limit_then_suppressed_then_counted() {
        let t0 = Instant::now();
        let l = LogLimit::new(5, t0);
        for _ in 0..5 {
            assert_eq!(l.admit(Kind::Malformed, t0), Some(0));
        }
        // One past the limit is dropped, and so are the next ones.
        assert_eq!(l.admit(Kind::Malformed, t0), None);
        assert_eq!(l.admit(Kind::Malformed, t0), None);
        // The other kind has its own bucket.
        assert_eq!(l.admit(Kind::Refused, t0), Some(0));
        // A fifth of a second later one line is due, and says how many
        // were dropped before it.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(l.admit(Kind::Malformed, t1), Some(2));
        assert_eq!(l.admit(Kind::Malformed, t1), None);
        // A long quiet spell refills to the limit, never past it.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(l.admit(Kind::Malformed, t2).is_some());
        }
        assert_eq!(l.admit(Kind::Malformed, t2), None);
    }

    #[test]
    fn zero_writes_nothing() {
        let t0 = Instant::now();
        let l = LogLimit::new(0, t0);
        assert_eq!(l.admit(Kind::Refused, t0), None);
        assert_eq!(l.admit(Kind::Refused, t0 + Duration::from_secs(9)), None);
    }
}
