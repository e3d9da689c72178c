//! `POST /v1/orders/{id}/reroute`: moving a placed order's allocation to
//! the next best plan, leaving out the warehouses it names (a 3PL that
//! cannot ship, a warehouse taken out of service).
//!
//! Like placement, a small process manager over the SKU actors and the
//! order's actor, and atomic the same way:
//!
//! 1. *Route*: plan the order's lines again under its channel's chain, over
//!    every warehouse but the excluded ones, counting the order's own
//!    allocation as stock it may keep (`route`).
//! 2. *Prepare*: each SKU of the order checks its allocation can move as
//!    planned and holds what a warehouse gains as pending (in memory
//!    only). A SKU whose stock moved under the plan answers with what it
//!    has now, and the order is planned again, up to
//!    `replan_attempts_max` times.
//! 3. *Record*: the order's actor logs one `OrderRerouted` record with
//!    each moved SKU's allocation before and after, if the order is still
//!    placed and still allocated as planned from.
//! 4. *Commit*: once durable, each SKU moves the allocation: the old one
//!    is released only now, when the new one is taken. Nothing is logged
//!    when no allocation moves.
//!
//! One re-route per order runs at a time. A cancellation (or any other
//! change to the order) logged before the re-route makes the order's actor
//! refuse the re-route; from the re-route's record until every SKU has it,
//! the order's actor refuses other changes (409 `order_busy`, or
//! `order_not_cancellable` with status `placing`), so none can reach a SKU
//! before the re-route does.

use crate::actors::order::Reroute;
use crate::actors::sku::{self, SkuHandle};
use crate::actors::CmdError;
use crate::app::ops::phase_one::{self, PhaseOne};
use crate::app::ops::route::{self, RouteInput};
use crate::app::{Caller, Surge};
use crate::core::routing::{self, PlanLine};
use crate::core::{order, Order, OrderId, OrderStatus, Rejection, SkuId, WarehouseId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The reason logged when a disabled warehouse's orders move.
pub const REASON_DISABLED: &str = "warehouse_disabled";

pub struct RerouteRequest {
    pub order: OrderId,
    /// Warehouses the new plan must not use.
    pub exclude: Vec<WarehouseId>,
    pub reason: String,
    pub caller: Caller,
}

/// A SKU's allocation of the order before and after the move.
type Move = (crate::core::SkuAllocation, crate::core::SkuAllocation);

/// Ends a re-route's marks (on the order and its SKUs) on every path out.
struct Marks<'a> {
    surge: &'a Surge,
    order: OrderId,
    skus: Vec<SkuId>,
}

impl Drop for Marks<'_> {
    fn drop(&mut self) {
        for sku in &self.skus {
            self.surge.directory.end_placing(sku);
        }
        self.surge.directory.end_rerouting(self.order);
    }
}

impl Surge {
    pub async fn reroute_order(self: &Arc<Self>, req: RerouteRequest) -> Result<Order, CmdError> {
        self.detached(move |this| async move { this.reroute(req).await })
            .await
    }

