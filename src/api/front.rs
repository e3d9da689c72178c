//! The front door: everything a request passes before its handler, in one
//! layer with one future, in this order:
//!
//! 1. *observe* (`observe.rs`): an id, a span, and once answered its count
//!    and latency; every request, refused or not;
//! 2. *limits* (`limits.rs`, `slow.rs`): connections per client, header
//!    count and size; the body is read behind a deadline (408
//!    `body_timeout`), and a refused request's body is watched too, so its
//!    response keeps the unread body referenced and actix-http closes the
//!    connection instead of draining a chunked body that never ends;
//! 3. *guard* (`auth.rs`): protected mode, API keys and scopes;
//! 4. *rate limit* (`ratelimit.rs`) of the request's key or address;
//! 5. *browser* (`browser.rs`): Host, media type, encoding and size; the
//!    framework's own errors from the handler are made JSON.
//!
//! The first refusal answers; nothing after it runs.

use super::auth::{Guard, Refusal};
use super::browser::{self, Browser};
use super::error::ApiError;
use super::limits::{self, HeadLimits};
use super::observe::{self, RequestIds};
use super::slow::{self, BodyLimits};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// One worker's front door.
#[derive(Clone)]
pub struct Front {
    pub ids: Arc<RequestIds>,
    pub metrics: Arc<Metrics>,
    /// Whether requests are counted (`metrics_http`).
    pub count: bool,
    pub head: HeadLimits,
    pub body: BodyLimits,
    pub guard: Guard,
    pub rates: web::Data<RateLimits>,
    pub browser: Browser,
}

/// Why a request is answered before its handler.
enum Refused {
    Response(Box<HttpResponse>),
    Api(ApiError),
    Guard(Refusal),
}

impl Front {
    /// Passes `req` through every check to `srv`, or answers it.
    pub fn call<S>(
        &self,
        mut req: ServiceRequest,
        srv: &S,
    ) -> impl Future<Output = Result<ServiceResponse, actix_web::Error>> + 'static
    where
        S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
        S::Future: 'static,
    {
        let (observed, span) = observe::begin(&self.ids, &req);
        let (metrics, count) = (self.metrics.clone(), self.count);
        let watch = slow::watch_body(&mut req, self.body);
        let call = match span.in_scope(|| self.check(&req)) {
            Ok(()) => Ok(span.in_scope(|| srv.call(req))),
            Err(Refused::Response(r)) => Err(req.into_response(*r)),
            Err(Refused::Api(e)) => Err(req.error_response(e)),
            Err(Refused::Guard(e)) => Err(req.error_response(e)),
        };
        async move {
            let res = match call {
                Ok(fut) => fut
                    .await
                    .map(browser::framework_error)
                    .map_err(browser::framework_err),
                Err(refused) => Ok(refused),
            };
            let mut res = slow::finish(watch, res);
            if let Ok(r) = &mut res {
                observe::finish(observed, &metrics, count, r);
            }
            res
        }
        .instrument(span)
    }

    fn check(&self, req: &ServiceRequest) -> Result<(), Refused> {
        if let Some(r) = limits::refusal(req, self.head) {
            return Err(Refused::Response(Box::new(r)));
        }
        self.guard.check(req).map_err(Refused::Guard)?;
        super::ratelimit::check_client(&self.rates, &self.metrics, req).map_err(Refused::Api)?;
        self.browser.check(req).map_err(Refused::Api)
    }
}
