//! The live feed: every durable change, as sequenced messages on topics.
//!
//! The WAL's applier thread calls [`Hub::publish_durable`] for each event
//! once it is synced (after its writer is answered), and [`Hub::wake`] once
//! per group (through [`Publisher`]); the hub applies each event to
//! the projection and turns it into feed messages (typed
//! [`wire::FeedEvent`]s: stock rows, holds, orders and their lifecycle,
//! sold out / back in stock), each with the next global `seq`, in one step under `cut`. So a
//! topic snapshot copied under `cut` reflects exactly the messages up to its
//! `seq`; it is rendered after `cut` is released, so a snapshot never holds
//! up the applier. A message is kept typed and rendered to JSON lazily, by
//! the first connection that sends it, once for all of them: with nobody
//! listening nothing is rendered, and a resume from the window still finds
//! every message. Every JSON shape is a view from [`crate::wire`]; nothing
//! here builds JSON by hand.
//!
//! Messages go into one bounded window (a ring of the last
//! `feed_window_events` messages), never into per-client queues: the applier
//! does O(1) work per message whatever the number of clients. Each
//! connection pulls from the window at its own pace with its own cursor; a
//! cursor that falls out of the window (or too far behind) is the client's
//! problem alone — it is cut off, or, if conflated, skipped to the latest
//! values. Resuming with `since` is a read of the window from that seq.

mod low_stock;
#[cfg(test)]
mod tests;
pub mod topic;
mod workload;

use crate::core::lifecycle::{FulfillmentId, OrderStatus, ReturnId};
use crate::core::{Event, OrderId, SkuId, WarehouseId};
use crate::projection::Projection;
use crate::wire::{
    self, ChainView, FeedEvent, FulfillmentChanged, FulfillmentShipped, FulfillmentView,
    HoldClosed, LinesCancelled, OrderCountsView, OrderView, ParcelView, PaymentChanged,
    ReservationView, ReturnChanged, ReturnView, ServerMsg, ShipmentView, SkuRowView, StockChanged,
    StockView, TopicSnapshot, WarehouseView,
};
use crate::wire::{ReceiptClosed, ReceiptReceived, ReceiptView};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
pub use topic::Topic;

/// Order ids an `orders` snapshot looks at, newest first, at most: the walk
/// holds the applier's lock, so it is bounded whatever the gaps.
const RECENT_ORDER_IDS_SCANNED: usize = 4096;

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub window_events: usize,
    pub snapshot_items_max: usize,
}

/// One feed message, rendered at most once for every client.
#[derive(Debug)]
pub struct FeedMsg {
    pub seq: u64,
    pub topics: Vec<String>,
    /// `topic_key` of each topic.
    pub keys: Vec<u64>,
    /// For conflation: the stock row this message is the latest value of.
    pub row: Option<(SkuId, WarehouseId)>,
    log_seq: u64,
    t_us: u64,
    event: FeedEvent,
    /// Rendered by the first reader that sends it.
    json: OnceLock<bytestring::ByteString>,
}

impl FeedMsg {
    /// The message as JSON: rendered on first use, then shared by every
    /// client it goes to (a clone is a reference count).
    pub fn json(&self) -> bytestring::ByteString {
        self.json
            .get_or_init(|| {
                wire::to_json(&ServerMsg::Event {
                    seq: self.seq,
                    log_seq: self.log_seq,
                    t_us: self.t_us,
                    event: &self.event,
                })
                .into()
            })
            .clone()
    }

    /// Whether it has been rendered (tests).
    pub fn is_rendered(&self) -> bool {
        self.json.get().is_some()
    }
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

/// A message before it has a seq: typed, not yet rendered.
struct Pending {
    topics: Vec<String>,
    /// For conflation: the stock row this message is the latest value of.
    row: Option<(SkuId, WarehouseId)>,
    event: FeedEvent,
}

impl Pending {
    fn new(topics: Vec<String>, event: FeedEvent) -> Self {
        Pending {
            topics,
            row: None,
            event,
        }
    }

