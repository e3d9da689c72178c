//! Order decisions: building a placed order from what each SKU allocated,
//! and cancelling.

use super::event::Event;
use super::ids::{ChannelId, CustomerId, OrderId, SkuId, WarehouseId};
use super::model::{Millis, Order, OrderLine, OrderStatus, ShipTo, Shipment, SkuAllocation};
use super::Rejection;
use std::collections::BTreeMap;

pub struct NewOrder {
    pub id: OrderId,
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    pub now: Millis,
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
    if let Event::OrderCancelled { order: id, at, .. } = event {
        if *id == order.id {
            order.status = OrderStatus::Cancelled;
            order.updated_at = *at;
        }
    }
}
