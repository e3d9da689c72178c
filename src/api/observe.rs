//! What every request goes through on its way in and out: a request id
//! (the client's bounded `X-Request-Id`, or a new one) in its span and its
//! response, and its count and latency by route pattern and status.
//!
//! The reservation routes are found by a string compare and counted in
//! stats made at start; other routes look their pattern up in the route
//! table once answered. Neither takes a lock on the hot path.

use super::error::ApiError;
use crate::metrics::{Metrics, HOT_ROUTES};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `X-Request-Id` taken from a client, in bytes; a longer or
/// otherwise invalid one is replaced by a new id.
pub const REQUEST_ID_LEN_MAX: usize = 128;

/// Makes request ids: a random prefix per run and a counter.
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            prefix: h.finish() as u32,
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// The client's id when it is 1 to `REQUEST_ID_LEN_MAX` visible ASCII
    /// characters, else a new one.
    fn for_request(&self, req: &ServiceRequest) -> HeaderValue {
        if let Some(v) = req.headers().get(&REQUEST_ID) {
            let b = v.as_bytes();
            if !b.is_empty()
                && b.len() <= REQUEST_ID_LEN_MAX
                && b.iter().all(|c| (0x21..0x7f).contains(c))
            {
                return v.clone();
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-{n:x}", self.prefix);
        HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"))
    }
}

/// One request being served.
pub struct Observed {
    started: Instant,
    id: HeaderValue,
    /// Its index in `HOT_ROUTES`, if it is one.
    hot: Option<usize>,
}

/// Starts observing `req`: its id, and the span it runs in.
pub fn begin(ids: &RequestIds, req: &ServiceRequest) -> (Observed, tracing::Span) {
    let id = ids.for_request(req);
    let hot = HOT_ROUTES
        .iter()
        .position(|(method, path)| *path == req.path() && *method == req.method().as_str());
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    (Observed { started, id, hot }, span)
}

/// Counts the answer (its `http_*` series only with `count_http`, i.e.
/// `metrics_http` on; reservations accepted and refused always) and gives
/// it the request id.
pub fn finish<B>(obs: Observed, metrics: &Metrics, count_http: bool, res: &mut ServiceResponse<B>) {
    let status = res.status();
    count(&obs, metrics, count_http, res);
    tracing::debug!(status = status.as_u16(), "done");
    res.headers_mut().insert(REQUEST_ID, obs.id);
}

fn count<B>(obs: &Observed, metrics: &Metrics, count_http: bool, res: &ServiceResponse<B>) {
    let status = res.status();
    match obs.hot.and_then(|i| metrics.http.hot(i).map(|s| (i, s))) {
        Some((i, stats)) => {
            if count_http {
                stats.record(status.as_u16(), obs.started.elapsed());
            }
            let code = res
                .response()
                .error()
                .and_then(|e| e.as_error::<ApiError>())
                .map(|e| e.code);
            match (i, code) {
                (_, Some(code)) => metrics.reservation_refused(code),
                // A batch counts its items itself (`reservations.rs`).
                (0, None) if status.is_success() => metrics.reservation_accepted(1),
                _ => {}
            }
        }
        None if count_http => {
            let pattern = res.request().match_pattern();
            metrics
                .http
                .route(
                    method_label(res.request().method()),
                    pattern.as_deref().unwrap_or("unmatched"),
                )
                .record(status.as_u16(), obs.started.elapsed());
        }
        None => {}
    }
}

/// A bounded label for a method.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
