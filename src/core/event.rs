//! Events: the only way state changes. Every event is logged before anyone
//! is told of it, and replaying the log through `apply` rebuilds the state.
//!
//! The log does not store this enum as it is: `wal/schema` converts it to
//! and from versioned on-disk types, so it may change like any other type.

use super::ids::{ChannelId, HoldId, OrderId, SkuId, WarehouseId};
use super::lifecycle::payments::{PaymentEffect, PaymentKind};
use super::lifecycle::{
    CancelledUnits, Command, FulfillmentId, HoldReason, LifeTarget, Parcel, ReturnId,
};
use super::model::{
    Hold, IdempotencyRecord, Millis, Order, ReleaseReason, Shipment, SkuAllocation, Warehouse,
};
use super::routing::{Chain, RoutingTrace};
use super::sku::incoming::Receipt;
use serde::{Deserialize, Serialize};

// `OrderPlaced` holds its whole order inline (about 450 bytes since
// orders carry their life), which makes every event that large.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    WarehouseUpserted {
        warehouse: Warehouse,
    },
    SkuUpserted {
        sku: SkuId,
        name: Option<String>,
        per_customer_limit: Option<u64>,
    },
    StockAdjusted {
        sku: SkuId,
        warehouse: WarehouseId,
        delta: i64,
        reason: String,
    },
    SafetyStockSet {
        sku: SkuId,
        warehouse: WarehouseId,
        safety_stock: u64,
        reason: String,
    },
    HoldCreated {
        hold: Hold,
        idempotency: Option<IdempotencyRecord>,
    },
    HoldExtended {
        sku: SkuId,
        hold: HoldId,
        expires_at: Millis,
    },
    HoldReleased {
        sku: SkuId,
        hold: HoldId,
        reason: ReleaseReason,
        at: Millis,
    },
    OrderPlaced {
        order: Order,
        allocations: Vec<SkuAllocation>,
        idempotency: Option<IdempotencyRecord>,
    },
    OrderCancelled {
        order: OrderId,
        skus: Vec<SkuId>,
        reason: String,
        at: Millis,
    },
    /// The chain in force for a channel (`None`: the default chain) was
    /// set at run time; `chain: None` goes back to the configured one.
    RoutingRulesSet {
        channel: Option<ChannelId>,
        chain: Option<Chain>,
        at: Millis,
    },
    /// An order's not-yet-shipped allocation moved: each SKU's allocation
    /// in `from` is replaced by its allocation in `to` (same SKUs, same
    /// quantities, other warehouses); `shipments` is the order's new list.
    OrderRerouted {
        order: OrderId,
        from: Vec<SkuAllocation>,
        to: Vec<SkuAllocation>,
        shipments: Vec<Shipment>,
        routing: std::sync::Arc<RoutingTrace>,
        reason: String,
        at: Millis,
    },
    /// A payment operation on an order (authorize, capture, void, fail,
    /// refund), idempotent by its reference.
    OrderPayment {
        order: OrderId,
        effect: PaymentEffect,
    },
    /// An order put on hold (`Some`) or released (`None`).
    OrderHoldSet {
        order: OrderId,
        reason: Option<HoldReason>,
        at: Millis,
    },
    /// Some of an order's units cancelled before shipping (or all of them
    /// once some shipped, or unpaid past its time: `expired`); each SKU
    /// releases exactly these units in these warehouses.
    OrderLinesCancelled {
        order: OrderId,
        /// The order's stock step (see `Life::steps`): a SKU applies each
        /// step of an order once, however often it is handed to it.
        step: u64,
        units: Vec<CancelledUnits>,
        reason: String,
        expired: bool,
        at: Millis,
    },
    /// A fulfilment accepted, picked, packed or rejected.
    FulfillmentStaged {
        order: OrderId,
        fulfillment: FulfillmentId,
        command: Command,
        reason: Option<String>,
        at: Millis,
    },
    /// A parcel left `warehouse`: each SKU takes its units out of
    /// `allocated` and `on_hand` there.
    FulfillmentShipped {
        order: OrderId,
        step: u64,
        fulfillment: FulfillmentId,
        warehouse: WarehouseId,
        parcel: Parcel,
    },
    /// Shipped units arrived.
    FulfillmentDelivered {
        order: OrderId,
        fulfillment: FulfillmentId,
        lines: Vec<(SkuId, u64)>,
        at: Millis,
    },
    ReturnRequested {
        order: OrderId,
        ret: ReturnId,
        lines: Vec<(SkuId, u64)>,
        reason: String,
        at: Millis,
    },
    /// Returned units came back; with `restock`, into that warehouse's
    /// `on_hand`.
    ReturnReceived {
        order: OrderId,
        step: u64,
        ret: ReturnId,
        lines: Vec<(SkuId, u64)>,
        restock: Option<WarehouseId>,
        at: Millis,
    },
    /// A return closed or declined.
    ReturnSettled {
        order: OrderId,
        ret: ReturnId,
        command: Command,
        at: Millis,
    },
    /// An idempotency key a lifecycle command on `order` used, and what
    /// its answer shows. Logged in the same entry as the command's event
    /// (an entry is durable whole or not at all), or alone when the
    /// command changed nothing.
    LifeKeyUsed {
        order: OrderId,
        key: IdempotencyRecord,
        target: LifeTarget,
    },
    /// An incoming receipt (purchase order, shipping notice) announced to
    /// its SKU: its units count in the row's `incoming`, never in
    /// `available`.
    IncomingExpected {
        sku: SkuId,
        receipt: Receipt,
    },
    /// Units of an open receipt arrived: out of `incoming`, into the row's
    /// `on_hand`. The receipt closes when nothing more is expected; the
    /// closed receipts in `forget` are no longer remembered.
    IncomingReceived {
        sku: SkuId,
        receipt: u64,
        warehouse: WarehouseId,
        qty: u64,
        at: Millis,
        forget: Vec<u64>,
        /// The request's idempotency key, logged with its effect.
        key: Option<IdempotencyRecord>,
    },
    /// An open receipt closed short: the sender ships no more, so what it
    /// still expected leaves the row's `incoming`. The closed receipts in
    /// `forget` are no longer remembered.
    IncomingClosed {
        sku: SkuId,
        receipt: u64,
        warehouse: WarehouseId,
        /// Units that will not come.
        short: u64,
        reason: String,
        at: Millis,
        forget: Vec<u64>,
        /// The request's idempotency key, logged with its effect.
        key: Option<IdempotencyRecord>,
    },
    /// A low-stock threshold of the SKU (`warehouse: None`) or of one of
    /// its rows set, or cleared (`threshold: None`).
    LowStockSet {
        sku: SkuId,
        warehouse: Option<WarehouseId>,
        threshold: Option<u64>,
    },
}