    /// Makes it the message with this `seq` (not rendered yet).
    fn sequence(self, seq: u64, log_seq: u64, t_us: u64) -> FeedMsg {
        FeedMsg {
            seq,
            keys: self.topics.iter().map(|t| topic_key(t)).collect(),
            topics: self.topics,
            row: self.row,
            log_seq,
            t_us,
            event: self.event,
            json: OnceLock::new(),
        }
    }
}

/// The applier's hook: applies each synced event to the read model and the
/// feed, and wakes the feed's readers once per group.
pub struct Publisher {
    hub: Arc<Hub>,
    projection: Arc<Projection>,
}

impl Publisher {
    /// The applier's hook from now on: `projection` is the read model
    /// replay left, which the hub's workload counts start from.
    pub fn new(hub: Arc<Hub>, projection: Arc<Projection>) -> Self {
        hub.workload.seed(&projection);
        Self { hub, projection }
    }
}

impl crate::wal::ApplyDurable for Publisher {
    fn event(&mut self, seq: u64, event: &Event) {
        self.hub.publish_durable(&self.projection, seq, event);
    }

    fn group_done(&mut self) {
        self.hub.wake();
    }
}

/// What a read of the window found.
pub enum Read {
    /// Messages from the cursor on (filtered), and the next cursor.
    Msgs(Vec<Arc<FeedMsg>>, u64),
    /// The cursor is older than the window's oldest message.
    Gone { oldest: u64 },
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
    /// Watched narrow topics with news since the last `wake`.
    to_wake: Mutex<std::collections::HashSet<String>>,
    /// Whether each SKU had stock available after its last change; filled
    /// as SKUs change (from the state just before), so a start with a
    /// million SKUs does not pay for it.
    in_stock: Mutex<HashMap<SkuId, bool>>,
    pub connections: AtomicUsize,
    registrations: AtomicU64,
    pub cut_off_slow: AtomicU64,
    pub resyncs: AtomicU64,
    /// Orders routed to each warehouse on its local day, as fed (the
    /// `orders` snapshot's `workload`).
    workload: workload::FedWorkload,
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
            to_wake: Mutex::new(std::collections::HashSet::new()),
            connections: AtomicUsize::new(0),
            registrations: AtomicU64::new(0),
            cut_off_slow: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            workload: workload::FedWorkload::default(),
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

