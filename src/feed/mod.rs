//! The live feed: every durable change, as sequenced messages on topics.
//!
//! The WAL writer calls [`Hub::apply_durable`] for each event once it is
//! synced; the hub applies it to the projection and turns it into feed
//! messages (stock rows, holds, orders, sold out / back in stock), each with
//! the next global `seq`, in one step under `cut`. So a topic snapshot taken
//! under `cut` reflects exactly the messages up to its `seq`.
//!
//! Messages go into one bounded window (a ring of the last
//! `feed_window_events` messages), never into per-client queues: the writer
//! does O(1) work per message whatever the number of clients. Each
//! connection pulls from the window at its own pace with its own cursor; a
//! cursor that falls out of the window (or too far behind) is the client's
//! problem alone — it is cut off, or, if conflated, skipped to the latest
//! values. Resuming with `since` is a read of the window from that seq.

#[cfg(test)]
mod tests;
pub mod topic;

use crate::api::dto::{OrderView, ReservationView, StockView, WarehouseView};
use crate::core::{Event, OrderId, ReleaseReason, SkuId, WarehouseId};
use crate::projection::Projection;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
pub use topic::Topic;

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub window_events: usize,
    pub snapshot_items_max: usize,
}

/// One feed message, rendered once for every client.
#[derive(Debug)]
pub struct FeedMsg {
    pub seq: u64,
    pub topics: Vec<String>,
    /// `topic_key` of each topic.
    pub keys: Vec<u64>,
    /// For conflation: the stock row this message is the latest value of.
    pub row: Option<(SkuId, WarehouseId)>,
    /// Shared by every client it goes to (a clone is a reference count).
    pub json: bytestring::ByteString,
}

/// A topic name's key: FNV-1a, so matching a message against a
/// connection's topics compares integers (a hit is confirmed by name).
pub fn topic_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A connection's subscriptions: topic name → deliver only messages with a
/// seq above `after` (what its snapshot or resume point reflects). A
/// handful of entries, checked against every message: a plain list of keys.
#[derive(Debug, Default)]
pub struct Subs {
    list: Vec<(u64, String, u64)>,
}

impl Subs {
    pub fn contains(&self, name: &str) -> bool {
        self.list.iter().any(|(_, n, _)| n == name)
    }
    pub fn insert(&mut self, name: String, after: u64) {
        match self.list.iter_mut().find(|(_, n, _)| *n == name) {
            Some(e) => e.2 = after,
            None => self.list.push((topic_key(&name), name, after)),
        }
    }
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|(_, n, _)| n != name);
        self.list.len() < before
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(_, n, _)| n.as_str())
    }
    /// Whether `m` goes to this connection.
    pub fn wants(&self, m: &FeedMsg) -> bool {
        self.list.iter().any(|(key, name, after)| {
            m.seq > *after
                && (name == "all"
                    || m.keys
                        .iter()
                        .zip(&m.topics)
                        .any(|(k, t)| k == key && t == name))
        })
    }
}

/// A message before it has a seq: topics, conflation row, body.
type Rendered = (Vec<String>, Option<(SkuId, WarehouseId)>, Value);

/// What a read of the window found.
pub enum Read {
    /// Messages from the cursor on (filtered), and the next cursor.
    Msgs(Vec<Arc<FeedMsg>>, u64),
    /// The cursor is older than the window's oldest message.
    Gone { oldest: u64 },
}

#[derive(Debug, Default, serde::Serialize)]
pub struct FeedStats {
    pub epoch: u64,
    pub seq: u64,
    pub window: usize,
    pub window_max: usize,
    pub connections: usize,
    pub cut_off_slow: u64,
    pub resyncs: u64,
}

struct Watched {
    last: u64,
    watchers: Vec<std::sync::Weak<tokio::sync::Notify>>,
}

