//! The state of one SKU across every warehouse: stock rows, open holds,
//! per-customer usage and the allocations of live orders.
//!
//! `decide_*` are pure: they read the state and return the events a command
//! produces, or why it is refused. `apply` folds one event in and never fails.
//! Orders being placed hold stock as *pending* (in memory only, never logged)
//! between `prepare_order` and `commit_pending`/`abort_pending`.

use super::event::Event;
use super::ids::{ChannelId, CustomerId, HoldId, OrderId, SkuId, WarehouseId};
use super::model::{
    Hold, IdempotencyRecord, Millis, OpenHold, ReleaseReason, SkuAllocation, StockRow,
};
use super::Rejection;
use chunked::ChunkMap;
use std::collections::{BTreeMap, HashMap};

pub mod chunked;
pub mod incoming;
#[cfg(test)]
mod incoming_tests;
pub mod pools;
#[cfg(test)]
mod pools_tests;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjustment {
    Delta(i64),
    SetOnHand { on_hand: u64, expected: Option<u64> },
    SetSafetyStock(u64),
}

#[derive(Debug, Clone)]
pub struct ReserveCmd {
    pub id: HoldId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub now: Millis,
    pub expires_at: Millis,
    pub idempotency: Option<IdempotencyRecord>,
    /// The API key asking, by name: recorded in the hold.
    pub created_by: Option<String>,
    /// Whether a SKU with a per-customer limit refuses a reservation that
    /// names no customer (`require_customer_on_limited_skus`): without one
    /// the limit cannot be counted. A rule for new commands only; replay
    /// applies logged holds as they are.
    pub require_customer: bool,
}

/// One line of an order as one SKU sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    pub qty: u64,
    pub hold: Option<HoldId>,
}

/// Where an order's free (non-hold) units come from.
#[derive(Debug, Clone, Copy)]
enum FreeUnits<'a> {
    /// One warehouse that covers them all (first in this order), else
    /// several in this order.
    Preference(&'a [WarehouseId]),
    /// Exactly these (warehouse, quantity).
    Planned(&'a [(WarehouseId, u64)]),
}

/// What `prepare_order` promises; turned into the log by the order's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub allocation: SkuAllocation,
    /// Stock taken from free availability (not from holds), per warehouse.
    from_free: Vec<(WarehouseId, u64)>,
    usage_increase: u64,
}

/// Snapshots keep its facts ([`SkuFacts`]) and [`SkuState::from_facts`]
/// rebuilds the rest; what is in flight (`pending` and what goes with it)
/// is never durable.
///
/// Every collection that grows with holds, customers or orders is ordered
/// and grows a piece at a time: a hot SKU holds millions of holds, and a
/// hash map that outgrows its table rehashes all of them at once, on the
/// actor's thread, while requests wait. Holds and their expiry order are
/// [`ChunkMap`]s (keys arrive mostly ascending; see there), the rest
/// B-trees: O(log n) per change, no step that touches every entry.
#[derive(Debug, Clone)]
pub struct SkuState {
    pub sku: SkuId,
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    pub rows: BTreeMap<WarehouseId, StockRow>,
    holds: ChunkMap<HoldId, OpenHold>,
    expiries: ChunkMap<(Millis, HoldId), ()>,
    /// Units each customer has in open holds and live orders.
    pub usage: UsageMap,
    /// Allocations of orders that are not cancelled.
    pub allocations: BTreeMap<OrderId, SkuAllocation>,
    pending: BTreeMap<OrderId, Prepared>,
    locked_holds: BTreeMap<HoldId, OrderId>,
    pending_usage: UsageMap,
    /// Each order's last stock step in the facts this state was rebuilt
    /// from (empty for a state built by applying events): a step at or
    /// below it is in the numbers already. In memory only, and not part
    /// of the state's value (equality ignores it).
    loaded_steps: BTreeMap<OrderId, u64>,
    /// Incoming receipts and low-stock thresholds (`incoming`).
    pub incoming: incoming::IncomingState,
}

impl PartialEq for SkuState {
    fn eq(&self, o: &Self) -> bool {
        self.sku == o.sku
            && self.name == o.name
            && self.per_customer_limit == o.per_customer_limit
            && self.rows == o.rows
            && self.holds == o.holds
            && self.expiries == o.expiries
            && self.usage == o.usage
            && self.allocations == o.allocations
            && self.pending == o.pending
            && self.locked_holds == o.locked_holds
            && self.pending_usage == o.pending_usage
            && self.incoming == o.incoming
    }
}

/// One stock row as a snapshot keeps it: `reserved` is not here, as it is
/// the sum of the row's open holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFacts {
    pub on_hand: u64,
    /// Must equal the sum of the SKU's allocations in this row.
    pub allocated: u64,
    pub safety_stock: u64,
}

/// What a SKU's durable state is made of. Everything else (reserved per
/// row, per-customer usage, the expiry order) is derived from these by
/// [`SkuState::from_facts`].
#[derive(Debug, Clone, PartialEq)]
pub struct SkuFacts {
    pub sku: SkuId,
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    pub rows: Vec<(WarehouseId, RowFacts)>,
    /// Open holds.
    pub holds: Vec<Hold>,
    /// Allocations of orders that are not cancelled.
    pub allocations: Vec<(OrderId, SkuAllocation)>,
    /// Incoming receipts and low-stock thresholds.
    pub incoming: incoming::IncomingState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sku {sku}: inconsistent facts: {reason}")]
pub struct FactsError {
    pub sku: SkuId,
    pub reason: String,
}

/// Units per customer: one entry per customer with open holds or live
/// orders, so millions in a big sale (ordered, so it never rehashes).
pub type UsageMap = BTreeMap<CustomerId, u64>;

fn add_usage(map: &mut UsageMap, c: &CustomerId, q: u64) {
    if q > 0 {
        let e = map.entry(c.clone()).or_insert(0);
        *e = e.saturating_add(q);
    }
}

fn sub_usage(map: &mut UsageMap, c: &CustomerId, q: u64) {
    if let Some(e) = map.get_mut(c) {
        *e = e.saturating_sub(q);
        if *e == 0 {
            map.remove(c);
        }
    }
}

impl SkuState {
    pub fn new(sku: SkuId) -> Self {
        Self {
            sku,
            name: None,
            per_customer_limit: None,
            rows: BTreeMap::new(),
            holds: ChunkMap::new(),
            expiries: ChunkMap::new(),
            usage: UsageMap::default(),
            allocations: BTreeMap::new(),
            pending: BTreeMap::new(),
            locked_holds: BTreeMap::new(),
            pending_usage: UsageMap::default(),
            loaded_steps: BTreeMap::new(),
            incoming: incoming::IncomingState::default(),
        }
    }

