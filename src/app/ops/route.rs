//! Routing an order or a hold against the server's state: every warehouse
//! as a candidate with its workload, the read model's stock (with fresher
//! figures from SKU actors where placement has them), and the chain in
//! force for the channel. Placement, holds with a `ship_to` and
//! `POST /v1/routing/simulate` all plan here, so a simulation runs exactly
//! the code an order runs.
//!
//! # Workload
//! A warehouse's workload is the number of orders routed to it on its
//! current local day (`routing::local_day`, in its cut-off's zone, else
//! UTC). It lives here, in memory: seeded at start from the orders in the
//! read model (each counted on the local day it was placed), then counted
//! by placement itself (a cancelled order no longer counts; a re-routed one
//! moves). An order claims its warehouses when it is planned,
//! under one lock with the plan, so orders planned at the same time see
//! each other and a `capacity_per_day` is never overshot; the claim is
//! kept once the order is logged and given back if placement fails. A new
//! local day starts the count again at 0.
//!
//! Only a warehouse with a `capacity_per_day` makes the workload matter to
//! a plan (`capacity` reads nothing else of it). While no candidate has
//! one, an order plans without the lock and takes it only to count its
//! warehouses, so orders do not wait for each other's planning.
//!
//! # Per order
//! The candidates are the read model's shared list of warehouses (one copy
//! per warehouse change, `Projection::warehouses_shared`), and the chain is
//! borrowed from the rules in force: nothing is cloned per order but what
//! the plan and its trace hold.

use crate::actors::CmdError;
use crate::app::{Caller, Surge};
use crate::core::routing::{
    self, Candidate, Chain, Plan, PlanLine, PlanRequest, RoutingTrace, Workload, WorkloadBook,
};
use crate::core::{
    ChannelId, Millis, Order, OrderLine, Rejection, ShipTo, SkuId, Warehouse, WarehouseId,
};
use crate::projection::Projection;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Orders routed to each warehouse on its current local day.
#[derive(Debug, Default)]
pub struct Workloads {
    book: Mutex<WorkloadBook>,
}

impl Workloads {
    /// Counted from the orders in the read model by the one rule
    /// (`routing::WorkloadBook`): not cancelled, each at its warehouses on
    /// the local day it was routed there.
    pub fn from_orders(projection: &Projection) -> Self {
        let book = routing::WorkloadBook::from_orders(projection.orders.iter(), day_of(projection));
        Self {
            book: Mutex::new(book),
        }
    }

    /// What one warehouse has had routed to it (on the day it says).
    pub fn get(&self, warehouse: &WarehouseId) -> Workload {
        self.lock().get(warehouse)
    }

    /// `order` (as it was when last routed) no longer counts: it was
    /// cancelled.
    pub fn forget_order(&self, order: &Order, projection: &Projection) {
        self.lock().count_order(order, day_of(projection), -1);
    }

    /// Takes `order` out of its warehouses' counts while it is planned
    /// again (re-routed), so it does not stand in its own way; put back on
    /// drop unless kept (the re-route was logged).
    pub fn lift_order<'a>(&'a self, order: &Order, projection: &Projection) -> Claim<'a> {
        let counted = self
            .lock()
            .count_order(order, day_of(projection), -1)
            .into_iter()
            .map(|(wh, day)| (wh.clone(), day))
            .collect();
        Claim {
            workloads: self,
            counted,
            undo: 1,
            kept: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorkloadBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A warehouse's local day at `at`, from the read model.
fn day_of(projection: &Projection) -> impl Fn(&WarehouseId, Millis) -> Option<i32> + '_ {
    |wh, at| {
        projection
            .warehouses
            .get(wh)
            .map(|w| routing::local_day(&w.routing, at))
    }
}

/// Warehouses an order counts in (or, lifted, no longer counts in) until
/// placement or re-routing ends; undone on drop unless kept (the order or
/// its re-route was logged).
pub struct Claim<'a> {
    workloads: &'a Workloads,
    counted: Vec<(WarehouseId, i32)>,
    /// What dropping it adds to each counted warehouse's day.
    undo: i64,
    kept: bool,
}

impl Claim<'_> {
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.kept || self.counted.is_empty() {
            return;
        }
        let mut map = self.workloads.lock();
        for (wh, day) in &self.counted {
            map.add(wh, *day, self.undo);
        }
    }
}