    pub(crate) async fn reroute(&self, req: RerouteRequest) -> Result<Order, CmdError> {
        let id = req.order;
        self.order_seen_by(id, &req.caller).await?;
        for wh in &req.exclude {
            if !self.projection.warehouses.contains_key(wh) {
                return Err(CmdError::UnknownWarehouse(wh.clone()));
            }
        }
        if self.directory.is_committing(id) {
            // Answered once what is acknowledged is in the read model, as
            // a cancellation is.
            self.wal.barrier()?.wait().await?;
            return Err(Rejection::NotReroutable { status: "placing" }.into());
        }
        if !self.directory.begin_rerouting(id) {
            return Err(Rejection::NotReroutable {
                status: "rerouting",
            }
            .into());
        }
        let mut marks = Marks {
            surge: self,
            order: id,
            skus: Vec::new(),
        };
        // Read again now that no other re-route can cross this one.
        let order = self.order(id).await?;
        if order.status != OrderStatus::Placed {
            return Err(Rejection::NotReroutable {
                status: order.lifecycle_status().as_str(),
            }
            .into());
        }
        // A warehouse that rejected the order's work never gets it back.
        let mut req = req;
        for f in &order.life.fulfillments {
            if f.stage == crate::core::lifecycle::FulfillmentStage::Rejected
                && !req.exclude.contains(&f.warehouse)
            {
                req.exclude.push(f.warehouse.clone());
            }
        }
        // What is left to ship: units a warehouse started on stay there
        // (pinned), the rest is planned again.
        let (lines, line_of) = units_to_plan(&order, &req.exclude);
        if lines.is_empty() {
            return Ok(order);
        }
        // The pinned units are the order's own at their warehouse: not
        // stock the other lines may also count on.
        let kept: BTreeMap<(WarehouseId, SkuId), u64> =
            crate::core::lifecycle::life::kept_by_reroute(&order, &req.exclude)
                .into_iter()
                .map(|((w, s), q)| ((w.clone(), s.clone()), q))
                .collect();
        // Only the SKUs with units left to move take part.
        let mut skus: BTreeMap<SkuId, SkuHandle> = BTreeMap::new();
        for line in &lines {
            if !skus.contains_key(&line.sku) {
                skus.insert(line.sku.clone(), self.directory.sku(&line.sku).await?);
            }
        }
        // Until each SKU has committed or aborted, a stopped SKU actor is
        // not replaced: its successor would not know what is pending. (One
        // that stops after this is noticed once prepared.)
        self.directory.begin_placing(skus.keys());
        marks.skus = skus.keys().cloned().collect();
        let warehouses: Vec<_> = self
            .routing_candidates()
            .await?
            .iter()
            .filter(|w| !req.exclude.contains(&w.id))
            .cloned()
            .collect();
        let mut fresh = self.free_with_own(&order);
        for (sku, rows) in fresh.iter_mut() {
            without_kept(sku, rows, &kept);
        }
        // The order does not count against its own warehouses' capacity
        // while it is planned again; it counts again if it stays.
        let lifted = self.workloads.lift_order(&order, &self.projection);
        let replans_max = self.config.routing.replan_attempts_max;
        let mut attempts: u32 = 1;
        let (moves, mut trace, claim, now) = loop {
            // One time for the plan, its workload claim and the record.
            let now = self.now();
            let input = RouteInput {
                lines: &lines,
                ship_to: Some(&order.ship_to),
                channel: Some(&order.channel),
                fresh: &fresh,
                single_shipment: false,
            };
            let (plan, trace, claim) =
                self.route_and_claim(&input, &warehouses, now)
                    .map_err(|u| {
                        CmdError::Unplaced(as_order_lines(route::unplaced(&lines, &u), &line_of))
                    })?;
            let planned = planned_by_sku(&lines, &plan);
            match prepare(&skus, id, &planned).await? {
                PhaseOne::Ready(moves) => break (moves, trace, claim, now),
                PhaseOne::Stale(mut stale) if attempts <= replans_max => {
                    drop(claim);
                    for (sku, rows) in stale.iter_mut() {
                        without_kept(sku, rows, &kept);
                    }
                    fresh.extend(stale);
                    attempts += 1;
                }
                PhaseOne::Stale(stale) => {
                    let lines = lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| stale.iter().any(|(s, _)| s == &l.sku))
                        .map(|(i, l)| (i, l.sku.clone(), l.qty))
                        .collect();
                    return Err(CmdError::Unplaced(as_order_lines(lines, &line_of)));
                }
            }
        };
        trace.attempts = attempts;
        let (from, to): (Vec<_>, Vec<_>) = moves.into_iter().unzip();
        let change = order::Reroute {
            exclude: req.exclude.clone(),
            from,
            to,
            routing: Arc::new(trace),
            reason: req.reason,
        };
        let recorded = match self.directory.order(id).await {
            Ok(desk) => desk
                .send(Reroute {
                    order: id,
                    change,
                    now,
                })
                .await
                .map_err(CmdError::from)
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        let (rerouted, event) = match recorded {
            Ok((o, Some(event))) => (o, event),
            Ok((o, None)) => {
                // Nothing moves: the plan is the order's own.
                abort(&skus, id).await;
                return Ok(o);
            }
            Err(e) => {
                abort(&skus, id).await;
                return Err(e);
            }
        };
        // Durable: from here the answer is yes whatever happens to a
        // mailbox. A SKU actor that is gone is replaced from the durable
        // state, which has the re-route.
        for (sku, addr) in &skus {
            let commit = || sku::CommitReroute {
                order: id,
                event: event.clone(),
            };
            if addr.send(commit()).await.is_ok() {
                continue;
            }
            tracing::warn!(%sku, order = %id, "sku actor gone after the re-route was logged; its successor takes it from the log");
        }
        // Every SKU has it: the order's actor takes other changes again.
        if let Ok(desk) = self.directory.order(id).await {
            let _ = desk.send(crate::actors::order::Placed(id)).await;
        }
        claim.keep();
        lifted.keep();
        Ok(rerouted)
    }

