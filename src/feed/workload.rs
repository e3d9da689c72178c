//! The workload the feed reports: orders routed to each warehouse on its
//! local day, counted from the orders as they are fed, so the `orders`
//! snapshot's figure is exact at its seq and a client adds the
//! `order_created` events after it (none is counted twice or missed).
//!
//! Seeded from the read model once replay is done, like the workload
//! placement keeps (`app::ops::route::Workloads`), then counted per
//! applied event: `OrderPlaced` adds the order, `OrderCancelled` takes it
//! away, `OrderRerouted` moves it. It differs from that one only while
//! orders are being placed: placement counts an order when it plans it,
//! the feed once it is logged.

use crate::core::routing::{self, Workload};
use crate::core::{Order, OrderStatus, WarehouseId};
use crate::projection::Projection;
use crate::wire::WorkloadView;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct FedWorkload {
    by_warehouse: Mutex<HashMap<WarehouseId, Workload>>,
}

impl FedWorkload {
    /// Counts every order in the read model that is not cancelled, each
    /// on the local day (of each of its warehouses) it was placed;
    /// replaces what was counted.
    pub fn seed(&self, projection: &Projection) {
        let mut map = HashMap::new();
        for order in projection.orders.iter() {
            if order.status != OrderStatus::Cancelled {
                count(&mut map, projection, order.value(), order.created_at, 1);
            }
        }
        *self.lock() = map;
    }

    /// Counts an order just applied to the read model.
    pub fn order_placed(&self, projection: &Projection, order: &Order) {
        count(&mut self.lock(), projection, order, order.created_at, 1);
    }

    /// An order (as it was before) was cancelled: it no longer counts.
    pub fn order_cancelled(&self, projection: &Projection, order: &Order) {
        if order.status != OrderStatus::Cancelled {
            count(&mut self.lock(), projection, order, order.created_at, -1);
        }
    }

    /// An order (`before`, and `after` the event) was re-routed at `at`:
    /// its old warehouses no longer count it on the day they did, its new
    /// ones count it on their day at `at`.
    pub fn order_rerouted(&self, projection: &Projection, before: &Order, after: &Order, at: u64) {
        let mut map = self.lock();
        count(&mut map, projection, before, before.created_at, -1);
        count(&mut map, projection, after, at, 1);
    }

    /// By warehouse id, for every warehouse that had orders: the last
    /// local day it had any, how many, and its capacity now.
    pub fn view(&self, projection: &Projection) -> BTreeMap<String, WorkloadView> {
        self.lock()
            .iter()
            .filter_map(|(id, w)| Some((id.to_string(), one(projection, id, *w)?)))
            .collect()
    }

    /// [`Self::view`] of only `warehouses`.
    pub fn view_of<'a>(
        &self,
        projection: &Projection,
        warehouses: impl Iterator<Item = &'a WarehouseId>,
    ) -> BTreeMap<String, WorkloadView> {
        let map = self.lock();
        warehouses
            .filter_map(|id| {
                let w = map.get(id).copied().unwrap_or_default();
                Some((id.to_string(), one(projection, id, w)?))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WarehouseId, Workload>> {
        self.by_warehouse.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn one(projection: &Projection, id: &WarehouseId, w: Workload) -> Option<WorkloadView> {
    let wh = projection.warehouses.get(id)?;
    Some(WorkloadView::new(
        w.day,
        w.routed,
        wh.routing.capacity_per_day,
    ))
}

/// Adds `n` for `order` once to each of its warehouses, on that
/// warehouse's local day at `at`: a later day starts again from 0, an
/// earlier one no longer counts. A warehouse the read model does not know
/// is skipped.
fn count(
    map: &mut HashMap<WarehouseId, Workload>,
    projection: &Projection,
    order: &Order,
    at: u64,
    n: i64,
) {
    let mut seen: Vec<&WarehouseId> = Vec::with_capacity(order.shipments.len());
    for s in &order.shipments {
        if seen.contains(&&s.warehouse) {
            continue;
        }
        seen.push(&s.warehouse);
        let Some(wh) = projection.warehouses.get(&s.warehouse) else {
            continue;
        };
        let day = routing::local_day(&wh.routing, at);
        let w = map.entry(s.warehouse.clone()).or_default();
        if day > w.day {
            *w = Workload { day, routed: 0 };
        }
        if day == w.day {
            w.routed = w.routed.saturating_add_signed(n);
        }
    }
}