/// What to route.
pub struct RouteInput<'a> {
    pub lines: &'a [PlanLine],
    pub ship_to: Option<&'a ShipTo>,
    pub channel: Option<&'a ChannelId>,
    /// Available per warehouse, by SKU, that overrides the read model's
    /// (what a SKU actor said when it refused a plan).
    pub fresh: &'a HashMap<SkuId, Vec<(WarehouseId, u64)>>,
    /// A hold: one shipment, every candidate traced.
    pub single_shipment: bool,
}

/// A plan, or the lines none places; with the trace either way.
pub type Routed = Result<(Plan, RoutingTrace), routing::Unroutable>;

/// Whether a plan over `warehouses` may depend on their workload: only
/// for a warehouse with a daily capacity (and a chain with `capacity`).
fn reads_workload(warehouses: &[Warehouse]) -> bool {
    warehouses
        .iter()
        .any(|w| w.routing.capacity_per_day.is_some())
}

impl Surge {
    /// Orders routed to a warehouse on the local day it names (placed,
    /// and being placed now).
    pub fn workload(&self, warehouse: &WarehouseId) -> Workload {
        self.workloads.get(warehouse)
    }

    /// Every warehouse, with every acknowledged warehouse change in: the
    /// read model's shared list (by priority, then id), not a copy.
    pub(crate) async fn routing_candidates(&self) -> Result<Arc<Vec<Warehouse>>, CmdError> {
        self.wal
            .caught_up_to(self.warehouses_changed.load(Ordering::Acquire))
            .await?;
        Ok(self.projection.warehouses_shared())
    }

    /// Plans `input` at `now` over `warehouses` without claiming anything.
    pub(crate) fn route_now(
        &self,
        input: &RouteInput<'_>,
        warehouses: &[Warehouse],
        now: Millis,
    ) -> Routed {
        if reads_workload(warehouses) {
            let map = self.workloads.lock();
            self.route_locked(input, warehouses, now, Some(&map))
        } else {
            self.route_locked(input, warehouses, now, None)
        }
    }

    /// Plans `input` at `now` and claims the chosen warehouses' workload,
    /// under one lock, so orders planned together see each other. Without
    /// a warehouse with a daily capacity the plan does not read the
    /// workload: it is made before the lock, which is taken to count only.
    pub(crate) fn route_and_claim(
        &self,
        input: &RouteInput<'_>,
        warehouses: &[Warehouse],
        now: Millis,
    ) -> Result<(Plan, RoutingTrace, Claim<'_>), routing::Unroutable> {
        let (plan, trace, mut map) = if reads_workload(warehouses) {
            let map = self.workloads.lock();
            let (plan, trace) = self.route_locked(input, warehouses, now, Some(&map))?;
            (plan, trace, map)
        } else {
            let (plan, trace) = self.route_locked(input, warehouses, now, None)?;
            (plan, trace, self.workloads.lock())
        };
        let mut counted: Vec<(WarehouseId, i32)> = Vec::with_capacity(plan.shipments.len());
        for s in &plan.shipments {
            if counted.iter().any(|(w, _)| w == &s.warehouse) {
                continue;
            }
            let Some(wh) = warehouses.iter().find(|w| w.id == s.warehouse) else {
                continue;
            };
            let day = routing::local_day(&wh.routing, now);
            map.add(&s.warehouse, day, 1);
            counted.push((s.warehouse.clone(), day));
        }
        drop(map);
        let claim = Claim {
            workloads: &self.workloads,
            counted,
            undo: -1,
            kept: false,
        };
        Ok((plan, trace, claim))
    }

    /// Plans with the workload in `workloads`; `None` when no candidate
    /// has a daily capacity (then nothing reads it).
    fn route_locked(
        &self,
        input: &RouteInput<'_>,
        warehouses: &[Warehouse],
        now: Millis,
        workloads: Option<&WorkloadBook>,
    ) -> Routed {
        let rules = self.routing_rules_shared();
        let mut chain: Cow<'_, Chain> = Cow::Borrowed(rules.chain(input.channel));
        let mut max_traced = self.config.routing.trace_candidates_max;
        if input.single_shipment {
            if input.ship_to.is_none() {
                // A hold without a destination comes from the enabled
                // warehouse with the best priority that has it all.
                chain = Cow::Owned(Chain {
                    rules: vec![routing::Rule::Enabled, routing::Rule::Priority],
                    split: routing::SplitPolicy::Forbid,
                });
            }
            chain.to_mut().split = routing::SplitPolicy::Forbid;
            max_traced = warehouses.len().max(1);
        }
        let candidates: Vec<Candidate<'_>> = warehouses
            .iter()
            .map(|w| Candidate {
                warehouse: w,
                workload: workloads.map(|m| m.get(&w.id)).unwrap_or_default(),
            })
            .collect();
        let req = PlanRequest {
            lines: input.lines,
            ship_to: input.ship_to,
            channel: input.channel,
            now,
        };
        let projection = &self.projection;
        let fresh = input.fresh;
        routing::plan(
            &chain,
            &req,
            &candidates,
            |sku, wh| match fresh.get(sku) {
                Some(rows) => rows.iter().find(|(w, _)| w == wh).map_or(0, |(_, q)| *q),
                None => projection
                    .skus
                    .get(sku)
                    .map_or(0, |s| s.row(wh).available()),
            },
            max_traced,
        )
    }
}