    /// Re-routes every placed order allocated in `warehouse` away from it
    /// (it was disabled), oldest first, one at a time, while it stays
    /// disabled. Orders it could not move for the moment (being placed or
    /// re-routed) are tried again in another pass while passes move some;
    /// an order no plan places elsewhere stays where it is. One run per
    /// warehouse at a time.
    pub(crate) async fn reroute_away_from(&self, warehouse: WarehouseId) {
        if !self.directory.begin_rerouting_away(&warehouse) {
            return;
        }
        let _running = scopeguard(|| self.directory.end_rerouting_away(&warehouse));
        let mut moved = 0usize;
        let mut stayed;
        loop {
            if let Err(e) = self.caught_up().await {
                tracing::error!(%warehouse, error = %e, "orders not re-routed from a disabled warehouse");
                return;
            }
            let ids = self.placed_orders_at(&warehouse);
            let mut progress = false;
            stayed = 0;
            for id in ids {
                let still_disabled = self
                    .projection
                    .warehouses
                    .get(&warehouse)
                    .is_some_and(|w| !w.routing.enabled);
                if !still_disabled {
                    tracing::info!(%warehouse, moved, "warehouse enabled again: its orders stay");
                    return;
                }
                let req = RerouteRequest {
                    order: id,
                    exclude: vec![warehouse.clone()],
                    reason: REASON_DISABLED.into(),
                    caller: Caller::anyone(),
                };
                match self.reroute(req).await {
                    Ok(_) => {
                        moved += 1;
                        progress = true;
                    }
                    Err(e) => {
                        stayed += 1;
                        tracing::warn!(%warehouse, order = %id, error = %e, "order not re-routed from a disabled warehouse");
                    }
                }
            }
            if stayed == 0 || !progress {
                break;
            }
        }
        tracing::info!(%warehouse, moved, stayed, "orders re-routed from a disabled warehouse");
    }

    /// The placed orders with units still to ship from `warehouse`,
    /// oldest first.
    fn placed_orders_at(&self, warehouse: &WarehouseId) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .projection
            .orders
            .iter()
            .filter(|o| {
                o.status == OrderStatus::Placed
                    && order::live_units(o).keys().any(|(w, _)| *w == warehouse)
            })
            .map(|o| o.id)
            .collect();
        ids.sort();
        ids
    }

    /// At start: re-routes away the placed orders that disabled warehouses
    /// still have (a run a restart cut short, or a warehouse disabled
    /// while `reroute_on_disable` was off), one warehouse at a time.
    pub async fn resume_reroutes(&self) {
        if !self.config.routing.reroute_on_disable {
            return;
        }
        let disabled: Vec<WarehouseId> = self
            .projection
            .warehouses_shared()
            .iter()
            .filter(|w| !w.routing.enabled)
            .map(|w| w.id.clone())
            .collect();
        for warehouse in disabled {
            if !self.placed_orders_at(&warehouse).is_empty() {
                self.reroute_away_from(warehouse).await;
            }
        }
    }

    /// Per SKU of `order`, what each warehouse could give it: the read
    /// model's free stock plus what the order already has there.
    fn free_with_own(&self, order: &Order) -> HashMap<SkuId, Vec<(WarehouseId, u64)>> {
        let mut by_sku: HashMap<SkuId, Vec<(WarehouseId, u64)>> = HashMap::new();
        for line in &order.lines {
            if by_sku.contains_key(&line.sku) {
                continue;
            }
            let mut rows = self
                .projection
                .skus
                .get(&line.sku)
                .map(|s| s.available_by_warehouse())
                .unwrap_or_default();
            for ((wh, _), q) in order::live_units(order)
                .into_iter()
                .filter(|((_, sku), _)| *sku == &line.sku)
            {
                match rows.iter_mut().find(|(w, _)| w == wh) {
                    Some((_, free)) => *free = free.saturating_add(q),
                    None => rows.push((wh.clone(), q)),
                }
            }
            by_sku.insert(line.sku.clone(), rows);
        }
        by_sku
    }
}

