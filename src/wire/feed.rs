//! The live feed's messages: the envelope every server message shares
//! ([`ServerMsg`], tagged by `type`), the payload of each event
//! ([`FeedEvent`], tagged by `event`), each topic's snapshot
//! ([`TopicSnapshot`]) and the feed's counters ([`FeedStats`]).

use super::lifecycle::{
    FulfillmentChanged, FulfillmentShipped, LinesCancelled, OrderHoldChanged, PaymentChanged,
    ReturnChanged,
};
use super::{
    ChainView, HoldClosed, OrderView, ReservationView, RoutingTraceView, ShipmentView,
    SkuAvailability, SkuRowView, StockChanged, StockView, TraceView, WarehouseView, WorkloadView,
};
use super::{LowStock, ReceiptClosed, ReceiptReceived, ReceiptView};
use crate::core::lifecycle::{Command, HoldReason, PaymentKind};
use crate::core::{HoldId, OrderId, ReleaseReason, SkuId};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Every message the server sends on a feed connection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// First message of a connection: this run's epoch and the head seq.
    Hello {
        epoch: u64,
        seq: u64,
    },
    /// A topic's state as of `seq`; its events follow from `seq + 1`.
    Snapshot {
        topic: &'a str,
        seq: u64,
        data: &'a TopicSnapshot,
    },
    /// One durable change: `seq` orders the feed, `log_seq` is the log
    /// record's, `t_us` when it became durable (microseconds since the
    /// Unix epoch, for clients to measure lag).
    Event {
        seq: u64,
        log_seq: u64,
        t_us: u64,
        #[serde(flatten)]
        event: &'a FeedEvent,
    },
    Subscribed {
        topics: &'a [String],
        epoch: u64,
    },
    Unsubscribed {
        topics: &'a [String],
    },
    /// The client must start over from snapshots (sent before them).
    ResyncRequired {
        since: u64,
        reason: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
}

/// What one durable change tells feed clients.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FeedEvent {
    WarehouseUpdated {
        warehouse: WarehouseView,
    },
    SkuUpdated {
        sku: String,
        name: Option<String>,
        per_customer_limit: Option<u64>,
    },
    /// Null if the hold's record is already forgotten.
    HoldCreated {
        reservation: Option<ReservationView>,
    },
    HoldExtended {
        reservation_id: String,
        sku: String,
        expires_at: u64,
    },
    HoldReleased(HoldClosed),
    HoldExpired(HoldClosed),
    HoldConsumed {
        reservation_id: String,
        sku: String,
        order_id: String,
    },
    OrderCreated {
        order: Box<OrderView>,
    },
    OrderRouted {
        order_id: String,
        shipments: Vec<ShipmentView>,
        /// Why they come from there; absent for orders placed before
        /// routing traced them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<RoutingTraceView>)]
        routing: Option<TraceView>,
    },
    /// An order's status changed: cancelled as a whole (`reason` the one
    /// given), or moved by a lifecycle event (`reason` the one that event
    /// gives: a cancellation's, a hold's, a rejection's; else the event's
    /// name, e.g. `fulfillment_shipped`).
    OrderStatusChanged {
        order_id: String,
        /// As `OrderView.status`.
        #[schema(example = "shipped")]
        status: &'static str,
        reason: String,
        at: u64,
        /// When it became cancelled: the order's warehouses' workload
        /// after the change (a cancelled order no longer counts), by
        /// warehouse id.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        workload: BTreeMap<String, WorkloadView>,
    },
    StockChanged(StockChanged),
    SoldOut(SkuAvailability),
    BackInStock(SkuAvailability),
    /// A chain was set at run time for `channel` (null: the default
    /// chain); `chain` null means back to the configured one.
    RoutingRulesSet {
        channel: Option<String>,
        chain: Option<ChainView>,
        at: u64,
    },
    /// An order's unshipped lines moved: `from` the warehouses its moved
    /// SKUs were allocated in (some may still ship other lines), to its
    /// new `shipments`.
    OrderRerouted {
        order_id: String,
        from: Vec<String>,
        shipments: Vec<ShipmentView>,
        #[schema(value_type = RoutingTraceView)]
        routing: TraceView,
        reason: String,
        at: u64,
        /// The workload of the warehouses in `from` and in `shipments`,
        /// after the move, by warehouse id.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        workload: BTreeMap<String, WorkloadView>,
    },
    /// A payment operation on an order.
    PaymentAuthorized(PaymentChanged),
    PaymentCaptured(PaymentChanged),
    PaymentVoided(PaymentChanged),
    PaymentFailed(PaymentChanged),
    PaymentRefunded(PaymentChanged),
    /// The order stayed unpaid past its time (the server's operation).
    PaymentExpired(PaymentChanged),
    OrderHeld(OrderHoldChanged),
    OrderReleased(OrderHoldChanged),
    OrderLinesCancelled(LinesCancelled),
    /// Unpaid past `pay_by`: every unit not shipped cancelled.
    OrderExpired(LinesCancelled),
    FulfillmentAccepted(FulfillmentChanged),
    FulfillmentPicked(FulfillmentChanged),
    FulfillmentPacked(FulfillmentChanged),
    /// The warehouse cannot ship it (`fulfillment.reason` says why).
    FulfillmentRejected(FulfillmentChanged),
    FulfillmentShipped(FulfillmentShipped),
    FulfillmentDelivered(FulfillmentChanged),
    ReturnRequested(ReturnChanged),
    ReturnReceived(ReturnChanged),
    ReturnClosed(ReturnChanged),
    ReturnDeclined(ReturnChanged),
    /// Orders by status and each warehouse's open fulfilments after an
    /// event that changed them (on `orders`, after that event's other
    /// messages): the numbers of the `orders` snapshot's `counts`.
    OrderCounts(OrderCountsView),
    /// An incoming receipt was announced (its units are in the row's
    /// `incoming`, never in `available`).
    IncomingExpected(ReceiptView),
    /// Units of a receipt arrived into the row's `on_hand`.
    IncomingReceived(ReceiptReceived),
    /// A receipt was closed short: what it still expected left the row's
    /// `incoming`.
    IncomingClosed(ReceiptClosed),
    /// Available fell to or below a low-stock threshold.
    LowStock(LowStock),
    /// Available rose back above the threshold (or the threshold was
    /// cleared: `threshold` null).
    StockRecovered(LowStock),
}