/// The lines no plan places, as the API names them: (index, sku, qty).
pub fn unplaced(lines: &[PlanLine], unroutable: &routing::Unroutable) -> Vec<(usize, SkuId, u64)> {
    unroutable
        .lines
        .iter()
        .filter_map(|&i| lines.get(i).map(|l| (i, l.sku.clone(), l.qty)))
        .collect()
}

/// `POST /v1/routing/simulate`: an order's lines (or a hold's one line)
/// to plan without taking anything.
pub struct SimulateRequest {
    pub lines: Vec<OrderLine>,
    pub ship_to: Option<ShipTo>,
    pub channel: Option<ChannelId>,
    /// A hold: one shipment, every candidate traced (as a hold is routed).
    pub hold: bool,
    /// Who asks: a line may name only a hold it may see.
    pub caller: Caller,
}

/// What placing the order (or the hold) now would do.
pub struct Simulation {
    pub lines: Vec<PlanLine>,
    /// The plan; `None` when none places every line.
    pub plan: Option<Plan>,
    /// Shared with the answer, which writes it as it is.
    pub trace: Arc<RoutingTrace>,
    /// (index, sku, qty) of the lines no plan places.
    pub unplaced: Vec<(usize, SkuId, u64)>,
}

impl Surge {
    /// Plans like placement (the same chain, candidates, workload and
    /// stock) and changes nothing.
    /// The warehouse an order line is pinned to: its hold's, when it
    /// consumes one this caller may see and of the line's SKU.
    pub(crate) async fn pinned_warehouse(
        &self,
        line: &OrderLine,
        caller: &Caller,
    ) -> Result<Option<WarehouseId>, CmdError> {
        let Some(h) = line.reservation else {
            return Ok(None);
        };
        let rec = self
            .hold(h)
            .await
            .ok()
            .filter(|r| caller.may_see(r.hold.created_by.as_deref()))
            .ok_or(CmdError::UnknownHoldInOrder(h))?;
        if rec.hold.sku != line.sku {
            return Err(Rejection::ReservationMismatch(format!(
                "reservation {h} is for sku {}, not {}",
                rec.hold.sku, line.sku
            ))
            .into());
        }
        Ok(Some(rec.hold.warehouse))
    }

    pub async fn simulate(&self, req: SimulateRequest) -> Result<Simulation, CmdError> {
        // What routing would do now: after every acknowledged write (an
        // order's stock, a chain set at run time) is in the read model.
        self.wal.caught_up().await?;
        let mut lines: Vec<PlanLine> = Vec::with_capacity(req.lines.len());
        for line in &req.lines {
            if !self.projection.skus.contains_key(&line.sku) {
                return Err(CmdError::UnknownSku(line.sku.clone()));
            }
            let pinned = self.pinned_warehouse(line, &req.caller).await?;
            lines.push(PlanLine {
                sku: line.sku.clone(),
                qty: line.qty,
                pinned,
            });
        }
        let warehouses = self.routing_candidates().await?;
        let fresh = HashMap::new();
        let input = RouteInput {
            lines: &lines,
            ship_to: req.ship_to.as_ref(),
            channel: req.channel.as_ref(),
            fresh: &fresh,
            single_shipment: req.hold,
        };
        let (plan, trace, unplaced_lines) = match self.route_now(&input, &warehouses, self.now()) {
            Ok((plan, trace)) => (Some(plan), trace, Vec::new()),
            Err(u) => {
                let names = unplaced(&lines, &u);
                (None, u.trace, names)
            }
        };
        Ok(Simulation {
            lines,
            plan,
            trace: Arc::new(trace),
            unplaced: unplaced_lines,
        })
    }
}