/// Per SKU, the (warehouse, quantity) the plan gives it.
fn planned_by_sku(
    lines: &[PlanLine],
    plan: &routing::Plan,
) -> BTreeMap<SkuId, Vec<(WarehouseId, u64)>> {
    let mut by_sku: BTreeMap<SkuId, Vec<(WarehouseId, u64)>> = BTreeMap::new();
    for s in &plan.shipments {
        for &(i, qty) in &s.lines {
            let Some(line) = lines.get(i) else { continue };
            by_sku
                .entry(line.sku.clone())
                .or_default()
                .push((s.warehouse.clone(), qty));
        }
    }
    by_sku
}

/// Step 2: every SKU of the order prepares its move; on any refusal, those
/// that prepared are aborted.
async fn prepare(
    skus: &BTreeMap<SkuId, SkuHandle>,
    id: OrderId,
    planned: &BTreeMap<SkuId, Vec<(WarehouseId, u64)>>,
) -> Result<PhaseOne<Move>, CmdError> {
    let handles: Vec<(&SkuId, &SkuHandle)> = skus.iter().collect();
    phase_one::prepare_all(&handles, id, |sku, addr| {
        addr.ask(sku::PrepareReroute {
            order: id,
            planned: planned.get(sku).cloned().unwrap_or_default(),
        })
    })
    .await
}

async fn abort(skus: &BTreeMap<SkuId, SkuHandle>, order: OrderId) {
    phase_one::abort_all(skus.values(), order).await;
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// The lines a re-route plans: per SKU, the units a warehouse outside
/// `exclude` started on, pinned there, and the rest of the units not
/// shipped or cancelled, free. With each, the index of the order's first
/// line of its SKU (what a refusal names).
fn units_to_plan(order: &Order, exclude: &[WarehouseId]) -> (Vec<PlanLine>, Vec<usize>) {
    let mut free: BTreeMap<&SkuId, u64> = BTreeMap::new();
    for ((_, sku), q) in order::live_units(order) {
        *free.entry(sku).or_insert(0) += q;
    }
    let first_line = |sku: &SkuId| order.lines.iter().position(|l| &l.sku == sku).unwrap_or(0);
    let mut lines = Vec::new();
    let mut line_of = Vec::new();
    for ((wh, sku), q) in crate::core::lifecycle::life::kept_by_reroute(order, exclude) {
        let left = free.entry(sku).or_insert(0);
        let q = q.min(*left);
        *left -= q;
        if q > 0 {
            lines.push(PlanLine {
                sku: sku.clone(),
                qty: q,
                pinned: Some(wh.clone()),
            });
            line_of.push(first_line(sku));
        }
    }
    for (sku, q) in free {
        if q > 0 {
            lines.push(PlanLine {
                sku: sku.clone(),
                qty: q,
                pinned: None,
            });
            line_of.push(first_line(sku));
        }
    }
    (lines, line_of)
}

/// Unplaced plan lines as the order's lines they stand for (one entry per
/// order line, the units added up).
fn as_order_lines(
    unplaced: Vec<(usize, SkuId, u64)>,
    line_of: &[usize],
) -> Vec<(usize, SkuId, u64)> {
    let mut out: Vec<(usize, SkuId, u64)> = Vec::new();
    for (i, sku, q) in unplaced {
        let i = line_of.get(i).copied().unwrap_or(i);
        match out.iter_mut().find(|(j, _, _)| *j == i) {
            Some((_, _, total)) => *total = total.saturating_add(q),
            None => out.push((i, sku, q)),
        }
    }
    out
}

/// What each warehouse could give `sku`'s free lines: less the units the
/// order keeps there, pinned.
fn without_kept(
    sku: &SkuId,
    rows: &mut [(WarehouseId, u64)],
    kept: &BTreeMap<(WarehouseId, SkuId), u64>,
) {
    for (wh, q) in rows.iter_mut() {
        if let Some(k) = kept.get(&(wh.clone(), sku.clone())) {
            *q = q.saturating_sub(*k);
        }
    }
}