    /// Whether an order's stock step is already in the numbers: at or
    /// below the step of the facts this state was rebuilt from. Steps of
    /// one order reach a live SKU from separate tasks, in any order; each
    /// reaches one actor once, but an actor rebuilt from the read model
    /// may be handed one the read model already had.
    fn step_applied(&self, order: &OrderId, step: u64) -> bool {
        self.loaded_steps.get(order).is_some_and(|&l| step <= l)
    }

    /// Notes `step` on the order's allocation (the highest applied, which
    /// facts keep).
    fn note_step(&mut self, order: &OrderId, step: u64) {
        if let Some(a) = self.allocations.get_mut(order) {
            a.step = a.step.max(step);
        }
    }

    /// Rebuilds a SKU's state from its facts: the derived indexes are
    /// computed, not trusted, and the result must pass every invariant
    /// (so a stored `allocated` that disagrees with the allocations, or a
    /// hold of another SKU, is refused).
    pub fn from_facts(facts: SkuFacts) -> Result<Self, FactsError> {
        let mut s = SkuState::new(facts.sku);
        let fail = |s: &SkuState, reason: String| FactsError {
            sku: s.sku.clone(),
            reason,
        };
        s.name = facts.name;
        s.per_customer_limit = facts.per_customer_limit;
        s.incoming = facts.incoming;
        for (wh, r) in facts.rows {
            let row = StockRow {
                on_hand: r.on_hand,
                reserved: 0,
                allocated: r.allocated,
                safety_stock: r.safety_stock,
                pending: 0,
            };
            if s.rows.insert(wh.clone(), row).is_some() {
                return Err(fail(&s, format!("row {wh} appears twice")));
            }
        }
        for hold in facts.holds {
            if hold.sku != s.sku {
                return Err(fail(&s, format!("hold {} is of sku {}", hold.id, hold.sku)));
            }
            let Some(row) = s.rows.get_mut(&hold.warehouse) else {
                return Err(fail(
                    &s,
                    format!(
                        "hold {} is in {}, which has no row",
                        hold.id, hold.warehouse
                    ),
                ));
            };
            row.reserved = row.reserved.saturating_add(hold.qty);
            if let Some(c) = &hold.customer {
                add_usage(&mut s.usage, c, hold.qty);
            }
            s.expiries.insert((hold.expires_at, hold.id), ());
            if s.holds.insert(hold.id, OpenHold::from(&hold)).is_some() {
                return Err(fail(&s, format!("hold {} appears twice", hold.id)));
            }
        }
        for (order, a) in facts.allocations {
            if a.sku != s.sku {
                return Err(fail(
                    &s,
                    format!("allocation of {order} is of sku {}", a.sku),
                ));
            }
            if let Some((wh, _)) = a.lines.iter().find(|(wh, _)| !s.rows.contains_key(wh)) {
                return Err(fail(
                    &s,
                    format!("allocation of {order} is in {wh}, which has no row"),
                ));
            }
            add_usage(&mut s.usage, &a.customer, a.usage());
            if a.step > 0 {
                s.loaded_steps.insert(order, a.step);
            }
            if s.allocations.insert(order, a).is_some() {
                return Err(fail(&s, format!("allocation of {order} appears twice")));
            }
        }
        s.check_invariants().map_err(|reason| fail(&s, reason))?;
        Ok(s)
    }

    /// The read model's form of a SKU: its numbers (rows with `reserved`,
    /// allocations), not its holds, which its hold records already keep.
    /// [`SkuState::facts_with`] makes the whole state again from them.
    pub fn into_numbers(mut self) -> Self {
        self.holds = ChunkMap::new();
        self.expiries = ChunkMap::new();
        self.usage = UsageMap::new();
        for a in self.allocations.values() {
            add_usage(&mut self.usage, &a.customer, a.usage());
        }
        self
    }

    /// A hold opened in `warehouse`, for a SKU kept as numbers only.
    pub fn add_reserved(&mut self, warehouse: &WarehouseId, qty: u64) {
        self.with_row(warehouse, |row| {
            row.reserved = row.reserved.saturating_add(qty)
        });
    }

    /// A hold closed in `warehouse`, for a SKU kept as numbers only.
    pub fn sub_reserved(&mut self, warehouse: &WarehouseId, qty: u64) {
        if let Some(row) = self.rows.get_mut(warehouse) {
            row.reserved = row.reserved.saturating_sub(qty);
        }
    }

    /// This SKU's facts with `holds` as its open holds (for a SKU kept as
    /// numbers only, from its hold records).
    pub fn facts_with(&self, holds: Vec<Hold>) -> SkuFacts {
        SkuFacts {
            sku: self.sku.clone(),
            name: self.name.clone(),
            per_customer_limit: self.per_customer_limit,
            rows: self
                .rows
                .iter()
                .map(|(w, r)| {
                    let facts = RowFacts {
                        on_hand: r.on_hand,
                        allocated: r.allocated,
                        safety_stock: r.safety_stock,
                    };
                    (w.clone(), facts)
                })
                .collect(),
            holds,
            allocations: self
                .allocations
                .iter()
                .map(|(o, a)| (*o, a.clone()))
                .collect(),
            incoming: self.incoming.clone(),
        }
    }

    /// Changes the row of `warehouse`, created empty if missing (without
    /// cloning the id when it exists: this is on the replay hot path).
    fn with_row(&mut self, warehouse: &WarehouseId, f: impl FnOnce(&mut StockRow)) {
        if let Some(row) = self.rows.get_mut(warehouse) {
            return f(row);
        }
        let mut row = StockRow::default();
        f(&mut row);
        self.rows.insert(warehouse.clone(), row);
    }

    fn sku_id(&self) -> SkuId {
        self.sku.clone()
    }

    /// The open hold `id`, whole.
    pub fn hold(&self, id: HoldId) -> Option<Hold> {
        self.holds.get(&id).map(|h| h.to_hold(id, &self.sku))
    }

    /// Open holds in id order, as the SKU keeps them.
    pub fn open_holds(&self) -> impl Iterator<Item = (HoldId, &OpenHold)> + '_ {
        self.holds.iter().map(|(id, h)| (*id, h))
    }

