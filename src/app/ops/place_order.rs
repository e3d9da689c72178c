//! `POST /v1/orders`: placing an order, as a small process manager over the
//! SKU actors and the order's actor.
//!
//! 1. *Route*: find each SKU's actor and each reservation's warehouse, and
//!    plan the order under the channel's chain (`routing::plan`) against
//!    the read model's stock and the warehouses' workload (`route`).
//! 2. *Prepare*: every SKU takes exactly its planned part and keeps it as
//!    pending (in memory only). One refusal aborts all: nothing was
//!    logged. A SKU that no longer has what the plan counted on (a racing
//!    order took it) answers with what it has now, and the order is
//!    planned again with those figures, up to `replan_attempts_max` times
//!    (`trace.attempts` counts the plans).
//! 3. *Record*: the order's actor logs one `OrderPlaced` record with every
//!    SKU's allocation, so the order is on disk whole or not at all.
//! 4. *Commit*: once durable, each SKU turns pending into allocated, and the
//!    order's actor lets it be changed. From here the answer is 201 whatever
//!    happens to a mailbox: a SKU or order actor that is gone is replaced
//!    from the durable state, which holds the order.

use crate::actors::order::{Forget, Placed, Record};
use crate::actors::sku::{self, SkuHandle};
use crate::actors::CmdError;
use crate::app::ops::phase_one::{self, PhaseOne};
use crate::app::ops::route::{self, RouteInput};
use crate::app::{Caller, Idempotency, Outcome, Surge};
use crate::core::routing::{Plan, PlanLine};
use crate::core::sku::LineRequest;
use crate::core::{
    order, ChannelId, CustomerId, Event, Order, OrderId, OrderLine, ShipTo, SkuAllocation, SkuId,
    WarehouseId,
};
use crate::projection::IdemTarget;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub struct OrderRequest {
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    /// The currency of its lines' prices (`None`: unpriced).
    pub currency: Option<crate::core::lifecycle::Currency>,
    pub idempotency: Option<Idempotency>,
    /// The API key placing it: recorded in the order; a key limited to its
    /// own may use only the holds it created.
    pub caller: Caller,
}

/// The SKUs of one order, each with its actor and its lines.
type BySku = BTreeMap<SkuId, (SkuHandle, Vec<LineRequest>)>;

/// Why the SKUs did not all prepare.
enum Prepared {
    /// Some SKUs no longer have what the plan took from them: what each
    /// has available now, per warehouse.
    Stale(Vec<(SkuId, Vec<(WarehouseId, u64)>)>),
    Failed(CmdError),
}

/// Per SKU, the (warehouse, quantity) the plan takes from free stock: its
/// unpinned lines (pinned ones consume their holds).
fn planned_by_sku(lines: &[PlanLine], plan: &Plan) -> BTreeMap<SkuId, Vec<(WarehouseId, u64)>> {
    let mut by_sku: BTreeMap<SkuId, Vec<(WarehouseId, u64)>> = BTreeMap::new();
    for s in &plan.shipments {
        for &(i, qty) in &s.lines {
            let Some(line) = lines.get(i) else { continue };
            if line.pinned.is_some() || qty == 0 {
                continue;
            }
            by_sku
                .entry(line.sku.clone())
                .or_default()
                .push((s.warehouse.clone(), qty));
        }
    }
    by_sku
}

impl Surge {
    pub async fn place_order(
        self: &Arc<Self>,
        req: OrderRequest,
    ) -> Result<(Order, Outcome), CmdError> {
        self.detached(move |this| async move {
            let _guard = this.begin(&req.idempotency)?;
            match this.recall(&req.idempotency).await? {
                Some(IdemTarget::Order(id)) => {
                    let order = this.order(id).await?;
                    // What this key may not see, its idempotency key does
                    // not show it either.
                    if !req.caller.may_see(order.created_by.as_deref()) {
                        return Err(CmdError::IdempotencyKeyReused);
                    }
                    return Ok((order, Outcome::Replayed));
                }
                Some(IdemTarget::Hold(_) | IdemTarget::Life(..)) => {
                    return Err(CmdError::IdempotencyKeyReused)
                }
                None => {}
            }
            this.place(req).await.map(|o| (o, Outcome::Created))
        })
        .await
    }

