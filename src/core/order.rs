//! Order decisions: building a placed order from what each SKU allocated,
//! and cancelling.

use super::event::Event;
use super::ids::{ChannelId, CustomerId, OrderId, SkuId, WarehouseId};
use super::lifecycle;
use super::model::{Millis, Order, OrderLine, OrderStatus, ShipTo, Shipment, SkuAllocation};
use super::retention::Horizon;
use super::routing::RoutingTrace;
use super::Rejection;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

pub struct NewOrder {
    pub id: OrderId,
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    pub now: Millis,
    /// The API key placing it, by name.
    pub created_by: Option<String>,
    /// Set when its lines are priced.
    pub currency: Option<lifecycle::Currency>,
    /// Its channel waits for payment before fulfilment.
    pub payment_required: bool,
    /// Unpaid by then, it expires.
    pub pay_by: Option<Millis>,
}

/// Groups the SKUs' allocations into one shipment per warehouse.
pub fn shipments(allocations: &[SkuAllocation]) -> Vec<Shipment> {
    let mut by_wh: BTreeMap<&WarehouseId, BTreeMap<&SkuId, u64>> = BTreeMap::new();
    for a in allocations {
        for (wh, q) in &a.lines {
            *by_wh.entry(wh).or_default().entry(&a.sku).or_default() += q;
        }
    }
    by_wh
        .into_iter()
        .map(|(wh, lines)| Shipment {
            warehouse: wh.clone(),
            lines: lines.into_iter().map(|(s, q)| (s.clone(), q)).collect(),
        })
        .collect()
}

pub fn build(new: NewOrder, allocations: &[SkuAllocation]) -> Order {
    let shipments = shipments(allocations);
    let life = lifecycle::Life {
        currency: new.currency,
        payment_required: new.payment_required,
        pay_by: new.pay_by,
        routed_at: new.now,
        fulfillments: lifecycle::life::fulfillments_at_placement(new.id, &shipments, new.now),
        ..Default::default()
    };
    Order {
        id: new.id,
        channel: new.channel,
        customer: new.customer,
        ship_to: new.ship_to,
        lines: new.lines,
        shipments,
        status: OrderStatus::Placed,
        created_at: new.now,
        updated_at: new.now,
        created_by: new.created_by,
        routing: None,
        life,
    }
}

