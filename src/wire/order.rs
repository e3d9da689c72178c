//! Orders, their lines and shipments.

use super::lifecycle::{FulfillmentView, ItemView, ReturnView, TotalsView};
use crate::core::lifecycle::life;
use crate::core::{Order, Shipment};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order goes. Also the shape of `ship_to` in request bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ShipToView {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
}

/// One line as the client asked for it. Also the shape of a line in
/// request bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct LineView {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub qty: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// Price of one unit in the order's currency's minor units; absent
    /// for an unpriced line. (Never written as null: a request's
    /// idempotency hash is taken over the body as it is read back, and a
    /// body without prices must hash as it did before prices existed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<u64>,
}

/// A SKU and a number of its units.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentLineView {
    pub sku: String,
    pub qty: u64,
}

/// What one warehouse sends.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentView {
    pub warehouse: String,
    pub lines: Vec<ShipmentLineView>,
}

impl From<&Shipment> for ShipmentView {
    fn from(s: &Shipment) -> Self {
        Self {
            warehouse: s.warehouse.to_string(),
            lines: s
                .lines
                .iter()
                .map(|(sku, qty)| ShipmentLineView {
                    sku: sku.to_string(),
                    qty: *qty,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    /// One of: pending_payment, ready, in_fulfillment, partially_shipped,
    /// shipped, delivered, cancelled, partially_returned, returned,
    /// on_hold.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why it is on hold (null when it is not).
    pub hold_reason: Option<String>,
    /// One of: pending, authorized, partially_captured, captured,
    /// partially_refunded, refunded, voided, failed, expired.
    #[schema(example = "pending")]
    pub payment_status: &'static str,
    /// Its channel waits for payment before fulfilment.
    pub payment_required: bool,
    /// Unpaid by then (ms since the Unix epoch), it expires; null: never.
    pub pay_by: Option<u64>,
    /// ISO 4217, e.g. `EUR`; null for an unpriced order.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    pub channel: String,
    pub customer_id: String,
    pub ship_to: ShipToView,
    pub lines: Vec<LineView>,
    pub shipments: Vec<ShipmentView>,
    /// Its money; null for an unpriced order.
    pub totals: Option<TotalsView>,
    /// Units per SKU: ordered, cancelled, shipped, delivered, returned.
    pub items: Vec<ItemView>,
    /// One per shipment, the work of one warehouse or 3PL (re-routes add
    /// more).
    pub fulfillments: Vec<FulfillmentView>,
    pub returns: Vec<ReturnView>,
    pub created_at: u64,
    pub updated_at: u64,
    /// The name of the API key that placed it (absent without keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Why its shipments come from where they do (absent for orders
    /// placed before routing traced them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::RoutingTraceView>)]
    pub routing: Option<super::TraceView>,
}

/// `GET /v1/orders`: one page, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPageView {
    pub orders: Vec<OrderView>,
    /// Pass it as `cursor` for the next page; null once every order has
    /// been looked at. A page may hold fewer than `limit` orders (even
    /// none) and still have a next one: each page looks at a bounded
    /// number of orders.
    pub next_cursor: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.to_string(),
            status: o.lifecycle_status().as_str(),
            hold_reason: o.life.hold.as_ref().map(|h| h.to_string()),
            payment_status: life::payment_status(o).as_str(),
            payment_required: o.life.payment_required,
            pay_by: o.life.pay_by,
            currency: o.life.currency.map(|c| c.to_string()),
            channel: o.channel.to_string(),
            customer_id: o.customer.to_string(),
            ship_to: ShipToView {
                lat: o.ship_to.location.lat,
                lon: o.ship_to.location.lon,
                country: o.ship_to.country.clone(),
            },
            lines: o
                .lines
                .iter()
                .map(|l| LineView {
                    sku: l.sku.to_string(),
                    qty: l.qty,
                    reservation_id: l.reservation.map(|h| h.to_string()),
                    unit_price: l.unit_price,
                })
                .collect(),
            shipments: o.shipments.iter().map(ShipmentView::from).collect(),
            totals: super::lifecycle::totals_of(o),
            items: life::line_facts(o)
                .iter()
                .map(|(sku, f)| ItemView::new(sku, f))
                .collect(),
            fulfillments: o
                .life
                .fulfillments
                .iter()
                .map(FulfillmentView::from)
                .collect(),
            returns: o.life.returns.iter().map(ReturnView::from).collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            created_by: o.created_by.clone(),
            routing: o.routing.as_ref().map(Into::into),
        }
    }
}

crate::wire::object_only!(ShipToView, serialize);
crate::wire::object_only!(LineView, serialize);