pub struct Hub {
    config: FeedConfig,
    /// Identifies this run of the server: seqs restart with it, so a
    /// client resuming with another epoch must resync.
    pub epoch: u64,
    cut: RwLock<()>,
    window: RwLock<VecDeque<Arc<FeedMsg>>>,
    head: AtomicU64,
    notify: tokio::sync::watch::Sender<u64>,
    closing: tokio::sync::watch::Sender<bool>,
    /// Connections that follow only narrow topics (one SKU, warehouse or
    /// order), by topic: woken only when their topics get a message, so a
    /// thousand product pages do not all wake for every change. Broad
    /// topics (`stock`, `orders`, `holds`, `all`) wake through `notify`.
    /// Per watched topic: the seq of its newest message and its watchers.
    narrow: Mutex<HashMap<String, Watched>>,
    /// Whether each SKU had stock available after its last change; filled
    /// as SKUs change (from the state just before), so a start with a
    /// million SKUs does not pay for it.
    in_stock: Mutex<HashMap<SkuId, bool>>,
    pub connections: AtomicUsize,
    registrations: AtomicU64,
    pub cut_off_slow: AtomicU64,
    pub resyncs: AtomicU64,
}

/// Microseconds since the Unix epoch: when a message became durable, for
/// clients to measure delivery lag (not used for any decision).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Hub {
    pub fn new(config: FeedConfig) -> Hub {
        Hub {
            window: RwLock::new(VecDeque::with_capacity(config.window_events.min(1 << 16))),
            config,
            epoch: now_us(),
            cut: RwLock::new(()),
            head: AtomicU64::new(0),
            notify: tokio::sync::watch::channel(0).0,
            closing: tokio::sync::watch::channel(false).0,
            in_stock: Mutex::new(HashMap::new()),
            narrow: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            registrations: AtomicU64::new(0),
            cut_off_slow: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }

    /// The seq of the last message published.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Wakes `notify` whenever `topic` (a narrow one) gets a message.
    pub fn watch_topic(&self, topic: &str, notify: &Arc<tokio::sync::Notify>) {
        // Not while a publish is half done: the head read below must not
        // miss a message the publish has not recorded for this topic.
        let _cut = self.cut.read().unwrap_or_else(|p| p.into_inner());
        let mut narrow = self.narrow.lock().unwrap_or_else(|p| p.into_inner());
        // Now and then, forget topics whose watchers are all gone (a quiet
        // topic is otherwise only cleaned when it gets a message).
        let n = self.registrations.fetch_add(1, Ordering::Relaxed);
        if n % 1024 == 1023 {
            narrow.retain(|_, w| {
                w.watchers.retain(|x| x.strong_count() > 0);
                !w.watchers.is_empty()
            });
        }
        // A topic nobody watched has no record of its newest message:
        // assume one as new as the head (the reader then just looks).
        let head = self.head();
        let entry = narrow.entry(topic.to_owned()).or_insert_with(|| Watched {
            last: head,
            watchers: Vec::new(),
        });
        let mine = Arc::downgrade(notify);
        entry.watchers.retain(|w| w.strong_count() > 0);
        if !entry.watchers.iter().any(|w| w.ptr_eq(&mine)) {
            entry.watchers.push(mine);
        }
    }

    /// The seq of the newest message on any of these watched narrow topics
    /// (0 if none since they were first watched).
    pub fn last_on<'a>(&self, topics: impl Iterator<Item = &'a str>) -> u64 {
        let narrow = self.narrow.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .filter_map(|t| narrow.get(t).map(|w| w.last))
            .max()
            .unwrap_or(0)
    }

    pub fn subscribe_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// Resolves once `close_all` is called.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Asks every connection to close with a close frame (shutdown).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    pub fn stats(&self) -> FeedStats {
        FeedStats {
            epoch: self.epoch,
            seq: self.head(),
            window: self.window.read().unwrap_or_else(|p| p.into_inner()).len(),
            window_max: self.config.window_events,
            connections: self.connections.load(Ordering::Relaxed),
            cut_off_slow: self.cut_off_slow.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
        }
    }

    /// Applies a durable event to the projection and publishes what it
    /// changed. Called by the WAL writer only, in log order.
    pub fn apply_durable(&self, projection: &Projection, log_seq: u64, event: &Event) {
        let _cut = self.cut.write().unwrap_or_else(|p| p.into_inner());
        self.remember_stock_before(projection, event);
        projection.apply(log_seq, event);
        let t = now_us();
        let msgs = self.render(projection, event);
        if msgs.is_empty() {
            return;
        }
        let mut window = self.window.write().unwrap_or_else(|p| p.into_inner());
        let mut seq = self.head.load(Ordering::Acquire);
        let mut touched: Vec<(String, u64)> = Vec::new();
        for (topics, row, mut body) in msgs {
            for t in &topics {
                if Topic::is_narrow_name(t) {
                    match touched.iter_mut().find(|(n, _)| n == t) {
                        Some(e) => e.1 = seq + 1,
                        None => touched.push((t.clone(), seq + 1)),
                    }
                }
            }
            seq += 1;
            if let Value::Object(m) = &mut body {
                m.insert("type".into(), json!("event"));
                m.insert("seq".into(), json!(seq));
                m.insert("log_seq".into(), json!(log_seq));
                m.insert("t_us".into(), json!(t));
            }
            if window.len() >= self.config.window_events {
                window.pop_front();
            }
            window.push_back(Arc::new(FeedMsg {
                seq,
                keys: topics.iter().map(|t| topic_key(t)).collect(),
                topics,
                row,
                json: body.to_string().into(),
            }));
        }
        drop(window);
        // Topic seqs before the head: a reader that sees the head sees them.
        let mut wake = Vec::new();
        {
            let mut narrow = self.narrow.lock().unwrap_or_else(|p| p.into_inner());
            for (t, last) in touched {
                if let Some(entry) = narrow.get_mut(&t) {
                    entry.last = last;
                    entry.watchers.retain(|w| match w.upgrade() {
                        Some(n) => {
                            wake.push(n);
                            true
                        }
                        None => false,
                    });
                    if entry.watchers.is_empty() {
                        narrow.remove(&t);
                    }
                }
            }
        }
        self.head.store(seq, Ordering::Release);
        self.notify.send_replace(seq);
        for n in wake {
            n.notify_one();
        }
    }

    /// Records, for SKUs this event touches and the hub has not seen yet,
    /// whether they had stock before it (for sold out / back in stock).
    fn remember_stock_before(&self, projection: &Projection, event: &Event) {
        let mut in_stock = self.in_stock.lock().unwrap_or_else(|p| p.into_inner());
        let mut note = |sku: &SkuId| {
            if !in_stock.contains_key(sku) {
                let before = projection.skus.get(sku).map(|s| s.available_total() > 0);
                in_stock.insert(sku.clone(), before.unwrap_or(false));
            }
        };
        match event {
            Event::WarehouseUpserted { .. } => {}
            Event::SkuUpserted { sku, .. }
            | Event::StockAdjusted { sku, .. }
            | Event::SafetyStockSet { sku, .. }
            | Event::HoldExtended { sku, .. }
            | Event::HoldReleased { sku, .. } => note(sku),
            Event::HoldCreated { hold, .. } => note(&hold.sku),
            Event::OrderPlaced { allocations, .. } => allocations.iter().for_each(|a| note(&a.sku)),
            Event::OrderCancelled { skus, .. } => skus.iter().for_each(note),
        }
    }

    /// Messages with seq ≥ `cursor` that `keep`, at most `max`.
    pub fn read(&self, cursor: u64, max: usize, keep: impl Fn(&FeedMsg) -> bool) -> Read {
        let window = self.window.read().unwrap_or_else(|p| p.into_inner());
        // The window is the truth here: `head` is stored after it changes.
        let oldest = match window.front() {
            Some(m) => m.seq,
            None => return Read::Msgs(Vec::new(), cursor),
        };
        if cursor < oldest {
            return Read::Gone { oldest };
        }
        let mut out = Vec::new();
        let mut next = cursor;
        for m in window.iter().skip((cursor - oldest) as usize) {
            next = m.seq + 1;
            if keep(m) {
                out.push(m.clone());
                if out.len() == max {
                    break;
                }
            }
        }
        Read::Msgs(out, next.max(cursor))
    }

    /// The current state of `topic` and the seq it reflects.
    pub fn snapshot(&self, projection: &Projection, topic: &Topic) -> (u64, Value) {
        let _cut = self.cut.read().unwrap_or_else(|p| p.into_inner());
        let max = self.config.snapshot_items_max;
        let data = match topic {
            Topic::Sku(id) => json!({
                "stock": projection.skus.get(id).map(|s| json!(StockView::from(s.value()))),
            }),
            Topic::Warehouse(id) => {
                // At most `max` SKUs looked at: this runs under `cut`.
                let mut rows = Vec::new();
                for s in projection.skus.iter().take(max) {
                    if let Some(r) = s.rows.get(id) {
                        rows.push(json!({
                            "sku": s.key().as_str(),
                            "on_hand": r.on_hand,
                            "reserved": r.reserved,
                            "allocated": r.allocated,
                            "safety_stock": r.safety_stock,
                            "available": r.available(),
                        }));
                    }
                }
                json!({
                    "warehouse": projection.warehouses.get(id).map(|w| json!(WarehouseView::from(w.value()))),
                    "truncated": projection.skus.len() > max,
                    "stock": rows,
                })
            }
            Topic::Order(id) => json!({
                "order": projection.orders.get(id).map(|o| json!(OrderView::from(o.value()))),
            }),
            Topic::Orders => {
                // The most recent orders, newest first.
                let top = projection.max_order.load(Ordering::Acquire);
                let recent: Vec<Value> = (1..=top)
                    .rev()
                    .filter_map(|n| projection.orders.get(&OrderId(n)))
                    .take(max.min(100))
                    .map(|o| json!(OrderView::from(o.value())))
                    .collect();
                json!({ "recent": recent })
            }
            Topic::Stock | Topic::All => {
                let skus: Vec<Value> = projection
                    .skus
                    .iter()
                    .take(max)
                    .map(|s| json!(StockView::from(s.value())))
                    .collect();
                let warehouses: Vec<Value> = projection
                    .warehouses_by_priority()
                    .iter()
                    .filter_map(|id| projection.warehouses.get(id))
                    .map(|w| json!(WarehouseView::from(w.value())))
                    .collect();
                json!({
                    "truncated": skus.len() == max && projection.skus.len() > max,
                    "skus": skus,
                    "warehouses": warehouses,
                })
            }
            // A stream of hold events; their effect on stock is in `stock`.
            // (Counting millions of holds here would stall the writer.)
            Topic::Holds => json!({}),
        };
        (self.head(), data)
    }

    /// The messages one event makes: (topics, conflation row, body).
    fn render(&self, projection: &Projection, event: &Event) -> Vec<Rendered> {
        let mut out = Vec::new();
        let mut rows: Vec<(SkuId, Option<WarehouseId>)> = Vec::new();
        match event {
            Event::WarehouseUpserted { warehouse } => out.push((
                vec![format!("warehouse:{}", warehouse.id)],
                None,
                json!({"event": "warehouse_updated", "warehouse": WarehouseView::from(warehouse)}),
            )),
            Event::SkuUpserted {
                sku,
                name,
                per_customer_limit,
            } => {
                out.push((
                    vec!["stock".into(), format!("sku:{sku}")],
                    None,
                    json!({"event": "sku_updated", "sku": sku.as_str(), "name": name, "per_customer_limit": per_customer_limit}),
                ));
                rows.push((sku.clone(), None));
            }
            Event::StockAdjusted { sku, warehouse, .. }
            | Event::SafetyStockSet { sku, warehouse, .. } => {
                rows.push((sku.clone(), Some(warehouse.clone())));
            }
            Event::HoldCreated { hold, .. } => {
                let view = projection
                    .holds
                    .get(&hold.id)
                    .map(|h| json!(ReservationView::from(h.value())));
                out.push((
                    vec!["holds".into(), format!("sku:{}", hold.sku)],
                    None,
                    json!({"event": "hold_created", "reservation": view}),
                ));
                rows.push((hold.sku.clone(), Some(hold.warehouse.clone())));
            }
            Event::HoldExtended {
                sku,
                hold,
                expires_at,
            } => out.push((
                vec!["holds".into(), format!("sku:{sku}")],
                None,
                json!({"event": "hold_extended", "reservation_id": hold.to_string(), "sku": sku.as_str(), "expires_at": expires_at}),
            )),
            Event::HoldReleased {
                sku,
                hold,
                reason,
                at,
            } => {
                let kind = match reason {
                    ReleaseReason::Released => "hold_released",
                    ReleaseReason::Expired => "hold_expired",
                };
                let record = projection.holds.get(hold).map(|h| h.hold.clone());
                out.push((
                    vec!["holds".into(), format!("sku:{sku}")],
                    None,
                    json!({
                        "event": kind,
                        "reservation_id": hold.to_string(),
                        "sku": sku.as_str(),
                        "qty": record.as_ref().map(|h| h.qty),
                        "warehouse": record.as_ref().map(|h| h.warehouse.as_str()),
                        "at": at,
                    }),
                ));
                match record {
                    Some(h) => rows.push((sku.clone(), Some(h.warehouse))),
                    None => rows.push((sku.clone(), None)),
                }
            }
            Event::OrderPlaced {
                order, allocations, ..
            } => {
                let view = OrderView::from(order);
                let topic = format!("order:{}", order.id);
                for a in allocations {
                    for h in &a.consumed_holds {
                        out.push((
                            vec!["holds".into(), format!("sku:{}", a.sku)],
                            None,
                            json!({"event": "hold_consumed", "reservation_id": h.to_string(), "sku": a.sku.as_str(), "order_id": order.id.to_string()}),
                        ));
                    }
                }
                out.push((
                    vec!["orders".into(), topic.clone()],
                    None,
                    json!({"event": "order_created", "order": &view}),
                ));
                let mut topics = vec!["orders".into(), topic];
                topics.extend(
                    order
                        .shipments
                        .iter()
                        .map(|s| format!("warehouse:{}", s.warehouse)),
                );
                out.push((
                    topics,
                    None,
                    json!({"event": "order_routed", "order_id": order.id.to_string(), "shipments": view.shipments}),
                ));
                for a in allocations {
                    for (wh, _) in &a.lines {
                        rows.push((a.sku.clone(), Some(wh.clone())));
                    }
                }
            }
            Event::OrderCancelled {
                order,
                skus,
                reason,
                at,
            } => {
                out.push((
                    vec!["orders".into(), format!("order:{order}")],
                    None,
                    json!({"event": "order_status_changed", "order_id": order.to_string(), "status": "cancelled", "reason": reason, "at": at}),
                ));
                if let Some(o) = projection.orders.get(order) {
                    for s in &o.shipments {
                        for (sku, _) in &s.lines {
                            rows.push((sku.clone(), Some(s.warehouse.clone())));
                        }
                    }
                } else {
                    rows.extend(skus.iter().map(|s| (s.clone(), None)));
                }
            }
        }
        rows.dedup();
        let mut touched: Vec<SkuId> = Vec::new();
        for (sku, wh) in rows {
            let Some(state) = projection.skus.get(&sku) else {
                continue;
            };
            let whs: Vec<WarehouseId> = match wh {
                Some(w) => vec![w],
                None if matches!(event, Event::SkuUpserted { .. }) => vec![],
                None => state.rows.keys().cloned().collect(),
            };
            for w in whs {
                let r = state.row(&w);
                out.push((
                    vec![
                        "stock".into(),
                        format!("sku:{sku}"),
                        format!("warehouse:{w}"),
                    ],
                    Some((sku.clone(), w.clone())),
                    json!({
                        "event": "stock_changed",
                        "sku": sku.as_str(),
                        "warehouse": w.as_str(),
                        "on_hand": r.on_hand,
                        "reserved": r.reserved,
                        "allocated": r.allocated,
                        "safety_stock": r.safety_stock,
                        "available": r.available(),
                        "sku_available": state.available_total(),
                    }),
                ));
            }
            if !touched.contains(&sku) {
                touched.push(sku.clone());
            }
        }
        let mut in_stock = self.in_stock.lock().unwrap_or_else(|p| p.into_inner());
        for sku in touched {
            let available = projection
                .skus
                .get(&sku)
                .map(|s| s.available_total())
                .unwrap_or(0);
            let was = in_stock.insert(sku.clone(), available > 0).unwrap_or(false);
            let kind = match (was, available > 0) {
                (true, false) => "sold_out",
                (false, true) => "back_in_stock",
                _ => continue,
            };
            out.push((
                vec!["stock".into(), format!("sku:{sku}")],
                None,
                json!({"event": kind, "sku": sku.as_str(), "sku_available": available}),
            ));
        }
        out
    }
}
