//! Reads. Every one comes from the durable read model (the projection), so
//! no answer shows a change before it is on disk; none decides anything.
//!
//! The read model is applied just after the writers are answered, so each
//! read first waits until it has caught up with what was synced when the
//! read began: a client sees its own acknowledged writes. (Usually no wait;
//! at most the groups queued for the applier, `wal_apply_queue_groups`.)
//! Once the applier is lost (it panicked, or stopped taking groups), a
//! read that would have to wait is refused; a failed store alone does not
//! stop what was synced before from being applied and read.

use super::{Caller, Surge};
use crate::actors::{sku, CmdError};
use crate::core::{
    lifecycle, routing, ChannelId, CustomerId, HoldId, Millis, Order, OrderId, SkuId, SkuState,
    Warehouse, WarehouseId,
};
use crate::projection::{HoldRecord, Projection};
use crate::wire::StockView;
use lifecycle::{Fulfillment, FulfillmentId, FulfillmentStatus, LifeRefusal, Return, ReturnId};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Which orders `GET /v1/orders` lists; `None` matches any.
#[derive(Debug, Default, Clone)]
pub struct OrderFilter {
    /// The lifecycle's status (what the API shows).
    pub status: Option<lifecycle::OrderStatus>,
    pub payment_status: Option<lifecycle::PaymentStatus>,
    pub channel: Option<ChannelId>,
    pub customer: Option<CustomerId>,
    /// One of its shipments leaves from there, or a fulfilment there
    /// shipped some of it (a re-route keeps in `shipments` only what is
    /// left to ship).
    pub warehouse: Option<WarehouseId>,
    /// Created at or after (ms since the epoch).
    pub created_after: Option<Millis>,
    /// Created before (ms since the epoch).
    pub created_before: Option<Millis>,
}

impl OrderFilter {
    pub fn matches(&self, o: &Order) -> bool {
        self.status.is_none_or(|s| o.lifecycle_status() == s)
            && self
                .payment_status
                .is_none_or(|s| lifecycle::life::payment_status(o) == s)
            && self.channel.as_ref().is_none_or(|c| o.channel == *c)
            && self.customer.as_ref().is_none_or(|c| o.customer == *c)
            && self.warehouse.as_ref().is_none_or(|w| {
                o.shipments.iter().any(|s| s.warehouse == *w)
                    || o.life
                        .fulfillments
                        .iter()
                        .any(|f| f.warehouse == *w && f.lines.iter().any(|(_, l)| l.shipped > 0))
            })
            && self.created_after.is_none_or(|t| o.created_at >= t)
            && self.created_before.is_none_or(|t| o.created_at < t)
    }
}

/// Order ids read from the read model's index under one lock.
const ORDER_IDS_AT_ONCE: usize = 256;

/// One page of a warehouse's fulfilments, oldest first.
#[derive(Debug)]
pub struct FulfillmentPage {
    pub fulfillments: Vec<Fulfillment>,
    /// The last fulfilment looked at, where the next page starts after;
    /// `None` once the newest has been looked at.
    pub next: Option<FulfillmentId>,
}

/// The work a warehouse still has to do on a fulfilment.
pub fn is_open_work(status: FulfillmentStatus) -> bool {
    use FulfillmentStatus as F;
    matches!(
        status,
        F::Pending | F::Accepted | F::Picked | F::Packed | F::PartiallyShipped
    )
}

/// One page of orders, newest first.
#[derive(Debug)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Where the next page starts (that order, then older ones); `None`
    /// once the oldest order has been looked at.
    pub next: Option<OrderId>,
}