    /// Open holds in id order, whole.
    pub fn holds(&self) -> impl Iterator<Item = Hold> + '_ {
        self.open_holds().map(|(id, h)| h.to_hold(id, &self.sku))
    }

    pub fn hold_count(&self) -> usize {
        self.holds.len()
    }

    pub fn row(&self, warehouse: &WarehouseId) -> StockRow {
        self.rows.get(warehouse).cloned().unwrap_or_default()
    }

    pub fn totals(&self) -> StockRow {
        let mut t = StockRow::default();
        for r in self.rows.values() {
            t.on_hand = t.on_hand.saturating_add(r.on_hand);
            t.reserved = t.reserved.saturating_add(r.reserved);
            t.allocated = t.allocated.saturating_add(r.allocated);
            t.safety_stock = t.safety_stock.saturating_add(r.safety_stock);
            t.pending = t.pending.saturating_add(r.pending);
        }
        t
    }

    pub fn available_total(&self) -> u64 {
        self.rows.values().map(StockRow::available).sum()
    }

    fn used_by(&self, c: &CustomerId) -> u64 {
        self.usage.get(c).copied().unwrap_or(0) + self.pending_usage.get(c).copied().unwrap_or(0)
    }

    fn check_limit(&self, customer: &CustomerId, more: u64) -> Result<(), Rejection> {
        if let Some(limit) = self.per_customer_limit {
            let used = self.used_by(customer);
            if used.saturating_add(more) > limit {
                return Err(Rejection::PurchaseLimitExceeded { limit, used });
            }
        }
        Ok(())
    }

    /// The earliest expiry of a hold no order is consuming, for the expiry
    /// timer. (A consumed hold leaves with its order; an aborted order
    /// unlocks it and the timer is set again.)
    pub fn next_expiry(&self) -> Option<Millis> {
        self.expiries
            .keys()
            .find(|(_, id)| !self.locked_holds.contains_key(id))
            .map(|(t, _)| *t)
    }

    pub fn upsert(&self, name: Option<String>, per_customer_limit: Option<u64>) -> Event {
        Event::SkuUpserted {
            sku: self.sku_id(),
            name,
            per_customer_limit,
        }
    }

    /// A partial update merged into the SKU as it is: a field `None` keeps
    /// its value, `Some(None)` clears it, `Some(Some(v))` sets it. Logged as
    /// the whole result (the event a replacement logs), so the merge is
    /// decided here, by the SKU's owner, and replay needs no merge.
    pub fn patch(
        &self,
        name: Option<Option<String>>,
        per_customer_limit: Option<Option<u64>>,
    ) -> Event {
        self.upsert(
            name.unwrap_or_else(|| self.name.clone()),
            per_customer_limit.unwrap_or(self.per_customer_limit),
        )
    }

    pub fn decide_adjust(
        &self,
        warehouse: &WarehouseId,
        adjustment: &Adjustment,
        reason: &str,
        on_hand_max: u64,
    ) -> Result<Event, Rejection> {
        let row = self.row(warehouse);
        let sku = self.sku_id();
        let target: i128 = match *adjustment {
            Adjustment::SetSafetyStock(safety_stock) => {
                if safety_stock > on_hand_max {
                    return Err(Rejection::QuantityTooLarge { max: on_hand_max });
                }
                return Ok(Event::SafetyStockSet {
                    sku,
                    warehouse: warehouse.clone(),
                    safety_stock,
                    reason: reason.to_owned(),
                });
            }
            Adjustment::Delta(d) => i128::from(row.on_hand) + i128::from(d),
            Adjustment::SetOnHand { on_hand, expected } => {
                if expected.is_some_and(|e| e != row.on_hand) {
                    return Err(Rejection::StockChanged {
                        on_hand: row.on_hand,
                    });
                }
                i128::from(on_hand)
            }
        };
        if target > i128::from(on_hand_max) {
            return Err(Rejection::QuantityTooLarge { max: on_hand_max });
        }
        if target < i128::from(row.committed()) {
            return Err(Rejection::BelowCommitted {
                on_hand: row.on_hand,
                committed: row.committed(),
            });
        }
        let delta = i64::try_from(target - i128::from(row.on_hand))
            .map_err(|_| Rejection::QuantityTooLarge { max: on_hand_max })?;
        Ok(Event::StockAdjusted {
            sku,
            warehouse: warehouse.clone(),
            delta,
            reason: reason.to_owned(),
        })
    }

    /// A hold comes from one warehouse: the first in `preference` that can
    /// cover all of it.
    pub fn decide_reserve(
        &self,
        cmd: ReserveCmd,
        preference: &[WarehouseId],
    ) -> Result<Event, Rejection> {
        match (&cmd.customer, self.per_customer_limit) {
            (Some(c), _) => self.check_limit(c, cmd.qty)?,
            (None, Some(limit)) if cmd.require_customer => {
                return Err(Rejection::CustomerRequired { limit })
            }
            (None, _) => {}
        }
        let mut best = 0;
        for wh in preference {
            let Some(row) = self.rows.get(wh) else {
                continue;
            };
            let available = row.available();
            if available >= cmd.qty {
                return Ok(Event::HoldCreated {
                    hold: Hold {
                        id: cmd.id,
                        sku: self.sku_id(),
                        warehouse: wh.clone(),
                        qty: cmd.qty,
                        customer: cmd.customer,
                        channel: cmd.channel,
                        created_at: cmd.now,
                        expires_at: cmd.expires_at,
                        created_by: cmd.created_by,
                    },
                    idempotency: cmd.idempotency,
                });
            }
            best = best.max(available);
        }
        Err(Rejection::InsufficientStock { available: best })
    }

    fn open_hold(&self, id: HoldId) -> Result<&OpenHold, Rejection> {
        let hold = self.holds.get(&id).ok_or(Rejection::HoldNotActive(id))?;
        if self.locked_holds.contains_key(&id) {
            return Err(Rejection::HoldInUse(id));
        }
        Ok(hold)
    }

    /// Decides reservations in order, each seeing the ones before it: the
    /// accepted ones are applied at once. They must then be logged, or
    /// taken back with `undo_holds` if they cannot be.
    pub fn reserve_many(
        &mut self,
        cmds: Vec<ReserveCmd>,
        preference: &[WarehouseId],
    ) -> Vec<Result<Event, Rejection>> {
        cmds.into_iter()
            .map(|cmd| {
                let event = self.decide_reserve(cmd, preference)?;
                self.apply(&event);
                Ok(event)
            })
            .collect()
    }

    /// Takes back holds applied by `reserve_many` that were never logged.
    pub fn undo_holds(&mut self, ids: &[HoldId]) {
        for id in ids.iter().rev() {
            self.remove_hold(*id);
        }
    }

    pub fn decide_extend(&self, id: HoldId, expires_at: Millis) -> Result<Event, Rejection> {
        self.open_hold(id)?;
        Ok(Event::HoldExtended {
            sku: self.sku_id(),
            hold: id,
            expires_at,
        })
    }

    pub fn decide_release(&self, id: HoldId, now: Millis) -> Result<Event, Rejection> {
        self.open_hold(id)?;
        Ok(Event::HoldReleased {
            sku: self.sku_id(),
            hold: id,
            reason: ReleaseReason::Released,
            at: now,
        })
    }

    /// Holds whose time is up, oldest first, at most `max`. Holds an order is
    /// consuming right now are left to the order.
    pub fn expire_due(&self, now: Millis, max: usize) -> Vec<Event> {
        self.expiries
            .keys()
            .take_while(|(t, _)| *t <= now)
            .filter(|(_, id)| !self.locked_holds.contains_key(id))
            .take(max)
            .map(|(_, id)| Event::HoldReleased {
                sku: self.sku_id(),
                hold: *id,
                reason: ReleaseReason::Expired,
                at: now,
            })
            .collect()
    }

    /// Decides this SKU's part of an order. Lines naming a hold take from
    /// it; the rest come from one warehouse if one can cover them all (first
    /// in `preference`), else from several in preference order.
    pub fn prepare_order(
        &self,
        customer: &CustomerId,
        lines: &[LineRequest],
        preference: &[WarehouseId],
        now: Millis,
    ) -> Result<Prepared, Rejection> {
        self.prepare(customer, lines, FreeUnits::Preference(preference), now)
    }

    /// Like [`Self::prepare_order`], but the free (non-hold) units come
    /// exactly from `planned` (warehouse, quantity), as routing planned
    /// them. A row that no longer has its planned quantity refuses with
    /// [`Rejection::PlanStale`], which carries what every row has now so
    /// the order can be planned again. `planned` must add up to the lines'
    /// free units.
    pub fn prepare_planned(
        &self,
        customer: &CustomerId,
        lines: &[LineRequest],
        planned: &[(WarehouseId, u64)],
        now: Millis,
    ) -> Result<Prepared, Rejection> {
        self.prepare(customer, lines, FreeUnits::Planned(planned), now)
    }

    /// What every row has available now, by warehouse.
    pub fn available_by_warehouse(&self) -> Vec<(WarehouseId, u64)> {
        self.rows
            .iter()
            .map(|(w, r)| (w.clone(), r.available()))
            .collect()
    }

    /// This SKU's part of re-routing `order`: its allocation moves to
    /// exactly `planned` (warehouse, quantity), the same units in total.
    /// The units a warehouse gains are taken from its free stock and held
    /// as pending until the re-route is logged ([`Self::add_pending`]);
    /// what the order already has there counts as its own. Returns the
    /// pending part, the allocation now (`from`) and the one planned
    /// (`to`). A row that no longer has what the plan counted on refuses
    /// with [`Rejection::PlanStale`], carrying what each row could give
    /// this order (its free stock plus the order's own).
    pub fn prepare_reroute(
        &self,
        order: OrderId,
        planned: &[(WarehouseId, u64)],
    ) -> Result<(Prepared, SkuAllocation, SkuAllocation), Rejection> {
        let from = self
            .allocations
            .get(&order)
            .ok_or(Rejection::NotReroutable {
                status: "not allocated",
            })?;
        let mut to: BTreeMap<WarehouseId, u64> = BTreeMap::new();
        for (wh, q) in planned.iter().filter(|(_, q)| *q > 0) {
            let e = to.entry(wh.clone()).or_insert(0);
            *e = e.saturating_add(*q);
        }
        let total = to.values().fold(0u64, |a, q| a.saturating_add(*q));
        if total != from.qty() {
            return Err(Rejection::ReservationMismatch(format!(
                "the plan moves {total} units of sku {} but the order has {}",
                self.sku,
                from.qty()
            )));
        }
        let own = |wh: &WarehouseId| {
            from.lines
                .iter()
                .filter(|(w, _)| w == wh)
                .map(|(_, q)| *q)
                .sum::<u64>()
        };
        let mut gained: Vec<(WarehouseId, u64)> = Vec::new();
        for (wh, q) in &to {
            let more = q.saturating_sub(own(wh));
            if more > 0 {
                gained.push((wh.clone(), more));
            }
        }
        let avail = |wh: &WarehouseId| self.rows.get(wh).map_or(0, StockRow::available);
        if gained.iter().any(|(wh, q)| avail(wh) < *q) {
            let mut available = self.available_by_warehouse();
            for (wh, q) in &mut available {
                *q = q.saturating_add(own(wh));
            }
            return Err(Rejection::PlanStale { available });
        }
        let to = SkuAllocation {
            sku: from.sku.clone(),
            customer: from.customer.clone(),
            lines: to.into_iter().collect(),
            consumed_holds: from.consumed_holds.clone(),
            shipped: from.shipped,
            step: from.step,
        };
        let pending = Prepared {
            // Nothing is consumed or counted again: the order's holds and
            // purchases are already in.
            allocation: SkuAllocation {
                consumed_holds: Vec::new(),
                ..to.clone()
            },
            from_free: gained,
            usage_increase: 0,
        };
        Ok((pending, from.clone(), to))
    }

    fn prepare(
        &self,
        customer: &CustomerId,
        lines: &[LineRequest],
        free: FreeUnits<'_>,
        now: Millis,
    ) -> Result<Prepared, Rejection> {
        let mut from_holds: Vec<(WarehouseId, u64)> = Vec::new();
        let mut consumed: Vec<HoldId> = Vec::new();
        let mut credited: u64 = 0;
        let mut free_qty: u64 = 0;
        let mut total: u64 = 0;
        for line in lines {
            total = total
                .checked_add(line.qty)
                .ok_or(Rejection::QuantityTooLarge { max: u64::MAX })?;
            let Some(hid) = line.hold else {
                free_qty = free_qty.saturating_add(line.qty);
                continue;
            };
            let hold = self.open_hold(hid)?;
            if hold.expires_at <= now {
                return Err(Rejection::HoldNotActive(hid));
            }
            if consumed.contains(&hid) {
                return Err(Rejection::ReservationMismatch(format!(
                    "reservation {hid} is named by more than one line"
                )));
            }
            if hold.customer.as_ref().is_some_and(|c| c != customer) {
                return Err(Rejection::ReservationMismatch(format!(
                    "reservation {hid} belongs to another customer"
                )));
            }
            if line.qty > hold.qty {
                return Err(Rejection::ReservationMismatch(format!(
                    "line asks {} but reservation {hid} holds {}",
                    line.qty, hold.qty
                )));
            }
            if hold.customer.is_some() {
                credited += hold.qty;
            }
            consumed.push(hid);
            from_holds.push((hold.warehouse.clone(), line.qty));
        }

        let usage_increase = total.saturating_sub(credited);
        self.check_limit(customer, usage_increase)?;

        let from_free = match free {
            FreeUnits::Preference(preference) => self.pick_free(free_qty, preference)?,
            FreeUnits::Planned(planned) => self.take_planned(free_qty, planned)?,
        };
        let mut merged: BTreeMap<WarehouseId, u64> = BTreeMap::new();
        for (wh, q) in from_holds.iter().chain(from_free.iter()) {
            *merged.entry(wh.clone()).or_insert(0) += q;
        }
        Ok(Prepared {
            allocation: SkuAllocation {
                sku: self.sku_id(),
                customer: customer.clone(),
                lines: merged.into_iter().collect(),
                consumed_holds: consumed,
                shipped: 0,
                step: 0,
            },
            from_free,
            usage_increase,
        })
    }

    /// Exactly `planned`, merged by warehouse; every row must still have
    /// its part.
    fn take_planned(
        &self,
        qty: u64,
        planned: &[(WarehouseId, u64)],
    ) -> Result<Vec<(WarehouseId, u64)>, Rejection> {
        let mut merged: BTreeMap<&WarehouseId, u64> = BTreeMap::new();
        for (wh, q) in planned.iter().filter(|(_, q)| *q > 0) {
            let e = merged.entry(wh).or_insert(0);
            *e = e.saturating_add(*q);
        }
        let total = merged.values().fold(0u64, |a, q| a.saturating_add(*q));
        if total != qty {
            return Err(Rejection::ReservationMismatch(format!(
                "the plan takes {total} units of sku {} but the lines ask {qty}",
                self.sku
            )));
        }
        let avail = |wh: &WarehouseId| self.rows.get(wh).map_or(0, StockRow::available);
        if merged.iter().any(|(wh, q)| avail(wh) < *q) {
            return Err(Rejection::PlanStale {
                available: self.available_by_warehouse(),
            });
        }
        Ok(merged.into_iter().map(|(w, q)| (w.clone(), q)).collect())
    }

    fn pick_free(
        &self,
        qty: u64,
        preference: &[WarehouseId],
    ) -> Result<Vec<(WarehouseId, u64)>, Rejection> {
        if qty == 0 {
            return Ok(Vec::new());
        }
        let avail = |wh: &WarehouseId| self.rows.get(wh).map_or(0, StockRow::available);
        if let Some(wh) = preference.iter().find(|wh| avail(wh) >= qty) {
            return Ok(vec![(wh.clone(), qty)]);
        }
        let mut left = qty;
        let mut picked = Vec::new();
        for wh in preference {
            let take = avail(wh).min(left);
            if take > 0 {
                picked.push((wh.clone(), take));
                left -= take;
            }
            if left == 0 {
                return Ok(picked);
            }
        }
        Err(Rejection::InsufficientStock {
            available: qty - left,
        })
    }

    /// Holds what `prepare_order` promised until the order commits or aborts.
    pub fn add_pending(&mut self, order: OrderId, prepared: Prepared) {
        for (wh, q) in &prepared.from_free {
            let row = self.rows.entry(wh.clone()).or_default();
            row.pending = row.pending.saturating_add(*q);
        }
        for h in &prepared.allocation.consumed_holds {
            self.locked_holds.insert(*h, order);
        }
        add_usage(
            &mut self.pending_usage,
            &prepared.allocation.customer,
            prepared.usage_increase,
        );
        self.pending.insert(order, prepared);
    }

    /// Drops what an order had promised; returns it.
    pub fn abort_pending(&mut self, order: OrderId) -> Option<Prepared> {
        let prepared = self.pending.remove(&order)?;
        for (wh, q) in &prepared.from_free {
            if let Some(row) = self.rows.get_mut(wh) {
                row.pending = row.pending.saturating_sub(*q);
            }
        }
        for h in &prepared.allocation.consumed_holds {
            self.locked_holds.remove(h);
        }
        sub_usage(
            &mut self.pending_usage,
            &prepared.allocation.customer,
            prepared.usage_increase,
        );
        Some(prepared)
    }

    pub fn pending_orders(&self) -> usize {
        self.pending.len()
    }

    /// Folds one logged event into the state. Never fails: events were
    /// checked when they were decided.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::SkuUpserted {
                name,
                per_customer_limit,
                ..
            } => {
                self.name.clone_from(name);
                self.per_customer_limit = *per_customer_limit;
            }
            Event::StockAdjusted {
                warehouse, delta, ..
            } => self.with_row(warehouse, |row| {
                row.on_hand = row.on_hand.saturating_add_signed(*delta);
                debug_assert!(row.committed() <= row.on_hand);
            }),
            Event::SafetyStockSet {
                warehouse,
                safety_stock,
                ..
            } => self.with_row(warehouse, |row| row.safety_stock = *safety_stock),
            Event::HoldCreated { hold, .. } => {
                self.with_row(&hold.warehouse, |row| {
                    row.reserved = row.reserved.saturating_add(hold.qty);
                    debug_assert!(row.committed() <= row.on_hand);
                });
                if let Some(c) = &hold.customer {
                    add_usage(&mut self.usage, c, hold.qty);
                }
                self.expiries.insert((hold.expires_at, hold.id), ());
                self.holds.insert(hold.id, OpenHold::from(hold));
            }
            Event::HoldExtended {
                hold, expires_at, ..
            } => {
                if let Some(h) = self.holds.get_mut(hold) {
                    self.expiries.remove(&(h.expires_at, *hold));
                    h.expires_at = *expires_at;
                    self.expiries.insert((h.expires_at, *hold), ());
                }
            }
            Event::HoldReleased { hold, .. } => self.remove_hold(*hold),
            Event::OrderPlaced {
                order, allocations, ..
            } => {
                let sku = self.sku.clone();
                for a in allocations.iter().filter(|a| a.sku == sku) {
                    for h in &a.consumed_holds {
                        self.remove_hold(*h);
                    }
                    for (wh, q) in &a.lines {
                        self.with_row(wh, |row| {
                            row.allocated = row.allocated.saturating_add(*q);
                            debug_assert!(row.committed() <= row.on_hand);
                        });
                    }
                    add_usage(&mut self.usage, &a.customer, a.usage());
                    self.allocations.insert(order.id, a.clone());
                }
            }
            Event::OrderCancelled { order, .. } => {
                if let Some(a) = self.allocations.remove(order) {
                    for (wh, q) in &a.lines {
                        if let Some(row) = self.rows.get_mut(wh) {
                            row.allocated = row.allocated.saturating_sub(*q);
                        }
                    }
                    sub_usage(&mut self.usage, &a.customer, a.usage());
                }
            }
            Event::OrderRerouted {
                order, from, to, ..
            } => {
                let sku = &self.sku;
                let from = from.iter().find(|a| &a.sku == sku);
                let to = to.iter().find(|a| &a.sku == sku).cloned();
                // Only an allocation that is still `from` moves: applied
                // twice, or to a SKU the order left, it changes nothing.
                let current = self.allocations.get(order);
                if from.is_none() || current != from {
                    return;
                }
                if let Some(a) = self.allocations.remove(order) {
                    for (wh, q) in &a.lines {
                        if let Some(row) = self.rows.get_mut(wh) {
                            row.allocated = row.allocated.saturating_sub(*q);
                        }
                    }
                    sub_usage(&mut self.usage, &a.customer, a.usage());
                }
                if let Some(a) = to {
                    for (wh, q) in &a.lines {
                        self.with_row(wh, |row| {
                            row.allocated = row.allocated.saturating_add(*q);
                            debug_assert!(row.committed() <= row.on_hand);
                        });
                    }
                    add_usage(&mut self.usage, &a.customer, a.usage());
                    self.allocations.insert(*order, a);
                }
            }
            Event::OrderLinesCancelled {
                order, step, units, ..
            } => {
                if !units.iter().any(|u| u.sku == self.sku) || self.step_applied(order, *step) {
                    return;
                }
                let sku = &self.sku;
                let Some(a) = self.allocations.get_mut(order) else {
                    return;
                };
                a.step = a.step.max(*step);
                for u in units.iter().filter(|u| &u.sku == sku) {
                    let took = a.take(&u.warehouse, u.qty);
                    if let Some(row) = self.rows.get_mut(&u.warehouse) {
                        row.allocated = row.allocated.saturating_sub(took);
                    }
                    sub_usage(&mut self.usage, &a.customer, took);
                }
                if a.lines.is_empty() && a.shipped == 0 {
                    self.allocations.remove(order);
                }
            }
            Event::FulfillmentShipped {
                order,
                step,
                warehouse,
                parcel,
                ..
            } => {
                if !parcel.lines.iter().any(|(s, _)| *s == self.sku)
                    || self.step_applied(order, *step)
                {
                    return;
                }
                let sku = &self.sku;
                let Some(a) = self.allocations.get_mut(order) else {
                    return;
                };
                a.step = a.step.max(*step);
                for (_, q) in parcel.lines.iter().filter(|(s, _)| s == sku) {
                    // Shipped units leave the shelf and the allocation;
                    // they still count for the customer's limit.
                    let took = a.take(warehouse, *q);
                    a.shipped = a.shipped.saturating_add(took);
                    if let Some(row) = self.rows.get_mut(warehouse) {
                        row.allocated = row.allocated.saturating_sub(took);
                        row.on_hand = row.on_hand.saturating_sub(took);
                    }
                }
            }
            Event::ReturnReceived {
                order,
                step,
                lines,
                restock: Some(warehouse),
                ..
            } => {
                let sku = self.sku.clone();
                if !lines.iter().any(|(s, _)| *s == sku) {
                    return;
                }
                if self.step_applied(order, *step) {
                    return;
                }
                // The order shipped from here, so its allocation is kept
                // (with its shipped units) and remembers its last step.
                self.note_step(order, *step);
                for (_, q) in lines.iter().filter(|(s, _)| *s == sku) {
                    self.with_row(warehouse, |row| {
                        row.on_hand = row.on_hand.saturating_add(*q)
                    });
                }
            }
            Event::WarehouseUpserted { .. }
            | Event::RoutingRulesSet { .. }
            | Event::OrderPayment { .. }
            | Event::OrderHoldSet { .. }
            | Event::FulfillmentStaged { .. }
            | Event::FulfillmentDelivered { .. }
            | Event::ReturnRequested { .. }
            | Event::ReturnReceived { restock: None, .. }
            | Event::ReturnSettled { .. }
            | Event::LifeKeyUsed { .. } => {}
            Event::IncomingExpected { receipt, .. } => {
                // The row exists from the first receipt on, so every view
                // shows where the units are expected.
                self.with_row(&receipt.warehouse, |_| {});
                self.incoming.apply_expected(receipt);
            }
            Event::IncomingReceived {
                receipt,
                qty,
                at,
                forget,
                key,
                ..
            } => {
                if let Some((warehouse, took)) =
                    self.incoming
                        .apply_received(*receipt, *qty, *at, forget, key.as_ref())
                {
                    self.stock_arrived(&warehouse, took);
                }
            }
            Event::IncomingClosed {
                receipt,
                at,
                forget,
                key,
                ..
            } => {
                self.incoming
                    .apply_closed(*receipt, *at, forget, key.as_ref());
            }
            Event::LowStockSet {
                warehouse,
                threshold,
                ..
            } => self.incoming.apply_threshold(warehouse, *threshold),
        }
    }

    /// The one place a receipt's units become stock: into the row's
    /// `on_hand`, where they are available at once.
    fn stock_arrived(&mut self, warehouse: &WarehouseId, qty: u64) {
        self.with_row(warehouse, |row| {
            row.on_hand = row.on_hand.saturating_add(qty)
        });
    }

    /// Decides a new incoming receipt in `cmd.warehouse`.
    pub fn decide_expect(
        &self,
        cmd: &incoming::ExpectCmd,
        limits: incoming::IncomingLimits,
    ) -> Result<Event, Rejection> {
        let on_hand = self.row(&cmd.warehouse).on_hand;
        let receipt = self.incoming.decide_expect(cmd, on_hand, limits)?;
        Ok(Event::IncomingExpected {
            sku: self.sku_id(),
            receipt,
        })
    }

    /// Decides receiving `qty` units on receipt `n`.
    pub fn decide_receive(
        &self,
        n: u64,
        qty: u64,
        now: Millis,
        key: Option<IdempotencyRecord>,
        limits: incoming::IncomingLimits,
    ) -> Result<Event, Rejection> {
        let on_hand = |w: &WarehouseId| self.row(w).on_hand;
        let (r, forget) = self.incoming.decide_receive(n, qty, on_hand, limits)?;
        Ok(Event::IncomingReceived {
            sku: self.sku_id(),
            receipt: n,
            warehouse: r.warehouse.clone(),
            qty,
            at: now,
            forget,
            key,
        })
    }

    /// Decides closing receipt `n` short.
    pub fn decide_close_incoming(
        &self,
        n: u64,
        reason: String,
        now: Millis,
        key: Option<IdempotencyRecord>,
        limits: incoming::IncomingLimits,
    ) -> Result<Event, Rejection> {
        let (r, forget) = self.incoming.decide_close(n, limits)?;
        Ok(Event::IncomingClosed {
            sku: self.sku_id(),
            receipt: n,
            warehouse: r.warehouse.clone(),
            short: r.outstanding(),
            reason,
            at: now,
            forget,
            key,
        })
    }

    /// The events that make the SKU's thresholds these: one per change.
    pub fn decide_thresholds(&self, changes: &[(Option<WarehouseId>, Option<u64>)]) -> Vec<Event> {
        changes
            .iter()
            .filter(|(w, t)| self.incoming.threshold(w) != *t)
            .map(|(w, t)| Event::LowStockSet {
                sku: self.sku_id(),
                warehouse: w.clone(),
                threshold: *t,
            })
            .collect()
    }

    /// Every low-stock mark with a threshold: the SKU's total (`None`)
    /// and the rows that have one, with whether each is low now.
    pub fn low_marks(&self) -> Vec<(incoming::Mark, u64, u64, bool)> {
        let mut out = Vec::new();
        if let Some(t) = self.incoming.low_stock_threshold {
            let a = self.available_total();
            out.push((None, a, t, incoming::is_low(a, Some(t))));
        }
        for (w, t) in &self.incoming.row_thresholds {
            let a = self.rows.get(w).map_or(0, StockRow::available);
            out.push((Some(w.clone()), a, *t, incoming::is_low(a, Some(*t))));
        }
        out
    }

    fn remove_hold(&mut self, id: HoldId) {
        let Some(hold) = self.holds.remove(&id) else {
            return;
        };
        self.expiries.remove(&(hold.expires_at, id));
        self.locked_holds.remove(&id);
        if let Some(row) = self.rows.get_mut(&hold.warehouse) {
            row.reserved = row.reserved.saturating_sub(hold.qty);
        }
        if let Some(c) = &hold.customer {
            sub_usage(&mut self.usage, c, hold.qty);
        }
    }

    /// Every invariant of this SKU, checked from scratch. O(holds + orders):
    /// for tests and for checks after replay, not for the hot path.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut reserved: BTreeMap<&WarehouseId, u64> = BTreeMap::new();
        let mut usage: HashMap<&CustomerId, u64> = HashMap::new();
        for (id, h) in &self.holds {
            *reserved.entry(&h.warehouse).or_default() += h.qty;
            if let Some(c) = &h.customer {
                *usage.entry(c).or_default() += h.qty;
            }
            if !self.expiries.contains_key(&(h.expires_at, *id)) {
                return Err(format!("hold {id} missing from the expiry index"));
            }
        }
        if self.expiries.len() != self.holds.len() {
            return Err("expiry index has stale entries".into());
        }
        let mut allocated: BTreeMap<&WarehouseId, u64> = BTreeMap::new();
        for a in self.allocations.values() {
            for (wh, q) in &a.lines {
                *allocated.entry(wh).or_default() += q;
            }
            *usage.entry(&a.customer).or_default() += a.usage();
        }
        let mut pending: BTreeMap<&WarehouseId, u64> = BTreeMap::new();
        for p in self.pending.values() {
            for (wh, q) in &p.from_free {
                *pending.entry(wh).or_default() += q;
            }
        }
        for (wh, row) in &self.rows {
            let r = reserved.get(wh).copied().unwrap_or(0);
            let a = allocated.get(wh).copied().unwrap_or(0);
            let p = pending.get(wh).copied().unwrap_or(0);
            if (row.reserved, row.allocated, row.pending) != (r, a, p) {
                return Err(format!(
                    "{wh}: row says reserved {} allocated {} pending {}, records say {r} {a} {p}",
                    row.reserved, row.allocated, row.pending
                ));
            }
            if row.committed() > row.on_hand {
                return Err(format!(
                    "{wh}: committed {} > on_hand {}",
                    row.committed(),
                    row.on_hand
                ));
            }
        }
        self.incoming.check()?;
        let usage: HashMap<&CustomerId, u64> = usage.into_iter().filter(|(_, q)| *q > 0).collect();
        let recorded: HashMap<&CustomerId, u64> = self.usage.iter().map(|(c, q)| (c, *q)).collect();
        if usage != recorded {
            return Err(format!("usage {recorded:?} != records {usage:?}"));
        }
        Ok(())
    }

    /// The state as a replay would build it: everything in flight dropped.
    pub fn without_pending(&self) -> Self {
        let mut s = self.clone();
        let orders: Vec<OrderId> = s.pending.keys().copied().collect();
        for o in orders {
            s.abort_pending(o);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku_with_stock(limit: Option<u64>) -> SkuState {
        let mut s = SkuState::new(SkuId::parse("s").unwrap());
        let wh = WarehouseId::parse("w1").unwrap();
        let e = s
            .decide_adjust(&wh, &Adjustment::Delta(100), "t", 1_000)
            .unwrap();
        s.apply(&e);
        s.apply(&s.upsert(None, limit));
        s
    }

    /// An order's stock steps reach a live SKU in any order, and each
    /// applies; an actor rebuilt from facts that already have some steps
    /// skips those when handed them again, and applies the rest.
    #[test]
    fn an_orders_stock_steps_apply_in_any_order_and_once_over_a_rebuild() {
        use crate::core::lifecycle::{CancelledUnits, FulfillmentId, Parcel, ReturnId};
        let mut s = sku_with_stock(None);
        let (sku, wh, order) = (s.sku_id(), WarehouseId::parse("w1").unwrap(), OrderId(1));
        let allocation = SkuAllocation {
            sku: sku.clone(),
            customer: CustomerId::parse("c").unwrap(),
            lines: vec![(wh.clone(), 10)],
            consumed_holds: vec![],
            shipped: 0,
            step: 0,
        };
        let placed = crate::core::order::build(
            crate::core::order::NewOrder {
                id: order,
                channel: ChannelId::parse("web").unwrap(),
                customer: CustomerId::parse("c").unwrap(),
                ship_to: crate::core::ShipTo {
                    location: crate::core::Location { lat: 0.0, lon: 0.0 },
                    country: None,
                },
                lines: vec![],
                now: 1,
                created_by: None,
                currency: None,
                payment_required: false,
                pay_by: None,
            },
            std::slice::from_ref(&allocation),
        );
        s.apply(&Event::OrderPlaced {
            order: placed,
            allocations: vec![allocation],
            idempotency: None,
        });
        let f = FulfillmentId { order, n: 1 };
        let steps = [
            Event::FulfillmentShipped {
                order,
                step: 1,
                fulfillment: f,
                warehouse: wh.clone(),
                parcel: Parcel {
                    carrier: "c".into(),
                    tracking: "t".into(),
                    lines: vec![(sku.clone(), 4)],
                    at: 2,
                },
            },
            Event::OrderLinesCancelled {
                order,
                step: 2,
                units: vec![CancelledUnits {
                    fulfillment: f,
                    warehouse: wh.clone(),
                    sku: sku.clone(),
                    qty: 3,
                }],
                reason: "r".into(),
                expired: false,
                at: 3,
            },
            Event::ReturnReceived {
                order,
                step: 3,
                ret: ReturnId { order, n: 1 },
                lines: vec![(sku.clone(), 2)],
                restock: Some(wh.clone()),
                at: 4,
            },
        ];
        // Live, out of order: the third, the first, the second.
        let mut live = s.clone();
        for e in [&steps[2], &steps[0], &steps[1]] {
            live.apply(e);
            live.check_invariants().unwrap();
        }
        // 100 − 4 shipped + 2 restocked; 10 − 4 shipped − 3 cancelled.
        assert_eq!((live.rows[&wh].on_hand, live.rows[&wh].allocated), (98, 3));
        // Rebuilt from facts after the first two (as an actor restarted
        // from the read model), then handed all three again: only the
        // third moves stock.
        let mut read_model = s.clone();
        read_model.apply(&steps[0]);
        read_model.apply(&steps[1]);
        let mut rebuilt =
            SkuState::from_facts(read_model.clone().into_numbers().facts_with(vec![])).unwrap();
        for e in &steps {
            rebuilt.apply(e);
            rebuilt.check_invariants().unwrap();
        }
        assert_eq!(
            (rebuilt.rows[&wh].on_hand, rebuilt.rows[&wh].allocated),
            (98, 3)
        );
        assert_eq!(rebuilt.allocations[&order].step, 3);
    }

    fn cmd(id: u64, qty: u64, customer: Option<&str>, require_customer: bool) -> ReserveCmd {
        ReserveCmd {
            id: HoldId(id),
            qty,
            customer: customer.map(|c| CustomerId::parse(c).unwrap()),
            channel: None,
            now: 1_000,
            expires_at: 2_000,
            idempotency: None,
            created_by: None,
            require_customer,
        }
    }

    #[test]
    fn a_planned_order_takes_exactly_its_plan_or_says_what_is_left() {
        let mut s = sku_with_stock(None);
        let w1 = WarehouseId::parse("w1").unwrap();
        let w2 = WarehouseId::parse("w2").unwrap();
        s.apply(
            &s.decide_adjust(&w2, &Adjustment::Delta(3), "t", 1_000)
                .unwrap(),
        );
        let c = CustomerId::parse("c").unwrap();
        let lines = [LineRequest { qty: 4, hold: None }];
        // 1 from w1 and 3 from w2, though w1 alone has 100.
        let p = s
            .prepare_planned(&c, &lines, &[(w1.clone(), 1), (w2.clone(), 3)], 1_000)
            .unwrap();
        assert_eq!(p.allocation.lines, vec![(w1.clone(), 1), (w2.clone(), 3)]);
        s.add_pending(OrderId(1), p);
        // w2 has nothing left: refused with what each row has now.
        assert_eq!(
            s.prepare_planned(&c, &lines, &[(w2.clone(), 4)], 1_000),
            Err(Rejection::PlanStale {
                available: vec![(w1.clone(), 99), (w2.clone(), 0)]
            })
        );
        // A plan that does not add up to the lines is a mismatch.
        assert!(matches!(
            s.prepare_planned(&c, &lines, &[(w1, 3)], 1_000),
            Err(Rejection::ReservationMismatch(_))
        ));
    }

    #[test]
    fn a_limited_sku_refuses_an_anonymous_hold_when_customers_are_required() {
        let pref = [WarehouseId::parse("w1").unwrap()];
        let limited = sku_with_stock(Some(2));
        assert_eq!(
            limited.decide_reserve(cmd(1, 1, None, true), &pref),
            Err(Rejection::CustomerRequired { limit: 2 })
        );
        // Refused before the limit or the stock is looked at: 50 is over both.
        assert_eq!(
            limited.decide_reserve(cmd(1, 50, None, true), &pref),
            Err(Rejection::CustomerRequired { limit: 2 })
        );
        // With a customer the limit applies as before.
        assert!(limited
            .decide_reserve(cmd(1, 2, Some("c"), true), &pref)
            .is_ok());
        assert!(matches!(
            limited.decide_reserve(cmd(1, 3, Some("c"), true), &pref),
            Err(Rejection::PurchaseLimitExceeded { limit: 2, used: 0 })
        ));
        // The rule switched off: held anonymously, as before the rule.
        assert!(limited
            .decide_reserve(cmd(1, 50, None, false), &pref)
            .is_ok());
        // A SKU without a limit never needs a customer.
        let open = sku_with_stock(None);
        assert!(open.decide_reserve(cmd(1, 50, None, true), &pref).is_ok());
    }

    #[test]
    fn anonymous_holds_already_logged_still_apply_on_a_limited_sku() {
        // Replay never judges: a hold logged before the rule (or with it
        // off) applies to a SKU that has a limit now.
        let pref = [WarehouseId::parse("w1").unwrap()];
        let mut s = sku_with_stock(None);
        let e = s.decide_reserve(cmd(1, 50, None, false), &pref).unwrap();
        s.apply(&s.upsert(None, Some(2)));
        s.apply(&e);
        assert_eq!(s.totals().reserved, 50);
        assert!(s.check_invariants().is_ok());
    }

    #[test]
    fn a_batch_refuses_only_its_anonymous_items_on_a_limited_sku() {
        let pref = [WarehouseId::parse("w1").unwrap()];
        let mut s = sku_with_stock(Some(2));
        let out = s.reserve_many(
            vec![
                cmd(1, 1, Some("a"), true),
                cmd(2, 1, None, true),
                cmd(3, 1, Some("b"), true),
            ],
            &pref,
        );
        assert!(out[0].is_ok() && out[2].is_ok());
        assert_eq!(out[1], Err(Rejection::CustomerRequired { limit: 2 }));
        assert_eq!(s.totals().reserved, 2);
    }
}
