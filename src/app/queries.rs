//! Reads. Every one comes from the durable read model (the projection), so
//! no answer shows a change before it is on disk; none decides anything.

use super::Surge;
use crate::actors::{sku, CmdError};
use crate::core::{routing, HoldId, Order, OrderId, SkuId, SkuState, Warehouse, WarehouseId};
use crate::projection::{HoldRecord, Projection};
use crate::wire::StockView;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Surge {
    pub fn hold(&self, id: HoldId) -> Result<HoldRecord, CmdError> {
        self.projection
            .holds
            .get(&id)
            .map(|h| h.value().as_ref().clone())
            .ok_or(CmdError::UnknownHold(id))
    }

    pub fn order(&self, id: OrderId) -> Result<Order, CmdError> {
        self.projection
            .orders
            .get(&id)
            .map(|o| o.clone())
            .ok_or(CmdError::UnknownOrder(id))
    }

    /// A SKU's durable stock in every warehouse, read in place (a hot
    /// SKU's state holds millions of holds: never copied for a read).
    pub fn sku_stock(&self, sku: &SkuId) -> Result<StockView, CmdError> {
        self.projection
            .skus
            .get(sku)
            .map(|s| StockView::from(s.value()))
            .ok_or_else(|| CmdError::UnknownSku(sku.clone()))
    }

    pub fn warehouse(&self, id: &WarehouseId) -> Result<Warehouse, CmdError> {
        self.projection
            .warehouses
            .get(id)
            .map(|w| w.value().clone())
            .ok_or_else(|| CmdError::UnknownWarehouse(id.clone()))
    }

    /// Every warehouse, by priority then id.
    pub fn warehouses(&self) -> Vec<Warehouse> {
        let mut all: Vec<Warehouse> = self
            .projection
            .warehouses
            .iter()
            .map(|w| w.value().clone())
            .collect();
        routing::by_priority(&mut all);
        all
    }

    /// Seq of the last event the read model holds.
    pub fn durable_seq(&self) -> u64 {
        self.projection.seq.load(Ordering::Acquire)
    }

    /// The read model itself, for the feed's topic snapshots.
    pub fn read_model(&self) -> &Arc<Projection> {
        &self.projection
    }

    /// A copy of one SKU actor's live state, which may run ahead of the
    /// disk (tests, invariant checks).
    pub async fn inspect_sku(&self, sku: &SkuId) -> Result<SkuState, CmdError> {
        Ok(self.directory.sku(sku).await?.send(sku::Inspect).await?)
    }
}
