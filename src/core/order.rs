//! Order decisions: building a placed order from what each SKU allocated,
//! and cancelling.

use super::event::Event;
use super::ids::{ChannelId, CustomerId, OrderId, SkuId, WarehouseId};
use super::model::{Millis, Order, OrderLine, OrderStatus, ShipTo, Shipment, SkuAllocation};
use super::retention::Horizon;
use super::Rejection;
use std::collections::{BTreeMap, HashMap, HashSet};

pub struct NewOrder {
    pub id: OrderId,
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    pub now: Millis,
    /// The API key placing it, by name.
    pub created_by: Option<String>,
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
    Order {
        id: new.id,
        channel: new.channel,
        customer: new.customer,
        ship_to: new.ship_to,
        lines: new.lines,
        shipments: shipments(allocations),
        status: OrderStatus::Placed,
        created_at: new.now,
        updated_at: new.now,
        created_by: new.created_by,
        routing: None,
    }
}

pub fn decide_cancel(order: &Order, reason: &str, now: Millis) -> Result<Event, Rejection> {
    if order.status != OrderStatus::Placed {
        return Err(Rejection::NotCancellable {
            status: order.status.as_str(),
        });
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

/// Folds an order event into the order it names.
pub fn apply(order: &mut Order, event: &Event) {
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
            order.routing = Some(routing.clone());
            order.updated_at = *at;
        }
        _ => {}
    }
}

/// Why an order book refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookError {
    Unknown(OrderId),
    Rejected(Rejection),
}

/// The orders one order actor owns (its shard of the order ids), and which
/// of them are still being placed (logged, but not yet handed to every SKU
/// they take stock from).
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: HashMap<OrderId, Order>,
    placing: HashSet<OrderId>,
}

impl OrderBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// An order from durable state (start, restart of the actor).
    pub fn insert(&mut self, order: Order) {
        self.orders.insert(order.id, order);
    }

    /// An order whose placement was just submitted to the log.
    pub fn begin_placing(&mut self, order: Order) {
        self.placing.insert(order.id);
        self.orders.insert(order.id, order);
    }

    /// Every SKU has taken the placement in: the order may change now.
    pub fn placed(&mut self, id: OrderId) {
        self.placing.remove(&id);
    }

    /// The placement never reached the log: the order never existed.
    pub fn forget(&mut self, id: OrderId) {
        self.placing.remove(&id);
        self.orders.remove(&id);
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
        decide_cancel(order, reason, now).map_err(BookError::Rejected)
    }

    /// Folds a logged event about one of its orders in; returns the order.
    pub fn apply(&mut self, event: &Event) -> Option<&Order> {
        match event {
            Event::OrderPlaced { order, .. } => {
                self.orders.insert(order.id, order.clone());
                self.orders.get(&order.id)
            }
            Event::OrderCancelled { order: id, .. } | Event::OrderRerouted { order: id, .. } => {
                let o = self.orders.get_mut(id)?;
                apply(o, event);
                Some(o)
            }
            _ => None,
        }
    }

    /// Forgets closed orders past their retention; returns how many.
    pub fn retain(&mut self, horizon: &Horizon) -> usize {
        let n = self.orders.len();
        self.orders.retain(|_, o| horizon.keeps_order(o));
        n - self.orders.len()
    }
}