    pub fn stats(&self) -> wire::FeedStats {
        wire::FeedStats {
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
    /// changed. Called by the WAL's applier only, in log order.
    ///
    /// Three steps, all under `cut` (a snapshot sees all of an event or
    /// none of it): apply; turn the event into typed messages
    /// (`Hub::messages`, reading the state just applied); sequence them
    /// (`Hub::publish`). Work per message is O(1) whatever the number of
    /// clients. Readers are woken at once.
    pub fn apply_durable(&self, projection: &Projection, log_seq: u64, event: &Event) {
        self.publish_durable(projection, log_seq, event);
        self.wake();
    }

    /// `apply_durable` without waking readers: the applier wakes them once
    /// per group ([`Hub::wake`]).
    pub fn publish_durable(&self, projection: &Projection, log_seq: u64, event: &Event) {
        let _cut = self.cut.write().unwrap_or_else(|p| p.into_inner());
        self.remember_stock_before(projection, event);
        let before = match event {
            Event::OrderCancelled { order, .. }
            | Event::OrderRerouted { order, .. }
            | Event::OrderLinesCancelled { order, .. } => {
                projection.orders.get(order).map(|o| o.clone())
            }
            _ => None,
        };
        // The order's status before the event, for `order_status_changed`:
        // only for events that may move it.
        let status_before = status_moved_by(event)
            .and_then(|(order, _)| projection.orders.get(&order).map(|o| o.lifecycle_status()));
        let counts_before = projection.order_tally.changes();
        let low_before = low_stock::before(projection, event);
        let receipt_after = receipt_after(projection, event);
        projection.apply(log_seq, event);
        match (event, before) {
            (Event::OrderPlaced { order, .. }, _) => self.workload.order_placed(projection, order),
            (Event::OrderCancelled { .. }, Some(before)) => {
                self.workload.order_cancelled(projection, &before)
            }
            (Event::OrderRerouted { order, .. }, Some(before)) => {
                if let Some(after) = projection.orders.get(order) {
                    self.workload
                        .order_rerouted(projection, &before, after.value());
                }
            }
            // Every unit cancelled: the order no longer counts.
            (Event::OrderLinesCancelled { order, .. }, Some(before)) => {
                let cancelled = projection
                    .orders
                    .get(order)
                    .is_some_and(|o| o.status == crate::core::OrderStatus::Cancelled);
                if cancelled {
                    self.workload.order_cancelled(projection, &before);
                }
            }
            _ => {}
        }
        let mut msgs = self.messages(projection, event, status_before, receipt_after);
        for (topics, e) in low_stock::crossings(projection, low_before) {
            msgs.push(Pending::new(topics, e));
        }
        // The orders' numbers, when the event changed them: all of them,
        // so a client that skipped some still shows the right ones.
        if projection.order_tally.changes() != counts_before {
            msgs.push(Pending::new(
                vec!["orders".into()],
                FeedEvent::OrderCounts(OrderCountsView::from(&projection.order_tally.get())),
            ));
        }
        if !msgs.is_empty() {
            self.publish(log_seq, msgs);
        }
    }

    /// Gives each message the next seq, appends it to the window, then
    /// moves the head and notes which watched topics have news (readers are
    /// woken by `wake`). Only the WAL's applier calls it (through
    /// `publish_durable`, under `cut`).
    fn publish(&self, log_seq: u64, msgs: Vec<Pending>) {
        let t = now_us();
        let first = self.head.load(Ordering::Acquire) + 1;
        let mut touched: Vec<(String, u64)> = Vec::new();
        let mut rendered = Vec::with_capacity(msgs.len());
        for (seq, m) in (first..).zip(msgs) {
            for t in m.topics.iter().filter(|t| Topic::is_narrow_name(t)) {
                match touched.iter_mut().find(|(n, _)| n == t) {
                    Some(e) => e.1 = seq,
                    None => touched.push((t.clone(), seq)),
                }
            }
            rendered.push(Arc::new(m.sequence(seq, log_seq, t)));
        }
        let seq = first + rendered.len() as u64 - 1;
        {
            // Readers wait on this lock: hold it for the appends only.
            let mut window = self.window.write().unwrap_or_else(|p| p.into_inner());
            for m in rendered {
                if window.len() >= self.config.window_events {
                    window.pop_front();
                }
                window.push_back(m);
            }
        }
        // Topic seqs before the head: a reader that sees the head sees them.
        {
            let mut narrow = self.narrow.lock().unwrap_or_else(|p| p.into_inner());
            let mut wake = self.to_wake.lock().unwrap_or_else(|p| p.into_inner());
            for (t, last) in touched {
                if let Some(entry) = narrow.get_mut(&t) {
                    entry.last = last;
                    if !wake.contains(&t) {
                        wake.insert(t);
                    }
                }
            }
        }
        self.head.store(seq, Ordering::Release);
    }

    /// Wakes the readers of everything published since the last wake: the
    /// broad topics' watch (only if anyone holds it: a reader subscribes
    /// before it reads the head, so it cannot miss a head stored before)
    /// and each narrow topic's watchers, once each.
    pub fn wake(&self) {
        let head = self.head();
        if self.notify.receiver_count() > 0 && *self.notify.borrow() != head {
            self.notify.send_replace(head);
        }
        let topics = std::mem::take(&mut *self.to_wake.lock().unwrap_or_else(|p| p.into_inner()));
        if topics.is_empty() {
            return;
        }
        // Each watcher once, however many of its topics had news.
        let mut wake: Vec<Arc<tokio::sync::Notify>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        {
            let mut narrow = self.narrow.lock().unwrap_or_else(|p| p.into_inner());
            for t in &topics {
                let Some(entry) = narrow.get_mut(t) else {
                    continue;
                };
                entry.watchers.retain(|w| match w.upgrade() {
                    Some(n) => {
                        if seen.insert(Arc::as_ptr(&n) as usize) {
                            wake.push(n);
                        }
                        true
                    }
                    None => false,
                });
                if entry.watchers.is_empty() {
                    narrow.remove(t);
                }
            }
        }
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
            Event::OrderRerouted { from, to, .. } => {
                from.iter().chain(to).for_each(|a| note(&a.sku))
            }
            Event::OrderLinesCancelled { units, .. } => units.iter().for_each(|u| note(&u.sku)),
            Event::FulfillmentShipped { parcel, .. } => {
                parcel.lines.iter().for_each(|(s, _)| note(s))
            }
            Event::ReturnReceived {
                lines,
                restock: Some(_),
                ..
            } => lines.iter().for_each(|(s, _)| note(s)),
            Event::RoutingRulesSet { .. }
            | Event::OrderPayment { .. }
            | Event::OrderHoldSet { .. }
            | Event::FulfillmentStaged { .. }
            | Event::FulfillmentDelivered { .. }
            | Event::ReturnRequested { .. }
            | Event::ReturnReceived { restock: None, .. }
            | Event::ReturnSettled { .. }
            | Event::LifeKeyUsed { .. } => {}
            Event::IncomingExpected { sku, .. }
            | Event::IncomingReceived { sku, .. }
            | Event::IncomingClosed { sku, .. }
            | Event::LowStockSet { sku, .. } => note(sku),
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

    /// The `snapshot` message of `topic`, rendered, and the seq it
    /// reflects.
    pub fn snapshot_msg(&self, projection: &Projection, topic: &Topic) -> (u64, String) {
        let name = topic.name();
        self.snapshot_with(projection, topic, |seq, data| {
            wire::to_json(&ServerMsg::Snapshot {
                topic: &name,
                seq,
                data,
            })
        })
    }

    /// Copies the state of `topic` under `cut` (typed views, at most
    /// `feed_snapshot_items_max` items), lets go of `cut`, and only then
    /// hands the copy to `render`: however long rendering and sending take,
    /// the applier never waits for them.
    pub fn snapshot_with<R>(
        &self,
        projection: &Projection,
        topic: &Topic,
        render: impl FnOnce(u64, &TopicSnapshot) -> R,
    ) -> (u64, R) {
        let (seq, data) = self.snapshot(projection, topic);
        (seq, render(seq, &data))
    }

    /// The state of `topic` and the seq it reflects: a copy taken under
    /// `cut`, so exactly the messages up to that seq.
    pub fn snapshot(&self, projection: &Projection, topic: &Topic) -> (u64, TopicSnapshot) {
        let _cut = self.cut.read().unwrap_or_else(|p| p.into_inner());
        let max = self.config.snapshot_items_max;
        let data = match topic {
            Topic::Sku(id) => TopicSnapshot::Sku {
                stock: projection.skus.get(id).map(|s| StockView::from(s.value())),
            },
            Topic::Warehouse(id) => TopicSnapshot::Warehouse {
                warehouse: projection
                    .warehouses
                    .get(id)
                    .map(|w| WarehouseView::from(w.value())),
                truncated: projection.skus.len() > max,
                // At most `max` SKUs looked at.
                stock: projection
                    .skus
                    .iter()
                    .take(max)
                    .filter_map(|s| SkuRowView::from_state(s.value(), id))
                    .collect(),
            },
            Topic::Order(id) => TopicSnapshot::Order {
                order: projection
                    .orders
                    .get(id)
                    .map(|o| OrderView::from(o.value())),
            },
            Topic::Orders => {
                // The most recent orders, newest first, among the last
                // `RECENT_ORDER_IDS_SCANNED` ids: ids of forgotten or failed
                // orders are gaps, and this runs under the applier's lock.
                let top = projection.max_order.load(Ordering::Acquire);
                TopicSnapshot::Orders {
                    recent: (1..=top)
                        .rev()
                        .take(RECENT_ORDER_IDS_SCANNED)
                        .filter_map(|n| projection.orders.get(&OrderId(n)))
                        .take(max.min(100))
                        .map(|o| OrderView::from(o.value()))
                        .collect(),
                    workload: self.workload.view(projection),
                    counts: OrderCountsView::from(&projection.order_tally.get()),
                }
            }
            Topic::Stock | Topic::All => {
                let skus: Vec<StockView> = projection
                    .skus
                    .iter()
                    .take(max)
                    .map(|s| StockView::from(s.value()))
                    .collect();
                TopicSnapshot::Stock {
                    truncated: skus.len() == max && projection.skus.len() > max,
                    skus,
                    warehouses: projection
                        .warehouses_by_priority()
                        .iter()
                        .filter_map(|id| projection.warehouses.get(id))
                        .map(|w| WarehouseView::from(w.value()))
                        .collect(),
                }
            }
            // A stream of hold events; their effect on stock is in `stock`.
            // (Counting millions of holds here would stall the applier.)
            Topic::Holds => TopicSnapshot::Holds {},
            Topic::Routing => TopicSnapshot::Routing {
                runtime: projection
                    .routing_overrides()
                    .iter()
                    .map(|(c, chain)| {
                        let name = c.as_ref().map_or("default".into(), |c| c.to_string());
                        (name, ChainView::new(chain, true))
                    })
                    .collect(),
            },
        };
        (self.head(), data)
    }

    /// The messages one event makes, typed, in the order they get seqs.
    /// `receipt_after` is the receipt an `IncomingReceived` leaves, built
    /// before the event is applied (the event may forget it at once).
    /// Reads the projection just after the event was applied;
    /// `status_before` is the lifecycle status of the order the event
    /// names before it (for events that may move it).
    fn messages(
        &self,
        projection: &Projection,
        event: &Event,
        status_before: Option<OrderStatus>,
        receipt_after: Option<crate::core::sku::incoming::Receipt>,
    ) -> Vec<Pending> {
        let mut out = Vec::new();
        let mut rows: Vec<(SkuId, Option<WarehouseId>)> = Vec::new();
        match event {
            // On `stock` too: its snapshot lists the warehouses.
            Event::WarehouseUpserted { warehouse } => out.push(Pending::new(
                vec!["stock".into(), format!("warehouse:{}", warehouse.id)],
                FeedEvent::WarehouseUpdated {
                    warehouse: WarehouseView::from(warehouse),
                },
            )),
            Event::SkuUpserted {
                sku,
                name,
                per_customer_limit,
            } => {
                out.push(Pending::new(
                    vec!["stock".into(), format!("sku:{sku}")],
                    FeedEvent::sku_updated(sku, name, *per_customer_limit),
                ));
                rows.push((sku.clone(), None));
            }
            Event::StockAdjusted { sku, warehouse, .. }
            | Event::SafetyStockSet { sku, warehouse, .. } => {
                rows.push((sku.clone(), Some(warehouse.clone())));
            }
            Event::HoldCreated { hold, .. } => {
                out.push(Pending::new(
                    vec!["holds".into(), format!("sku:{}", hold.sku)],
                    FeedEvent::HoldCreated {
                        reservation: projection
                            .holds
                            .get(&hold.id)
                            .map(|h| ReservationView::from(h.value().as_ref())),
                    },
                ));
                rows.push((hold.sku.clone(), Some(hold.warehouse.clone())));
            }
            Event::HoldExtended {
                sku,
                hold,
                expires_at,
            } => out.push(Pending::new(
                vec!["holds".into(), format!("sku:{sku}")],
                FeedEvent::hold_extended(sku, *hold, *expires_at),
            )),
            Event::HoldReleased {
                sku,
                hold,
                reason,
                at,
            } => {
                let record = projection.holds.get(hold);
                let closed = HoldClosed::new(sku, *hold, record.as_deref().map(|r| &**r), *at);
                let warehouse = record.map(|r| r.hold.warehouse.clone());
                out.push(Pending::new(
                    vec!["holds".into(), format!("sku:{sku}")],
                    FeedEvent::hold_closed(*reason, closed),
                ));
                rows.push((sku.clone(), warehouse));
            }
            Event::OrderPlaced {
                order, allocations, ..
            } => {
                let view = OrderView::from(order);
                let topic = format!("order:{}", order.id);
                for a in allocations {
                    for h in &a.consumed_holds {
                        out.push(Pending::new(
                            vec!["holds".into(), format!("sku:{}", a.sku)],
                            FeedEvent::hold_consumed(&a.sku, *h, order.id),
                        ));
                    }
                }
                let routed = FeedEvent::order_routed(&view);
                out.push(Pending::new(
                    vec!["orders".into(), topic.clone()],
                    FeedEvent::OrderCreated {
                        order: Box::new(view),
                    },
                ));
                let mut topics = vec!["orders".into(), topic];
                topics.extend(
                    order
                        .shipments
                        .iter()
                        .map(|s| format!("warehouse:{}", s.warehouse)),
                );
                out.push(Pending::new(topics, routed));
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
                let workload = match projection.orders.get(order) {
                    Some(o) => self
                        .workload
                        .view_of(projection, o.shipments.iter().map(|s| &s.warehouse)),
                    None => std::collections::BTreeMap::new(),
                };
                out.push(Pending::new(
                    vec!["orders".into(), format!("order:{order}")],
                    FeedEvent::order_cancelled(*order, reason, *at, workload),
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
            Event::RoutingRulesSet { channel, chain, at } => out.push(Pending::new(
                vec!["routing".into()],
                FeedEvent::RoutingRulesSet {
                    channel: channel.as_ref().map(|c| c.to_string()),
                    chain: chain.as_ref().map(|c| ChainView::new(c, true)),
                    at: *at,
                },
            )),
            Event::OrderRerouted {
                order,
                from,
                to,
                shipments,
                routing,
                reason,
                at,
            } => {
                let mut left: Vec<WarehouseId> = from
                    .iter()
                    .flat_map(|a| a.lines.iter().map(|(w, _)| w.clone()))
                    .collect();
                left.sort();
                left.dedup();
                let mut topics = vec!["orders".into(), format!("order:{order}")];
                let mut whs: Vec<&WarehouseId> = left.iter().collect();
                whs.extend(shipments.iter().map(|s| &s.warehouse));
                whs.sort();
                whs.dedup();
                topics.extend(whs.iter().map(|w| format!("warehouse:{w}")));
                out.push(Pending::new(
                    topics,
                    FeedEvent::OrderRerouted {
                        order_id: order.to_string(),
                        from: left.iter().map(|w| w.to_string()).collect(),
                        shipments: shipments.iter().map(ShipmentView::from).collect(),
                        routing: routing.into(),
                        reason: reason.clone(),
                        at: *at,
                        workload: self.workload.view_of(projection, whs.iter().copied()),
                    },
                ));
                for a in from.iter().chain(to) {
                    for (wh, _) in &a.lines {
                        rows.push((a.sku.clone(), Some(wh.clone())));
                    }
                }
                rows.sort();
            }
            Event::OrderPayment { order, effect } => {
                // An order the read model no longer has (forgotten) has no
                // payment status or totals to show.
                if let Some(o) = projection.orders.get(order) {
                    out.push(Pending::new(
                        order_topics(*order),
                        FeedEvent::payment(effect.kind, PaymentChanged::new(o.value(), effect)),
                    ));
                }
            }
            Event::OrderHoldSet { order, reason, at } => out.push(Pending::new(
                order_topics(*order),
                FeedEvent::order_hold(*order, reason.as_ref(), *at),
            )),
            Event::OrderLinesCancelled {
                order,
                units,
                reason,
                expired,
                at,
                ..
            } => {
                let mut topics = order_topics(*order);
                let mut whs: Vec<&WarehouseId> = units.iter().map(|u| &u.warehouse).collect();
                whs.sort();
                whs.dedup();
                topics.extend(whs.iter().map(|w| format!("warehouse:{w}")));
                out.push(Pending::new(
                    topics,
                    FeedEvent::lines_cancelled(
                        *expired,
                        LinesCancelled::new(*order, units, reason, *at),
                    ),
                ));
                for u in units {
                    rows.push((u.sku.clone(), Some(u.warehouse.clone())));
                }
                rows.sort();
            }
            Event::FulfillmentStaged {
                order,
                fulfillment,
                command,
                at,
                ..
            } => {
                if let Some(f) = fulfillment_view(projection, order, fulfillment) {
                    out.push(Pending::new(
                        fulfillment_topics(*order, &f.warehouse),
                        FeedEvent::fulfillment_staged(
                            *command,
                            FulfillmentChanged {
                                fulfillment: f,
                                at: *at,
                            },
                        ),
                    ));
                }
            }
            Event::FulfillmentShipped {
                order,
                fulfillment,
                warehouse,
                parcel,
                ..
            } => {
                if let Some(f) = fulfillment_view(projection, order, fulfillment) {
                    out.push(Pending::new(
                        fulfillment_topics(*order, &f.warehouse),
                        FeedEvent::FulfillmentShipped(FulfillmentShipped {
                            fulfillment: f,
                            parcel: ParcelView::from(parcel),
                            at: parcel.at,
                        }),
                    ));
                }
                for (sku, _) in &parcel.lines {
                    rows.push((sku.clone(), Some(warehouse.clone())));
                }
            }
            Event::FulfillmentDelivered {
                order,
                fulfillment,
                at,
                ..
            } => {
                if let Some(f) = fulfillment_view(projection, order, fulfillment) {
                    out.push(Pending::new(
                        fulfillment_topics(*order, &f.warehouse),
                        FeedEvent::FulfillmentDelivered(FulfillmentChanged {
                            fulfillment: f,
                            at: *at,
                        }),
                    ));
                }
            }
            Event::ReturnRequested { order, ret, .. } => {
                if let Some(r) = return_view(projection, order, ret) {
                    out.push(Pending::new(
                        order_topics(*order),
                        FeedEvent::ReturnRequested(ReturnChanged { ret: r }),
                    ));
                }
            }
            Event::ReturnReceived {
                order,
                ret,
                lines,
                restock,
                ..
            } => {
                if let Some(r) = return_view(projection, order, ret) {
                    let mut topics = order_topics(*order);
                    topics.extend(restock.iter().map(|w| format!("warehouse:{w}")));
                    out.push(Pending::new(
                        topics,
                        FeedEvent::ReturnReceived(ReturnChanged { ret: r }),
                    ));
                }
                if let Some(wh) = restock {
                    for (sku, _) in lines {
                        rows.push((sku.clone(), Some(wh.clone())));
                    }
                }
            }
            Event::ReturnSettled {
                order,
                ret,
                command,
                ..
            } => {
                if let Some(r) = return_view(projection, order, ret) {
                    out.push(Pending::new(
                        order_topics(*order),
                        FeedEvent::return_settled(*command, ReturnChanged { ret: r }),
                    ));
                }
            }
            // A key is not a change anyone watches.
            Event::LifeKeyUsed { .. } => {}
            Event::IncomingExpected { sku, receipt } => {
                out.push(Pending::new(
                    vec![
                        "stock".into(),
                        format!("sku:{sku}"),
                        format!("warehouse:{}", receipt.warehouse),
                    ],
                    FeedEvent::IncomingExpected(ReceiptView::new(sku, receipt)),
                ));
                rows.push((sku.clone(), Some(receipt.warehouse.clone())));
            }
            Event::IncomingReceived {
                sku,
                warehouse,
                qty,
                ..
            } => {
                if let Some(r) = receipt_after {
                    out.push(Pending::new(
                        vec![
                            "stock".into(),
                            format!("sku:{sku}"),
                            format!("warehouse:{warehouse}"),
                        ],
                        FeedEvent::IncomingReceived(ReceiptReceived {
                            qty: *qty,
                            receipt: ReceiptView::new(sku, &r),
                        }),
                    ));
                }
                rows.push((sku.clone(), Some(warehouse.clone())));
            }
            Event::IncomingClosed {
                sku,
                warehouse,
                short,
                reason,
                ..
            } => {
                if let Some(r) = receipt_after {
                    out.push(Pending::new(
                        vec![
                            "stock".into(),
                            format!("sku:{sku}"),
                            format!("warehouse:{warehouse}"),
                        ],
                        FeedEvent::IncomingClosed(ReceiptClosed {
                            short: *short,
                            reason: reason.clone(),
                            receipt: ReceiptView::new(sku, &r),
                        }),
                    ));
                }
                rows.push((sku.clone(), Some(warehouse.clone())));
            }
            // Its effect is a crossing, if any (`low_stock`).
            Event::LowStockSet { .. } => {}
        }
        if let (Some(before), Some((id, at))) = (status_before, status_moved_by(event)) {
            if let Some(o) = projection.orders.get(&id) {
                let after = o.lifecycle_status();
                if after != before {
                    // A cancelled order no longer counts at its warehouses.
                    let workload = if after == OrderStatus::Cancelled {
                        self.workload
                            .view_of(projection, o.shipments.iter().map(|s| &s.warehouse))
                    } else {
                        std::collections::BTreeMap::new()
                    };
                    out.push(Pending::new(
                        order_topics(id),
                        FeedEvent::order_status_changed(
                            id,
                            after.as_str(),
                            status_reason(event),
                            at,
                            workload,
                        ),
                    ));
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
                out.push(Pending {
                    topics: vec![
                        "stock".into(),
                        format!("sku:{sku}"),
                        format!("warehouse:{w}"),
                    ],
                    event: FeedEvent::StockChanged(StockChanged::from_state(&state, &w)),
                    row: Some((sku.clone(), w)),
                });
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
            if let Some(e) = FeedEvent::availability(&sku, was, available) {
                out.push(Pending::new(vec!["stock".into(), format!("sku:{sku}")], e));
            }
        }
        out
    }
}

/// The order an event names and the event's time, for events that may
/// move the order's lifecycle status: its life's events and a re-route. A
/// placement has no status before it; a whole cancellation has its own
/// message.
fn status_moved_by(event: &Event) -> Option<(OrderId, u64)> {
    match event {
        Event::OrderPayment { order, effect } => Some((*order, effect.at)),
        Event::FulfillmentShipped { order, parcel, .. } => Some((*order, parcel.at)),
        Event::OrderHoldSet { order, at, .. }
        | Event::OrderLinesCancelled { order, at, .. }
        | Event::FulfillmentStaged { order, at, .. }
        | Event::FulfillmentDelivered { order, at, .. }
        | Event::ReturnRequested { order, at, .. }
        | Event::ReturnReceived { order, at, .. }
        | Event::ReturnSettled { order, at, .. }
        | Event::OrderRerouted { order, at, .. } => Some((*order, *at)),
        Event::WarehouseUpserted { .. }
        | Event::SkuUpserted { .. }
        | Event::StockAdjusted { .. }
        | Event::SafetyStockSet { .. }
        | Event::HoldCreated { .. }
        | Event::HoldExtended { .. }
        | Event::HoldReleased { .. }
        | Event::OrderPlaced { .. }
        | Event::OrderCancelled { .. }
        | Event::RoutingRulesSet { .. }
        | Event::LifeKeyUsed { .. }
        | Event::IncomingExpected { .. }
        | Event::IncomingReceived { .. }
        | Event::IncomingClosed { .. }
        | Event::LowStockSet { .. } => None,
    }
}

/// Why an order's status changed, as `order_status_changed` says: the
/// reason the event gives (a cancellation's, a hold's, a rejection's, a
/// re-route's), else the event's name.
fn status_reason(event: &Event) -> &str {
    match event {
        Event::OrderLinesCancelled { reason, .. } | Event::OrderRerouted { reason, .. } => reason,
        Event::OrderHoldSet {
            reason: Some(r), ..
        } => r.as_str(),
        Event::FulfillmentStaged {
            reason: Some(r), ..
        } => r,
        e => e.kind(),
    }
}

/// The topics of an order's events.
fn order_topics(order: OrderId) -> Vec<String> {
    vec!["orders".into(), format!("order:{order}")]
}

/// The topics of a fulfilment's events: its order's and its warehouse's.
fn fulfillment_topics(order: OrderId, warehouse: &str) -> Vec<String> {
    vec![
        "orders".into(),
        format!("order:{order}"),
        format!("warehouse:{warehouse}"),
    ]
}

/// A fulfilment as the read model has it now.
fn fulfillment_view(
    projection: &Projection,
    order: &OrderId,
    id: &FulfillmentId,
) -> Option<FulfillmentView> {
    let o = projection.orders.get(order)?;
    let f = o.life.fulfillments.iter().find(|f| f.id == *id)?;
    Some(FulfillmentView::from(f))
}

/// A return as the read model has it now.
fn return_view(projection: &Projection, order: &OrderId, id: &ReturnId) -> Option<ReturnView> {
    let o = projection.orders.get(order)?;
    let r = o.life.returns.iter().find(|r| r.id == *id)?;
    Some(ReturnView::from(r))
}

/// The receipt an `IncomingReceived` or `IncomingClosed` leaves, from the
/// receipt before it and the event: read before applying, since a receipt
/// that closes may be forgotten by the same event.
fn receipt_after(
    projection: &Projection,
    event: &Event,
) -> Option<crate::core::sku::incoming::Receipt> {
    let (sku, receipt, qty, at) = match event {
        Event::IncomingReceived {
            sku,
            receipt,
            qty,
            at,
            ..
        } => (sku, receipt, *qty, at),
        Event::IncomingClosed {
            sku, receipt, at, ..
        } => (sku, receipt, 0, at),
        _ => return None,
    };
    let mut r = projection
        .skus
        .get(sku)?
        .incoming
        .open
        .get(receipt)?
        .clone();
    r.received = r.received.saturating_add(qty.min(r.outstanding()));
    if r.outstanding() == 0 || matches!(event, Event::IncomingClosed { .. }) {
        r.closed_at = Some(*at);
    }
    Some(r)
}
