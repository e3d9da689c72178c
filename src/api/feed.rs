//! `GET /v1/feed`: the live feed over a WebSocket (actix-ws).
//!
//! One task per connection pulls from the hub's window with its own cursor
//! (see [`crate::feed`]); nothing the connection does can slow the WAL,
//! the actors or another connection. Protocol (JSON text frames):
//!
//! - client: `{"op":"subscribe","topics":[..],"since"?:seq,"epoch"?:e,"conflate_ms"?:n}`,
//!   `{"op":"unsubscribe","topics":[..]}`; or `?topics=a,b&since=&epoch=&conflate_ms=` at connect.
//! - server: `hello`, `snapshot` (per topic, with the `seq` it reflects),
//!   `event` (strictly increasing `seq`), `subscribed` / `unsubscribed`,
//!   `resync_required`, `error`.

use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::App;
use crate::feed::{FeedMsg, Hub, Read, Subs, Topic};
use crate::wire::{self, FeedStats, ServerMsg};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::IntoParams;

/// Close code for a client too slow to keep up (4000–4999: application).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Messages read from the window per wake-up at most.
const READ_BATCH: usize = 1024;

pub fn routes(r: &mut Routes<'_>) {
    r.get("/feed", connect).get("/feed/stats", stats);
}

/// The feed's counters.
#[utoipa::path(
    get,
    path = "/v1/feed/stats",
    operation_id = "feed_stats",
    tag = "feed",
    responses((status = 200, description = "The feed's counters", body = FeedStats))
)]
pub(super) async fn stats(app: App) -> Result<HttpResponse, ApiError> {
    app.caught_up().await?;
    Ok(HttpResponse::Ok().json(app.feed().stats()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    #[serde(default)]
    topics: Vec<String>,
    since: Option<u64>,
    epoch: Option<u64>,
    conflate_ms: Option<u64>,
}

/// The query string of `GET /v1/feed`: the first subscription.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Query {
    /// Topics to subscribe to at once, comma-separated: `all`, `stock`,
    /// `holds`, `orders`, `sku:<id>`, `warehouse:<id>`, `order:<id>`.
    topics: Option<String>,
    /// Resume after this feed seq (with `epoch`) instead of from snapshots.
    since: Option<u64>,
    /// The epoch `since` belongs to (from `hello`).
    epoch: Option<u64>,
    /// Send at most one update per topic per this many milliseconds.
    conflate_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Inbound {
    Subscribe(Subscribe),
    Unsubscribe { topics: Vec<String> },
}

/// Counts an open connection while alive.
struct Slot(Arc<Hub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The live feed: a WebSocket upgrade (`Connection: Upgrade`, `Upgrade:
/// websocket`). Topics given here are subscribed at once; more can be
/// subscribed with `{"op":"subscribe","topics":[..],"since"?,"epoch"?,"conflate_ms"?}`
/// and dropped with `{"op":"unsubscribe","topics":[..]}`. Every server
/// message is a `ServerMsg` (JSON text frames), tagged by `type`.
#[utoipa::path(
    get,
    path = "/v1/feed",
    operation_id = "feed",
    tag = "feed",
    params(Query),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; messages are `ServerMsg`"),
        (status = 400, description = "`invalid_field` (a bad topic or `conflate_ms`) or `websocket_required` (no upgrade)", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed` (a browser page's `Origin` not in `feed_allowed_origins`) or `forbidden`", body = ErrorBody),
        (status = 503, description = "`too_many_connections`", body = ErrorBody),
    )
)]
pub(super) async fn connect(
    app: App,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<Query>,
) -> Result<HttpResponse, ApiError> {
    super::browser::check_origin(&req, &app.config().feed_allowed_origins)?;
    let q = query.into_inner();
    let first = Subscribe {
        topics: q
            .topics
            .as_deref()
            .map(|t| {
                t.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        since: q.since,
        epoch: q.epoch,
        conflate_ms: q.conflate_ms,
    };
    let c = app.config();
    // Check what can be checked before the upgrade, as a plain HTTP error.
    let topics = parse_topics(&first.topics, c.feed_topics_max)
        .map_err(|e| ApiError::invalid("topics", e))?;
    let allowed = super::auth::feed_topics(&req);
    if let Some(allowed) = &allowed {
        if let Some(t) = topics.iter().find(|t| !allowed.permits(&t.name())) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this key may not subscribe to {}", t.name()),
            ));
        }
    }
    check_conflate(first.conflate_ms, c.feed_conflate_ms_max)
        .map_err(|e| ApiError::invalid("conflate_ms", e))?;
    let hub = app.feed().clone();
    if hub.connections.fetch_add(1, Ordering::AcqRel) >= c.feed_connections_max {
        hub.connections.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::new(
            ErrorCode::TooManyConnections,
            format!(
                "the feed serves at most {} connections",
                c.feed_connections_max
            ),
        ));
    }
    let slot = Slot(hub.clone());
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::new(ErrorCode::WebsocketRequired, e.to_string()))?;
    let stream = stream
        .max_frame_size(c.feed_inbound_bytes_max)
        .aggregate_continuations()
        .max_continuation_size(c.feed_inbound_bytes_max);
    let conn = Conn {
        hub,
        app: app.clone(),
        session,
        limits: Limits {
            topics_max: c.feed_topics_max,
            lag_max: c.feed_client_lag_events_max as u64,
            send_timeout: Duration::from_millis(c.feed_send_timeout_ms),
            ping_every: Duration::from_millis(c.feed_ping_interval_ms),
            idle_timeout: Duration::from_millis(c.feed_idle_timeout_ms),
            conflate_ms_max: c.feed_conflate_ms_max,
        },
        allowed,
        subs: Subs::default(),
        cursor: 0,
        conflate: None,
        narrow: Arc::new(tokio::sync::Notify::new()),
    };
    actix_rt::spawn(async move {
        let _slot = slot;
        conn.run(stream, first).await;
    });
    Ok(response)
}

/// A client's text frame as the connection parses and checks it before
/// acting on it (topics, `conflate_ms`): the fuzz targets' entry.
pub(super) fn check_inbound(
    text: &str,
    topics_max: usize,
    conflate_ms_max: u64,
) -> Result<(), String> {
    match serde_json::from_str::<Inbound>(text).map_err(|e| e.to_string())? {
        Inbound::Subscribe(s) => {
            parse_topics(&s.topics, topics_max)?;
            check_conflate(s.conflate_ms, conflate_ms_max)
        }
        Inbound::Unsubscribe { topics } => {
            for t in topics {
                Topic::parse(&t)?;
            }
            Ok(())
        }
    }
}

/// The query string of `GET /v1/feed` as the handler parses and checks
/// it before the upgrade: the fuzz targets' entry.
pub(super) fn check_query(
    query: &str,
    topics_max: usize,
    conflate_ms_max: u64,
) -> Result<(), ApiError> {
    let q = web::Query::<Query>::from_query(query)
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, e.to_string()))?
        .into_inner();
    let topics: Vec<String> = q
        .topics
        .as_deref()
        .map(|t| {
            t.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    parse_topics(&topics, topics_max).map_err(|e| ApiError::invalid("topics", e))?;
    check_conflate(q.conflate_ms, conflate_ms_max).map_err(|e| ApiError::invalid("conflate_ms", e))
}

fn parse_topics(names: &[String], max: usize) -> Result<Vec<Topic>, String> {
    if names.len() > max {
        return Err(format!("at most {max} topics per connection"));
    }
    names.iter().map(|n| Topic::parse(n)).collect()
}

fn check_conflate(ms: Option<u64>, max: u64) -> Result<(), String> {
    match ms {
        Some(ms) if ms > max => Err(format!("must be from 0 to {max}")),
        _ => Ok(()),
    }
}

struct Limits {
    topics_max: usize,
    lag_max: u64,
    send_timeout: Duration,
    ping_every: Duration,
    idle_timeout: Duration,
    conflate_ms_max: u64,
}

/// Why a connection ends.
enum End {
    /// The client went away or the socket failed: nothing more to send.
    Gone,
    Close(CloseReason),
}

fn close(code: CloseCode, why: &str) -> End {
    End::Close(CloseReason {
        code,
        description: Some(why.to_owned()),
    })
}

struct Conn {
    hub: Arc<Hub>,
    app: App,
    session: Session,
    limits: Limits,
    /// The topic prefixes its API key is limited to (`feed:<prefix>`).
    allowed: Option<super::auth::FeedTopics>,
    /// Topic name → deliver only messages with a seq above this (the seq
    /// its snapshot or resume point reflects).
    subs: Subs,
    /// Next seq to look at in the window.
    cursor: u64,
    conflate: Option<Duration>,
    /// Woken by the hub when one of this connection's narrow topics gets a
    /// message (see `Hub::watch_topic`).
    narrow: Arc<tokio::sync::Notify>,
}

impl Conn {
    /// Whether any subscription is broad (woken by every change).
    fn broad(&self) -> bool {
        self.subs.names().any(|t| !Topic::is_narrow_name(t))
    }

    fn add_sub(&mut self, name: String, after: u64) {
        if Topic::is_narrow_name(&name) {
            self.hub.watch_topic(&name, &self.narrow);
        }
        self.subs.insert(name, after);
    }

    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream, first: Subscribe) {
        let mut head = self.hub.subscribe_head();
        let mut closing = self.hub.closing();
        self.cursor = self.hub.head() + 1;
        let end = self
            .serve(&mut stream, &mut head, &mut closing, first)
            .await;
        if let End::Close(reason) = end {
            let _ =
                tokio::time::timeout(self.limits.send_timeout, self.session.close(Some(reason)))
                    .await;
        }
    }

    async fn serve(
        &mut self,
        stream: &mut actix_ws::AggregatedMessageStream,
        head: &mut tokio::sync::watch::Receiver<u64>,
        closing: &mut tokio::sync::watch::Receiver<bool>,
        first: Subscribe,
    ) -> End {
        let hello = ServerMsg::Hello {
            epoch: self.hub.epoch,
            seq: self.hub.head(),
        };
        if let Err(e) = self.send(wire::to_json(&hello)).await {
            return e;
        }
        let mut backlog_at_start = false;
        if !first.topics.is_empty() || first.since.is_some() {
            match self.subscribe(first).await {
                Ok(more) => backlog_at_start = more,
                Err(e) => return e,
            }
        }
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(self.limits.ping_every);
        ping.tick().await;
        let mut flush = tokio::time::interval(Duration::from_millis(50));
        // Set when the last read stopped at READ_BATCH with more to send:
        // the loop comes back for it after a look at the other branches.
        let mut backlog = backlog_at_start;
        loop {
            if let Some(every) = self.conflate {
                if flush.period() != every {
                    flush = tokio::time::interval(every);
                }
            }
            tokio::select! {
                biased;
                _ = closing.changed() => return close(CloseCode::Away, "server shutting down"),
                msg = stream.recv() => {
                    last_heard = Instant::now();
                    let step = match msg {
                        None => return End::Gone,
                        Some(Err(e)) => return close(CloseCode::Size, &format!("bad frame: {e}")),
                        Some(Ok(m)) => self.inbound(m).await,
                    };
                    match step {
                        Ok(more) => backlog |= more,
                        Err(e) => return e,
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.limits.idle_timeout {
                        return close(CloseCode::Policy, "idle timeout");
                    }
                    if self.session.ping(b"").await.is_err() {
                        return End::Gone;
                    }
                }
                _ = std::future::ready(()), if backlog && self.conflate.is_none() => {
                    match self.deliver().await {
                        Ok(more) => backlog = more,
                        Err(e) => return e,
                    }
                }
                _ = self.narrow.notified(), if self.conflate.is_none() && !self.broad() => {
                    match self.deliver().await {
                        Ok(more) => backlog = more,
                        Err(e) => return e,
                    }
                }
                changed = head.changed(), if self.conflate.is_none() && self.broad() => {
                    if changed.is_err() {
                        return close(CloseCode::Away, "server shutting down");
                    }
                    match self.deliver().await {
                        Ok(more) => backlog = more,
                        Err(e) => return e,
                    }
                }
                _ = flush.tick(), if self.conflate.is_some() => {
                    // Everything up to now, latest row values only.
                    loop {
                        match self.deliver().await {
                            Ok(true) => continue,
                            Ok(false) => break,
                            Err(e) => return e,
                        }
                    }
                }
            }
        }
    }

    /// Sends one frame; a client that does not take it in time is cut off.
    async fn send(&mut self, text: impl Into<bytestring::ByteString>) -> Result<(), End> {
        match tokio::time::timeout(self.limits.send_timeout, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => {
                self.hub.cut_off_slow.fetch_add(1, Ordering::Relaxed);
                // The socket is stuck: a close frame would not get through.
                Err(End::Gone)
            }
        }
    }

    async fn error(&mut self, code: &str, message: String) -> Result<(), End> {
        let e = ServerMsg::Error {
            code,
            message: &message,
        };
        self.send(wire::to_json(&e)).await
    }

    /// Handles a client frame; true when a subscription left messages to send.
    async fn inbound(&mut self, msg: AggregatedMessage) -> Result<bool, End> {
        match msg {
            AggregatedMessage::Text(text) => match serde_json::from_str::<Inbound>(&text) {
                Ok(Inbound::Subscribe(s)) => self.subscribe(s).await,
                Ok(Inbound::Unsubscribe { topics }) => {
                    let mut gone = Vec::new();
                    for t in topics {
                        match Topic::parse(&t) {
                            Ok(t) => {
                                let name = t.name();
                                if self.subs.remove(&name) {
                                    gone.push(name);
                                }
                            }
                            Err(e) => return self.error("invalid_topic", e).await.map(|_| false),
                        }
                    }
                    let ack = ServerMsg::Unsubscribed { topics: &gone };
                    self.send(wire::to_json(&ack)).await.map(|_| false)
                }
                Err(e) => self
                    .error("malformed_message", e.to_string())
                    .await
                    .map(|_| false),
            },
            AggregatedMessage::Binary(_) => self
                .error("malformed_message", "send JSON text frames".into())
                .await
                .map(|_| false),
            AggregatedMessage::Ping(p) => self
                .session
                .pong(&p)
                .await
                .map(|_| false)
                .map_err(|_| End::Gone),
            AggregatedMessage::Pong(_) => Ok(false),
            AggregatedMessage::Close(_) => Err(End::Gone),
        }
    }

    /// Subscribes; true when messages are left to send.
    async fn subscribe(&mut self, s: Subscribe) -> Result<bool, End> {
        let topics = match parse_topics(&s.topics, self.limits.topics_max) {
            Ok(mut t) => {
                t.dedup_by_key(|t| t.name());
                t
            }
            Err(e) => return self.error("invalid_topic", e).await.map(|_| false),
        };
        if let Some(allowed) = &self.allowed {
            if let Some(t) = topics.iter().find(|t| !allowed.permits(&t.name())) {
                let message = format!("this key may not subscribe to {}", t.name());
                return self.error("forbidden", message).await.map(|_| false);
            }
        }
        let new: Vec<&Topic> = topics
            .iter()
            .filter(|t| !self.subs.contains(&t.name()))
            .collect();
        if self.subs.len() + new.len() > self.limits.topics_max {
            let max = self.limits.topics_max;
            return self
                .error(
                    "too_many_topics",
                    format!("at most {max} topics per connection"),
                )
                .await
                .map(|_| false);
        }
        if let Err(e) = check_conflate(s.conflate_ms, self.limits.conflate_ms_max) {
            return self
                .error("invalid_field", format!("conflate_ms: {e}"))
                .await
                .map(|_| false);
        }
        if let Some(ms) = s.conflate_ms {
            self.conflate = (ms > 0).then(|| Duration::from_millis(ms));
        }
        let head = self.hub.head();
        let resume = match s.since {
            None => None,
            Some(since) if s.epoch.is_some_and(|e| e != self.hub.epoch) => Some(Err((
                since,
                format!("epoch {} is not this server's run", s.epoch.unwrap_or(0)),
            ))),
            Some(since) if since > head => {
                Some(Err((since, format!("seq {since} is ahead of {head}"))))
            }
            Some(since) => match self.hub.read(since + 1, 0, |_| false) {
                Read::Gone { oldest } => Some(Err((
                    since,
                    format!("seq {since} is no longer in the window (oldest {oldest})"),
                ))),
                Read::Msgs(..) => Some(Ok(since)),
            },
        };
        let topics: Vec<Topic> = topics
            .into_iter()
            .filter(|t| !self.subs.contains(&t.name()))
            .collect();
        match resume {
            Some(Ok(since)) => {
                for t in &topics {
                    self.add_sub(t.name(), since);
                }
                self.cursor = self.cursor.min(since + 1);
            }
            Some(Err((since, reason))) => {
                self.hub.resyncs.fetch_add(1, Ordering::Relaxed);
                let msg = ServerMsg::ResyncRequired {
                    since,
                    reason: &reason,
                };
                self.send(wire::to_json(&msg)).await?;
                self.snapshots(&topics).await?;
            }
            None => self.snapshots(&topics).await?,
        }
        let names: Vec<String> = topics.iter().map(Topic::name).collect();
        let ack = ServerMsg::Subscribed {
            topics: &names,
            epoch: self.hub.epoch,
        };
        self.send(wire::to_json(&ack)).await?;
        self.deliver().await
    }

    /// Sends a snapshot of each topic; its messages follow from its seq.
    async fn snapshots(&mut self, topics: &[Topic]) -> Result<(), End> {
        // Reflecting every write acknowledged before the subscription. (Once
        // storage has failed nothing more is applied: the snapshot is the
        // last durable state, and the server answers 503 elsewhere.)
        let _ = self.app.caught_up().await;
        for t in topics {
            // Rendered outside the hub's lock (see `Hub::snapshot_with`).
            let (seq, msg) = self.hub.snapshot_msg(self.app.read_model(), t);
            self.add_sub(t.name(), seq);
            self.send(msg).await?;
        }
        Ok(())
    }

    fn wants(&self, m: &FeedMsg) -> bool {
        self.subs.wants(m)
    }

    /// Sends the next messages the window holds for this connection, at
    /// most READ_BATCH; true when more are waiting.
    async fn deliver(&mut self) -> Result<bool, End> {
        let head = self.hub.head();
        if self.subs.is_empty() {
            self.cursor = head + 1;
            return Ok(false);
        }
        if self.cursor > head {
            return Ok(false);
        }
        let broad = self.broad();
        if !broad && self.hub.last_on(self.subs.names()) < self.cursor {
            // Nothing on this connection's topics since its cursor: skip
            // ahead without reading (a quiet product page is not slow).
            self.cursor = head + 1;
            return Ok(false);
        }
        let behind = head + 1 - self.cursor;
        // Narrow topics are bounded by the window; broad ones by lag_max.
        let read = if broad && behind > self.limits.lag_max {
            None
        } else {
            match self.hub.read(self.cursor, READ_BATCH, |m| self.wants(m)) {
                Read::Gone { .. } => None,
                Read::Msgs(msgs, next) => Some((msgs, next)),
            }
        };
        let Some((msgs, next)) = read else {
            self.fell_behind().await?;
            return Ok(false);
        };
        self.cursor = next;
        let msgs = if self.conflate.is_some() {
            conflated(msgs)
        } else {
            msgs
        };
        for m in msgs {
            self.send(m.json()).await?;
        }
        Ok(self.cursor <= self.hub.head())
    }

    /// Too far behind: a conflating client skips to the latest values
    /// (fresh snapshots); any other is cut off.
    async fn fell_behind(&mut self) -> Result<(), End> {
        if self.conflate.is_none() {
            self.hub.cut_off_slow.fetch_add(1, Ordering::Relaxed);
            return Err(End::Close(CloseReason {
                code: CloseCode::Other(CLOSE_TOO_SLOW),
                description: Some("too slow: fell behind the feed".into()),
            }));
        }
        self.hub.resyncs.fetch_add(1, Ordering::Relaxed);
        let topics: Vec<Topic> = self
            .subs
            .names()
            .filter_map(|t| Topic::parse(t).ok())
            .collect();
        let msg = ServerMsg::ResyncRequired {
            since: self.cursor.saturating_sub(1),
            reason: "fell behind the feed",
        };
        self.send(wire::to_json(&msg)).await?;
        self.cursor = self.hub.head() + 1;
        self.snapshots(&topics).await
    }
}

/// Keeps only the latest message of each stock row, in seq order.
fn conflated(msgs: Vec<Arc<FeedMsg>>) -> Vec<Arc<FeedMsg>> {
    let mut latest: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for m in &msgs {
        if let Some((sku, wh)) = &m.row {
            latest.insert((sku.as_str(), wh.as_str()), m.seq);
        }
    }
    let keep: Vec<bool> = msgs
        .iter()
        .map(|m| match &m.row {
            Some((sku, wh)) => latest.get(&(sku.as_str(), wh.as_str())) == Some(&m.seq),
            None => true,
        })
        .collect();
    msgs.into_iter()
        .zip(keep)
        .filter_map(|(m, k)| k.then_some(m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_messages_parse_and_unknown_fields_are_refused() {
        let s: Inbound =
            serde_json::from_str(r#"{"op":"subscribe","topics":["stock"],"since":3}"#).unwrap();
        assert!(matches!(
            s,
            Inbound::Subscribe(Subscribe { since: Some(3), .. })
        ));
        assert!(serde_json::from_str::<Inbound>(r#"{"op":"subscribe","bogus":1}"#).is_err());
        assert!(
            serde_json::from_str::<Inbound>(r#"{"op":"unsubscribe","topics":[],"x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Inbound>(r#"{"op":"dance"}"#).is_err());
    }
}