    async fn place(self: &Arc<Self>, req: OrderRequest) -> Result<Order, CmdError> {
        let (by_sku, plan_lines) = self.gather(&req).await?;
        let warehouses = self.routing_candidates().await?;
        let id = self.next_order_id();
        // From here until each SKU has committed or aborted, a stopped SKU
        // actor is not replaced: its successor would not know what this
        // order was promised.
        let mut inflight = InFlight::new(self, id, by_sku.keys());
        let replans_max = self.config.routing.replan_attempts_max;
        let mut fresh: HashMap<SkuId, Vec<(WarehouseId, u64)>> = HashMap::new();
        let mut attempts: u32 = 1;
        let (allocations, mut trace, claim, now) = loop {
            // One time for the plan, its workload claim and the order.
            let now = self.now();
            let input = RouteInput {
                lines: &plan_lines,
                ship_to: Some(&req.ship_to),
                channel: Some(&req.channel),
                fresh: &fresh,
                single_shipment: false,
            };
            let (plan, trace, claim) = match self.route_and_claim(&input, &warehouses, now) {
                Ok(routed) => routed,
                // A re-plan counted what a crossing order held then; it
                // may have let go since (it aborted too): plan again on
                // the read model while attempts remain.
                Err(_) if !fresh.is_empty() && attempts <= replans_max => {
                    fresh.clear();
                    attempts += 1;
                    continue;
                }
                // The read model may not yet show stock a write already
                // acknowledged gave back (a release, a cancel): plan once
                // more when it has caught up.
                Err(_) if attempts == 1 && replans_max > 0 => {
                    self.caught_up().await?;
                    attempts += 1;
                    continue;
                }
                Err(u) => return Err(CmdError::Unplaced(route::unplaced(&plan_lines, &u))),
            };
            let planned = planned_by_sku(&plan_lines, &plan);
            match self.prepare(&by_sku, id, &req.customer, &planned).await {
                Ok(allocations) => break (allocations, trace, claim, now),
                Err(Prepared::Stale(stale)) if attempts <= replans_max => {
                    // A racing order took what the plan counted on: plan
                    // again with what those SKUs have now.
                    drop(claim);
                    fresh.extend(stale);
                    attempts += 1;
                }
                Err(Prepared::Stale(stale)) => {
                    drop(claim);
                    fresh.extend(stale);
                    let input = RouteInput {
                        lines: &plan_lines,
                        ship_to: Some(&req.ship_to),
                        channel: Some(&req.channel),
                        fresh: &fresh,
                        single_shipment: false,
                    };
                    let lines = match self.route_now(&input, &warehouses, self.now()) {
                        Err(u) => route::unplaced(&plan_lines, &u),
                        // Stock came back, but the attempts are spent:
                        // the lines of the SKUs that moved under the plan.
                        Ok(_) => plan_lines
                            .iter()
                            .enumerate()
                            .filter(|(_, l)| l.pinned.is_none() && fresh.contains_key(&l.sku))
                            .map(|(i, l)| (i, l.sku.clone(), l.qty))
                            .collect(),
                    };
                    return Err(CmdError::Unplaced(lines));
                }
                Err(Prepared::Failed(e)) => return Err(e),
            }
        };
        trace.attempts = attempts;
        let policy = self.config.lifecycle.policy(req.channel.as_str());
        let pay_by = (policy.payment_required && policy.unpaid_expiry_ms > 0)
            .then(|| now.saturating_add(policy.unpaid_expiry_ms));
        let mut order = order::build(
            order::NewOrder {
                id,
                channel: req.channel,
                customer: req.customer,
                ship_to: req.ship_to,
                lines: req.lines,
                now,
                created_by: req.caller.key,
                currency: req.currency,
                payment_required: policy.payment_required,
                pay_by,
            },
            &allocations,
        );
        order.routing = Some(Arc::new(trace));
        let event = Arc::new(Event::OrderPlaced {
            order,
            allocations,
            idempotency: self.key_record(&req.idempotency),
        });
        self.record(&by_sku, id, event.as_ref().clone()).await?;
        claim.keep();
        inflight.recorded();
        self.commit(&by_sku, id, event.clone(), &mut inflight).await;
        // Each SKU actor has let go of the event once its commit is
        // answered: the order is taken out of it, not copied (it holds the
        // routing trace), unless one still holds it.
        // (Never `None`: the event is built above as `OrderPlaced`.)
        placed_order(event).ok_or(CmdError::Unavailable)
    }

    /// Step 1: each SKU's actor and lines, and the order's lines as
    /// routing sees them (a line consuming a hold is pinned to its
    /// warehouse).
    async fn gather(&self, req: &OrderRequest) -> Result<(BySku, Vec<PlanLine>), CmdError> {
        let mut by_sku: BySku = BTreeMap::new();
        let mut plan_lines: Vec<PlanLine> = Vec::with_capacity(req.lines.len());
        for line in &req.lines {
            let addr = self.directory.sku(&line.sku).await?;
            let pin = self.pinned_warehouse(line, &req.caller).await?;
            plan_lines.push(PlanLine {
                sku: line.sku.clone(),
                qty: line.qty,
                pinned: pin,
            });
            by_sku
                .entry(line.sku.clone())
                .or_insert_with(|| (addr, Vec::new()))
                .1
                .push(LineRequest {
                    qty: line.qty,
                    hold: line.reservation,
                });
        }
        Ok((by_sku, plan_lines))
    }