impl FeedEvent {
    pub fn sku_updated(
        sku: &SkuId,
        name: &Option<String>,
        per_customer_limit: Option<u64>,
    ) -> Self {
        FeedEvent::SkuUpdated {
            sku: sku.to_string(),
            name: name.clone(),
            per_customer_limit,
        }
    }

    pub fn hold_extended(sku: &SkuId, hold: HoldId, expires_at: u64) -> Self {
        FeedEvent::HoldExtended {
            reservation_id: hold.to_string(),
            sku: sku.to_string(),
            expires_at,
        }
    }

    pub fn hold_closed(reason: ReleaseReason, closed: HoldClosed) -> Self {
        match reason {
            ReleaseReason::Released => FeedEvent::HoldReleased(closed),
            ReleaseReason::Expired => FeedEvent::HoldExpired(closed),
        }
    }

    pub fn hold_consumed(sku: &SkuId, hold: HoldId, order: OrderId) -> Self {
        FeedEvent::HoldConsumed {
            reservation_id: hold.to_string(),
            sku: sku.to_string(),
            order_id: order.to_string(),
        }
    }

    pub fn order_routed(order: &OrderView) -> Self {
        FeedEvent::OrderRouted {
            order_id: order.id.clone(),
            shipments: order.shipments.clone(),
            routing: order.routing.clone(),
        }
    }

    pub fn order_cancelled(
        order: OrderId,
        reason: &str,
        at: u64,
        workload: BTreeMap<String, WorkloadView>,
    ) -> Self {
        Self::order_status_changed(
            order,
            crate::core::OrderStatus::Cancelled.as_str(),
            reason,
            at,
            workload,
        )
    }

    pub fn order_status_changed(
        order: OrderId,
        status: &'static str,
        reason: &str,
        at: u64,
        workload: BTreeMap<String, WorkloadView>,
    ) -> Self {
        FeedEvent::OrderStatusChanged {
            order_id: order.to_string(),
            status,
            reason: reason.to_owned(),
            at,
            workload,
        }
    }

    /// The `payment_*` event of a payment operation of this kind.
    pub fn payment(kind: PaymentKind, payment: PaymentChanged) -> Self {
        match kind {
            PaymentKind::Authorize => FeedEvent::PaymentAuthorized(payment),
            PaymentKind::Capture => FeedEvent::PaymentCaptured(payment),
            PaymentKind::Void => FeedEvent::PaymentVoided(payment),
            PaymentKind::Fail => FeedEvent::PaymentFailed(payment),
            PaymentKind::Refund => FeedEvent::PaymentRefunded(payment),
            PaymentKind::Expire => FeedEvent::PaymentExpired(payment),
        }
    }

    /// `order_held` with a reason, `order_released` without.
    pub fn order_hold(order: OrderId, reason: Option<&HoldReason>, at: u64) -> Self {
        let change = OrderHoldChanged {
            order_id: order.to_string(),
            reason: reason.map(|r| r.to_string()),
            at,
        };
        match reason {
            Some(_) => FeedEvent::OrderHeld(change),
            None => FeedEvent::OrderReleased(change),
        }
    }

    /// `order_expired` for an unpaid order's expiry, else
    /// `order_lines_cancelled`.
    pub fn lines_cancelled(expired: bool, cancelled: LinesCancelled) -> Self {
        if expired {
            FeedEvent::OrderExpired(cancelled)
        } else {
            FeedEvent::OrderLinesCancelled(cancelled)
        }
    }

