//! Read-only views of durable state, for GETs and routing.
//!
//! The log's applier thread applies each event here after it is synced (and
//! after the request that caused it is answered: readers wait for
//! `Wal::caught_up`), in log order; replay at start goes through the same
//! `apply`. So a projection is exactly "the log so far": it may lag the
//! actors (which run ahead of the disk) but never shows what is not
//! durable. It is never the source of truth for a decision.
//!
//! A SKU here is kept as numbers (`SkuState::into_numbers`): rows and
//! allocations, not a second copy of its open holds, which the hold
//! records have. `sku_state` makes the whole state (for an actor) from both.
//!
//! DashMap rule: never hold a guard of one map while touching the same map,
//! and never across an `.await`; copy values out.

use crate::core::lifecycle::{FulfillmentId, LifeTarget};
use crate::core::routing::Chain;
use crate::core::sku::incoming::ReceiptId;
use crate::core::sku::FactsError;
use crate::core::{
    order, routing, Event, HoldId, HoldStatus, Millis, Order, OrderId, OrderStatus, ReleaseReason,
    SkuId, SkuState, Warehouse, WarehouseId,
};
use crate::core::{ChannelId, Hold, Horizon, IdempotencyRecord};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

mod tally;
pub use tally::{is_open_work, Mark, OrderTally, Tally};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub hold: Hold,
    pub status: HoldStatus,
    pub order: Option<OrderId>,
    pub closed_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdemTarget {
    Hold(HoldId),
    Order(OrderId),
    /// A lifecycle command's answer: the order, or one of its
    /// fulfilments or returns.
    Life(OrderId, LifeTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemEntry {
    pub request_hash: [u8; 32],
    pub target: IdemTarget,
    pub at: Millis,
}

/// One entity of a snapshot, in memory. It is never written as it is:
/// `wal/schema` writes its facts (a SKU's derived indexes are rebuilt on
/// load) in a versioned format.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapEntry {
    Warehouse(Warehouse),
    Sku(Box<SkuState>),
    /// An open hold of the SKU written just before (the export of a SKU
    /// kept as numbers streams its holds from the hold records).
    SkuHold(Hold),
    Hold(HoldRecord),
    Order(Order),
    Idempotency(String, IdemEntry),
    /// The highest hold and order ids ever logged (records that carried
    /// them may have been forgotten since).
    IdCounters {
        max_hold: u64,
        max_order: u64,
    },
    /// A chain set at run time, for a channel (`None`: the default chain).
    RoutingRules {
        channel: Option<ChannelId>,
        chain: Chain,
    },
}

/// A record the retention rule may forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgettable {
    Hold(HoldId),
    Order(OrderId),
    Key(String),
}

/// Hashing of keys clients choose: seeded per process.
pub type ClientKeys = foldhash::fast::RandomState;
/// Hashing of server-issued sequential ids.
pub type SeqKeys = std::hash::BuildHasherDefault<crate::core::SeqIdHasher>;

#[derive(Default)]
pub struct Projection {
    pub warehouses: DashMap<WarehouseId, Warehouse, ClientKeys>,
    by_priority: RwLock<Arc<Vec<WarehouseId>>>,
    /// The enabled ones of `by_priority`, in its order.
    enabled_by_priority: RwLock<Arc<Vec<WarehouseId>>>,
    /// Every warehouse, by priority then id: rebuilt with `by_priority`
    /// on each warehouse change, so routing shares one copy per change
    /// instead of cloning every warehouse per order.
    all_warehouses: RwLock<Arc<Vec<Warehouse>>>,
    pub skus: DashMap<SkuId, SkuState, ClientKeys>,
    /// Boxed: a table slot is then 16 bytes, not 144, so the table of
    /// millions of holds takes a ninth of the room (most of it empty
    /// slots) and a growing table moves a ninth of the bytes.
    pub holds: DashMap<HoldId, Box<HoldRecord>, SeqKeys>,
    pub orders: DashMap<OrderId, Order, SeqKeys>,
    /// The ids of `orders`, in order: a listing pages over the orders
    /// there are, not over every id ever given (refused placements and
    /// forgotten orders leave gaps).
    order_ids: RwLock<BTreeSet<u64>>,
    /// Each warehouse's fulfilments, oldest first: its work list pages
    /// over these, not over every order.
    fulfillment_ids: RwLock<BTreeMap<WarehouseId, BTreeSet<FulfillmentId>>>,
    pub idempotency: DashMap<String, IdemEntry, ClientKeys>,
    /// Seq of the last event applied.
    pub seq: AtomicU64,
    /// Highest hold and order ids ever logged, so ids stay monotonic
    /// across restarts.
    pub max_hold: AtomicU64,
    pub max_order: AtomicU64,
    /// Holds closed before this time are forgotten, not kept as history
    /// (0 keeps them all). Set by the owner from the clock and
    /// `closed_hold_retention_ms`; see `apply_retention`.
    pub history_horizon: AtomicU64,
    /// Open holds and orders by status, kept as records change.
    pub counts: RecordCounts,
    /// Orders by status and open fulfilments by warehouse, kept as orders
    /// change (the feed's `orders` snapshot and `order_counts`).
    pub order_tally: OrderTally,
    /// Routing chains set at run time (`RoutingRulesSet`), by channel
    /// (`None`: the default chain); what config says is not here.
    pub routing_rules: RwLock<BTreeMap<Option<ChannelId>, Chain>>,
    /// Idempotency keys of incoming receipts the SKUs still keep (a key
    /// goes with its receipt, so snapshots keep it in the receipt).
    pub incoming_keys: DashMap<String, IncomingKey, ClientKeys>,
}