    /// Step 2: every SKU takes exactly its planned part and holds it as
    /// pending; one refusal aborts them all.
    async fn prepare(
        &self,
        by_sku: &BySku,
        id: OrderId,
        customer: &CustomerId,
        planned: &BTreeMap<SkuId, Vec<(WarehouseId, u64)>>,
    ) -> Result<Vec<SkuAllocation>, Prepared> {
        let skus: Vec<(&SkuId, &SkuHandle)> = by_sku.iter().map(|(s, (a, _))| (s, a)).collect();
        let asked = phase_one::prepare_all(&skus, id, |sku, addr| {
            let lines = by_sku.get(sku).map(|(_, l)| l.clone()).unwrap_or_default();
            addr.ask(sku::Prepare {
                order: id,
                customer: customer.clone(),
                lines,
                preference: Arc::new(Vec::new()),
                planned: Some(planned.get(sku).cloned().unwrap_or_default()),
            })
        })
        .await;
        match asked {
            Ok(PhaseOne::Ready(allocations)) => Ok(allocations),
            Ok(PhaseOne::Stale(stale)) => Err(Prepared::Stale(stale)),
            Err(e) => Err(Prepared::Failed(e)),
        }
    }

    /// Step 3: the order's actor logs the order with every allocation.
    async fn record(&self, by_sku: &BySku, id: OrderId, event: Event) -> Result<(), CmdError> {
        let desk = match self.directory.order(id).await {
            Ok(a) => a,
            Err(e) => {
                abort(by_sku, id).await;
                return Err(e);
            }
        };
        let recorded = desk.send(Record(event)).await;
        if let Err(e) = recorded.map_err(CmdError::from).and_then(|r| r) {
            let _ = desk.send(Forget(id)).await;
            abort(by_sku, id).await;
            return Err(e);
        }
        Ok(())
    }

    /// Step 4: the order is durable. Pending becomes allocated in every SKU
    /// and the order may change from now on. Nothing here can fail the
    /// order: an actor that is gone is replaced from the durable state
    /// (which has the order), and a replacement started before the record
    /// was durable takes the commit (`Commit` applies an order once).
    async fn commit(
        &self,
        by_sku: &BySku,
        id: OrderId,
        event: Arc<Event>,
        inflight: &mut InFlight<'_>,
    ) {
        for (sku, (addr, _)) in by_sku {
            let commit = || sku::Commit {
                order: id,
                event: event.clone(),
            };
            let sent = addr.send(commit()).await;
            // Done here either way: a successor is started only once no
            // placement is in flight on this SKU, this one included.
            inflight.done(sku);
            if sent.is_ok() {
                continue;
            }
            tracing::warn!(%sku, order = %id, "sku actor gone after the order was logged; its successor takes the order from the log");
            match self.directory.sku(sku).await {
                Ok(next) => {
                    let _ = next.send(commit()).await;
                }
                Err(e) => {
                    tracing::error!(%sku, order = %id, error = %e, "no sku actor to take the order; it starts from the log on next use")
                }
            }
        }
        let placed = match self.directory.order(id).await {
            Ok(desk) => desk.send(Placed(id)).await.is_ok(),
            Err(_) => false,
        };
        if !placed {
            // Its replacement starts from the durable state, where the
            // order is placed and not "being placed".
            tracing::warn!(order = %id, "order actor gone after the order was logged");
        }
    }
}

/// An order's placement in flight: its SKUs (until each has committed or
/// aborted) and, once logged, the order itself (until every SKU has it).
/// Dropping it ends whatever is left, on every path out of `place`.
struct InFlight<'a> {
    surge: &'a Surge,
    order: OrderId,
    skus: Vec<SkuId>,
    recorded: bool,
}

impl<'a> InFlight<'a> {
    fn new(surge: &'a Surge, order: OrderId, skus: impl Iterator<Item = &'a SkuId>) -> Self {
        let skus: Vec<SkuId> = skus.cloned().collect();
        surge.directory.begin_placing(skus.iter());
        Self {
            surge,
            order,
            skus,
            recorded: false,
        }
    }

    fn recorded(&mut self) {
        self.surge.directory.begin_committing(self.order);
        self.recorded = true;
    }

    fn done(&mut self, sku: &SkuId) {
        if let Some(i) = self.skus.iter().position(|s| s == sku) {
            self.skus.swap_remove(i);
            self.surge.directory.end_placing(sku);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        for sku in self.skus.drain(..) {
            self.surge.directory.end_placing(&sku);
        }
        if self.recorded {
            self.surge.directory.end_committing(self.order);
        }
    }
}

/// The order an `OrderPlaced` event holds: moved out when nobody else
/// holds the event, else copied.
fn placed_order(event: Arc<Event>) -> Option<Order> {
    match Arc::try_unwrap(event) {
        Ok(Event::OrderPlaced { order, .. }) => Some(order),
        Ok(_) => None,
        Err(shared) => match shared.as_ref() {
            Event::OrderPlaced { order, .. } => Some(order.clone()),
            _ => None,
        },
    }
}

async fn abort(by_sku: &BySku, order: OrderId) {
    phase_one::abort_all(by_sku.values().map(|(a, _)| a), order).await;
}