pub fn decide_cancel(
    order: &Order,
    reason: &str,
    now: Millis,
) -> Result<Event, lifecycle::LifeRefusal> {
    let status = order.lifecycle_status();
    lifecycle::table::order_outcome(status, lifecycle::Command::Cancel)?;
    let shipped = lifecycle::life::line_facts(order)
        .values()
        .any(|f| f.shipped > 0);
    if shipped || order.status != OrderStatus::Placed {
        // What has not shipped, unit by unit.
        return lifecycle::life::cancel_unshipped(order, reason, now);
    }
    let mut skus: Vec<SkuId> = order.lines.iter().map(|l| l.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    Ok(Event::OrderCancelled {
        order: order.id,
        skus,
        reason: reason.to_owned(),
        at: now,
    })
}

/// A re-route as planned: every SKU's allocation of the order before
/// (`from`) and after (`to`), in the same SKU order.
pub struct Reroute {
    /// Warehouses the new plan leaves out (one of them may have started
    /// on the order: it gives the work up).
    pub exclude: Vec<WarehouseId>,
    pub from: Vec<SkuAllocation>,
    pub to: Vec<SkuAllocation>,
    pub routing: Arc<RoutingTrace>,
    pub reason: String,
}

/// Decides re-routing a placed order whose shipments are still those
/// `change.from` makes. Only the SKUs whose allocation moves are in the
/// event; `None` when none moves (the order stays as it is).
pub fn decide_reroute(
    order: &Order,
    change: Reroute,
    now: Millis,
) -> Result<Option<Event>, Rejection> {
    if order.status != OrderStatus::Placed {
        return Err(Rejection::NotReroutable {
            status: order.status.as_str(),
        });
    }
    // Still allocated as planned from: a shipment or cancellation logged
    // since the plan changed what there is to move.
    if live_units(order) != units_by_place(&shipments(&change.from)) {
        // Another change to the order came in between.
        return Err(Rejection::NotReroutable { status: "changing" });
    }
    let shipments = shipments(&change.to);
    // What a warehouse started on stays there.
    let planned = units_by_place(&shipments);
    for ((wh, sku), q) in lifecycle::life::kept_by_reroute(order, &change.exclude) {
        if planned.get(&(wh, sku)).copied().unwrap_or(0) < q {
            return Err(Rejection::NotReroutable {
                status: lifecycle::OrderStatus::InFulfillment.as_str(),
            });
        }
    }
    let (from, to): (Vec<SkuAllocation>, Vec<SkuAllocation>) = change
        .from
        .into_iter()
        .zip(change.to)
        .filter(|(f, t)| f != t)
        .unzip();
    if from.is_empty() {
        return Ok(None);
    }
    Ok(Some(Event::OrderRerouted {
        order: order.id,
        from,
        to,
        shipments,
        routing: change.routing,
        reason: change.reason,
        at: now,
    }))
}

/// The order's units not shipped or cancelled, per (warehouse, SKU): what
/// its SKUs' allocations hold (an order without fulfilments: its
/// shipments).
pub fn live_units(order: &Order) -> BTreeMap<(&WarehouseId, &SkuId), u64> {
    if order.life.fulfillments.is_empty() {
        units_by_place(&order.shipments)
    } else {
        lifecycle::life::allocated_by_place(order)
    }
}

/// Units per (warehouse, SKU): what a list of shipments sends from where.
fn units_by_place(shipments: &[Shipment]) -> BTreeMap<(&WarehouseId, &SkuId), u64> {
    let mut units = BTreeMap::new();
    for s in shipments {
        for (sku, q) in &s.lines {
            *units.entry((&s.warehouse, sku)).or_insert(0) += q;
        }
    }
    units
}

/// Folds an order event into the order it names.
pub fn apply(order: &mut Order, event: &Event) {
    // The lifecycle's facts first (a cancellation marks every fulfilment's
    // units cancelled, a re-route moves them), then the record's own.
    lifecycle::life::apply(order, event);
    match event {
        Event::OrderCancelled { order: id, at, .. } if *id == order.id => {
            order.status = OrderStatus::Cancelled;
            order.updated_at = *at;
        }
        Event::OrderRerouted {
            order: id,
            shipments,
            routing,
            at,
            ..
        } if *id == order.id => {
            order.shipments.clone_from(shipments);
            order.routing = Some(Arc::clone(routing));
            order.updated_at = *at;
        }
        _ => {}
    }
}

/// Why an order book refused a command.
/// The order an event changes after its placement, if any.
pub fn order_of(event: &Event) -> Option<OrderId> {
    match event {
        Event::OrderCancelled { order, .. }
        | Event::OrderRerouted { order, .. }
        | Event::OrderPayment { order, .. }
        | Event::OrderHoldSet { order, .. }
        | Event::OrderLinesCancelled { order, .. }
        | Event::FulfillmentStaged { order, .. }
        | Event::FulfillmentShipped { order, .. }
        | Event::FulfillmentDelivered { order, .. }
        | Event::ReturnRequested { order, .. }
        | Event::ReturnReceived { order, .. }
        | Event::ReturnSettled { order, .. } => Some(*order),
        Event::OrderPlaced { order, .. } => Some(order.id),
        Event::WarehouseUpserted { .. }
        | Event::SkuUpserted { .. }
        | Event::StockAdjusted { .. }
        | Event::SafetyStockSet { .. }
        | Event::HoldCreated { .. }
        | Event::HoldExtended { .. }
        | Event::HoldReleased { .. }
        | Event::RoutingRulesSet { .. }
        | Event::LifeKeyUsed { .. }
        | Event::IncomingExpected { .. }
        | Event::IncomingReceived { .. }
        | Event::IncomingClosed { .. }
        | Event::LowStockSet { .. } => None,
    }
}

/// Why a lifecycle command was not decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifeError {
    Unknown(OrderId),
    Refused(lifecycle::LifeRefusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookError {
    Unknown(OrderId),
    Rejected(Rejection),
    Life(lifecycle::LifeRefusal),
}

/// The orders one order actor owns (its shard of the order ids), and which
/// of them are still being placed (logged, but not yet handed to every SKU
/// they take stock from).
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: HashMap<OrderId, Order>,
    placing: HashSet<OrderId>,
    /// Orders waiting for payment with a time to be paid by, by that time:
    /// the expiry timer reads the front, never every order.
    unpaid: BTreeSet<(Millis, OrderId)>,
    limits: lifecycle::LifeLimits,
}

impl OrderBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// An order from durable state (start, restart of the actor).
    /// The bounds lifecycle commands are decided within.
    pub fn set_limits(&mut self, limits: lifecycle::LifeLimits) {
        self.limits = limits;
    }

    pub fn insert(&mut self, order: Order) {
        self.index_unpaid(&order);
        self.orders.insert(order.id, order);
    }

    /// Keeps `unpaid` true for `order` as it is now.
    fn index_unpaid(&mut self, order: &Order) {
        let Some(t) = order.life.pay_by else {
            return;
        };
        if order.lifecycle_status() == lifecycle::OrderStatus::PendingPayment {
            self.unpaid.insert((t, order.id));
        } else {
            self.unpaid.remove(&(t, order.id));
        }
    }

    fn unindex_unpaid(&mut self, order: &Order) {
        if let Some(t) = order.life.pay_by {
            self.unpaid.remove(&(t, order.id));
        }
    }

    /// An order whose placement was just submitted to the log.
    pub fn begin_placing(&mut self, order: Order) {
        self.placing.insert(order.id);
        self.index_unpaid(&order);
        self.orders.insert(order.id, order);
    }

    /// A logged change (a re-route) is still being handed to the SKUs:
    /// nothing else may change the order until [`OrderBook::placed`].
    pub fn begin_changing(&mut self, id: OrderId) {
        if self.orders.contains_key(&id) {
            self.placing.insert(id);
        }
    }

    /// Every SKU has taken the placement in: the order may change now.
    pub fn placed(&mut self, id: OrderId) {
        self.placing.remove(&id);
    }

    /// The placement never reached the log: the order never existed.
    pub fn forget(&mut self, id: OrderId) {
        self.placing.remove(&id);
        if let Some(o) = self.orders.remove(&id) {
            self.unindex_unpaid(&o);
        }
    }

    pub fn get(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn decide_cancel(
        &self,
        id: OrderId,
        reason: &str,
        now: Millis,
    ) -> Result<Event, BookError> {
        let order = self.orders.get(&id).ok_or(BookError::Unknown(id))?;
        if self.placing.contains(&id) {
            return Err(BookError::Rejected(Rejection::NotCancellable {
                status: "placing",
            }));
        }
        decide_cancel(order, reason, now).map_err(BookError::Life)
    }

    /// Decides re-routing one of its orders (see [`decide_reroute`]).
    pub fn decide_reroute(
        &self,
        id: OrderId,
        change: Reroute,
        now: Millis,
    ) -> Result<Option<Event>, BookError> {
        let order = self.orders.get(&id).ok_or(BookError::Unknown(id))?;
        if self.placing.contains(&id) {
            return Err(BookError::Rejected(Rejection::NotReroutable {
                status: "placing",
            }));
        }
        if lifecycle::life::fulfillments_after_reroute(order, &shipments(&change.to))
            > self.limits.fulfillments_max
        {
            return Err(BookError::Rejected(Rejection::NotReroutable {
                status: "fulfillments_per_order_max",
            }));
        }
        decide_reroute(order, change, now).map_err(BookError::Rejected)
    }

    /// Folds a logged event about one of its orders in; returns the order.
    /// Decides a lifecycle command on one of its orders (`None`: nothing
    /// to log, e.g. a payment reference already applied).
    pub fn decide_life(
        &self,
        id: OrderId,
        cmd: lifecycle::LifeCmd,
        now: Millis,
    ) -> Result<Option<Event>, LifeError> {
        let order = self.orders.get(&id).ok_or(LifeError::Unknown(id))?;
        if self.placing.contains(&id) {
            return Err(LifeError::Refused(lifecycle::LifeRefusal::Busy));
        }
        lifecycle::life::decide_within(order, cmd, now, &self.limits).map_err(LifeError::Refused)
    }

    /// Orders waiting for payment whose time is up at `now`, at most `max`.
    pub fn unpaid_due(&self, now: Millis, max: usize) -> Vec<OrderId> {
        self.unpaid
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .filter(|id| !self.placing.contains(id))
            .take(max)
            .collect()
    }

    pub fn apply(&mut self, event: &Event) -> Option<&Order> {
        match event {
            Event::OrderPlaced { order, .. } => {
                self.index_unpaid(order);
                self.orders.insert(order.id, order.clone());
                self.orders.get(&order.id)
            }
            _ => {
                let id = order_of(event)?;
                let o = self.orders.get_mut(&id)?;
                apply(o, event);
                if let Some(t) = o.life.pay_by {
                    if o.lifecycle_status() == lifecycle::OrderStatus::PendingPayment {
                        self.unpaid.insert((t, id));
                    } else {
                        self.unpaid.remove(&(t, id));
                    }
                }
                self.orders.get(&id)
            }
        }
    }

    /// Forgets closed orders past their retention; returns how many.
    pub fn retain(&mut self, horizon: &Horizon) -> usize {
        let n = self.orders.len();
        let unpaid = &mut self.unpaid;
        self.orders.retain(|_, o| {
            let keep = horizon.keeps_order(o);
            if !keep {
                if let Some(t) = o.life.pay_by {
                    unpaid.remove(&(t, o.id));
                }
            }
            keep
        });
        n - self.orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::routing::SplitPolicy;
    use crate::core::Location;

    fn alloc(sku: &str, lines: &[(&str, u64)]) -> SkuAllocation {
        SkuAllocation {
            sku: SkuId::parse(sku).unwrap(),
            customer: CustomerId::parse("c").unwrap(),
            lines: lines
                .iter()
                .map(|(w, q)| (WarehouseId::parse(w).unwrap(), *q))
                .collect(),
            consumed_holds: vec![],
            shipped: 0,
            step: 0,
        }
    }

    fn placed(allocations: &[SkuAllocation]) -> Order {
        let lines = allocations
            .iter()
            .map(|a| OrderLine {
                sku: a.sku.clone(),
                qty: a.qty(),
                reservation: None,
                unit_price: None,
            })
            .collect();
        build(
            NewOrder {
                id: OrderId(7),
                channel: ChannelId::parse("web").unwrap(),
                customer: CustomerId::parse("c").unwrap(),
                ship_to: ShipTo {
                    location: Location { lat: 0.0, lon: 0.0 },
                    country: None,
                },
                lines,
                now: 100,
                created_by: None,
                currency: None,
                payment_required: false,
                pay_by: None,
            },
            allocations,
        )
    }

    fn change(from: Vec<SkuAllocation>, to: Vec<SkuAllocation>) -> Reroute {
        Reroute {
            exclude: vec![],
            from,
            to,
            routing: std::sync::Arc::new(RoutingTrace {
                rules: vec![],
                split: SplitPolicy::Allow,
                excluded: vec![],
                candidates: vec![],
                deciding_rule: None,
                attempts: 1,
            }),
            reason: "3pl rejected".into(),
        }
    }

    #[test]
    fn a_reroute_logs_only_the_skus_that_move_and_only_from_what_the_order_has() {
        let a = alloc("a", &[("paris", 2)]);
        let b = alloc("b", &[("paris", 1)]);
        let order = placed(&[a.clone(), b.clone()]);
        let b_moved = alloc("b", &[("berlin", 1)]);
        let e = decide_reroute(
            &order,
            change(vec![a.clone(), b.clone()], vec![a.clone(), b_moved.clone()]),
            200,
        )
        .unwrap()
        .unwrap();
        let Event::OrderRerouted {
            from,
            to,
            shipments: new,
            reason,
            at,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((from, to), (&vec![b.clone()], &vec![b_moved.clone()]));
        assert_eq!(new, &shipments(&[a.clone(), b_moved.clone()]));
        assert_eq!((reason.as_str(), *at), ("3pl rejected", 200));
        let mut moved = order.clone();
        apply(&mut moved, &e);
        assert_eq!(moved.shipments.len(), 2);
        assert_eq!(moved.updated_at, 200);

        // Nothing moves: nothing to log.
        let same = change(vec![a.clone(), b.clone()], vec![a.clone(), b.clone()]);
        assert_eq!(decide_reroute(&order, same, 200), Ok(None));
        // Planned from an allocation the order no longer has.
        let stale = change(vec![a.clone(), b_moved.clone()], vec![a.clone(), b.clone()]);
        assert_eq!(
            decide_reroute(&order, stale, 200),
            Err(Rejection::NotReroutable { status: "changing" })
        );
        // A cancelled order stays where it is.
        let mut cancelled = order.clone();
        apply(&mut cancelled, &decide_cancel(&order, "x", 150).unwrap());
        let c = change(vec![a.clone(), b], vec![a, b_moved]);
        assert_eq!(
            decide_reroute(&cancelled, c, 200),
            Err(Rejection::NotReroutable {
                status: "cancelled"
            })
        );
    }
}