/// What an idempotency key of `POST /v1/stock/incoming` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingKey {
    pub request_hash: [u8; 32],
    pub receipt: ReceiptId,
    pub at: Millis,
}

/// Records by status, counted as the read model changes (for `/metrics`,
/// so a scrape reads three numbers, not millions of records).
#[derive(Debug, Default)]
pub struct RecordCounts {
    pub holds_open: AtomicU64,
    pub orders_placed: AtomicU64,
    pub orders_cancelled: AtomicU64,
}

impl RecordCounts {
    fn order(&self, status: OrderStatus) -> &AtomicU64 {
        match status {
            OrderStatus::Placed => &self.orders_placed,
            OrderStatus::Cancelled => &self.orders_cancelled,
        }
    }

    /// Orders in memory, by status name.
    pub fn orders(&self) -> Vec<(&'static str, u64)> {
        [OrderStatus::Placed, OrderStatus::Cancelled]
            .into_iter()
            .map(|s| (s.as_str(), self.order(s).load(Ordering::Relaxed)))
            .collect()
    }
}

fn incr(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

fn decr(n: &AtomicU64) {
    let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

impl Projection {
    pub fn new() -> Self {
        Self::default()
    }

    /// Warehouse ids by priority, then id.
    pub fn warehouses_by_priority(&self) -> Arc<Vec<WarehouseId>> {
        self.by_priority
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every warehouse, by priority then id, as of the last warehouse
    /// change applied.
    pub fn enabled_warehouses_by_priority(&self) -> Arc<Vec<WarehouseId>> {
        self.enabled_by_priority
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// At most `n` order ids, from `from` down (newest first).
    pub fn order_ids_down_from(&self, from: OrderId, n: usize) -> Vec<OrderId> {
        self.order_ids
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .range(..=from.0)
            .rev()
            .take(n)
            .map(|&id| OrderId(id))
            .collect()
    }

    /// At most `n` of `warehouse`'s fulfilment ids after `after` (all from
    /// the oldest when `None`), oldest first.
    pub fn fulfillment_ids_after(
        &self,
        warehouse: &WarehouseId,
        after: Option<FulfillmentId>,
        n: usize,
    ) -> Vec<FulfillmentId> {
        use std::ops::Bound;
        let index = self
            .fulfillment_ids
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let Some(ids) = index.get(warehouse) else {
            return Vec::new();
        };
        let from = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        ids.range((from, Bound::Unbounded))
            .take(n)
            .copied()
            .collect()
    }

    fn index_fulfillments(&self, order: &Order) {
        if order.life.fulfillments.is_empty() {
            return;
        }
        let mut index = self
            .fulfillment_ids
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for f in &order.life.fulfillments {
            index.entry(f.warehouse.clone()).or_default().insert(f.id);
        }
    }

    fn unindex_fulfillments(&self, order: &Order) {
        if order.life.fulfillments.is_empty() {
            return;
        }
        let mut index = self
            .fulfillment_ids
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for f in &order.life.fulfillments {
            if let Some(ids) = index.get_mut(&f.warehouse) {
                ids.remove(&f.id);
                if ids.is_empty() {
                    index.remove(&f.warehouse);
                }
            }
        }
    }

    fn index_order(&self, id: OrderId) {
        self.order_ids
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.0);
    }

    pub fn warehouses_shared(&self) -> Arc<Vec<Warehouse>> {
        self.all_warehouses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn remember(&self, idem: &Option<IdempotencyRecord>, target: IdemTarget) {
        if let Some(r) = idem {
            self.idempotency.insert(
                r.key.clone(),
                IdemEntry {
                    request_hash: r.request_hash,
                    target,
                    at: r.at,
                },
            );
        }
    }

    fn apply_to_sku(&self, sku: &SkuId, event: &Event) {
        if let Some(mut s) = self.skus.get_mut(sku) {
            s.apply(event);
        }
    }

    fn unreserve(&self, sku: &SkuId, closed: Option<(WarehouseId, u64)>) {
        if let Some((wh, qty)) = closed {
            if let Some(mut s) = self.skus.get_mut(sku) {
                s.sub_reserved(&wh, qty);
            }
        }
    }

    /// Closes an open hold's record; returns where it was and how much it
    /// held, for the SKU's row.
    fn close_hold(
        &self,
        id: HoldId,
        status: HoldStatus,
        order: Option<OrderId>,
        at: Millis,
    ) -> Option<(WarehouseId, u64)> {
        let open = |h: &HoldRecord| h.status == HoldStatus::Active;
        if at < self.history_horizon.load(Ordering::Relaxed) {
            let (_, h) = self.holds.remove_if(&id, |_, h| open(h))?;
            decr(&self.counts.holds_open);
            return Some((h.hold.warehouse, h.hold.qty));
        }
        let mut h = self.holds.get_mut(&id)?;
        if !open(&h) {
            return None;
        }
        decr(&self.counts.holds_open);
        h.status = status;
        h.order = order;
        h.closed_at = Some(at);
        Some((h.hold.warehouse.clone(), h.hold.qty))
    }

    /// The whole state of a SKU, holds included (to start its actor):
    /// its numbers and its open hold records, checked like a snapshot's.
    /// With units reserved it reads every hold record (restarting a stopped
    /// actor); a SKU with none reads none.
    pub fn sku_state(&self, sku: &SkuId) -> Option<Result<SkuState, FactsError>> {
        let numbers = self.skus.get(sku)?.value().clone();
        // Nothing reserved: no open hold, and no scan of every record (the
        // first use of a cold SKU must not cost O(all holds)).
        if numbers.totals().reserved == 0 {
            return Some(SkuState::from_facts(numbers.facts_with(Vec::new())));
        }
        let holds: Vec<Hold> = self
            .holds
            .iter()
            .filter(|h| h.status == HoldStatus::Active && h.hold.sku == *sku)
            .map(|h| h.hold.clone())
            .collect();
        Some(SkuState::from_facts(numbers.facts_with(holds)))
    }

    /// The whole states of the SKUs with open holds (their actors start
    /// at once: expiry timers must run), in one pass over the records.
    pub fn sku_states_with_holds(&self) -> Vec<Result<SkuState, FactsError>> {
        let mut by_sku: HashMap<SkuId, Vec<Hold>> = HashMap::new();
        for h in self.holds.iter() {
            if h.status == HoldStatus::Active {
                by_sku
                    .entry(h.hold.sku.clone())
                    .or_default()
                    .push(h.hold.clone());
            }
        }
        by_sku
            .into_iter()
            .filter_map(|(sku, holds)| {
                let numbers = self.skus.get(&sku)?.value().clone();
                Some(SkuState::from_facts(numbers.facts_with(holds)))
            })
            .collect()
    }

    /// Applies the retention rule (`core::retention`): forgets closed holds,
    /// closed orders and idempotency keys past their horizon, and closes the
    /// door on remembering any more closed holds from before it (replay
    /// included), in one go: the checkpointer on its copy before each
    /// snapshot, start-up after replay. (The live read model does the same
    /// in two steps: `retention_candidates` off the applier's thread, then
    /// `forget` on it.) Returns how many holds, orders and keys went.
    pub fn apply_retention(&self, horizon: &Horizon) -> (usize, usize, usize) {
        self.forget(horizon, &self.retention_candidates(horizon))
    }

    /// What the retention rule would forget at `horizon`: a read, safe on
    /// any thread, so the scan of millions of records never runs on the
    /// log's applier thread.
    pub fn retention_candidates(&self, horizon: &Horizon) -> Vec<Forgettable> {
        let mut out: Vec<Forgettable> = self
            .holds
            .iter()
            .filter(|h| !horizon.keeps_hold(h.closed_at))
            .map(|h| Forgettable::Hold(*h.key()))
            .collect();
        out.extend(
            self.orders
                .iter()
                .filter(|o| !horizon.keeps_order(o))
                .map(|o| Forgettable::Order(*o.key())),
        );
        out.extend(
            self.idempotency
                .iter()
                .filter(|e| !horizon.keeps_key(e.at))
                .map(|e| Forgettable::Key(e.key().clone())),
        );
        out
    }

    /// Forgets those of `list` still past `horizon` (checked again: the log
    /// applier owns the read model, the list was made elsewhere), and closes
    /// the door on remembering closed holds from before it. Applier thread
    /// only; costs O(list). Returns how many holds, orders and keys went.
    pub fn forget(&self, horizon: &Horizon, list: &[Forgettable]) -> (usize, usize, usize) {
        self.history_horizon
            .fetch_max(horizon.holds_closed_before, Ordering::AcqRel);
        let (mut holds, mut orders, mut keys) = (0, 0, 0);
        for f in list {
            match f {
                Forgettable::Hold(id) => {
                    holds += usize::from(
                        self.holds
                            .remove_if(id, |_, h| !horizon.keeps_hold(h.closed_at))
                            .is_some(),
                    );
                }
                Forgettable::Order(id) => {
                    if let Some((_, o)) = self.orders.remove_if(id, |_, o| !horizon.keeps_order(o))
                    {
                        self.order_ids
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id.0);
                        self.unindex_fulfillments(&o);
                        decr(self.counts.order(o.status));
                        self.order_tally.remove(&o);
                        orders += 1;
                    }
                }
                Forgettable::Key(k) => {
                    keys += usize::from(
                        self.idempotency
                            .remove_if(k, |_, e| !horizon.keeps_key(e.at))
                            .is_some(),
                    );
                }
            }
        }
        (holds, orders, keys)
    }

    pub fn apply(&self, seq: u64, event: &Event) {
        self.apply_stock(event);
        self.apply_records(seq, event);
    }

    /// The part of `apply` that touches warehouses, SKU numbers and hold
    /// records (a hold's record says which row it leaves). With
    /// `apply_records` it makes `apply`; the two touch disjoint maps, so
    /// replay runs them on two threads, each in log order.
    pub fn apply_stock(&self, event: &Event) {
        match event {
            Event::WarehouseUpserted { warehouse } => {
                self.warehouses
                    .insert(warehouse.id.clone(), warehouse.clone());
                self.rebuild_priority();
            }
            Event::SkuUpserted { sku, .. } => {
                self.skus
                    .entry(sku.clone())
                    .or_insert_with(|| SkuState::new(sku.clone()))
                    .apply(event);
            }
            Event::StockAdjusted { sku, .. } | Event::SafetyStockSet { sku, .. } => {
                self.apply_to_sku(sku, event)
            }
            Event::HoldCreated { hold, .. } => {
                let old = self.holds.insert(
                    hold.id,
                    Box::new(HoldRecord {
                        hold: hold.clone(),
                        status: HoldStatus::Active,
                        order: None,
                        closed_at: None,
                    }),
                );
                if old.is_none_or(|h| h.status != HoldStatus::Active) {
                    incr(&self.counts.holds_open);
                }
                if let Some(mut s) = self.skus.get_mut(&hold.sku) {
                    s.add_reserved(&hold.warehouse, hold.qty);
                }
            }
            Event::HoldExtended {
                hold, expires_at, ..
            } => {
                if let Some(mut h) = self.holds.get_mut(hold) {
                    h.hold.expires_at = *expires_at;
                }
            }
            Event::HoldReleased {
                sku,
                hold,
                reason,
                at,
            } => {
                let status = match reason {
                    ReleaseReason::Released => HoldStatus::Released,
                    ReleaseReason::Expired => HoldStatus::Expired,
                };
                self.unreserve(sku, self.close_hold(*hold, status, None, *at));
            }
            Event::OrderPlaced {
                order, allocations, ..
            } => {
                for a in allocations {
                    for h in &a.consumed_holds {
                        let closed = self.close_hold(
                            *h,
                            HoldStatus::Consumed,
                            Some(order.id),
                            order.created_at,
                        );
                        self.unreserve(&a.sku, closed);
                    }
                    self.apply_to_sku(&a.sku, event);
                }
            }
            Event::OrderCancelled { skus, .. } => {
                for sku in skus {
                    self.apply_to_sku(sku, event);
                }
            }
            Event::OrderRerouted { from, to, .. } => {
                let mut skus: Vec<&SkuId> = from.iter().chain(to).map(|a| &a.sku).collect();
                skus.sort();
                skus.dedup();
                for sku in skus {
                    self.apply_to_sku(sku, event);
                }
            }
            Event::OrderLinesCancelled { units, .. } => {
                let mut skus: Vec<&SkuId> = units.iter().map(|u| &u.sku).collect();
                skus.sort();
                skus.dedup();
                for sku in skus {
                    self.apply_to_sku(sku, event);
                }
            }
            Event::FulfillmentShipped { parcel, .. } => {
                for (sku, _) in &parcel.lines {
                    self.apply_to_sku(sku, event);
                }
            }
            Event::ReturnReceived {
                lines,
                restock: Some(_),
                ..
            } => {
                for (sku, _) in lines {
                    self.apply_to_sku(sku, event);
                }
            }
            Event::RoutingRulesSet { .. }
            | Event::OrderPayment { .. }
            | Event::OrderHoldSet { .. }
            | Event::FulfillmentStaged { .. }
            | Event::FulfillmentDelivered { .. }
            | Event::ReturnRequested { .. }
            | Event::ReturnReceived { restock: None, .. }
            | Event::ReturnSettled { .. }
            | Event::LifeKeyUsed { .. } => {}
            Event::IncomingExpected { sku, receipt } => {
                self.apply_to_sku(sku, event);
                if let Some(k) = &receipt.idempotency {
                    self.remember_incoming(sku, receipt.n, k);
                }
            }
            Event::IncomingReceived {
                sku,
                receipt,
                forget,
                key,
                ..
            }
            | Event::IncomingClosed {
                sku,
                receipt,
                forget,
                key,
                ..
            } => {
                let keys: Vec<String> = self.skus.get(sku).map_or_else(Vec::new, |s| {
                    forget
                        .iter()
                        .filter_map(|n| s.incoming.receipt(*n))
                        .flat_map(|r| r.idempotency.iter().chain(&r.receive_keys))
                        .map(|k| k.key.clone())
                        .collect()
                });
                self.apply_to_sku(sku, event);
                for k in keys {
                    self.incoming_keys.remove(&k);
                }
                if let Some(k) = key {
                    self.remember_incoming(sku, *receipt, k);
                }
            }
            Event::LowStockSet { sku, .. } => self.apply_to_sku(sku, event),
        }
    }

    fn remember_incoming(&self, sku: &SkuId, n: u64, k: &IdempotencyRecord) {
        self.incoming_keys.insert(
            k.key.clone(),
            IncomingKey {
                request_hash: k.request_hash,
                receipt: ReceiptId {
                    sku: sku.clone(),
                    n,
                },
                at: k.at,
            },
        );
    }

    /// The chains set at run time, by channel (`None`: the default).
    pub fn routing_overrides(&self) -> BTreeMap<Option<ChannelId>, Chain> {
        self.routing_rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_routing_override(&self, channel: &Option<ChannelId>, chain: &Option<Chain>) {
        let mut rules = self
            .routing_rules
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match chain {
            Some(c) => {
                rules.insert(channel.clone(), c.clone());
            }
            None => {
                rules.remove(channel);
            }
        }
    }

    /// The part of `apply` that touches hold ids, orders, idempotency keys,
    /// the id counters and `seq` (never the hold records or SKUs: replay
    /// runs it on another thread than `apply_stock`).
    pub fn apply_records(&self, seq: u64, event: &Event) {
        match event {
            Event::WarehouseUpserted { .. }
            | Event::SkuUpserted { .. }
            | Event::StockAdjusted { .. }
            | Event::SafetyStockSet { .. }
            // Their keys go with the SKU's receipts (`apply_stock`).
            | Event::IncomingExpected { .. }
            | Event::IncomingReceived { .. }
            | Event::IncomingClosed { .. }
            | Event::LowStockSet { .. } => {}
            Event::HoldCreated { hold, idempotency } => {
                self.max_hold.fetch_max(hold.id.0, Ordering::AcqRel);
                self.remember(idempotency, IdemTarget::Hold(hold.id));
            }
            Event::HoldExtended { .. } | Event::HoldReleased { .. } => {}
            Event::OrderPlaced {
                order, idempotency, ..
            } => {
                if let Some(old) = self.orders.insert(order.id, order.clone()) {
                    decr(self.counts.order(old.status));
                    self.order_tally.remove(&old);
                }
                self.order_tally.add(order);
                self.index_order(order.id);
                self.index_fulfillments(order);
                incr(self.counts.order(order.status));
                self.max_order.fetch_max(order.id.0, Ordering::AcqRel);
                self.remember(idempotency, IdemTarget::Order(order.id));
            }
            Event::RoutingRulesSet { channel, chain, .. } => {
                self.set_routing_override(channel, chain)
            }
            Event::LifeKeyUsed { order, key, target } => {
                self.remember(&Some(key.clone()), IdemTarget::Life(*order, *target))
            }
            Event::OrderCancelled { order: id, .. }
            | Event::OrderRerouted { order: id, .. }
            | Event::OrderPayment { order: id, .. }
            | Event::OrderHoldSet { order: id, .. }
            | Event::OrderLinesCancelled { order: id, .. }
            | Event::FulfillmentStaged { order: id, .. }
            | Event::FulfillmentShipped { order: id, .. }
            | Event::FulfillmentDelivered { order: id, .. }
            | Event::ReturnRequested { order: id, .. }
            | Event::ReturnReceived { order: id, .. }
            | Event::ReturnSettled { order: id, .. } => {
                if let Some(mut o) = self.orders.get_mut(id) {
                    let before = o.status;
                    let mark = Mark::of(&o);
                    order::apply(&mut o, event);
                    self.order_tally.moved(&mark, &Mark::of(&o));
                    if o.status != before {
                        decr(self.counts.order(before));
                        incr(self.counts.order(o.status));
                    }
                    if matches!(event, Event::OrderRerouted { .. }) {
                        // A re-route may give another warehouse work.
                        self.index_fulfillments(&o);
                    }
                }
            }
        }
        self.seq.store(seq, Ordering::Release);
    }

    /// Hands out every entity, one by one, for a snapshot. The caller makes
    /// sure nothing applies events meanwhile (the checkpointer owns its copy).
    pub fn export(&self, mut out: impl FnMut(SnapEntry)) {
        out(SnapEntry::IdCounters {
            max_hold: self.max_hold.load(Ordering::Acquire),
            max_order: self.max_order.load(Ordering::Acquire),
        });
        for w in self.warehouses.iter() {
            out(SnapEntry::Warehouse(w.value().clone()));
        }
        // Each SKU's open holds follow it, in id order, from the records.
        let mut open: HashMap<SkuId, Vec<HoldId>> = HashMap::new();
        for h in self.holds.iter() {
            if h.status == HoldStatus::Active {
                open.entry(h.hold.sku.clone()).or_default().push(*h.key());
            }
        }
        for s in self.skus.iter() {
            out(SnapEntry::Sku(Box::new(s.value().clone())));
            let mut ids = open.remove(s.key()).unwrap_or_default();
            ids.sort_unstable();
            for id in ids {
                if let Some(h) = self.holds.get(&id) {
                    out(SnapEntry::SkuHold(h.hold.clone()));
                }
            }
        }
        for h in self.holds.iter() {
            out(SnapEntry::Hold(h.value().as_ref().clone()));
        }
        for o in self.orders.iter() {
            out(SnapEntry::Order(o.value().clone()));
        }
        for i in self.idempotency.iter() {
            out(SnapEntry::Idempotency(i.key().clone(), i.value().clone()));
        }
        for (channel, chain) in self.routing_overrides() {
            out(SnapEntry::RoutingRules { channel, chain });
        }
    }

    /// Takes one entity back from a snapshot; `finish_import` after the last.
    pub fn import(&self, entry: SnapEntry) {
        match entry {
            SnapEntry::Warehouse(w) => {
                self.warehouses.insert(w.id.clone(), w);
            }
            SnapEntry::Sku(s) => {
                for r in s.incoming.receipts() {
                    for k in r.idempotency.iter().chain(&r.receive_keys) {
                        self.remember_incoming(&s.sku, r.n, k);
                    }
                }
                self.skus.insert(s.sku.clone(), s.into_numbers());
            }
            // The hold records have them.
            SnapEntry::SkuHold(_) => {}
            SnapEntry::Hold(h) => {
                self.max_hold.fetch_max(h.hold.id.0, Ordering::AcqRel);
                if h.status == HoldStatus::Active {
                    incr(&self.counts.holds_open);
                }
                self.holds.insert(h.hold.id, Box::new(h));
            }
            SnapEntry::Order(o) => {
                self.max_order.fetch_max(o.id.0, Ordering::AcqRel);
                incr(self.counts.order(o.status));
                self.order_tally.add(&o);
                self.index_order(o.id);
                self.index_fulfillments(&o);
                self.orders.insert(o.id, o);
            }
            SnapEntry::Idempotency(k, e) => {
                self.idempotency.insert(k, e);
            }
            SnapEntry::IdCounters {
                max_hold,
                max_order,
            } => {
                self.max_hold.fetch_max(max_hold, Ordering::AcqRel);
                self.max_order.fetch_max(max_order, Ordering::AcqRel);
            }
            SnapEntry::RoutingRules { channel, chain } => {
                self.set_routing_override(&channel, &Some(chain))
            }
        }
    }

    /// Rebuilds what is derived, and records the seq the snapshot reflects.
    pub fn finish_import(&self, seq: u64) {
        self.rebuild_priority();
        self.seq.store(seq, Ordering::Release);
    }

    fn rebuild_priority(&self) {
        let mut all: Vec<Warehouse> = self.warehouses.iter().map(|w| w.value().clone()).collect();
        routing::by_priority(&mut all);
        *self.by_priority.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(all.iter().map(|w| w.id.clone()).collect());
        // A disabled warehouse takes nothing new: holds without a
        // destination go by this list.
        *self
            .enabled_by_priority
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(
            all.iter()
                .filter(|w| w.routing.enabled)
                .map(|w| w.id.clone())
                .collect(),
        );
        *self
            .all_warehouses
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sku::{LineRequest, ReserveCmd};
    use crate::core::{CustomerId, Location, OrderLine, ShipTo};
    use crate::wal::snapshot;
    use crate::wal::store::MemStore;
    use crate::wal::Position;

    /// A SKU through holds (with and without customers), an extension, a
    /// release, an expiry and an order that consumes a hold: every event
    /// applied both to a `SkuState` and to a read model.
    fn history() -> (SkuState, Projection, u64) {
        let sku = SkuId::parse("hot").unwrap();
        let (w1, w2) = (
            WarehouseId::parse("w1").unwrap(),
            WarehouseId::parse("w2").unwrap(),
        );
        let mut s = SkuState::new(sku.clone());
        let p = Projection::new();
        let mut seq = 0;
        let mut log = |s: &mut SkuState, e: Event| {
            seq += 1;
            s.apply(&e);
            p.apply(seq, &e);
        };
        let e = s.upsert(Some("hot".into()), Some(5));
        log(&mut s, e);
        for (w, n) in [(&w1, 10), (&w2, 4)] {
            let e = s.decide_adjust(w, &crate::core::sku::Adjustment::Delta(n), "r", 100);
            log(&mut s, e.unwrap());
        }
        for i in 1..=6u64 {
            let cmd = ReserveCmd {
                id: HoldId(i),
                qty: 1 + i % 2,
                customer: (i % 3 != 0).then(|| CustomerId::parse(&format!("c{}", i % 2)).unwrap()),
                channel: None,
                now: 100,
                expires_at: 1_000 + i,
                idempotency: None,
                created_by: None,
                require_customer: false,
            };
            let e = s.decide_reserve(cmd, &[w1.clone(), w2.clone()]).unwrap();
            log(&mut s, e);
        }
        let e = s.decide_extend(HoldId(2), 5_000).unwrap();
        log(&mut s, e);
        let e = s.decide_release(HoldId(3), 200).unwrap();
        log(&mut s, e);
        let due = s.expire_due(1_001, 1);
        assert_eq!(due.len(), 1);
        for e in due {
            log(&mut s, e);
        }
        let customer = CustomerId::parse("c0").unwrap();
        let lines = [
            LineRequest {
                qty: 1,
                hold: Some(HoldId(4)),
            },
            LineRequest { qty: 2, hold: None },
        ];
        let prepared = s
            .prepare_order(&customer, &lines, std::slice::from_ref(&w1), 300)
            .unwrap();
        let order = Order {
            id: OrderId(1),
            channel: crate::core::ChannelId::parse("web").unwrap(),
            customer,
            ship_to: ShipTo {
                location: Location { lat: 0.0, lon: 0.0 },
                country: None,
            },
            lines: vec![OrderLine {
                sku: sku.clone(),
                qty: 3,
                reservation: Some(HoldId(4)),
                unit_price: None,
            }],
            shipments: vec![],
            status: crate::core::OrderStatus::Placed,
            created_at: 300,
            updated_at: 300,
            created_by: None,
            routing: None,
            life: Default::default(),
        };
        let placed = Event::OrderPlaced {
            order,
            allocations: vec![prepared.allocation],
            idempotency: None,
        };
        log(&mut s, placed);
        (s, p, seq)
    }

    #[test]
    fn the_read_model_keeps_numbers_and_rebuilds_the_whole_sku() {
        let (s, p, _) = history();
        assert_eq!(s.hold_count(), 3, "three holds left open");
        let numbers = p.skus.get(&s.sku).unwrap().value().clone();
        assert_eq!(
            numbers.hold_count(),
            0,
            "the read model keeps no second copy"
        );
        assert_eq!(numbers.rows, s.rows, "reserved and allocated agree");
        let rebuilt = p.sku_state(&s.sku).unwrap().unwrap();
        assert_eq!(rebuilt, s);
        rebuilt.check_invariants().unwrap();
        let started = p.sku_states_with_holds();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].as_ref().unwrap(), &s);
    }

    #[test]
    fn a_snapshot_of_the_read_model_rebuilds_the_whole_sku() {
        let (s, p, seq) = history();
        let mem = MemStore::new();
        let at = Position {
            next_key: 0,
            next_seq: seq + 1,
        };
        let never = std::sync::atomic::AtomicBool::new(false);
        snapshot::write(&mem, &p, at, 1, 3, &never).unwrap();
        let back = Projection::new();
        snapshot::load(&mem, &back).unwrap();
        assert_eq!(back.skus.get(&s.sku).unwrap().rows, s.rows);
        assert_eq!(back.sku_state(&s.sku).unwrap().unwrap(), s);
    }

    /// `OrderRerouted` moves the order's allocation between rows exactly
    /// (minus `from`, plus `to`), once: applied again it changes nothing.
    #[test]
    fn a_reroute_moves_the_allocation_exactly_and_applies_once() {
        use crate::core::routing::{RoutingTrace, Rule, SplitPolicy};
        let (mut s, p, seq) = history();
        let from = s.allocations[&OrderId(1)].clone();
        let moved = from.lines[0].0.clone();
        let other = WarehouseId::parse(if moved.as_str() == "w1" { "w2" } else { "w1" }).unwrap();
        let mut to = from.clone();
        to.lines[0].1 -= 1;
        to.lines.retain(|(_, q)| *q > 0);
        to.lines.push((other.clone(), 1));
        let trace = RoutingTrace {
            rules: vec![Rule::Nearest],
            split: SplitPolicy::Allow,
            excluded: vec![],
            candidates: vec![],
            deciding_rule: None,
            attempts: 1,
        };
        let e = Event::OrderRerouted {
            order: OrderId(1),
            from: vec![from.clone()],
            to: vec![to.clone()],
            shipments: crate::core::order::shipments(std::slice::from_ref(&to)),
            routing: std::sync::Arc::new(trace.clone()),
            reason: "test".into(),
            at: 400,
        };
        let allocated = |s: &SkuState, w: &WarehouseId| s.rows.get(w).unwrap().allocated;
        let before = (allocated(&s, &moved), allocated(&s, &other));
        s.apply(&e);
        p.apply(seq + 1, &e);
        assert_eq!(allocated(&s, &moved), before.0 - 1);
        assert_eq!(allocated(&s, &other), before.1 + 1);
        assert_eq!(s.allocations[&OrderId(1)], to);
        s.check_invariants().unwrap();
        let rows = s.rows.clone();
        s.apply(&e);
        p.apply(seq + 2, &e);
        assert_eq!(s.rows, rows, "applied twice, it moves nothing more");
        assert_eq!(p.skus.get(&s.sku).unwrap().rows, s.rows);
        let order = p.orders.get(&OrderId(1)).unwrap().clone();
        assert_eq!(order.routing.as_deref(), Some(&trace));
        assert_eq!(order.updated_at, 400);
        assert_eq!(order.shipments, crate::core::order::shipments(&[to]));
    }

    /// Preparing a re-route holds only what a warehouse gains, counts the
    /// order's own units as its own, and refuses a plan the rows no longer
    /// allow with what each row could give the order.
    #[test]
    fn a_reroute_prepares_only_what_it_gains_until_it_is_logged() {
        let (mut s, _, _) = history();
        let order = OrderId(1);
        let from = s.allocations[&order].clone();
        let w = |id: &str| WarehouseId::parse(id).unwrap();
        let (w1, w2, w3) = (w("w1"), w("w2"), w("w3"));
        assert_eq!(from.lines, vec![(w1.clone(), 3)]);
        let free = |s: &SkuState, w: &WarehouseId| s.row(w).available();
        let before = (free(&s, &w1), free(&s, &w2));
        assert!(before.1 >= 2, "{before:?}");
        // A warehouse without the stock: refused with what each row could
        // give the order (w1: its free stock plus the order's own 3).
        match s.prepare_reroute(order, &[(w3.clone(), 3)]) {
            Err(crate::core::Rejection::PlanStale { available }) => {
                assert!(
                    available.contains(&(w1.clone(), before.0 + 3)),
                    "{available:?}"
                );
                assert!(available.contains(&(w2.clone(), before.1)), "{available:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.prepare_reroute(order, &[(w2.clone(), 4)]),
            Err(crate::core::Rejection::ReservationMismatch(_))
        ));
        assert_eq!(
            s.prepare_reroute(OrderId(99), &[(w1.clone(), 1)])
                .map(|_| ()),
            Err(crate::core::Rejection::NotReroutable {
                status: "not allocated"
            })
        );
        // 2 move to w2, 1 stays: w2 holds the 2 it gains as pending, w1
        // keeps the order's 3 until the re-route is logged.
        let (pending, was, to) = s
            .prepare_reroute(order, &[(w2.clone(), 2), (w1.clone(), 1)])
            .unwrap();
        assert_eq!(was, from);
        assert_eq!(to.lines, vec![(w1.clone(), 1), (w2.clone(), 2)]);
        assert_eq!(to.consumed_holds, from.consumed_holds);
        s.add_pending(order, pending);
        assert_eq!((free(&s, &w1), free(&s, &w2)), (before.0, before.1 - 2));
        s.check_invariants().unwrap();
        // Logged: pending goes, the allocation moves.
        s.abort_pending(order);
        s.apply(&Event::OrderRerouted {
            order,
            from: vec![was],
            to: vec![to.clone()],
            shipments: crate::core::order::shipments(std::slice::from_ref(&to)),
            routing: std::sync::Arc::new(crate::core::routing::RoutingTrace {
                rules: vec![],
                split: crate::core::routing::SplitPolicy::Allow,
                excluded: vec![],
                candidates: vec![],
                deciding_rule: None,
                attempts: 1,
            }),
            reason: "t".into(),
            at: 500,
        });
        assert_eq!((free(&s, &w1), free(&s, &w2)), (before.0 + 2, before.1 - 2));
        assert_eq!(s.allocations[&order], to);
        s.check_invariants().unwrap();
    }
}