impl Event {
    /// The event's type as the feed and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::WarehouseUpserted { .. } => "warehouse_upserted",
            Event::SkuUpserted { .. } => "sku_upserted",
            Event::StockAdjusted { .. } => "stock_adjusted",
            Event::SafetyStockSet { .. } => "safety_stock_set",
            Event::HoldCreated { .. } => "hold_created",
            Event::HoldExtended { .. } => "hold_extended",
            Event::HoldReleased {
                reason: ReleaseReason::Expired,
                ..
            } => "hold_expired",
            Event::HoldReleased { .. } => "hold_released",
            Event::OrderPlaced { .. } => "order_created",
            Event::OrderCancelled { .. } => "order_cancelled",
            Event::RoutingRulesSet { .. } => "routing_rules_set",
            Event::OrderRerouted { .. } => "order_rerouted",
            Event::OrderPayment { effect, .. } => match effect.kind {
                PaymentKind::Authorize => "payment_authorized",
                PaymentKind::Capture => "payment_captured",
                PaymentKind::Void => "payment_voided",
                PaymentKind::Fail => "payment_failed",
                PaymentKind::Refund => "payment_refunded",
                PaymentKind::Expire => "payment_expired",
            },
            Event::OrderHoldSet {
                reason: Some(_), ..
            } => "order_held",
            Event::OrderHoldSet { reason: None, .. } => "order_released",
            Event::OrderLinesCancelled { expired: true, .. } => "order_expired",
            Event::OrderLinesCancelled { .. } => "order_lines_cancelled",
            Event::FulfillmentStaged { command, .. } => match command {
                Command::Accept => "fulfillment_accepted",
                Command::Pick => "fulfillment_picked",
                Command::Pack => "fulfillment_packed",
                _ => "fulfillment_rejected",
            },
            Event::FulfillmentShipped { .. } => "fulfillment_shipped",
            Event::FulfillmentDelivered { .. } => "fulfillment_delivered",
            Event::ReturnRequested { .. } => "return_requested",
            Event::ReturnReceived { .. } => "return_received",
            Event::ReturnSettled {
                command: Command::ReturnDecline,
                ..
            } => "return_declined",
            Event::ReturnSettled { .. } => "return_closed",
            Event::LifeKeyUsed { .. } => "life_key_used",
            Event::IncomingExpected { .. } => "incoming_expected",
            Event::IncomingReceived { .. } => "incoming_received",
            Event::IncomingClosed { .. } => "incoming_closed",
            Event::LowStockSet { .. } => "low_stock_set",
        }
    }
}
