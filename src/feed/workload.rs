//! The workload the feed reports: orders routed to each warehouse on its
//! local day, counted from the orders as they are fed, so the `orders`
//! snapshot's figure is exact at its seq and a client adds the
//! `order_created` events after it (none is counted twice or missed).
//!
//! Seeded from the read model once replay is done, like the workload
//! placement keeps (`app::ops::route::Workloads`), then counted per
//! applied `OrderPlaced`. It differs from that one only while orders are
//! being placed: placement counts an order when it plans it, the feed once
//! it is logged.

use crate::core::routing::{self, Workload};
use crate::core::{Order, WarehouseId};
use crate::projection::Projection;
use crate::wire::WorkloadView;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct FedWorkload {
    by_warehouse: Mutex<HashMap<WarehouseId, Workload>>,
}

impl FedWorkload {
    /// Counts every order in the read model, each on the local day (of
    /// each of its warehouses) it was placed; replaces what was counted.
    pub fn seed(&self, projection: &Projection) {
        let mut map = HashMap::new();
        for order in projection.orders.iter() {
            count(&mut map, projection, order.value());
        }
        *self.lock() = map;
    }

    /// Counts an order just applied to the read model.
    pub fn order_placed(&self, projection: &Projection, order: &Order) {
        count(&mut self.lock(), projection, order);
    }

    /// By warehouse id, for every warehouse that had orders: the last
    /// local day it had any, how many, and its capacity now.
    pub fn view(&self, projection: &Projection) -> BTreeMap<String, WorkloadView> {
        self.lock()
            .iter()
            .filter_map(|(id, w)| {
                let wh = projection.warehouses.get(id)?;
                let view = WorkloadView::new(w.day, w.routed, wh.routing.capacity_per_day);
                Some((id.to_string(), view))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WarehouseId, Workload>> {
        self.by_warehouse.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `order` once to each of its warehouses, on that warehouse's local
/// day at `created_at`: a later day starts again from 0, an earlier one no
/// longer counts. A warehouse the read model does not know is skipped.
fn count(map: &mut HashMap<WarehouseId, Workload>, projection: &Projection, order: &Order) {
    let mut seen: Vec<&WarehouseId> = Vec::with_capacity(order.shipments.len());
    for s in &order.shipments {
        if seen.contains(&&s.warehouse) {
            continue;
        }
        seen.push(&s.warehouse);
        let Some(wh) = projection.warehouses.get(&s.warehouse) else {
            continue;
        };
        let day = routing::local_day(&wh.routing, order.created_at);
        let w = map.entry(s.warehouse.clone()).or_default();
        if day > w.day {
            *w = Workload { day, routed: 0 };
        }
        if day == w.day {
            w.routed = w.routed.saturating_add(1);
        }
    }
}
