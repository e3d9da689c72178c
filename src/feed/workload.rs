//! The workload the feed reports: orders routed to each warehouse on its
//! local day, counted from the orders as they are fed, so the `orders`
//! snapshot's figure is exact at its seq and a client adds the
//! `order_created` events after it (none is counted twice or missed).
//!
//! Counted by the one rule of [`routing::WorkloadBook`], like the workload
//! placement keeps (`app::ops::route::Workloads`): seeded from the read
//! model once replay is done, then per applied event: `OrderPlaced` adds
//! the order, `OrderCancelled` takes it away, `OrderRerouted` moves it. It
//! differs from placement's only while orders are being placed or
//! re-routed: placement counts an order when it plans it, the feed once it
//! is logged.

use crate::core::routing::{self, WorkloadBook};
use crate::core::{Millis, Order, WarehouseId};
use crate::projection::Projection;
use crate::wire::WorkloadView;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct FedWorkload {
    book: Mutex<WorkloadBook>,
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

impl FedWorkload {
    /// Counts every order in the read model that is not cancelled;
    /// replaces what was counted.
    pub fn seed(&self, projection: &Projection) {
        *self.lock() = WorkloadBook::from_orders(projection.orders.iter(), day_of(projection));
    }

    /// Counts an order just applied to the read model.
    pub fn order_placed(&self, projection: &Projection, order: &Order) {
        self.lock().count_order(order, day_of(projection), 1);
    }

    /// An order (as it was before) was cancelled: it no longer counts.
    pub fn order_cancelled(&self, projection: &Projection, before: &Order) {
        if before.status != crate::core::OrderStatus::Cancelled {
            self.lock().count_order(before, day_of(projection), -1);
        }
    }

    /// An order (`before`, and `after` the event) was re-routed.
    pub fn order_rerouted(&self, projection: &Projection, before: &Order, after: &Order) {
        let mut book = self.lock();
        book.count_order(before, day_of(projection), -1);
        book.count_order(after, day_of(projection), 1);
    }

    /// By warehouse id, for every warehouse that had orders: the last
    /// local day it had any, how many, and its capacity now.
    pub fn view(&self, projection: &Projection) -> BTreeMap<String, WorkloadView> {
        let book = self.lock();
        book.iter()
            .filter_map(|(id, w)| Some((id.to_string(), one(projection, id, *w)?)))
            .collect()
    }

    /// [`Self::view`] of only `warehouses`.
    pub fn view_of<'a>(
        &self,
        projection: &Projection,
        warehouses: impl Iterator<Item = &'a WarehouseId>,
    ) -> BTreeMap<String, WorkloadView> {
        let book = self.lock();
        warehouses
            .filter_map(|id| Some((id.to_string(), one(projection, id, book.get(id))?)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorkloadBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn one(projection: &Projection, id: &WarehouseId, w: routing::Workload) -> Option<WorkloadView> {
    let wh = projection.warehouses.get(id)?;
    Some(WorkloadView::new(
        w.day,
        w.routed,
        wh.routing.capacity_per_day,
    ))
}