    /// The event of a fulfilment accepted, picked, packed or rejected.
    pub fn fulfillment_staged(command: Command, change: FulfillmentChanged) -> Self {
        match command {
            Command::Accept => FeedEvent::FulfillmentAccepted(change),
            Command::Pick => FeedEvent::FulfillmentPicked(change),
            Command::Pack => FeedEvent::FulfillmentPacked(change),
            _ => FeedEvent::FulfillmentRejected(change),
        }
    }

    /// The event of a return settled by `command`: declined or closed.
    pub fn return_settled(command: Command, change: ReturnChanged) -> Self {
        match command {
            Command::ReturnDecline => FeedEvent::ReturnDeclined(change),
            _ => FeedEvent::ReturnClosed(change),
        }
    }

    /// `sold_out` when the SKU had stock and has none, `back_in_stock` the
    /// other way round, nothing otherwise.
    pub fn availability(sku: &SkuId, was_in_stock: bool, sku_available: u64) -> Option<Self> {
        let a = SkuAvailability::new(sku, sku_available);
        match (was_in_stock, sku_available > 0) {
            (true, false) => Some(FeedEvent::SoldOut(a)),
            (false, true) => Some(FeedEvent::BackInStock(a)),
            _ => None,
        }
    }
}

/// A topic's state, as its `snapshot` message carries it in `data`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TopicSnapshot {
    /// `sku:<id>`: null if the SKU does not exist.
    Sku { stock: Option<StockView> },
    /// `warehouse:<id>`: the warehouse (null if unknown) and its rows;
    /// `truncated` when there were more SKUs than a snapshot looks at.
    Warehouse {
        warehouse: Option<WarehouseView>,
        truncated: bool,
        stock: Vec<SkuRowView>,
    },
    /// `order:<id>`: null if unknown.
    Order { order: Option<OrderView> },
    /// `orders`: the most recent orders, newest first, and by warehouse
    /// id the orders routed to it on the last local day it had any (as
    /// of this snapshot's seq: count the `order_created` events after it).
    Orders {
        recent: Vec<OrderView>,
        workload: BTreeMap<String, WorkloadView>,
        /// Every order the server holds, by status, and each warehouse's
        /// open fulfilments (an `order_counts` message has the new
        /// numbers after each change).
        counts: OrderCountsView,
    },
    /// `stock` and `all`.
    Stock {
        truncated: bool,
        skus: Vec<StockView>,
        warehouses: Vec<WarehouseView>,
    },
    /// `holds`: a stream only (their effect on stock is in `stock`).
    Holds {},
    /// `routing`: the chains set at run time, by channel (`default`: the
    /// default chain); what config says is in `GET /v1/routing/rules`.
    Routing {
        runtime: BTreeMap<String, ChainView>,
    },
}

/// How far orders got, and where they left. An order counts once in each
/// stage it reached, so `placed ≥ shipped ≥ delivered`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FunnelView {
    /// Every order the server holds.
    pub placed: u64,
    /// Some money captured (refunds included).
    pub paid: u64,
    /// Some unit shipped.
    pub shipped: u64,
    /// Some unit delivered.
    pub delivered: u64,
    /// Cancelled as a whole, on request.
    pub cancelled: u64,
    /// Cancelled because they stayed unpaid (`payment_status` `expired`).
    pub expired: u64,
    /// Some shipped units came back (`partially_returned`, `returned`).
    pub returned: u64,
}

/// Orders by status and each warehouse's open fulfilments, counted as
/// orders change (never by a scan). Zero counts are left out of the maps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderCountsView {
    pub funnel: FunnelView,
    /// Orders by `status` (as `OrderView.status`).
    pub by_status: BTreeMap<String, u64>,
    /// Orders by `payment_status`.
    pub by_payment_status: BTreeMap<String, u64>,
    /// By warehouse id: its fulfilments still to ship (pending, accepted,
    /// picked, packed or partially shipped).
    pub open_fulfillments: BTreeMap<String, u64>,
}

impl From<&crate::projection::Tally> for OrderCountsView {
    fn from(t: &crate::projection::Tally) -> Self {
        let names = |m: &BTreeMap<&'static str, u64>| {
            m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        Self {
            funnel: FunnelView {
                placed: t.placed,
                paid: t.paid,
                shipped: t.shipped,
                delivered: t.delivered,
                cancelled: t.cancelled,
                expired: t.expired,
                returned: t.returned,
            },
            by_status: names(&t.by_status),
            by_payment_status: names(&t.by_payment_status),
            open_fulfillments: t
                .open_fulfillments
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// `GET /v1/feed/stats`.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct FeedStats {
    pub epoch: u64,
    pub seq: u64,
    pub window: usize,
    pub window_max: usize,
    pub connections: usize,
    pub cut_off_slow: u64,
    pub resyncs: u64,
}