impl Surge {
    /// Up to `limit` orders matching `filter` that `caller` may see, by id
    /// from the highest down (newest first), from order `from` down (from
    /// the newest without one). At most `orders_scan_max` orders are looked
    /// at, so a page may hold fewer than `limit` and still have a next one.
    /// No order is in two pages, and every order acknowledged before the
    /// first page is in one of them (a read waits for the read model to
    /// catch up); one placed while a client pages is in one at most (ids
    /// are given as placement starts, so one placed late may have an id
    /// below the pages already read).
    pub async fn orders_page(
        &self,
        filter: &OrderFilter,
        caller: &Caller,
        from: Option<OrderId>,
        limit: usize,
    ) -> Result<OrderPage, CmdError> {
        self.wal.caught_up().await?;
        let mut from = from.unwrap_or(OrderId(u64::MAX));
        let mut orders = Vec::new();
        let mut looked = 0;
        loop {
            // A few ids at a time: the applier adds to the index on every
            // order and must not wait behind a whole page.
            let ids = self.projection.order_ids_down_from(from, ORDER_IDS_AT_ONCE);
            for &id in &ids {
                if orders.len() == limit || looked == self.config.orders_scan_max {
                    return Ok(OrderPage {
                        orders,
                        next: Some(id),
                    });
                }
                looked += 1;
                if let Some(o) = self.projection.orders.get(&id) {
                    if filter.matches(&o) && caller.may_see(o.created_by.as_deref()) {
                        orders.push(o.clone());
                    }
                }
            }
            match ids.last() {
                Some(last) if ids.len() == ORDER_IDS_AT_ONCE && last.0 > 1 => {
                    from = OrderId(last.0 - 1)
                }
                _ => return Ok(OrderPage { orders, next: None }),
            }
        }
    }

    /// `warehouse`'s fulfilments in `status` (default: its open work),
    /// oldest first, after `after`; at most `orders_scan_max` looked at.
    pub async fn fulfillments_page(
        &self,
        warehouse: &WarehouseId,
        status: Option<FulfillmentStatus>,
        after: Option<FulfillmentId>,
        limit: usize,
    ) -> Result<FulfillmentPage, CmdError> {
        self.wal.caught_up().await?;
        if !self.projection.warehouses.contains_key(warehouse) {
            return Err(CmdError::UnknownWarehouse(warehouse.clone()));
        }
        let wanted = |st: FulfillmentStatus| status.map_or(is_open_work(st), |s| s == st);
        let mut after = after;
        let mut out = Vec::new();
        let mut looked = 0;
        loop {
            let ids = self
                .projection
                .fulfillment_ids_after(warehouse, after, ORDER_IDS_AT_ONCE);
            for &id in &ids {
                if out.len() == limit || looked == self.config.orders_scan_max {
                    return Ok(FulfillmentPage {
                        fulfillments: out,
                        next: after,
                    });
                }
                looked += 1;
                after = Some(id);
                let Some(o) = self.projection.orders.get(&id.order) else {
                    continue;
                };
                if let Some(f) = o.life.fulfillments.iter().find(|f| f.id == id) {
                    if wanted(f.status()) {
                        out.push(f.clone());
                    }
                }
            }
            if ids.len() < ORDER_IDS_AT_ONCE {
                return Ok(FulfillmentPage {
                    fulfillments: out,
                    next: None,
                });
            }
        }
    }

    /// A fulfilment and its order, as `caller` may see them.
    pub async fn fulfillment_seen_by(
        &self,
        id: FulfillmentId,
        caller: &Caller,
    ) -> Result<(Order, Fulfillment), CmdError> {
        let order = self
            .order_seen_by(id.order, caller)
            .await
            .map_err(|_| LifeRefusal::UnknownFulfillment(id))?;
        let f = order
            .life
            .fulfillments
            .iter()
            .find(|f| f.id == id)
            .cloned()
            .ok_or(LifeRefusal::UnknownFulfillment(id))?;
        Ok((order, f))
    }

    /// A return and its order, as `caller` may see them.
    pub async fn return_seen_by(
        &self,
        id: ReturnId,
        caller: &Caller,
    ) -> Result<(Order, Return), CmdError> {
        let order = self
            .order_seen_by(id.order, caller)
            .await
            .map_err(|_| LifeRefusal::UnknownReturn(id))?;
        let r = order
            .life
            .returns
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or(LifeRefusal::UnknownReturn(id))?;
        Ok((order, r))
    }

