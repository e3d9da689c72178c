//! The HTTP side of [`crate::ratelimit`]: the per-client check every
//! request passes after the auth guard, the per-customer check the
//! reservation and order handlers make once they know the customer, and
//! the 429 they answer: `rate_limited` with `Retry-After` (whole seconds,
//! rounded up) and the limit that refused it.

use super::auth::KeyName;
use super::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::ratelimit::{Limited, RateLimits};
use actix_web::dev::ServiceRequest;
use actix_web::{web, HttpMessage, HttpRequest};

/// The limits, as app data.
pub type Limits = web::Data<RateLimits>;

/// `rate_limited`, counted in `/metrics`.
pub fn refusal(limited: Limited, metrics: &Metrics) -> ApiError {
    metrics.rate_limit_refused(limited.kind);
    let s = limited.retry_after_s();
    ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "rate limit per {} reached: retry in {s} s",
            limited.kind.as_str().replace('_', " ")
        ),
    )
    .with("limit_by", limited.kind.as_str())
    .with("retry_after_s", s)
}

/// One token of the request's client (its API key, or its remote address
/// when no keys are configured); loopback clients without a key pass.
pub fn check_client(
    limits: &RateLimits,
    metrics: &Metrics,
    req: &ServiceRequest,
) -> Result<(), ApiError> {
    let key = req.extensions().get::<KeyName>().map(|k| k.0.clone());
    let peer = req.peer_addr().map(|a| a.ip());
    match limits.client(key.as_ref(), peer) {
        Some(client) => limits
            .check_client(&client)
            .map_err(|l| refusal(l, metrics)),
        None => Ok(()),
    }
}

/// One token of `customer`'s bucket (a server without limits in its app
/// data passes).
pub fn check_customer(
    req: &HttpRequest,
    metrics: &Metrics,
    customer: &str,
) -> Result<(), ApiError> {
    match req.app_data::<Limits>() {
        Some(limits) => limits
            .check_customer(customer)
            .map_err(|l| refusal(l, metrics)),
        None => Ok(()),
    }
}
