//! The JSON shapes HTTP responses and the live feed share, each written
//! once: typed, `Serialize` views built from core and projection types by
//! one `From` (or `from_*`) each.
//!
//! They mirror the domain but are separate from it: a view is a promise to
//! clients and changes only on purpose (the pinning tests below and in
//! `feed::tests` fail on any change of a field's name or type). Nothing
//! here builds JSON by hand; `api` and `feed` render these views and
//! nothing else. `api::dto` keeps request bodies and HTTP-only shapes.
//!
//! - `stock.rs`: the numbers of a row ([`RowNumbers`], written once and
//!   flattened into every stock shape), a SKU's stock ([`StockView`]), a
//!   warehouse's row of a SKU, `stock_changed`, sold out / back in stock.
//! - `hold.rs`: reservations, and a hold released or expired.
//! - `order.rs`: orders with their lines, shipments and lifecycle.
//! - `lifecycle.rs`: an order's life after placement: totals, units per
//!   SKU, fulfilments, returns, payments.
//! - `warehouse.rs`: warehouses and locations.
//! - `routing.rs`: cut-offs, shipping costs, the chains in force and an
//!   order's routing trace.
//! - `feed.rs`: the feed's envelope ([`ServerMsg`]), event payloads
//!   ([`FeedEvent`]), topic snapshots and the feed's counters.

/// Makes a request shape deserialize from a JSON object only. serde's
/// derive also reads a struct from an array of its fields in order, so
/// `[null, null]` was a valid SKU body: the type derives with
/// `#[serde(remote = "Self")]` (which makes the derived code inherent
/// functions) and this implements the traits over them, reading a map.
macro_rules! object_only {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Object;
                impl<'de> serde::de::Visitor<'de> for Object {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$t, A::Error> {
                        <$t>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(Object)
            }
        }
    };
    ($t:ty, serialize) => {
        $crate::wire::object_only!($t);
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    };
}
pub(crate) use object_only;

pub mod feed;
pub mod hold;
pub mod incoming;
pub mod ledger;
pub mod lifecycle;
pub mod order;
pub mod routing;
pub mod stock;
pub mod warehouse;

pub use feed::{FeedEvent, FeedStats, FunnelView, OrderCountsView, ServerMsg, TopicSnapshot};
pub use hold::{HoldClosed, ReservationView};
pub use incoming::{LowStock, ReceiptClosed, ReceiptPage, ReceiptReceived, ReceiptView};
pub use ledger::{LedgerEntryView, LedgerPageView};
pub use lifecycle::{
    CancelledLineView, FulfillmentChanged, FulfillmentLineView, FulfillmentPageView,
    FulfillmentShipped, FulfillmentView, ItemView, LinesCancelled, OrderHoldChanged, ParcelView,
    PaymentChanged, PaymentView, ReturnChanged, ReturnView, TotalsView,
};
pub use order::{LineView, OrderPageView, OrderView, ShipToView, ShipmentLineView, ShipmentView};
pub use routing::{
    ChainView, CutoffView, RateView, RoutingRulesView, RoutingTraceView, ShippingCostView,
    TraceView,
};
pub use stock::{RowNumbers, SkuAvailability, SkuRowView, StockChanged, StockRowView, StockView};
pub use warehouse::{LocationView, WarehouseView, WorkloadView};

use serde::Serialize;

/// A view as JSON text. The views cannot fail to serialize (plain structs,
/// string keys); should one ever fail, the client gets an `error` message
/// in its place and the log says why.
pub fn to_json(view: &impl Serialize) -> String {
    match serde_json::to_string(view) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "a wire view failed to serialize");
            r#"{"type":"error","code":"internal","message":"a message could not be rendered"}"#
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests;