    pub async fn hold(&self, id: HoldId) -> Result<HoldRecord, CmdError> {
        self.wal.caught_up().await?;
        self.projection
            .holds
            .get(&id)
            .map(|h| h.value().as_ref().clone())
            .ok_or(CmdError::UnknownHold(id))
    }

    /// Hold `id` as `caller` may see it: one another key created is not
    /// found, as if it did not exist.
    pub async fn hold_seen_by(&self, id: HoldId, caller: &Caller) -> Result<HoldRecord, CmdError> {
        let record = self.hold(id).await?;
        if !caller.may_see(record.hold.created_by.as_deref()) {
            return Err(CmdError::UnknownHold(id));
        }
        Ok(record)
    }

    /// Order `id` as `caller` may see it (see [`Surge::hold_seen_by`]).
    pub async fn order_seen_by(&self, id: OrderId, caller: &Caller) -> Result<Order, CmdError> {
        let order = self.order(id).await?;
        if !caller.may_see(order.created_by.as_deref()) {
            return Err(CmdError::UnknownOrder(id));
        }
        Ok(order)
    }

    pub async fn order(&self, id: OrderId) -> Result<Order, CmdError> {
        self.wal.caught_up().await?;
        self.projection
            .orders
            .get(&id)
            .map(|o| o.clone())
            .ok_or(CmdError::UnknownOrder(id))
    }

    /// A SKU's durable stock in every warehouse, read in place (a hot
    /// SKU's state holds millions of holds: never copied for a read).
    pub async fn sku_stock(&self, sku: &SkuId) -> Result<StockView, CmdError> {
        self.wal.caught_up().await?;
        self.projection
            .skus
            .get(sku)
            .map(|s| StockView::from(s.value()))
            .ok_or_else(|| CmdError::UnknownSku(sku.clone()))
    }

    pub async fn warehouse(&self, id: &WarehouseId) -> Result<Warehouse, CmdError> {
        self.wal.caught_up().await?;
        self.projection
            .warehouses
            .get(id)
            .map(|w| w.value().clone())
            .ok_or_else(|| CmdError::UnknownWarehouse(id.clone()))
    }

    /// Every warehouse, by priority then id.
    pub async fn warehouses(&self) -> Result<Vec<Warehouse>, CmdError> {
        self.wal.caught_up().await?;
        let mut all: Vec<Warehouse> = self
            .projection
            .warehouses
            .iter()
            .map(|w| w.value().clone())
            .collect();
        routing::by_priority(&mut all);
        Ok(all)
    }

    /// The enabled warehouses' ids by priority (a hold without a
    /// destination takes from the first that has it), with every
    /// acknowledged warehouse change in them.
    pub(super) async fn warehouse_preference(&self) -> Result<Arc<Vec<WarehouseId>>, CmdError> {
        self.wal
            .caught_up_to(self.warehouses_changed.load(Ordering::Acquire))
            .await?;
        Ok(self.projection.enabled_warehouses_by_priority())
    }

    /// Resolves once the read model (and the feed) has applied every write
    /// acknowledged before the call.
    pub async fn caught_up(&self) -> Result<(), CmdError> {
        Ok(self.wal.caught_up().await?)
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

    /// Holds a SKU's actor until the returned sender fires or is dropped:
    /// it handles nothing meanwhile (tests of a stuck actor).
    pub async fn pause_sku(
        &self,
        sku: &SkuId,
    ) -> Result<tokio::sync::oneshot::Sender<()>, CmdError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.directory.sku(sku).await?.send(sku::Pause(rx)).await?;
        Ok(tx)
    }

    /// Client requests waiting for a SKU's actor (its mailbox, bounded by
    /// `sku_mailbox_capacity`).
    pub fn sku_requests_queued(&self, sku: &SkuId) -> usize {
        self.directory.sku_requests_queued(sku)
    }
}
