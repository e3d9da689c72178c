//! Workload: the orders routed to each warehouse on its local day.
//!
//! One rule, used by placement's counters, the feed's and the counts
//! rebuilt at start: an order counts once at each warehouse it ships from,
//! on that warehouse's local day at the time it was routed there (placed,
//! or last re-routed: [`routed_at`]), while it is not cancelled. A later
//! day starts a warehouse's count again from 0; a count for an earlier day
//! than the one kept is gone and changes nothing.

use super::Workload;
use crate::core::{Millis, Order, OrderStatus, WarehouseId};
use std::collections::HashMap;

/// When an order was last routed: placed, or last re-routed (payments,
/// holds and fulfilment change `updated_at`, not this).
pub fn routed_at(order: &Order) -> Millis {
    order.life.routed_at
}

/// Counts by warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadBook {
    by_warehouse: HashMap<WarehouseId, Workload>,
}

impl WorkloadBook {
    /// Every order that is not cancelled, counted. `day_of(warehouse, at)`
    /// is the warehouse's local day at `at` (`None`: an unknown warehouse,
    /// not counted).
    pub fn from_orders<O: std::ops::Deref<Target = Order>>(
        orders: impl Iterator<Item = O>,
        day_of: impl Fn(&WarehouseId, Millis) -> Option<i32>,
    ) -> Self {
        let mut book = Self::default();
        for order in orders.filter(|o| o.status != OrderStatus::Cancelled) {
            book.count_order(&order, &day_of, 1);
        }
        book
    }

    /// Adds `n` orders to `warehouse` on `day`.
    pub fn add(&mut self, warehouse: &WarehouseId, day: i32, n: i64) {
        let w = match self.by_warehouse.get_mut(warehouse) {
            Some(w) => w,
            None => self.by_warehouse.entry(warehouse.clone()).or_default(),
        };
        if day > w.day {
            *w = Workload { day, routed: 0 };
        }
        if day == w.day {
            w.routed = w.routed.saturating_add_signed(n);
        }
    }

    /// Adds (`n` = 1) or takes away (`n` = -1) `order` at each of its
    /// warehouses, on the day it was routed there; returns those
    /// warehouses with their day.
    pub fn count_order<'o>(
        &mut self,
        order: &'o Order,
        day_of: impl Fn(&WarehouseId, Millis) -> Option<i32>,
        n: i64,
    ) -> Vec<(&'o WarehouseId, i32)> {
        let days = order_days(order, day_of);
        for (wh, day) in &days {
            self.add(wh, *day, n);
        }
        days
    }

    /// What one warehouse has (on the day it says).
    pub fn get(&self, warehouse: &WarehouseId) -> Workload {
        self.by_warehouse
            .get(warehouse)
            .copied()
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&WarehouseId, &Workload)> + '_ {
        self.by_warehouse.iter()
    }
}

/// Each warehouse `order` ships from, once, with its local day at
/// [`routed_at`].
pub fn order_days(
    order: &Order,
    day_of: impl Fn(&WarehouseId, Millis) -> Option<i32>,
) -> Vec<(&WarehouseId, i32)> {
    let at = routed_at(order);
    let mut days: Vec<(&WarehouseId, i32)> = Vec::with_capacity(order.shipments.len());
    for s in &order.shipments {
        if days.iter().any(|(w, _)| *w == &s.warehouse) {
            continue;
        }
        if let Some(day) = day_of(&s.warehouse, at) {
            days.push((&s.warehouse, day));
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ChannelId, CustomerId, Location, OrderId, ShipTo, Shipment, SkuId};

    const DAY: Millis = 86_400_000;

    fn order(id: u64, at: Millis, whs: &[&str], status: OrderStatus) -> Order {
        Order {
            id: OrderId(id),
            channel: ChannelId::parse("web").unwrap(),
            customer: CustomerId::parse("c").unwrap(),
            ship_to: ShipTo {
                location: Location { lat: 0.0, lon: 0.0 },
                country: None,
            },
            lines: vec![],
            shipments: whs
                .iter()
                .map(|w| Shipment {
                    warehouse: WarehouseId::parse(w).unwrap(),
                    lines: vec![(SkuId::parse("s").unwrap(), 1)],
                })
                .collect(),
            status,
            created_at: 0,
            updated_at: at,
            created_by: None,
            routing: None,
            life: crate::core::lifecycle::Life {
                routed_at: at,
                ..Default::default()
            },
        }
    }

    /// UTC days for every warehouse but "gone", which is unknown.
    fn utc(wh: &WarehouseId, at: Millis) -> Option<i32> {
        (wh.as_str() != "gone").then_some((at / DAY) as i32)
    }

    fn wh(id: &str) -> WarehouseId {
        WarehouseId::parse(id).unwrap()
    }

    #[test]
    fn an_order_counts_once_per_warehouse_on_the_day_it_was_last_routed() {
        let placed = OrderStatus::Placed;
        let orders = [
            // Two shipments from a: counted once there.
            order(1, 2 * DAY + 5, &["a", "a", "b"], placed),
            // Re-routed today (its routed_at), placed days ago.
            order(2, 2 * DAY + 9, &["b"], placed),
            // Routed yesterday: a later day is kept.
            order(3, DAY + 1, &["a"], placed),
            order(4, 2 * DAY, &["a"], OrderStatus::Cancelled),
            order(5, 2 * DAY, &["gone"], placed),
        ];
        let mut book = WorkloadBook::from_orders(orders.iter(), utc);
        assert_eq!(book.get(&wh("a")), Workload { day: 2, routed: 1 });
        assert_eq!(book.get(&wh("b")), Workload { day: 2, routed: 2 });
        assert_eq!(book.get(&wh("gone")), Workload::default());
        // Taken away again on the same days: nothing left.
        for o in &orders[..2] {
            book.count_order(o, utc, -1);
        }
        assert_eq!(book.get(&wh("a")).routed, 0);
        assert_eq!(book.get(&wh("b")).routed, 0);
        // Yesterday's is gone: taking it away changes nothing.
        book.count_order(&orders[2], utc, -1);
        assert_eq!(book.get(&wh("a")), Workload { day: 2, routed: 0 });
        // A new day starts from 0.
        book.add(&wh("a"), 3, 1);
        assert_eq!(book.get(&wh("a")), Workload { day: 3, routed: 1 });
    }
}
