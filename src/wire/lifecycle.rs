//! An order's life after placement: its money, units per SKU,
//! fulfilments, returns and payments; and the payloads of the feed's
//! lifecycle events.

use super::ShipmentLineView;
use crate::core::lifecycle::{
    life, CancelledUnits, Fulfillment, OrderTotals, PaymentEffect, Return,
};
use crate::core::{Order, OrderId, SkuId};
use serde::Serialize;
use utoipa::ToSchema;

/// An order's money in its currency's minor units (cents for EUR).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotalsView {
    /// ISO 4217, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Every line's `unit_price × qty`.
    pub ordered: u64,
    /// Every line's `unit_price × cancelled`.
    pub cancelled: u64,
    /// Authorized and not voided.
    pub authorized: u64,
    pub captured: u64,
    pub refunded: u64,
    /// Captured (less refunds) beyond what the order is still worth: what
    /// is owed back.
    pub refund_due: u64,
}

impl From<&OrderTotals> for TotalsView {
    fn from(t: &OrderTotals) -> Self {
        Self {
            currency: t.currency.to_string(),
            ordered: t.ordered,
            cancelled: t.cancelled,
            authorized: t.authorized,
            captured: t.captured,
            refunded: t.refunded,
            refund_due: t.refund_due(),
        }
    }
}

/// An order's totals; none for an unpriced order, and none for one whose
/// totals overflow (placement refuses such an order: no wrong sum is shown).
pub fn totals_of(order: &Order) -> Option<TotalsView> {
    life::totals(order)
        .and_then(Result::ok)
        .map(|t| TotalsView::from(&t))
}

/// One SKU of an order: its units, all lines of that SKU together.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemView {
    pub sku: String,
    pub ordered: u64,
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
    /// Shipped units that came back.
    pub returned: u64,
}

impl ItemView {
    pub fn new(sku: &SkuId, facts: &crate::core::lifecycle::LineFacts) -> Self {
        Self {
            sku: sku.to_string(),
            ordered: facts.ordered,
            cancelled: facts.cancelled,
            shipped: facts.shipped,
            delivered: facts.delivered,
            returned: facts.returned,
        }
    }
}

/// One SKU of a fulfilment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfillmentLineView {
    pub sku: String,
    /// Units this fulfilment was given.
    pub qty: u64,
    /// Units cancelled here (re-routed away included).
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
}

/// One parcel a fulfilment shipped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParcelView {
    pub carrier: String,
    pub tracking: String,
    pub lines: Vec<ShipmentLineView>,
    /// When it shipped (ms since the Unix epoch).
    pub at: u64,
}

impl From<&crate::core::lifecycle::Parcel> for ParcelView {
    fn from(p: &crate::core::lifecycle::Parcel) -> Self {
        Self {
            carrier: p.carrier.clone(),
            tracking: p.tracking.clone(),
            lines: units(&p.lines),
            at: p.at,
        }
    }
}

