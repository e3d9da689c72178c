//! Slow bodies: every request body is read through a deadline. The whole
//! body must arrive within `http_body_timeout_ms` of the head, and once
//! `http_body_rate_grace_ms` has passed its average rate must stay at or
//! above `http_body_rate_min_bytes_per_sec`. A body cut off ends the read
//! with an error (so whatever extractor waits on it returns), and the
//! response becomes 408 `body_timeout` with `Connection: close`.
//!
//! This bounds what the head timeout does not: a short `Content-Length`
//! body, a chunked body that never ends, and a non-GET request with
//! `Upgrade: websocket`, whose body actix-http reads until the client
//! closes. A WebSocket handshake that succeeds (101) disarms the deadline:
//! the feed's frames arrive through the same payload for as long as the
//! connection lives.

use crate::api::error::{ApiError, ErrorCode};
use crate::config::Config;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The body limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub timeout: Duration,
    pub rate_min_bytes_per_sec: u64,
    pub grace: Duration,
}

impl BodyLimits {
    pub fn new(config: &Config) -> Self {
        Self {
            timeout: Duration::from_millis(config.http_body_timeout_ms),
            rate_min_bytes_per_sec: config.http_body_rate_min_bytes_per_sec,
            grace: Duration::from_millis(config.http_body_rate_grace_ms),
        }
    }
}

/// The request's body, and what its reader saw, shared with the response
/// side. The body is kept alive until the response is written: actix-http
/// closes a connection whose body is unread and still referenced, but
/// drains one whose reader is gone, and a chunked body that never ends
/// would be drained forever.
pub struct Watch {
    payload: RefCell<Payload>,
    cut: Cell<Option<&'static str>>,
    disarmed: Cell<bool>,
    /// The body was read to its end.
    eof: Cell<bool>,
}

/// Puts the request's body (if it has one) behind a deadline.
pub fn watch_body(req: &mut ServiceRequest, limits: BodyLimits) -> Option<Rc<Watch>> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return None;
    }
    let watch = Rc::new(Watch {
        payload: RefCell::new(payload),
        cut: Cell::new(None),
        disarmed: Cell::new(false),
        eof: Cell::new(false),
    });
    let start = Instant::now();
    let deadline = Deadline {
        start,
        limits,
        received: 0,
        sleep: Box::pin(tokio::time::sleep_until(start + limits.timeout)),
        watch: watch.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(deadline),
    });
    Some(watch)
}

/// Turns the response to a request whose body was cut off into 408
/// `body_timeout`, closing the connection; a 101 disarms the deadline.
pub fn finish(
    watch: Option<Rc<Watch>>,
    res: Result<ServiceResponse, actix_web::Error>,
) -> Result<ServiceResponse, actix_web::Error> {
    let Some(watch) = watch else { return res };
    let res = res?;
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        watch.disarmed.set(true);
        return Ok(res);
    }
    let Some(why) = watch.cut.get() else {
        if watch.eof.get() {
            return Ok(res);
        }
        return Ok(res.map_body(|_, body| hold(body, watch)));
    };
    tracing::debug!(why, "request body cut off");
    let (req, _) = res.into_parts();
    let mut refused = ApiError::new(ErrorCode::BodyTimeout, why).error_response();
    refused
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(ServiceResponse::new(req, refused).map_body(|_, body| hold(body, watch)))
}

/// `body`, keeping the request's unread body referenced until the
/// response's last byte is written, so actix-http closes the connection
/// instead of draining what is left of the request (an empty body is sent
/// at once and keeps nothing).
fn hold(body: BoxBody, watch: Rc<Watch>) -> BoxBody {
    if matches!(body.size(), BodySize::None) {
        return body;
    }
    BoxBody::new(Holding {
        body,
        _watch: watch,
    })
}

struct Holding {
    body: BoxBody,
    _watch: Rc<Watch>,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The request payload, cut off at the deadline or below the rate.
struct Deadline {
    start: Instant,
    limits: BodyLimits,
    received: u64,
    sleep: Pin<Box<Sleep>>,
    watch: Rc<Watch>,
}

impl Deadline {
    /// When the body is cut off unless more of it arrives: at the
    /// deadline, or once the average rate since the head would fall below
    /// the minimum (not before the grace period).
    fn cut_at(&self) -> (Instant, &'static str) {
        let deadline = self.start + self.limits.timeout;
        let rate = self.limits.rate_min_bytes_per_sec;
        if rate == 0 {
            return (
                deadline,
                "the body did not arrive within http_body_timeout_ms",
            );
        }
        // received / elapsed >= rate  <=>  elapsed <= received / rate.
        let ok_for_ms = self.received.saturating_mul(1000) / rate;
        let slow_at = self.start
            + self
                .limits
                .grace
                .max(Duration::from_millis(ok_for_ms.saturating_add(1)));
        if slow_at < deadline {
            (
                slow_at,
                "the body came slower than http_body_rate_min_bytes_per_sec",
            )
        } else {
            (
                deadline,
                "the body did not arrive within http_body_timeout_ms",
            )
        }
    }

    fn cut(&mut self, why: &'static str) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.watch.cut.set(Some(why));
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            why,
        )))))
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let watch = this.watch.clone();
        let mut inner = watch.payload.borrow_mut();
        if watch.disarmed.get() {
            return Pin::new(&mut *inner).poll_next(cx);
        }
        if let Some(why) = this.watch.cut.get() {
            return this.cut(why);
        }
        let (at, why) = this.cut_at();
        if Instant::now() >= at {
            return this.cut(why);
        }
        match Pin::new(&mut *inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.received = this.received.saturating_add(bytes.len() as u64);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Pending => {
                this.sleep.as_mut().reset(at);
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.cut(why),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(None) => {
                watch.eof.set(true);
                Poll::Ready(None)
            }
            err => err,
        }
    }
}
