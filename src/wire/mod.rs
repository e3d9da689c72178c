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
//! - `order.rs`: orders with their lines and shipments.
//! - `warehouse.rs`: warehouses and locations.
//! - `feed.rs`: the feed's envelope ([`ServerMsg`]), event payloads
//!   ([`FeedEvent`]), topic snapshots and the feed's counters.

pub mod feed;
pub mod hold;
pub mod order;
pub mod stock;
pub mod warehouse;

pub use feed::{FeedEvent, FeedStats, ServerMsg, TopicSnapshot};
pub use hold::{HoldClosed, ReservationView};
pub use order::{LineView, OrderView, ShipToView, ShipmentLineView, ShipmentView};
pub use stock::{RowNumbers, SkuAvailability, SkuRowView, StockChanged, StockRowView, StockView};
pub use warehouse::{LocationView, WarehouseView};

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