/// One shipment of an order: the work of one warehouse or 3PL.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfillmentView {
    #[schema(example = "ful_3_1")]
    pub id: String,
    pub order_id: String,
    pub warehouse: String,
    /// One of: pending, accepted, rejected, picked, packed,
    /// partially_shipped, shipped, delivered, cancelled.
    #[schema(example = "pending")]
    pub status: &'static str,
    pub lines: Vec<FulfillmentLineView>,
    pub parcels: Vec<ParcelView>,
    /// Why the warehouse rejected it (null unless rejected).
    pub reason: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl From<&Fulfillment> for FulfillmentView {
    fn from(f: &Fulfillment) -> Self {
        Self {
            id: f.id.to_string(),
            order_id: f.id.order.to_string(),
            warehouse: f.warehouse.to_string(),
            status: f.status().as_str(),
            lines: f
                .lines
                .iter()
                .map(|(sku, l)| FulfillmentLineView {
                    sku: sku.to_string(),
                    qty: l.ordered,
                    cancelled: l.cancelled,
                    shipped: l.shipped,
                    delivered: l.delivered,
                })
                .collect(),
            parcels: f.parcels.iter().map(ParcelView::from).collect(),
            reason: f.reason.clone(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// One return of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnView {
    #[schema(example = "ret_3_1")]
    pub id: String,
    pub order_id: String,
    /// One of: requested, received, closed, declined.
    #[schema(example = "requested")]
    pub status: &'static str,
    pub reason: String,
    /// What was asked back.
    pub lines: Vec<ShipmentLineView>,
    /// What came back (empty until received).
    pub received: Vec<ShipmentLineView>,
    /// The warehouse the received units went back into stock at (null if
    /// none, or not received yet).
    pub restocked_to: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl From<&Return> for ReturnView {
    fn from(r: &Return) -> Self {
        Self {
            id: r.id.to_string(),
            order_id: r.id.order.to_string(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            lines: units(&r.lines),
            received: units(&r.received),
            restocked_to: r.restocked_to.as_ref().map(|w| w.to_string()),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `GET /v1/warehouses/{id}/fulfillments`: one page of a warehouse's
/// fulfilments.
#[derive(Debug, Serialize, ToSchema)]
pub struct FulfillmentPageView {
    pub fulfillments: Vec<FulfillmentView>,
    /// Pass it as `cursor` for the next page; null once every fulfilment
    /// has been looked at.
    pub next_cursor: Option<String>,
}

/// One payment operation on an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    /// One of: authorize, capture, void, fail, refund, expire (`expire`:
    /// the server's, when the order stayed unpaid).
    #[schema(example = "capture")]
    pub kind: &'static str,
    /// In the order's currency's minor units.
    pub amount: u64,
    /// The payment provider's id of the operation.
    pub reference: String,
    pub at: u64,
}

impl From<&PaymentEffect> for PaymentView {
    fn from(p: &PaymentEffect) -> Self {
        Self {
            kind: p.kind.as_str(),
            amount: p.amount,
            reference: p.reference.as_str().to_owned(),
            at: p.at,
        }
    }
}

/// `(sku, qty)` pairs as lines.
fn units(lines: &[(SkuId, u64)]) -> Vec<ShipmentLineView> {
    lines
        .iter()
        .map(|(sku, qty)| ShipmentLineView {
            sku: sku.to_string(),
            qty: *qty,
        })
        .collect()
}

// --- feed payloads ---------------------------------------------------------------

/// `payment_authorized`, `payment_captured`, `payment_voided`,
/// `payment_failed`, `payment_refunded`, `payment_expired`: one payment
/// operation and where the order's money stands after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentChanged {
    pub order_id: String,
    pub payment: PaymentView,
    /// The order's payment status after it (as `OrderView.payment_status`).
    #[schema(example = "captured")]
    pub payment_status: &'static str,
    /// The order's money after it; null for an unpriced order.
    pub totals: Option<TotalsView>,
}

impl PaymentChanged {
    /// `order` as it is after `effect` was applied.
    pub fn new(order: &Order, effect: &PaymentEffect) -> Self {
        Self {
            order_id: order.id.to_string(),
            payment: PaymentView::from(effect),
            payment_status: life::payment_status(order).as_str(),
            totals: totals_of(order),
        }
    }
}

/// `order_held`, `order_released`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderHoldChanged {
    pub order_id: String,
    /// Why it is held; null on release.
    pub reason: Option<String>,
    pub at: u64,
}

/// Units of one SKU cancelled in one warehouse.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancelledLineView {
    pub sku: String,
    /// Where the units were allocated (and are released).
    pub warehouse: String,
    pub qty: u64,
}

/// `order_lines_cancelled`, `order_expired` (unpaid past `pay_by`): units
/// cancelled before shipping.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinesCancelled {
    pub order_id: String,
    pub lines: Vec<CancelledLineView>,
    pub reason: String,
    pub at: u64,
}

impl LinesCancelled {
    pub fn new(order: OrderId, units: &[CancelledUnits], reason: &str, at: u64) -> Self {
        Self {
            order_id: order.to_string(),
            lines: units
                .iter()
                .map(|u| CancelledLineView {
                    sku: u.sku.to_string(),
                    warehouse: u.warehouse.to_string(),
                    qty: u.qty,
                })
                .collect(),
            reason: reason.to_owned(),
            at,
        }
    }
}

/// `fulfillment_accepted`, `_picked`, `_packed`, `_rejected`,
/// `_delivered`: the fulfilment as it is after the change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfillmentChanged {
    pub fulfillment: FulfillmentView,
    pub at: u64,
}

/// `fulfillment_shipped`: the fulfilment after the parcel left, and the
/// parcel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfillmentShipped {
    pub fulfillment: FulfillmentView,
    pub parcel: ParcelView,
    pub at: u64,
}

/// `return_requested`, `return_received`, `return_closed`,
/// `return_declined`: the return as it is after the change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnChanged {
    #[serde(rename = "return")]
    pub ret: ReturnView,
}
